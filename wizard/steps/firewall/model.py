"""The zone map: the admin's answers resolved against the host's real interfaces.

:func:`resolve` turns :class:`~wizard.steps.firewall.answers.FirewallAnswers` plus facts into a
:class:`Ruleset`, a backend-neutral description that the iptables and nftables renderers turn
into rules. It is also what the wizard shows as the zone map.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wizard.errors import PlanConflict
from wizard.steps.firewall.answers import ZONES, FirewallAnswers
from wizard.steps.firewall.host import Interface, SshPath
from wizard.steps.firewall.services import Network, ServiceSpec, describe_service

DOCKER_INTERFACES = ("docker0", "br-+", "docker_gwbridge")
"""Docker's bridges (iptables wildcard ``+``): the implicit ``docker`` zone."""


@dataclass(frozen=True)
class ZoneRules:
    name: str
    interfaces: tuple[str, ...]
    services: tuple[ServiceSpec, ...]
    catch_all: bool = False
    """This zone also gets every interface that no zone lists."""


@dataclass(frozen=True)
class ContainerAccess:
    """One kind of traffic allowed to published container ports."""

    zone: str
    """A zone name, or "" when ``source`` says where the traffic may come from."""
    source: Network | None = None
    port: ServiceSpec | None = None
    """Only this published port (a plain port entry), or every published port."""


@dataclass(frozen=True)
class Ruleset:
    zones: tuple[ZoneRules, ...]
    ssh_ports: tuple[int, ...]
    swarm_peers: tuple[Network, ...]
    forwards: tuple[tuple[str, str], ...]
    masquerade: tuple[tuple[str, str], ...]
    """The forward pairs whose traffic leaves with the host's address (towards wan)."""
    containers: tuple[ContainerAccess, ...]
    container_services: tuple[ServiceSpec, ...]
    networks: dict[str, tuple[str, ...]]
    """zone -> its IPv4 networks (from the host's addresses), for NAT sources."""

    def sources(self, spec: ServiceSpec) -> tuple[Network | None, ...]:
        """Where a service may be reached from: its own 'from NETWORK' when it has one, the
        swarm peers for swarm, else anywhere in the zone (None)."""
        if spec.source is not None:
            return (spec.source,)
        if spec.name == "swarm" and self.swarm_peers:
            return self.swarm_peers
        return (None,)

    def opens_tcp(self, spec: ServiceSpec, port: int) -> bool:
        """Does this service open TCP ``port`` (ssh: the ports sshd listens on)?"""
        if spec.is_ssh:
            return port in self.ssh_ports
        return any(
            opening.protocol == "tcp" and any(r.low <= port <= r.high for r in opening.ports)
            for opening in spec.openings
        )

    def zone(self, name: str) -> ZoneRules:
        return next(zone for zone in self.zones if zone.name == name)

    @property
    def explicit_interfaces(self) -> tuple[str, ...]:
        return tuple(name for zone in self.zones for name in zone.interfaces)


def _check_interfaces(answers: FirewallAnswers, interfaces: dict[str, Interface]) -> None:
    missing = [
        (zone, name) for zone in ZONES for name in answers.interfaces_of(zone)
        if name not in interfaces
    ]  # fmt: skip
    if missing:
        listed = ", ".join(f"{name} ({zone})" for zone, name in missing)
        have = "; ".join(i.describe() for i in interfaces.values()) or "none found"
        raise PlanConflict(
            f"the host has no interface named {listed}.",
            f"The host's interfaces are: {have}. Put those names in the zones.",
        )


def resolve(
    answers: FirewallAnswers,
    interfaces: dict[str, Interface],
    ssh_ports: tuple[int, ...],
) -> Ruleset:
    """Answers + the host's interfaces -> the rules to enforce. Raises :class:`PlanConflict`
    for interfaces the host does not have."""
    _check_interfaces(answers, interfaces)
    zones = tuple(
        ZoneRules(
            zone,
            answers.interfaces_of(zone),
            answers.services_of(zone),
            catch_all=zone == answers.other_interfaces,
        )
        for zone in ZONES
    )
    forwards = answers.forward_pairs()
    masquerade = tuple(pair for pair in forwards if answers.masquerade and pair[1] == "wan")
    containers = []
    for where, port in answers.container_access():
        if where in ZONES:
            containers.append(ContainerAccess(where, None, port))
        else:
            containers.append(ContainerAccess("", ipaddress.ip_network(where), port))
    networks = {
        zone.name: tuple(
            net for name in zone.interfaces if name in interfaces
            for net in interfaces[name].networks(4)
        )
        for zone in zones
    }  # fmt: skip
    return Ruleset(
        zones=zones,
        ssh_ports=ssh_ports or (22,),
        swarm_peers=tuple(ipaddress.ip_network(peer, strict=False) for peer in answers.swarm_peers),
        forwards=forwards,
        masquerade=masquerade,
        containers=tuple(containers),
        container_services=answers.container_services_parsed(),
        networks=networks,
    )


def zone_of_interface(ruleset: Ruleset, name: str) -> ZoneRules:
    for zone in ruleset.zones:
        if name in zone.interfaces:
            return zone
    return next(zone for zone in ruleset.zones if zone.catch_all)


def allows_ssh_from(ruleset: Ruleset, path: SshPath) -> bool:
    """Would the admin's SSH connection (``path``) still get in after this change?"""
    if path.interface == "lo":
        return True  # HOSTWIZ-INPUT accepts loopback before any zone
    zone = zone_of_interface(ruleset, path.interface)
    client = ipaddress.ip_address(path.client)
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
        client = client.ipv4_mapped  # sshd on [::] shows IPv4 clients as ::ffff:a.b.c.d
    return any(
        ruleset.opens_tcp(spec, path.server_port)
        and any(source is None or client in source for source in ruleset.sources(spec))
        for spec in zone.services
    )


def zone_map(ruleset: Ruleset, interfaces: dict[str, Interface]) -> list[str]:
    """Plain lines for the preview: each zone, its interfaces, what it offers."""
    lines = []
    for zone in ruleset.zones:
        names = [interfaces[n].describe() if n in interfaces else n for n in zone.interfaces]
        if zone.catch_all:
            unlisted = [name for name in interfaces if name not in ruleset.explicit_interfaces]
            others = [interfaces[n].describe() for n in unlisted if not is_docker_interface(n)]
            names += [f"{o} (not listed)" for o in others] or ["any interface not listed"]
        offers = ", ".join(describe_service(s, ruleset.ssh_ports) for s in zone.services)
        lines.append(
            f"{zone.name}: {'; '.join(names) or 'no interfaces'} -> offers {offers or 'nothing'}"
        )
    for source, target in ruleset.forwards:
        nat = " with NAT" if (source, target) in ruleset.masquerade else ""
        lines.append(f"forwarding {source} -> {target}{nat}")
    reach = ", ".join(_describe_access(access) for access in ruleset.containers)
    lines.append(f"published container ports: reachable from {reach or 'nowhere'}")
    offers = ", ".join(describe_service(s, ruleset.ssh_ports) for s in ruleset.container_services)
    lines.append(f"containers may use on the host: {offers or 'nothing'}")
    return lines


def _describe_access(access: ContainerAccess) -> str:
    where = access.zone or str(access.source)
    return f"{access.port.text.split()[0]} from {where}" if access.port else where


def is_docker_interface(name: str) -> bool:
    """Docker's bridges and the veth ends of its containers (not the admin's to zone)."""
    return any(
        name == pattern or (pattern.endswith("+") and name.startswith(pattern[:-1]))
        for pattern in DOCKER_INTERFACES
    ) or name.startswith("veth")
