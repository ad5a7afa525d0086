"""Declared needs (#12, #14, #16): steps say what they expose, the session hands it to the
firewall, which offers it to the zone the traffic arrives in, refuses the untrusted zone for
what must never face the internet, and, while it is off, refuses needs that zones loaded
earlier drop. Sites add per-host needs (swarm peers, NFS clients)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.unit.test_firewall_plan import (
    DOCKER_V4,
    LOOPBACK,
    PLAIN_V6,
    ROUTER,
    chain,
    firewall_facts,
    link,
    loaded,
    router,
    rules_of,
    written,
)
from wizard.actions import WriteFile
from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts
from wizard.plan import Plan
from wizard.session import (
    Selection,
    collect_needs,
    facts_needed,
    needs_guards,
    plan_changeset,
    session_needs,
    statuses,
    with_needs,
    with_session,
)
from wizard.site.step import DeclaresSiteNeeds, HostFacts, SiteFacts
from wizard.steps import STEPS
from wizard.steps.base import (
    DECLARED_NEEDS,
    DeclaresNeeds,
    GuardsNeeds,
    Need,
    Status,
    StepStatus,
    declared_needs,
)
from wizard.steps.firewall import FILES, FIREWALL, SSH_DROP_IN, boot
from wizard.steps.firewall.answers import FirewallAnswers

NFS_LAN = Need("nfs", ("10.214.2.0/24",), "the shares step exports /srv/nfs to it")


def with_declared(facts: Facts, *needs: Need) -> Facts:
    return facts.with_values({DECLARED_NEEDS: needs})


def plan_with(answers: FirewallAnswers, *needs: Need, **fact_changes: Any) -> Plan:
    return FIREWALL.plan(answers, with_declared(firewall_facts(answers, **fact_changes), *needs))


def v4_rules(answers: FirewallAnswers, *needs: Need, **fact_changes: Any) -> list[str]:
    return written(plan_with(answers, *needs, **fact_changes), boot.RULES_V4).decode().splitlines()


# ---- the firewall meets them ------------------------------------------------------------


def test_a_need_the_zones_meet_already_changes_nothing() -> None:
    offered = router(lan_services=("ssh", "nfs from 10.214.2.0/24"))
    assert v4_rules(offered, NFS_LAN) == rules_of(offered, 4)
    assert not any("because" in note for note in plan_with(offered, NFS_LAN).notes)
    wider = router(lan_services=("ssh", "nfs"))  # the whole zone: the clients included
    assert v4_rules(wider, NFS_LAN) == rules_of(wider, 4)


def test_a_need_is_offered_to_the_zone_whose_network_holds_its_source_only() -> None:
    rules = v4_rules(ROUTER, NFS_LAN)
    wanted = "-A HOSTWIZ-IN-lan -s 10.214.2.0/24 -p tcp -m tcp --dport 2049 -j ACCEPT"
    assert wanted in rules
    assert "-A HOSTWIZ-IN-lan -s 10.214.2.0/24 -p udp -m udp --dport 111 -j ACCEPT" in rules
    for zone in ("mgmt", "wan"):
        assert not any("2049" in rule for rule in chain(rules, f"HOSTWIZ-IN-{zone}"))
    assert chain(rules, "HOSTWIZ-IN-lan")[-1] == "-A HOSTWIZ-IN-lan -j DROP"  # still last
    notes = plan_with(ROUTER, NFS_LAN).notes
    assert "nfs from 10.214.2.0/24 is offered to lan because the shares step exports " \
           "/srv/nfs to it." in notes  # fmt: skip
    zone_map = next(note for note in notes if note.startswith("lan:"))
    assert "nfs from 10.214.2.0/24" in zone_map


def test_one_address_goes_to_its_interfaces_zone_and_ipv6_only_to_the_ipv6_file() -> None:
    need = Need("7946", ("10.213.0.12", "fd00:214:2::7"), "the swarm step's nodes gossip")
    plan = plan_with(ROUTER, need)
    v4 = written(plan, boot.RULES_V4).decode().splitlines()
    v6 = written(plan, boot.RULES_V6).decode().splitlines()
    assert "-A HOSTWIZ-IN-mgmt -s 10.213.0.12/32 -p udp -m udp --dport 7946 -j ACCEPT" in v4
    assert "-A HOSTWIZ-IN-lan -s fd00:214:2::7/128 -p tcp -m tcp --dport 7946 -j ACCEPT" in v6
    assert not any("fd00" in rule for rule in v4)


def test_a_need_without_sources_goes_to_the_zone_of_the_admins_connection() -> None:
    tls = Need("docker-tls", (), "the tls step's dockerd answers the Docker API on 2376/tcp")
    daemon = json.dumps({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]}).encode()
    plan = plan_with(ROUTER, tls, daemon_json=daemon)
    rules = written(plan, boot.RULES_V4).decode().splitlines()
    assert "-A HOSTWIZ-IN-mgmt -p tcp -m tcp --dport 2376 -j ACCEPT" in rules
    assert not any("2376" in rule for rule in chain(rules, "HOSTWIZ-IN-wan"))
    assert any(
        n.startswith("docker-tls is offered to mgmt because the tls step") for n in plan.notes
    )
    # declared: the old note read from daemon.json ("no zone offers it") is not shown
    assert not any("dockerd listens on TCP port 2376" in n for n in plan.notes)
    # a zone that offers it already, to anyone it chose, meets it
    offered = router(lan_services=("ssh", "docker-tls from 10.214.2.9"))
    assert not any("2376" in r for r in chain(v4_rules(offered, tls), "HOSTWIZ-IN-mgmt"))


@pytest.mark.parametrize(
    ("need", "refused"),
    [
        (Need("nfs", ("10.214.1.0/24",), "the shares step exports /srv/nfs to it"), True),
        (Need("4789/udp", ("10.214.1.20",), "the swarm step's overlay traffic"), True),
        (Need("docker-tls", ("10.214.1.20",), "the tls step"), True),
        (Need("7946", ("10.214.1.20",), "the swarm step's gossip", untrusted_ok=True), False),
        (
            Need("esp", ("10.214.1.20",), "the swarm step's encrypted overlay", untrusted_ok=True),
            False,
        ),
    ],
)
def test_what_must_not_face_the_internet_is_refused_in_wan(need: Need, refused: bool) -> None:
    if refused:
        with pytest.raises(PlanConflict) as error:
            plan_with(ROUTER, need)
        assert "untrusted zone wan" in error.value.message
        assert need.why in error.value.message
        assert "firewall.lan_interfaces" in error.value.hint
        assert "firewall.wan_services" in error.value.hint
        return
    rules = v4_rules(ROUTER, need)
    assert any(r.startswith("-A HOSTWIZ-IN-wan -s 10.214.1.20/32 -p") for r in rules)


def test_the_admin_may_still_offer_it_to_wan_deliberately() -> None:
    need = Need("nfs", ("10.214.1.0/24",), "the shares step exports /srv/nfs to it")
    chosen = router(wan_services=("ping", "nfs from 10.214.1.0/24"))
    assert v4_rules(chosen, need) == rules_of(chosen, 4)


def test_a_host_with_only_wan_refuses_a_need_without_sources() -> None:
    links = [LOOPBACK, link("eth0", "10.213.0.5/24")]
    alone = FirewallAnswers(enabled=True, wan_services=("ssh", "ping"))
    with pytest.raises(PlanConflict) as error:
        plan_with(alone, Need("docker-tls", (), "the tls step"), links=links)
    assert "docker-tls is needed (the tls step)" in error.value.message
    assert "mgmt and lan have no interfaces" in error.value.message
    # never the whole internet, even for what may come from listed peers there
    with pytest.raises(PlanConflict, match="untrusted zone wan"):
        plan_with(alone, Need("7946", (), "the swarm step", untrusted_ok=True), links=links)


def test_a_source_on_no_connected_network_must_be_offered_by_hand() -> None:
    need = Need("nfs", ("192.0.2.0/24",), "the shares step exports /srv/nfs to it")
    with pytest.raises(PlanConflict) as error:
        plan_with(ROUTER, need)
    assert "cannot tell which zone" in error.value.message
    assert "'nfs from 192.0.2.0/24'" in error.value.hint
    by_hand = router(lan_services=("ssh", "nfs from 192.0.2.0/24"))
    assert v4_rules(by_hand, need) == rules_of(by_hand, 4)


def test_a_need_the_firewall_cannot_parse_is_a_clear_refusal() -> None:
    with pytest.raises(PlanConflict) as error:
        plan_with(ROUTER, Need("nfz", (), "a step with a typo"))
    assert "a step with a typo" in error.value.message and "'nfs'" in error.value.hint


def test_ssh_needs_are_met_by_the_zones_ssh_which_follows_sshd() -> None:
    assert v4_rules(ROUTER, Need("ssh", (), "the ssh step")) == rules_of(ROUTER, 4)


def test_a_host_where_the_needs_were_applied_plans_nothing_and_is_done() -> None:
    first = plan_with(ROUTER, NFS_LAN)
    writes = [a for a in first.actions if isinstance(a, WriteFile)]
    files = {a.path: a.content for a in writes}
    done = with_declared(firewall_facts(
        ROUTER, files=files, modes={a.path: a.mode for a in writes},
        v4=loaded(files[boot.RULES_V4].decode(), DOCKER_V4),
        v6=loaded(files[boot.RULES_V6].decode(), PLAIN_V6),
        forwarding="1\n1\n", registered="init",
    ), NFS_LAN)  # fmt: skip
    assert FIREWALL.plan(ROUTER, done).empty
    assert FIREWALL.status(ROUTER, done).status is Status.DONE
    # without the need, the zones would drop nfs again: a plan to take it out
    assert not FIREWALL.plan(ROUTER, with_declared(done)).empty


# ---- the firewall, off: zones loaded earlier -------------------------------------------------


@dataclass(frozen=True)
class NeedyAnswers:
    needs: tuple[Need, ...] = ()


class NeedyStep:
    """A step that changes nothing and declares needs (as the shares or swarm steps do)."""

    name = "needy"
    title = "Needs things"
    explanation = ""
    answers_type = NeedyAnswers

    def facts(self, answers: NeedyAnswers) -> list[Fact[Any]]:
        return []

    def plan(self, answers: NeedyAnswers, facts: Facts) -> Plan:
        return Plan(self.name, notes=tuple(n.service for n in declared_needs(facts)))

    def health(self, transport: Any, answers: NeedyAnswers, facts: Facts) -> list[str]:
        return []

    def status(self, answers: NeedyAnswers, facts: Facts) -> StepStatus:
        return StepStatus(Status.UNKNOWN, "")

    def needs(self, answers: NeedyAnswers, facts: Facts) -> tuple[Need, ...]:
        return answers.needs


NEEDY = NeedyStep()
OFF = FirewallAnswers()


def loaded_zones(answers: FirewallAnswers) -> str:
    """``iptables-save`` of a host where an earlier apply loaded ``answers``' zones."""
    first = FIREWALL.plan(answers, firewall_facts(answers))
    return loaded(written(first, boot.RULES_V4).decode(), DOCKER_V4)


def test_the_hooks_are_found_by_type_and_the_firewall_guards_needs() -> None:
    assert isinstance(NEEDY, DeclaresNeeds) and not isinstance(NEEDY, GuardsNeeds)
    assert isinstance(FIREWALL, GuardsNeeds)
    declaring = {name for name, step in STEPS.items() if isinstance(step, DeclaresNeeds)}
    assert declaring == {"ssh", "tls", "shares", "proxy", "swarm"}
    guards = needs_guards([Selection(NEEDY, NeedyAnswers())])
    assert [(g.step, g.answers) for g in guards] == [(FIREWALL, OFF)]
    assert needs_guards([Selection(NEEDY, NeedyAnswers()), Selection(FIREWALL, ROUTER)]) == []


def test_zones_loaded_earlier_that_drop_a_need_refuse_the_change() -> None:
    facts = firewall_facts(OFF, v4=loaded_zones(ROUTER))
    selections = [Selection(NEEDY, NeedyAnswers((NFS_LAN,)))]
    with pytest.raises(PlanConflict) as error:
        plan_changeset("h", selections, facts)
    assert "let 2049/tcp in from nowhere" in error.value.message
    assert NFS_LAN.why in error.value.message
    assert "firewall.enabled = true" in error.value.hint
    udp = [Selection(NEEDY, NeedyAnswers((Need("4789/udp", ("10.214.2.9",), "overlay"),)))]
    with pytest.raises(PlanConflict, match="4789/udp in from nowhere"):
        plan_changeset("h", udp, facts)


def test_zones_that_let_the_need_in_or_no_zones_at_all_pass() -> None:
    selections = [Selection(NEEDY, NeedyAnswers((NFS_LAN,)))]
    opened = firewall_facts(OFF, v4=loaded_zones(router(lan_services=("ssh", "nfs"))))
    assert plan_changeset("h", selections, opened).plans[0].notes == ("nfs",)
    assert plan_changeset("h", selections, firewall_facts(OFF)).plans[0].notes == ("nfs",)


def test_a_need_the_step_accepts_itself_is_not_checked_against_loaded_zones() -> None:
    intercept = Need("3129/tcp", ("10.214.2.0/24",), "the proxy step", own_accept=True)
    facts = firewall_facts(OFF, v4=loaded_zones(ROUTER))
    selections = [Selection(NEEDY, NeedyAnswers((intercept,)))]
    assert plan_changeset("h", selections, facts).plans[0].notes == ("3129/tcp",)
    # with the firewall on, its zones offer it all the same
    rules = v4_rules(ROUTER, intercept)
    assert "-A HOSTWIZ-IN-lan -s 10.214.2.0/24 -p tcp -m tcp --dport 3129 -j ACCEPT" in rules


def test_the_ssh_need_checks_the_port_the_ssh_step_moves_to() -> None:
    moved = {FILES[SSH_DROP_IN].name.removeprefix("file:"): b"Port 2222\n"}
    facts = firewall_facts(OFF, v4=loaded_zones(ROUTER), files=moved)
    ssh = [Selection(NEEDY, NeedyAnswers((Need("ssh", (), "the ssh step"),)))]
    with pytest.raises(PlanConflict, match="SSH is to move to port 2222"):
        plan_changeset("h", ssh, facts)
    # no selected step declares needs: no guard, and the firewall's facts are not read
    from tests.unit.test_session import KeyAnswers, SetKeyStep

    quiet = [Selection(SetKeyStep(), KeyAnswers("a", 1))]
    assert needs_guards(quiet) == []
    assert not any(fact.name == "iptables_v4" for fact in facts_needed(quiet))
    assert any(fact.name == "iptables_v4" for fact in facts_needed(quiet, needs=True))


# ---- the session hands them over ------------------------------------------------------------


def test_the_session_hands_every_declared_need_to_the_firewall() -> None:
    selections = [Selection(FIREWALL, ROUTER), Selection(NEEDY, NeedyAnswers((NFS_LAN,)))]
    changeset = plan_changeset("h", selections, firewall_facts(ROUTER))
    rules = written(changeset.plans[0], boot.RULES_V4).decode()
    assert "-A HOSTWIZ-IN-lan -s 10.214.2.0/24 -p tcp -m tcp --dport 2049 -j ACCEPT" in rules
    extra = Need("8080/tcp", ("10.214.2.0/24",), "a site step")
    with_site = plan_changeset("h", selections, firewall_facts(ROUTER), [extra])
    assert "--dport 8080 -j ACCEPT" in written(with_site.plans[0], boot.RULES_V4).decode()
    assert collect_needs(selections, firewall_facts(ROUTER)) == (NFS_LAN,)
    assert declared_needs(with_needs(selections, Facts({}, {}), [extra])) == (NFS_LAN, extra)


# ---- what the steps declare ------------------------------------------------------------------


def test_the_steps_declare_what_they_expose() -> None:
    from wizard.steps.shares import SharesAnswers
    from wizard.steps.tls.answers import DockerTlsAnswers

    empty = Facts({}, {})
    assert STEPS["tls"].needs(DockerTlsAnswers(), empty) == ()  # type: ignore[attr-defined]
    tls = STEPS["tls"].needs(DockerTlsAnswers(enabled=True), empty)  # type: ignore[attr-defined]
    assert [n.service for n in tls] == ["docker-tls"] and not tls[0].untrusted_ok
    other = STEPS["tls"].needs(DockerTlsAnswers(enabled=True, port=2400), empty)  # type: ignore[attr-defined]
    assert [n.service for n in other] == ["2400/tcp"]
    shares = SharesAnswers(enabled=True, users=("alice",), networks=("10.214.2.0/24",))
    found = STEPS["shares"].needs(shares, empty)  # type: ignore[attr-defined]
    assert found == (Need("nfs", ("10.214.2.0/24",), "the shares step exports /srv/nfs to it"),)


def test_a_lone_swarm_manager_needs_its_ports_from_its_network_esp_only_when_encrypted() -> None:
    from tests.unit.test_swarm_site import node
    from wizard.steps.swarm import SwarmAnswers
    from wizard.steps.swarm.facts import SWARM_HOST

    facts = Facts({SWARM_HOST.name: node("10.214.3.11")}, {})
    answers = SwarmAnswers(enabled=True, advertise_address="cluster")
    found = {n.service: n for n in STEPS["swarm"].needs(answers, facts)}  # type: ignore[attr-defined]
    assert set(found) == {"2377/tcp", "7946", "4789/udp", "esp"}
    assert found["4789/udp"].sources == ("10.214.3.0/24",)
    assert not found["4789/udp"].untrusted_ok and found["7946"].untrusted_ok
    plain = replace(answers, overlay_encrypted=False)
    assert "esp" not in {n.service for n in STEPS["swarm"].needs(plain, facts)}  # type: ignore[attr-defined]


def test_the_swarm_site_gives_each_node_its_peers() -> None:
    from tests.unit.test_swarm_site import ANSWERS, site
    from wizard.steps.swarm.site import SWARM_SITE

    assert isinstance(SWARM_SITE, DeclaresSiteNeeds)
    needs = SWARM_SITE.needs(replace(ANSWERS, overlay=True, overlay_encrypted=True), site())
    manager = {n.service: n.sources for n in needs["node1"]}
    worker = {n.service: n.sources for n in needs["node2"]}
    assert manager == {"2377/tcp": ("10.214.3.12",), "7946": ("10.214.3.12",),
                       "4789/udp": ("10.214.3.12",), "esp": ("10.214.3.12",)}  # fmt: skip
    assert worker == {"7946": ("10.214.3.11",), "4789/udp": ("10.214.3.11",),
                      "esp": ("10.214.3.11",)}  # fmt: skip
    plain = SWARM_SITE.needs(ANSWERS, site())  # no overlay: no ESP
    assert "esp" not in {n.service for n in plain["node1"]}


def test_the_nfs_site_needs_nfs_from_each_client_on_the_server() -> None:
    from tests.unit.test_shares_site import ANSWERS, NO_NFS, host
    from wizard.steps.shares.site import CLIENT, SERVER, SHARES_SITE

    view = SiteFacts({h.name: h for h in (
        host("srv", SERVER), host("c1", CLIENT), host("c2", CLIENT,
                                                      client=replace(NO_NFS, address="10.0.0.8")),
    )})  # fmt: skip
    needs = SHARES_SITE.needs(ANSWERS, view)
    assert set(needs) == {"srv"}
    (nfs,) = needs["srv"]
    assert nfs.service == "nfs" and nfs.sources == ("10.0.0.7", "10.0.0.8")
    named = SHARES_SITE.needs(replace(ANSWERS, networks=("10.0.0.0/24",)), view)
    assert named["srv"][0].sources == ("10.0.0.0/24",)
    assert isinstance(view.hosts["srv"], HostFacts)


def test_the_proxy_needs_its_intercept_port_from_the_clients_and_ssh_its_port() -> None:
    from tests.unit.test_proxy_plan import ON
    from tests.unit.test_proxy_plan import facts as proxy_facts
    from wizard.steps.ssh.answers import SshAnswers

    (intercept,) = STEPS["proxy"].needs(ON, proxy_facts())  # type: ignore[attr-defined]
    assert intercept.service == "3129/tcp" and intercept.own_accept
    assert intercept.sources == ("10.0.2.0/24", "fd00:2::/64")  # the client interface's networks
    listed = replace(ON, client_networks=("10.0.9.0/24",))
    assert STEPS["proxy"].needs(listed, proxy_facts(listed))[0].sources == ("10.0.9.0/24",)  # type: ignore[attr-defined]
    assert STEPS["proxy"].needs(replace(ON, enabled=False), Facts({}, {})) == ()  # type: ignore[attr-defined]
    (ssh,) = STEPS["ssh"].needs(SshAnswers(port=2222), Facts({}, {}))  # type: ignore[attr-defined]
    assert ssh.service == "ssh" and "port 2222" in ssh.why


def test_every_manager_of_a_swarm_site_takes_2377_from_its_peers() -> None:
    """A second manager joins the first's raft on 2377/tcp, and workers reach any manager
    there: each manager needs it, a worker does not (it failed with two managers: the needs
    asked for exactly one)."""
    from tests.unit.test_swarm_site import ANSWERS, facts, node
    from wizard.steps.swarm.site import MANAGER, SWARM_SITE, WORKER

    site = SiteFacts({
        "node1": HostFacts("node1", (MANAGER,), facts(node("10.214.3.11"))),
        "node2": HostFacts("node2", (MANAGER,), facts(node("10.214.3.12"))),
        "node3": HostFacts("node3", (WORKER,), facts(node("10.214.3.13"))),
    })  # fmt: skip
    needs = SWARM_SITE.needs(ANSWERS, site)
    control = {name: {n.service: n.sources for n in found} for name, found in needs.items()}
    assert control["node1"]["2377/tcp"] == ("10.214.3.12", "10.214.3.13")
    assert control["node2"]["2377/tcp"] == ("10.214.3.11", "10.214.3.13")
    assert "2377/tcp" not in control["node3"]
    assert control["node3"]["7946"] == ("10.214.3.11", "10.214.3.12")


# ---- one step opened from the step list: its preview agrees with its status -------------------


def test_the_firewalls_preview_plans_with_the_needs_its_status_counted() -> None:
    """Found by a walkthrough: after a TLS rollback (TLS still on in the session's answers) the
    step list said the firewall was "drifted: 3 change(s)" while its own preview said "Nothing
    to change": the status counted every step's needs, the one-step preview none."""
    first = FIREWALL.plan(ROUTER, firewall_facts(ROUTER))  # applied when nothing needed nfs
    writes = [a for a in first.actions if isinstance(a, WriteFile)]
    files = {a.path: a.content for a in writes}
    facts = firewall_facts(
        ROUTER, files=files, modes={a.path: a.mode for a in writes},
        v4=loaded(files[boot.RULES_V4].decode(), DOCKER_V4),
        v6=loaded(files[boot.RULES_V6].decode(), PLAIN_V6),
        forwarding="1\n1\n", registered="init",
    )  # fmt: skip
    firewall = [Selection(FIREWALL, ROUTER)]
    session = [*firewall, Selection(NEEDY, NeedyAnswers((NFS_LAN,)))]
    (_, status), _ = statuses(session, facts)
    assert status.status is Status.DRIFTED

    planned = plan_changeset("h", firewall, facts, session_needs(firewall, session, facts))
    assert f"{len(planned.plans[0].actions)} change(s)" in status.summary
    assert "--dport 2049 -j ACCEPT" in written(planned.plans[0], boot.RULES_V4).decode()
    assert with_session(firewall, session) == session  # the needy step's facts are read too
    # Without the session, nothing: the disagreement the walkthrough saw.
    assert plan_changeset("h", firewall, facts).empty


def test_a_step_that_only_declares_needs_is_not_refused_by_another_steps_wish() -> None:
    needy = [Selection(NEEDY, NeedyAnswers((NFS_LAN,)))]
    session = [Selection(FIREWALL, ROUTER), *needy]
    assert session_needs(needy, session, firewall_facts(ROUTER)) == ()
    assert with_session(needy, session) == needy
