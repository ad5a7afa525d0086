"""The combination checker: each rule fires on its conflict and stays silent otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from wizard.checks import RULES, Combined, check_combination, parse_host

SAFE: dict[str, dict[str, Any]] = {
    "docker": {"mode": "userns-remap", "live_restore": False},
    "swarm": {"enabled": True, "overlay_encrypted": False,
              "overlay_subnet": "10.81.30.0/24", "gwbridge_subnet": "10.81.10.0/24"},
    "firewall": {"enabled": True, "mgmt_services": ["ssh", "docker-tls", "swarm"],
                 "lan_services": ["ssh", "nfs from 10.0.2.0/24"], "wan_services": ["ping"],
                 "forward": []},
    "tls": {"enabled": True, "port": 2376},
    "shares": {"enabled": False, "networks": ["10.0.2.0/24"]},
}  # fmt: skip
SAFE_HOST: dict[str, Any] = {
    "ip_forward": "1", "dockerd_running": True, "dockerd_cmdline_hosts": False,
    "daemon_hosts": True, "swarm_state": "inactive", "gwbridge_custom": False,
    "kernel_esp": "yes", "kernel_gcm": "yes", "nfs_mounts": (), "routes": ("10.213.0.0/24",),
}  # fmt: skip


def combined(answers: dict[str, dict[str, Any]], host: dict[str, Any]) -> Combined:
    merged = {step: {**SAFE.get(step, {}), **answers.get(step, {})} for step in {*SAFE, *answers}}
    return Combined(merged, {**SAFE_HOST, **host})


CASES: list[tuple[str, dict[str, dict[str, Any]], dict[str, Any]]] = [
    ("live-restore-swarm", {"docker": {"live_restore": True}}, {}),
    ("esp-kernel", {"swarm": {"overlay_encrypted": True}}, {"kernel_esp": "no"}),
    ("vxlan-wan", {"firewall": {"wan_services": ["swarm from 0.0.0.0/0"]}}, {}),
    ("gwbridge-after-init", {}, {"swarm_state": "active", "gwbridge_custom": False}),
    ("ip-forward-off", {}, {"ip_forward": "0"}),
    ("hosts-twice", {}, {"dockerd_cmdline_hosts": True}),
    ("userns-nfs", {"shares": {"enabled": True}}, {}),
    ("subnet-overlap", {"swarm": {"overlay_subnet": "10.213.0.0/16"}}, {}),
    ("rootless-swarm", {"docker": {"mode": "rootless"}}, {}),
    ("rootless-tls", {"docker": {"mode": "rootless"}}, {}),
    ("tls-wan", {"firewall": {"wan_services": ["docker-tls"]}}, {}),
]  # fmt: skip


def test_the_safe_combination_has_no_conflict() -> None:
    assert check_combination(combined({}, {})) == []


@pytest.mark.parametrize(("rule", "answers", "host"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_fires_on_its_conflict_only(
    rule: str, answers: dict[str, dict[str, Any]], host: dict[str, Any]
) -> None:
    found = check_combination(combined(answers, host))
    assert rule in [c.rule for c in found]
    assert all(c.message and c.hint for c in found)
    # The rule alone, on the safe combination: silent.
    only = [r for r in RULES if r.name == rule]
    assert check_combination(combined({}, {}), only) == []


def test_what_the_firewall_offers_through_declared_needs_is_no_conflict() -> None:
    """ESP for an encrypted overlay and nfs for the share's networks are declared needs now:
    the firewall's plan offers them (or refuses, for the untrusted zone), so the checker does
    not warn about zones that do not list them."""
    needs = {"swarm": {"overlay_encrypted": True}, "firewall": {"mgmt_services": ["ssh"]},
             "shares": {"enabled": True, "networks": ["192.168.9.0/24"]}}  # fmt: skip
    names = [c.rule for c in check_combination(combined(needs, {}))]
    assert "esp-firewall" not in names and "nfs-blocked" not in names


def test_every_rule_has_a_case() -> None:
    assert {r.name for r in RULES} == {c[0] for c in CASES}


def test_steps_that_are_off_or_missing_raise_nothing() -> None:
    off = Combined({"swarm": {"enabled": False}, "docker": {"live_restore": True}}, {})
    assert check_combination(off) == []
    assert check_combination(Combined({}, {})) == []


def test_host_facts_parse_this_kernel_and_a_debian_one() -> None:
    here = parse_host(0, "@@config\n# CONFIG_INET_ESP is not set\n# CONFIG_CRYPTO_GCM is not set\n"
                         "@@loaded\n")  # fmt: skip
    assert (here["kernel_esp"], here["kernel_gcm"]) == ("no", "no")
    debian = parse_host(0, "@@config\nCONFIG_INET_ESP=m\nCONFIG_CRYPTO_GCM=m\n@@loaded\n"
                           "/sys/module/esp4\n/sys/module/gcm\n")  # fmt: skip
    assert (debian["kernel_esp"], debian["kernel_gcm"]) == ("yes", "yes")


def test_the_dockerd_and_daemon_json_facts_come_from_the_docker_steps_commands() -> None:
    from tests.unit.docker_fixtures import file_output
    from wizard.checks import HOST_DAEMON, HOST_DOCKERD, parse_host_daemon, parse_host_dockerd
    from wizard.host.docker import DAEMON_JSON, DOCKERD

    assert (HOST_DOCKERD.command, HOST_DAEMON.command) == (DOCKERD.command, DAEMON_JSON.command)
    running = parse_host_dockerd(0, "pid 9\narg /usr/sbin/dockerd\narg -H\narg fd://\n")
    assert running == {"dockerd_running": True, "dockerd_cmdline_hosts": True}
    plain = parse_host_dockerd(0, "pid 9\narg /usr/sbin/dockerd\narg --containerd=x\n")
    assert plain == {"dockerd_running": True, "dockerd_cmdline_hosts": False}
    stopped = parse_host_dockerd(0, "shell_nofile 1024\nexecstart { argv[]=dockerd -H fd:// }\n")
    assert stopped == {"dockerd_running": False, "dockerd_cmdline_hosts": False}
    hosts = file_output(b'{"hosts": ["unix:///var/run/docker.sock"]}')
    assert parse_host_daemon(*hosts) == {"daemon_hosts": True}
    for other in (file_output(b"{}"), file_output(b"not json"), file_output(None), (1, "")):
        assert parse_host_daemon(*other) == {"daemon_hosts": False}


def test_the_checker_imports_no_step() -> None:
    """Rules read answers by step and field name: renaming a step's modules breaks none."""
    import ast
    from pathlib import Path

    import wizard.checks

    folder = Path(wizard.checks.__file__).parent
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.startswith(("wizard.steps", "wizard.firewall"))], (
                source
            )


def test_answers_are_read_from_any_dataclass_selection() -> None:
    from dataclasses import dataclass
    from types import SimpleNamespace

    from wizard.checks import answers_mapping, conflicts_for

    @dataclass
    class Docker:
        mode: str = "rootless"

    @dataclass
    class Swarm:
        enabled: bool = True

    selections = [
        SimpleNamespace(step=SimpleNamespace(name="docker"), answers=Docker()),
        SimpleNamespace(step=SimpleNamespace(name="swarm"), answers=Swarm()),
    ]
    assert answers_mapping(selections) == {"docker": {"mode": "rootless"},
                                           "swarm": {"enabled": True}}  # fmt: skip
    assert [c.rule for c in conflicts_for(selections)] == ["rootless-swarm"]


# --- a whole site -------------------------------------------------------------------------

SWARM_SITE = {"overlay": True, "overlay_encrypted": False, "overlay_subnet": "10.81.30.0/24",
              "gwbridge_subnet": "10.81.10.0/24"}  # fmt: skip
LAB_HOST = {**SAFE_HOST, "routes": ("10.213.0.0/24", "10.214.3.0/24")}


def site_hosts(**changes: dict[str, Any]) -> list[Any]:
    """node1 (swarm-manager), node2 (swarm-worker), nas (nfs-server, on 10.214.3.0/24 and
    10.214.5.0/24), client (nfs-client at 10.214.5.20): every host safe unless changed."""
    from wizard.checks import SiteHostCheck

    base = {
        "node1": (("swarm-manager",), {"docker": SAFE["docker"]}, LAB_HOST),
        "node2": (("swarm-worker",), {"docker": SAFE["docker"]}, LAB_HOST),
        "nas": (("nfs-server",), {"firewall": {**SAFE["firewall"],
                                               "lan_services": ["ssh", "nfs from 10.214.5.0/24"]}},
                {**LAB_HOST, "routes": ("10.214.3.0/24", "10.214.5.0/24")}),
        "client": (("nfs-client",), {}, {**LAB_HOST, "routes": ("10.214.5.0/24",),
                                         "addresses": ("10.214.5.20/24",)}),
    }  # fmt: skip
    hosts = []
    for name, (roles, answers, host) in base.items():
        change = changes.get(name, {})
        merged = {**answers, **change.get("answers", {})}
        hosts.append(SiteHostCheck(name, roles, merged, {**host, **change.get("host", {})}))
    return hosts


def site_steps(swarm: dict[str, Any] | None = None, nfs: dict[str, Any] | None = None) -> list[Any]:
    from wizard.checks import SiteStepAnswers

    return [
        SiteStepAnswers("swarm", ("swarm-manager", "swarm-worker"), {**SWARM_SITE, **(swarm or {})}),
        SiteStepAnswers("nfs", ("nfs-server", "nfs-client"),
                        {"networks": (), "client_mount_point": "/mnt/share", **(nfs or {})}),
    ]  # fmt: skip


def found(hosts: list[Any], steps: list[Any]) -> set[tuple[str, str]]:
    from wizard.checks import check_site

    return {(c.rule, c.host) for c in check_site(hosts, steps)}


def test_a_safe_site_has_no_conflict() -> None:
    assert found(site_hosts(), site_steps()) == set()


def test_the_swarm_subnet_on_another_hosts_route_is_a_site_conflict() -> None:
    # The nas routes to 10.214.5.0/24; an overlay there is a conflict found on the nas.
    steps = site_steps(swarm={"overlay_subnet": "10.214.5.0/25"})
    assert found(site_hosts(), steps) == {("site-subnet-overlap", "nas"),
                                          ("site-subnet-overlap", "client")}  # fmt: skip
    # On a swarm host's own route it is that host's rule (once, not twice).
    steps = site_steps(swarm={"overlay_subnet": "10.214.3.0/25"})
    assert found(site_hosts(), steps) == {("subnet-overlap", "node1"), ("subnet-overlap", "node2"),
                                          ("site-subnet-overlap", "nas")}  # fmt: skip


def test_vxlan_open_to_wan_on_any_host_of_the_site() -> None:
    wan = {"answers": {"firewall": {**SAFE["firewall"], "wan_services": ["swarm"]}}}
    assert found(site_hosts(node2=wan), site_steps()) == {("vxlan-wan", "node2")}
    assert found(site_hosts(client=wan), site_steps()) == {("vxlan-wan", "client")}


def test_a_site_swarm_without_an_overlay_needs_no_esp_and_no_overlay_subnet() -> None:
    kernel = {"host": {"kernel_esp": "no", "routes": ("10.81.30.128/25",)}}
    no_overlay = site_steps(swarm={"overlay": False, "overlay_encrypted": True})
    assert found(site_hosts(node1=kernel), no_overlay) == set()
    with_overlay = site_steps(swarm={"overlay_encrypted": True})
    assert found(site_hosts(node1=kernel), with_overlay) == {("esp-kernel", "node1"),
                                                             ("subnet-overlap", "node1")}  # fmt: skip


def test_rootless_docker_on_a_swarm_host_only() -> None:
    rootless = {"answers": {"docker": {"mode": "rootless", "live_restore": False}}}
    assert found(site_hosts(node2=rootless), site_steps()) == {("rootless-swarm", "node2")}
    assert found(site_hosts(client=rootless), site_steps()) == set()  # not in the swarm
    # The site's swarm answers reach its hosts: live-restore there is refused too.
    live = {"answers": {"docker": {"mode": "rootful", "live_restore": True}}}
    assert found(site_hosts(node1=live), site_steps()) == {("live-restore-swarm", "node1")}


def test_an_nfs_export_the_servers_zones_do_not_list_is_no_conflict_in_a_site() -> None:
    """The server's firewall offers nfs to the site's clients through the nfs step's declared
    needs (or its plan refuses a client it cannot reach safely): nothing for the checker."""
    moved = {"host": {"addresses": ("10.214.3.40/24",), "routes": ("10.214.3.0/24",)}}
    assert found(site_hosts(client=moved), site_steps()) == set()
    named = site_steps(nfs={"networks": ("192.168.7.0/24",)})
    assert found(site_hosts(), named) == set()


def test_userns_remap_on_an_nfs_client_of_the_site() -> None:
    remap = {"answers": {"docker": {"mode": "userns-remap", "live_restore": False}}}
    assert found(site_hosts(client=remap), site_steps()) == {("userns-nfs", "client")}
    assert found(site_hosts(client=remap), site_steps()[:1]) == set()  # no NFS in the site


def test_every_site_rule_has_a_case() -> None:
    from wizard.checks import SITE_RULES

    assert {rule.name for rule in SITE_RULES} == {"site-subnet-overlap"}


def test_conflicts_name_their_host_in_text_and_json() -> None:
    from wizard.checks import Conflict, conflict_lines, conflicts_json

    conflict = Conflict("vxlan-wan", "open", "close it", "node2")
    assert conflict_lines([conflict])[0] == "! conflict (vxlan-wan) on node2: open"
    assert conflicts_json([conflict]) == [{"rule": "vxlan-wan", "message": "open",
                                           "hint": "close it", "host": "node2"}]  # fmt: skip
    assert "host" not in conflicts_json([Conflict("a", "b", "c")])[0]


def test_addresses_are_read_for_the_site_rules() -> None:
    facts = parse_host(0, "@@addresses\n10.214.5.20/24\n@@routes\n10.214.5.0/24\n")
    assert facts["addresses"] == ("10.214.5.20/24",) and facts["routes"] == ("10.214.5.0/24",)
    # as ip prints them (the command leaves the picking to the parser)
    ip = parse_host(0, "@@routes\ndefault via 10.213.0.1 dev eth0\n"
                       "10.213.0.0/24 dev eth0 proto kernel scope link src 10.213.0.10\n"
                       "unreachable 10.9.0.0/16\n@@addresses\n"
                       "2: eth0    inet 10.213.0.10/24 brd 10.213.0.255 scope global eth0\\"
                       "       valid_lft forever preferred_lft forever\n")  # fmt: skip
    assert ip["routes"] == ("10.213.0.0/24",) and ip["addresses"] == ("10.213.0.10/24",)
