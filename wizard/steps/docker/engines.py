"""One Docker engine at a time: the system engine and hostwiz's rootless engines.

Choosing rootless mode does not by itself stop the system (rootful) dockerd: left running, it
keeps its defaults, root in its containers stays host root, and the audit lists it although the
step said "done". Docker's rootless guide therefore stops and disables it first
(``systemctl disable --now docker.service docker.socket``); the plan here does the same, on
init-script hosts through the init script and ``update-rc.d``, and its undo enables and starts
again exactly what ran or was enabled before.

Switching back to a rootful mode removes the rootless engine hostwiz made: its profile snippet
(which points the user's ``docker`` at it through DOCKER_HOST), its init script or user unit and
its daemon.json, after stopping it. A first-time admin who picks "rootful" expects one engine,
the hardened system one, answering ``docker``; a second engine left behind would keep taking the
user's ``docker`` commands (through DOCKER_HOST) and starting at boot, unseen by the audit. Its
images and containers (the user's ``~/.local/share/docker``) are kept, so choosing rootless again
brings them back; a rollback restores the files and starts the engine again. On systemd, the
user's lingering is turned off again when hostwiz turned it on for the engine (its unit records
that); lingering the admin turned on stays on, and the preview says so.
"""

from __future__ import annotations

from wizard.actions import Action, RemoveFile, RunCommand
from wizard.errors import PlanConflict
from wizard.host.docker import WAIT_FOR_DOCKER, DockerdProcess, DockerInfo
from wizard.steps.docker.facts import SystemEngine
from wizard.transport.base import shell_quote

SYSTEMD_UNITS = ("docker.service", "docker.socket")

WAIT_FOR_ROOT_DOCKERD_GONE = (
    "i=0; while [ $i -lt 60 ]; do gone=yes; for p in $(pidof dockerd); do "
    '[ "$(stat -c %u /proc/$p 2>/dev/null)" = 0 ] && gone=no; done; '
    '[ $gone = yes ] && break; i=$((i + 1)); sleep 0.5; done; [ "$gone" = yes ] '
    "|| { echo 'the system dockerd did not stop within 30 seconds' >&2; exit 1; }"
)
"""Bounded wait until no dockerd owned by root runs (a rootless one, the user's, may)."""


def system_engine_on(engine: SystemEngine, dockerd: DockerdProcess) -> bool:
    return dockerd.running or bool(engine.enabled) or bool(engine.active)


def stop_system_engine(
    manager: str,
    engine: SystemEngine,
    dockerd: DockerdProcess,
    info: DockerInfo,
    stop_containers: bool,
) -> tuple[list[Action], list[str]]:
    """(actions, warnings) that stop and disable the system dockerd for rootless mode.

    Containers running under it would stop with it: without ``stop_containers`` (the answer
    ``docker.stop_system_engine``) that is refused, before any change, with their number.
    """
    if not system_engine_on(engine, dockerd):
        return [], []
    running = info.containers_running
    if running and not stop_containers:
        raise PlanConflict(
            f"{running} container(s) are running under the system (root) Docker engine. "
            "Rootless mode stops and disables that engine so that only the rootless one runs, "
            "and those containers would stop with it.",
            "Stop them or move them to the rootless engine first (docker ps; docker stop NAME), "
            "or set docker.stop_system_engine = true to let them stop with the engine (a "
            "rollback starts it again).",
        )
    warnings = []
    if running:
        warnings.append(
            f"{running} container(s) running under the system Docker engine stop with it "
            "(docker.stop_system_engine is on). A rollback starts the engine again."
        )
    stop, start = _system_scripts(manager, engine, dockerd)
    action = RunCommand(
        stop,
        why="stop and disable the system (root) Docker engine, as Docker's rootless guide "
        "says: left running it keeps Docker's defaults and root in its containers stays host "
        "root, next to the rootless engine",
        undo=start,
        undo_why="enable and start the system Docker engine again, as it was",
        timeout=120,
    )
    return [action], warnings


def _system_scripts(manager: str, engine: SystemEngine, dockerd: DockerdProcess) -> tuple[str, str]:
    """(stop and disable, undo: enable and start what was enabled and running)."""
    if manager == "systemd":
        # One unit at a time: a host without docker.socket must not fail the other one.
        stop = (
            f"for u in {' '.join(SYSTEMD_UNITS)}; do "
            'systemctl disable --now "$u" >/dev/null 2>&1 || true; done\n'
            f"{WAIT_FOR_ROOT_DOCKERD_GONE}"
        )
        undo = []
        if engine.enabled:
            undo.append(f"systemctl enable {' '.join(engine.enabled)} >/dev/null 2>&1")
        was_active = set(engine.active) | ({"docker.service"} if dockerd.running else set())
        if was_active:
            undo.append("systemctl reset-failed docker.service 2>/dev/null")
            undo.append(f"systemctl start {' '.join(sorted(was_active, reverse=True))}")
        if "docker.service" in was_active:
            undo.append(WAIT_FOR_DOCKER)
        return stop, "\n".join(undo) or "true"
    stop = (
        "/etc/init.d/docker stop >/dev/null 2>&1 || true\n"
        "(command -v update-rc.d >/dev/null && update-rc.d docker disable >/dev/null 2>&1) "
        f"|| true\n{WAIT_FOR_ROOT_DOCKERD_GONE}"
    )
    undo = []
    if engine.enabled:
        undo.append("(command -v update-rc.d >/dev/null && update-rc.d docker enable "
                    ">/dev/null 2>&1) || true")  # fmt: skip
    if dockerd.running:
        undo.append(f"/etc/init.d/docker start >/dev/null\n{WAIT_FOR_DOCKER}")
    return stop, "\n".join(undo) or "true"


def remove_rootless_engines(manager: str, engine: SystemEngine) -> tuple[list[Action], list[str]]:
    """(actions, warnings) that stop and remove every rootless engine hostwiz made (a rootful
    mode was chosen); undone by restoring its files and starting it again."""
    actions: list[Action] = []
    warnings: list[str] = []
    for user in engine.rootless_users():
        stop, start = _rootless_scripts(manager, user)
        actions.append(
            RunCommand(stop, why=f"stop {user}'s rootless Docker engine (a rootful mode was "
                       "chosen: one engine, the system one, answers docker)",
                       undo=start, undo_why=f"start {user}'s rootless engine again",
                       timeout=120)
        )  # fmt: skip
        lingering = _lingering(manager, engine, user)
        if lingering and engine.linger_by_hostwiz(user):
            actions.append(_linger_off(user))
        for state in engine.files_of(user):
            actions.append(
                RemoveFile(state.path, why=f"{user}'s rootless engine is no longer used")
            )
        running = engine.running_under(user)
        stopping = (
            f"the {running} container(s) running under it stop"
            if running
            else "no container runs under it now"
        )
        warnings.append(
            f"{user}'s rootless Docker engine (made by hostwiz earlier) is stopped and removed, "
            f"with its init script or service, its settings and the DOCKER_HOST line that "
            f"pointed {user}'s docker at it; {stopping}. {_linger_words(engine, user, lingering)}"
            f"Its images and containers stay in ~{user}/.local/share/docker and come back if "
            "rootless mode is chosen again (or on rollback)."
        )
    return actions, warnings


def _lingering(manager: str, engine: SystemEngine, user: str) -> bool:
    return manager == "systemd" and user in engine.lingering


def _linger_words(engine: SystemEngine, user: str, lingering: bool) -> str:
    """What happens to ``user``'s lingering, for the preview ("" when it is off)."""
    if not lingering:
        return ""
    if engine.linger_by_hostwiz(user):
        return (
            f"hostwiz also turns off the lingering it turned on for that engine (loginctl "
            f"disable-linger {user}): {user}'s own systemd services no longer start at boot or "
            f"run while {user} is logged out, as before rootless mode. "
        )
    return (
        f"Lingering for {user} stays on (hostwiz has no record of turning it on; loginctl "
        f"disable-linger {user} turns it off). "
    )


def _linger_off(user: str) -> RunCommand:
    """Turn off the lingering hostwiz turned on for ``user``'s rootless engine (after the
    engine stopped: stopping it goes through the user's systemd, which lingering keeps up)."""
    quoted = shell_quote(user)
    return RunCommand(
        f"loginctl disable-linger {quoted} || true",
        why=f"turn off lingering for {user}, which hostwiz turned on for their rootless engine "
        f"({user}'s systemd no longer runs without a login)",
        undo=f"loginctl enable-linger {quoted}",
        undo_why=f"turn lingering for {user} on again (before their engine starts again)",
    )


def _rootless_scripts(manager: str, user: str) -> tuple[str, str]:
    """(stop and disable ``user``'s rootless engine, undo: enable and start it again). The
    undo runs after the files are restored, so the unit or init script is back by then."""
    name = f"docker-rootless-{user}"
    if manager == "systemd":
        stop = f"systemctl --user -M {user}@ disable --now {name} 2>/dev/null || true"
        start = (
            f"systemctl --user -M {user}@ daemon-reload && "
            f"systemctl --user -M {user}@ enable --now {name}"
        )
        return stop, start
    stop = (
        f"start-stop-daemon --stop --quiet --pidfile /run/{name}.pid "
        f"--retry TERM/15/KILL/5 || true\nrm -f /run/{name}.pid\n"
        f"(command -v update-rc.d >/dev/null && update-rc.d -f {name} remove >/dev/null) "
        "|| true"
    )
    start = (
        f"(command -v update-rc.d >/dev/null && update-rc.d {name} defaults >/dev/null "
        f"|| true) && /etc/init.d/{name} restart"
    )
    return stop, start


def enable_system_engine(manager: str, engine: SystemEngine) -> list[Action]:
    """Turn the system engine on at boot again, and start it, for a rootful mode (an earlier
    rootless apply disabled and stopped it). Started here, not only by the restart that
    follows: Debian's init script cannot ``restart`` a stopped dockerd (under ``set -e`` it
    exits on reading the pid file its ``stop`` removed). Undone by stopping and disabling it."""
    if not engine.installed or engine.enabled:
        return []
    if manager == "systemd":
        enable = (
            f"for u in {' '.join(SYSTEMD_UNITS)}; do "
            'systemctl enable "$u" >/dev/null 2>&1 || true; done\n'
            "systemctl reset-failed docker.service 2>/dev/null; systemctl start docker.service"
        )
    else:
        enable = "update-rc.d docker enable >/dev/null\n/etc/init.d/docker start >/dev/null"
    stop, _ = _system_scripts(manager, SystemEngine(), DockerdProcess(False))
    return [
        RunCommand(
            f"{enable}\n{WAIT_FOR_DOCKER}",
            why="turn the system Docker engine on again, now and at boot (rootless mode had "
            "turned it off)",
            undo=stop,
            undo_why="stop and disable the system Docker engine again, as it was",
            timeout=120,
        )
    ]
