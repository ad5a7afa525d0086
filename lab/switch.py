"""The plumbing of a topology's networks: a "switch" network namespace per running topology.

Nothing here touches this machine's own network namespace. A running topology ``PREFIX`` has:

* the network namespace ``hwsw-PREFIX`` (the *switch*) holding one bridge per network, named
  like the network (``wan``, ``lan``), with no addresses: it only carries frames between the
  hosts. It runs no process; deleting it deletes its bridges and ports.
* per host and network a veth pair: ``hN-NET`` in the switch (N: the host's number on the
  management network), and the interface named like the network inside the host. Deleting
  the host's network namespace or the switch deletes the pair.

Inside each host the lab adds, besides addresses and routes, a few policy rules (priority
100-101, ``prohibit``): nothing from a topology network, forwarded or sent from one of those
addresses, may go out ``eth0`` to the management network. The machine on the far side of
``eth0`` forwards nothing, but it would answer such a packet through its own default route,
that is, out of the lab. Forwarding is set per host (``net.ipv4.ip_forward`` and
``net.ipv6.conf.all.forwarding``, both per network namespace).
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterable, Sequence

from lab.model import LabInterface
from lab.network import ip, netns_names
from lab.paths import LabNetwork
from lab.topology import MGMT_SUBNET6, HostSpec
from wizard.errors import LabError

SWITCH_PREFIX = "hwsw-"
RULE_PRIORITY = 100


def switch_name(instance: str) -> str:
    """The switch namespace of topology instance ``instance`` (its host name prefix)."""
    return f"{SWITCH_PREFIX}{instance}"


def port_name(number: int, network: str) -> str:
    """The switch end of host ``number``'s veth on ``network`` (at most 15 characters)."""
    return f"h{number}-{network}"


def _batch(namespace: str, lines: Sequence[str], *family: str) -> None:
    if not lines:
        return
    proc = subprocess.run(
        ["ip", *family, "-n", namespace, "-batch", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        raise LabError(
            f"Could not set up the lab network in {namespace}: "
            f"{proc.stderr.strip() or proc.returncode}"
        )


def create_switch(switch: str, networks: Iterable[str]) -> None:
    """The switch namespace with an unaddressed bridge per network, all up."""
    ip("netns", "add", switch)
    lines = ["link set lo up"]
    for net in networks:
        # No multicast snooping: with no querier around it only gets in the way of IPv6
        # neighbour discovery. No IPv6 link-local address: the switch says nothing itself.
        lines += [
            f"link add {net} type bridge mcast_snooping 0",
            f"link set {net} addrgenmode none",
            f"link set {net} up",
        ]
    _batch(switch, lines)


def wire_host(switch: str, host_ns: str, number: int, interfaces: Sequence[LabInterface]) -> None:
    """A veth pair per interface: one end on the network's bridge, the other in the host."""
    lines = []
    for iface in interfaces:
        port = port_name(number, iface.network)
        lines += [
            f"link add {port} type veth peer name {iface.name} netns {host_ns}",
            f"link set {port} addrgenmode none",
            f"link set {port} master {iface.network} up",
        ]
    _batch(switch, lines)


def configure_host(
    host_ns: str, spec: HostSpec, interfaces: Sequence[LabInterface], mgmt: LabNetwork
) -> None:
    """Addresses, routes, the rules that keep topology traffic off eth0, and forwarding."""
    links = []
    for iface in interfaces:
        links += [
            f"addr add {iface.address}/{iface.prefixlen} dev {iface.name}",
            f"addr add {iface.address6}/{iface.prefixlen6} dev {iface.name} nodad",
            f"link set {iface.name} up",
        ]
    _batch(host_ns, links)
    v4: list[str] = []
    v6: list[str] = []
    mgmt4, mgmt6 = str(mgmt.subnet), str(MGMT_SUBNET6)
    for iface in interfaces:
        net4 = f"{iface.address}/{iface.prefixlen}"
        net6 = f"{iface.address6}/{iface.prefixlen6}"
        v4 += [
            f"rule add pref {RULE_PRIORITY} from {_network_of(net4)} to {mgmt4} prohibit",
            f"rule add pref {RULE_PRIORITY + 1} iif {iface.name} to {mgmt4} prohibit",
        ]
        v6 += [
            f"rule add pref {RULE_PRIORITY} from {_network_of(net6)} to {mgmt6} prohibit",
            f"rule add pref {RULE_PRIORITY + 1} iif {iface.name} to {mgmt6} prohibit",
        ]
    if spec.gateway is not None:
        v4.append(f"route add default via {spec.gateway}")
    if spec.gateway6 is not None:
        v6.append(f"route add default via {spec.gateway6}")
    for route in spec.routes:
        (v4 if route.destination.version == 4 else v6).append(
            f"route add {route.destination} via {route.via}"
        )
    _batch(host_ns, v4, "-4")
    _batch(host_ns, v6, "-6")
    set_forwarding(host_ns, spec.forwarding)


def _network_of(interface: str) -> str:
    return str(ipaddress.ip_interface(interface).network)


def set_forwarding(host_ns: str, enabled: bool) -> None:
    """IPv4 and IPv6 forwarding inside ``host_ns`` (network namespace sysctls only)."""
    if host_ns not in netns_names():
        # nsenter would fail anyway; never let a sysctl land in the machine's namespace.
        raise LabError(f"The network namespace {host_ns} is missing.")
    value = "1" if enabled else "0"
    proc = subprocess.run(
        [
            "nsenter", f"--net=/run/netns/{host_ns}",
            "sysctl", "-q", "-w",
            f"net.ipv4.ip_forward={value}", f"net.ipv6.conf.all.forwarding={value}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )  # fmt: skip
    if proc.returncode != 0:
        raise LabError(f"Could not set forwarding in {host_ns}: {proc.stderr.strip()}")


def remove_switch(switch: str) -> None:
    """Delete the switch namespace (and with it its bridges and veth ends)."""
    if not switch.startswith(SWITCH_PREFIX):
        raise LabError(f"{switch} is not a lab switch; not deleting it.")
    if switch in netns_names():
        ip("netns", "del", switch, check=False)
    if switch in netns_names():
        raise LabError(f"The switch namespace {switch} is still there.")
