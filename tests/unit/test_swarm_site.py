"""The swarm site step without hosts: what each stage plans on the manager and the workers, the
token as a secret (a placeholder while pending), a joined worker planning nothing, a worker of
another swarm refused, and the answers read from a site file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from wizard.actions import FileState, RunCommand
from wizard.errors import PlanConflict
from wizard.facts import Facts
from wizard.render import as_text, render_plan
from wizard.secrets import MASK, Secret
from wizard.site.model import SiteError, load_site
from wizard.site.registry import SITE_STEPS
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.swarm.facts import SWARM_HOST, SwarmHost
from wizard.steps.swarm.plan import DAEMON_JSON
from wizard.steps.swarm.site import (
    JOIN_TOKEN,
    MANAGER,
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
