"""What a swarm node needs the firewall to let in (#16), from which peers.

A manager takes the nodes' management traffic on 2377/tcp; every node gossips on 7946/tcp+udp
and carries overlay traffic as VXLAN on 4789/udp, inside ESP (IP protocol 50) when the overlay
is encrypted. VXLAN has no authentication, so its need may never be offered to an untrusted
zone; the others come from the listed peers only and may cross one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from wizard.steps.base import Need
from wizard.steps.swarm.answers import SwarmAnswers
from wizard.steps.swarm.facts import SwarmHost

WHY = "the swarm step's {what}"


def node_needs(
    answers: SwarmAnswers, manager: bool, control: Sequence[str], data: Sequence[str]
) -> tuple[Need, ...]:
    """A node's needs: ``control`` the peers' advertise addresses (or networks), ``data`` their
    data path addresses. No peers, no needs."""
    found: list[Need] = []
    if control:
        peers = tuple(control)
        if manager:
            found.append(Need("2377/tcp", peers, WHY.format(what="nodes manage the swarm through "
                              "it"), untrusted_ok=True))  # fmt: skip
        found.append(Need("7946", peers, WHY.format(what="nodes gossip on it"), untrusted_ok=True))
    if data:
        peers = tuple(data)
        found.append(Need("4789/udp", peers, WHY.format(what="overlay traffic (VXLAN) uses it")))
        if answers.overlay_encrypted:
            found.append(Need("esp", peers, WHY.format(what="encrypted overlay is carried in it"),
                              untrusted_ok=True))  # fmt: skip
    return tuple(found)


def network_of(host: SwarmHost, address: str) -> str:
    """The connected network of one of the host's addresses ("" when it has none)."""
    for addresses in host.interfaces.values():
        for entry in addresses:
            if entry.split("/")[0] == address:
                return str(ipaddress.ip_interface(entry).network)
    return ""
