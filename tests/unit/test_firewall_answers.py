"""Firewall answers as tables: every bad input is refused when the answers are built, with a
message naming the field and a hint saying what to write instead. Pure: no host involved."""

from __future__ import annotations

import ipaddress
import re
from importlib import resources
from typing import Any

import pytest

from presets import apply_overrides, load_preset, parse_preset
from wizard.answers import fields_of
from wizard.errors import InvalidAnswer, PresetError
from wizard.steps.firewall.answers import ZONES, FirewallAnswers
from wizard.steps.firewall.services import KNOWN_SERVICES, Opening, PortRange, parse_service

BAD_ANSWERS: list[tuple[dict[str, Any], str, str]] = [
    # (answers, what the message must say, what the hint must say)
    ({"wan_services": ("shh",)}, "firewall.wan_services: 'shh'", "Did you mean 'ssh'?"),
    ({"mgmt_services": ("ssh", "htps")}, "firewall.mgmt_services: 'htps'", "'https'"),
    ({"container_services": ("dsn",)}, "firewall.container_services: 'dsn'", "'dns'"),
    ({"lan_services": ("docker_tls",)}, "firewall.lan_services", "'docker-tls'"),
    ({"lan_services": ("70000/tcp",)}, "from 1 to 65535", "8080/tcp"),
    ({"lan_services": ("0",)}, "'0' is not a port", "60000-61000/udp"),
    ({"lan_services": ("9000-8000/tcp",)}, "firewall.lan_services: '9000-8000/tcp'", "range"),
    ({"wan_services": ("8080/sctp",)}, "protocol 'sctp'", "8080/tcp, 8080/udp"),
    ({"wan_services": ("",)}, "firewall.wan_services: an empty service entry", "Known services"),
    ({"wan_services": ("ssh from",)}, "'ssh from' is not understood", "'ssh from 10.0.0.0/8'"),
    (
        {"wan_services": ("ssh from 10.0.0.0/8 192.168.0.0/16",)},
        "not understood",
        "one network per entry",
    ),
    ({"wan_services": ("ssh from 10.0.0.300",)}, "'10.0.0.300' is not a network", "/24"),
    ({"wan_services": ("ssh from 10.0.0.0/33",)}, "'10.0.0.0/33' is not a network", "/24"),
    ({"wan_services": ("ssh from lan",)}, "'lan' is not a network", "192.168.1.0/24"),
    ({"swarm_peers": ("node2",)}, "firewall.swarm_peers: 'node2' is not a network", "10.0.0.5"),
    (
        {"mgmt_interfaces": ("eth0",), "lan_interfaces": ("eth1", "eth0")},
        "firewall.lan_interfaces: interface eth0 is also in firewall.mgmt_interfaces",
        "exactly one zone",
    ),
    (
        {"wan_interfaces": ("ens3", "ens3")},
        "firewall.wan_interfaces: interface ens3 is listed twice",
        "once",
    ),
    ({"mgmt_interfaces": ("averyveryverylongname",)}, "firewall.mgmt_interfaces", "15 characters"),
    ({"mgmt_interfaces": ("eth 0",)}, "'eth 0' is not an interface name", "without spaces"),
    ({"lan_interfaces": ("../eth0",)}, "firewall.lan_interfaces: '../eth0'", "'/'"),
    (
        {"forward": ("lan>dmz",)},
        "firewall.forward: 'lan>dmz' names no zone 'dmz'",
        "mgmt, lan, wan",
    ),
    ({"forward": ("lan>lan",)}, "'lan>lan' routes a zone to itself", "two different zones"),
    ({"forward": ("lan-wan",)}, "'lan-wan' is not a pair of zones", "lan>wan"),
    ({"forward": ("LAN>wan",)}, "names no zone 'LAN'", "lan>wan"),
    (
        {"containers_reachable_from": ("lna",)},
        "firewall.containers_reachable_from: 'lna' is neither a zone nor a network",
        "Did you mean 'lan'?",
    ),
    (
        {"containers_reachable_from": ("8080/tcp from dmz",)},
        "'dmz' is neither a zone nor a network",
        "10.0.0.0/8",
    ),
    (
        {"containers_reachable_from": ("ssh from wan",)},
        "'ssh from wan' names a service",
        "'8080/tcp from wan'",
    ),
    (
        {"containers_reachable_from": ("8080/tcp to wan",)},
        "'8080/tcp to wan' is not understood",
        "PORT/PROTO from",
    ),
    (
        {"containers_reachable_from": ("99999/tcp from wan",)},
        "'99999/tcp' is not a port",
        "8080/tcp",
    ),
]


@pytest.mark.parametrize(("values", "message", "hint"), BAD_ANSWERS)
def test_bad_answers_are_refused_naming_the_field_with_a_hint(values, message, hint):
    with pytest.raises(InvalidAnswer) as caught:
        FirewallAnswers(**values)
    assert message in caught.value.message
    assert re.match(r"^firewall\.[a-z_]+: ", caught.value.message)
    assert hint in caught.value.hint


@pytest.mark.parametrize(
    ("text", "name", "openings", "source"),
    [
        ("ssh", "ssh", (), None),
        ("SSH from 10.1.2.3", "ssh", (), "10.1.2.3/32"),
        ("dns from fd00::/64", "dns", KNOWN_SERVICES["dns"][1], "fd00::/64"),
        ("8080/tcp", "", (Opening("tcp", (PortRange(8080, 8080),)),), None),
        (
            "53",
            "",
            (Opening("tcp", (PortRange(53, 53),)), Opening("udp", (PortRange(53, 53),))),
            None,
        ),
        ("60000-61000/udp", "", (Opening("udp", (PortRange(60000, 61000),)),), None),
        (
            "60000:61000/udp from 192.168.1.0/24",
            "",
            (Opening("udp", (PortRange(60000, 61000),)),),
            "192.168.1.0/24",
        ),
        ("1/tcp", "", (Opening("tcp", (PortRange(1, 1),)),), None),
        ("65535/udp", "", (Opening("udp", (PortRange(65535, 65535),)),), None),
    ],
)
def test_good_service_entries_parse(text, name, openings, source):
    spec = parse_service(text, "firewall.lan_services")
    assert (spec.name, spec.openings) == (name, openings)
    assert spec.source == (ipaddress.ip_network(source) if source else None)


def test_port_ranges_are_written_the_way_iptables_prints_them():
    assert str(PortRange(60000, 61000)) == "60000:61000" and str(PortRange(22, 22)) == "22"


def test_good_answers_parse_into_pairs_accesses_and_peers():
    answers = FirewallAnswers(
        mgmt_interfaces=("eth0",), lan_interfaces=("lan", "lan2"), wan_interfaces=("wan",),
        forward=(" lan > wan ", "lan>wan", "mgmt>lan"),
        containers_reachable_from=("lan", "10.0.0.0/8", "8080/tcp from wan", "53 from fd00::/8"),
        swarm_peers=("10.214.2.20", "fd00::/64"),
    )  # fmt: skip
    assert answers.forward_pairs() == (("lan", "wan"), ("mgmt", "lan"))
    access = answers.container_access()
    assert [where for where, _ in access] == ["lan", "10.0.0.0/8", "wan", "fd00::/8"]
    assert access[0][1] is None and access[2][1] is not None and access[2][1].text == "8080/tcp"
    assert [str(n) for n in answers.swarm_peer_networks()] == ["10.214.2.20/32", "fd00::/64"]


def test_the_defaults_are_valid_and_keep_ssh_open_everywhere():
    answers = FirewallAnswers()
    assert not answers.enabled and answers.backend == "iptables"
    assert all(any(s.is_ssh for s in answers.services_of(zone)) for zone in ZONES)


# ---- presets and --set ------------------------------------------------------------------


def test_unknown_setting_in_firewall_section_is_named_with_file_line_and_known_names():
    text = "[firewall]\nenabled = true\nwan_service = ['ssh']\n"
    with pytest.raises(PresetError) as caught:
        parse_preset("site.toml", text)
    assert "site.toml [firewall], line 3" in caught.value.message
    assert "'wan_service'" in caught.value.message
    assert "wan_services" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("[firewall]\nwan_services = ['shh']\n", "firewall.wan_services: 'shh'", "'ssh'"),
        ("[firewall]\nother_interfaces = 'dmz'\n", "line 2", "expected one of: mgmt, lan, wan"),
        ("[firewall]\nbackend = 'pf'\n", "line 2", "expected one of: iptables, nftables"),
        (
            "[firewall]\nmgmt_interfaces = 'eth0'\nlan_interfaces = ['eth0']\n",
            "interface eth0 is also in firewall.mgmt_interfaces",
            "exactly one zone",
        ),
        ("[firewall]\nforward = [1]\n", "line 2", "expected a list of strings"),
    ],
)
def test_preset_mistakes_in_firewall_section_are_explained(text, message, hint):
    with pytest.raises(PresetError) as caught:
        parse_preset("site.toml", text)
    assert message in caught.value.message
    assert hint in caught.value.message + caught.value.hint


def test_set_overrides_build_lists_and_check_them():
    preset = apply_overrides(
        load_preset("hardened"),
        [
            "firewall.enabled=true",
            "firewall.mgmt_interfaces=eth0, eth1",
            "firewall.forward=lan>wan",
        ],
    )
    answers = preset.answers["firewall"]
    assert answers.enabled and answers.mgmt_interfaces == ("eth0", "eth1")
    assert answers.forward_pairs() == (("lan", "wan"),)
    with pytest.raises(PresetError) as caught:
        apply_overrides(preset, ["firewall.lan_services=ssh,pnig"])
    assert "firewall.lan_services: 'pnig'" in caught.value.message and "'ping'" in caught.value.hint


# ---- the shipped preset says what the answers mean ----------------------------------------


def _firewall_section() -> str:
    text = (resources.files("presets") / "hardened.toml").read_text(encoding="utf-8")
    return text[text.index("[firewall]") :]


def test_hardened_preset_firewall_section_is_the_defaults():
    assert load_preset("hardened").answers["firewall"] == FirewallAnswers()


def test_hardened_preset_comments_name_every_setting_and_known_service():
    section = _firewall_section()
    for info in fields_of(FirewallAnswers):
        assert re.search(rf"^{info.name} = ", section, re.MULTILINE), info.name
    comments = " ".join(line for line in section.splitlines() if line.startswith("#"))
    for name in KNOWN_SERVICES:
        assert name in comments, name


def test_services_help_text_names_every_known_service():
    help_text = next(i.help for i in fields_of(FirewallAnswers) if i.name == "mgmt_services")
    for name in KNOWN_SERVICES:
        assert name in help_text, name
