"""The nftables backend: one ``inet hostwiz`` table (seed 003's hostguard idea).

For hosts without Docker and for workstations. Same zones, same meaning as the iptables backend
(:mod:`wizard.steps.firewall.iptables`), in one table that covers IPv4 and IPv6 together::

    input        base chain (hook input, policy drop): established/related, invalid dropped,
                 loopback, the ICMP/ICMPv6 that IPv4 and IPv6 need (path MTU, neighbour
                 discovery, MLD, DHCPv6 replies), Docker's bridges -> in_docker, then by
                 incoming interface -> in_<zone>, the catch-all zone last (each ends with drop)
    forward      base chain (hook forward, policy drop): established/related, invalid; traffic
                 from Docker's bridges is accepted here (Docker's own rules decide), traffic to
                 them goes to ``containers``; the rest by incoming interface -> fwd_<zone>,
                 which accepts the outgoing interfaces of the zones it may forward to
    containers   published ports: allowed sources accept, by incoming interface -> ct_<zone>,
                 everything else drop. The port is matched with ``ct original proto-dst``: the
                 port the client asked for, before Docker's DNAT rewrote it
    postrouting  nat (hook postrouting, srcnat): masquerade towards wan, IPv4 only

**Loading.** The file starts with ``table inet hostwiz {}`` and ``delete table inet hostwiz``
and then declares the whole table, so ``nft -f`` (one kernel transaction for the whole file)
replaces the old table by the new one atomically, whether or not it existed: no moment without
rules, no left-over chain from an older version, and a failed load changes nothing. No other
table is touched, and a ``--check`` of the file needs no table to exist.

**Is it loaded already?** nft prints a table in its own normalised form (sets, symbolic names,
spacing and priorities vary between nft versions), so comparing ``nft list table`` with the file
text would make the plan flap. Instead the first rule carries a comment with a hash of the
rendered table (``hostwiz-rules sha256:…``): the live table was loaded from this exact text when
the hashes match. On top of that :func:`live_matches` compares the structure nft cannot
normalise away: the chain names, each base chain's hook and policy, and the number of rules per
chain, so a rule added or deleted by hand, or a changed policy, is found and reloaded. (A rule
replaced in place by hand, same count, is not.) The hash sits on a rule, not in a table comment,
because table comments need nft 0.9.7 and kernel 5.10; rule comments work everywhere.

**Limits with Docker.** Docker keeps its own rules in iptables (``ip filter``/``ip nat``
through iptables-nft, or x_tables with iptables-legacy; Docker 29's experimental nftables
backend uses its own ``docker-bridges`` tables). Those base chains hook the same places at the
same priority as this table, and netfilter runs every base chain of a hook in turn, in no order
anyone promises: a **drop anywhere is final**, an **accept only ends that one base chain** and
the packet goes on to the next. So this table can take traffic away from containers (the zones,
published ports via ``ct original proto-dst``, containers reaching the host) but can never
allow what Docker's rules drop. In particular, when dockerd turns IP forwarding on itself it
sets the FORWARD policy to DROP, and from then on routing between zones (router hosts) is
dropped by Docker whatever this table accepts; only DOCKER-USER rules get past that, and those
are what the iptables backend writes. Docker never
touches ``inet hostwiz``, so a dockerd restart keeps these rules. A ``flush ruleset`` (the
first line of Debian's stock ``/etc/nftables.conf``, run by ``nftables.service``) removes this
table together with Docker's rules: leave that service disabled, ``hostwiz-firewall`` loads the
table at boot. Use ``backend = "iptables"`` on Docker hosts; the step says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from wizard.errors import PlanConflict
from wizard.steps.firewall.model import DOCKER_INTERFACES, Ruleset, ZoneRules
from wizard.steps.firewall.services import Network, Opening, PortRange, ServiceSpec, ssh_opening

TABLE = "inet hostwiz"
HASH_TAG = "hostwiz-rules sha256:"
HASH_COMMENT = re.compile(r'comment "' + re.escape(HASH_TAG) + r'([0-9a-f]+)"')
ESTABLISHED = "ct state established,related accept"

ICMP4_ESSENTIAL = ("icmp type destination-unreachable icmp code frag-needed accept",)
ICMP6_ESSENTIAL = (
    # errors: destination unreachable, packet too big (path MTU), time exceeded, bad header
    "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, "
    "parameter-problem } accept",
    # neighbour discovery and router advertisements only from the link itself (hop limit 255)
    "ip6 hoplimit 255 icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
    "nd-neighbor-advert } accept",
    # multicast listener discovery, link-local only
    "ip6 saddr fe80::/10 icmpv6 type { mld-listener-query, mld-listener-report, "
    "mld-listener-done, mld2-listener-report } accept",
    # DHCPv6 replies to this host's client
    "ip6 saddr fe80::/10 udp dport 546 accept",
)


def zone_chain(kind: str, zone: str) -> str:
    return f"{kind}_{zone}"


def _name(interface: str) -> str:
    """An interface as an nft string; iptables' ``+`` wildcard becomes nft's ``*``."""
    if interface.endswith("+"):
        return f'"{interface[:-1]}*"'
    if any(c in interface for c in '"\\*'):
        raise PlanConflict(
            f"the interface name {interface!r} cannot be written in an nftables rule.",
            'Use backend = "iptables" for this host, or rename the interface.',
        )
    return f'"{interface}"'


def _docker_names() -> list[str]:
    return [_name(name) for name in DOCKER_INTERFACES]


def _saddr(source: Network) -> str:
    one = source.prefixlen == source.max_prefixlen  # written as nft lists it: 10.0.0.5
    where = source.network_address if one else source
    return f"{'ip' if source.version == 4 else 'ip6'} saddr {where} "


def _ports(ports: tuple[PortRange, ...]) -> str:
    texts = [str(p.low) if p.low == p.high else f"{p.low}-{p.high}" for p in ports]
    return texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"


def _opening_matches(opening: Opening, version: int | None) -> list[str]:
    """Matches for one opening; ``version`` limits them to one address family (None: both)."""
    if opening.protocol == "icmp":
        both = {4: "icmp type echo-request", 6: "icmpv6 type echo-request"}
        return [match for v, match in both.items() if version in (None, v)]
    if opening.protocol in {"tcp", "udp"} and opening.ports:
        return [f"{opening.protocol} dport {_ports(opening.ports)}"]
    return [f"meta l4proto {opening.protocol}"]


def service_rules(services: Iterable[ServiceSpec], ruleset: Ruleset) -> list[str]:
    rules: list[str] = []
    for spec in services:
        openings = (ssh_opening(ruleset.ssh_ports),) if spec.is_ssh else spec.openings
        for source in ruleset.sources(spec):
            version = source.version if source is not None else None
            prefix = _saddr(source) if source is not None else ""
            for opening in openings:
                rules += [f"{prefix}{match} accept" for match in _opening_matches(opening, version)]
    return rules


def _dispatch(kind: str, ruleset: Ruleset) -> list[str]:
    """Send traffic to the per-zone chain of its incoming interface; the catch-all zone last."""
    rules = []
    catch_all = ""
    for zone in ruleset.zones:
        chain = zone_chain(kind, zone.name)
        rules += [f"iifname {_name(name)} jump {chain}" for name in zone.interfaces]
        if zone.catch_all:
            catch_all = chain
    return [*rules, f"jump {catch_all}"]


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[str, ...]
    hook: str = ""
    """``type filter hook input priority filter; policy drop;`` for a base chain, else ""."""


def _input(ruleset: Ruleset) -> list[Chain]:
    rules = [ESTABLISHED, "ct state invalid drop", 'iifname "lo" accept']
    rules += [*ICMP4_ESSENTIAL, *ICMP6_ESSENTIAL]
    docker = zone_chain("in", "docker")
    rules += [f"iifname {name} jump {docker}" for name in _docker_names()]
    rules += _dispatch("in", ruleset)
    chains = [Chain("input", tuple(rules), "type filter hook input priority filter; policy drop;")]
    for zone in ruleset.zones:
        chains.append(
            Chain(zone_chain("in", zone.name), (*service_rules(zone.services, ruleset), "drop"))
        )
    chains.append(Chain(docker, (*service_rules(ruleset.container_services, ruleset), "drop")))
    return chains


def _forward_zone(zone: ZoneRules, ruleset: Ruleset) -> Chain:
    targets = {target for source, target in ruleset.forwards if source == zone.name}
    rules = []
    for other in ruleset.zones:
        verdict = "accept" if other.name in targets else "drop"
        rules += [f"oifname {_name(name)} {verdict}" for name in other.interfaces]
    catch_all = next(z.name for z in ruleset.zones if z.catch_all)
    rules.append("accept" if catch_all in targets else "drop")
    return Chain(zone_chain("fwd", zone.name), tuple(rules))


def _published(port: ServiceSpec | None) -> list[str]:
    """Matches for one published port (the original destination port, before Docker's DNAT)."""
    if port is None:
        return [""]
    return [
        f"meta l4proto {o.protocol} ct original proto-dst {_ports((r,))} "
        for o in port.openings
        for r in o.ports
    ]


def _containers(ruleset: Ruleset) -> list[Chain]:
    rules = []
    for access in ruleset.containers:
        if access.source is not None:
            rules += [f"{_saddr(access.source)}{m}accept" for m in _published(access.port)]
    chains = [Chain("containers", (*rules, *_dispatch("ct", ruleset)))]
    for zone in ruleset.zones:
        allowed = [
            f"{match}accept"
            for access in ruleset.containers
            if access.zone == zone.name
            for match in _published(access.port)
        ]
        verdicts = ("accept",) if "accept" in allowed else (*allowed, "drop")
        chains.append(Chain(zone_chain("ct", zone.name), verdicts))
    return chains


def _forward(ruleset: Ruleset) -> list[Chain]:
    rules = [ESTABLISHED, "ct state invalid drop"]
    rules += [f"iifname {name} accept" for name in _docker_names()]  # Docker's rules decide
    rules += [f"oifname {name} jump containers" for name in _docker_names()]
    rules += _dispatch("fwd", ruleset)
    hook = "type filter hook forward priority filter; policy drop;"
    return [
        Chain("forward", tuple(rules), hook),
        *(_forward_zone(zone, ruleset) for zone in ruleset.zones),
        *_containers(ruleset),
    ]


def _postrouting(ruleset: Ruleset) -> list[Chain]:
    if not ruleset.masquerade:
        return []
    wan = ruleset.zone("wan")
    sources = [net for source, _ in ruleset.masquerade for net in ruleset.networks[source]]
    matches = [f"ip saddr {net} " for net in dict.fromkeys(sources)] or ["meta nfproto ipv4 "]
    rules = [
        f"{match}oifname {_name(name)} masquerade" for name in wan.interfaces for match in matches
    ]
    if wan.catch_all:
        others = [name for zone in ruleset.zones if zone.name != "wan" for name in zone.interfaces]
        rules += [f"oifname {_name(name)} return" for name in (*others, *DOCKER_INTERFACES)]
        rules += [f"{match}masquerade" for match in matches]
    hook = "type nat hook postrouting priority srcnat; policy accept;"
    return [Chain("postrouting", tuple(rules), hook)]


def _chain_text(chain: Chain) -> list[str]:
    body = [chain.hook] if chain.hook else []
    return [f"\tchain {chain.name} {{", *(f"\t\t{line}" for line in (*body, *chain.rules)), "\t}"]


def render(ruleset: Ruleset) -> str:
    """The whole ``rules.nft`` file: replaces the ``inet hostwiz`` table when loaded with
    ``nft -f``. Deterministic: the same ruleset always gives the same text (and hash)."""
    chains = [*_input(ruleset), *_forward(ruleset), *_postrouting(ruleset)]
    chains = [Chain(c.name, tuple(dict.fromkeys(c.rules)), c.hook) for c in chains]
    body = [line for chain in chains for line in _chain_text(chain)]
    digest = hashlib.sha256("\n".join(body).encode()).hexdigest()[:32]
    first = body.index(f"\t\t{ESTABLISHED}")  # the input chain's first rule carries the hash
    body[first] += f' comment "{HASH_TAG}{digest}"'
    lines = [
        "#!/usr/sbin/nft -f",
        "# Written by hostwiz (firewall zones). Loaded with nft -f by",
        "# /usr/local/sbin/hostwiz-firewall: the first two commands make the load replace the",
        f"# whole {TABLE} table in one transaction; no other table is touched.",
        "# Change it with hostwiz, not by hand.",
        f"table {TABLE} {{}}",
        f"delete table {TABLE}",
        f"table {TABLE} {{",
        *body,
        "}",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TableShape:
    """What :func:`live_matches` compares: per chain, its hook and policy and its rule count."""

    digest: str
    chains: dict[str, tuple[str, str, int]]


BASE_CHAIN = re.compile(r"\btype \w+ hook (\w+) .*?policy (\w+);")


def parse_table(text: str) -> TableShape:
    """The shape of an ``inet hostwiz`` table, from our file or from ``nft list table``."""
    chains: dict[str, tuple[str, str, int]] = {}
    current = ""
    hook, policy, count = "", "", 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        opened = re.fullmatch(r"chain (\S+) \{", line)
        if opened:
            current, hook, policy, count = opened[1], "", "", 0
        elif current and line == "}":
            chains[current] = (hook, policy, count)
            current = ""
        elif current:
            base = BASE_CHAIN.search(line)
            if base:
                hook, policy = base[1], base[2]
            elif not line.startswith("comment "):  # a chain's own comment is not a rule
                count += 1
    found = HASH_COMMENT.search(text)
    return TableShape(found[1] if found else "", chains)


def live_matches(wanted: str, live: str) -> list[str]:
    """What differs between the table ``wanted`` (our file) and ``live`` (``nft list table inet
    hostwiz``); [] when the live table is this file's, loaded and unchanged."""
    if not live.strip():
        return [f"the {TABLE} table is not loaded"]
    want, have = parse_table(wanted), parse_table(live)
    problems = []
    if want.digest != have.digest:
        problems.append(f"the {TABLE} table was loaded from other rules")
    for chain, shape in want.chains.items():
        if chain not in have.chains:
            problems.append(f"chain {chain} is not loaded")
        elif have.chains[chain] != shape:
            problems.append(f"chain {chain} was changed (rules, hook or policy)")
    problems += [
        f"chain {chain} is left over" for chain in sorted(set(have.chains) - set(want.chains))
    ]
    return problems
