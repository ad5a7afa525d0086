"""What the audit reads from the host: commands plus pure parsers, gathered in one round trip
together with facts the steps already define (daemon.json, dockerd, ``docker info``, ``sshd
-T``, the live iptables rules)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from wizard.facts import Fact, text_fact
from wizard.host.docker import DAEMON_JSON_PATH, ROOT_SOCKET
from wizard.pki import cert_info
from wizard.transport.base import shell_quote

DOCKER = f"timeout 20 docker -H unix://{ROOT_SOCKET}"


# ---- containers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: str
    destination: str
    writable: bool


@dataclass(frozen=True)
class PublishedPort:
    host_ip: str
    host_port: str
    container_port: str
    """``80/tcp``."""

    @property
    def all_addresses(self) -> bool:
        return self.host_ip in {"", "0.0.0.0", "::"}

    def describe(self) -> str:
        shown = self.host_ip or "0.0.0.0"
        shown = f"[{shown}]" if ":" in shown else shown
        return f"{shown}:{self.host_port} -> {self.container_port}"


@dataclass(frozen=True)
class Container:
    """A running container's row of the least-privilege table (seed 003)."""

    name: str
    image: str
    user: str
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    security_opt: tuple[str, ...]
    privileged: bool
    pid_mode: str
    network_mode: str
    ipc_mode: str
    read_only: bool
    binds: tuple[Mount, ...]
    ports: tuple[PublishedPort, ...]
    apparmor_profile: str = ""
    pid: int = 0
    process_no_new_privs: bool | None = None
    """What the kernel says of the container's main process (``NoNewPrivs`` in
    /proc/PID/status): the daemon's default applies only to containers created after it was
    set, so the running process is the truth. None when it could not be read."""
    process_seccomp: int | None = None
    """``Seccomp`` of the main process: 0 off, 2 filtering. None when unknown."""
    restart_policy: str = ""
    """``--restart``: ``always``, ``unless-stopped``, ``on-failure`` or "" / ``no``."""
    status: str = ""
    """``running``, or ``restarting`` between two runs of a container Docker restarts."""

    @property
    def restarted_with_dockerd(self) -> bool:
        """It runs, and Docker starts it again by itself when a restart of dockerd stops it
        (without live-restore): it may not run yet right after dockerd answers again."""
        return self.status == "running" and self.restart_policy in {"always", "unless-stopped"}

    @property
    def runs_as_root(self) -> bool:
        name = self.user.split(":", 1)[0]
        return name in {"", "0", "root"}

    @property
    def no_new_privileges(self) -> bool:
        return any(
            opt.replace(":", "=") in {"no-new-privileges", "no-new-privileges=true"}
            for opt in self.security_opt
        )

    def option(self, name: str) -> str:
        """The value of ``--security-opt NAME=VALUE`` ("" when not given)."""
        for opt in self.security_opt:
            key, sep, value = opt.replace(":", "=", 1).partition("=")
            if sep and key == name:
                return value
        return ""

    @property
    def shared_namespaces(self) -> tuple[str, ...]:
        shared = [
            kind
            for kind, mode in (
                ("pid", self.pid_mode),
                ("network", self.network_mode),
                ("ipc", self.ipc_mode),
            )
            if mode == "host"
        ]
        return tuple(shared)


def _caps(values: Any) -> tuple[str, ...]:
    return tuple(str(v).upper().removeprefix("CAP_") for v in values or ())


def container_from(data: dict[str, Any]) -> Container:
    """One element of ``docker inspect``'s JSON as a :class:`Container`."""
    host = data.get("HostConfig") or {}
    config = data.get("Config") or {}
    binds = tuple(
        Mount(str(m.get("Source", "")), str(m.get("Destination", "")), bool(m.get("RW", True)))
        for m in data.get("Mounts") or ()
        if m.get("Type") == "bind"
    )
    ports = []
    for container_port, bindings in sorted((host.get("PortBindings") or {}).items()):
        for binding in bindings or ():
            ports.append(
                PublishedPort(
                    str(binding.get("HostIp") or ""),
                    str(binding.get("HostPort") or ""),
                    container_port,
                )
            )
    state = data.get("State") or {}
    return Container(
        name=str(data.get("Name", "")).lstrip("/") or str(data.get("Id", ""))[:12],
        image=str(config.get("Image", "")),
        user=str(config.get("User") or ""),
        cap_add=_caps(host.get("CapAdd")),
        cap_drop=_caps(host.get("CapDrop")),
        security_opt=tuple(str(o) for o in host.get("SecurityOpt") or ()),
        privileged=bool(host.get("Privileged")),
        pid_mode=str(host.get("PidMode") or ""),
        network_mode=str(host.get("NetworkMode") or ""),
        ipc_mode=str(host.get("IpcMode") or ""),
        read_only=bool(host.get("ReadonlyRootfs")),
        binds=binds,
        ports=tuple(ports),
        apparmor_profile=str(data.get("AppArmorProfile") or ""),
        pid=int(state.get("Pid") or 0),
        restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or ""),
        status=str(state.get("Status") or ""),
    )


PROCESS_MARK = "--- process status ---"


def _process_status(lines: list[str]) -> dict[int, dict[str, str]]:
    """``PID KEY: VALUE`` lines -> pid -> key -> value."""
    status: dict[int, dict[str, str]] = {}
    for line in lines:
        pid, _, rest = line.partition(" ")
        key, sep, value = rest.partition(":")
        if pid.isdigit() and sep:
            status.setdefault(int(pid), {})[key.strip()] = value.strip()
    return status


def _with_process(container: Container, status: dict[str, str]) -> Container:
    nnp, seccomp = status.get("NoNewPrivs", ""), status.get("Seccomp", "")
    return replace(
        container,
        process_no_new_privs=nnp == "1" if nnp.isdigit() else None,
        process_seccomp=int(seccomp) if seccomp.isdigit() else None,
    )


def parse_containers(code: int, out: str) -> tuple[Container, ...] | None:
    """``docker inspect`` of every running container; None when Docker could not be asked."""
    if code != 0:
        return None
    text, _, process_lines = out.partition(PROCESS_MARK)
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    status = _process_status(process_lines.splitlines())
    found = (container_from(item) for item in data if isinstance(item, dict))
    return tuple(_with_process(c, status.get(c.pid, {})) if c.pid else c for c in found)


CONTAINERS: Fact[tuple[Container, ...] | None] = Fact(
    "audit:containers",
    f'ids=$({DOCKER} ps -q) || exit 1\n[ -n "$ids" ] || exit 0\n'
    f"out=$({DOCKER} inspect $ids) || exit 1\nprintf '%s\\n{PROCESS_MARK}\\n' \"$out\"\n"
    "for p in $(printf '%s\\n' \"$out\" | sed -n 's/^ *\"Pid\": \\([0-9]*\\),*$/\\1/p'); do\n"
    '  grep -E \'^(NoNewPrivs|Seccomp):\' "/proc/$p/status" 2>/dev/null | sed "s/^/$p /"\n'
    "done; true",
    parse_containers,
)
"""``docker inspect`` of the running containers, then what the kernel says of each one's main
process (no-new-privileges and seccomp as they really apply)."""

RESTART_WAIT = 10
"""Seconds an audit after a change waits at most for containers Docker restarts by itself."""

_WAIT_FOR_NAMES = (
    "while :; do\n"
    f"  if up=$(docker -H unix://{ROOT_SOCKET} ps --filter status=running "
    "--format '{{.Names}}' 2>/dev/null); then\n"
    "    all=1\n"
    '    for c in "$@"; do printf \'%s\\n\' "$up" | grep -qxF -e "$c" || all=0; done\n'
    '    [ "$all" = 1 ] && exit 0\n'
    "  fi\n"
    "  sleep 0.5\n"
    "done"
)
"""Polls ``docker ps`` until every container named in the arguments runs."""


def containers_waiting_for(names: Iterable[str]) -> Fact[tuple[Container, ...] | None]:
    """:data:`CONTAINERS`, read once every container in ``names`` runs again, or after
    :data:`RESTART_WAIT` seconds (a bounded wait, in the same round trip).

    A change that restarts dockerd stops the containers (unless live-restore was on); those
    with a restart policy are started again by dockerd itself, and may not run yet when it
    answers again: an audit then would not see them, nor check them. When they all run
    already, this costs one ``docker ps``; with no names it is :data:`CONTAINERS` itself.
    """
    wanted = sorted(set(names))
    if not wanted:
        return CONTAINERS
    quoted = " ".join(shell_quote(name) for name in wanted)
    wait = f"timeout {RESTART_WAIT} sh -c {shell_quote(_WAIT_FOR_NAMES)} sh {quoted} 2>/dev/null"
    return Fact(CONTAINERS.name, f"{wait}\n{CONTAINERS.command}", CONTAINERS.parse)


# ---- listeners ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket (``ss -Htlnp``)."""

    address: str
    port: int
    process: str


def parse_listeners(code: int, out: str) -> tuple[Listener, ...]:
    found = []
    for line in out.splitlines():
        words = line.split()
        if len(words) < 4:
            continue
        local = words[3]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]").split("%", 1)[0]
        process = ""
        if '(("' in line:
            process = line.split('(("', 1)[1].split('"', 1)[0]
        found.append(Listener(address, int(port), process))
    return tuple(found)


LISTENERS = Fact("audit:listeners", "ss -Htlnp 2>/dev/null", parse_listeners)


# ---- files, certificates, the socket's group ----------------------------------------------

DOCKER_FILES = (
    "/etc/docker",
    DAEMON_JSON_PATH,
    "/etc/default/docker",
    ROOT_SOCKET,
    "/lib/systemd/system/docker.service",
    "/lib/systemd/system/docker.socket",
    "/usr/lib/systemd/system/docker.service",
    "/usr/lib/systemd/system/docker.socket",
    "/etc/systemd/system/docker.service",
    "/etc/docker/tls",
    "/etc/docker/tls/ca.pem",
    "/etc/docker/tls/server-cert.pem",
    "/etc/docker/tls/server-key.pem",
)
_TLS_PATHS = (
    f'grep -o \'"tls[a-z]*"[[:space:]]*:[[:space:]]*"[^"]*"\' {DAEMON_JSON_PATH} 2>/dev/null'
    ' | sed \'s/.*"\\([^"]*\\)"$/\\1/\''
)


@dataclass(frozen=True)
class PathInfo:
    path: str
    mode: int
    owner: str
    group: str
    kind: str
    """``regular file``, ``directory``, ``socket``… as stat prints it."""


def parse_paths(code: int, out: str) -> tuple[PathInfo, ...]:
    found: dict[str, PathInfo] = {}
    for line in out.splitlines():
        parts = line.split("|", 4)
        if len(parts) != 5:
            continue
        mode, owner, group, kind, path = parts
        try:
            found[path] = PathInfo(path, int(mode, 8), owner, group, kind)
        except ValueError:
            continue
    return tuple(found.values())


PATHS = Fact(
    "audit:paths",
    f"for p in {' '.join(DOCKER_FILES)} $({_TLS_PATHS}); do\n"
    '  [ -e "$p" ] && stat -L -c \'%a|%U|%G|%F|%n\' "$p"\ndone; true',
    parse_paths,
)


@dataclass(frozen=True)
class HostCertificate:
    path: str
    subject: str
    not_after: datetime | None
    """None when the file is not a readable certificate."""


def parse_certificates(code: int, out: str) -> tuple[HostCertificate, ...]:
    found: dict[str, HostCertificate] = {}
    for line in out.splitlines():
        path, _, encoded = line.partition(" ")
        if not path or path in found:
            continue
        try:
            info = cert_info(base64.b64decode(encoded))
        except (binascii.Error, ValueError):
            info = None
        found[path] = HostCertificate(
            path, info.subject if info else "", info.not_after if info else None
        )
    return tuple(found.values())


CERTIFICATES = Fact(
    "audit:certificates",
    "for p in /etc/docker/tls/ca.pem /etc/docker/tls/server-cert.pem "
    f"$({_TLS_PATHS} | grep -v -i 'key'); do\n"
    '  [ -f "$p" ] && echo "$p $(base64 -w0 "$p")"\ndone; true',
    parse_certificates,
)
"""The Docker TLS certificates (never keys): hostwiz's own, and those daemon.json names."""


@dataclass(frozen=True)
class SocketGroup:
    """The group that owns the Docker socket, and the users in it (members or primary)."""

    name: str
    members: tuple[str, ...]


def parse_socket_group(code: int, out: str) -> SocketGroup:
    name, members = "", []
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "group":
            fields = value.split(":")
            name = fields[0]
            if len(fields) > 3 and fields[3]:
                members += fields[3].split(",")
        elif key == "primary" and value:
            members.append(value)
    return SocketGroup(name, tuple(dict.fromkeys(m for m in members if m)))


SOCKET_GROUP = Fact(
    "audit:socket_group",
    f"g=$(stat -L -c %G {ROOT_SOCKET} 2>/dev/null) || g=docker\n"
    'line=$(getent group "$g") || exit 0\necho "group $line"\n'
    'gid=$(echo "$line" | cut -d: -f3)\n'
    'getent passwd | awk -F: -v g="$gid" \'$4 == g {print "primary " $1}\'',
    parse_socket_group,
)


def parse_now(code: int, out: str) -> datetime | None:
    text = out.strip()
    return datetime.fromtimestamp(int(text), UTC) if text.isdigit() else None


NOW = Fact("audit:now", "date -u +%s", parse_now)
"""The host's clock (certificate expiry is judged by the clock that checks it)."""

NFT_TABLES = text_fact("audit:nft_tables", "nft list tables 2>/dev/null")
FIREWALL_FILES = text_fact(
    "audit:firewall_files",
    "for f in /etc/iptables/rules.v4 /etc/sysconfig/iptables; do\n"
    '  [ -s "$f" ] && echo "$f"\ndone\n'
    "grep -qsiE 'drop|reject' /etc/nftables.conf && echo /etc/nftables.conf; true",
)
"""Files that load a firewall at boot without hostwiz (netfilter-persistent, nftables)."""
