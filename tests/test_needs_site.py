"""Declared needs on practice hosts (#12, #14, #16): a host's firewall offers what the site's
steps need, and nothing the admin's zones did not list otherwise.

* NFS: the server's zones offer only ssh and ping. The site's NFS step declares nfs from each
  client, so the firewall offers it to those addresses (the zone their network is in): the
  clients reach the export (real NFSv4, ``tests/nfs_probe.py``), a host outside the site is
  dropped by the zone's rule (its DROP counter in the server's kernel goes up).
* Swarm: the nodes' zones offer nothing on the cluster network (lan) but ping. The swarm step
  declares its ports from the other nodes, so the workers join, the overlay carries traffic,
  the kernel holds 4789/udp only from the peers and only in lan, and no ESP (the overlay is
  not encrypted). With the cluster network in wan, the same site is refused before anything
  changes: 4789/udp is never opened to an untrusted zone.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import LabHost, Topology, console
from lab.image import import_test_image
from tests.probes import nfs_practice_hosts, on_console, require_busybox
from wizard.errors import PlanConflict
from wizard.render import as_text
from wizard.site.apply import apply_site, close_all, preview_site
from wizard.site.model import Site, load_site
from wizard.site.plan import render_site, site_session
from wizard.steps.shares.site import CLIENT, SERVER
from wizard.transport.base import Transport
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

EXPORT, MOUNT = "/srv/nfs", "/mnt/share"
NFS_PORT = 2049


def connect_tcp(host: LabHost, address: str, port: int) -> str:
    """Open a TCP connection from ``host`` ("ok", "refused", or "timeout" after 3 s)."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(3)\n"
        "try: s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
        "except socket.timeout: print('timeout')\n"
        "except OSError: print('refused')\n"
    )
    script = f"python3 -c {shlex.quote(code)} {address} {port}"
    return console(host).run(script, timeout=30).out.strip()


def drops(host: LabHost, chain: str) -> int:
    """Packets the last rule (DROP) of ``chain`` has dropped, read in ``host``'s kernel."""
    listing = on_console(host, f"iptables -nvxL {chain}").splitlines()
    last = [line.split() for line in listing if re.match(r"\s*\d+\s+\d+\s+DROP\b", line)]
    return int(last[-1][0])


def transports_for(site: Site, ssh_config: Path) -> dict[str, Transport]:
    return {
        host.name: SshTransport.connect(host.target, ssh_config=ssh_config, connect_timeout=4)
        for host in site.hosts
    }


# ---- NFS --------------------------------------------------------------------------------


@pytest.fixture
def nfs_hosts(make_lab_hosts: Any) -> list[LabHost]:
    """A server, two clients and a host outside the site, all on the lab's network."""
    return nfs_practice_hosts(make_lab_hosts, 4)


@pytest.fixture
def nfs_site(tmp_path: Path, nfs_hosts: list[LabHost]) -> Site:
    server, one, two, _ = nfs_hosts
    (tmp_path / "server.toml").write_text(
        '[firewall]\nenabled = true\nlan_interfaces = ["eth0"]\nlan_services = ["ssh", "ping"]\n'
    )
    path = tmp_path / "nfs.toml"
    path.write_text(
        f'name = "{tmp_path.name}"\n'
        f'[hosts.server]\ntarget = "{server.name}"\nroles = ["{SERVER}"]\n'
        'preset = "server.toml"\n'
        f'[hosts.client1]\ntarget = "{one.name}"\nroles = ["{CLIENT}"]\n'
        f'[hosts.client2]\ntarget = "{two.name}"\nroles = ["{CLIENT}"]\n'
        f'[steps.nfs]\nenabled = true\nserver = "ganesha"\npath = "{EXPORT}"\n'
        'users = ["alice"]\n'
    )
    return load_site(path)


@pytest.fixture
def nfs_transports(nfs_site: Site, lab_ssh_config: Path) -> Iterator[dict[str, Transport]]:
    made = transports_for(nfs_site, lab_ssh_config)
    yield made
    close_all(made)


def nfs(client: LabHost, server: LabHost, uid: int, *op: str) -> str:
    """One NFSv4 operation from ``client`` as uid:uid ("ok", or "error: ..." from libnfs)."""
    args = " ".join(shlex.quote(part) for part in op)
    script = f"python3 /root/nfs_probe.py {server.address} {EXPORT} {uid} {uid} {args}"
    result = console(client).run(script, timeout=60)
    return (result.out + result.err).strip()


def test_the_nfs_servers_firewall_offers_nfs_to_the_clients_only(
    nfs_site: Site, nfs_transports: dict[str, Transport], nfs_hosts: list[LabHost]
) -> None:
    server, one, two, outsider = nfs_hosts
    session = site_session(nfs_site)
    plan, _ = preview_site(session, nfs_transports)
    shown = as_text(render_site(plan, session))
    for client in (one, two):
        assert (
            f"nfs from {client.address}/32 is offered to lan because the nfs step's clients "
            f"mount {EXPORT} from server." in shown
        )

    apply_site(session, nfs_transports, expected=plan, confirm_timeout=60)
    rules = on_console(server, "iptables-save")
    for client in (one, two):
        accept = f"-A HOSTWIZ-IN-lan -s {client.address}/32 -p tcp -m tcp --dport 2049 -j ACCEPT"
        assert accept in rules
    assert not re.search(r"-A HOSTWIZ-IN-lan (?!-s ).*--dport 2049", rules)  # never to all
    assert "--dport 2049" not in "\n".join(
        line for line in rules.splitlines() if line.startswith("-A HOSTWIZ-IN-wan")
    )

    # The clients reach the export through the firewall (real NFSv4 as alice).
    alice = int(on_console(server, "id -u alice"))
    assert nfs(one, server, alice, "write", "/private/alice/diary", "mine") == "ok"
    assert nfs(two, server, alice, "read", "/private/alice/diary") == "mineok"
    # The server listens for everyone; a host outside the site is dropped by the zone's rule.
    assert connect_tcp(one, server.address, NFS_PORT) == "ok"
    before = drops(server, "HOSTWIZ-IN-lan")
    assert connect_tcp(outsider, server.address, NFS_PORT) == "timeout"
    assert drops(server, "HOSTWIZ-IN-lan") > before
    # a second plan is empty: the firewall's status with the needs matches what it loaded
    assert preview_site(session, nfs_transports)[0].empty


# ---- swarm --------------------------------------------------------------------------------

NODES = ("node1", "node2", "node3")
IMAGE = "hostwiz/busybox:latest"


def swarm_site(folder: Path, topo: Topology, cluster_zone: str) -> Site:
    """The swarm topology as a site, every node with zones: eth0 (the admin's) in mgmt, the
    cluster network in ``cluster_zone`` offering only ping."""
    (folder / "zones.toml").write_text(
        '[firewall]\nenabled = true\nmgmt_interfaces = ["eth0"]\n'
        f'{cluster_zone}_interfaces = ["cluster"]\n{cluster_zone}_services = ["ping"]\n'
        'mgmt_services = ["ssh", "ping"]\n'
    )
    path = folder / f"swarm-{cluster_zone}.toml"
    text = f'name = "{folder.name}-{cluster_zone}"\npreset = "zones.toml"\n'
    for node in NODES:
        role = "swarm-manager" if node == "node1" else "swarm-worker"
        text += f'[hosts.{node}]\ntarget = "{topo[node].name}"\nroles = ["{role}"]\n'
    text += (
        '[steps.swarm]\nadvertise_address = "cluster"\ngwbridge_subnet = "10.81.12.0/24"\n'
        "overlay = true\noverlay_encrypted = false\n"
    )
    path.write_text(text)
    return load_site(path)


def hostwiz_rules(host: LabHost) -> list[str]:
    return [line for line in on_console(host, "iptables-save").splitlines() if "HOSTWIZ" in line]


@pytest.mark.docker
def test_swarm_nodes_get_their_peers_through_declared_needs_and_never_vxlan_on_wan(
    make_topology: Any, lab_ssh_config: Path, tmp_path: Path
) -> None:
    require_busybox()
    topo: Topology = make_topology("swarm")
    hosts = [topo[node] for node in NODES]
    address = {node: topo.address(node, "cluster") for node in NODES}

    # The cluster network in wan: refused before anything changes.
    untrusted = swarm_site(tmp_path, topo, "wan")
    transports = transports_for(untrusted, lab_ssh_config)
    try:
        with pytest.raises(PlanConflict) as refused:
            preview_site(site_session(untrusted), transports)
    finally:
        close_all(transports)
    assert (
        "4789/udp from" in refused.value.message and "untrusted zone wan" in refused.value.message
    )
    assert "firewall.lan_interfaces" in refused.value.hint
    for host in hosts:
        assert hostwiz_rules(host) == []

    # In lan: the zones get the swarm's ports from the peers only.
    site = swarm_site(tmp_path, topo, "lan")
    for host in hosts:
        import_test_image(host)
    transports = transports_for(site, lab_ssh_config)
    try:
        session = site_session(site)
        plan, _ = preview_site(session, transports)
        shown = as_text(render_site(plan, session))
        assert f"4789/udp from {address['node2']}/32 is offered to lan because" in shown
        apply_site(session, transports, expected=plan, confirm_timeout=60)
        assert preview_site(session, transports)[0].empty
    finally:
        close_all(transports)

    manager, *workers = hosts
    wait_ready = (
        "for i in $(seq 60); do n=$(docker node ls --format '{{.Hostname}} {{.Status}}'); "
        '[ $(echo "$n" | grep -c Ready) -ge 3 ] && break; sleep 0.5; done; echo "$n"'
    )
    nodes = on_console(manager, wait_ready)
    for host in hosts:
        assert f"{host.name} Ready" in nodes
    # The overlay (VXLAN through the zones) carries traffic to a container on the manager.
    on_console(manager, f"docker run -d --name peer1 --network hostwiz-overlay {IMAGE} sleep 600")
    for worker in workers:
        script = f"docker run --rm --network hostwiz-overlay {IMAGE} ping -c 2 -W 2 peer1"
        assert "2 packets received" in on_console(worker, f"{script} 2>&1; true")

    # The rules in each node's kernel: the peers, in lan; nothing in wan or mgmt; no ESP.
    for node, host in zip(NODES, hosts, strict=True):
        rules = hostwiz_rules(host)
        peers = [address[other] for other in NODES if other != node]
        for peer in peers:
            assert f"-A HOSTWIZ-IN-lan -s {peer}/32 -p udp -m udp --dport 4789 -j ACCEPT" in rules
            assert f"-A HOSTWIZ-IN-lan -s {peer}/32 -p tcp -m tcp --dport 7946 -j ACCEPT" in rules
        vxlan = [rule for rule in rules if "--dport 4789" in rule]
        assert len(vxlan) == len(peers)  # from the peers, nowhere else
        assert not any(r.startswith(("-A HOSTWIZ-IN-wan", "-A HOSTWIZ-IN-mgmt")) and "4789" in r
                       for r in rules)  # fmt: skip
        assert not any("-p esp" in rule for rule in rules)  # the overlay is not encrypted
        manages = any("--dport 2377" in rule for rule in rules)
        assert manages == (node == "node1")
