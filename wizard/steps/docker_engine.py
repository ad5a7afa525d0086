"""Step: the Docker engine's mode and a hardened daemon.json.

Modes:

* ``userns-remap`` (rootful, recommended for servers): root in a container maps to an unprivileged
  range of ``dockremap`` on the host, so a container escape does not give host root.
* ``rootless``: dockerd itself runs as an ordinary user; nothing Docker does runs as host root.
* ``rootful``: the classic mode; containers' root is host root (hardened settings still apply).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.answers import check_fields, describe
from wizard.daemon_json import (
    check_types,
    command_line_flags,
    dumps,
    flag_conflicts,
    parse,
)
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact, restart_service_script
from wizard.plan import Plan
from wizard.steps.base import Status, StepStatus
from wizard.steps.docker_facts import (
    DAEMON_JSON,
    DAEMON_JSON_PATH,
    DOCKER_INFO,
    DOCKERD,
    ROOT_SOCKET,
    SUBGID,
    SUBUID,
    account_fact,
    parse_id_ranges,
    rootless_fact,
)
from wizard.transport.base import Transport

Mode = Literal["userns-remap", "rootless", "rootful"]
REMAP_USER = "dockremap"
ID_RANGE = 65536
FIRST_SUBORDINATE_ID = 100000


@dataclass(frozen=True)
class DockerEngineAnswers:
    mode: Mode = field(
        default="userns-remap",
        metadata=describe(
            "Engine mode",
            "userns-remap: root in containers is an unprivileged user on the host (recommended). "
            "rootless: the whole engine runs as one ordinary user. "
            "rootful: classic Docker, container root is host root.",
        ),
    )
    rootless_user: str = field(
        default="",
        metadata=describe(
            "Rootless user",
            "The existing Linux user who will own and run the rootless engine.",
            kind="user",
            show_if=("mode", "rootless"),
        ),
    )
    icc: bool = field(
        default=False,
        metadata=describe(
            "Inter-container traffic on the default bridge",
            "false stops containers on docker0 from reaching each other unless linked; "
            "containers on your own networks still talk.",
        ),
    )
    log_driver: Literal["json-file", "local", "journald", "syslog"] = field(
        default="json-file",
        metadata=describe("Log driver", "Where container logs go. json-file keeps them on disk."),
    )
    log_max_size: str = field(
        default="10m",
        metadata=describe("Log file size", "Rotate a container's log at this size.", kind="size"),
    )
    log_max_file: int = field(
        default=5, metadata=describe("Log files kept", "How many rotated log files to keep.")
    )
    userland_proxy: bool = field(
        default=False,
        metadata=describe(
            "Userland proxy",
            "false lets iptables forward published ports (faster, one process fewer per port).",
        ),
    )
    no_new_privileges: bool = field(
        default=True,
        metadata=describe(
            "No new privileges",
            "Containers cannot gain privileges through setuid binaries such as sudo.",
        ),
    )
    live_restore: bool = field(
        default=True,
        metadata=describe(
            "Live restore",
            "Containers keep running while dockerd restarts or upgrades. Not possible in a swarm.",
        ),
    )
    nofile_limit: int = field(
        default=64000,
        metadata=describe(
            "Open files per container",
            "default-ulimits nofile for containers; 0 keeps Docker's default. Capped at what "
            "dockerd itself may grant.",
        ),
    )
    replace_invalid_config: bool = field(
        default=False,
        metadata=describe(
            "Replace an unreadable daemon.json",
            "If the host's daemon.json is not valid JSON, replace it (the old one is kept in the "
            "snapshot). Off: stop and explain instead.",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "docker")  # answers made in code are checked like typed ones


def _hardened_settings(answers: DockerEngineAnswers, nofile_cap: int | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "icc": answers.icc,
        "log-driver": answers.log_driver,
        "userland-proxy": answers.userland_proxy,
        "no-new-privileges": answers.no_new_privileges,
        "live-restore": answers.live_restore,
    }
    if answers.log_driver in {"json-file", "local"}:
        settings["log-opts"] = {
            "max-size": answers.log_max_size,
            "max-file": str(answers.log_max_file),
        }
    limit = answers.nofile_limit
    if limit and nofile_cap:
        limit = min(limit, nofile_cap)
    if limit:
        settings["default-ulimits"] = {"nofile": {"Name": "nofile", "Hard": limit, "Soft": limit}}
    return settings


def _merged_config(
    current: dict[str, Any], answers: DockerEngineAnswers, nofile_cap: int | None
) -> dict[str, Any]:
    """The admin's other keys are kept; the keys this step manages are set from the answers."""
    merged = dict(current)
    merged.update(_hardened_settings(answers, nofile_cap))
    if answers.log_driver not in {"json-file", "local"}:
        merged.pop("log-opts", None)
    if not answers.nofile_limit:
        merged.pop("default-ulimits", None)
    if answers.mode == "userns-remap":
        merged["userns-remap"] = "default"
    else:
        merged.pop("userns-remap", None)
    return merged


def _free_range(entries: list[tuple[str, int, int]]) -> int:
    """The first 65536-aligned subordinate range above 100000 that overlaps nobody's."""
    start = FIRST_SUBORDINATE_ID
    while any(s < start + ID_RANGE and start < s + n for _, s, n in entries):
        start += ID_RANGE
    return start


def _ensure_range(state: FileState, user: str) -> WriteFile | None:
    entries = parse_id_ranges(state.content)
    if any(name == user and count >= ID_RANGE for name, _, count in entries):
        return None
    start = _free_range(entries)
    content = state.content
    if content and not content.endswith(b"\n"):
        content += b"\n"
    content += f"{user}:{start}:{ID_RANGE}\n".encode()
    return WriteFile(
        state.path,
        content,
        state.mode if state.exists else 0o644,
        why=f"give {user} its own range of {ID_RANGE} subordinate ids",
    )


class DockerEngineStep:
    name = "docker"
    title = "Docker engine"
    explanation = (
        "Chooses how the Docker engine isolates containers from the host and writes a hardened "
        "/etc/docker/daemon.json. By default a process that breaks out of a container is root on "
        "the host; user-namespace remapping or rootless mode removes that. The hardened settings "
        "stop containers on the default bridge from talking to each other, rotate logs so a noisy "
        "container cannot fill the disk, forbid privilege gain through setuid binaries, and keep "
        "containers running across daemon restarts. Skipping this leaves Docker's defaults, "
        "which favour convenience over safety."
    )
    answers_type = DockerEngineAnswers

    def facts(self, answers: DockerEngineAnswers) -> list[Fact[Any]]:
        facts: list[Fact[Any]] = [
            DAEMON_JSON, DOCKERD, DOCKER_INFO, SERVICE_MANAGER, SUBUID, SUBGID,
            account_fact(REMAP_USER),
        ]  # fmt: skip
        if answers.mode == "rootless" and answers.rootless_user:
            from wizard.steps.docker_rootless import service_paths

            user = answers.rootless_user
            facts += [account_fact(user), rootless_fact(user)]
            facts += [file_fact(path) for path in service_paths(user)]
        return facts

    # ---- planning ---------------------------------------------------------------------

    def plan(self, answers: DockerEngineAnswers, facts: Facts) -> Plan:
        if answers.mode == "rootless":
            from wizard.steps.docker_rootless import plan_rootless

            return plan_rootless(self.name, answers, facts)
        return self._plan_rootful(answers, facts)

    def _current_config(self, answers: DockerEngineAnswers, state: FileState) -> dict[str, Any]:
        current, reason = parse(state.text)
        if current is not None:
            return current
        if answers.replace_invalid_config:
            return {}
        raise PlanConflict(
            f"{DAEMON_JSON_PATH} on the host is not valid JSON ({reason}). dockerd cannot be "
            "reading it as it is, and hostwiz will not guess what was meant.",
            "Fix the file by hand (hostwiz lab shell, or the VM console), or set "
            "docker.replace_invalid_config = true to replace it; the old file is kept in the "
            "snapshot either way.",
        )

    def _plan_rootful(self, answers: DockerEngineAnswers, facts: Facts) -> Plan:
        state = facts[DAEMON_JSON]
        dockerd = facts[DOCKERD]
        info = facts[DOCKER_INFO]
        current = self._current_config(answers, state)
        merged = _merged_config(current, answers, dockerd.nofile_hard)
        self._check(merged, dockerd.effective_args, info.swarm_state)

        warnings: list[str] = []
        notes: list[str] = []
        actions: list[Action] = []
        remap_before = current.get("userns-remap")
        remap_after = merged.get("userns-remap")
        if remap_before != remap_after and (info.containers or info.images):
            warnings.append(
                f"Switching user-namespace remapping {'on' if remap_after else 'off'} gives "
                f"Docker a separate storage area: the {info.containers} existing container(s) "
                f"and {info.images} image(s) will seem to disappear (they are kept, and come "
                "back if you switch again). Re-pull or rebuild what you need."
            )
        cap = dockerd.nofile_hard
        if answers.nofile_limit and cap and answers.nofile_limit > cap:
            warnings.append(
                f"Containers may get at most {cap} open files here (dockerd's own hard limit), "
                f"so the limit is set to {cap} instead of {answers.nofile_limit}."
            )

        if remap_after:
            account = facts.get(f"account:{REMAP_USER}")
            if not account.exists:
                actions.append(
                    RunCommand(
                        f"useradd --system --no-create-home --shell /usr/sbin/nologin "
                        f"--user-group {REMAP_USER}",
                        why=f"create the unprivileged {REMAP_USER} user containers' root maps to",
                        touches=("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"),
                    )
                )
            for ids in (facts[SUBUID], facts[SUBGID]):
                write = _ensure_range(ids, REMAP_USER)
                if write:
                    actions.append(write)
            notes.append(
                "Root inside containers becomes an unprivileged id range of the dockremap user "
                "on the host. Bind-mounted host folders need matching ownership to be writable."
            )

        new_content = dumps(merged)
        config_changed = not state.exists or parse(state.text)[0] != merged
        if config_changed:
            if state.exists and parse(state.text)[0] is None:
                warnings.append(
                    f"The current {DAEMON_JSON_PATH} is not valid JSON and will be replaced "
                    "(the old file is kept in the snapshot)."
                )
            actions.append(
                WriteFile(
                    DAEMON_JSON_PATH,
                    new_content,
                    mode=state.mode if state.exists else 0o644,
                    owner=state.owner if state.exists else "root",
                    group=state.group if state.exists else "root",
                    why="hardened dockerd settings",
                )
            )
        if actions and (config_changed or not info.reachable):
            actions.append(self._restart(facts[SERVICE_MANAGER]))
        return Plan(
            self.name,
            tuple(actions),
            before=(state, facts[SUBUID], facts[SUBGID]),
            notes=tuple(notes) if actions else (),
            warnings=tuple(warnings) if actions else (),
        )

    @staticmethod
    def _restart(manager: str) -> RunCommand:
        restart = restart_service_script(manager, "docker")
        script = f"{restart} >/dev/null\n{WAIT_FOR_DOCKER}"
        return RunCommand(
            script,
            why="restart dockerd so the new settings take effect, and wait until it answers",
            undo=script,
            timeout=120,
        )

    @staticmethod
    def _check(config: dict[str, Any], args: tuple[str, ...], swarm_state: str) -> None:
        problems = check_types(config) + flag_conflicts(config, command_line_flags(args))
        if config.get("live-restore") and swarm_state == "active":
            problems_text = "live-restore cannot be used while this host is in a swarm"
            raise PlanConflict(
                f"{problems_text}: dockerd would refuse to start.",
                "Set docker.live_restore = false, or leave the swarm first.",
            )
        if problems:
            listed = "; ".join(problem.message for problem in problems)
            raise PlanConflict(
                f"dockerd would refuse this daemon.json: {listed}.",
                "Remove or correct those keys in /etc/docker/daemon.json on the host (or the "
                "matching flag in the service definition), then plan again.",
            )

    # ---- after apply ------------------------------------------------------------------

    def health(self, transport: Transport, answers: DockerEngineAnswers, facts: Facts) -> list[str]:
        if answers.mode == "rootless":
            from wizard.steps.docker_rootless import rootless_health

            return rootless_health(transport, answers)
        from wizard.docker_api import docker_client  # the SDK is only needed after an apply

        try:
            client = docker_client(transport, socket_path=ROOT_SOCKET)
            info = client.info()
            client.close()
        except Exception as error:  # the SDK raises many kinds; all mean "not answering"
            return [f"dockerd does not answer through its API: {error}"]
        options = info.get("SecurityOptions") or []
        has_userns = any(str(opt).startswith("name=userns") for opt in options)
        if answers.mode == "userns-remap" and not has_userns:
            return ["dockerd runs, but without user-namespace remapping"]
        if answers.mode == "rootful" and has_userns:
            return ["dockerd still remaps user namespaces"]
        return []

    def status(self, answers: DockerEngineAnswers, facts: Facts) -> StepStatus:
        info = facts[DOCKER_INFO]
        try:
            plan = self.plan(answers, facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        if plan.empty:
            return StepStatus(Status.DONE, f"{answers.mode}, hardened daemon.json in place")
        if not facts[DAEMON_JSON].exists and not info.userns:
            return StepStatus(Status.NOT_DONE, "Docker runs with its defaults")
        return StepStatus(Status.DRIFTED, f"{len(plan.actions)} change(s) from the chosen settings")


WAIT_FOR_DOCKER = (
    f"timeout 30 sh -c 'until docker -H unix://{ROOT_SOCKET} version >/dev/null 2>&1; "
    "do sleep 0.5; done' || { echo 'dockerd did not come back within 30 seconds' >&2; exit 1; }"
)
"""Bounded wait until dockerd answers on its socket (the init script returns before that)."""

DOCKER_ENGINE = DockerEngineStep()
