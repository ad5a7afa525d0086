"""Sites without hosts: the site file (errors with file and line), roles, and the staged plan
of a two-host step, from fact tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.site_demo import DEMO, PEER_CONF, PEER_TOKEN, SOURCE, TOKEN, WRITER
from wizard.errors import LabError
from wizard.facts import Facts
from wizard.render import as_text
from wizard.site import journal
from wizard.site.model import SiteError, parse_site, site_from_hosts
from wizard.site.plan import host_facts_needed, plan_site, render_site, site_session
from wizard.site.registry import SITE_STEPS

SITE = f"""
name = "demo"

[hosts.a]
target = "host-a"
roles = ["{WRITER}"]

[hosts.b]
target = "host-b"
roles = ["{SOURCE}"]

[steps.site-demo]
interface = "eth1"
"""


@pytest.fixture(autouse=True)
def demo_step(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(SITE_STEPS, DEMO.name, DEMO)
    yield


def facts_for(
    session: Any, outputs: Mapping[str, Mapping[str, tuple[int, str]]]
) -> dict[str, Facts]:
    """Each host's facts from a table: fact name -> (exit code, stdout); files missing and
    commands failing unless the table says otherwise."""
    found = {}
    for host in session.site.hosts:
        needed = host_facts_needed(session, host)
        raw = {fact.name: outputs.get(host.name, {}).get(fact.name, (1, "MISSING"))
               for fact in needed}  # fmt: skip
        found[host.name] = Facts.from_raw(needed, raw)
    return found


LABELS = {"a": "host-a", "b": "host-b"}
ADDRESS = {"b": {"demo:address:eth1": (0, "10.214.9.7\n")}}


def test_a_site_file_names_hosts_roles_and_step_answers() -> None:
    site = parse_site(SITE, "demo.toml")
    assert [(h.name, h.target, h.roles) for h in site.hosts] == [
        ("a", "host-a", (WRITER,)),
        ("b", "host-b", (SOURCE,)),
    ]
    assert site.steps["site-demo"].interface == "eth1"
    assert [h.name for h in site.with_role(SOURCE)] == ["b"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[hosts.a]\nroles = ["Router"]\n', "line 2: 'Router' is not a role name"),
        ("[hosts.a]\ncolour = 1\n", "line 2: unknown key 'colour'"),
        ('[hosts.a]\ntarget = "x"\n[hosts.b]\ntarget = "x"\n', "same target 'x'"),
        ("[hosts.a]\n[steps.nope]\n", "line 2: unknown site step [steps.nope]"),
        ("[hosts.a]\n[steps.site-demo]\ninterface = 5\n", "line 3"),
        ("name = 'x'\n", "at least one host"),
        ("[hosts.a\n", "not valid TOML"),
    ],
)
def test_a_bad_site_file_says_where(text: str, words: str) -> None:
    with pytest.raises(SiteError) as raised:
        parse_site(text, "s.toml")
    assert words in raised.value.message
    assert raised.value.message.startswith("s.toml")


def test_a_step_needs_its_roles() -> None:
    site = parse_site("[hosts.a]\nroles = ['demo-writer']\n[steps.site-demo]\n", "s.toml")
    with pytest.raises(SiteError, match="needs a host with the role 'demo-source'"):
        site_session(site)


def test_repeated_hosts_are_a_site_without_roles() -> None:
    site = site_from_hosts(["h1", "h2"], None)
    assert [h.target for h in site.hosts] == ["h1", "h2"] and site.hosts[0].roles == ()
    assert site.command("rollback") == "hostwiz rollback --host h1 --host h2"
    assert parse_site(SITE, "my sites/demo.toml").command("recover") == (
        "hostwiz recover --site 'my sites/demo.toml'"
    )
    with pytest.raises(SiteError, match="twice"):
        site_from_hosts(["h1", "h1"], None)


def test_stage_two_waits_for_what_stage_one_produces() -> None:
    session = site_session(parse_site(SITE, "demo.toml"))
    plan = plan_site(session, LABELS, facts_for(session, ADDRESS))
    assert plan.stages == 2
    [first] = plan.stage(1)
    assert first.host == "b" and TOKEN in first.changeset.touched_paths()
    [second] = plan.stage(2)
    assert second.host == "a" and second.provisional == ("demo:token on b",)
    assert second.changeset.host == "host-a"
    text = as_text(render_site(plan, session))
    assert "peer = 10.214.9.7" in text and "Provisional" in text
    assert text.index("=== b") < text.index("=== a")  # stage order


def test_a_token_already_made_is_used_and_never_shown() -> None:
    session = site_session(parse_site(SITE, "demo.toml"))
    outputs = {"b": {**ADDRESS["b"], "demo:token": (0, "s3cr3tt0k3n\n"),
                     f"file:{TOKEN}": (0, "600 root root 0 0\nczNjcjN0dDBrM24K")}}  # fmt: skip
    plan = plan_site(session, LABELS, facts_for(session, outputs))
    assert plan.stage(1) == []
    [second] = plan.stage(2)
    assert second.provisional == ()
    [write_conf, write_token] = second.changeset.actions()
    assert write_token.path == PEER_TOKEN and write_token.content == b"s3cr3tt0k3n\n"
    assert write_conf.path == PEER_CONF
    text = as_text(render_site(plan, session))
    assert "s3cr3tt0k3n" not in text and "peer = 10.214.9.7" in text


def test_the_site_journal_tells_the_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    for event, host, stage, snap in [("applying", "", 0, ""), ("applied", "b", 1, "S1"),
                                     ("failed", "a", 2, "")]:  # fmt: skip
        journal.record(journal.SiteEntry(1.0, "demo", "site-1", event, host, stage, snap, "x"))
    journal.record(journal.SiteEntry(2.0, "demo", "site-1", "rolled-back", "b", 1, "S1"))
    journal.record(journal.SiteEntry(2.0, "demo", "site-1", "reverted", detail="a broke"))
    with journal.journal_file("demo").open("a") as handle:
        handle.write("not json\n")
    story = "\n".join(journal.explain("demo"))
    assert "b, stage 1: applied and confirmed (snapshot S1)" in story
    assert "a, stage 2: FAILED" in story and "b, stage 1: put back (snapshot S1)" in story
    assert "did not go through: a broke" in story
    assert journal.applied_hosts(journal.last_change("demo")) == []


def test_a_topology_site_file_names_its_hosts_by_role() -> None:
    from lab.site_file import site_text

    text = site_text("t1", "router between lan and wan", {"router": "t1-router",
                                                           "client": "t1-client"})  # fmt: skip
    site = parse_site(text, "t1.toml")
    assert site.name == "t1"
    assert [(h.name, h.target, h.roles) for h in site.hosts] == [
        ("router", "t1-router", ("router",)),
        ("client", "t1-client", ("client",)),
    ]


def test_lab_up_hosts_is_a_count_not_several_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lab up --hosts 2`` crashed in the check for several ``--host`` (an int has no len)."""
    import lab.cli
    from hostwiz.cli import main

    seen: list[int] = []
    monkeypatch.setattr(lab.cli, "run_lab", lambda args: seen.append(args.hosts) or 0)
    assert main(["lab", "up", "--hosts", "2", "--no-docker"]) == 0
    assert seen == [2]


def test_the_swarm_topology_writes_a_site_file_with_swarm_roles_and_answers() -> None:
    """``lab up --topology swarm``'s site file plans the swarm as written: node1 manages,
    node2 and node3 are workers, [steps.swarm] has answers that work on this kernel."""
    from lab.site_file import site_text
    from lab.topology import load_topology

    spec = load_topology("swarm")
    hosts = {role: f"t1-{role}" for role in spec.hosts}
    roles = {role: host.site_roles for role, host in spec.hosts.items()}
    site = parse_site(site_text("t1", spec.description, hosts, roles, spec.site_steps), "t1.toml")
    assert [(h.name, h.target, h.roles) for h in site.hosts] == [
        ("node1", "t1-node1", ("swarm-manager",)),
        ("node2", "t1-node2", ("swarm-worker",)),
        ("node3", "t1-node3", ("swarm-worker",)),
    ]
    answers = site.steps["swarm"]
    assert (answers.advertise_address, answers.overlay, answers.overlay_encrypted) == (
        "cluster", True, False)  # fmt: skip
    assert [s.step.name for s in site_session(site).steps] == ["swarm"]


def test_bad_site_roles_and_steps_in_a_topology_name_the_line() -> None:
    from lab.topology import parse_topology

    base = '[networks.n]\nsubnet = "10.214.9.0/24"\n[hosts.a]\nnetworks = { n = "auto" }\n'
    with pytest.raises(LabError) as raised:
        parse_topology(base + 'site_roles = ["Swarm Manager"]\n', "t.toml")
    assert "t.toml, line 5" in raised.value.message and "not a role name" in raised.value.message
    with pytest.raises(LabError) as raised:
        parse_topology(base + "[site_steps.swarm]\noverlay = { a = 1 }\n", "t.toml")
    assert "t.toml, line 6" in raised.value.message


def test_the_site_plans_json_names_each_host_by_its_site_name() -> None:
    """The changeset's own ``host`` (its connection label) used to hide the site's name."""
    from types import SimpleNamespace

    from hostwiz.cli import plan_as_json as changeset_json
    from hostwiz.site_cli import plan_as_json
    from wizard.plan import Changeset
    from wizard.site.plan import HostChange, SitePlan

    site = parse_site('[hosts.node1]\ntarget = "t1-node1"\n', "s.toml")
    plan = SitePlan("s", 1, (HostChange("node1", 1, Changeset("root@t1-node1:22", ())),))
    out = plan_as_json(plan, SimpleNamespace(site=site), changeset_json)
    assert out["hosts"][0]["host"] == "node1" and out["hosts"][0]["target"] == "t1-node1"


def test_the_site_checker_reads_each_hosts_preset_site_steps_and_facts() -> None:
    """The glue: every host's preset answers, the site steps' on its roles, its facts."""
    from wizard.checks import HOST
    from wizard.site.check import site_conflicts

    site = parse_site(
        '[hosts.a]\nroles = ["swarm-manager"]\npreset = "hardened"\n'
        '[hosts.b]\nroles = ["swarm-worker"]\n[hosts.c]\n'
        "[steps.swarm]\noverlay = true\noverlay_encrypted = false\n"
        'overlay_subnet = "10.77.0.0/24"\n',
        "s.toml",
    )
    session = site_session(site)
    facts = {
        name: Facts({HOST.name: {"routes": routes, "ip_forward": "1"}}, {})
        for name, routes in (("a", ()), ("b", ()), ("c", ("10.77.0.0/16",)))
    }
    found = {(c.rule, c.host) for c in site_conflicts(session, facts)}
    # a's hardened preset keeps live-restore on (refused with swarm); c routes to the overlay.
    assert found == {("live-restore-swarm", "a"), ("site-subnet-overlap", "c")}


def test_the_wizard_shows_the_site_conflicts_above_its_preview() -> None:
    from screens.site import conflict_lines_of
    from wizard.checks import HOST

    site = parse_site('[hosts.a]\nroles = ["swarm-manager"]\n[hosts.b]\n'
                      'roles = ["swarm-worker"]\n[steps.swarm]\n', "s.toml")  # fmt: skip
    facts = {"a": Facts({HOST.name: {"routes": ("10.81.0.0/16",)}}, {}), "b": Facts({}, {})}
    lines = conflict_lines_of(site_session(site), facts)
    assert lines[0].kind == "warning" and "(subnet-overlap) on a" in lines[0].text


def test_site_hint_puts_a_hosts_own_step_setting_in_its_preset() -> None:
    from wizard.site.answers import site_hint
    from wizard.steps.docker.answers import DockerEngineAnswers

    hint = "Turn it off with --set docker.live_restore=false (in the same change)."
    assert site_hint(hint, "s.toml", {}, "a", "hardened", {"docker": DockerEngineAnswers}) == (
        "Turn it off with live_restore = false in [docker] of a's preset hardened (in the "
        "same change)."
    )
    assert 'preset = "FILE" in its [hosts.…] table of s.toml' in site_hint(hint, "s.toml", {}, "a")


def test_site_steps_make_their_one_host_answers_with_one_helper() -> None:
    """The proxy and swarm site steps give their one-host planner answers the same way: the
    fields both have, then what the site decides; the rest keep the one-host defaults."""
    from wizard.site.answers import one_host_answers
    from wizard.steps.proxy.answers import ProxyAnswers
    from wizard.steps.proxy.site import ProxySiteAnswers
    from wizard.steps.swarm.answers import SwarmAnswers
    from wizard.steps.swarm.site import SwarmSiteAnswers

    site = SwarmSiteAnswers(advertise_address="cluster", overlay_mtu=1400, stack_port=9000)
    swarm = site.swarm()
    assert swarm == one_host_answers(SwarmAnswers, site, enabled=True, overlay_encrypted=False)
    assert (swarm.enabled, swarm.overlay_mtu, swarm.stack_port) == (True, 1400, 9000)
    assert swarm.overlay_encrypted is False  # no overlay asked for: no ESP needed
    assert swarm.gwbridge_host_binding == SwarmAnswers().gwbridge_host_binding  # not asked
    proxy = ProxySiteAnswers(client_interfaces=("lan",), web_ports=("80", "8080"))
    one = proxy.on_proxy_host(("eth1",), ("10.0.2.0/24",))
    assert one == one_host_answers(
        ProxyAnswers,
        proxy,
        enabled=True,
        placement="router",
        client_interfaces=("eth1",),
        client_networks=("10.0.2.0/24",),
    )
    assert one.web_ports == ("80", "8080") and one.container_image == ProxyAnswers().container_image
