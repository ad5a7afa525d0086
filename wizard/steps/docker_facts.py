"""Facts the Docker engine step reads, with their pure parsers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from wizard.actions import FileState
from wizard.daemon_json import split_command_line
from wizard.facts import Fact, file_fact
from wizard.transport.base import shell_quote

DAEMON_JSON_PATH = "/etc/docker/daemon.json"
ROOT_SOCKET = "/var/run/docker.sock"
ROOTLESS_SCRIPT_DIRS = ("/usr/share/docker.io/contrib", "/usr/bin", "/usr/local/bin")

DAEMON_JSON = file_fact(DAEMON_JSON_PATH)
SUBUID = file_fact("/etc/subuid")
SUBGID = file_fact("/etc/subgid")


@dataclass(frozen=True)
class DockerdProcess:
    """The root dockerd as it runs now (``running=False`` when it does not)."""

    running: bool
    args: tuple[str, ...] = ()
    nofile_hard: int | None = None
    """The open-files hard limit containers can get at most (dockerd's own, else the shell's)."""
    configured_args: tuple[str, ...] = ()
    """Arguments the service manager starts dockerd with (systemd ExecStart, DOCKER_OPTS)."""

    @property
    def effective_args(self) -> tuple[str, ...]:
        return self.args if self.running else self.configured_args


def parse_dockerd(code: int, out: str) -> DockerdProcess:
    running = False
    args: list[str] = []
    configured: list[str] = []
    nofile: int | None = None
    shell_nofile: int | None = None
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "pid":
            running = True
        elif key == "arg":
            args.append(value)
        elif key == "nofile" and value.isdigit():
            nofile = int(value)
        elif key == "shell_nofile" and value.isdigit():
            shell_nofile = int(value)
        elif key == "execstart":
            start = value.find("argv[]=")
            if start != -1:
                configured = split_command_line(value[start + 7 :].split(";")[0])
        elif key == "docker_opts" and value:
            configured = ["dockerd", "-p", "/var/run/docker.pid", *split_command_line(value)]
    return DockerdProcess(running, tuple(args), nofile or shell_nofile, tuple(configured))


DOCKERD = Fact(
    "dockerd",
    """for p in $(pidof dockerd); do
  [ "$(stat -c %u /proc/$p)" = 0 ] || continue
  echo "pid $p"; tr '\\0' '\\n' < /proc/$p/cmdline | sed 's/^/arg /'
  awk '/Max open files/ {print "nofile", $5}' /proc/$p/limits; break
done
echo "shell_nofile $(ulimit -Hn)"
if [ -d /run/systemd/system ]; then
  echo "execstart $(systemctl show -p ExecStart --value docker 2>/dev/null | head -n1)"
elif [ -f /etc/default/docker ]; then
  echo "docker_opts $(. /etc/default/docker >/dev/null 2>&1; echo "$DOCKER_OPTS")"
fi""",
    parse_dockerd,
)


@dataclass(frozen=True)
class DockerInfo:
    """What ``docker info`` says through the root socket (``reachable=False`` if it is down)."""

    reachable: bool
    containers: int = 0
    images: int = 0
    security_options: tuple[str, ...] = ()
    swarm_state: str = "inactive"
    server_version: str = ""

    @property
    def userns(self) -> bool:
        return any(opt.startswith("name=userns") for opt in self.security_options)


def info_from_mapping(data: dict[str, Any]) -> DockerInfo:
    swarm = data.get("Swarm") or {}
    return DockerInfo(
        True,
        int(data.get("Containers") or 0),
        int(data.get("Images") or 0),
        tuple(data.get("SecurityOptions") or ()),
        str(swarm.get("LocalNodeState") or "inactive"),
        str(data.get("ServerVersion") or ""),
    )


def parse_info(code: int, out: str) -> DockerInfo:
    if code != 0:
        return DockerInfo(False)
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if data.get("ServerVersion"):
                return info_from_mapping(data)
    return DockerInfo(False)


DOCKER_INFO = Fact(
    "docker_info",
    f"timeout 20 docker -H unix://{ROOT_SOCKET} info --format '{{{{json .}}}}'",
    parse_info,
)


@dataclass(frozen=True)
class Account:
    name: str
    exists: bool
    uid: int = -1
    gid: int = -1
    home: str = ""
    group: str = ""


def parse_account(name: str) -> Any:
    def parse(code: int, out: str) -> Account:
        lines = out.strip().splitlines()
        if code != 0 or not lines:
            return Account(name, False)
        fields = lines[0].split(":")
        group = lines[1] if len(lines) > 1 else name
        return Account(name, True, int(fields[2]), int(fields[3]), fields[5], group)

    return parse


def account_fact(name: str) -> Fact[Account]:
    quoted = shell_quote(name)
    return Fact(
        f"account:{name}",
        f"getent passwd {quoted} && id -gn {quoted}",
        parse_account(name),
    )


@dataclass(frozen=True)
class RootlessTools:
    """What rootless mode needs on the host, and whether it is already running for the user."""

    newuidmap: bool
    newgidmap: bool
    slirp4netns: bool
    rootlesskit: bool
    tun: bool
    script: str
    """Path of dockerd-rootless.sh ("" when missing)."""
    running: bool
    user_config: FileState
    user_unit: FileState
    """~/.config/systemd/user/docker.service of the user (used where systemd runs)."""

    def missing(self) -> list[str]:
        needs = []
        if not (self.newuidmap and self.newgidmap):
            needs.append("newuidmap/newgidmap (Debian package: uidmap)")
        if not self.slirp4netns:
            needs.append("slirp4netns (Debian package: slirp4netns)")
        if not self.rootlesskit:
            needs.append("rootlesskit (Debian package: rootlesskit)")
        if not self.script:
            needs.append(
                "dockerd-rootless.sh (Debian package: docker.io, or docker-ce-rootless-extras)"
            )
        if not self.tun:
            needs.append("the /dev/net/tun device (load the tun kernel module: modprobe tun)")
        return needs


def parse_rootless(user: str) -> Any:
    def parse(code: int, out: str) -> RootlessTools:
        values: dict[str, str] = {}
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            values[key] = value

        def user_file(prefix: str, fallback: str) -> FileState:
            path = values.get(f"{prefix}_path", "") or fallback
            if not values.get(f"{prefix}_meta"):
                return FileState(path, False)
            mode, owner, group = values[f"{prefix}_meta"].split()
            data = base64.b64decode(values.get(f"{prefix}_data", ""))
            return FileState(path, True, data, int(mode, 8), owner, group)

        return RootlessTools(
            newuidmap=values.get("newuidmap") == "yes",
            newgidmap=values.get("newgidmap") == "yes",
            slirp4netns=values.get("slirp4netns") == "yes",
            rootlesskit=values.get("rootlesskit") == "yes",
            tun=values.get("tun") == "yes",
            script=values.get("script", ""),
            running=values.get("running") == "yes",
            user_config=user_file("config", f"/home/{user}/.config/docker/daemon.json"),
            user_unit=user_file("unit", f"/home/{user}/.config/systemd/user/docker.service"),
        )

    return parse


def rootless_fact(user: str) -> Fact[RootlessTools]:
    quoted = shell_quote(user)
    dirs = " ".join(ROOTLESS_SCRIPT_DIRS)
    return Fact(
        f"rootless:{user}",
        f"""have() {{ command -v "$1" >/dev/null 2>&1 && echo "$1 yes" || echo "$1 no"; }}
have newuidmap; have newgidmap; have slirp4netns; have rootlesskit
[ -c /dev/net/tun ] && echo "tun yes"
for d in {dirs}; do
  [ -x "$d/dockerd-rootless.sh" ] && {{ echo "script $d/dockerd-rootless.sh"; break; }}
done
if u=$(id -u {quoted} 2>/dev/null); then
  [ -S /run/user/$u/docker.sock ] && echo "running yes"
  h=$(getent passwd {quoted} | cut -d: -f6)
  for kind in config:.config/docker/daemon.json unit:.config/systemd/user/docker.service; do
    k=${{kind%%:*}}; f="$h/${{kind#*:}}"; echo "${{k}}_path $f"
    if [ -f "$f" ]; then
      echo "${{k}}_meta $(stat -L -c '%a %U %G' "$f")"; echo "${{k}}_data $(base64 -w0 "$f")"
    fi
  done
fi""",
        parse_rootless(user),
    )


def parse_id_ranges(content: bytes) -> list[tuple[str, int, int]]:
    """Entries of /etc/subuid or /etc/subgid as ``(name, start, count)``."""
    ranges = []
    for line in content.decode("utf-8", "replace").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((parts[0], int(parts[1]), int(parts[2])))
    return ranges
