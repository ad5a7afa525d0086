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
from wizard.host.docker import DAEMON_JSON_PATH, ROOT_SOCKET, DockerInfo, parse_info
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
    engine: str = ""
    """The engine it runs under: "" for the system (root) engine, else a rootless engine's
    name as the findings say it (``admin's rootless engine``)."""

    @property
    def label(self) -> str:
        """How findings name it: its name, with its engine when that is not the system one
        (two engines may each run a container called ``web``)."""
        return f"{self.name} ({self.engine})" if self.engine else self.name

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


def containers_script(docker: str, rootless: bool = False) -> str:
    """The running containers' ``docker inspect`` through ``docker`` (a CLI command naming its
    socket), then their main processes' NoNewPrivs and Seccomp lines (see :data:`CONTAINERS`).

    ``rootless``: a process owned by host root is skipped. No container of a rootless engine
    runs as host root, so such a pid cannot be the container's (an engine started in a pid
    namespace of its own would report pids of that namespace).
    """
    guard = '  [ "$(stat -c %u "/proc/$p" 2>/dev/null)" = 0 ] && continue\n' if rootless else ""
    return (
        f'ids=$({docker} ps -q) || exit 1\n[ -n "$ids" ] || exit 0\n'
        f"out=$({docker} inspect $ids) || exit 1\nprintf '%s\\n{PROCESS_MARK}\\n' \"$out\"\n"
        "for p in $(printf '%s\\n' \"$out\" | sed -n 's/^ *\"Pid\": \\([0-9]*\\),*$/\\1/p'); do\n"
        f"{guard}"
        '  grep -E \'^(NoNewPrivs|Seccomp):\' "/proc/$p/status" 2>/dev/null | sed "s/^/$p /"\n'
        "done; true"
    )


CONTAINERS: Fact[tuple[Container, ...] | None] = Fact(
    "audit:containers", containers_script(DOCKER), parse_containers
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


# ---- rootless engines ---------------------------------------------------------------------

ROOTLESS_SOCKETS = "/run/user/*/docker.sock"
"""Where rootless engines answer (``/run/user/UID/docker.sock``, see
:func:`wizard.steps.docker.rootless.socket_path`)."""


@dataclass(frozen=True)
class RootlessEngine:
    """A rootless dockerd answering on its user's socket, as the audit reads it."""

    user: str
    uid: int
    socket: str
    info: DockerInfo
    containers: tuple[Container, ...] | None
    """None when ``docker ps`` through its socket failed."""
    config_path: str = ""
    """The daemon.json it runs with (``--config-file``, hostwiz's
    /etc/docker/rootless-USER.json; else the user's ~/.config/docker/daemon.json)."""
    config_text: str | None = None
    """That file's text ("" when it does not exist); None when it could not be read."""

    @property
    def name(self) -> str:
        """How findings name it."""
        return rootless_engine_name(self.user)


def rootless_engine_name(user: str) -> str:
    """How findings name ``user``'s rootless engine (and its containers' ``engine``)."""
    return f"{user}'s rootless engine"


def _engine_head(line: str) -> tuple[str, int, str] | None:
    words = line.split(" ")
    if len(words) != 4 or not words[1].isdigit():
        return None
    return words[2], int(words[1]), words[3]


def _engine_from(head: tuple[str, int, str], parts: dict[str, list[str]]) -> RootlessEngine:
    user, uid, socket = head
    name = rootless_engine_name(user)
    containers = None
    for key, lines in parts.items():
        if key.startswith("containers "):
            code = key.split(" ", 1)[1]
            found = parse_containers(int(code) if code.isdigit() else 1, "\n".join(lines))
            containers = None if found is None else tuple(replace(c, engine=name) for c in found)
    config_path, config_text = "", None
    for key, lines in parts.items():
        if key.startswith("config "):
            config_path = key.split(" ", 1)[1]
            state = lines[0] if lines else ""
            if state == "missing":
                config_text = ""
            elif state == "data":
                try:
                    config_text = base64.b64decode("".join(lines[1:])).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    config_text = None
    info = parse_info(0, "\n".join(parts.get("info", [])))
    return RootlessEngine(user, uid, socket, info, containers, config_path, config_text)


def parse_rootless_engines(code: int, out: str) -> tuple[RootlessEngine, ...]:
    """``@@engine UID USER SOCKET`` blocks, each with its ``@@info``, ``@@containers CODE``
    and ``@@config PATH`` parts; only engines that answered ``docker info``."""
    engines: list[RootlessEngine] = []
    head: tuple[str, int, str] | None = None
    parts: dict[str, list[str]] = {}
    current = ""

    def close() -> None:
        if head is not None:
            engine = _engine_from(head, parts)
            if engine.info.reachable:
                engines.append(engine)

    for line in out.splitlines():
        if line.startswith("@@engine "):
            close()
            head, parts, current = _engine_head(line), {}, ""
        elif line.startswith("@@system"):
            close()
            head, current = None, ""
        elif head is not None and line.startswith(("@@info", "@@containers ", "@@config ")):
            current = line[2:]
            parts[current] = []
        elif head is not None and current:
            parts[current].append(line)
    close()
    return tuple(engines)


def parse_system_enabled(code: int, out: str) -> tuple[str, ...]:
    """What starts the system engine at boot, as :data:`ROOTLESS_ENGINES` prints it once a
    rootless engine answered (``enabled UNIT`` lines after ``@@system``)."""
    _, mark, rest = out.partition("@@system\n")
    if not mark:
        return ()
    return tuple(line[8:] for line in rest.splitlines() if line.startswith("enabled "))


_ROOTLESS_DOCKER = 'timeout 20 docker -H "unix://$s"'

ROOTLESS_ENGINES_COMMAND = f"""found=
for s in {ROOTLESS_SOCKETS}; do
  [ -S "$s" ] || continue
  d=${{s%/docker.sock}}; uid=${{d##*/}}
  case $uid in ''|*[!0-9]*) continue;; esac
  i=$({_ROOTLESS_DOCKER} info --format '{{{{json .}}}}' 2>/dev/null) || continue
  found=yes
  echo "@@engine $uid $(stat -c %U "$d") $s"
  echo @@info; printf '%s\\n' "$i"
  out=$({containers_script(_ROOTLESS_DOCKER, rootless=True)}
  ); echo "@@containers $?"; printf '%s\\n' "$out"
  cfg=
  for p in $(pidof dockerd); do
    [ "$(stat -c %u /proc/$p 2>/dev/null)" = "$uid" ] || continue
    cfg=$(tr '\\0' '\\n' < /proc/$p/cmdline \\
      | sed -n 's/^--config-file=//p; /^--config-file$/{{n;p;}}' | head -n 1)
    [ -n "$cfg" ] || cfg="$(getent passwd "$uid" | cut -d: -f6)/.config/docker/daemon.json"
    break
  done
  [ -n "$cfg" ] && command -v setpriv >/dev/null 2>&1 || continue
  echo "@@config $cfg"
  as_user() {{ setpriv --reuid="$uid" --regid="$(id -g "$uid")" --init-groups \\
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }}
  if ! as_user test -e "$cfg"; then echo missing
  elif c=$(as_user cat -- "$cfg" | base64 -w0); then echo data; echo "$c"
  fi
done
[ -n "$found" ] || exit 0
echo @@system
if [ -d /run/systemd/system ]; then
  for u in docker.service docker.socket; do
    systemctl is-enabled --quiet $u 2>/dev/null && echo "enabled $u"
  done
else
  for l in /etc/rc[2345].d/S[0-9][0-9]docker; do [ -e "$l" ] && echo "enabled $l"; done
fi
true"""
"""Each rootless engine answering on its user's socket: its ``docker info``, its containers
(as :data:`CONTAINERS`), and the daemon.json it runs with, read as its user (the user chooses
the path: read as root it could print any of root's files); then, only when one answered,
what starts the system engine at boot. Without rootless sockets it costs one glob."""

ROOTLESS_ENGINES: Fact[tuple[RootlessEngine, ...]] = Fact(
    "audit:rootless_engines", ROOTLESS_ENGINES_COMMAND, parse_rootless_engines
)
SYSTEM_ENABLED: Fact[tuple[str, ...]] = Fact(
    "audit:system_enabled", ROOTLESS_ENGINES_COMMAND, parse_system_enabled
)
"""The same command (run once per round trip): what starts the system engine at boot, read
only when a rootless engine answered (empty otherwise)."""


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
