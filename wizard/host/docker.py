"""What hostwiz knows about Docker on a host: facts with their pure parsers, daemon.json's
listening ports, and the one way to restart dockerd. Shared by every step that touches Docker
(and the audit); what only the docker step reads is in :mod:`wizard.steps.docker.facts`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wizard.actions import FileState, RunCommand
from wizard.daemon_json import parse as parse_daemon_json
from wizard.daemon_json import split_command_line
from wizard.facts import Fact, file_fact, restart_service_script

DAEMON_JSON_PATH = "/etc/docker/daemon.json"
ROOT_SOCKET = "/var/run/docker.sock"

DAEMON_JSON = file_fact(DAEMON_JSON_PATH)


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
  [ -O /proc/$p ] || continue
  echo "pid $p"; tr '\\0' '\\n' < /proc/$p/cmdline | sed 's/^/arg /'
  while read -r a b c d e f; do
    [ "$a $b $c" = "Max open files" ] && echo "nofile $e"
  done </proc/$p/limits
  break
done
printf 'shell_nofile '; ulimit -Hn
if [ -d /run/systemd/system ]; then
  printf 'execstart '; systemctl show -p ExecStart --value docker 2>/dev/null; echo
elif [ -f /etc/default/docker ]; then
  echo "docker_opts $(. /etc/default/docker >/dev/null 2>&1; echo "$DOCKER_OPTS")"
fi""",
    parse_dockerd,
)
"""The root dockerd (``-O``: owned by the user the facts run as, root), its arguments and
open-files limit, and what the service manager starts it with. Shell builtins where they do
(``read``, ``ulimit``): five programs where it runs under systemd, a fork less each saved."""


@dataclass(frozen=True)
class DockerInfo:
    """What ``docker info`` says through the root socket (``reachable=False`` if it is down)."""

    reachable: bool
    containers: int = 0
    images: int = 0
    security_options: tuple[str, ...] = ()
    swarm_state: str = "inactive"
    server_version: str = ""
    containers_running: int = 0

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
        int(data.get("ContainersRunning") or 0),
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


GWBRIDGE_SECTION = "@@gwbridge"

DOCKER_INFO_COMMAND = (
    f"i=$(timeout 20 docker -H unix://{ROOT_SOCKET} info --format '{{{{json .}}}}') || exit $?\n"
    "printf '%s\\n' \"$i\"\n"
    f'case $i in *\'"LocalNodeState":"active"\'*) echo {GWBRIDGE_SECTION}\n'
    f"  timeout 20 docker -H unix://{ROOT_SOCKET} network inspect docker_gwbridge "
    "--format '{{json .Options}}' 2>/dev/null;; esac; true"
)
"""``docker info`` as JSON (exit status: docker's) and, only on a swarm node, the options of
its docker_gwbridge after a ``@@gwbridge`` line: one docker command in all on most hosts (each
costs the host ~15-30 ms of CPU, dockerd's share included). The combination checker reads
the same output (:data:`wizard.checks.HOST_DOCKER`), so it runs once per round trip."""

DOCKER_INFO = Fact("docker_info", DOCKER_INFO_COMMAND, parse_info)


WAIT_FOR_DOCKER = (
    f"timeout 30 sh -c 'until docker -H unix://{ROOT_SOCKET} version >/dev/null 2>&1; "
    "do sleep 0.5; done' || { echo 'dockerd did not come back within 30 seconds' >&2; exit 1; }"
)
"""Bounded wait until dockerd answers on its socket (the init script returns before that)."""

RESTART_DOCKERD = "restart dockerd"
"""The key of :func:`restart_dockerd`: the changeset restarts dockerd once, after the last step
that changed its configuration, however many steps asked for it."""


def restart_dockerd(manager: str) -> RunCommand:
    """Restart the root dockerd through the host's service manager and wait until it answers
    (undone by the same restart, run on the restored configuration)."""
    restart = restart_service_script(manager, "docker")
    script = f"{restart} >/dev/null\n{WAIT_FOR_DOCKER}"
    return RunCommand(
        script,
        why="restart dockerd so the new settings take effect, and wait until it answers",
        undo=script,
        undo_why="restart dockerd on the settings put back, and wait until it answers",
        timeout=120,
        key=RESTART_DOCKERD,
    )


def daemon_tcp_ports(state: FileState) -> list[int]:
    """TCP ports a daemon.json makes dockerd listen on (``hosts``; 2375 when a tcp:// address
    names no port). An unreadable file lists none."""
    config, _ = parse_daemon_json(state.text if state.exists else "")
    hosts = (config or {}).get("hosts", [])
    ports = []
    for host in hosts if isinstance(hosts, list) else []:
        if isinstance(host, str) and host.startswith("tcp://"):
            port = host.rsplit(":", 1)[-1]
            ports.append(int(port) if port.isdigit() else 2375)
    return ports
