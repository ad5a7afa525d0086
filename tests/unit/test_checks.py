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
                         "@@loaded\n@@dockerd\n/usr/sbin/dockerd -H fd:// --containerd=x\n")  # fmt: skip
    assert (here["kernel_esp"], here["kernel_gcm"]) == ("no", "no")
    assert here["dockerd_cmdline_hosts"] and here["dockerd_running"]
    debian = parse_host(0, "@@config\nCONFIG_INET_ESP=m\nCONFIG_CRYPTO_GCM=m\n@@loaded\n"
                           "/sys/module/esp4\n/sys/module/gcm\n")  # fmt: skip
    assert (debian["kernel_esp"], debian["kernel_gcm"]) == ("yes", "yes")
    assert not debian["dockerd_cmdline_hosts"]


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
