"""Meeting the needs other steps declare (:class:`wizard.steps.base.Need`), #12.

A step that exposes something (the NFS server, the Docker API over TLS, a swarm node, squid's
intercept port) declares it; the session hands every declared need to this step's planner.
For each need and each of its sources, the zone the traffic arrives in must offer the service
to that source. When it does not, the service is added to that zone, limited to the source,
with a note saying which step needs it. Which zone:

* a need with sources: the zone of the interface whose connected network holds the source
  (longest prefix); a source on no connected network is met only if some zone offers it
  already (hostwiz cannot tell which way it comes in, and says so);
* a need without sources ("whoever the admin chose"): met when any zone offers it; else the
  zone the admin's own SSH connection comes in through, else mgmt, else lan (when they have
  interfaces).

hostwiz never offers a need to the untrusted zone (wan) on its own unless the need says it may
(``untrusted_ok``) and names its sources: nfs, the Docker API and VXLAN's 4789/udp are refused
there with a way out.
``ssh`` needs are met by the zones' ssh, which follows sshd's ports; the lock-out check
guards the admin's own path.

With the step off, :func:`check_loaded` refuses needs that zones an earlier apply loaded
would drop (no zone opens their ports at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from wizard.errors import InvalidAnswer, PlanConflict
from wizard.steps.base import Need
from wizard.steps.firewall.host import Interface, SshPath
from wizard.steps.firewall.model import Ruleset, ZoneRules, is_docker_interface, zone_of_interface
from wizard.steps.firewall.services import (
    Network,
    Opening,
    ServiceSpec,
    parse_network,
    parse_service,
    ssh_opening,
)

UNTRUSTED = "wan"


@dataclass(frozen=True)
class Offer:
    """A service hostwiz adds to a zone because a step needs it."""

    zone: str
    spec: ServiceSpec
    need: Need

    @property
    def note(self) -> str:
        why = f" because {self.need.why}" if self.need.why else ""
        return f"{self.spec.text} is offered to {self.zone}{why}."


def parse_need(need: Need) -> tuple[ServiceSpec, tuple[Network | None, ...]]:
    """The need's service and sources, parsed like the admin's own entries."""
    where = f"a need ({need.why or need.service})"
    try:
        spec = parse_service(need.service, where)
        sources = tuple(parse_network(source, where) for source in need.sources)
    except InvalidAnswer as error:  # a step declared something the firewall cannot offer
        raise PlanConflict(error.message, error.hint) from None
    return spec, sources or (None,)


def _ports(opening: Opening) -> set[int]:
    return {port for r in opening.ports for port in range(r.low, r.high + 1)}


def _covers(offered: Sequence[Opening], wanted: Opening) -> bool:
    same = [o for o in offered if o.protocol == wanted.protocol]
    if not same:
        return False
    if not wanted.ports:
        return True
    ports: set[int] = set()
    for opening in same:
        if not opening.ports:
            return True
        ports |= _ports(opening)
    return _ports(wanted) <= ports


def _openings(spec: ServiceSpec, ruleset: Ruleset) -> tuple[Opening, ...]:
    return (ssh_opening(ruleset.ssh_ports),) if spec.is_ssh else spec.openings


def _reaches(ruleset: Ruleset, offered: ServiceSpec, source: Network | None) -> bool:
    """Does ``offered`` let ``source`` in (None: the need leaves the sources to the admin)?"""
    if source is None:
        return True
    return any(
        allowed is None or (allowed.version == source.version and source.subnet_of(allowed))  # type: ignore[arg-type]
        for allowed in ruleset.sources(offered)
    )


def offers(ruleset: Ruleset, zone: ZoneRules, spec: ServiceSpec, source: Network | None) -> bool:
    """Does ``zone`` let ``source`` reach everything ``spec`` opens?"""
    wanted = _openings(spec, ruleset)
    return all(
        any(_covers(_openings(s, ruleset), opening) and _reaches(ruleset, s, source)
            for s in zone.services)
        for opening in wanted
    )  # fmt: skip


def arrival_zone(
    ruleset: Ruleset, interfaces: dict[str, Interface], source: Network
) -> tuple[ZoneRules, str] | None:
    """The zone (and interface) whose connected network holds ``source``, the longest prefix
    first; None when no interface of the host is on its network."""
    best: tuple[int, str] | None = None
    for name, interface in interfaces.items():
        if is_docker_interface(name):
            continue
        for address in interface.addresses:
            net = address.network
            if net.version != source.version or address.ip.is_link_local:
                continue
            if source.subnet_of(net) and (best is None or net.prefixlen > best[0]):  # type: ignore[arg-type]
                best = (net.prefixlen, name)
    if best is None:
        return None
    return zone_of_interface(ruleset, best[1]), best[1]


def _admin_zone(ruleset: Ruleset, path: SshPath) -> ZoneRules:
    """Where a need without sources goes: the zone the admin's SSH connection comes in
    through (unless that is the untrusted one), else mgmt, else lan, when they have
    interfaces; else the untrusted zone when it is the only one (refused or allowed by
    the need)."""
    if path.known and path.interface != "lo":
        zone = zone_of_interface(ruleset, path.interface)
        if zone.name != UNTRUSTED:
            return zone
    for name in ("mgmt", "lan"):
        zone = ruleset.zone(name)
        if zone.interfaces or zone.catch_all:
            return zone
    return ruleset.zone(UNTRUSTED)


def _with_service(ruleset: Ruleset, zone: str, spec: ServiceSpec) -> Ruleset:
    zones = tuple(
        replace(z, services=(*z.services, spec)) if z.name == zone else z for z in ruleset.zones
    )
    return replace(ruleset, zones=zones)


def _refuse_untrusted(need: Need, spec: ServiceSpec, source: Network | None, how: str) -> None:
    entry = f"{need.service} from {source}" if source is not None else need.service
    why = f" ({need.why})" if need.why else ""
    raise PlanConflict(
        f"{entry} is needed{why}, but it would come in through the untrusted zone "
        f"{UNTRUSTED} ({how}), and hostwiz never opens {spec.name or need.service} to the "
        "internet on its own.",
        "Put the interface the clients use in lan or mgmt (firewall.lan_interfaces or "
        f"firewall.mgmt_interfaces), or, if you mean it, add '{entry}' to "
        f"firewall.{UNTRUSTED}_services yourself.",
    )


def meet(
    ruleset: Ruleset,
    needs: Sequence[Need],
    interfaces: dict[str, Interface],
    path: SshPath,
) -> tuple[Ruleset, tuple[Offer, ...]]:
    """``ruleset`` with every need met, and what was added for which need. Refuses a need
    that would have to be opened to the untrusted zone, or whose source hostwiz cannot
    place in a zone (see the module docstring)."""
    added: list[Offer] = []
    for need in needs:
        spec, sources = parse_need(need)
        if spec.is_ssh:
            continue  # the zones' ssh follows sshd's ports; the lock-out check guards it
        for source in sources:
            if source is None:
                if any(offers(ruleset, zone, spec, None) for zone in ruleset.zones):
                    continue
                zone = _admin_zone(ruleset, path)
                how = "mgmt and lan have no interfaces"
            else:
                found = arrival_zone(ruleset, interfaces, source)
                if found is None:
                    if any(offers(ruleset, z, spec, source) for z in ruleset.zones):
                        continue
                    raise PlanConflict(
                        f"{need.service} from {source} is needed"
                        f"{f' ({need.why})' if need.why else ''}, but no interface of this "
                        "host is on that network, so hostwiz cannot tell which zone it comes "
                        "in through.",
                        f"Add '{need.service} from {source}' to the services of the zone it "
                        "comes through (firewall.mgmt_services, lan_services or wan_services).",
                    )
                zone, interface = found
                if offers(ruleset, zone, spec, source):
                    continue
                how = f"{source} is on {interface}'s network, in zone {zone.name}"
            if zone.name == UNTRUSTED and (source is None or not need.untrusted_ok):
                _refuse_untrusted(need, spec, source, how)
            text = f"{need.service} from {source}" if source is not None else need.service
            offer = replace(spec, text=text, source=source)
            ruleset = _with_service(ruleset, zone.name, offer)
            added.append(Offer(zone.name, offer, need))
    return ruleset, tuple(added)


def declared_tcp_ports(needs: Sequence[Need]) -> set[int]:
    """The TCP ports the needs name (for the fallback note on ports nobody declared)."""
    ports: set[int] = set()
    for need in needs:
        try:
            spec = parse_service(need.service, "a need")
        except InvalidAnswer:
            continue
        for opening in spec.openings:
            if opening.protocol == "tcp":
                ports |= _ports(opening)
    return ports


def check_loaded(zones: dict[str, set[tuple[str, int]]], needs: Sequence[Need]) -> None:
    """With the step off: refuse a need that the zones an earlier apply loaded drop in every
    zone (no zone opens one of its ports). ``zones``: zone -> (protocol, port) it accepts;
    empty when no zones are loaded (nothing is filtered then)."""
    if not zones:
        return
    for need in needs:
        spec, _ = parse_need(need)
        if spec.is_ssh or need.own_accept:
            continue  # ssh: checked against sshd's move (the zones opened its old port)
        for opening in spec.openings:
            if opening.protocol not in {"tcp", "udp"}:
                continue
            for port in (p for r in opening.ports for p in range(r.low, r.high + 1)):
                if any((opening.protocol, port) in opened for opened in zones.values()):
                    continue
                why = f" ({need.why})" if need.why else ""
                raise PlanConflict(
                    f"{need.service} is needed{why}, but the firewall zones hostwiz loaded "
                    f"earlier let {port}/{opening.protocol} in from nowhere "
                    f"(zones {', '.join(sorted(zones))}).",
                    "Turn the firewall step on in the same change (firewall.enabled = true: "
                    f"its zones then offer {need.service} where it is needed), or add it to "
                    "a zone's services yourself.",
                )
