"""Planning the rootful modes (``userns-remap``, ``rootful``): a hardened daemon.json merged
into the admin's own, dockremap's id ranges, and one restart of dockerd."""

from __future__ import annotations

from typing import Any

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.daemon_json import check_types, command_line_flags, dumps, flag_conflicts, parse
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Facts
from wizard.host.docker import (
    DAEMON_JSON,
    DAEMON_JSON_PATH,
    DOCKER_INFO,
    DOCKERD,
    restart_dockerd,
)
from wizard.host.subids import SUBGID, SUBUID, ensure_range
from wizard.plan import Plan
from wizard.steps.docker.answers import REMAP_USER, DockerEngineAnswers
from wizard.steps.docker.engines import enable_system_engine, remove_rootless_engines
from wizard.steps.docker.facts import SYSTEM_ENGINE


def hardened_settings(answers: DockerEngineAnswers, nofile_cap: int | None) -> dict[str, Any]:
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


def merged_config(
    current: dict[str, Any], answers: DockerEngineAnswers, nofile_cap: int | None
) -> dict[str, Any]:
    """The admin's other keys are kept; the keys this step manages are set from the answers."""
    merged = dict(current)
    merged.update(hardened_settings(answers, nofile_cap))
    if answers.log_driver not in {"json-file", "local"}:
        merged.pop("log-opts", None)
    if not answers.nofile_limit:
        merged.pop("default-ulimits", None)
    if answers.mode == "userns-remap":
        merged["userns-remap"] = "default"
    else:
        merged.pop("userns-remap", None)
    return merged


def current_config(answers: DockerEngineAnswers, state: FileState) -> dict[str, Any]:
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


def plan_rootful(step: str, answers: DockerEngineAnswers, facts: Facts) -> Plan:
    state = facts[DAEMON_JSON]
    dockerd = facts[DOCKERD]
    info = facts[DOCKER_INFO]
    current = current_config(answers, state)
    merged = merged_config(current, answers, dockerd.nofile_hard)
    check(merged, dockerd.effective_args, info.swarm_state)

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
            write = ensure_range(ids, REMAP_USER)
            if write:
                actions.append(write)
        notes.append(
            "Root inside containers becomes an unprivileged id range of the dockremap user "
            "on the host. Bind-mounted host folders need matching ownership to be writable."
        )

    manager = facts[SERVICE_MANAGER]
    engine = facts[SYSTEM_ENGINE]
    actions += enable_system_engine(manager, engine)
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
        actions.append(restart_dockerd(manager))
    removal, removal_warnings = remove_rootless_engines(manager, engine)
    actions[:0] = removal
    warnings += removal_warnings
    return Plan(
        step,
        tuple(actions),
        before=(state, facts[SUBUID], facts[SUBGID], *engine.rootless_files),
        notes=tuple(notes) if actions else (),
        warnings=tuple(warnings) if actions else (),
    )


def check(config: dict[str, Any], args: tuple[str, ...], swarm_state: str) -> None:
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
