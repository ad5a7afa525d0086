"""Firewall zones on practice hosts: real traffic between a router, a LAN client and the
"internet", with dockerd running on the router (the hard case: Docker owns FORWARD)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest

from lab import LabHost, Topology
from lab.image import import_test_image
from snapshots.rollback import rollback_plan
from tests.probes import (
    http_get,
    on_console,
    pings,
    require_busybox,
    serve_http,
    ssh_banner,
    wait_until,
)
from wizard.errors import PlanConflict
from wizard.plan import Changeset
from wizard.session import Selection, apply, preview
from wizard.steps.firewall import FIREWALL
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

ROUTER = FirewallAnswers(
    enabled=True,
    mgmt_interfaces=("eth0",),
    lan_interfaces=("lan",),
    wan_interfaces=("wan",),
    wan_services=("ping",),
    forward=("lan>wan",),
)
PUBLISHED = 8080
NOT_OFFERED = 8081
FLUSH_ALL = "; ".join(
    f"{cmd} -t {table} -F; {cmd} -t {table} -X"
    for cmd in ("iptables", "ip6tables")
    for table in ("filter", "nat")
)


def firewall(answers: FirewallAnswers = ROUTER, **changes: Any) -> list[Selection]:
    return [Selection(FIREWALL, replace(answers, **changes))]


def hostwiz_chains(host: LabHost) -> str:
    out = on_console(host, "iptables-save; ip6tables-save")
    return "\n".join(line for line in out.splitlines() if "HOSTWIZ" in line)


def container_answers(client: LabHost, address: str) -> bool:
    return "container" in http_get(client, address, PUBLISHED)


def start_services(router: LabHost) -> None:
    """A container publishing 8080 (Docker opens it to everyone) and a host service on 8081
    that no zone offers."""
    import_test_image(router)
    on_console(
        router,
        "mkdir -p /srv/www && echo container > /srv/www/index.html && "
        f"docker run -d --restart always -v /srv/www:/www -p {PUBLISHED}:80 "
        "hostwiz/busybox:latest httpd -f -p 80 -h /www >/dev/null",
    )
    serve_http(router, NOT_OFFERED, "host service")


@pytest.mark.docker
def test_zones_on_a_docker_router(make_topology: Any, lab_ssh_config: Any) -> None:
    require_busybox()
    topo: Topology = make_topology("router")
    router, client, outside = topo["router"], topo["client"], topo["outside"]
    lan, wan = topo.address("router", "lan"), topo.address("router", "wan")
    outside_wan = topo.address("outside", "wan")
    start_services(router)
    # The trap: Docker publishes to every zone, and the internet reaches the host's services.
    assert wait_until(lambda: container_answers(outside, wan), 20)
    assert ssh_banner(outside, wan).startswith("SSH-2.0")
    # The "internet" forgets its route back to the LAN: only NAT gets answers home.
    on_console(outside, "ip route del 10.214.2.0/24")

    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        result = apply(ssh, firewall())
        assert result.confirmed  # over a new SSH connection through mgmt (eth0)
        snapshot = result.snapshot_id

        # Services per zone, IPv4 and IPv6.
        assert ssh_banner(client, lan).startswith("SSH-2.0")
        assert ssh_banner(client, topo.address("router", "lan", ipv6=True)).startswith("SSH")
        assert ssh_banner(outside, wan) == ""
        assert ssh_banner(outside, topo.address("router", "wan", ipv6=True)) == ""
        assert pings(outside, wan)  # ping is offered to wan
        assert http_get(client, lan, NOT_OFFERED) == ""  # a port no zone offers
        assert "host service" in on_console(router, f"{_get(NOT_OFFERED)}")  # it does run

        # Published container port: lan yes, wan no, though Docker publishes it to all.
        assert container_answers(client, lan)
        assert not container_answers(outside, wan)

        # Router: lan reaches the internet through NAT; the internet cannot reach the lan.
        assert pings(client, outside_wan)
        assert ssh_banner(client, outside_wan).startswith("SSH-2.0")
        assert pings(client, topo.address("outside", "wan", ipv6=True))  # routed, no NAT
        assert not pings(outside, topo.address("client", "lan"))

        assert preview(ssh, firewall())[0].empty  # applying twice plans nothing

        # dockerd restarts: it rewrites its own chains, ours stay and still hold.
        on_console(router, "/etc/init.d/docker restart >/dev/null", timeout=120)
        assert wait_until(lambda: container_answers(client, lan), 60)
        assert not container_answers(outside, wan)
        assert pings(client, outside_wan)
        assert preview(ssh, firewall())[0].empty

    # A reboot, simulated: dockerd stops, the kernel forgets every rule and forwarding; the
    # boot path alone brings the zones back, before dockerd starts.
    on_console(router, "/etc/init.d/docker stop >/dev/null", timeout=120)
    on_console(router, f"{FLUSH_ALL}; sysctl -qw net.ipv4.ip_forward=0")
    assert hostwiz_chains(router) == ""
    assert "S01hostwiz-firewall" in on_console(router, "ls /etc/rcS.d")
    on_console(router, "/etc/init.d/hostwiz-firewall start")
    assert ":HOSTWIZ-INPUT" in hostwiz_chains(router)
    assert "-A DOCKER-USER -j HOSTWIZ-FORWARD" in on_console(router, "iptables -S DOCKER-USER")
    assert pings(client, outside_wan)  # forwarding is back, from the sysctl file
    assert ssh_banner(outside, wan) == ""
    on_console(router, "/etc/init.d/docker start >/dev/null", timeout=120)
    assert wait_until(lambda: container_answers(client, lan), 60)
    assert not container_answers(outside, wan)

    # Rollback removes every hostwiz chain and jump and leaves Docker working.
    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        rollback = rollback_plan(ssh, snapshot)
        assert apply_changeset(
            ssh, Changeset(router.name, (rollback,)), reason="rollback"
        ).confirmed
    assert hostwiz_chains(router) == ""
    assert "HOSTWIZ" not in on_console(router, "iptables -S; iptables -t nat -S; ip6tables -S")
    assert not on_console(router, "ls /etc/hostwiz/firewall 2>/dev/null; true").strip()
    assert "hostwiz-firewall" not in on_console(router, "ls /etc/rcS.d /etc/init.d")
    assert "DNAT" in on_console(router, "iptables -t nat -S DOCKER")
    assert container_answers(outside, wan)  # Docker's own publishing is back, to everyone
    assert ssh_banner(outside, wan).startswith("SSH-2.0")


def _get(port: int) -> str:
    request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
    return f'timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/{port}; {request}"'


@pytest.fixture
def lone_host(make_lab_hosts: Any) -> LabHost:
    hosts: list[LabHost] = make_lab_hosts(1, docker=False)
    return hosts[0]


def test_rules_that_cut_my_ssh_are_refused_then_undone_by_the_host(
    lone_host: LabHost, lab_ssh_config: Any
) -> None:
    # eth0 is not listed, so it falls in wan, which here offers only ping.
    cut = FirewallAnswers(enabled=True, wan_services=("ping",))
    with SshTransport.connect(lone_host.name, ssh_config=lab_ssh_config) as ssh:
        with pytest.raises(PlanConflict, match="lock you out") as refused:
            apply(ssh, firewall(cut))
        assert "eth0" in refused.value.message and "zone wan" in refused.value.message
        assert hostwiz_chains(lone_host) == ""
        assert not lone_host.console().run("test -e /etc/hostwiz").ok
        assert not lone_host.console().run("test -d /var/lib/hostwiz/snapshots").ok

        # Explicitly allowed: applied commit-confirmed, it cannot be confirmed, the host undoes it.
        result = apply(ssh, firewall(cut, allow_cutting_my_ssh=True), confirm_timeout=10)
        assert not result.confirmed
    assert wait_until(lambda: hostwiz_chains(lone_host) == "", 24)
    assert not lone_host.console().run("test -e /etc/hostwiz/firewall/rules.v4").ok
    SshTransport.connect(lone_host.name, ssh_config=lab_ssh_config).close()  # in again


def test_a_wrong_interface_is_explained_and_changes_nothing(
    lone_host: LabHost, lab_ssh_config: Any
) -> None:
    wrong = FirewallAnswers(enabled=True, lan_interfaces=("ens3",))
    with (
        SshTransport.connect(lone_host.name, ssh_config=lab_ssh_config) as ssh,
        pytest.raises(PlanConflict, match="no interface named ens3") as error,
    ):
        apply(ssh, firewall(wrong))
    assert "eth0" in error.value.hint  # the host's real interfaces are listed
    assert hostwiz_chains(lone_host) == ""
    assert not lone_host.console().run("test -d /var/lib/hostwiz/snapshots").ok


def test_facts_as_json_show_the_network(lone_host: LabHost, lab_ssh_config: Any) -> None:
    command = [sys.executable, "-m", "hostwiz", "facts", "--json", "--host", lone_host.name,
               "-F", str(lab_ssh_config)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert f"{lone_host.address}/24" in facts["net_interfaces"]["eth0"]["addresses"]
    assert facts["ssh_path"]["interface"] == "eth0"
    assert "iptables-restore" in facts["firewall_tools"]["present"]


def test_swarm_ports_only_from_the_listed_peers(make_topology: Any, lab_ssh_config: Any) -> None:
    require_busybox()
    topo: Topology = make_topology("swarm", docker=False)
    node1, node2, node3 = topo["node1"], topo["node2"], topo["node3"]
    manager = topo.address("node1", "cluster")
    serve_http(node1, 2377, "swarm manager stand-in")  # the port swarm managers listen on
    assert "stand-in" in http_get(node3, manager, 2377)
    answers = FirewallAnswers(
        enabled=True,
        mgmt_interfaces=("eth0",),
        lan_interfaces=("cluster",),
        lan_services=("ping", "swarm"),
        swarm_peers=(topo.address("node2", "cluster"),),
    )
    with SshTransport.connect(node1.name, ssh_config=lab_ssh_config) as ssh:
        assert apply(ssh, firewall(answers)).confirmed
    assert "stand-in" in http_get(node2, manager, 2377)
    assert http_get(node3, manager, 2377) == ""  # in the zone, but not a listed peer
    assert pings(node3, manager)  # the zone's other services still answer node3
