"""Site step: a swarm of several hosts (issue #16), a manager and the workers that join it.

Stage 1, at the same time on every host: a custom docker_gwbridge (the chosen subnet and
options, made before the host is in any swarm, or Docker makes a default one), then on the
manager ``docker swarm init`` (and, if asked, an overlay network): the single-host planner's
own functions. The manager's stage produces the worker join token, read with
``docker swarm join-token -q worker`` as a :class:`wizard.secrets.Secret`: never shown, logged
or kept.
Stage 2, on each worker: ``docker swarm join`` with that token, advertising the worker's own
address (the interface or address the answers name, resolved on that worker). A worker already
in the swarm of that manager plans nothing.

Rollback (the site's, newest stage first): the workers leave (``docker swarm leave --force``),
then every host's stage 1 is undone (the manager leaves, every custom docker_gwbridge goes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wizard.actions import Action
from wizard.answers import check_fields, describe
from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts, gather
from wizard.plan import Plan
from wizard.secrets import Secret
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.base import Need
from wizard.steps.swarm.answers import SwarmAnswers
from wizard.steps.swarm.facts import SWARM_HOST, SwarmHost
from wizard.steps.swarm.join import TOKEN, join_action
from wizard.steps.swarm.needs import node_needs
from wizard.steps.swarm.plan import (
    DAEMON,
    GWBRIDGE,
    _check_subnets,
    _gwbridge_actions,
    _init_actions,
    _live_restore,
    _overlay_actions,
    check,
    gwbridge_matches,
    resolve,
)
from wizard.transport.base import Transport

MANAGER, WORKER = "swarm-manager", "swarm-worker"
PENDING_TOKEN = Secret("SWMTKN-1-" + "0" * 50 + "-" + "0" * 25)
"""Stands for the token in a provisional preview (masked like the real one); the stage is
planned again with the real token before it applies."""


@dataclass(frozen=True)
class SwarmSiteAnswers:
    """What a site file's ``[steps.swarm]`` table chooses (the same names as the one-host step's
    answers; addresses are interface names or addresses, resolved on each host)."""

    advertise_address: str = field(
        default="",
        metadata=describe(
            "Advertise address",
            "The interface (or address) each node is reached on by the others, resolved on "
            "each host (an interface name suits every host). Empty: a host's only address.",
            "str",
        ),
    )
    data_path_address: str = field(
        default="",
        metadata=describe("Data path address",
                          "The interface (or address) for overlay traffic. Empty: the "
                          "advertise address.", "str"),
    )  # fmt: skip
    gwbridge_subnet: str = field(
        default="10.81.10.0/24",
        metadata=describe("docker_gwbridge subnet", "Each node's docker_gwbridge network.",
                          kind="cidr"),
    )  # fmt: skip
    gwbridge_icc: bool = field(
        default=False,
        metadata=describe("Containers talk over docker_gwbridge", "Off: they cannot."),
    )
    gwbridge_masquerade: bool = field(
        default=False,
        metadata=describe("Masquerade docker_gwbridge", "Off (the seed's choice): no NAT."),
    )
    overlay: bool = field(
        default=False,
        metadata=describe("Overlay network", "Create an attachable overlay on the manager."),
    )
    overlay_name: str = field(
        default="hostwiz-overlay", metadata=describe("Overlay network name", "Its name.")
    )
    overlay_subnet: str = field(
        default="10.81.30.0/24", metadata=describe("Overlay subnet", "Its subnet.", kind="cidr")
    )
    overlay_mtu: int = field(
        default=1450, metadata=describe("Overlay MTU", "The data path MTU minus 50.")
    )
    overlay_encrypted: bool = field(
        default=True,
        metadata=describe("Encrypt the overlay",
                          "IPsec between nodes (needs ESP and GCM in the kernel)."),
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self, "swarm")
        self.swarm()  # the one-host answers' own checks (addresses, subnets, names, MTU)

    def swarm(self) -> SwarmAnswers:
        """These answers as the one-host step's, for its planner's functions."""
        return SwarmAnswers(
            enabled=True,
            advertise_address=self.advertise_address,
            data_path_address=self.data_path_address,
            gwbridge_subnet=self.gwbridge_subnet,
            gwbridge_icc=self.gwbridge_icc,
            gwbridge_masquerade=self.gwbridge_masquerade,
            overlay_name=self.overlay_name,
            overlay_subnet=self.overlay_subnet,
            overlay_mtu=self.overlay_mtu,
            overlay_encrypted=self.overlay and self.overlay_encrypted,  # no overlay: no ESP
        )


@dataclass(frozen=True)
class SwarmInfo:
    """``docker info``'s swarm part: which swarm a node is in, and under which managers."""

    state: str = ""
    manager: bool = False
    managers: tuple[str, ...] = ()
    """The addresses (without port) of the managers a node knows."""


def parse_swarm_info(code: int, out: str) -> SwarmInfo:
    try:
        data = json.loads(out or "null")
    except json.JSONDecodeError:
        return SwarmInfo()
    if not isinstance(data, dict):
        return SwarmInfo()
    remote = data.get("RemoteManagers") or []
    return SwarmInfo(
        state=str(data.get("LocalNodeState", "")),
        manager=bool(data.get("ControlAvailable", False)),
        managers=tuple(str(m.get("Addr", "")).rsplit(":", 1)[0] for m in remote
                       if isinstance(m, dict)),
    )  # fmt: skip


SWARM_INFO: Fact[SwarmInfo] = Fact(
    "swarm:info", "docker info --format '{{json .Swarm}}' 2>/dev/null", parse_swarm_info
)


def _parse_token(code: int, out: str) -> Secret | None:
    token = out.strip()
    return Secret(token) if code == 0 and TOKEN.fullmatch(token) else None


JOIN_TOKEN: Fact[Secret | None] = Fact(
    "swarm:worker-token", "docker swarm join-token -q worker 2>/dev/null", _parse_token
)
"""What stage 1 produces on the manager: the worker join token (a secret)."""


def _address(answers: SwarmAnswers, host: SwarmHost) -> tuple[str, str]:
    advertise = resolve(answers.advertise_address, host, "advertise_address")
    return advertise, resolve(answers.data_path_address or advertise, host, "data_path_address")


def _check_worker(answers: SwarmAnswers, facts: Facts, name: str) -> None:
    host = facts[SWARM_HOST]
    if not host.docker:
        raise PlanConflict(f"dockerd does not answer on {name}.", "Run the docker step first.")
    if host.rootless:
        raise PlanConflict(f"Docker runs rootless on {name}: swarm mode needs the rootful engine.",
                           "Set docker.mode to userns-remap or rootful.")  # fmt: skip
    daemon = facts[DAEMON]
    if daemon.exists and _live_restore(daemon.text):
        raise PlanConflict(
            f"live-restore is on in {name}'s daemon.json: dockerd refuses swarm mode with it.",
            "Turn it off with docker.live_restore=false.",
        )
    _check_subnets(answers, host)


class SwarmSiteStep:
    name = "swarm"
    title = "Docker swarm (manager and workers)"
    explanation = (
        "Makes one host a swarm manager and joins the others as workers: each gets a "
        "docker_gwbridge with your subnet first, then the manager inits the swarm and the "
        "workers join it with a token that is never shown or kept."
    )
    answers_type = SwarmSiteAnswers
    roles: tuple[str, ...] = (MANAGER, WORKER)
    stages = 2

    def facts(self, answers: SwarmSiteAnswers, role: str) -> list[Fact[Any]]:
        return [SWARM_HOST, SWARM_INFO, DAEMON]

    def produces(self, answers: SwarmSiteAnswers, stage: int, role: str) -> list[Fact[Any]]:
        return [JOIN_TOKEN] if stage == 1 and role == MANAGER else []

    def plan(self, answers: SwarmSiteAnswers, stage: int, site: SiteFacts) -> Mapping[str, Plan]:
        swarm = answers.swarm()
        manager = site.one(MANAGER)
        workers = [w for w in site.with_role(WORKER) if w.name != manager.name]
        if stage == 1:
            plans = {manager.name: self._manager(swarm, manager, answers.overlay)}
            for worker in workers:
                plans[worker.name] = self._worker_bridge(swarm, worker)
            return plans
        address, _ = _address(swarm, manager.facts[SWARM_HOST])
        token = site.produced(manager.name, JOIN_TOKEN)
        return {w.name: self._join(swarm, w, address, token) for w in workers}

    def needs(self, answers: SwarmSiteAnswers, site: SiteFacts) -> Mapping[str, tuple[Need, ...]]:
        """Each node needs the swarm ports from the other nodes' addresses (2377/tcp on the
        manager), 4789/udp and, for an encrypted overlay, ESP from their data path ones."""
        swarm = answers.swarm()
        manager = site.one(MANAGER)
        nodes = [manager, *(w for w in site.with_role(WORKER) if w.name != manager.name)]
        addresses = {node.name: _address(swarm, node.facts[SWARM_HOST]) for node in nodes}
        found: dict[str, tuple[Need, ...]] = {}
        for node in nodes:
            peers = [addresses[other.name] for other in nodes if other.name != node.name]
            control = tuple(dict.fromkeys(advertise for advertise, _ in peers))
            data = tuple(dict.fromkeys(path for _, path in peers))
            found[node.name] = node_needs(swarm, node is manager, control, data)
        return found

    def _manager(self, answers: SwarmAnswers, manager: HostFacts, overlay: bool) -> Plan:
        host = manager.facts[SWARM_HOST]
        check(answers, manager.facts, host)
        actions: list[Action] = [*_gwbridge_actions(answers, host), *_init_actions(answers, host)]
        if overlay:
            actions += _overlay_actions(answers, host)
        return Plan(self.name, tuple(actions))

    def _worker_bridge(self, answers: SwarmAnswers, worker: HostFacts) -> Plan:
        _check_worker(answers, worker.facts, worker.name)
        return Plan(self.name, tuple(_gwbridge_actions(answers, worker.facts[SWARM_HOST])))

    def _join(
        self, answers: SwarmAnswers, worker: HostFacts, manager: str, token: Secret | None
    ) -> Plan:
        info = worker.facts[SWARM_INFO]
        if info.state == "active" and not info.manager and manager in info.managers:
            return Plan(self.name)
        if info.state not in {"inactive", ""}:
            raise PlanConflict(
                f"{worker.name} is already in a swarm (state {info.state}) other than the one "
                f"{manager} manages.",
                f"Make it leave first (docker swarm leave on {worker.name}) and plan again.",
            )
        advertise, data = _address(answers, worker.facts[SWARM_HOST])
        return Plan(self.name, (join_action(token or PENDING_TOKEN, manager, advertise, data),))

    def health(
        self,
        transport: Transport,
        answers: SwarmSiteAnswers,
        stage: int,
        host: str,
        site: SiteFacts,
    ) -> list[str]:
        swarm = answers.swarm()
        found = gather(transport, [SWARM_HOST])[SWARM_HOST]
        manager = MANAGER in site.hosts[host].roles
        problems = []
        if stage == 1 and not gwbridge_matches(swarm, found.networks.get(GWBRIDGE)):
            problems.append(f"docker_gwbridge on {host} lacks the chosen subnet and options")
        if manager and (found.state != "active" or not found.manager):
            problems.append(f"{host} is not a swarm manager (state {found.state or 'unknown'})")
        if stage == 2 and found.state != "active":
            problems.append(f"{host} did not join the swarm (state {found.state or 'unknown'})")
        return problems


SWARM_SITE = SwarmSiteStep()
