"""What the TLS step reads from the host: its names and addresses, the certificates and
keys in place, and the files it writes."""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from wizard.actions import FileState
from wizard.facts import Fact, file_fact
from wizard.host.docker import DAEMON_JSON_PATH
from wizard.pki import (
    CertInfo,
    cert_info,
    is_dns_name,
    normalise_names,
)
from wizard.steps.tls.answers import (
    CONTAINER_INTERFACES,
    DROP_IN_PATH,
    HOST_CA_PATH,
    LOOPBACK_NAMES,
    SERVER_CERT_PATH,
    SERVER_KEY_PATH,
    TLS_DIR,
)
from wizard.transport.base import shell_quote

# ---- facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostIdentity:
    """The names and addresses the server certificate must carry, and the host's clock."""

    hostname: str
    fqdn: str
    addresses: tuple[str, ...]
    clock: int
    """The host's time (epoch seconds): expiry is judged by the clock the host itself uses."""

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock, UTC)

    def names(self) -> tuple[str, ...]:
        """Host name, FQDN, every non-container address, and the loopback names."""
        found = [name for name in (self.fqdn, self.hostname) if name and is_dns_name(name)]
        return normalise_names([*found, *self.addresses, *LOOPBACK_NAMES])


def parse_identity(code: int, out: str) -> HostIdentity:
    hostname = fqdn = ""
    clock = int(time.time())
    addresses: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "hostname":
            hostname = value
        elif key == "fqdn":
            fqdn = value
        elif key == "now" and value.isdigit():
            clock = int(value)
        elif key == "addr":
            # "2: eth0    inet 10.0.0.5/24 brd ... scope global eth0\ ..."
            parts = value.split()
            if len(parts) < 4 or parts[2] not in {"inet", "inet6"}:
                continue
            interface = parts[1].split("@")[0]
            scope = parts[parts.index("scope") + 1] if "scope" in parts[:-1] else "global"
            if scope == "link" or interface.startswith(CONTAINER_INTERFACES):
                continue
            try:
                addresses.append(str(ipaddress.ip_address(parts[3].split("/")[0])))
            except ValueError:
                continue
    return HostIdentity(hostname, fqdn, tuple(dict.fromkeys(addresses)), clock)


HOST_IDENTITY: Fact[HostIdentity] = Fact(
    "tls:identity",
    'echo "hostname $(hostname 2>/dev/null)"\n'
    'echo "fqdn $(hostname -f 2>/dev/null)"\n'
    'echo "now $(date -u +%s)"\n'
    'ip -o addr show 2>/dev/null | sed "s/^/addr /"',
    parse_identity,
)


@dataclass(frozen=True)
class PathMeta:
    """Whether a path exists, with its mode and owner; never its content (keys)."""

    path: str
    exists: bool
    mode: int = 0
    owner: str = ""
    group: str = ""

    def is_(self, mode: int, owner: str = "root", group: str = "root") -> bool:
        return self.exists and (self.mode, self.owner, self.group) == (mode, owner, group)


def meta_fact(path: str, test: str) -> Fact[PathMeta]:
    quoted = shell_quote(path)

    def parse(code: int, out: str) -> PathMeta:
        fields = out.split()
        if code != 0 or len(fields) != 3:
            return PathMeta(path, False)
        return PathMeta(path, True, int(fields[0], 8), fields[1], fields[2])

    return Fact(f"meta:{path}", f"[ {test} {quoted} ] && stat -L -c '%a %U %G' {quoted}", parse)


@dataclass(frozen=True)
class HostCert:
    """A certificate file on the host, and what it says (``info`` None when unreadable)."""

    state: FileState
    expires: str = ""
    """notAfter in ISO 8601 ("" without a readable certificate): plain data for `hostwiz facts`."""

    @functools.cached_property
    def info(self) -> CertInfo | None:
        return cert_info(self.state.content) if self.state.exists else None


def _host_cert(state: FileState) -> HostCert:
    info = cert_info(state.content) if state.exists else None
    return HostCert(state, info.not_after.isoformat() if info else "")


def cert_fact(name: str, path: str) -> Fact[HostCert]:
    plain = file_fact(path)

    def parse(code: int, out: str) -> HostCert:
        return _host_cert(plain.parse(code, out))

    return Fact(name, plain.command, parse)


def _parse_configured(code: int, out: str) -> HostCert:
    path, _, data = out.partition("\n")
    state = file_fact(path.strip()).parse(0, f"644 root root\n{data}") if path.strip() else None
    if state is None:
        return HostCert(FileState("", False))
    return _host_cert(state)


SERVER_CERT = cert_fact("tls:server-cert", SERVER_CERT_PATH)
HOST_CA = file_fact(HOST_CA_PATH)
SERVER_KEY = meta_fact(SERVER_KEY_PATH, "-f")
TLS_DIR_META = meta_fact(TLS_DIR, "-d")
DROP_IN = file_fact(DROP_IN_PATH)
CONFIGURED_CERT: Fact[HostCert] = Fact(
    "tls:configured-cert",
    f'p=$(sed -n \'s/.*"tlscert"[[:space:]]*:[[:space:]]*"\\([^"]*\\)".*/\\1/p\' '
    f"{DAEMON_JSON_PATH} 2>/dev/null | head -n1)\n"
    'if [ -n "$p" ] && [ -f "$p" ]; then echo "$p"; base64 -w0 "$p"; fi',
    _parse_configured,
)
"""The certificate daemon.json names as ``tlscert``, wherever it is (for a setup not ours)."""
