"""One Docker engine at a time: rootless mode stops the system dockerd, rootful modes remove the
rootless engine hostwiz made (as tables: answers and facts -> plan)."""

from __future__ import annotations

import base64

import pytest

from tests.unit.docker_fixtures import ROOTLESS_READY, docker_facts, file_output, info_output
from wizard.actions import RemoveFile, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.render import as_text, render_plan
from wizard.steps.base import Status
from wizard.steps.docker import DOCKER_ENGINE, DockerEngineAnswers
from wizard.steps.docker.facts import parse_system_engine
from wizard.steps.docker.rootless import service_paths

ROOTLESS = DockerEngineAnswers(mode="rootless", rootless_user="alice")
NO_DOCKERD = {"dockerd": (0, "shell_nofile 1024\n")}
SYSTEMD_ON = "installed\nenabled docker.service\nactive docker.service\nenabled docker.socket\n"


def commands(plan):
    return [a for a in plan.actions if isinstance(a, RunCommand)]


def test_rootless_stops_and_disables_the_running_system_engine_first_and_undo_restarts_it():
    plan = DOCKER_ENGINE.plan(ROOTLESS, docker_facts(ROOTLESS, rootless=ROOTLESS_READY))
    stop = plan.actions[0]
    assert isinstance(stop, RunCommand)
    assert "/etc/init.d/docker stop" in stop.script
    assert "update-rc.d docker disable" in stop.script
    assert stop.undo and "update-rc.d docker enable" in stop.undo
    assert "/etc/init.d/docker start" in stop.undo
    assert "rootless engine (and at every boot)" in commands(plan)[-1].why  # started after
    shown = as_text(render_plan(plan))
    assert "stop and disable the system (root) Docker engine" in shown
    assert "root in its containers stays host root" in shown


def test_rootless_on_systemd_disables_the_service_and_its_socket():
    facts = docker_facts(
        ROOTLESS, rootless=ROOTLESS_READY, manager="systemd", system_engine=SYSTEMD_ON
    )
    stop = DOCKER_ENGINE.plan(ROOTLESS, facts).actions[0]
    assert isinstance(stop, RunCommand)
    assert "for u in docker.service docker.socket" in stop.script
    assert "systemctl disable --now" in stop.script
    assert stop.undo is not None
    assert "systemctl enable docker.service docker.socket" in stop.undo
    assert "systemctl start docker.service" in stop.undo


def test_a_stopped_but_enabled_system_engine_is_disabled_and_not_started_on_undo():
    facts = docker_facts(ROOTLESS, rootless=ROOTLESS_READY, extra=NO_DOCKERD)
    stop = DOCKER_ENGINE.plan(ROOTLESS, facts).actions[0]
    assert isinstance(stop, RunCommand) and "update-rc.d docker disable" in stop.script
    assert stop.undo is not None and "/etc/init.d/docker start" not in stop.undo


def test_running_containers_of_the_system_engine_are_refused_unless_the_admin_says_so():
    info = info_output(Containers=3, ContainersRunning=2)
    with pytest.raises(PlanConflict) as caught:
        DOCKER_ENGINE.plan(ROOTLESS, docker_facts(ROOTLESS, rootless=ROOTLESS_READY, info=info))
    assert "2 container(s) are running under the system" in caught.value.message
    assert "docker.stop_system_engine = true" in caught.value.hint
    status = DOCKER_ENGINE.status(ROOTLESS, docker_facts(ROOTLESS, rootless=ROOTLESS_READY,
                                                         info=info))  # fmt: skip
    assert status.status is Status.UNKNOWN  # never "done" while the root engine runs

    agreed = DockerEngineAnswers(mode="rootless", rootless_user="alice", stop_system_engine=True)
    plan = DOCKER_ENGINE.plan(agreed, docker_facts(agreed, rootless=ROOTLESS_READY, info=info))
    assert "/etc/init.d/docker stop" in commands(plan)[0].script
    assert any("2 container(s) running under the system" in w for w in plan.warnings)


def _applied_rootless_raw() -> dict[str, tuple[int, str]]:
    """The host after a rootless apply for alice: her files in place, her engine running, the
    system engine stopped and disabled."""
    first = DOCKER_ENGINE.plan(ROOTLESS, docker_facts(ROOTLESS, rootless=ROOTLESS_READY))
    raw: dict[str, tuple[int, str]] = dict(NO_DOCKERD)
    for path in service_paths("alice"):
        raw[f"file:{path}"] = (0, "MISSING\n")
    for action in first.actions:
        if isinstance(action, WriteFile):
            data = base64.b64encode(action.content).decode()
            raw[f"file:{action.path}"] = (0, f"{action.mode:o} root root\n{data}")
    raw["docker_info"] = (1, "")
    return raw


def test_after_a_rootless_apply_the_plan_is_empty_and_the_step_done():
    raw = _applied_rootless_raw()
    facts = docker_facts(
        ROOTLESS, rootless=ROOTLESS_READY + "running yes\n", system_engine="installed\n",
        subuid=base64.b64decode(raw["file:/etc/subuid"][1].split("\n")[1]),
        subgid=base64.b64decode(raw["file:/etc/subgid"][1].split("\n")[1]), extra=raw,
    )  # fmt: skip
    assert DOCKER_ENGINE.plan(ROOTLESS, facts).empty
    assert DOCKER_ENGINE.status(ROOTLESS, facts).status is Status.DONE
    # ... but not while the system engine still starts at boot
    enabled = docker_facts(
        ROOTLESS, rootless=ROOTLESS_READY + "running yes\n",
        subuid=base64.b64decode(raw["file:/etc/subuid"][1].split("\n")[1]),
        subgid=base64.b64decode(raw["file:/etc/subgid"][1].split("\n")[1]), extra=raw,
    )  # fmt: skip
    assert DOCKER_ENGINE.status(ROOTLESS, enabled).status is not Status.DONE


def _engine_output(
    manager_files: dict[str, bytes], head: str = "installed\nenabled /etc/rc2.d/S01docker\n"
) -> str:
    parts = [head]
    for path, content in manager_files.items():
        mode = "755" if "/init.d/" in path else "644"
        parts.append(f"@@file {path}\n{mode} root root 0 0\n{base64.b64encode(content).decode()}\n")
    return "".join(parts)


ALICE_FILES = {
    "/etc/profile.d/hostwiz-docker-rootless-alice.sh": b"# Written by hostwiz: alice ...\n",
    "/etc/init.d/docker-rootless-alice": b"#!/bin/sh\n# Rootless Docker engine of alice "
    b"(written by hostwiz)\n",
    "/etc/docker/rootless-alice.json": b'{"icc": false}\n',
}


def test_rootful_stops_and_removes_the_rootless_engine_hostwiz_made():
    hardened = DockerEngineAnswers()
    facts = docker_facts(hardened, system_engine=_engine_output(ALICE_FILES))
    plan = DOCKER_ENGINE.plan(hardened, facts)
    stop = plan.actions[0]
    assert isinstance(stop, RunCommand)
    assert "--pidfile /run/docker-rootless-alice.pid" in stop.script
    assert "update-rc.d -f docker-rootless-alice remove" in stop.script
    assert stop.undo and "/etc/init.d/docker-rootless-alice restart" in stop.undo
    removed = {a.path for a in plan.actions if isinstance(a, RemoveFile)}
    assert removed == set(ALICE_FILES)
    assert plan.before_of("/etc/docker/rootless-alice.json").exists  # restored on rollback
    assert any("alice's rootless Docker engine" in w and ".local/share/docker" in w
               for w in plan.warnings)  # fmt: skip
    shown = as_text(render_plan(plan))
    assert "remove: /etc/profile.d/hostwiz-docker-rootless-alice.sh" in shown
    assert "at boot again" not in shown  # the system engine is enabled already


def test_rootful_says_how_many_containers_stop_with_the_rootless_engine():
    hardened = DockerEngineAnswers()
    head = "installed\nenabled /etc/rc2.d/S01docker\nrootless-running alice 3\n"
    facts = docker_facts(hardened, system_engine=_engine_output(ALICE_FILES, head))
    (warning,) = [w for w in DOCKER_ENGINE.plan(hardened, facts).warnings if "alice's" in w]
    assert "the 3 container(s) running under it stop" in warning
    idle = docker_facts(hardened, system_engine=_engine_output(ALICE_FILES))
    (warning,) = [w for w in DOCKER_ENGINE.plan(hardened, idle).warnings if "alice's" in w]
    assert "no container runs under it now" in warning


def test_rootful_on_systemd_disables_the_user_unit_and_undo_enables_it():
    hardened = DockerEngineAnswers()
    unit = {
        "/etc/systemd/user/docker-rootless-alice.service": b"[Unit]\nDescription=Rootless Docker engine of alice (written by hostwiz)\n"
    }
    facts = docker_facts(hardened, manager="systemd", system_engine=_engine_output(
        unit, SYSTEMD_ON))  # fmt: skip
    stop = DOCKER_ENGINE.plan(hardened, facts).actions[0]
    assert isinstance(stop, RunCommand)
    assert "systemctl --user -M alice@ disable --now docker-rootless-alice" in stop.script
    assert stop.undo and "enable --now docker-rootless-alice" in stop.undo


def test_a_rootless_looking_file_hostwiz_did_not_write_is_left_alone():
    hardened = DockerEngineAnswers()
    theirs = {"/etc/init.d/docker-rootless-bob": b"#!/bin/sh\n# bob's own\n",
              "/etc/docker/rootless-bob.json": b"{}\n"}  # fmt: skip
    plan = DOCKER_ENGINE.plan(
        hardened, docker_facts(hardened, system_engine=_engine_output(theirs))
    )
    assert not any(isinstance(a, RemoveFile) for a in plan.actions)
    assert not any("bob" in (a.script if isinstance(a, RunCommand) else "") for a in plan.actions)


def test_rootful_turns_the_system_engine_on_at_boot_again_and_restarts_it():
    hardened = DockerEngineAnswers()
    facts = docker_facts(hardened, system_engine="installed\n", info=(1, ""), extra=NO_DOCKERD)
    plan = DOCKER_ENGINE.plan(hardened, facts)
    enable = next(a for a in commands(plan) if "update-rc.d docker enable" in a.script)
    assert enable.undo and "update-rc.d docker disable" in enable.undo
    assert "/etc/init.d/docker restart" in commands(plan)[-1].script
    # not installed at all: nothing to turn on
    bare = docker_facts(hardened, system_engine="", info=(1, ""), extra=NO_DOCKERD)
    assert not any("enable" in a.script for a in commands(DOCKER_ENGINE.plan(hardened, bare)))


def test_the_system_engine_fact_reads_units_links_and_files():
    out = (
        "installed\nenabled /etc/rc2.d/S01docker\n"
        "@@file /etc/docker/rootless-alice.json\n600 root root 0 0\n"
        + base64.b64encode(b"{}\n").decode()
        + "\n@@file /etc/init.d/docker-rootless-x\n\n"
    )
    engine = parse_system_engine(0, "rootless-running alice 2\nrootless-running bob x\n" + out)
    assert engine.installed and engine.enabled == ("/etc/rc2.d/S01docker",)
    assert engine.running_under("alice") == 2 and engine.running_under("bob") == 0
    assert [(s.path, s.mode, s.content) for s in engine.rootless_files] == [
        ("/etc/docker/rootless-alice.json", 0o600, b"{}\n")
    ]
    assert engine.rootless_users() == ()  # a daemon.json alone is not hostwiz's engine


# ---- lingering: hostwiz turns it on for a rootless engine (systemd), and off again -------------

ALICE_UNIT = "/etc/systemd/user/docker-rootless-alice.service"
SYSTEMD_ROOTLESS = DockerEngineAnswers(mode="rootless", rootless_user="alice")


def _rootless_unit(rootless: str, unit: bytes | None = None) -> bytes:
    """The unit a rootless apply for alice writes on a systemd host (None: it is unchanged)."""
    extra = {f"file:{ALICE_UNIT}": file_output(unit)} if unit is not None else {}
    plan = DOCKER_ENGINE.plan(SYSTEMD_ROOTLESS, docker_facts(
        SYSTEMD_ROOTLESS, rootless=rootless, manager="systemd", extra=extra))  # fmt: skip
    return next(
        (a.content for a in plan.actions if isinstance(a, WriteFile) and a.path == ALICE_UNIT),
        unit or b"",
    )


def _back_to_rootful(unit: bytes, lingering: str = "linger alice\n"):
    hardened = DockerEngineAnswers()
    facts = docker_facts(hardened, manager="systemd",
                         system_engine=_engine_output({ALICE_UNIT: unit}, SYSTEMD_ON + lingering))  # fmt: skip
    return DOCKER_ENGINE.plan(hardened, facts)


def test_rootful_turns_off_the_lingering_hostwiz_turned_on_and_undo_turns_it_on_first():
    unit = _rootless_unit(ROOTLESS_READY)  # alice did not linger: hostwiz turns it on
    assert b"# hostwiz turned on lingering for alice (loginctl enable-linger)" in unit
    plan = _back_to_rootful(unit)
    stop, linger = commands(plan)[:2]
    assert "disable --now docker-rootless-alice" in stop.script
    assert linger.script == "loginctl disable-linger alice || true"
    assert linger.undo == "loginctl enable-linger alice"  # undone before the engine starts
    assert plan.actions.index(linger) == plan.actions.index(stop) + 1
    shown = as_text(render_plan(plan))
    assert "run: turn off lingering for alice, which hostwiz turned on" in shown
    assert "undo: turn lingering for alice on again" in shown
    assert "hostwiz also turns off the lingering it turned on for that engine" in shown


def test_lingering_that_was_the_admins_stays_on_and_the_preview_says_so():
    unit = _rootless_unit(ROOTLESS_READY + "linger yes\n")  # alice lingered before
    assert b"lingering" not in unit
    plan = _back_to_rootful(unit)
    assert not any("linger" in a.script for a in commands(plan))
    shown = as_text(render_plan(plan))
    assert "Lingering for alice stays on (hostwiz has no record of turning it on" in shown
    # already off (the admin turned it off): nothing to do, nothing said
    quiet = _back_to_rootful(_rootless_unit(ROOTLESS_READY), lingering="")
    assert not any("linger" in a.script for a in commands(quiet))
    assert not any("ingering" in warning for warning in quiet.warnings)


def test_a_second_rootless_apply_keeps_the_record_that_hostwiz_turned_lingering_on():
    unit = _rootless_unit(ROOTLESS_READY)
    # Now alice lingers (hostwiz did it): the unit keeps its record, nothing is rewritten.
    assert _rootless_unit(ROOTLESS_READY + "linger yes\n", unit) == unit
    plan = DOCKER_ENGINE.plan(SYSTEMD_ROOTLESS, docker_facts(
        SYSTEMD_ROOTLESS, rootless=ROOTLESS_READY + "linger yes\n", manager="systemd",
        extra={f"file:{ALICE_UNIT}": file_output(unit)}))  # fmt: skip
    assert not any(isinstance(a, WriteFile) and a.path == ALICE_UNIT for a in plan.actions)


def test_the_system_engine_fact_reads_who_lingers():
    engine = parse_system_engine(0, "installed\nlinger alice\nlinger \n")
    assert engine.lingering == ("alice",)
