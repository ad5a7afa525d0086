"""The proxy site step (squid on another host, policy routing on the router) on fixture facts:
answers, what each stage plans on which host, the rules as iptables-save prints them, the
refusals, and an applied site that plans nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.docker_fixtures import file_output
from tests.unit.test_proxy_plan import ADDR as PROXY_ADDR_ONE_HOST
from tests.unit.test_proxy_plan import host_output
from wizard.actions import RunCommand, WriteFile
from wizard.answers import build, fields_of
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.plan import Plan
from wizard.site.model import SiteError, load_site
from wizard.site.registry import SITE_STEPS
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.proxy import route
from wizard.steps.proxy.health import path_problems
from wizard.steps.proxy.plan import FILES as SQUID_FILES
from wizard.steps.proxy.site import FILES, PROXY_SITE, ProxySiteAnswers
from wizard.transport.base import CommandResult

ON = ProxySiteAnswers(client_interfaces=("lan",), blocked_domains=("bad.example",))
ROUTER_ADDR = [
    {"ifname": "eth0", "flags": ["UP"], "addr_info": [{"local": "10.213.0.5", "prefixlen": 24}]},
    {"ifname": "lan", "flags": ["UP"], "addr_info": [
        {"local": "10.0.2.1", "prefixlen": 24}, {"local": "fd00:2::1", "prefixlen": 64}]},
    {"ifname": "wan", "flags": ["UP"], "addr_info": [{"local": "10.0.1.1", "prefixlen": 24}]},
]  # fmt: skip
PROXY_ADDR = [
    {"ifname": "eth0", "flags": ["UP"], "addr_info": [{"local": "10.213.0.6", "prefixlen": 24}]},
    {"ifname": "lan", "flags": ["UP"], "addr_info": [
        {"local": "10.0.2.3", "prefixlen": 24}, {"local": "fd00:2::3", "prefixlen": 64},
        {"local": "fe80::3", "prefixlen": 64}]},
]  # fmt: skip
FAR_AWAY = {
    "ifname": "eth0",
    "flags": ["UP"],
    "addr_info": [{"local": "10.9.9.3", "prefixlen": 24}],
}
ROUTER_SYSCTL = {"ipv4/ip_forward": "1", "ipv6/conf/all/forwarding": "1",
                 "ipv4/conf/all/rp_filter": "0", "ipv4/conf/lan/rp_filter": "1",
                 "ipv4/conf/all/send_redirects": "1", "ipv4/conf/lan/send_redirects": "1"}  # fmt: skip
BUILTIN = (
    "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n"
    ":DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n"
)
TABLE_V6 = "default via fd00:2::3 dev lan metric 1024 pref medium\n"


def net_output(addresses: list[dict[str, Any]], sysctl: dict[str, str]) -> tuple[int, str]:
    lines = [f"/proc/sys/net/{path} {value}" for path, value in sysctl.items()]
    return 0, "\n".join(["@@addr", json.dumps(addresses), "@@sysctl", *lines])


def route_output(rules4: str = BUILTIN, rules6: str = BUILTIN, rule4: str = "", rule6: str = "",
                 table4: str = "", table6: str = "", boot: str = "") -> tuple[int, str]:  # fmt: skip
    return 0, "\n".join(["@@rules4", rules4, "@@rules6", rules6, "@@rule4", rule4, "@@rule6",
                         rule6, "@@table4", table4, "@@table6", table6, "@@boot", boot])  # fmt: skip


def router_facts(answers: ProxySiteAnswers = ON, files: dict[str, bytes] | None = None,
                 sysctl: dict[str, str] | None = None, addr: list[dict[str, Any]] | None = None,
                 **live: str) -> Facts:  # fmt: skip
    raw = {
        "proxy_net_host": net_output(addr or ROUTER_ADDR, sysctl or ROUTER_SYSCTL),
        f"proxy_route:{answers.route_table}": route_output(**live),
        "service_manager": (0, "sysv"),
    }
    for path in FILES:
        mode = "755" if path in {route.SCRIPT, route.INIT_SCRIPT} else "644"
        raw[f"file:{path}"] = file_output((files or {}).get(path), f"{mode} root root")
    return Facts.from_raw(PROXY_SITE.facts(answers, "router"), raw)


def proxy_facts(answers: ProxySiteAnswers = ON, addr: list[dict[str, Any]] | None = None,
                **host: Any) -> Facts:  # fmt: skip
    raw = {
        "proxy_net_host": net_output(addr or PROXY_ADDR, {"ipv4/conf/lan/rp_filter": "1"}),
        f"proxy_host:{answers.log_dir}": (
            0,
            host_output(**host).replace(
                json.dumps(PROXY_ADDR_ONE_HOST), json.dumps(addr or PROXY_ADDR)
            ),
        ),
        "service_manager": (0, "sysv"),
    }
    for path in FILES:
        raw[f"file:{path}"] = file_output(None)
    for path in SQUID_FILES:
        raw[f"file:{path}"] = file_output(None)
    return Facts.from_raw(PROXY_SITE.facts(answers, "proxy"), raw)


def site(router: Facts | None = None, proxy: Facts | None = None, same: bool = False) -> SiteFacts:
    hosts = {"gw": HostFacts("gw", ("router",), router or router_facts())}
    if same:
        hosts["gw"] = HostFacts("gw", ("router", "proxy"), hosts["gw"].facts)
    else:
        hosts["squid"] = HostFacts("squid", ("proxy",), proxy or proxy_facts())
    return SiteFacts(hosts)


def written(plan: Plan) -> dict[str, str]:
    return {a.path: a.content.decode() for a in plan.actions if isinstance(a, WriteFile)}


def test_registered_as_a_site_step_with_the_roles_router_and_proxy() -> None:
    assert SITE_STEPS["proxy"] is PROXY_SITE
    assert PROXY_SITE.roles == ("router", "proxy") and PROXY_SITE.stages == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"placement": "router"}, "the site step places squid"),
        ({"proxy_address": "fd00::3"}, "not an IPv4 address"),
        ({"proxy_address6": "10.0.2.3"}, "not an IPv6 address"),
        ({"route_table": 254}, "route_table 1 to 252"),
        ({"route_mark": 0}, "route_mark"),
        ({"blocked_domains": ["a b"]}, "not a single word"),  # the one-host checks hold too
    ],
)
def test_bad_site_answers_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAnswer, match=message):
        build(ProxySiteAnswers, data, where="site [steps.proxy]")


def test_site_answers_have_no_container_settings_and_refuse_them_clearly(tmp_path: Path) -> None:
    """squid in a container is the one-host step's placement: a site neither asks nor takes
    its settings (they meant nothing: the proxy host runs squid from its package)."""
    names = {info.name for info in fields_of(ProxySiteAnswers)}
    assert not {name for name in names if name.startswith("container_")}
    assert {"client_interfaces", "web_ports", "log_dir", "proxy_address"} <= names
    path = tmp_path / "s.toml"
    path.write_text('[hosts.r]\nroles = ["router"]\n[hosts.p]\nroles = ["proxy"]\n'
                    '[steps.proxy]\nclient_interfaces = ["lan"]\n'
                    'container_image = "ubuntu/squid:latest"\n')  # fmt: skip
    with pytest.raises(SiteError) as refused:
        load_site(path)
    message = refused.value.message
    assert "s.toml [steps.proxy], line 7: unknown setting 'container_image'" in message
    assert "squid in a container on one host" in message
    assert "container_" not in refused.value.hint  # the settings it lists are the site's


def test_stage_one_is_squid_on_the_proxy_host_for_the_routers_client_networks() -> None:
    plans = PROXY_SITE.plan(ON, 1, site())
    assert set(plans) == {"squid"}
    files = written(plans["squid"])
    v4 = files["/etc/hostwiz/proxy/rules.v4"]
    assert ("-A HWPROXY-PREROUTING -s 10.0.2.0/24 -i lan -p tcp -m tcp --dport 80 "
            "-j REDIRECT --to-ports 3129") in v4  # fmt: skip
    assert "--dport 3129 -m conntrack ! --ctstate DNAT -j DROP" in v4  # direct connections
    assert "-s fd00:2::/64 -i lan" in files["/etc/hostwiz/proxy/rules.v6"]
    assert "acl clients src 10.0.2.0/24" in files["/etc/squid/squid.conf"]
    assert files[route.PROXY_SYSCTL].endswith("net.ipv4.conf.lan.rp_filter = 2\n")
    assert not any("HWPROXYRT" in text for text in files.values())


def test_stage_two_marks_routes_and_accepts_on_the_router_ipv4_and_ipv6() -> None:
    plans = PROXY_SITE.plan(ON, 2, site())
    assert set(plans) == {"gw"}
    files = written(plans["gw"])
    v4, v6 = files[route.RULES_V4], files[route.RULES_V6]
    assert ("-A HWPROXYRT-MARK ! -s 10.0.2.3/32 -i lan -p tcp -m tcp --dport 80 "
            "-j MARK --set-xmark 0x2/0xffffffff") in v4  # fmt: skip
    assert "-A HWPROXYRT-MARK ! -s fd00:2::3/128 -i lan -p tcp -m tcp --dport 80" in v6
    assert "-s ! " not in v4 + v6  # seed 000's typo, refused by iptables 1.8.9
    assert "-A HWPROXYRT-FORWARD -i lan -o lan -p tcp -m mark --mark 0x2 -j ACCEPT" in v4
    assert files[route.ROUTING].endswith("MARK=2\nTABLE=2\nPROXY4=10.0.2.3\nPROXY6=fd00:2::3\n")
    assert "net.ipv4.conf.lan.rp_filter = 2" in files[route.SYSCTL]
    assert "net.ipv4.conf.all.send_redirects = 0" in files[route.SYSCTL]
    commands = [a for a in plans["gw"].actions if isinstance(a, RunCommand)]
    load = next(c for c in commands if c.script.endswith(f"{route.SCRIPT} start"))
    assert "hwpr_stop 2 2" in load.undo and "net.ipv4.conf.lan.rp_filter=1" in load.undo
    assert any(c.script == "update-rc.d hostwiz-proxy-route defaults" for c in commands)


def test_a_proxy_on_another_interface_gets_its_answers_accepted_and_loose_rp_filter() -> None:
    addr = [*ROUTER_ADDR, {"ifname": "dmz", "flags": ["UP"],
                           "addr_info": [{"local": "10.0.9.1", "prefixlen": 24}]}]  # fmt: skip
    proxy_addr = [{"ifname": "eth1", "flags": ["UP"],
                   "addr_info": [{"local": "10.0.9.3", "prefixlen": 24}]}]  # fmt: skip
    plans = PROXY_SITE.plan(ON, 2, site(router_facts(addr=addr), proxy_facts(addr=proxy_addr)))
    files = written(plans["gw"])
    v4 = files[route.RULES_V4]
    assert "-A HWPROXYRT-FORWARD -i lan -o dmz -p tcp -m mark --mark 0x2 -j ACCEPT" in v4
    assert "-A HWPROXYRT-FORWARD -i dmz -o lan -p tcp -m tcp --sport 80 -j ACCEPT" in v4
    assert "net.ipv4.conf.dmz.rp_filter = 2" in files[route.SYSCTL]
    assert "PROXY6=\n" in files[route.ROUTING]  # no IPv6 on dmz: IPv6 goes out directly
    assert "--set-xmark" not in files[route.RULES_V6]
    assert any("IPv6 web traffic goes out directly" in n for n in plans["gw"].notes)
    squid = written(PROXY_SITE.plan(ON, 1, site(router_facts(addr=addr),
                                                 proxy_facts(addr=proxy_addr)))["squid"])  # fmt: skip
    assert "-s 10.0.2.0/24 -i eth1 -p tcp" in squid["/etc/hostwiz/proxy/rules.v4"]


@pytest.mark.parametrize(
    ("view", "message"),
    [
        (lambda: site(same=True), "has both roles"),
        (lambda: site(proxy=proxy_facts(addr=[FAR_AWAY])), "no IPv4 address on a network"),
        (lambda: site(router_facts(sysctl={"ipv4/ip_forward": "0"})), "does not forward IPv4"),
        (lambda: site(router_facts(table4="10.9.0.0/16 via 10.0.1.9 dev wan\n")), "is in use"),
        (lambda: site(router_facts(table6="default via fd00:1::9 dev wan\n")), "is in use"),
        (
            lambda: site(router_facts(rules4="*nat\n:HWPROXY-PREROUTING - [0:0]\nCOMMIT\n")),
            "runs squid itself",
        ),
    ],
)
def test_what_cannot_work_is_refused_naming_the_host(view: Any, message: str) -> None:
    with pytest.raises(PlanConflict, match=message):
        PROXY_SITE.plan(ON, 2, view())


def test_a_given_address_must_be_the_proxy_hosts() -> None:
    with pytest.raises(PlanConflict, match=r"has no address 10\.0\.2\.99"):
        PROXY_SITE.plan(replace(ON, proxy_address="10.0.2.99"), 2, site())


def test_forwarding_the_routers_firewall_turns_on_in_stage_one_is_enough() -> None:
    switch = b"net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n"
    facts = router_facts(sysctl={"ipv4/ip_forward": "0"}, files={route.FIREWALL_SYSCTL: switch})
    assert PROXY_SITE.plan(ON, 2, site(facts))["gw"].actions


def live(rules_file: str) -> str:
    """iptables-save after the script: the jumps first, DOCKER-USER's too."""
    out = []
    for line in rules_file.splitlines():
        if line.startswith("#"):
            continue
        out.append(line)
        if line == "*mangle":
            out += [":PREROUTING ACCEPT [0:0]", "-A PREROUTING -j HWPROXYRT-MARK"]
        if line == "*filter":
            out += [":FORWARD DROP [0:0]", ":DOCKER-USER - [0:0]", "-A FORWARD -j HWPROXYRT-FORWARD",
                    "-A FORWARD -j DOCKER-USER", "-A DOCKER-USER -j HWPROXYRT-FORWARD",
                    "-A DOCKER-USER -j RETURN"]  # fmt: skip
    return "\n".join(out) + "\n"


def applied(answers: ProxySiteAnswers = ON, **lost: str) -> Facts:
    files = {p: t.encode() for p, t in written(PROXY_SITE.plan(answers, 2, site())["gw"]).items()}
    rule = "30000:\tfrom all fwmark 0x2 lookup 2\n"
    sysctl = {**ROUTER_SYSCTL, "ipv4/conf/lan/rp_filter": "2",
              "ipv4/conf/all/send_redirects": "0", "ipv4/conf/lan/send_redirects": "0"}  # fmt: skip
    return router_facts(
        answers, files, sysctl, rules4=live(files[route.RULES_V4].decode()),
        rules6=live(files[route.RULES_V6].decode()), rule4=rule, rule6=rule,
        **{"table4": "default via 10.0.2.3 dev lan \n", "table6": TABLE_V6, "boot": "init",
           **lost},
    )  # fmt: skip


def test_an_applied_router_plans_nothing_and_a_lost_route_is_drift() -> None:
    assert PROXY_SITE.plan(ON, 2, site(applied()))["gw"].empty
    plan = PROXY_SITE.plan(ON, 2, site(applied(table6="")))["gw"]
    assert [a.script for a in plan.actions if isinstance(a, RunCommand)] == [
        f"{route.SCRIPT} start"
    ]


def test_a_firewall_rule_before_the_jump_is_drift_dockers_own_jump_is_not() -> None:
    text = written(PROXY_SITE.plan(ON, 2, site())["gw"])[route.RULES_V4]
    ok = live(text).replace("-A FORWARD -j HWPROXYRT-FORWARD\n-A FORWARD -j DOCKER-USER",
                            "-A FORWARD -j DOCKER-USER\n-A FORWARD -j HWPROXYRT-FORWARD")  # fmt: skip
    assert route.rules_problems(text, ok) == []
    bad = ok.replace("-A DOCKER-USER -j HWPROXYRT-FORWARD\n", "-A DOCKER-USER -j HOSTWIZ-FORWARD\n")
    assert route.rules_problems(text, bad) == ["DOCKER-USER does not jump to HWPROXYRT-FORWARD"]


def test_a_changed_table_removes_the_old_one_first() -> None:
    moved = replace(ON, route_table=7, route_mark=7)
    old = written(PROXY_SITE.plan(ON, 2, site())["gw"])[route.ROUTING].encode()
    facts = router_facts(moved, files={route.ROUTING: old})
    load = [a for a in PROXY_SITE.plan(moved, 2, site(facts))["gw"].actions
            if isinstance(a, RunCommand) and a.script.endswith(f"{route.SCRIPT} start")]  # fmt: skip
    assert "hwpr_stop 2 2\n" in load[0].script


class ScriptedHost:
    """Answers each script by the first key it contains (exit 1, nothing, otherwise)."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.scripts: list[str] = []

    def run(self, script: str, **kwargs: Any) -> CommandResult:
        self.scripts.append(script)
        code, out = next((v for k, v in self.answers.items() if k in script), (1, ""))
        return CommandResult(script, code, out.encode())


SQUID_403 = "HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n"


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({"command -v python3": (0, ""), "ip -4 route get": (0, ""), "python3 -": (0, SQUID_403)},
         ""),
        ({"command -v python3": (0, ""), "ip -4 route get": (0, ""),
          "python3 -": (0, "HTTP/1.1 200 OK\r\nServer: nginx\r\n")}, "no answer from squid"),
        ({"command -v python3": (0, ""), "ip -4 route get": (0, ""),
          "python3 -": (1, "hostwiz-probe: timed out\n")}, "hostwiz-probe: timed out"),
        # Without python3 (SO_MARK needs it), the kernel's route for a marked packet.
        ({"mark 2": (0, "192.0.2.1 via 10.214.2.3 dev lan src 10.214.2.1 mark 0x2\n")}, ""),
        ({"mark 2": (0, "192.0.2.1 via 10.214.1.100 dev wan mark 0x2\n")}, "not routed"),
    ],
)  # fmt: skip
def test_the_routers_request_along_the_clients_path_must_reach_squid(
    answers: dict[str, tuple[int, str]], problem: str
) -> None:
    host = ScriptedHost(answers)
    found = path_problems(host, 4, "10.214.2.1", "10.214.2.3", "80", 2)  # type: ignore[arg-type]
    assert (problem in " ".join(found)) if problem else found == []
    probes = [s for s in host.scripts if s.startswith("python3 -")]
    for probe in probes:  # from the router's client-side address, marked, to TEST-NET-1
        assert "SOURCE = '10.214.2.1'" in probe and "MARK = 2" in probe
        assert "DEST = '192.0.2.1'" in probe and "/squid-internal-mgr/" in probe
