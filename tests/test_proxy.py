"""The web proxy on practice hosts: squid on the router takes the client's web traffic (real
requests from the client to an HTTP server on the "internet"), IPv4 and IPv6."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from lab import LabHost, Topology
from lab.squid_image import TAG as SQUID_IMAGE
from lab.squid_image import import_squid_image
from snapshots.rollback import rollback_plan
from tests.probes import (
    connect_only,
    on_console,
    pings,
    require_busybox,
    serve_http,
    ssh_banner,
    wait_until,
    web,
)
from wizard.errors import PlanConflict
from wizard.plan import Changeset
from wizard.session import Selection, apply, preview
from wizard.steps.firewall import FIREWALL
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.steps.proxy import PROXY, ProxyAnswers
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

PROXY_ON = ProxyAnswers(
    enabled=True,
    client_interfaces=("lan",),
    blocked_domains=("blocked.example",),
    # No DNS in the lab: a name server that answers nothing, and a short wait for it.
    dns_nameservers=("127.0.0.1",),
    dns_timeout=1,
)
ROUTING = FirewallAnswers(  # the router forwards lan>wan, so SSH and ping pass it
    enabled=True,
    mgmt_interfaces=("eth0",),
    lan_interfaces=("lan",),
    wan_interfaces=("wan",),
    lan_services=("ssh", "ping"),
    forward=("lan>wan",),
    masquerade=False,
)
ACCESS_LOG = "/var/log/squid/access.log"


def steps(proxy: ProxyAnswers = PROXY_ON) -> list[Selection]:
    return [Selection(FIREWALL, ROUTING), Selection(PROXY, proxy)]


def proxy_chains(host: LabHost) -> str:
    out = on_console(host, "iptables-save; ip6tables-save")
    return "\n".join(line for line in out.splitlines() if "HWPROXY" in line)


def access_log(router: LabHost) -> str:
    return on_console(router, f"cat {ACCESS_LOG} 2>/dev/null; true")


@pytest.mark.docker
def test_squid_on_the_router_takes_the_clients_web_traffic(
    make_topology: Any, lab_ssh_config: Any
) -> None:
    require_busybox()
    # dockerd runs on the router (Docker's FORWARD DROP): the redirected traffic goes to
    # INPUT, and the firewall step forwards the rest.
    topo: Topology = make_topology("router")
    router, client, outside = topo["router"], topo["client"], topo["outside"]
    outside4, outside6 = topo.address("outside", "wan"), topo.address("outside", "wan", ipv6=True)
    client4, client6 = topo.address("client", "lan"), topo.address("client", "lan", ipv6=True)
    serve_http(outside, 80, "outside page")
    assert "outside page" in web(router, outside4)

    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        # The proxy alone: the router forwards nothing, but the web traffic goes to squid.
        first = apply(ssh, [Selection(PROXY, PROXY_ON)])
        assert first.confirmed
        assert "outside page" in web(client, outside4)
        assert not pings(client, outside4)
        # Then the firewall's zones, which drop everything lan is not offered: its INPUT jump
        # comes first, so the proxy's rules are loaded again after it, to stay in front.
        result = apply(ssh, steps())
        assert result.confirmed
        snapshots = (result.snapshot_id, first.snapshot_id)

        # The client's request passes squid: the answer carries squid's Via, the log the
        # client's address.
        answer = web(client, outside4)
        assert "outside page" in answer and "squid" in answer
        assert f"{client4} TCP_MISS/200" in access_log(router)
        # IPv6 the same.
        answer = web(client, outside6)
        assert "outside page" in answer and "squid" in answer
        assert client6 in access_log(router)
        # A blocked domain gets squid's deny page.
        denied = web(client, outside4, "www.blocked.example")
        assert "403 Forbidden" in denied and "ERR_ACCESS_DENIED" in denied
        assert "outside page" not in denied
        # SSH and ping take their normal path through the router.
        assert pings(client, outside4) and pings(client, outside6)
        assert ssh_banner(client, outside4).startswith("SSH-2.0")
        # The router's own web traffic goes straight out (no loop through squid).
        lines = access_log(router).count("\n")
        answer = web(router, outside4)
        assert "outside page" in answer and "squid" not in answer
        assert access_log(router).count("\n") == lines

        # Direct connections to the intercept port are dropped: squid 5.7 would stop
        # accepting intercepted traffic after one. The client's next request still passes.
        # (Without the guard squid answers them with a 403 page.)
        assert connect_only(client, topo.address("router", "lan"), PROXY_ON.intercept_port) == ""
        assert connect_only(router, "127.0.0.1", PROXY_ON.intercept_port) == ""
        assert "outside page" in web(client, outside4)
        assert PROXY.health(ssh, PROXY_ON, preview(ssh, steps())[1]) == []

        assert preview(ssh, steps())[0].empty  # applying twice plans nothing

    # A reboot, simulated: squid stops and the kernel forgets the rules; the boot path
    # (the init scripts, in their boot order: the firewall's before the proxy's) brings
    # them back.
    on_console(
        router,
        "/etc/init.d/squid stop >/dev/null; /usr/local/sbin/hostwiz-proxy stop; "
        "/usr/local/sbin/hostwiz-firewall stop",
    )
    assert proxy_chains(router) == ""
    boot = on_console(router, "ls /etc/rcS.d | grep hostwiz").split()
    assert [name[3:] for name in boot] == ["hostwiz-firewall", "hostwiz-proxy"]
    on_console(router, "for s in /etc/rcS.d/S*hostwiz*; do $s start; done")
    on_console(router, "/etc/init.d/squid start >/dev/null")
    assert wait_until(lambda: "outside page" in web(client, outside4), 30)
    assert access_log(router).count(client4) >= 3

    # Rollback removes every rule, chain and file, and puts squid's own config back.
    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        for snapshot in snapshots:  # newest first
            rollback = rollback_plan(ssh, snapshot)
            assert apply_changeset(
                ssh, Changeset(router.name, (rollback,)), reason="rollback"
            ).confirmed
    assert proxy_chains(router) == ""
    assert "HWPROXY" not in on_console(router, "iptables-save; ip6tables-save")
    assert not on_console(router, "ls /etc/hostwiz/proxy 2>/dev/null; true").strip()
    boot = on_console(router, "ls /etc/rcS.d /etc/rc2.d /etc/init.d /usr/local/sbin")
    assert "hostwiz-proxy" not in boot and "hostwiz-firewall" not in boot  # hostwiz-rearm stays
    assert "hostwiz" not in on_console(router, "cat /etc/squid/squid.conf")
    assert not on_console(router, "pidof squid; true").strip()  # it was not running before


def test_placements_that_cannot_work_here_are_refused(
    make_topology: Any, lab_ssh_config: Any
) -> None:
    topo: Topology = make_topology("router", docker=False)
    router = topo["router"]
    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        with pytest.raises(PlanConflict, match="planned as a site"):
            preview(ssh, [Selection(PROXY, replace(PROXY_ON, placement="proxy-host"))])
        with pytest.raises(PlanConflict, match="dockerd does not answer"):
            preview(ssh, [Selection(PROXY, replace(PROXY_ON, placement="container"))])
        with pytest.raises(PlanConflict, match="no interface"):
            preview(ssh, [Selection(PROXY, replace(PROXY_ON, client_interfaces=("lan9",)))])
    assert proxy_chains(router) == ""


@pytest.mark.docker
def test_squid_in_a_container_on_the_router_takes_the_clients_web_traffic(
    make_topology: Any, lab_ssh_config: Any
) -> None:
    """No registry here: the image is built from this machine's squid and imported into the
    router's own dockerd."""
    require_busybox()
    topo: Topology = make_topology("router")
    router, client, outside = topo["router"], topo["client"], topo["outside"]
    outside4, outside6 = topo.address("outside", "wan"), topo.address("outside", "wan", ipv6=True)
    client4, client6 = topo.address("client", "lan"), topo.address("client", "lan", ipv6=True)
    serve_http(outside, 80, "outside page")
    import_squid_image(router)
    boxed = replace(PROXY_ON, placement="container", container_image=SQUID_IMAGE,
                    container_timezone="Europe/Copenhagen")  # fmt: skip
    selections = [Selection(FIREWALL, ROUTING), Selection(PROXY, boxed)]

    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        result = apply(ssh, selections)
        assert result.confirmed
        # squid runs in the container, on the host's network, with seed 000's volumes.
        inspect = json.loads(on_console(router, "docker inspect hostwiz-squid"))[0]
        assert inspect["State"]["Running"] and inspect["HostConfig"]["NetworkMode"] == "host"
        assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert "TZ=Europe/Copenhagen" in inspect["Config"]["Env"]
        mounts = {m["Destination"]: m["Source"] for m in inspect["Mounts"]}
        assert mounts["/etc/squid/squid.conf"] == "/etc/squid/squid.conf"
        assert mounts["/var/log/squid"] == "/var/log/squid"
        assert mounts["/var/spool/squid"] == "/srv/docker/squid/cache"
        assert "squid" in on_console(router, "docker top hostwiz-squid")

        # The client's requests pass squid in the container, logged in the host's folder.
        answer = web(client, outside4)
        assert "outside page" in answer and "squid" in answer
        assert f"{client4} TCP_MISS/200" in access_log(router)
        answer = web(client, outside6)
        assert "outside page" in answer and "squid" in answer
        assert client6 in access_log(router)
        denied = web(client, outside4, "www.blocked.example")
        assert "403 Forbidden" in denied and "ERR_ACCESS_DENIED" in denied
        assert pings(client, outside4) and ssh_banner(client, outside4).startswith("SSH-2.0")
        assert "squid" not in web(router, outside4)  # the router's own traffic: no loop
        assert connect_only(client, topo.address("router", "lan"), boxed.intercept_port) == ""
        assert "outside page" in web(client, outside4)

        assert preview(ssh, selections)[0].empty  # applying twice plans nothing

    with SshTransport.connect(router.name, ssh_config=lab_ssh_config) as ssh:
        rollback = rollback_plan(ssh, result.snapshot_id)
        assert apply_changeset(
            ssh, Changeset(router.name, (rollback,)), reason="rollback"
        ).confirmed
    assert "hostwiz-squid" not in on_console(router, "docker ps -a --format '{{.Names}}'")
    assert proxy_chains(router) == ""
    assert not on_console(router, "ls /etc/hostwiz/proxy /srv/docker/squid 2>/dev/null; true")
    assert "hostwiz" not in on_console(router, "cat /etc/squid/squid.conf")
