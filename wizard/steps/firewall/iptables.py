"""The iptables backend: hostwiz's own chains, loaded with ``iptables-restore --noflush``.

Why this shape (seed 002): Docker owns FORWARD, the nat table's DOCKER chains and the
DOCKER-ISOLATION chains, and rewrites them whenever it starts. hostwiz never touches those. It
declares its own ``HOSTWIZ-*`` chains in one restore file per address family (declaring a chain
in a ``--noflush`` restore replaces its rules in one kernel transaction) and jumps to them from
INPUT, FORWARD, DOCKER-USER (which Docker consults before its own FORWARD rules, so published
ports cannot bypass the zones) and, for NAT, nat POSTROUTING.

The chains, for each address family::

    HOSTWIZ-INPUT      established/related, invalid, loopback, ICMP that the network needs,
                       then by incoming interface -> HOSTWIZ-IN-<zone> (each ends with DROP)
    HOSTWIZ-FORWARD    established/related, invalid; traffic from Docker's bridges is left to
                       Docker; traffic to them goes to HOSTWIZ-CONTAINERS; the rest by incoming
                       interface -> HOSTWIZ-FWD-<zone>, which accepts the outgoing interfaces
                       of the zones it may forward to and drops the rest
    HOSTWIZ-CONTAINERS published ports: allowed sources RETURN (Docker's rules then deliver),
                       by incoming interface -> HOSTWIZ-CT-<zone>, everything else DROP.
                       A RETURN leaves only one chain, so every jump whose "allowed" means
                       "on to Docker" is followed by a RETURN with the same match.
    nat HOSTWIZ-POSTROUTING  masquerade towards wan (IPv4 only)

Rules are written exactly the way ``iptables-save`` prints them, so that comparing the file
with the live rules tells whether anything needs loading (an empty plan means "already done").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wizard.host.iptables_save import parse_save as parse_tables
from wizard.steps.firewall.model import DOCKER_INTERFACES, Ruleset, ZoneRules
from wizard.steps.firewall.services import Network, Opening, ServiceSpec, ssh_opening

PREFIX = "HOSTWIZ-"
INPUT = "HOSTWIZ-INPUT"
FORWARD = "HOSTWIZ-FORWARD"
CONTAINERS = "HOSTWIZ-CONTAINERS"
POSTROUTING = "HOSTWIZ-POSTROUTING"
ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED"
INVALID = "-m conntrack --ctstate INVALID"

JUMPS = (
    ("filter", "INPUT", INPUT),
    ("filter", "FORWARD", FORWARD),
    ("filter", "DOCKER-USER", FORWARD),
    ("nat", "POSTROUTING", POSTROUTING),
)
"""Where hostwiz's chains are jumped to from (table, chain, target)."""

ICMP6_ESSENTIAL = (
    "-p ipv6-icmp -m icmp6 --icmpv6-type 1 -j ACCEPT",  # destination unreachable
    "-p ipv6-icmp -m icmp6 --icmpv6-type 2 -j ACCEPT",  # packet too big (path MTU)
    "-p ipv6-icmp -m icmp6 --icmpv6-type 3 -j ACCEPT",  # time exceeded
    "-p ipv6-icmp -m icmp6 --icmpv6-type 4 -j ACCEPT",  # parameter problem
    # neighbour discovery and router advertisements only from the link itself (hop limit 255)
    "-p ipv6-icmp -m icmp6 --icmpv6-type 133 -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp -m icmp6 --icmpv6-type 134 -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT",
    "-p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT",
    # multicast listener discovery, link-local only
    "-s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 130 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 131 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 132 -j ACCEPT",
    "-s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 143 -j ACCEPT",
    # DHCPv6 replies to this host's client
    "-s fe80::/10 -p udp -m udp --dport 546 -j ACCEPT",
)
ICMP4_ESSENTIAL = ("-p icmp -m icmp --icmp-type 3/4 -j ACCEPT",)  # fragmentation needed


def zone_chain(kind: str, zone: str) -> str:
    return f"{PREFIX}{kind}-{zone}"


def _rule(chain: str, body: str) -> str:
    return f"-A {chain} {body}"


def _match_source(source: Network | None) -> str:
    return f"-s {source} " if source is not None else ""


def _opening_matches(opening: Opening, version: int) -> list[str]:
    if opening.protocol in {"tcp", "udp"}:
        proto = opening.protocol
        return [f"-p {proto} -m {proto} --dport {port}" for port in opening.ports]
    if opening.protocol == "icmp":
        return (["-p icmp -m icmp --icmp-type 8"] if version == 4
                else ["-p ipv6-icmp -m icmp6 --icmpv6-type 128"])  # fmt: skip
    return [f"-p {opening.protocol}"]


def _sources(spec: ServiceSpec, ruleset: Ruleset, version: int) -> list[Network | None]:
    """The service's sources of this address family (none: the rule is left out here)."""
    return [s for s in ruleset.sources(spec) if s is None or s.version == version]


def service_rules(
    chain: str, services: Iterable[ServiceSpec], ruleset: Ruleset, version: int
) -> list[str]:
    rules: list[str] = []
    for spec in services:
        openings = (ssh_opening(ruleset.ssh_ports),) if spec.is_ssh else spec.openings
        for source in _sources(spec, ruleset, version):
            for opening in openings:
                for match in _opening_matches(opening, version):
                    rules.append(_rule(chain, f"{_match_source(source)}{match} -j ACCEPT"))
    return rules


def _dispatch(chain: str, kind: str, ruleset: Ruleset, *, returned: bool = False) -> list[str]:
    """Send traffic to the per-zone chain of its incoming interface; the catch-all zone last.

    ``returned``: the zone chains end with DROP and RETURN what they allow, which must reach
    Docker's own rules. A RETURN only leaves one chain, so each jump is followed by a RETURN
    with the same match, passing the verdict up instead of on to the next zone's rules.
    """
    rules = []
    catch_all = ""
    for zone in ruleset.zones:
        target = zone_chain(kind, zone.name)
        for name in zone.interfaces:
            rules.append(_rule(chain, f"-i {name} -j {target}"))
            if returned:
                rules.append(_rule(chain, f"-i {name} -j RETURN"))
        if zone.catch_all:
            catch_all = target
    rules.append(_rule(chain, f"-j {catch_all}"))
    if returned:
        rules.append(_rule(chain, "-j RETURN"))
    return rules


def _input(ruleset: Ruleset, version: int) -> list[str]:
    rules = [
        _rule(INPUT, f"{ESTABLISHED} -j ACCEPT"),
        _rule(INPUT, f"{INVALID} -j DROP"),
        _rule(INPUT, "-i lo -j ACCEPT"),
    ]
    essential = ICMP4_ESSENTIAL if version == 4 else ICMP6_ESSENTIAL
    rules += [_rule(INPUT, body) for body in essential]
    docker = zone_chain("IN", "docker")
    rules += [_rule(INPUT, f"-i {name} -j {docker}") for name in DOCKER_INTERFACES]
    rules += _dispatch(INPUT, "IN", ruleset)
    for zone in ruleset.zones:
        chain = zone_chain("IN", zone.name)
        rules += service_rules(chain, zone.services, ruleset, version)
        rules.append(_rule(chain, "-j DROP"))
    rules += service_rules(docker, ruleset.container_services, ruleset, version)
    rules.append(_rule(docker, "-j DROP"))
    return rules


def _forward_zone(zone: ZoneRules, ruleset: Ruleset) -> list[str]:
    chain = zone_chain("FWD", zone.name)
    targets = {target for source, target in ruleset.forwards if source == zone.name}
    rules = []
    for other in ruleset.zones:
        verdict = "ACCEPT" if other.name in targets else "DROP"
        rules += [_rule(chain, f"-o {name} -j {verdict}") for name in other.interfaces]
    catch_all = next(z.name for z in ruleset.zones if z.catch_all)
    rules.append(_rule(chain, f"-j {'ACCEPT' if catch_all in targets else 'DROP'}"))
    return rules


def _containers(ruleset: Ruleset, version: int) -> list[str]:
    rules = []
    for access in ruleset.containers:
        if access.source is None or access.source.version != version:
            continue  # a network of the other address family: that family's file has it
        for match in _published(access.port):
            rules.append(_rule(CONTAINERS, f"-s {access.source} {match}-j RETURN"))
    rules += _dispatch(CONTAINERS, "CT", ruleset, returned=True)
    for zone in ruleset.zones:
        chain = zone_chain("CT", zone.name)
        for access in ruleset.containers:
            if access.zone == zone.name:
                rules += [_rule(chain, f"{match}-j RETURN") for match in _published(access.port)]
        rules.append(_rule(chain, "-j DROP"))
    return rules


def _published(port: ServiceSpec | None) -> list[str]:
    """Matches for one published port (the original destination port, before Docker's DNAT)."""
    if port is None:
        return [""]
    return [
        f"-p {o.protocol} -m conntrack --ctorigdstport {r} --ctdir ORIGINAL "
        for o in port.openings
        for r in o.ports
    ]


def _forward(ruleset: Ruleset, version: int) -> list[str]:
    rules = [
        _rule(FORWARD, f"{ESTABLISHED} -j ACCEPT"),
        _rule(FORWARD, f"{INVALID} -j DROP"),
    ]
    rules += [_rule(FORWARD, f"-i {name} -j RETURN") for name in DOCKER_INTERFACES]
    for name in DOCKER_INTERFACES:  # what HOSTWIZ-CONTAINERS returns goes on to Docker
        rules += [
            _rule(FORWARD, f"-o {name} -j {CONTAINERS}"),
            _rule(FORWARD, f"-o {name} -j RETURN"),
        ]
    rules += _dispatch(FORWARD, "FWD", ruleset)
    for zone in ruleset.zones:
        rules += _forward_zone(zone, ruleset)
    return rules + _containers(ruleset, version)


def _postrouting(ruleset: Ruleset) -> list[str]:
    if not ruleset.masquerade:
        return []
    wan = ruleset.zone("wan")
    sources = [net for source, _ in ruleset.masquerade for net in ruleset.networks[source]]
    matches = [f"-s {net} " for net in dict.fromkeys(sources)] or [""]
    rules = [
        _rule(POSTROUTING, f"{match}-o {name} -j MASQUERADE")
        for name in wan.interfaces
        for match in matches
    ]
    if wan.catch_all:
        others = [name for zone in ruleset.zones if zone.name != "wan" for name in zone.interfaces]
        rules += [_rule(POSTROUTING, f"-o {name} -j RETURN")
                  for name in (*others, *DOCKER_INTERFACES)]  # fmt: skip
        rules += [_rule(POSTROUTING, f"{match}-j MASQUERADE") for match in matches]
    return rules


@dataclass(frozen=True)
class Tables:
    """Chains and their rules per table, as declared by a restore file or seen live."""

    chains: dict[str, dict[str, list[str]]]

    def hostwiz(self) -> dict[str, dict[str, list[str]]]:
        return {
            table: {c: r for c, r in chains.items() if c.startswith(PREFIX)}
            for table, chains in self.chains.items()
        }

    def has_jump(self, table: str, chain: str, target: str) -> bool:
        return f"-A {chain} -j {target}" in self.chains.get(table, {}).get(chain, [])

    def rules(self, table: str, chain: str) -> list[str]:
        return self.chains.get(table, {}).get(chain, [])


def parse_save(text: str) -> Tables:
    """``iptables-save`` output (or a restore file) -> :class:`Tables`."""
    return Tables(parse_tables(text))


def render(ruleset: Ruleset, version: int) -> str:
    """The restore file for one address family (4 or 6)."""

    def section(table: str, rules: list[str]) -> list[str]:
        declared = list(dict.fromkeys(rule.split()[1] for rule in rules))
        return [f"*{table}", *(f":{c} - [0:0]" for c in declared), *_unique(rules), "COMMIT"]

    family = "iptables" if version == 4 else "ip6tables"
    lines = [
        f"# Written by hostwiz (firewall zones). Loaded with {family}-restore --noflush by",
        "# /usr/local/sbin/hostwiz-firewall: only hostwiz's own HOSTWIZ-* chains are replaced,",
        "# Docker's chains are never touched. Change it with hostwiz, not by hand.",
        *section("filter", _input(ruleset, version) + _forward(ruleset, version)),
    ]
    nat = _postrouting(ruleset) if version == 4 else []
    if nat:
        lines += section("nat", nat)
    return "\n".join(lines) + "\n"


def _unique(rules: list[str]) -> list[str]:
    return list(dict.fromkeys(rules))


def live_matches(wanted: str, live: str, *, docker_user: bool = True) -> list[str]:
    """What differs between the rules a file would load and the live ones ([] when none)."""
    want, have = parse_save(wanted), parse_save(live)
    problems = []
    for table, chains in want.hostwiz().items():
        live_chains = have.hostwiz().get(table, {})
        for chain, rules in chains.items():
            if chain not in live_chains:
                problems.append(f"chain {chain} ({table}) is not loaded")
            elif live_chains[chain] != rules:
                problems.append(f"chain {chain} ({table}) has other rules than the file")
        stale = sorted(set(live_chains) - set(chains))
        problems += [f"chain {chain} ({table}) is left over" for chain in stale]
    for table, chain, target in JUMPS:
        if chain == "DOCKER-USER" and not docker_user:
            continue
        if target in want.hostwiz().get(table, {}) and not have.has_jump(table, chain, target):
            problems.append(f"{chain} ({table}) does not jump to {target}")
    stale_tables = set(have.hostwiz()) - set(want.hostwiz())
    problems += [
        f"chain {chain} ({table}) is left over"
        for table in sorted(stale_tables)
        for chain in have.hostwiz()[table]
    ]
    return problems


OWN_CHAIN_PREFIXES = ("HOSTWIZ-", "HWPROXY-", "HWPROXYRT-")
"""Chains hostwiz writes: the firewall's, and the proxy step's (squid on the router, and the
router's policy routing to a proxy host). A plain jump to one of them is hostwiz's own."""


def _own_jump(rule: str) -> bool:
    """``-A CHAIN -j HOSTWIZ-…`` (or a proxy chain), with no match before the jump."""
    parts = rule.split()
    return len(parts) == 4 and parts[2] == "-j" and parts[3].startswith(OWN_CHAIN_PREFIXES)


def foreign_rules(live: str) -> dict[str, list[str]]:
    """Rules of other tools that hostwiz's chains would shadow or that bypass them (hostwiz's
    own jumps, the proxy step's too, are not foreign)."""
    tables = parse_save(live)
    found: dict[str, list[str]] = {}
    user = [r for r in tables.rules("filter", "DOCKER-USER")
            if r != "-A DOCKER-USER -j RETURN" and not _own_jump(r)]  # fmt: skip
    if user:
        found["DOCKER-USER"] = user
    inputs = [r for r in tables.rules("filter", "INPUT") if not _own_jump(r)]
    if inputs:
        found["INPUT"] = inputs
    return found
