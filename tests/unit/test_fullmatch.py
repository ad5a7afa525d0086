"""Name patterns validate the whole name: ``^...$`` with ``re.match`` let a trailing line break
through (``$`` also matches before a final newline). Pure tables."""

from __future__ import annotations

import pytest

from lab.hosts import _check_topology_prefix
from lab.topology import parse_topology
from wizard.answers import FieldInfo, check_value
from wizard.errors import InvalidAnswer, LabError
from wizard.pki import check_site, is_dns_name
from wizard.steps.firewall.services import _parse_ports, parse_service


@pytest.mark.parametrize("name", ["web1", "docker1.example.org"])
def test_dns_names_are_whole_names(name):
    assert is_dns_name(name) and not is_dns_name(name + "\n")


def test_a_site_name_with_a_trailing_line_break_names_no_ca_folder():
    assert check_site("office") == "office"
    with pytest.raises(InvalidAnswer, match="cannot name a CA folder"):
        check_site("office\n")


@pytest.mark.parametrize(("kind", "value"), [("user", "admin"), ("size", "10m")])
def test_user_names_and_sizes_are_whole(kind, value):
    field = FieldInfo("f", "F", "", kind, None)
    assert check_value(field, value) == value
    with pytest.raises(ValueError):
        check_value(field, value + "\n")


def test_a_port_entry_is_whole():
    assert parse_service("8080/tcp", "firewall.lan_services").openings
    with pytest.raises(InvalidAnswer):
        _parse_ports("8080/tcp\n", "firewall.lan_services")


def test_lab_prefixes_roles_and_network_names_are_whole():
    _check_topology_prefix("t1")
    with pytest.raises(LabError):
        _check_topology_prefix("t1\n")
    good = '[networks.lan]\nsubnet = "10.214.2.0/24"\n[hosts.client]\nnetworks = { lan = "auto" }\n'
    parse_topology(good)
    with pytest.raises(LabError, match="cannot be an interface name"):
        parse_topology(good.replace("networks.lan]", 'networks."lan\\n"]'))
    with pytest.raises(LabError, match="cannot be part of a host name"):
        parse_topology(good.replace("hosts.client]", 'hosts."client\\n"]'))
