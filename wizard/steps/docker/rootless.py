"""Rootless mode of the Docker engine step: dockerd runs as one ordinary user.

What rootless cannot do (told to the admin with the plan): publish ports below 1024 (unless
``net.ipv4.ip_unprivileged_port_start`` is lowered), limit containers' CPU and memory without
systemd and cgroup v2, join a swarm or use overlay networks, use AppArmor, or show clients'
real source addresses on published ports; networking goes through slirp4netns and is slower.

Nothing is written, as root, under the user's home: the user controls it, and a link planted
there (``~/.config/docker -> /etc/docker``) would make root write, and hand to the user, its own
configuration. The engine's settings are root's file ``/etc/docker/rootless-USER.json`` (passed
with ``--config-file``), its systemd unit is in ``/etc/systemd/user``, and the user's own files
are only read, as the user. What the engine needs from the kernel and the host (a usable
``/dev/net/tun``, setuid id mappers, user namespaces) is read as facts and explained before
anything changes.
"""

from __future__ import annotations

from typing import Any

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.daemon_json import dumps, parse
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Facts, file_fact
from wizard.host.docker import DOCKER_INFO, DOCKERD
from wizard.host.subids import SUBGID, SUBUID, ensure_range
from wizard.plan import Plan
from wizard.steps.docker.answers import DockerEngineAnswers
from wizard.steps.docker.engines import stop_system_engine
from wizard.steps.docker.facts import LINGER_MARK, SYSTEM_ENGINE, Account, RootlessTools
from wizard.steps.docker.plan import hardened_settings
from wizard.transport.base import Transport

LIMITS = (
    "Rootless Docker cannot publish ports below 1024, limit containers' CPU or memory without "
    "systemd and cgroup v2, take part in a swarm, or show clients' real addresses to published "
    "services; its networking (slirp4netns) is slower than rootful Docker's."
)


def service_name(user: str) -> str:
    return f"docker-rootless-{user}"


def socket_path(uid: int) -> str:
    return f"/run/user/{uid}/docker.sock"


def config_path(user: str) -> str:
    """The rootless engine's daemon.json: root's file, which the user can read but not change."""
    return f"/etc/docker/rootless-{user}.json"


def unit_path(user: str) -> str:
    """The systemd user unit (in the system-wide folder: nothing written in the user's home)."""
    return f"/etc/systemd/user/{service_name(user)}.service"


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
    {script} --config-file {config_path(account.name)}
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


def user_unit(user: str, script: str, linger_by_hostwiz: bool = False) -> str:
    """The systemd user unit; ``linger_by_hostwiz``: it records that hostwiz turned on the
    user's lingering for it, so that a rootful mode turns it off again (and only then)."""
    mark = (
        f"{LINGER_MARK.decode()}{user} (loginctl enable-linger) to start this engine at\n"
        "# boot; a rootful mode of hostwiz's Docker engine step turns it off again.\n"
        if linger_by_hostwiz
        else ""
    )
    return f"""{mark}[Unit]
Description=Rootless Docker engine of {user} (written by hostwiz)
ConditionUser={user}

[Service]
Environment=PATH={script.rsplit("/", 1)[0]}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
ExecStart={script} --config-file {config_path(user)}
Restart=on-failure
Delegate=yes
# As Docker's own rootless unit: dockerd tells systemd when its API is up, so `enable --now`
# returns once the engine answers (with Type=simple the health check could come too early).
Type=notify
NotifyAccess=all
TimeoutStartSec=90
KillMode=mixed

[Install]
WantedBy=default.target
"""


def profile_snippet(account: Account) -> str:
    return f"""# Written by hostwiz: {account.name} talks to their own rootless Docker engine.
if [ "$(id -u)" = "{account.uid}" ]; then
  export DOCKER_HOST=unix://{socket_path(account.uid)}
fi
"""


def _rootless_config(
    current: FileState, own: bytes | None, answers: DockerEngineAnswers
) -> tuple[dict[str, Any], str]:
    """The engine's settings, and a note when the user's own daemon.json was carried over.

    hostwiz's file is the base once it exists; the first time, the user's own
    ~/.config/docker/daemon.json is (its other keys, such as data-root, keep working).
    """
    note = ""
    if current.exists:
        config, reason = parse(current.text)
        if config is None:
            if not answers.replace_invalid_config:
                raise PlanConflict(
                    f"{current.path} is not valid JSON ({reason}).",
                    "Fix it by hand or set docker.replace_invalid_config = true.",
                )
            config = {}
    elif own is not None:
        config, reason = parse(own.decode("utf-8", "replace"))
        if config is None:
            config = {}
            note = (
                f"The user's own ~/.config/docker/daemon.json is not valid JSON ({reason}); "
                f"it is not read any more, and {current.path} starts from hostwiz's settings."
            )
        else:
            note = (
                f"The user's own ~/.config/docker/daemon.json is not read any more: its "
                f"settings are carried over into {current.path}, which hostwiz keeps."
            )
    else:
        config = {}
    merged = dict(config)
    settings = hardened_settings(answers, None)
    settings.pop("default-ulimits", None)  # a user cannot raise limits above its own
    settings.pop("live-restore", None)  # not supported in rootless mode
    merged.update(settings)
    merged.pop("userns-remap", None)
    return merged, note


def _check_prerequisites(user: str, account: Account, tools: RootlessTools, manager: str) -> None:
    """Refuse, before any change, what would only fail once dockerd-rootless.sh runs."""
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
    blockers = tools.blockers(user, manager)
    if blockers:
        raise PlanConflict(
            f"{user}'s rootless Docker engine could not start here: "
            + "; ".join(problem for problem, _ in blockers)
            + ".",
            "On the host: "
            + "; ".join(fix for _, fix in blockers)
            + ". Then plan again (hostwiz does not change these itself), or choose the "
            "userns-remap mode, which needs none of it.",
        )


def _start_stop(manager: str, user: str, tools: RootlessTools) -> tuple[str, str, str]:
    """(start command, its undo, a note on starting at boot) for the service manager."""
    name = service_name(user)
    if manager == "systemd":
        start = (
            f"loginctl enable-linger {user} && "
            f"systemctl --user -M {user}@ daemon-reload && "
            f"systemctl --user -M {user}@ enable --now {name}"
        )
        stop = f"systemctl --user -M {user}@ disable --now {name} || true"
        if tools.linger:
            return start, stop, ""
        note = (
            f"hostwiz turns on lingering for {user} (loginctl enable-linger): their systemd "
            "starts at boot, and with it the engine, without anyone logging in. A rootful "
            "mode chosen later turns it off again."
        )
        return start, f"{stop}\nloginctl disable-linger {user} || true", note
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
    note = (
        ""
        if tools.update_rc
        else f"The host has no update-rc.d, so the engine starts now but not by itself after a "
        f"reboot: add /etc/init.d/{name} start to the host's boot scripts."
    )
    return start, stop, note


def plan_rootless(step: str, answers: DockerEngineAnswers, facts: Facts) -> Plan:

    user = answers.rootless_user
    if not user:
        raise PlanConflict(
            "rootless mode needs the user who will run Docker.",
            "Set docker.rootless_user to an existing user, e.g. admin.",
        )
    account: Account = facts.get(f"account:{user}")
    tools: RootlessTools = facts.get(f"rootless:{user}")
    manager: str = facts[SERVICE_MANAGER]
    _check_prerequisites(user, account, tools, manager)
    stop_system, warnings = stop_system_engine(
        manager, facts[SYSTEM_ENGINE], facts[DOCKERD], facts[DOCKER_INFO],
        answers.stop_system_engine,
    )  # fmt: skip

    actions: list[Action] = []
    for ids in (facts[SUBUID], facts[SUBGID]):
        write = ensure_range(ids, user)
        if write:
            actions.append(write)
    profile, init, config_file, unit = (facts[file_fact(path)] for path in service_paths(user))
    config, config_note = _rootless_config(config_file, tools.own_config, answers)
    wanted: list[WriteFile] = []
    if not config_file.exists or parse(config_file.text)[0] != config:
        wanted.append(
            WriteFile(config_file.path, dumps(config), 0o644,
                      why=f"hardened settings for {user}'s rootless engine (root's file: "
                      f"{user}'s engine reads it, {user} cannot change it)")
        )  # fmt: skip
    wanted.append(
        WriteFile(profile.path, profile_snippet(account).encode(), 0o644,
                  why=f"point {user}'s docker client at their own engine (DOCKER_HOST)"),
    )  # fmt: skip
    if manager == "systemd":
        # Lingering is hostwiz's when it turns it on now, or turned it on before (the unit says).
        ours = not tools.linger or (unit.exists and LINGER_MARK in unit.content)
        wanted.append(
            WriteFile(unit.path, user_unit(user, tools.script, ours).encode(), 0o644,
                      why=f"a systemd user service for {user}'s rootless engine")
        )  # fmt: skip
    else:
        wanted.append(
            WriteFile(init.path, init_script(account, tools.script).encode(), 0o755,
                      why="an init script that starts the rootless engine at boot")
        )  # fmt: skip
    before = (facts[SUBUID], facts[SUBGID], profile, init, config_file, unit)
    for write in wanted:
        current = next(state for state in before if state.path == write.path)
        if write.path == config_file.path or not _same(current, write):
            actions.append(write)
    start, stop, boot_note = _start_stop(manager, user, tools)
    if actions or not tools.running:
        actions.append(
            RunCommand(start, why=f"start {user}'s rootless engine (and at every boot)", undo=stop)
        )
    # The system engine stops first (Docker's guide), before the rootless one starts.
    actions[:0] = stop_system
    notes = tuple(note for note in (LIMITS, config_note, boot_note) if note)
    return Plan(
        step,
        tuple(actions),
        before=before,
        notes=notes if actions else (),
        warnings=tuple(warnings),
    )


def service_paths(user: str) -> tuple[str, str, str, str]:
    """Files of the rootless service (none in the user's home), read as facts: the profile
    snippet, the init script, the engine's daemon.json and the systemd user unit."""
    return (
        f"/etc/profile.d/hostwiz-docker-rootless-{user}.sh",
        f"/etc/init.d/{service_name(user)}",
        config_path(user),
        unit_path(user),
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
