"""Moving sshd to another port: the facts, the file edits and the checks (part of the SSH step).

``Port`` is not like most sshd keywords, where the first value read wins: every ``Port`` line
adds a listener. So writing ``Port 2222`` in hostwiz's drop-in is not enough while Debian's
main file (or another drop-in) still says ``Port 22``: sshd would listen on both. The plan
therefore comments out every other ``Port`` line and moves ``ListenAddress addr:port`` entries
(an address with its own port ignores ``Port``) to the new port, so that sshd listens on
exactly the chosen one. ``ListenAddress`` without a port follows ``Port`` and is left alone.

Where systemd starts sshd through ``ssh.socket`` (Ubuntu 22.10 and later, or Debian with the
socket enabled), the socket, not sshd, listens. Ubuntu's generator derives the socket's port
from sshd_config at ``systemctl daemon-reload``; Debian's ssh.socket has ``ListenStream=22``
written in, and no generator. So the plan also writes a drop-in for ssh.socket with the new
port (:data:`SOCKET_DROP_IN`, read after the generator's, so it wins on Ubuntu too), and the
reload command reloads systemd and restarts the socket.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from wizard.actions import FileState
from wizard.facts import Fact
from wizard.host.sshd import EFFECTIVE_COMMAND, with_privsep_dir

DEFAULT_PORT = 22
DROP_IN_FOLDER = "/etc/ssh/sshd_config.d"

_LISTEN_LINE = re.compile(r"^(\s*)(port|listenaddress)(\s*=\s*|\s+)(\S+)(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class SshdListen:
    """Where sshd's effective configuration (``sshd -T``) says it listens."""

    ports: tuple[int, ...]
    addresses: tuple[str, ...]
    """``listenaddress`` values as ``sshd -T`` prints them (``0.0.0.0:22``, ``[::]:22``)."""

    @property
    def port(self) -> int:
        """The port SSH is reached on now (the first one; 22 if sshd -T could not be read)."""
        return self.ports[0] if self.ports else DEFAULT_PORT


def parse_listen(code: int, out: str) -> SshdListen:
    ports: list[int] = []
    addresses: list[str] = []
    for line in out.splitlines():
        key, _, value = line.strip().partition(" ")
        if key.lower() == "port" and value.strip().isdigit():
            ports.append(int(value))
        elif key.lower() == "listenaddress" and value.strip():
            addresses.append(value.strip())
    return SshdListen(tuple(dict.fromkeys(ports)), tuple(addresses))


SSHD_LISTEN = Fact("sshd_listen", EFFECTIVE_COMMAND, parse_listen)
"""The ports and addresses sshd's configuration makes it listen on (what firewalls must allow)."""


def parse_port_files(code: int, out: str) -> tuple[FileState, ...]:
    files = []
    for line in out.splitlines():
        fields = line.split(" ")
        if len(fields) == 6 and fields[0] == "FILE":
            _, path, mode, owner, group, data = fields
            files.append(FileState(path, True, base64.b64decode(data), int(mode, 8), owner, group))
    return tuple(files)


def port_files_fact(own_drop_in: str) -> Fact[tuple[FileState, ...]]:
    """The other drop-ins that set Port or ListenAddress (content, mode and owner of each)."""
    command = (
        f"for f in {DROP_IN_FOLDER}/*.conf; do "
        f'[ -f "$f" ] && [ "$f" != {own_drop_in} ] || continue; '
        "grep -Eqi '^[[:space:]]*(port|listenaddress)([[:space:]]|=)' \"$f\" || continue; "
        'echo "FILE $f $(stat -L -c \'%a %U %G\' "$f") $(base64 -w0 "$f")"; done; true'
    )
    return Fact("sshd_port_files", command, parse_port_files)


def parse_listeners(code: int, out: str) -> dict[int, tuple[str, ...]]:
    """``ss -Hltnp`` -> port -> names of the processes listening there ("?" if not shown)."""
    found: dict[int, list[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        port_text = fields[3].rpartition(":")[2]
        if not port_text.isdigit():
            continue
        names = re.findall(r'\("([^"]+)"', " ".join(fields[5:])) or ["?"]
        found.setdefault(int(port_text), []).extend(names)
    return {port: tuple(dict.fromkeys(names)) for port, names in found.items()}


LISTENERS = Fact("tcp_listeners", "ss -Hltnp 2>/dev/null", parse_listeners)
"""Which processes listen on which TCP ports (a port sshd is to move to must be free)."""


def _parse_active(code: int, out: str) -> bool:
    return code == 0 and out.strip() == "active"


SSH_SOCKET = Fact(
    "ssh_socket_activated",
    "[ -d /run/systemd/system ] && systemctl is-active ssh.socket 2>/dev/null",
    _parse_active,
)
"""True where systemd's ssh.socket listens for sshd (then the socket must move too)."""


SOCKET_DROP_IN = "/etc/systemd/system/ssh.socket.d/hostwiz-port.conf"


def socket_drop_in(port: int) -> bytes:
    """ssh.socket listening on ``port`` only, IPv4 and IPv6 (the empty ``ListenStream=``
    drops the unit's own and the generator's listeners)."""
    return (
        "# Written by hostwiz: systemd listens for sshd on this port only.\n"
        "[Socket]\n"
        "ListenStream=\n"
        f"ListenStream=0.0.0.0:{port}\n"
        f"ListenStream=[::]:{port}\n"
        "BindIPv6Only=ipv6-only\n"
    ).encode()


def _with_port(value: str, port: int) -> str | None:
    """``addr:old`` -> ``addr:port``; None for an address without a port of its own."""
    if value.startswith("["):
        close = value.find("]")
        return f"{value[: close + 1]}:{port}" if value[close + 1 :].startswith(":") else None
    if value.count(":") == 1:
        return f"{value.partition(':')[0]}:{port}"
    return None  # a bare IPv4 address, host name, or IPv6 address without brackets


def only_port(text: str, port: int, own_file: str) -> str:
    """``text`` with every Port line commented out and ``ListenAddress`` ports set to ``port``.

    ``own_file`` (hostwiz's drop-in) holds the one ``Port`` line that stays.
    """
    lines = []
    for line in text.splitlines(keepends=True):
        match = _LISTEN_LINE.match(line.rstrip("\n"))
        if match is None:
            lines.append(line)
            continue
        indent, keyword, _, value, rest = match.groups()
        end = "\n" if line.endswith("\n") else ""
        if keyword.lower() == "port":
            note = f"  # hostwiz: sshd listens on port {port} only, set in {own_file}"
            lines.append(f"{indent}#{line.strip()}{note}{end}")
            continue
        moved = _with_port(value, port)
        if moved is None or moved == value:
            lines.append(line)
        else:
            lines.append(f"{indent}{keyword} {moved}{rest}{end}")
    return "".join(lines)


def port_in(text: str) -> int | None:
    """The (first) Port a config file sets, if any."""
    for line in text.splitlines():
        match = _LISTEN_LINE.match(line)
        if match and match.group(2).lower() == "port" and match.group(4).isdigit():
            return int(match.group(4))
    return None


def reload_commands(manager: str, socket_activated: bool) -> tuple[str, str]:
    """(apply, undo): check and reload sshd; the undo also starts an sshd that died.

    Open sessions survive both. An sshd that could not bind its new port has exited, and a
    plain reload would not bring it back on the restored configuration: the undo starts it.
    """
    check = with_privsep_dir("sshd -t")
    if socket_activated:
        # systemd refuses to start a socket while its (Accept=no) service runs: the listening
        # sshd stops first (KillMode=process: open sessions stay), the socket starts sshd
        # again on the next connection.
        moved = (
            "systemctl daemon-reload && systemctl stop ssh.service && systemctl restart ssh.socket"
        )
        return f"{check} && {moved}", f"{moved}; systemctl reload-or-restart ssh.service"
    if manager == "systemd":
        return f"{check} && systemctl reload ssh", "systemctl reload-or-restart ssh"
    return (
        f"{check} && /etc/init.d/ssh reload",
        "if /etc/init.d/ssh status >/dev/null 2>&1; then /etc/init.d/ssh reload; "
        "else /etc/init.d/ssh start; fi",
    )


def listening_script(port: int) -> str:
    """Prints the listeners on ``port`` once sshd is there (waits up to 3 s for the reload)."""
    return (
        "i=0; while [ $i -lt 30 ]; do "
        f"out=$(ss -Hltnp 'sport = :{port}' 2>/dev/null); "
        'case "$out" in *sshd*|*systemd*) break;; esac; i=$((i+1)); sleep 0.1; done; '
        'printf "%s\\n" "$out"'
    )


def listen_problems(
    port: int,
    listen: SshdListen,
    listeners: dict[int, tuple[str, ...]],
    socket_activated: bool = False,
) -> list[str]:
    """Why sshd does not listen on exactly ``port`` after the change (empty when it does)."""
    ours = {"sshd", "systemd"} if socket_activated else {"sshd"}
    problems = []
    if listen.ports != (port,):
        shown = ", ".join(map(str, listen.ports)) or "none"
        problems.append(
            f"sshd's configuration makes it listen on port(s) {shown}, not only {port} "
            "(a Port line in a file hostwiz did not read?)"
        )
    stray = [a for a in listen.addresses if not a.endswith(f":{port}")]
    if stray:
        problems.append(f"ListenAddress entries on other ports: {', '.join(stray)}")
    names = listeners.get(port, ())
    if not names:
        problems.append(f"nothing listens on port {port} after the reload (did sshd exit?)")
    elif any(name not in ours for name in names):
        others = ", ".join(name for name in names if name not in ours)
        problems.append(f"port {port} is also held by another program ({others})")
    return problems
