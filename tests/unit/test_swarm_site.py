"""The swarm site step without hosts: what each stage plans on the manager and the workers, the
token as a secret (a placeholder while pending), a joined worker planning nothing, a worker of
another swarm refused, and the answers read from a site file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from wizard.actions import FileState, RunCommand, WriteFile
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.render import as_text, render_plan
from wizard.secrets import MASK, Secret
from wizard.site.model import SiteError, load_site
from wizard.site.registry import SITE_STEPS
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.swarm.facts import SWARM_HOST, Kernel, SwarmHost
from wizard.steps.swarm.plan import DAEMON_JSON
from wizard.steps.swarm.site import (
    JOIN_TOKEN,
    MANAGER,
    MANAGER_TOKEN,
    SWARM_INFO,
    SWARM_SITE,
    WORKER,
    SwarmInfo,
    SwarmSiteAnswers,
    parse_swarm_info,
)

ANSWERS = SwarmSiteAnswers(advertise_address="cluster", overlay_encrypted=False)
OUT = SwarmInfo("inactive")
TOKEN = "SWMTKN-1-" + "a1" * 25 + "-" + "b2" * 13


def node(address: str, **changes: Any) -> SwarmHost:
    base = SwarmHost(docker=True, state="inactive",
                     interfaces={"eth0": ("10.213.0.9/24",), "cluster": (f"{address}/24",)},
                     mtus={"eth0": 1500, "cluster": 1500},
                     routes=("10.213.0.0/24", "10.214.3.0/24"))  # fmt: skip
    return replace(base, **changes)


def facts(host: SwarmHost, info: SwarmInfo = OUT) -> Facts:
    daemon = FileState(DAEMON_JSON, False)
    return Facts({SWARM_HOST.name: host, SWARM_INFO.name: info, f"file:{DAEMON_JSON}": daemon}, {})


def site(
    worker: SwarmHost | None = None,
    info: SwarmInfo = OUT,
    token: Secret | None = None,
) -> SiteFacts:
    produced = Facts({JOIN_TOKEN.name: token}, {}) if token else None
    fresh = frozenset({JOIN_TOKEN.name}) if token else frozenset()
    return SiteFacts({
        "node1": HostFacts("node1", (MANAGER,), facts(node("10.214.3.11")), produced, fresh),
        "node2": HostFacts("node2", (WORKER,), facts(worker or node("10.214.3.12"), info)),
    })  # fmt: skip


def scripts(plan: Any) -> list[str]:
    return [a.script for a in plan.actions if isinstance(a, RunCommand)]


def test_stage_one_makes_every_bridge_and_inits_the_manager_only() -> None:
    plans = SWARM_SITE.plan(ANSWERS, 1, site())
    manager, worker = scripts(plans["node1"]), scripts(plans["node2"])
    assert manager[0].startswith("docker network create --driver bridge --subnet 10.81.10.0/24")
    assert "docker swarm init --advertise-addr 10.214.3.11" in manager[1]
    assert len(manager) == 2  # no overlay unless asked
    assert len(worker) == 1 and worker[0].startswith("docker network create --driver bridge")
    with_overlay = SWARM_SITE.plan(replace(ANSWERS, overlay=True), 1, site())
    assert "--driver overlay" in scripts(with_overlay["node1"])[2]


def test_stage_two_joins_with_the_token_shown_masked() -> None:
    view = site(token=Secret(TOKEN))
    plan = SWARM_SITE.plan(ANSWERS, 2, view)["node2"]
    assert TOKEN not in as_text(render_plan(plan))
    (join,) = plan.actions
    assert isinstance(join, RunCommand)
    assert "--advertise-addr 10.214.3.12 --data-path-addr 10.214.3.12" in join.script
    assert TOKEN in join.script and "10.214.3.11:2377" in join.script
    assert TOKEN not in join.describe() and MASK in join.describe()
    assert join.undo == "docker swarm leave --force >/dev/null 2>&1 || true"
    assert view.pending == []


def test_a_pending_token_makes_a_provisional_plan() -> None:
    view = site()
    (join,) = SWARM_SITE.plan(ANSWERS, 2, view)["node2"].actions
    assert isinstance(join, RunCommand) and MASK in join.describe()
    assert view.pending == [f"{JOIN_TOKEN.name} on node1"]


def test_a_worker_of_this_manager_plans_nothing_and_one_of_another_swarm_is_refused() -> None:
    joined = SwarmInfo("active", False, ("10.214.3.11",))
    assert SWARM_SITE.plan(ANSWERS, 2, site(info=joined, token=Secret(TOKEN)))["node2"].empty
    other = SwarmInfo("active", False, ("10.9.9.9",))
    with pytest.raises(PlanConflict) as refused:
        SWARM_SITE.plan(ANSWERS, 2, site(info=other, token=Secret(TOKEN)))
    assert "docker swarm leave" in refused.value.hint


def test_a_worker_without_docker_is_refused_before_anything() -> None:
    with pytest.raises(PlanConflict) as refused:
        SWARM_SITE.plan(ANSWERS, 1, site(worker=node("10.214.3.12", docker=False)))
    assert "node2" in refused.value.message


def test_the_token_fact_keeps_only_a_real_token_as_a_secret() -> None:
    token = JOIN_TOKEN.parse(0, TOKEN + "\n")
    assert isinstance(token, Secret) and token.reveal() == TOKEN and TOKEN not in repr(token)
    assert JOIN_TOKEN.parse(1, "Error: This node is not a swarm manager.") is None


def test_swarm_info_reads_the_managers_a_worker_knows() -> None:
    out = json.dumps({"LocalNodeState": "active", "ControlAvailable": False,
                      "RemoteManagers": [{"NodeID": "x", "Addr": "10.214.3.11:2377"}]})  # fmt: skip
    assert parse_swarm_info(0, out) == SwarmInfo("active", False, ("10.214.3.11",))
    assert parse_swarm_info(1, "") == SwarmInfo()


def test_the_site_file_gives_the_answers_and_bad_ones_name_the_file(tmp_path: Path) -> None:
    assert SITE_STEPS["swarm"] is SWARM_SITE
    path = tmp_path / "s.toml"
    path.write_text('[hosts.a]\nroles = ["swarm-manager"]\n[hosts.b]\nroles = ["swarm-worker"]\n'
                    '[steps.swarm]\nadvertise_address = "cluster"\n')  # fmt: skip
    assert load_site(path).steps["swarm"] == SwarmSiteAnswers(advertise_address="cluster")
    path.write_text(path.read_text() + 'overlay_subnet = "10.81.10.0/24"\n')
    with pytest.raises(SiteError) as refused:
        load_site(path)
    assert "overlaps" in refused.value.message


def test_without_an_overlay_a_kernel_without_esp_is_no_reason_to_refuse() -> None:
    """The overlay is encrypted by default; without one, ESP does not matter."""
    plain = SwarmSiteAnswers(advertise_address="cluster")
    assert len(scripts(SWARM_SITE.plan(plain, 1, site())["node1"])) == 2
    with pytest.raises(PlanConflict, match="function not implemented"):
        SWARM_SITE.plan(replace(plain, overlay=True), 1, site())


STACK_FILE = "/etc/hostwiz/swarm/demo.yml"
MANAGER_SECRET = "SWMTKN-1-" + "c3" * 25 + "-" + "d4" * 13
STACK = SwarmSiteAnswers(
    advertise_address="cluster", overlay=True, overlay_encrypted=False, stack=True,
    stack_image="hostwiz/busybox:latest",
)  # fmt: skip


def three(
    node2: SwarmInfo = OUT,
    tokens: bool = True,
    images: tuple[str, ...] = ("hostwiz/busybox:latest",),
    kernel: Kernel | None = None,
) -> SiteFacts:
    """node1 and node2 managers (node1 first: it inits), node3 a worker."""
    produced = Facts({JOIN_TOKEN.name: Secret(TOKEN), MANAGER_TOKEN.name: Secret(MANAGER_SECRET)},
                     {}) if tokens else None  # fmt: skip
    fresh = frozenset({JOIN_TOKEN.name, MANAGER_TOKEN.name}) if tokens else frozenset()
    stack = FileState(STACK_FILE, False)
    kernel = kernel or Kernel()
    first = Facts({SWARM_HOST.name: node("10.214.3.11", kernel=kernel,
                                         images=("hostwiz/busybox:latest",)),
                   SWARM_INFO.name: OUT, f"file:{DAEMON_JSON}": FileState(DAEMON_JSON, False),
                   f"file:{STACK_FILE}": stack}, {})  # fmt: skip

    def other(address: str, info: SwarmInfo = OUT) -> Facts:
        return facts(node(address, images=images, kernel=kernel), info)

    return SiteFacts({
        "node1": HostFacts("node1", (MANAGER,), first, produced, fresh),
        "node2": HostFacts("node2", (MANAGER,), other("10.214.3.12", node2)),
        "node3": HostFacts("node3", (WORKER,), other("10.214.3.13")),
    })  # fmt: skip


def test_further_managers_make_their_bridge_then_join_with_the_manager_token() -> None:
    first = SWARM_SITE.plan(ANSWERS, 1, three())
    assert "docker swarm init" in " ".join(scripts(first["node1"]))
    (bridge,) = scripts(first["node2"])
    assert bridge.startswith("docker network create --driver bridge")

    second = SWARM_SITE.plan(ANSWERS, 2, three())
    (manager_join,) = second["node2"].actions
    (worker_join,) = second["node3"].actions
    assert isinstance(manager_join, RunCommand) and isinstance(worker_join, RunCommand)
    assert MANAGER_SECRET in manager_join.script and TOKEN not in manager_join.script
    assert TOKEN in worker_join.script and MANAGER_SECRET not in worker_join.script
    assert "as a manager" in manager_join.describe()
    assert MANAGER_SECRET not in manager_join.describe() + str(manager_join.undo)
    assert manager_join.secrets == (Secret(MANAGER_SECRET),)
    assert "docker node demote" in str(manager_join.undo)  # the quorum of those left holds
    assert "demote" not in str(worker_join.undo)
    shown = as_text(render_plan(second["node2"]))
    assert MANAGER_SECRET not in shown and MASK in shown


def test_a_pending_manager_token_is_provisional_and_a_joined_manager_plans_nothing() -> None:
    view = three(tokens=False)
    SWARM_SITE.plan(ANSWERS, 2, view)
    assert view.pending == [f"{MANAGER_TOKEN.name} on node1", f"{JOIN_TOKEN.name} on node1"]
    joined = SwarmInfo("active", True, ("10.214.3.11", "10.214.3.12"))
    assert SWARM_SITE.plan(ANSWERS, 2, three(node2=joined))["node2"].empty


NODE2_ID = "n2" + "x" * 23


def test_a_worker_the_site_makes_a_manager_is_promoted_by_the_first_manager() -> None:
    as_worker = SwarmInfo("active", False, ("10.214.3.11",), NODE2_ID)
    plans = SWARM_SITE.plan(ANSWERS, 2, three(node2=as_worker))
    assert plans["node2"].empty  # it is in the swarm already: nothing on the node itself
    (promote,) = plans["node1"].actions
    assert isinstance(promote, RunCommand)
    assert promote.script.startswith(f"docker node promote {NODE2_ID} >/dev/null && (")
    assert '"manager reachable") exit 0' in promote.script  # it waits until the swarm says so
    assert promote.undo is not None
    assert promote.undo.startswith(f"docker node demote {NODE2_ID} >/dev/null && (")
    assert 'worker|"worker ") exit 0' in promote.undo  # out of the managers' consensus
    assert "make node2 a manager" in promote.describe()
    # Without its node ID the swarm cannot be told which node: refused, naming it.
    with pytest.raises(PlanConflict, match="node2 is in this swarm"):
        SWARM_SITE.plan(ANSWERS, 2, three(node2=SwarmInfo("active", False, ("10.214.3.11",))))


def test_a_manager_the_site_makes_a_worker_is_demoted_by_the_first_manager() -> None:
    view = three()
    node3 = view.hosts["node3"]
    as_manager = SwarmInfo("active", True, ("10.214.3.11", "10.214.3.13"), "n3" + "y" * 23)
    facts3 = facts(node3.facts[SWARM_HOST], as_manager)
    hosts = {**view.hosts, "node3": HostFacts("node3", (WORKER,), facts3)}
    plans = SWARM_SITE.plan(ANSWERS, 2, SiteFacts(hosts))
    (demote,) = plans["node1"].actions
    assert isinstance(demote, RunCommand)
    assert demote.script.startswith("docker node demote n3yyy")
    assert demote.undo is not None and demote.undo.startswith("docker node promote n3yyy")
    assert plans["node3"].empty


def test_swarm_info_reads_the_node_id_only_when_it_is_one() -> None:
    info = parse_swarm_info(0, json.dumps({"LocalNodeState": "active", "NodeID": NODE2_ID}))
    assert info.node_id == NODE2_ID
    assert parse_swarm_info(0, json.dumps({"NodeID": "x; rm -rf /"})).node_id == ""


def test_the_manager_token_fact_is_a_secret() -> None:
    token = MANAGER_TOKEN.parse(0, MANAGER_SECRET + "\n")
    assert isinstance(token, Secret) and token.reveal() == MANAGER_SECRET
    assert "manager" in MANAGER_TOKEN.command and MANAGER_TOKEN.parse(1, "") is None


def test_the_stack_is_deployed_by_the_first_manager_in_stage_three_only() -> None:
    assert SWARM_SITE.stages == 3
    assert SWARM_SITE.plan(ANSWERS, 3, three()) == {}  # no stack asked for
    plans = SWARM_SITE.plan(STACK, 3, three())
    assert list(plans) == ["node1"]
    write, deploy = plans["node1"].actions
    assert isinstance(write, WriteFile) and isinstance(deploy, RunCommand)
    compose = json.loads(write.content.decode().split("\n", 1)[1])
    web = compose["services"]["web"]
    assert web["deploy"] == {"endpoint_mode": "dnsrr", "mode": "global"}  # one task a node
    assert web["ports"][0]["mode"] == "host"
    assert "--resolve-image never" in deploy.script
    # The variable is dockerd's (read from its own environment), not the client's: set on the
    # command it did nothing, and hostwiz does not set dockerd's environment.
    assert "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE" not in deploy.script
    assert plans["node1"].before == (FileState(STACK_FILE, False),)
    for stage in (1, 2):
        planned = SWARM_SITE.plan(STACK, stage, three())
        assert not any("stack deploy" in s for plan in planned.values() for s in scripts(plan))


def test_the_stack_image_must_be_on_every_node_and_ipvs_where_asked() -> None:
    with pytest.raises(PlanConflict) as refused:
        SWARM_SITE.plan(STACK, 1, three(images=()))
    assert "not on node2" in refused.value.message and "docker load" in refused.value.hint
    ingress = replace(STACK, endpoint_mode="vip", publish_mode="ingress")
    with pytest.raises(PlanConflict) as refused:
        SWARM_SITE.plan(ingress, 1, three(kernel=Kernel(ipvs="no")))
    assert "IPVS" in refused.value.message and "dnsrr" in refused.value.hint


def test_a_stack_needs_the_overlay(tmp_path: Path) -> None:
    with pytest.raises(InvalidAnswer, match="overlay"):
        SwarmSiteAnswers(advertise_address="cluster", stack=True, stack_image="x:1")


def test_a_site_of_managers_only_is_a_swarm_and_one_without_a_manager_is_refused() -> None:
    from wizard.site.model import parse_site
    from wizard.site.plan import site_session

    managers = parse_site('[hosts.a]\nroles = ["swarm-manager"]\n[hosts.b]\n'
                          'roles = ["swarm-manager"]\n[steps.swarm]\n', "s.toml")  # fmt: skip
    assert [s.step.name for s in site_session(managers).steps] == ["swarm"]
    workers = parse_site('[hosts.a]\nroles = ["swarm-worker"]\n[steps.swarm]\n', "s.toml")
    with pytest.raises(SiteError, match="swarm-manager"):
        site_session(workers)


class Answering:
    """Stands for the first manager in the stack's health check: which nodes run a task, and
    which addresses answer on the published port."""

    def __init__(self, running: list[str], answering: set[str]) -> None:
        self.running, self.answering = running, answering

    def run(self, script: str, timeout: float = 0, **_: Any) -> Any:
        from wizard.transport.base import CommandResult

        if "service ls" in script:
            return CommandResult(script, 0, b"3/3\n")
        if "service ps" in script:
            return CommandResult(script, 0, "\n".join(self.running).encode())
        address = script.split("/dev/tcp/")[1].split("/")[0]
        return CommandResult(script, 0 if address in self.answering else 1)


def test_the_stack_health_wants_tasks_on_every_node_each_answering() -> None:
    from wizard.steps.swarm.site import stack_problems

    everyone = {"10.214.3.11", "10.214.3.12", "10.214.3.13"}
    nodes = ["t-node1", "t-node2", "t-node3"]
    swarm = STACK.swarm()
    assert stack_problems(Answering(nodes, everyone), swarm, three()) == []
    lonely = stack_problems(Answering(["t-node1"], everyone), swarm, three())
    assert lonely == ["the stack's tasks run on 1 node(s) (t-node1), not 3"]
    silent = stack_problems(Answering(nodes, everyone - {"10.214.3.12"}), swarm, three())
    assert silent == ["nothing answers on node2's 10.214.3.12:8080"]


def test_inside_a_site_the_advice_names_the_site_files_table_not_set(tmp_path: Path) -> None:
    """The one-host planner's refusals say ``--set swarm.…``; in a site the setting is in the
    site file's [steps.swarm] (``--set`` would change a host's preset, not the site step)."""
    from wizard.site.model import parse_site
    from wizard.site.plan import plan_site, site_session

    text = ('[hosts.node1]\nroles = ["swarm-manager"]\n[hosts.node2]\nroles = ["swarm-worker"]\n'
            '[steps.swarm]\nadvertise_address = "cluster"\noverlay = true\n')  # fmt: skip
    session = site_session(parse_site(text, "s.toml"))
    read = {"node1": facts(node("10.214.3.11")), "node2": facts(node("10.214.3.12"))}
    with pytest.raises(PlanConflict) as refused:  # the kernel has no ESP
        plan_site(session, {"node1": "n1", "node2": "n2"}, read)
    hint = refused.value.hint
    assert "--set" not in hint
    assert ('overlay_encrypted = false, endpoint_mode = "dnsrr", publish_mode = "host" in '
            "[steps.swarm] of the site file s.toml.") in hint  # fmt: skip
    # The answers' own checks (the one-host answers') too, when the site file is read.
    with pytest.raises(SiteError) as bad:
        parse_site(text + 'endpoint_mode = "dnsrr"\npublish_mode = "ingress"\n', "s.toml")
    assert "--set" not in bad.value.hint
    assert 'publish_mode = "host" in [steps.swarm] of the site file s.toml' in bad.value.hint
