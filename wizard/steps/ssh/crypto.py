"""Strong SSH algorithms (key exchange, ciphers, MACs) limited to what the host's sshd supports.

The lists follow Mozilla's "modern" OpenSSH guidelines and ssh-audit's hardening guides, most
preferred first. diffie-hellman-group-exchange-sha256 is left out: with the moduli Debian
ships it still hands out 2048-bit groups (ssh-audit fails it; Mozilla keeps it only after
removing the small moduli from /etc/ssh/moduli), and clients of the last ten years (OpenSSH
since 6.5, PuTTY since 0.68) have curve25519 instead.

sshd refuses to start (``sshd -t`` fails) on a name it does not know, and an
empty list would leave no way in, so hostwiz writes only the names the host supports: what
``ssh -Q kex|cipher|mac`` lists. On Debian and Ubuntu ``openssh-server`` depends on
``openssh-client`` of exactly the same version, so the client's list is the server's. Where
``ssh`` is missing, the lists ``sshd -T`` prints now (what sshd accepts) stand in.

hostwiz itself connects with paramiko, which knows fewer algorithms than OpenSSH (no
chacha20-poly1305, no umac). :func:`client_problem` makes sure every list keeps at least one
algorithm paramiko speaks, so the change cannot lock hostwiz out of the host.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass

from wizard.facts import Fact

MODERN_KEX = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
)
MODERN_CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
MODERN_MACS = (
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
)

KINDS = ("kex", "cipher", "mac")
"""The ``ssh -Q`` query names, in the order hostwiz writes the lists."""
KEYWORDS = {"kex": "KexAlgorithms", "cipher": "Ciphers", "mac": "MACs"}
"""sshd_config keywords; ``sshd -T`` prints them in lower case."""
MODERN = {"kex": MODERN_KEX, "cipher": MODERN_CIPHERS, "mac": MODERN_MACS}
PLAIN_NAMES = {"kex": "key exchange", "cipher": "cipher", "mac": "MAC"}


@dataclass(frozen=True)
class Algorithms:
    """One list of algorithm names per kind (``kex``, ``cipher``, ``mac``)."""

    kex: tuple[str, ...] = ()
    cipher: tuple[str, ...] = ()
    mac: tuple[str, ...] = ()

    def of(self, kind: str) -> tuple[str, ...]:
        value: tuple[str, ...] = getattr(self, kind)
        return value


SUPPORTED_COMMAND = 'for q in kex cipher mac; do echo "[$q]"; ssh -Q "$q"; done'


def parse_supported(code: int, out: str) -> Algorithms:
    """``[kex]`` / ``[cipher]`` / ``[mac]`` sections of names, one a line (empty if unknown)."""
    lists: dict[str, list[str]] = {kind: [] for kind in KINDS}
    current = ""
    for line in out.splitlines():
        name = line.strip()
        if name.startswith("[") and name.endswith("]"):
            current = name[1:-1]
        elif name and current in lists and " " not in name:
            lists[current].append(name)
    return Algorithms(**{kind: tuple(names) for kind, names in lists.items()})


SUPPORTED = Fact("ssh_algorithms", SUPPORTED_COMMAND, parse_supported)
"""The algorithms the host's OpenSSH supports (``ssh -Q``)."""


def with_fallback(supported: Algorithms, effective: dict[str, str]) -> Algorithms:
    """``supported``, each empty list replaced by what ``sshd -T`` says sshd accepts now."""
    lists = {}
    for kind in KINDS:
        names = supported.of(kind)
        if not names:
            printed = effective.get(KEYWORDS[kind].lower(), "")
            names = tuple(name for name in printed.split(",") if name)
        lists[kind] = names
    return Algorithms(**lists)


def strong_subset(supported: Algorithms) -> Algorithms:
    """The modern algorithms the host supports, most preferred first (a list may be empty)."""
    return Algorithms(
        **{kind: tuple(n for n in MODERN[kind] if n in supported.of(kind)) for kind in KINDS}
    )


def missing_kinds(chosen: Algorithms) -> list[str]:
    """The kinds for which the host supports no strong algorithm at all."""
    return [PLAIN_NAMES[kind] for kind in KINDS if not chosen.of(kind)]


@functools.cache
def paramiko_algorithms() -> Algorithms:
    """What hostwiz's own SSH client (paramiko, with its default settings) offers.

    Read from an unstarted paramiko Transport on a socket pair: its security options are the
    lists a real connection offers, with what this machine's cryptography lacks left out.
    paramiko is imported here, not with the module: the steps (and so the wizard's first
    screen) are loaded long before anything connects.
    """
    import paramiko

    ours, other = socket.socketpair()
    transport = paramiko.Transport(ours)
    try:
        options = transport.get_security_options()
        return Algorithms(tuple(options.kex), tuple(options.ciphers), tuple(options.digests))
    finally:
        transport.close()
        other.close()


def client_problem(chosen: Algorithms, client: Algorithms) -> str:
    """Why a client offering ``client`` could not connect with ``chosen`` ("" if it could)."""
    for kind in KINDS:
        if not set(chosen.of(kind)) & set(client.of(kind)):
            import paramiko

            return (
                f"hostwiz's SSH client (paramiko {paramiko.__version__}) speaks none of the "
                f"{PLAIN_NAMES[kind]} algorithms left ({', '.join(chosen.of(kind))}); it "
                f"offers {', '.join(client.of(kind)) or 'none'}"
            )
    return ""


__all__ = [
    "KEYWORDS",
    "KINDS",
    "MODERN",
    "SUPPORTED",
    "Algorithms",
    "client_problem",
    "missing_kinds",
    "paramiko_algorithms",
    "parse_supported",
    "strong_subset",
    "with_fallback",
]
