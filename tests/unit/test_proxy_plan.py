"""The proxy step's answers, fact parser and planner, on fixture facts (no host)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.docker_fixtures import file_output
from wizard.actions import FileState, RunCommand, WriteFile
from wizard.answers import build
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.steps import STEPS
from wizard.steps.base import Status
from wizard.steps.proxy import PROXY, ProxyAnswers, container, rules, squid
from wizard.steps.proxy.facts import Listener, parse_listeners, parse_proxy_host
from wizard.steps.proxy.plan import FILES

ON = ProxyAnswers(enabled=True, client_interfaces=("lan",), blocked_domains=("bad.example",))
ADDR = [
    {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [
        {"local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "eth0", "flags": ["UP"], "addr_info": [{"local": "10.213.0.5", "prefixlen": 24}]},
    {"ifname": "lan", "flags": ["UP"], "addr_info": [
        {"local": "10.0.2.1", "prefixlen": 24}, {"local": "fd00:2::1", "prefixlen": 64},
        {"local": "fe80::1", "prefixlen": 64}]},
]  # fmt: skip
BUILTIN = "*mangle\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"


def host_output(
    squid_v: str = "Squid Cache: Version 5.7",
    running: bool = False,
    listen: str = "",
    rules4: str = BUILTIN,
    rules6: str = BUILTIN,
    boot: str = "squid",
    logdir: bool = True,
) -> str:
    return "\n".join([
        "@@squid", squid_v, "@@running", "yes" if running else "", "@@listen", listen,
        "@@rules4", rules4, "@@rules6", rules6, "@@addr", json.dumps(ADDR), "@@boot", boot,
        "@@logdir", "yes" if logdir else "",
    ])  # fmt: skip


def container_output(
    docker: bool = True, rootless: bool = False, image: str = "sha256:aaa",
    container: dict[str, Any] | None = None, cache: str = "/srv/docker",
) -> tuple[int, str]:  # fmt: skip
    return 0, "\n".join([
        "@@docker", "28.2.2" if docker else "", "@@security",
        '["name=seccomp","name=rootless"]' if rootless else '["name=seccomp"]',
        "@@image", image, "@@container", json.dumps(container) if container else "",
        "@@cache", cache,
    ])  # fmt: skip


def facts(
    answers: ProxyAnswers = ON,
    files: dict[str, bytes] | None = None,
    manager: str = "sysv",
    docker: dict[str, Any] | None = None,
    **host: Any,
) -> Facts:
    raw: dict[str, tuple[int, str]] = {
        f"proxy_host:{answers.log_dir}": (0, host_output(**host)),
        "service_manager": (0, manager),
        f"proxy_container:{answers.container_image}:{answers.container_cache_dir}": (
            container_output(**(docker or {}))
        ),
    }
    for path in FILES:
        content = (files or {}).get(path)
        mode = "755" if path in {rules.SCRIPT, rules.INIT_SCRIPT, container.SCRIPT} else "644"
        raw[f"file:{path}"] = file_output(content, f"{mode} root root")
    return Facts.from_raw(PROXY.facts(answers), raw)


def live(rules_file: str) -> str:
    """What iptables-save prints once the script loaded ``rules_file``: the jumps first."""
    out = []
    for line in rules_file.splitlines():
        if line.startswith("#"):
            continue
        out.append(line)
        table = {"*mangle": "INPUT", "*nat": "PREROUTING", "*filter": "INPUT"}.get(line)
        if table:
            out += [f":{table} ACCEPT [0:0]", f"-A {table} -j HWPROXY-{table}"]
    return "\n".join(out) + "\n"


def done(answers: ProxyAnswers = ON) -> Facts:
    """A host where the plan was applied."""
    plan = PROXY.plan(answers, facts(answers))
    written = {a.path: a.content for a in plan.actions if isinstance(a, WriteFile)}
    return facts(
        answers,
        written,
        running=True,
        listen=f"LISTEN 0 4096 *:{answers.intercept_port} *:*",
        rules4=live(written[rules.RULES_V4].decode()),
        rules6=live(written[rules.RULES_V6].decode()),
        boot="rules squid",
    )


def test_registered_after_the_firewall():
    names = list(STEPS)
    assert names.index("proxy") > names.index("firewall")  # it reads the firewall's rules file


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"web_ports": ["80", "http"]}, "not a port number"),
        ({"web_ports": ["70000"]}, "not a port number"),
        ({"intercept_port": 80}, "also a web port"),
        ({"intercept_port": 3128}, "squid's local port"),
        ({"blocked_domains": ["bad..example"]}, "not a domain name"),
        ({"blocked_domains": ["a b"]}, "not a single word"),
        ({"client_interfaces": ["lan;rm"]}, "not an interface name"),
        ({"client_networks": ["10.0.2.0/33"]}, "not a network"),
        ({"dns_nameservers": ["10.0.0.0/8"]}, "a network, not an address"),
        ({"log_dir": "var/log"}, "not an absolute folder path"),
        ({"log_dir": "/var/../etc"}, "not an absolute folder path"),
        ({"log_dir": "/var/log/squid\ncache_dir x"}, "line break"),
        ({"placement": "cloud"}, "expected one of"),
        ({"dns_timeout": 0}, "dns_timeout"),
    ],
)
def test_bad_answers_are_refused_with_what_was_expected(data: dict[str, Any], message: str):
    with pytest.raises(InvalidAnswer, match=message):
        build(ProxyAnswers, data, where="--set")


def test_blocklist_is_lower_case_deduplicated_and_without_covered_subdomains():
    answers = replace(ON, blocked_domains=("Ads.Example.com", "example.com", ".b.net", "b.net"))
    assert answers.blocklist() == (".b.net", ".example.com")


def test_step_off_plans_nothing():
    assert PROXY.plan(ProxyAnswers(), facts(ProxyAnswers(), squid_v="")).empty


@pytest.mark.parametrize(
    ("answers", "host", "message"),
    [
        (replace(ON, placement="proxy-host"), {}, "planned as a site"),
        (ON, {"squid_v": ""}, "squid is not installed"),
        (replace(ON, client_interfaces=()), {}, "client_interfaces is empty"),
        (replace(ON, client_interfaces=("lan9",)), {}, "no interface lan9"),
    ],
)
def test_what_cannot_work_is_refused_before_any_change(
    answers: ProxyAnswers, host: dict[str, Any], message: str
):
    with pytest.raises(PlanConflict, match=message):
        PROXY.plan(answers, facts(answers, **host))


def test_fresh_host_gets_config_restart_rules_and_boot_path():
    plan = PROXY.plan(ON, facts())
    written = {a.path: a.content.decode() for a in plan.actions if isinstance(a, WriteFile)}
    conf = written[squid.CONF]
    assert "acl clients src 10.0.2.0/24" in conf and "acl clients src fd00:2::/64" in conf
    assert "fe80" not in conf
    assert 'acl blocked dstdomain -n "/etc/squid/hostwiz-blocked.domains"' in conf
    assert "http_port 3129 intercept" in conf and "http_port 127.0.0.1:3128" in conf
    assert "dns_timeout 5 seconds" in conf and "shutdown_lifetime 2 seconds" in conf
    assert "access_log daemon:/var/log/squid/access.log squid" in conf
    assert conf.index("http_access deny blocked") < conf.index("http_access allow clients")
    assert written[squid.BLOCKLIST] == ".bad.example\n"
    v4 = written[rules.RULES_V4]
    assert (
        "-A HWPROXY-PREROUTING -s 10.0.2.0/24 -i lan -p tcp -m tcp --dport 80 "
        "-j REDIRECT --to-ports 3129" in v4
    )
    assert "-m conntrack ! --ctstate DNAT -j DROP" in v4  # direct connections
    assert "-s !" not in v4 and "fd00" not in v4
    assert "fd00:2::/64" in written[rules.RULES_V6] and "10.0.2" not in written[rules.RULES_V6]
    scripts = [a.script for a in plan.actions if isinstance(a, RunCommand)]
    restart = next(s for s in scripts if "squid -k parse" in s)
    assert restart.index("squid -k parse") < restart.index("/etc/init.d/squid restart")
    assert f"{rules.SCRIPT} start" in scripts
    assert "update-rc.d hostwiz-proxy defaults" in scripts
    assert "update-rc.d squid enable" not in scripts  # the package already starts it at boot
    undo = {a.script: a.undo or "" for a in plan.actions if isinstance(a, RunCommand)}
    assert "/etc/init.d/squid stop" in undo[restart]  # squid was not running before
    assert "hwp_stop_family iptables" in undo[f"{rules.SCRIPT} start"]


def test_applied_host_plans_nothing_and_is_done():
    assert PROXY.plan(ON, done()).empty
    assert PROXY.status(ON, done()).status is Status.DONE


def test_rules_gone_from_the_kernel_are_loaded_again_without_touching_squid():
    after = done()
    host = facts(
        ON,
        {p: after[FILES[p]].content for p in FILES if after[FILES[p]].exists},
        running=True,
        listen="LISTEN 0 4096 *:3129 *:*",
        boot="rules squid",
    )
    plan = PROXY.plan(ON, host)
    assert [a.script for a in plan.actions if isinstance(a, RunCommand)] == [
        f"{rules.SCRIPT} start"
    ]
    assert PROXY.status(ON, host).status is Status.NOT_DONE


def test_a_jump_that_is_no_longer_first_is_a_difference():
    wanted = rules.render(ON, ("10.0.2.0/24",), 4)
    moved = live(wanted).replace(
        "-A INPUT -j HWPROXY-INPUT", "-A INPUT -j HOSTWIZ-INPUT\n-A INPUT -j HWPROXY-INPUT"
    )
    assert rules.live_problems(wanted, live(wanted)) == []
    assert "INPUT (filter) does not jump to HWPROXY-INPUT first" in rules.live_problems(
        wanted, moved
    )


def test_squid_problems_that_squid_k_parse_lets_through():
    conf = 'http_port 3129 intercept\nhttp_port 127.0.0.1:3129\nacl b dstdomain "/etc/x"\n'
    assert squid.problems(conf, set()) == [
        "port 3129 is given to squid twice",
        "/etc/x (named in squid.conf) will not exist",
    ]
    assert squid.problems(squid.render(ON, ("10.0.2.0/24",)), {squid.BLOCKLIST}) == []


def test_no_blocked_domains_no_blocklist():
    answers = replace(ON, blocked_domains=())
    plan = PROXY.plan(answers, facts(answers))
    assert squid.BLOCKLIST not in {a.path for a in plan.actions if isinstance(a, WriteFile)}
    assert "blocked" not in squid.render(answers, ("10.0.2.0/24",))


def test_parsers():
    assert parse_listeners("LISTEN 3 4096 0.0.0.0:3129 0.0.0.0:*\nLISTEN 0 5 [::]:22 [::]:*") == (
        Listener(3129, 3), Listener(22, 0),
    )  # fmt: skip
    host = parse_proxy_host(0, host_output(running=True, boot="rules squid"))
    assert host.squid_version == "5.7" and host.running and host.boot == ("rules", "squid")
    assert host.networks == {"eth0": ("10.213.0.0/24",), "lan": ("10.0.2.0/24", "fd00:2::/64")}
    assert parse_proxy_host(0, host_output(squid_v="", logdir=False)).squid_version == ""


def test_systemd_hosts_get_a_unit_and_squid_enabled_when_it_was_not():
    plan = PROXY.plan(ON, facts(manager="systemd", boot=""))
    paths = {a.path for a in plan.actions if isinstance(a, WriteFile)}
    scripts = [a.script for a in plan.actions if isinstance(a, RunCommand)]
    assert rules.UNIT in paths and rules.INIT_SCRIPT not in paths
    assert "systemctl daemon-reload && systemctl enable hostwiz-proxy.service" in scripts
    assert any(s.endswith("systemctl enable squid") for s in scripts)
    assert any("systemctl restart squid" in s for s in scripts)


def test_a_missing_log_folder_is_created_for_squid_and_removed_on_undo():
    answers = replace(ON, log_dir="/srv/squid-logs")
    plan = PROXY.plan(answers, facts(answers, logdir=False))
    first = plan.actions[0]
    assert isinstance(first, RunCommand)
    assert first.script == "install -d -o proxy -g proxy -m 0750 /srv/squid-logs"
    assert first.undo == "rm -rf /srv/squid-logs"
    conf = next(a for a in plan.actions if isinstance(a, WriteFile) and a.path == squid.CONF)
    assert b"access_log daemon:/srv/squid-logs/access.log squid" in conf.content


def test_proxy_rules_are_loaded_again_when_the_firewall_will_jump_in_first():
    """The firewall step (planned earlier in the same change) loads zones whose INPUT jump is
    not there yet: it will be inserted at the top, in front of the proxy's accept."""
    after = done()
    zones = b"*filter\n:HOSTWIZ-INPUT - [0:0]\n-A HOSTWIZ-INPUT -j ACCEPT\nCOMMIT\n"
    planned = after.with_files([FileState(rules.FIREWALL_RULES_V4, True, zones)])
    plan = PROXY.plan(ON, planned)
    assert [a.script for a in plan.actions if isinstance(a, RunCommand)] == [
        f"{rules.SCRIPT} start"
    ]
    jumped = rules.FIREWALL_INPUT_JUMP
    assert rules.firewall_jumps_in_first(zones.decode(), f"*filter\n{jumped}\n") is False


def test_status_with_facts_read_for_other_answers_is_unknown_not_a_crash():
    other = replace(ON, log_dir="/srv/logs")
    assert PROXY.status(other, facts()).status is Status.UNKNOWN


# ---- squid in a container ------------------------------------------------------------------

BOX = replace(ON, placement="container", container_image="hostwiz/squid:test",
              container_timezone="Europe/Copenhagen")  # fmt: skip


@pytest.mark.parametrize(
    ("docker", "host", "message"),
    [
        ({"docker": False}, {}, "dockerd does not answer"),
        ({"rootless": True}, {}, "Docker runs rootless"),
        ({"image": ""}, {}, "hostwiz/squid:test is not on this host"),
        ({}, {"running": True}, "squid from the Debian package runs"),
        ({}, {"boot": "squid"}, "squid from the Debian package runs"),
    ],
)
def test_a_container_that_cannot_work_is_refused(
    docker: dict[str, Any], host: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlanConflict, match=message):
        PROXY.plan(BOX, facts(BOX, docker=docker, boot=host.pop("boot", ""), **host))


def test_a_container_gets_seed_volumes_tz_restart_policy_and_the_host_network() -> None:
    plan = PROXY.plan(BOX, facts(BOX, squid_v="", boot=""))
    files = {a.path: a.content.decode() for a in plan.actions if isinstance(a, WriteFile)}
    script = files[container.SCRIPT]
    for part in ("--network host", "--restart unless-stopped", "-e TZ=Europe/Copenhagen",
                 "-v /etc/squid/squid.conf:/etc/squid/squid.conf:ro",
                 "-v /var/log/squid:/var/log/squid",
                 "-v /srv/docker/squid/cache:/var/spool/squid", "hostwiz/squid:test"):  # fmt: skip
        assert part in script
    commands = [a for a in plan.actions if isinstance(a, RunCommand)]
    create = next(c for c in commands if container.SCRIPT in c.script)
    assert "--entrypoint squid" in create.script and "-k parse" in create.script
    assert "docker rm -f hostwiz-squid" in (create.undo or "")
    made = next(c for c in commands if "install -d -o 13 -g 13" in c.script)
    assert made.script.endswith(" /srv/docker/squid/cache")
    assert made.undo == "rm -rf /srv/docker"  # the folders it made, no more
    assert not any("update-rc.d squid" in c.script for c in commands)  # its restart policy
    assert rules.RULES_V4 in files  # the same REDIRECT as for the package


def test_a_running_container_of_these_answers_plans_nothing_an_older_one_is_recreated() -> None:
    plan = PROXY.plan(BOX, facts(BOX, squid_v="", boot=""))
    written = {a.path: a.content for a in plan.actions if isinstance(a, WriteFile)}
    label = container.digest(BOX, blocklist=True)
    box = {"State": {"Running": True}, "Image": "sha256:aaa",
           "Config": {"Labels": {container.LABEL: label}}}  # fmt: skip
    live_facts = {
        "squid_v": "", "running": True, "boot": "rules",
        "listen": f"LISTEN 0 4096 *:{BOX.intercept_port} *:*",
        "rules4": live(written[rules.RULES_V4].decode()),
        "rules6": live(written[rules.RULES_V6].decode()),
    }  # fmt: skip
    done = facts(BOX, written, docker={"container": box, "cache": ""}, **live_facts)
    assert PROXY.plan(BOX, done).empty
    older = {**box, "Image": "sha256:old"}  # the image was replaced: created again
    again = PROXY.plan(BOX, facts(BOX, written, docker={"container": older, "cache": ""},
                                  **live_facts))  # fmt: skip
    commands = [a for a in again.actions if isinstance(a, RunCommand)]
    assert len(commands) == 1 and f"\n{container.SCRIPT}\n" in commands[0].script
