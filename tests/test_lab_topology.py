"""Topologies: several practice hosts on lab networks. Real traffic between them, checked from
inside the hosts (never from this machine to a topology address: the machine has no route to
them, and would send such packets out of the lab)."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from lab import (
    LabHost,
    Topology,
    console,
    hosts,
    lab_down,
    lab_list,
    lab_paths,
    lab_topologies,
    lab_topology,
    lab_up_topology,
    load_topology,
    parse_topology,
    shipped_topologies,
)
from lab.cli import add_lab_parser, run_lab
from lab.model import LabInterface
from lab.paths import BRIDGE, RUN_ROOT
from lab.switch import switch_name
from tests.probes import BUSYBOX, on_console, pings, require_busybox, ssh_banner
from wizard.errors import LabError

MakeTopology = Callable[..., Topology]

# A router topology whose "internet" does not route the LAN back: only NAT gets answers home.
NO_ROUTE_BACK = """
[networks.wan]
subnet = "10.214.1.0/24"
[networks.lan]
subnet = "10.214.2.0/24"
[hosts.router]
networks = { wan = "10.214.1.1", lan = "10.214.2.1" }
gateway = "outside"
[hosts.client]
networks = { lan = "auto" }
gateway = "router"
[hosts.outside]
networks = ["wan"]
"""


# --- helpers -------------------------------------------------------------------------------


def ssh(host: LabHost, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` on ``host`` as a person would run it: ssh -F <lab ssh_config> NAME."""
    return subprocess.run(
        [
            "ssh", "-F", str(lab_paths().ssh_config),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
            host.name, command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def netns_list() -> list[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def machine_links() -> set[str]:
    proc = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    return {line.split(":", 2)[1].strip().split("@")[0] for line in proc.stdout.splitlines()}


def netns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


def netns_holders(inode: int) -> list[str]:
    """Processes in this network namespace, or with a mount of it in their view."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/net").st_ino == inode:
                found.append(
                    f"{entry.name} in it: {Path(f'/proc/{entry.name}/cmdline').read_bytes()!r}"
                )
            if f"net:[{inode}]" in Path(f"/proc/{entry.name}/mountinfo").read_text():
                found.append(
                    f"{entry.name} mounts it: {Path(f'/proc/{entry.name}/cmdline').read_bytes()!r}"
                )
        except OSError:
            continue
    return found


def _cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="hostwiz")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    with redirect_stdout(out):
        status = run_lab(parser.parse_args(list(argv)))
    return status, out.getvalue()


def _prefix() -> str:
    return f"t{secrets.token_hex(2)}"


# --- the router topology: traffic ----------------------------------------------------------


@pytest.mark.lab
def test_router_forwards_only_once_forwarding_is_on(make_topology: MakeTopology) -> None:
    require_busybox()
    topo = make_topology("router", docker=False)
    router, client, outside = topo["router"], topo["client"], topo["outside"]
    machine_forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()

    # Interfaces are called after their networks; eth0 stays the management interface.
    assert set(on_console(router, "ls /sys/class/net").split()) == {"lo", "eth0", "wan", "lan"}
    assert set(on_console(client, "ls /sys/class/net").split()) == {"lo", "eth0", "lan"}
    assert "10.214.2.1/24" in on_console(router, "ip -o addr show dev lan")
    assert "fd00:214:2::1/64" in on_console(router, "ip -o addr show dev lan")
    assert on_console(client, "ip route show default").split()[:5] == [
        "default", "via", "10.214.2.1", "dev", "lan",
    ]  # fmt: skip
    assert "fd00:214:2::1" in on_console(client, "ip -6 route show default")
    assert on_console(outside, "ip route show default").strip() == ""  # it is the internet

    # Neighbours on one network reach each other, over IPv4 and IPv6.
    assert pings(client, topo.address("router", "lan"))
    assert pings(client, topo.address("router", "lan", ipv6=True))
    assert pings(outside, topo.address("router", "wan"))
    assert pings(outside, topo.address("router", "wan", ipv6=True))
    assert ssh_banner(client, "10.214.2.1").startswith("SSH-2.0")

    # Forwarding is off on the router: the client cannot get past it.
    assert on_console(router, "cat /proc/sys/net/ipv4/ip_forward").strip() == "0"
    assert not pings(client, topo.address("outside", "wan"))
    assert ssh_banner(client, "10.214.1.100") == ""

    # Turned on inside the router (its own network namespace), the client reaches outside;
    # outside routes the LAN back to the router, so no NAT is needed.
    on_console(router, "sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1")
    assert pings(client, "10.214.1.100")
    assert pings(client, "fd00:214:1::100")
    assert ssh_banner(client, "10.214.1.100").startswith("SSH-2.0")
    hops = on_console(client, f"{BUSYBOX} traceroute -n -w 1 -q 1 -m 3 10.214.1.100")
    assert re.findall(r"^\s*\d+\s+(\S+)", hops, re.M) == ["10.214.2.1", "10.214.1.100"]

    # The machine's own setting never moved.
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == machine_forwarding

    # Nothing from a topology network may leave through eth0 towards the management network
    # (the machine would answer it out of the lab): a route lookup, no packet sent.
    for host, source, iif in ((router, "10.214.2.10", "iif lan"), (client, "10.214.2.10", "")):
        lookup = console(host).run(f"ip route get 10.213.0.1 from {source} {iif}")
        assert not lookup.ok and "ermission denied" in lookup.err, lookup.out
    # The host's own traffic to the management network still goes out eth0.
    assert "dev eth0" in on_console(client, "ip route get 10.213.0.1")


@pytest.mark.lab
def test_nat_on_the_router_when_the_internet_does_not_route_back(
    make_topology: MakeTopology,
) -> None:
    require_busybox()
    topo = make_topology(parse_topology(NO_ROUTE_BACK, "no-route-back.toml"), docker=False)
    router, client = topo["router"], topo["client"]
    outside_address = topo.address("outside", "wan")
    assert topo.address("client", "lan") == "10.214.2.2"  # "auto": the lowest free
    on_console(router, "sysctl -w net.ipv4.ip_forward=1")
    assert not pings(client, outside_address)  # gets there, but the answer has no way back
    on_console(router, "iptables -t nat -A POSTROUTING -o wan -j MASQUERADE")
    assert pings(client, outside_address)
    assert ssh_banner(client, outside_address).startswith("SSH-2.0")


@pytest.mark.lab
@pytest.mark.docker
def test_docker_on_the_router_forwards_but_drops_until_the_firewall_allows(
    make_topology: MakeTopology,
) -> None:
    """What the firewall step has to live with: dockerd turns forwarding on and sets the
    FORWARD policy to DROP, so LAN traffic needs a rule in DOCKER-USER."""
    require_busybox()
    topo = make_topology("router")
    router, client = topo["router"], topo["client"]
    assert router.docker and not client.docker
    assert on_console(router, "docker info --format '{{.ServerVersion}}'").strip()
    assert on_console(router, "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert "-P FORWARD DROP" in on_console(router, "iptables -S FORWARD")
    assert not pings(client, "10.214.1.100")
    on_console(
        router,
        "iptables -I DOCKER-USER -i lan -o wan -j ACCEPT && "
        "iptables -I DOCKER-USER -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED "
        "-j ACCEPT",
    )
    assert pings(client, "10.214.1.100")


# --- SSH, listing, the command line --------------------------------------------------------


@pytest.mark.lab
def test_every_topology_host_answers_ssh_and_is_listed(make_topology: MakeTopology) -> None:
    topo = make_topology("router", docker=False)
    for role, host in topo.hosts.items():
        assert host.name == f"{topo.name}-{role}" and host.role == role
        result = ssh(host, "hostname; ip -o -4 addr show dev eth0")
        assert result.returncode == 0, result.stderr
        name, eth0 = result.stdout.splitlines()[:2]
        assert name == host.name and f"{host.address}/24" in eth0

    (listed,) = [t for t in lab_topologies() if t.name == topo.name]
    assert listed.switch == switch_name(topo.name) and listed.spec.name == "router"
    assert {r: h.name for r, h in listed.hosts.items()} == {
        r: h.name for r, h in topo.hosts.items()
    }
    assert lab_topology(topo.name).address("client", "lan") == "10.214.2.10"

    status, out = _cli("lab", "ls", "--json")
    assert status == 0
    entry = next(e for e in json.loads(out) if e["name"] == topo["router"].name)
    assert entry["topology"] == topo.name and entry["role"] == "router"
    assert [(i["name"], i["network"], i["address"]) for i in entry["interfaces"]] == [
        ("eth0", "mgmt", topo["router"].address),
        ("wan", "wan", "10.214.1.1"),
        ("lan", "lan", "10.214.2.1"),
    ]
    assert entry["gateway"] == "10.214.1.100"
    status, out = _cli("lab", "ls")
    block = out.split(topo["client"].name, 1)[1]
    assert "eth0 (mgmt)" in block and "lan          10.214.2.10/24  fd00:214:2::10/64" in block
    assert "default via 10.214.2.1" in block


@pytest.mark.lab
def test_cli_up_and_down_a_topology() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    require_busybox()
    prefix = _prefix()
    try:
        status, out = _cli("lab", "up", "--topology", "router", "--name", prefix, "--no-docker")
        assert status == 0
        assert f"Topology router ({prefix}) ready in" in out
        assert f"{prefix}-router" in out and "wan          10.214.1.1/24" in out
        assert f"hostwiz lab down {prefix}" in out
        status, out = _cli("lab", "down", prefix)
        assert status == 0
        assert out.strip() == f"Removed: {prefix}-client, {prefix}-outside, {prefix}-router"
        assert switch_name(prefix) not in netns_list()
    finally:
        if any(h.topology == prefix for h in lab_list()):
            lab_down([prefix])


def test_cli_topology_refuses_hosts_count(capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = _cli("lab", "up", "--topology", "router", "--hosts", "2")
    assert status == 1
    assert "--hosts does not go with --topology" in capsys.readouterr().err


# --- lab down ------------------------------------------------------------------------------


@pytest.mark.lab
def test_lab_down_leaves_nothing_of_a_topology(make_topology: MakeTopology) -> None:
    links_before = {n for n in machine_links() if not n.startswith("hwlv")}
    topo = make_topology("router", docker=False)
    names = topo.host_names
    inodes = {n: netns_inode(n) for n in [*names, topo.switch]}
    veths = [h.veth for h in topo.hosts.values()]
    assert topo.switch in netns_list()
    assert all(link in machine_links() for link in veths)
    # Nothing of the topology's networks is on this machine: only each host's eth0 veth.
    assert {n for n in machine_links() if not n.startswith("hwlv")} == links_before
    bridges = subprocess.run(
        ["ip", "-n", topo.switch, "-br", "link", "show", "type", "bridge"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert sorted(line.split()[0] for line in bridges.splitlines()) == ["lan", "wan"]

    assert sorted(lab_down([topo.name])) == sorted(names)

    left = netns_list()
    assert not [n for n in [*names, topo.switch] if n in left]
    # The kernel frees a namespace once its last user is gone: a host process still exiting,
    # or a copy of its /run/netns mount in a practice host that was starting at that moment
    # (anyone's; launch.sh drops such copies within milliseconds). Bounded wait.
    deadline = time.monotonic() + 10
    holders = {n: netns_holders(i) for n, i in inodes.items()}
    while any(holders.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
        holders = {n: netns_holders(i) for n, i in inodes.items()}
    assert not any(holders.values()), holders
    assert not [v for v in veths if v in machine_links()]
    assert not (RUN_ROOT / topo.switch).exists()
    assert not [n for n in names if (RUN_ROOT / n).exists()]
    assert not [n for n in names if n in lab_paths().ssh_config.read_text()]
    assert topo.name not in [t.name for t in lab_topologies()]
    if not RUN_ROOT.exists():  # no host of anyone's left: the bridge must be gone too
        assert BRIDGE not in machine_links()


@pytest.mark.lab
def test_switch_goes_with_the_last_host(make_topology: MakeTopology) -> None:
    topo = make_topology("router", docker=False)
    router = topo["router"].name
    assert lab_down([router]) == [router]
    assert topo.switch in netns_list()  # client and outside still use it
    assert lab_down([topo["client"].name, topo["outside"].name])
    assert topo.switch not in netns_list()
    assert not (RUN_ROOT / topo.switch).exists()


@pytest.mark.lab
def test_a_topology_that_fails_to_boot_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for script in hosts.SCRIPTS.glob("*.sh"):
        shutil.copy(script, tmp_path / script.name)
    (tmp_path / "setup.sh").write_text("echo 'no disk for you' >&2\nexit 3\n")
    monkeypatch.setattr(hosts, "SCRIPTS", tmp_path)
    prefix = _prefix()
    with pytest.raises(LabError, match="stopped while starting"):
        lab_up_topology("router", prefix, docker=False)
    left = netns_list()
    assert switch_name(prefix) not in left
    assert not [n for n in left if n.startswith(f"{prefix}-")]
    assert not list(RUN_ROOT.glob(f"*{prefix}*")) if RUN_ROOT.exists() else True


# --- more than one topology ----------------------------------------------------------------


@pytest.mark.lab
def test_two_instances_with_the_same_subnets_stay_apart(make_topology: MakeTopology) -> None:
    require_busybox()
    first = make_topology("router", docker=False)
    second = make_topology("router", docker=False)
    assert first.switch != second.switch
    assert first["router"].address != second["router"].address  # eth0: one shared network
    for topo in (first, second):
        assert pings(topo["client"], "10.214.2.1")
        mac = on_console(topo["router"], "cat /sys/class/net/lan/address").strip()
        neighbour = on_console(topo["client"], "ip neigh show 10.214.2.1 dev lan")
        assert mac in neighbour, f"{topo.name}'s client reached another router"


@pytest.mark.lab
@pytest.mark.docker
def test_swarm_nodes_share_the_cluster_network(make_topology: MakeTopology) -> None:
    require_busybox()
    topo = make_topology("swarm")
    assert sorted(topo.hosts) == ["node1", "node2", "node3"]
    node1 = topo["node1"]
    for role in ("node2", "node3"):
        assert pings(node1, topo.address(role, "cluster"))
        assert pings(node1, topo.address(role, "cluster", ipv6=True))
    for host in topo.hosts.values():
        assert on_console(host, "docker info --format '{{.Swarm.LocalNodeState}}'").strip()
        assert on_console(host, "ip route show default").strip() == ""


# --- the file format (no root needed) ------------------------------------------------------


@pytest.mark.parametrize("name", shipped_topologies())
def test_shipped_topologies_load(name: str) -> None:
    spec = load_topology(name)
    assert spec.hosts and spec.description
    for host in spec.hosts.values():
        for iface in host.interfaces:
            assert iface.address in spec.networks[iface.network].subnet


def test_shipped_router_topology() -> None:
    spec = load_topology("router")
    assert set(shipped_topologies()) >= {"router", "swarm", "proxy"}
    router, client, outside = (spec.hosts[r] for r in ("router", "client", "outside"))
    assert router.docker and not router.forwarding
    assert [i.name for i in router.interfaces] == ["wan", "lan"]
    assert str(router.gateway) == "10.214.1.100" and str(router.gateway6) == "fd00:214:1::100"
    assert str(client.gateway) == "10.214.2.1"
    assert outside.gateway is None
    assert [(str(r.destination), str(r.via)) for r in outside.routes] == [
        ("10.214.2.0/24", "10.214.1.1"),
        ("fd00:214:2::/64", "fd00:214:1::1"),
    ]


def test_allocation_of_subnets_and_addresses() -> None:
    spec = parse_topology(
        """
        [networks.lan]
        [networks.dmz]
        subnet = "10.214.1.0/24"
        [networks.eth1]
        subnet = "192.168.77.0/24"
        subnet6 = "fd12:3456::/64"
        [hosts.a]
        networks = ["lan", "dmz", "eth1"]
        [hosts.b]
        networks = { lan = "auto", dmz = "10.214.1.1", eth1 = "192.168.77.200" }
        forwarding = true
        [hosts.c]
        networks = { lan = "10.214.2.1" }
        gateway = "b"
        """,
        "alloc.toml",
    )
    assert str(spec.networks["lan"].subnet) == "10.214.2.0/24"  # 10.214.1.0/24 was taken
    assert str(spec.networks["lan"].subnet6) == "fd00:214:2::/64"
    assert str(spec.networks["eth1"].subnet6) == "fd12:3456::/64"
    a, b, c = spec.hosts["a"], spec.hosts["b"], spec.hosts["c"]
    assert [(i.name, str(i.address), str(i.address6)) for i in a.interfaces] == [
        ("lan", "10.214.2.2", "fd00:214:2::2"),
        ("dmz", "10.214.1.2", "fd00:214:1::2"),
        ("eth1", "192.168.77.1", "fd12:3456::1"),
    ]
    assert str(b.interface("lan").address) == "10.214.2.3"
    assert str(b.interface("eth1").address6) == "fd12:3456::200"
    assert b.forwarding and not b.docker
    assert str(c.gateway) == "10.214.2.3" and str(c.gateway6) == "fd00:214:2::3"


def _error(text: str) -> LabError:
    with pytest.raises(LabError) as caught:
        parse_topology(text, "site.toml")
    return caught.value


ROUTER = """[networks.wan]
subnet = "10.214.1.0/24"
[networks.lan]
subnet = "10.214.2.0/24"
[hosts.router]
networks = { wan = "10.214.1.1", lan = "10.214.2.1" }
[hosts.client]
networks = { lan = "10.214.2.10" }
gateway = "router"
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("[hosts.client]\n", "[hosts.client]\ndockr = true\n"),
            "site.toml, line 8: unknown key 'dockr' in [hosts.client]",
        ),
        (("[networks.lan]\n", "[networks.lan]\nmtu = 9000\n"), "line 4: unknown key 'mtu'"),
        (("[networks.wan]", "name = 'x'\n[networks.wan]"), "line 1: unknown key 'name'"),
        (
            ('lan = "10.214.2.10"', 'lan = "10.214.3.10"'),
            "line 8: 10.214.3.10 (client on lan) is outside lan's subnet 10.214.2.0/24",
        ),
        (('lan = "10.214.2.10"', 'lann = "10.214.2.10"'), "line 8: unknown network 'lann'"),
        (
            ('lan = "10.214.2.10"', 'lan = "10.214.2.1"'),
            "line 8: 10.214.2.1 on lan is given to both router and client",
        ),
        (('lan = "10.214.2.10"', 'lan = "10.214.2.255"'), "broadcast address"),
        (('lan = "10.214.2.10"', 'lan = "ten"'), "'ten' is not an IPv4 address"),
        (('gateway = "router"', 'gateway = "routr"'), "line 9: 'routr' is neither"),
        (('gateway = "router"', 'gateway = "10.214.1.1"'), "10.214.1.1 is not on any network"),
        (('gateway = "router"', 'gateway = "client"'), "cannot be its own next hop"),
        (('gateway = "router"', 'gateway = "10.214.2.10"'), "is client's own address"),
        (('subnet = "10.214.2.0/24"', 'subnet = "10.214.1.128/25"'), "overlaps network wan"),
        (('subnet = "10.214.2.0/24"', 'subnet = "10.213.0.0/16"'), "management network"),
        (('subnet = "10.214.2.0/24"', 'subnet = "8.8.8.0/24"'), "not a private range"),
        (('subnet = "10.214.2.0/24"', 'subnet = "10.214.2.1/24"'), "host bits set"),
        (('subnet = "10.214.2.0/24"', "subnet = 24"), "must be a string"),
        (("[networks.lan]", "[networks.eth0]"), "'eth0' is reserved"),
        (("[networks.lan]", "[networks.docker0]"), "'docker0' is reserved"),
        (("[networks.lan]", "[networks.my-lan]"), "cannot be an interface name"),
        (("[hosts.client]", "[hosts.Client]"), "host role 'Client'"),
        (('gateway = "router"', "docker = 1"), "docker must be true or false"),
        (('gateway = "router"', 'routes = { dmz = "router" }'), "'dmz' is neither a network"),
        (('gateway = "router"', 'routes = { lan = "router" }'), "is on lan already"),
        (('gateway = "router"', 'routes = { "10.213.0.0/24" = "router" }'), "management"),
        (('subnet = "10.214.1.0/24"', 'subnet = "10.214.1.0/24'), "is not valid TOML"),
    ],
)
def test_mistakes_are_named_with_file_and_line(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in ROUTER
    error = _error(ROUTER.replace(old, new, 1))
    assert expected in error.message, error.message
    assert error.message.startswith("site.toml")


def test_gateway_needs_exactly_one_shared_network() -> None:
    text = ROUTER.replace('lan = "10.214.2.10"', 'wan = "10.214.1.10", lan = "10.214.2.10"')
    assert "shares several networks with router" in _error(text).message
    text = ROUTER + '[hosts.far]\nnetworks = ["wan"]\ngateway = "client"\n'
    assert "far shares no network with client" in _error(text).message


def test_a_topology_needs_hosts_and_known_files() -> None:
    assert "at least one host" in _error('[networks.lan]\nsubnet = "10.214.2.0/24"\n').message
    with pytest.raises(LabError, match="no topology called 'nope'") as caught:
        load_topology("nope")
    assert "router" in caught.value.hint
    with pytest.raises(LabError, match="Cannot read the topology file"):
        load_topology("/nonexistent/x.toml")


def test_loads_a_topology_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(NO_ROUTE_BACK)
    spec = load_topology(str(path))
    assert spec.name == "mine" and spec.source == str(path)
    assert list(spec.hosts) == ["router", "client", "outside"]


def test_host_records_keep_their_interfaces(tmp_path: Path) -> None:
    host = LabHost(
        name="t1-router",
        address="10.213.0.10",
        address6="fd00:213::10",
        init_pid=1,
        state_dir=tmp_path,
        admin_password="pw",
        number=10,
        veth="hwlv10",
        docker=False,
        init_start=1,
        launcher_pid=1,
        launcher_start=1,
        owner=str(tmp_path),
        created=0.0,
        topology="t1",
        role="router",
        interfaces=(LabInterface("lan", "lan", "10.214.2.1", 24, "fd00:214:2::1", 64),),
        gateway="10.214.1.100",
    )
    again = LabHost.from_json(json.loads(json.dumps(host.to_json())))
    assert again == host
    assert [i.name for i in again.all_interfaces] == ["eth0", "lan"]
    assert again.interface("mgmt").address == "10.213.0.10"
    old_record = {k: v for k, v in host.to_json().items() if k not in ("interfaces", "role")}
    assert LabHost.from_json(old_record).interfaces == ()
