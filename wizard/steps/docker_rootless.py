"""Rootless mode of the Docker engine step: dockerd runs as one ordinary user.

What rootless cannot do (told to the admin with the plan): publish ports below 1024 (unless
``net.ipv4.ip_unprivileged_port_start`` is lowered), limit containers' CPU and memory without
systemd and cgroup v2, join a swarm or use overlay networks, use AppArmor, or show clients'
real source addresses on published ports; networking goes through slirp4netns and is slower.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.daemon_json import dumps, parse
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Facts, file_fact
from wizard.plan import Plan
from wizard.steps.docker_facts import SUBGID, SUBUID, Account, RootlessTools
from wizard.transport.base import Transport

if TYPE_CHECKING:
    from wizard.steps.docker_engine import DockerEngineAnswers

LIMITS = (
    "Rootless Docker cannot publish ports below 1024, limit containers' CPU or memory without "
    "systemd and cgroup v2, take part in a swarm, or show clients' real addresses to published "
    "services; its networking (slirp4netns) is slower than rootful Docker's."
)


def service_name(user: str) -> str:
    return f"docker-rootless-{user}"


def socket_path(uid: int) -> str:
    return f"/run/user/{uid}/docker.sock"


def init_script(account: Account, script: str) -> str:
    """A SysV init script starting dockerd-rootless.sh as the user (hosts without systemd)."""
    name = service_name(account.name)
    rundir = f"/run/user/{account.uid}"
    return f"""#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs $network
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Rootless Docker engine of {account.name} (written by hostwiz)
### END INIT INFO
PIDFILE=/run/{name}.pid
LOG=/var/log/{name}.log
SOCK={rundir}/docker.sock

start() {{
  mkdir -p {rundir} && chown {account.uid}:{account.gid} {rundir} && chmod 700 {rundir}
  start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$PIDFILE" \\
    --chuid {account.name} --output "$LOG" --exec /usr/bin/env -- \\
    HOME={account.home} XDG_RUNTIME_DIR={rundir} \\
    PATH={script.rsplit("/", 1)[0]}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \\
    {script}
  i=0
  while [ $i -lt 60 ]; do
    [ -S "$SOCK" ] && return 0
    i=$((i + 1)); sleep 0.5
  done
  echo "rootless dockerd of {account.name} did not start; see $LOG" >&2
  return 1
}}

stop() {{
  start-stop-daemon --stop --quiet --pidfile "$PIDFILE" --retry TERM/15/KILL/5 || true
  rm -f "$PIDFILE"
}}

case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) start-stop-daemon --status --pidfile "$PIDFILE" ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
"""


def user_unit(script: str) -> str:
    return f"""[Unit]
Description=Rootless Docker engine (written by hostwiz)

[Service]
Environment=PATH={script.rsplit("/", 1)[0]}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
ExecStart={script}
Restart=on-failure
Delegate=yes
Type=simple

[Install]
WantedBy=default.target
"""


def profile_snippet(account: Account) -> str:
    return f"""# Written by hostwiz: {account.name} talks to their own rootless Docker engine.
if [ "$(id -u)" = "{account.uid}" ]; then
  export DOCKER_HOST=unix://{socket_path(account.uid)}
fi
"""


def _rootless_config(current: FileState, answers: DockerEngineAnswers) -> dict[str, Any]:
    from wizard.steps.docker_engine import _hardened_settings

    config, reason = parse(current.text) if current.exists else ({}, "")
    if config is None:
        if not answers.replace_invalid_config:
            raise PlanConflict(
                f"{current.path} is not valid JSON ({reason}).",
                "Fix it by hand or set docker.replace_invalid_config = true.",
            )
        config = {}
    merged = dict(config)
    settings = _hardened_settings(answers, None)
    settings.pop("default-ulimits", None)  # a user cannot raise limits above its own
    settings.pop("live-restore", None)  # not supported in rootless mode
    merged.update(settings)
    merged.pop("userns-remap", None)
    return merged


def plan_rootless(step: str, answers: DockerEngineAnswers, facts: Facts) -> Plan:
    from wizard.steps.docker_engine import _ensure_range

    user = answers.rootless_user
    if not user:
        raise PlanConflict(
            "rootless mode needs the user who will run Docker.",
            "Set docker.rootless_user to an existing user, e.g. admin.",
        )
    account: Account = facts.get(f"account:{user}")
    tools: RootlessTools = facts.get(f"rootless:{user}")
    if not account.exists:
        raise PlanConflict(
            f"there is no user {user!r} on the host.",
            "Create the user first (adduser NAME), or choose an existing one.",
        )
    if account.uid == 0:
        raise PlanConflict("rootless mode cannot run as root.", "Choose an ordinary user.")
    missing = tools.missing()
    if missing:
        raise PlanConflict(
            "rootless Docker needs " + "; ".join(missing) + ", and the host lacks it.",
            "Install what is listed (e.g. apt install uidmap slirp4netns rootlesskit), then plan "
            "again, or choose the userns-remap mode, which needs none of it.",
        )

    actions: list[Action] = []
    for ids in (facts[SUBUID], facts[SUBGID]):
        write = _ensure_range(ids, user)
        if write:
            actions.append(write)
    config = _rootless_config(tools.user_config, answers)
    if not tools.user_config.exists or parse(tools.user_config.text)[0] != config:
        config_dir = tools.user_config.path.rsplit("/", 1)[0]
        actions.append(
            RunCommand(
                f"install -d -o {account.uid} -g {account.gid} -m 0700 "
                f"{config_dir.rsplit('/', 1)[0]} {config_dir}",
                why=f"create {config_dir} owned by {user}",
            )
        )
        actions.append(
            WriteFile(
                tools.user_config.path, dumps(config), 0o644, user, account.group,
                why=f"hardened settings for {user}'s rootless engine",
            )
        )  # fmt: skip
    manager: str = facts[SERVICE_MANAGER]
    profile_path, init_path = service_paths(user)
    service_files: list[WriteFile] = [
        WriteFile(profile_path, profile_snippet(account).encode(), 0o644,
                  why=f"point {user}'s docker client at their own engine (DOCKER_HOST)"),
    ]  # fmt: skip
    name = service_name(user)
    if manager == "systemd":
        unit = tools.user_unit.path
        unit_file = WriteFile(unit, user_unit(tools.script).encode(), 0o644, user, account.group,
                              why="a systemd user service for the rootless engine")  # fmt: skip
        if not _same(tools.user_unit, unit_file):
            # The user's own systemd enables the unit by linking it in there: folders that
            # writing the file would create as root would make `enable` fail.
            unit_dir = unit.rsplit("/", 1)[0]
            actions.append(
                RunCommand(
                    f"install -d -o {account.uid} -g {account.gid} -m 0755 "
                    f"{unit_dir.rsplit('/', 1)[0]} {unit_dir}",
                    why=f"create {unit_dir} owned by {user}",
                )
            )
        service_files.append(unit_file)
        start = (
            f"loginctl enable-linger {user} && "
            f"systemctl --user -M {user}@ daemon-reload && "
            f"systemctl --user -M {user}@ enable --now docker"
        )
        stop = f"systemctl --user -M {user}@ disable --now docker || true"
    else:
        service_files.append(
            WriteFile(init_path, init_script(account, tools.script).encode(), 0o755,
                      why="an init script that starts the rootless engine at boot")
        )  # fmt: skip
        start = (
            f"(command -v update-rc.d >/dev/null && update-rc.d {name} defaults >/dev/null "
            f"|| true) && /etc/init.d/{name} restart"
        )
        # Self-contained on purpose: on rollback the init script itself is already gone.
        stop = (
            f"start-stop-daemon --stop --quiet --pidfile /run/{name}.pid "
            f"--retry TERM/15/KILL/5 || true\nrm -f /run/{name}.pid\n"
            f"(command -v update-rc.d >/dev/null && update-rc.d -f {name} remove >/dev/null) "
            "|| true"
        )
    before = (facts[SUBUID], facts[SUBGID], tools.user_config, tools.user_unit,
              *(facts[file_fact(path)] for path in service_paths(user)))  # fmt: skip
    for write in service_files:
        current = next((state for state in before if state.path == write.path), None)
        if current is None or not _same(current, write):
            actions.append(write)
    if actions or not tools.running:
        actions.append(
            RunCommand(start, why=f"start {user}'s rootless engine (and at every boot)", undo=stop)
        )
    return Plan(
        step,
        tuple(actions),
        before=before,
        notes=(LIMITS,) if actions else (),
    )


def service_paths(user: str) -> tuple[str, str]:
    """Files of the rootless service outside the user's home, read as facts."""
    return (
        f"/etc/profile.d/hostwiz-docker-rootless-{user}.sh",
        f"/etc/init.d/{service_name(user)}",
    )


def _same(state: FileState, write: WriteFile) -> bool:
    return state.exists and state.content == write.content and state.mode == write.mode


def rootless_health(transport: Transport, answers: DockerEngineAnswers) -> list[str]:
    user = answers.rootless_user
    result = transport.run(f"id -u {user}")
    if not result.ok:
        return [f"user {user} vanished"]
    uid = int(result.out.strip())
    from wizard.docker_api import docker_client  # the SDK is only needed after an apply

    try:
        client = docker_client(transport, socket_path=socket_path(uid), run_as=user)
        info = client.info()
        client.close()
    except Exception as error:  # any SDK failure means the engine does not answer
        return [f"{user}'s rootless dockerd does not answer through its API: {error}"]
    options = info.get("SecurityOptions") or []
    if not any(str(opt).startswith("name=rootless") for opt in options):
        return [f"the engine at {socket_path(uid)} is not running rootless"]
    return []
