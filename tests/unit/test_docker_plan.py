"""The Docker engine planner as tables: (answers, facts) -> expected plan."""

from __future__ import annotations

import base64
import json

import pytest

from tests.unit.docker_fixtures import ROOTLESS_READY, docker_facts, info_output
from wizard.actions import RunCommand, WriteFile
from wizard.daemon_json import dumps
from wizard.errors import PlanConflict
from wizard.render import as_text, render_plan
from wizard.steps.docker import DOCKER_ENGINE, DockerEngineAnswers
from wizard.steps.docker.plan import merged_config

HARDENED = DockerEngineAnswers()


def written(plan, path):
    return next(a for a in plan.actions if isinstance(a, WriteFile) and a.path == path)


def test_fresh_host_gets_remap_user_ranges_config_and_one_restart():
    plan = DOCKER_ENGINE.plan(HARDENED, docker_facts(HARDENED))
    kinds = [type(a).__name__ for a in plan.actions]
    assert kinds == ["RunCommand", "WriteFile", "WriteFile", "WriteFile", "RunCommand"]
    assert "useradd" in plan.actions[0].script
    assert written(plan, "/etc/subuid").content.endswith(b"dockremap:165536:65536\n")
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert config["userns-remap"] == "default"
    assert config["icc"] is False and config["no-new-privileges"] is True
    assert config["log-opts"] == {"max-size": "10m", "max-file": "5"}
    restarts = [a for a in plan.actions if isinstance(a, RunCommand) and "restart" in a.script]
    assert len(restarts) == 1 and restarts[0].undo == restarts[0].script


def test_host_already_as_asked_plans_nothing():
    config = merged_config({}, HARDENED, 1048576)
    facts = docker_facts(
        HARDENED, daemon_json=dumps(config), dockremap=True,
        subuid=b"dockremap:165536:65536\n", subgid=b"dockremap:165536:65536\n",
    )  # fmt: skip
    assert DOCKER_ENGINE.plan(HARDENED, facts).empty


def test_unknown_keys_of_the_admin_are_kept_and_managed_keys_set():
    existing = json.dumps({"data-root": "/srv/docker", "icc": True}).encode()
    plan = DOCKER_ENGINE.plan(HARDENED, docker_facts(HARDENED, daemon_json=existing))
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert config["data-root"] == "/srv/docker" and config["icc"] is False


def test_invalid_json_is_refused_unless_replacement_asked():
    with pytest.raises(PlanConflict, match="not valid JSON"):
        DOCKER_ENGINE.plan(HARDENED, docker_facts(HARDENED, daemon_json=b"{ broken"))
    replace = DockerEngineAnswers(replace_invalid_config=True)
    plan = DOCKER_ENGINE.plan(replace, docker_facts(replace, daemon_json=b"{ broken"))
    assert any("not valid JSON" in w for w in plan.warnings)


@pytest.mark.parametrize(
    ("existing", "args", "message"),
    [
        (
            {"hosts": ["unix:///var/run/docker.sock"]},
            ("/usr/sbin/dockerd", "-H", "fd://"),
            "'hosts' is set in daemon.json and as -H",
        ),
        ({"no-such-option": 1}, ("/usr/sbin/dockerd",), "'no-such-option' is not a setting"),
        ({"debug": "yes"}, ("/usr/sbin/dockerd",), "'debug' must be true/false"),
    ],
)
def test_configs_dockerd_would_refuse_are_explained(existing, args, message):
    facts = docker_facts(HARDENED, daemon_json=json.dumps(existing).encode(), dockerd_args=args)
    with pytest.raises(PlanConflict) as caught:
        DOCKER_ENGINE.plan(HARDENED, facts)
    assert message in caught.value.message


def test_live_restore_in_a_swarm_is_a_conflict():
    facts = docker_facts(HARDENED, info=info_output(Swarm={"LocalNodeState": "active"}))
    with pytest.raises(PlanConflict, match="swarm"):
        DOCKER_ENGINE.plan(HARDENED, facts)


def test_switching_remap_with_containers_warns_with_counts():
    facts = docker_facts(HARDENED, info=info_output(Containers=3, Images=7))
    plan = DOCKER_ENGINE.plan(HARDENED, facts)
    assert any("3 existing container(s)" in w and "7 image(s)" in w for w in plan.warnings)


def test_nofile_is_capped_at_what_dockerd_may_grant():
    plan = DOCKER_ENGINE.plan(HARDENED, docker_facts(HARDENED, nofile=20000))
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert config["default-ulimits"]["nofile"]["Hard"] == 20000
    assert any("at most 20000" in w for w in plan.warnings)


def test_rootful_mode_removes_remap():
    answers = DockerEngineAnswers(mode="rootful")
    existing = json.dumps({"userns-remap": "default"}).encode()
    plan = DOCKER_ENGINE.plan(answers, docker_facts(answers, daemon_json=existing))
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert "userns-remap" not in config
    assert not any("useradd" in getattr(a, "script", "") for a in plan.actions)


def test_systemd_hosts_restart_through_systemctl():
    plan = DOCKER_ENGINE.plan(HARDENED, docker_facts(HARDENED, manager="systemd"))
    assert "systemctl restart docker" in plan.actions[-1].script


def test_rootless_without_uidmap_is_refused_with_the_package_name():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    missing = ROOTLESS_READY.replace("newuidmap yes", "newuidmap no")
    with pytest.raises(PlanConflict, match="uidmap"):
        DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=missing))


def test_rootless_plan_writes_root_owned_files_only_and_starts_the_service():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    plan = DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=ROOTLESS_READY))
    writes = [a for a in plan.actions if isinstance(a, WriteFile)]
    paths = [a.path for a in writes]
    # Nothing in alice's home, where a planted link would redirect root's writes.
    assert not any(path.startswith("/home/") for path in paths)
    assert all((a.owner, a.group) == ("root", "root") for a in writes)
    assert not any("/home/" in a.script for a in plan.actions if isinstance(a, RunCommand))
    config = json.loads(written(plan, "/etc/docker/rootless-alice.json").content)
    assert config["no-new-privileges"] is True and "userns-remap" not in config
    assert "/etc/init.d/docker-rootless-alice" in paths
    init = written(plan, "/etc/init.d/docker-rootless-alice").content.decode()
    assert "--config-file /etc/docker/rootless-alice.json" in init
    assert "/etc/profile.d/hostwiz-docker-rootless-alice.sh" in paths
    assert written(plan, "/etc/subuid").content.endswith(b"alice:165536:65536\n")
    start = plan.actions[-1]
    assert isinstance(start, RunCommand) and start.undo and "stop" in start.undo
    assert any("below 1024" in note for note in plan.notes)


def test_rootless_on_systemd_uses_a_unit_outside_the_home_and_turns_on_lingering():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    plan = DOCKER_ENGINE.plan(
        answers, docker_facts(answers, rootless=ROOTLESS_READY, manager="systemd")
    )
    unit = written(plan, "/etc/systemd/user/docker-rootless-alice.service").content.decode()
    assert "ExecStart=/usr/share/docker.io/contrib/dockerd-rootless.sh --config-file " in unit
    assert "ConditionUser=alice" in unit
    start = plan.actions[-1]
    assert isinstance(start, RunCommand) and "enable-linger alice" in start.script
    assert start.undo and "disable-linger alice" in start.undo
    assert any("lingering" in note for note in plan.notes)
    lingering = ROOTLESS_READY + "linger yes\n"
    again = DOCKER_ENGINE.plan(
        answers, docker_facts(answers, rootless=lingering, manager="systemd")
    )
    assert "disable-linger" not in (again.actions[-1].undo or "")


def test_the_users_own_daemon_json_read_as_the_user_is_carried_over():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    own = base64.b64encode(b'{"data-root": "/srv/alice-docker", "icc": true}').decode()
    facts = docker_facts(answers, rootless=ROOTLESS_READY + f"own_data {own}\n")
    plan = DOCKER_ENGINE.plan(answers, facts)
    config = json.loads(written(plan, "/etc/docker/rootless-alice.json").content)
    assert config["data-root"] == "/srv/alice-docker" and config["icc"] is False
    assert any("carried over" in note for note in plan.notes)


@pytest.mark.parametrize(
    ("replacements", "message", "hint"),
    [
        (
            (("tun_user yes\n", ""), ("tun_mode 666", "tun_mode 600")),
            "alice cannot open /dev/net/tun (mode 600)",
            "chmod 0666 /dev/net/tun",
        ),
        (
            (("\nuserns yes\n", "\nuserns yes\nunwritable .config/docker /etc/docker\n"),),
            "alice cannot write ~/.config/docker, which leads to /etc/docker; the rootless "
            "engine keeps its key",
            "rm ~/.config/docker if it is a link",
        ),
        (
            (
                (
                    "\nuserns yes\n",
                    "\nuserns yes\nunwritable .local/share/docker "
                    "/home/alice/.local/share/docker\n",
                ),
            ),
            "alice cannot write ~/.local/share/docker; the rootless engine keeps its images",
            "make ~/.local/share/docker an ordinary folder of their own",
        ),
        (
            (("idmap_privileged yes", "idmap_privileged no"),),
            "newuidmap/newgidmap are not setuid root",
            "apt install --reinstall uidmap",
        ),
        (
            (("\nuserns yes\n", "\n"), ("max_user_namespaces 96362", "max_user_namespaces 0")),
            "does not let alice create user namespaces (user.max_user_namespaces = 0)",
            "kernel.unprivileged_userns_clone = 1",
        ),
    ],
)
def test_rootless_prerequisites_are_refused_before_any_change_with_the_fix(
    replacements, message, hint
):
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    output = ROOTLESS_READY
    for old, new in replacements:
        output = output.replace(old, new)
    with pytest.raises(PlanConflict) as caught:
        DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=output))
    assert message in caught.value.message
    assert hint in caught.value.hint and "userns-remap" in caught.value.hint


def test_a_linked_systemd_user_folder_only_matters_where_systemd_runs():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    linked = ROOTLESS_READY + "unwritable .config/systemd/user /etc/systemd/system\n"
    assert not DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=linked)).empty
    with pytest.raises(PlanConflict, match="which leads to /etc/systemd/system"):
        DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=linked, manager="systemd"))


def test_without_setpriv_nothing_is_refused_on_a_guess():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    output = "".join(
        line + "\n"
        for line in ROOTLESS_READY.splitlines()
        if line.split()[0] not in {"probe", "tun_user", "probe_userns", "userns"}
    )
    assert not DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=output)).empty


def test_a_host_without_update_rc_is_told_the_engine_will_not_start_at_boot():
    answers = DockerEngineAnswers(mode="rootless", rootless_user="alice")
    output = ROOTLESS_READY.replace("update_rc yes\n", "")
    plan = DOCKER_ENGINE.plan(answers, docker_facts(answers, rootless=output))
    assert any("not by itself after a reboot" in note for note in plan.notes)


def test_rootless_needs_a_user():
    answers = DockerEngineAnswers(mode="rootless")
    with pytest.raises(PlanConflict, match="needs the user") as caught:
        DOCKER_ENGINE.plan(answers, docker_facts(answers))
    assert "docker.rootless_user" in caught.value.hint


def test_rendering_shows_a_unified_diff_and_the_commands():
    existing = json.dumps({"icc": True}, indent=2).encode() + b"\n"
    plan = DOCKER_ENGINE.plan(HARDENED, docker_facts(HARDENED, daemon_json=existing))
    text = as_text(render_plan(plan))
    assert "--- a/etc/docker/daemon.json" in text and "+++ b/etc/docker/daemon.json" in text
    assert '-  "icc": true' in text and '+  "icc": false,' in text
    assert "$ useradd --system" in text
    assert "/etc/init.d/docker restart" in text
