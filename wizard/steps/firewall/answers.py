"""What the admin chooses for the firewall: zones, what each offers, forwarding, containers.

Three fixed zones keep the model small enough to reason about: ``mgmt`` (where admins come
from), ``lan`` (trusted clients) and ``wan`` (the internet, untrusted). Every interface belongs
to exactly one; interfaces nobody listed fall into ``other_interfaces`` (``wan`` unless changed),
so a new interface is never trusted by accident. Docker's bridges form a fourth, implicit zone.

Everything that can be checked without the host is checked here, when the answers are built
(a preset, ``--set`` or a form field): service typos, networks that are not networks, one
interface in two zones, forwarding between zones that do not exist. The host-dependent checks
(interfaces that do not exist, cutting off the admin's own SSH) happen in the planner.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.answers import INTERFACE, check_fields, describe
from wizard.errors import InvalidAnswer
from wizard.steps.firewall.services import ServiceSpec, parse_network, parse_service

ZONES = ("mgmt", "lan", "wan")
Zone = Literal["mgmt", "lan", "wan"]


def _when_enabled(label: str, help: str, **extra: Any) -> dict[str, object]:
    """Field metadata for a question that only matters while the zones are on: the forms
    hide it while ``enabled`` is false (its answer is kept)."""
    result: dict[str, object] = describe(label, help, show_if=("enabled", True), **extra)
    return result


def _interfaces(key: str, label: str) -> tuple[str, ...]:
    return field(
        default=(),
        metadata=_when_enabled(
            label,
            f"The host's interfaces in the {key} zone, comma separated (e.g. eth0, ens4).",
            item="interface",
        ),
    )


@dataclass(frozen=True)
class FirewallAnswers:
    enabled: bool = field(
        default=False,
        metadata=describe(
            "Firewall zones",
            "On: hostwiz loads its own iptables chains (IPv4 and IPv6) that Docker cannot "
            "punch through, and restores them at boot before Docker starts.",
        ),
    )
    backend: Literal["iptables", "nftables"] = field(
        default="iptables",
        metadata=_when_enabled(
            "Backend",
            "iptables: works with Docker (own chains plus DOCKER-USER). nftables: one "
            "'inet hostwiz' table, for hosts without Docker and for workstations.",
        ),
    )
    mgmt_interfaces: tuple[str, ...] = _interfaces("mgmt", "Management interfaces")
    lan_interfaces: tuple[str, ...] = _interfaces("lan", "LAN interfaces")
    wan_interfaces: tuple[str, ...] = _interfaces("wan", "WAN (internet) interfaces")
    other_interfaces: Zone = field(
        default="wan",
        metadata=_when_enabled(
            "Zone of interfaces not listed",
            "Interfaces you did not put in a zone (including ones added later) are treated as "
            "this zone. wan (untrusted) is the safe choice.",
        ),
    )
    mgmt_services: tuple[str, ...] = field(
        default=("ssh", "ping"),
        metadata=_when_enabled(
            "Services offered to mgmt",
            "What the host answers on its mgmt interfaces: service names (ssh, ping, "
            "docker-tls, swarm, esp, nfs, proxy, http, https, dns, dhcp, ntp) or ports "
            "(8080/tcp, 53, 60000-61000/udp), each optionally 'from NETWORK'.",
        ),
    )
    lan_services: tuple[str, ...] = field(
        default=("ssh", "ping"),
        metadata=_when_enabled("Services offered to lan", "As for mgmt, for the lan interfaces."),
    )
    wan_services: tuple[str, ...] = field(
        default=("ssh", "ping"),
        metadata=_when_enabled(
            "Services offered to wan",
            "As for mgmt, for the internet side. Keep ssh here until you reach the host "
            "through mgmt or lan, or limit it: 'ssh from 203.0.113.0/24'.",
        ),
    )
    forward: tuple[str, ...] = field(
        default=(),
        metadata=_when_enabled(
            "Forwarding (router hosts)",
            "Zone pairs the host routes between, as FROM>TO, e.g. lan>wan lets lan clients "
            "reach the internet through this host. Empty: the host routes nothing (Docker's "
            "containers are not affected). Turns on IP forwarding.",
        ),
    )
    masquerade: bool = field(
        default=True,
        metadata=_when_enabled(
            "NAT towards wan",
            "On: traffic forwarded to wan leaves with the host's address (masquerade), so "
            "the internet needs no route back to your LAN. IPv6 is routed without NAT.",
        ),
    )
    containers_reachable_from: tuple[str, ...] = field(
        default=("mgmt", "lan"),
        metadata=_when_enabled(
            "Who may reach published container ports",
            "Zones or networks that may reach ports published with docker run -p (which "
            "Docker would otherwise open to everyone): mgmt, lan, wan, 10.0.0.0/8, or one "
            "port: '8080/tcp from wan'. Rootless Docker publishes through an ordinary host "
            "process instead: offer those ports as zone services (8080/tcp).",
        ),
    )
    container_services: tuple[str, ...] = field(
        default=(),
        metadata=_when_enabled(
            "Host services containers may use",
            "What containers may reach on the host itself (e.g. dns, proxy, 8080/tcp). "
            "Empty: containers cannot connect to the host.",
        ),
    )
    swarm_peers: tuple[str, ...] = field(
        default=(),
        metadata=_when_enabled(
            "Swarm peers",
            "Addresses or networks of the other swarm nodes: the swarm service is only open "
            "to them. Empty: open to the whole zone that offers swarm.",
            item="network",
        ),
    )
    allow_cutting_my_ssh: bool = field(
        default=False,
        metadata=_when_enabled(
            "Allow a change that cuts my SSH path",
            "Off: refuse rules that would block the SSH connection hostwiz is using now. "
            "On: plan them anyway (the change will most likely roll itself back, because "
            "hostwiz cannot confirm it).",
        ),
    )

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for zone in ZONES:
            where = f"firewall.{zone}_interfaces"
            for name in self.interfaces_of(zone):
                _check_interface_name(name, where)
                if seen.get(name) == zone:
                    raise InvalidAnswer(
                        f"{where}: interface {name} is listed twice.", "List each interface once."
                    )
                if name in seen:
                    raise InvalidAnswer(
                        f"{where}: interface {name} is also in firewall.{seen[name]}_interfaces "
                        f"(zones {seen[name]} and {zone}).",
                        "An interface belongs to exactly one zone: remove it from one list.",
                    )
                seen[name] = zone
        for zone in ZONES:
            self.services_of(zone)
        self.container_services_parsed()
        self.forward_pairs()
        self.container_access()
        self.swarm_peer_networks()
        check_fields(self, "firewall")  # what the checks above let through: line breaks

    def interfaces_of(self, zone: str) -> tuple[str, ...]:
        return tuple(getattr(self, f"{zone}_interfaces"))

    def services_of(self, zone: str) -> tuple[ServiceSpec, ...]:
        raw: tuple[str, ...] = getattr(self, f"{zone}_services")
        return tuple(parse_service(entry, f"firewall.{zone}_services") for entry in raw)

    def container_services_parsed(self) -> tuple[ServiceSpec, ...]:
        where = "firewall.container_services"
        return tuple(parse_service(entry, where) for entry in self.container_services)

    def forward_pairs(self) -> tuple[tuple[str, str], ...]:
        pairs = []
        for entry in self.forward:
            source, sep, target = entry.replace(" ", "").partition(">")
            unknown = [zone for zone in (source, target) if zone not in ZONES]
            if not sep or unknown or source == target:
                if not sep:
                    problem = "is not a pair of zones"
                elif unknown:
                    problem = f"names no zone {' or '.join(repr(z) for z in unknown)}"
                else:
                    problem = "routes a zone to itself"
                raise InvalidAnswer(
                    f"firewall.forward: {entry!r} {problem}.",
                    f"Write FROM>TO with two different zones of {', '.join(ZONES)}, e.g. lan>wan.",
                )
            pairs.append((source, target))
        return tuple(dict.fromkeys(pairs))

    def container_access(self) -> tuple[tuple[str, ServiceSpec | None], ...]:
        """(zone name or network text, the one port it is limited to or None)."""
        where = "firewall.containers_reachable_from"
        result: list[tuple[str, ServiceSpec | None]] = []
        for entry in self.containers_reachable_from:
            words = entry.split()
            if len(words) == 1:
                result.append((_zone_or_network(words[0], where), None))
            elif len(words) == 3 and words[1] == "from":
                port = parse_service(words[0], where)
                if port.name:
                    raise InvalidAnswer(
                        f"{where}: {entry!r} names a service; published ports are numbers.",
                        "Write the port you publish with docker run -p, e.g. '8080/tcp from wan'.",
                    )
                result.append((_zone_or_network(words[2], where), port))
            else:
                raise InvalidAnswer(
                    f"{where}: {entry!r} is not understood.",
                    "Write a zone (lan), a network (10.0.0.0/8), or 'PORT/PROTO from ZONE "
                    "or NETWORK' (8080/tcp from wan).",
                )
        return tuple(result)

    def swarm_peer_networks(self) -> tuple[object, ...]:
        return tuple(parse_network(peer, "firewall.swarm_peers") for peer in self.swarm_peers)


def _zone_or_network(text: str, where: str) -> str:
    if text in ZONES:
        return text
    try:
        return str(parse_network(text, where))
    except InvalidAnswer:
        close = difflib.get_close_matches(text.lower(), ZONES, n=1)
        guess = f"Did you mean {close[0]!r}? " if close else ""
        raise InvalidAnswer(
            f"{where}: {text!r} is neither a zone nor a network.",
            f"{guess}Write a zone ({', '.join(ZONES)}), a network such as 10.0.0.0/8 or "
            "fd00::/64, or one address.",
        ) from None


def _check_interface_name(name: str, where: str) -> None:
    if not INTERFACE.fullmatch(name):
        raise InvalidAnswer(
            f"{where}: {name!r} is not an interface name.",
            "Interface names are up to 15 characters without spaces or '/' (letters, digits, "
            "'.', '-' and '_'), e.g. eth0, ens3, enp0s3.",
        )
