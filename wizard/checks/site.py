"""The combination checker over a whole site: every host's own rules, with the site steps'
answers given to the hosts whose roles they plan for, and rules that look across hosts.

Like the rest of the checker this imports no step: a site step's answers arrive as
step -> field -> value (:class:`SiteStepAnswers`), and :data:`AS_HOST_STEP` says, as data,
under which single-host step's name each role's rules read them (the NFS site step ``nfs`` is
the ``shares`` step on its server).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wizard.checks.rules import RULES, Combined, Conflict, Rule, check_combination

AS_HOST_STEP: dict[str, dict[str, str]] = {
    "swarm": {"swarm-manager": "swarm", "swarm-worker": "swarm"},
    "nfs": {"nfs-server": "shares"},
}
"""Site step -> role -> the single-host step whose rules read the site step's answers on a
host with that role. A site step not listed here is read under its own name, on every host
with one of its roles."""
NFS_CLIENT = "nfs-client"


@dataclass(frozen=True)
class SiteStepAnswers:
    """One site step of the site file: its name, the roles it plans for, its answers."""

    name: str
    roles: tuple[str, ...]
    answers: Mapping[str, Any]


@dataclass(frozen=True)
class SiteHostCheck:
    """One host of the site as the checker sees it."""

    name: str
    roles: tuple[str, ...] = ()
    answers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Its own steps' answers (its preset): step -> field -> value."""
    host: Mapping[str, Any] = field(default_factory=dict)
    """Its facts (:data:`wizard.checks.HOST`)."""


@dataclass(frozen=True)
class SiteRule:
    """A rule that reads every host at once: (host, message, hint) for each conflict."""

    name: str
    about: str
    test: Callable[[Mapping[str, Combined]], list[tuple[str, str, str]]]


def _own_networks(host: Mapping[str, Any]) -> list[ipaddress.IPv4Network]:
    found = []
    for route in host.get("routes", ()) or ():
        try:
            found.append(ipaddress.IPv4Network(str(route), strict=False))
        except ValueError:
            continue
    return found


def _addresses(host: Mapping[str, Any]) -> list[ipaddress.IPv4Interface]:
    found = []
    for text in host.get("addresses", ()) or ():
        try:
            found.append(ipaddress.IPv4Interface(str(text)))
        except ValueError:
            continue
    return found


def _clients_seen_by(server: SiteHostCheck, clients: Sequence[SiteHostCheck]) -> list[str]:
    """The NFS site step exports to its clients' addresses when it names no networks: each
    client's address on a network the server routes to (as /32)."""
    networks = _own_networks(server.host)
    found = []
    for client in clients:
        for address in _addresses(client.host):
            if any(address.ip in net for net in networks):
                found.append(f"{address.ip}/32")
                break
    return found


def combined_hosts(
    hosts: Sequence[SiteHostCheck], steps: Iterable[SiteStepAnswers]
) -> dict[str, Combined]:
    """host -> its :class:`Combined`: its own answers, plus each site step's answers under the
    name its role reads them (:data:`AS_HOST_STEP`), switched on."""
    steps = list(steps)
    clients = [h for h in hosts if NFS_CLIENT in h.roles]
    found: dict[str, Combined] = {}
    for host in hosts:
        answers = {step: dict(values) for step, values in host.answers.items()}
        facts = dict(host.host)
        for step in steps:
            names = AS_HOST_STEP.get(step.name, {role: step.name for role in step.roles})
            for role in host.roles:
                if role not in names:
                    continue
                values = {**dict(step.answers), "enabled": True}
                if step.name == "nfs" and not values.get("networks"):
                    values["networks"] = tuple(_clients_seen_by(host, clients))
                answers[names[role]] = values
            if step.name == "nfs" and NFS_CLIENT in host.roles:
                mount = str(step.answers.get("client_mount_point", "") or "/mnt/share")
                facts["nfs_mounts"] = (*(facts.get("nfs_mounts") or ()), mount)
        found[host.name] = Combined(answers, facts)
    return found


def _subnet_overlaps_any_host(combined: Mapping[str, Combined]) -> list[tuple[str, str, str]]:
    """The swarm's subnets against the routes of the site's hosts outside the swarm (a swarm
    host's own routes are its own rule, ``subnet-overlap``)."""
    subnets: dict[str, ipaddress.IPv4Network] = {}
    for c in combined.values():
        if c.on("swarm"):
            overlay = c.get("swarm", "overlay", True)
            for label in ("overlay_subnet", "gwbridge_subnet") if overlay else ("gwbridge_subnet",):
                value = c.get("swarm", label)
                if value:
                    subnets[f"swarm.{label}"] = ipaddress.IPv4Network(str(value), strict=False)
    found = []
    for name, c in combined.items():
        if c.on("swarm"):
            continue
        for route in _own_networks(c.host):
            for label, net in subnets.items():
                if route.prefixlen and route != net and net.overlaps(route):
                    found.append((name, f"{label} {net} overlaps {name}'s route to {route}: "
                                  "swarm containers could not reach that network, and "
                                  "replies to it would go into the overlay.",
                                  f"Choose another {label} (a private range no host of the site "
                                  "routes to).") )  # fmt: skip
    return found


SITE_RULES: tuple[SiteRule, ...] = (
    SiteRule("site-subnet-overlap", "the swarm's subnets overlapping another host's routes",
             _subnet_overlaps_any_host),
)  # fmt: skip


def check_site(
    hosts: Sequence[SiteHostCheck],
    steps: Iterable[SiteStepAnswers],
    rules: Iterable[Rule] = RULES,
    site_rules: Iterable[SiteRule] = SITE_RULES,
) -> list[Conflict]:
    """Every host's conflicts (its own answers and the site steps' on it), then the site's."""
    combined = combined_hosts(hosts, steps)
    rules = list(rules)
    found = [
        replace(conflict, host=name)
        for name, c in combined.items()
        for conflict in check_combination(c, rules)
    ]
    for rule in site_rules:
        found += [Conflict(rule.name, message, hint, host)
                  for host, message, hint in rule.test(combined)]  # fmt: skip
    return found
