"""Firewall zones with the nftables backend on the router topology: real traffic between
practice hosts, checked from inside them (see tests/test_lab_topology.py).

    client (lan .10) --- lan --- router (lan .1, wan .1) --- wan --- outside (wan .100)

hostwiz reaches the router over eth0, which the zones call mgmt. The firewall step is applied
through the real session (commit-confirmed over SSH), rolled back with ``hostwiz rollback``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hostwiz.cli import main as hostwiz
from lab import LabHost, Topology, console
from snapshots.rollback import rollback_plan
from tests.test_lab_topology import on_console, pings, require_busybox, ssh_banner
from wizard.actions import RunCommand
from wizard.plan import Changeset
from wizard.session import Selection, apply, preview
from wizard.steps import STEPS
from wizard.steps.firewall import boot
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

MakeTopology = Callable[..., Topology]

ROUTER_LAN, ROUTER_WAN = "10.214.2.1", "10.214.1.1"
CLIENT, OUTSIDE = "10.214.2.10", "10.214.1.100"
CLIENT6, OUTSIDE6 = "fd00:214:2::10", "fd00:214:1::100"

ZONES = FirewallAnswers(
    enabled=True,
    backend="nftables",
    mgmt_interfaces=("eth0",),
    lan_interfaces=("lan",),
    wan_interfaces=("wan",),
    wan_services=("ping",),  # no ssh from the internet
    forward=("lan>wan",),
)


def firewall(**changes: Any) -> list[Selection]:
    return [Selection(STEPS["firewall"], replace(ZONES, **changes))]


@pytest.fixture
def topo(make_topology: MakeTopology) -> Topology:
    require_busybox()
    return make_topology("router", docker=False)


@contextmanager
def connected(host: LabHost, ssh_config: Path) -> Iterator[SshTransport]:
    with SshTransport.connect(host.name, ssh_config=ssh_config) as transport:
        yield transport


def apply_firewall(host: LabHost, ssh_config: Path, **changes: Any) -> str:
    """Apply the step; the change must be confirmed over a new connection (through mgmt) and
    a second plan must be empty. Returns the snapshot id."""
    with connected(host, ssh_config) as ssh:
        result = apply(ssh, firewall(**changes))
        assert result.confirmed, result.message
        again, _ = preview(ssh, firewall(**changes))
        assert again.plans[0].empty, again.plans[0].actions
    assert result.snapshot_id
    return result.snapshot_id


def nft_tables(router: LabHost) -> list[str]:
    return on_console(router, "nft list tables").splitlines()


def iptables_leftovers(router: LabHost) -> list[str]:
    """Lines of hostwiz's iptables chains, and a DOCKER-USER that only hostwiz made."""
    out = on_console(router, "iptables-save; ip6tables-save")
    return [line for line in out.splitlines() if "HOSTWIZ" in line or "DOCKER-USER" in line]


def assert_zones_enforced(topo: Topology) -> None:
    router, client, outside = topo["router"], topo["client"], topo["outside"]
    # SSH from lan and from mgmt (the client's own eth0 is on the management network)
    assert ssh_banner(client, ROUTER_LAN).startswith("SSH-2.0")
    assert ssh_banner(client, router.address).startswith("SSH-2.0")
    # wan offers ping only: ssh is dropped
    assert pings(outside, ROUTER_WAN)
    assert ssh_banner(outside, ROUTER_WAN) == ""
    # forwarding lan>wan only, both address families
    assert pings(client, OUTSIDE) and pings(client, OUTSIDE6)
    assert ssh_banner(client, OUTSIDE).startswith("SSH-2.0")
    assert not pings(outside, CLIENT) and not pings(outside, CLIENT6)
    assert ssh_banner(outside, CLIENT) == ""


def test_zones_on_a_router_then_rollback(topo: Topology, lab_ssh_config: Path) -> None:
    router, client, outside = topo["router"], topo["client"], topo["outside"]
    assert ssh_banner(outside, ROUTER_WAN).startswith("SSH-2.0")  # open before
    assert not pings(client, OUTSIDE)  # the router does not route yet
    # /usr/local/sbin may hold the script already (a practice host's /usr/local starts as the
    # machine's): rollback must put back exactly what was there
    script_before = console(router).run(f"test -e {boot.SCRIPT}").ok

    snapshot = apply_firewall(router, lab_ssh_config)

    assert "table inet hostwiz" in nft_tables(router)
    assert iptables_leftovers(router) == []
    assert_zones_enforced(topo)
    # NAT: with no route back to the LAN, the internet still answers the client (IPv4)
    on_console(outside, f"ip route del 10.214.2.0/24 via {ROUTER_WAN}")
    assert pings(client, OUTSIDE)
    on_console(outside, f"ip route add 10.214.2.0/24 via {ROUTER_WAN}")

    assert hostwiz(["rollback", "--host", router.name, "-F", str(lab_ssh_config), "--yes",
                    snapshot]) == 0  # fmt: skip

    assert "table inet hostwiz" not in nft_tables(router)
    assert not console(router).run(f"test -e {boot.RULES_NFT}").ok
    assert console(router).run(f"test -e {boot.SCRIPT}").ok == script_before
    assert on_console(router, "cat /proc/sys/net/ipv4/ip_forward").strip() == "0"
    assert ssh_banner(outside, ROUTER_WAN).startswith("SSH-2.0")
    assert not pings(client, OUTSIDE)


def test_switching_backends_leaves_nothing_behind(topo: Topology, lab_ssh_config: Path) -> None:
    router, outside = topo["router"], topo["outside"]
    snapshots = [apply_firewall(router, lab_ssh_config)]

    snapshots.append(apply_firewall(router, lab_ssh_config, backend="iptables"))
    assert "table inet hostwiz" not in nft_tables(router)
    assert any(":HOSTWIZ-INPUT" in line for line in iptables_leftovers(router))
    assert ssh_banner(outside, ROUTER_WAN) == ""

    snapshots.append(apply_firewall(router, lab_ssh_config))
    assert nft_tables(router).count("table inet hostwiz") == 1
    assert iptables_leftovers(router) == []
    assert not console(router).run(f"test -e {boot.RULES_V4} || test -e {boot.RULES_V6}").ok
    assert_zones_enforced(topo)

    # A rule added by hand is drift: the plan reloads the table, which takes it away again.
    on_console(router, "nft insert rule inet hostwiz in_wan tcp dport 22 accept")
    assert ssh_banner(outside, ROUTER_WAN).startswith("SSH-2.0")
    with connected(router, lab_ssh_config) as ssh:
        (plan,) = preview(ssh, firewall())[0].plans
        assert [type(a) for a in plan.actions] == [RunCommand]
    apply_firewall(router, lab_ssh_config)
    assert ssh_banner(outside, ROUTER_WAN) == ""

    # A reboot, simulated: the kernel forgets every rule, then the boot path loads them again.
    on_console(router, "nft flush ruleset")
    assert ssh_banner(outside, ROUTER_WAN).startswith("SSH-2.0")
    on_console(router, f"{boot.INIT_SCRIPT} start")
    assert ssh_banner(outside, ROUTER_WAN) == ""
    with connected(router, lab_ssh_config) as ssh:
        assert preview(ssh, firewall())[0].empty

    # Rolling back every change, newest first, ends where the host started.
    with connected(router, lab_ssh_config) as ssh:
        for snapshot in reversed(snapshots):
            rollback = rollback_plan(ssh, snapshot)
            result = apply_changeset(ssh, Changeset(router.name, (rollback,)), reason="rollback")
            assert result.confirmed, result.message
    assert "table inet hostwiz" not in nft_tables(router)
    assert iptables_leftovers(router) == []
    assert on_console(router, f"ls {boot.RULES_DIR} 2>/dev/null; true").strip() == ""
    assert ssh_banner(outside, ROUTER_WAN).startswith("SSH-2.0")
