"""Site step: a swarm of several hosts (issue #16): managers, the workers that join them, and
a demo stack spread over the nodes.

Stage 1, at the same time on every host: a custom docker_gwbridge (the chosen subnet and
options, made before the host is in any swarm, or Docker makes a default one), then on the
first host with the role ``swarm-manager`` (the site file's order) ``docker swarm init`` (and,
if asked, an overlay network): the single-host planner's own functions. That stage produces the
join tokens, read with ``docker swarm join-token -q worker|manager`` as
:class:`wizard.secrets.Secret` values: never shown, logged or kept.
Stage 2, on each other host: ``docker swarm join`` with the worker token (role
``swarm-worker``) or the manager token (further ``swarm-manager`` hosts), advertising the
host's own address (the interface or address the answers name, resolved on that host). A host
already in that swarm with its role plans nothing; one there with the other role is promoted
(``docker node promote``) or demoted by the first manager, in its stage-2 change, undone by the
inverse command, and its health check waits until the swarm holds the node in its new role.
Stage 3, on the first manager once every node has joined: the demo stack (``stack = true``),
deployed without resolving images in a registry (they must exist on every node), published in
host mode with DNS round robin where the kernel has no IPVS. Its health check wants tasks
running on several nodes, each answering on the published port.

Rollback (the site's, newest stage first): the stack goes, the other nodes leave (a manager
demotes itself first, so the managers left keep their quorum), then every host's stage 1 is
undone (the first manager leaves, every custom docker_gwbridge goes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.actions import Action, RunCommand, WriteFile
from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Fact, Facts, file_fact, gather
from wizard.plan import Plan
from wizard.secrets import Secret
from wizard.site.answers import one_host_answers
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.base import Need
from wizard.steps.swarm.answers import SwarmAnswers
from wizard.steps.swarm.facts import SWARM_HOST, SwarmHost
from wizard.steps.swarm.health import ask_script, spread_script, tasks_script
from wizard.steps.swarm.join import TOKEN, join_action
from wizard.steps.swarm.needs import node_needs
from wizard.steps.swarm.plan import (
    DAEMON,
    GWBRIDGE,
    check,
    check_subnets,
    gwbridge_actions,
    gwbridge_matches,
    init_actions,
    live_restore_on,
    needs_ipvs,
    overlay_actions,
    resolve,
    stack_actions,
    stack_facts,
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
    stack: bool = field(
        default=False,
        metadata=describe("Demo stack", "Deploy a small stack over the nodes once they joined "
                          "(needs the overlay), to see the swarm work."),
    )  # fmt: skip
    stack_name: str = field(default="demo", metadata=describe("Stack name", "docker stack name."))
    stack_image: str = field(
        default="",
        metadata=describe("Stack image", "An image that already exists on every host, e.g. "
                          "nginx:alpine (hostwiz pulls nothing; each node's dockerd tries a "
                          "pull before a task and uses its own copy when that fails)."),
    )  # fmt: skip
    stack_command: str = field(
        default="",
        metadata=describe("Stack command", "The command of the service. Empty: the image's."),
    )
    endpoint_mode: Literal["vip", "dnsrr"] = field(
        default="dnsrr",
        metadata=describe("Service endpoint mode", "dnsrr works without IPVS; vip needs it."),
    )
    publish_mode: Literal["ingress", "host"] = field(
        default="host",
        metadata=describe("Publish mode", "host: one task per node, each on its own port "
                          "(works without IPVS); ingress: the routing mesh (needs IPVS)."),
    )  # fmt: skip
    stack_replicas: int = field(
        default=2, metadata=describe("Replicas", "Tasks of the service (publish mode ingress).")
    )
    stack_port: int = field(
        default=8080, metadata=describe("Published port", "The port it answers on.", kind="port")
    )
    stack_target_port: int = field(
        default=80,
        metadata=describe("Container port", "The port it listens on inside.", kind="port"),
    )

    def __post_init__(self) -> None:
        check_fields(self, "swarm")
        self.swarm()  # the one-host answers' own checks (addresses, subnets, names, MTU, stack)
        if self.stack and not self.overlay:
            raise InvalidAnswer(
                "swarm.stack is on but swarm.overlay is off: the demo stack runs on the overlay.",
                "Add overlay = true to [steps.swarm].",
            )

    def swarm(self) -> SwarmAnswers:
        """These answers as the one-host step's, for its planner's functions."""
        encrypted = self.overlay and self.overlay_encrypted  # no overlay: no ESP needed
        return one_host_answers(SwarmAnswers, self, enabled=True, overlay_encrypted=encrypted)


@dataclass(frozen=True)
class SwarmInfo:
    """``docker info``'s swarm part: which swarm a node is in, and under which managers."""

    state: str = ""
    manager: bool = False
    managers: tuple[str, ...] = ()
    """The addresses (without port) of the managers a node knows."""
    node_id: str = ""
    """The node's ID in its swarm ("" when none, or not an ID)."""


def parse_swarm_info(code: int, out: str) -> SwarmInfo:
    try:
        data = json.loads(out or "null")
    except json.JSONDecodeError:
        return SwarmInfo()
    if not isinstance(data, dict):
        return SwarmInfo()
    remote = data.get("RemoteManagers") or []
    node_id = str(data.get("NodeID", ""))
    return SwarmInfo(
        state=str(data.get("LocalNodeState", "")),
        manager=bool(data.get("ControlAvailable", False)),
        managers=tuple(str(m.get("Addr", "")).rsplit(":", 1)[0] for m in remote
                       if isinstance(m, dict)),
        node_id=node_id if NODE_ID.fullmatch(node_id) else "",
    )  # fmt: skip


NODE_ID = re.compile(r"[a-z0-9]{25}")

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
MANAGER_TOKEN: Fact[Secret | None] = Fact(
    "swarm:manager-token", "docker swarm join-token -q manager 2>/dev/null", _parse_token
)
"""What stage 1 also produces on the manager: the manager join token (a secret), for the
other hosts with the role ``swarm-manager``."""


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
    if daemon.exists and live_restore_on(daemon.text):
        raise PlanConflict(
            f"live-restore is on in {name}'s daemon.json: dockerd refuses swarm mode with it.",
            "Turn it off with docker.live_restore=false.",
        )
    check_subnets(answers, host)
    check_stack_node(answers, host, name)


def check_stack_node(answers: SwarmAnswers, host: SwarmHost, name: str) -> None:
    """A node the demo stack may run on: the image is there (hostwiz pulls nothing), and the
    kernel has IPVS when the stack needs it."""
    if not answers.stack:
        return
    if answers.stack_image not in host.images:
        raise PlanConflict(
            f"the image {answers.stack_image} is not on {name}: its tasks would try to pull it.",
            f"Load it on every node (docker load / docker import), or name one {name} has: "
            f"{', '.join(host.images) or 'none'}.",
        )
    if host.kernel.ipvs == "no" and needs_ipvs(answers):
        raise PlanConflict(
            f"{name}'s kernel has no IPVS: service VIPs and the ingress routing mesh do not work.",
            'Use DNS round robin and host-mode publishing: endpoint_mode = "dnsrr" and '
            'publish_mode = "host" in [steps.swarm] (the defaults).',
        )


def first_manager(site: SiteFacts) -> HostFacts:
    """The host that inits the swarm: the first with the role ``swarm-manager``."""
    managers = site.with_role(MANAGER)
    if not managers:
        raise PlanConflict(
            f"the swarm step needs a host with the role {MANAGER!r}.",
            f'Give one host `roles = ["{MANAGER}"]` in the site file.',
        )
    return managers[0]


def joining(site: SiteFacts) -> list[tuple[HostFacts, Literal["worker", "manager"]]]:
    """Every other node of the swarm, with the role it joins as (managers first)."""
    leader = first_manager(site).name
    found: list[tuple[HostFacts, Literal["worker", "manager"]]] = [
        (host, "manager") for host in site.with_role(MANAGER) if host.name != leader
    ]
    found += [(host, "worker") for host in site.with_role(WORKER) if MANAGER not in host.roles]
    return found


class SwarmSiteStep:
    name = "swarm"
    title = "Docker swarm (managers and workers)"
    explanation = (
        "Makes one host a swarm manager and joins the others as managers or workers: each gets "
        "a docker_gwbridge with your subnet first, then the first manager inits the swarm and "
        "the others join it with a token that is never shown or kept. Optionally a demo stack "
        "then runs on every node."
    )
    answers_type = SwarmSiteAnswers
    roles: tuple[str, ...] = (MANAGER, WORKER)
    required_roles: tuple[str, ...] = (MANAGER,)
    """A swarm of managers only needs no worker."""
    stages = 3

    def facts(self, answers: SwarmSiteAnswers, role: str) -> list[Fact[Any]]:
        found: list[Fact[Any]] = [SWARM_HOST, SWARM_INFO, DAEMON]
        if role == MANAGER:
            found += stack_facts(answers.swarm())
        return found

    def produces(self, answers: SwarmSiteAnswers, stage: int, role: str) -> list[Fact[Any]]:
        return [JOIN_TOKEN, MANAGER_TOKEN] if stage == 1 and role == MANAGER else []

    def plan(self, answers: SwarmSiteAnswers, stage: int, site: SiteFacts) -> Mapping[str, Plan]:
        swarm = answers.swarm()
        manager = first_manager(site)
        others = joining(site)
        if stage == 1:
            plans = {manager.name: self._manager(swarm, manager, answers.overlay)}
            for other, _ in others:
                plans[other.name] = self._node_bridge(swarm, other)
            return plans
        if stage == 3:
            return {manager.name: self._stack(swarm, manager)} if swarm.stack else {}
        address, _ = _address(swarm, manager.facts[SWARM_HOST])
        tokens = {"worker": JOIN_TOKEN, "manager": MANAGER_TOKEN}
        plans = {
            other.name: self._join(swarm, other, address, site.produced(manager.name,
                                                                        tokens[role]), role)
            for other, role in others
        }  # fmt: skip
        changes = [role_action(other, address, role) for other, role in others]
        if any(changes):
            plans[manager.name] = Plan(self.name, tuple(c for c in changes if c))
        return plans

    def needs(self, answers: SwarmSiteAnswers, site: SiteFacts) -> Mapping[str, tuple[Need, ...]]:
        """Each node needs the swarm ports from the other nodes' addresses (2377/tcp on every
        manager: workers and the other managers reach it there), 4789/udp and, for an
        encrypted overlay, ESP from their data path ones."""
        swarm = answers.swarm()
        managers = site.with_role(MANAGER)
        names = {manager.name for manager in managers}
        nodes = [*managers, *(w for w in site.with_role(WORKER) if w.name not in names)]
        addresses = {node.name: _address(swarm, node.facts[SWARM_HOST]) for node in nodes}
        found: dict[str, tuple[Need, ...]] = {}
        for node in nodes:
            peers = [addresses[other.name] for other in nodes if other.name != node.name]
            control = tuple(dict.fromkeys(advertise for advertise, _ in peers))
            data = tuple(dict.fromkeys(path for _, path in peers))
            found[node.name] = node_needs(swarm, node.name in names, control, data)
        return found

    def _manager(self, answers: SwarmAnswers, manager: HostFacts, overlay: bool) -> Plan:
        host = manager.facts[SWARM_HOST]
        check(answers, manager.facts, host)
        actions: list[Action] = [*gwbridge_actions(answers, host), *init_actions(answers, host)]
        if overlay:
            actions += overlay_actions(answers, host)
        return Plan(self.name, tuple(actions))

    def _node_bridge(self, answers: SwarmAnswers, node: HostFacts) -> Plan:
        _check_worker(answers, node.facts, node.name)
        return Plan(self.name, tuple(gwbridge_actions(answers, node.facts[SWARM_HOST])))

    def _join(
        self,
        answers: SwarmAnswers,
        node: HostFacts,
        manager: str,
        token: Secret | None,
        role: Literal["worker", "manager"] = "worker",
    ) -> Plan:
        info = node.facts[SWARM_INFO]
        if info.state == "active" and manager in info.managers:
            return Plan(self.name)  # in this swarm: a change of role is the first manager's
        if info.state not in {"inactive", ""}:
            raise PlanConflict(
                f"{node.name} is already in a swarm (state {info.state}) other than the one "
                f"{manager} manages.",
                f"Make it leave first (docker swarm leave on {node.name}) and plan again.",
            )
        advertise, data = _address(answers, node.facts[SWARM_HOST])
        join = join_action(token or PENDING_TOKEN, manager, advertise, data, role)
        return Plan(self.name, (join,))

    def _stack(self, answers: SwarmAnswers, manager: HostFacts) -> Plan:
        actions = stack_actions(answers, manager.facts, manager.facts[SWARM_HOST])
        before = tuple(manager.facts[file_fact(a.path)] for a in actions
                       if isinstance(a, WriteFile))  # fmt: skip
        return Plan(self.name, tuple(actions), before=before)

    def health(
        self,
        transport: Transport,
        answers: SwarmSiteAnswers,
        stage: int,
        host: str,
        site: SiteFacts,
    ) -> list[str]:
        swarm = answers.swarm()
        if stage == 3:
            return stack_problems(transport, swarm, site)
        found = gather(transport, [SWARM_HOST])[SWARM_HOST]
        leader = host == first_manager(site).name
        problems = []
        if stage == 1 and not gwbridge_matches(swarm, found.networks.get(GWBRIDGE)):
            problems.append(f"docker_gwbridge on {host} lacks the chosen subnet and options")
        if leader and (found.state != "active" or not found.manager):
            problems.append(f"{host} is not a swarm manager (state {found.state or 'unknown'})")
        if stage == 2 and found.state != "active":
            problems.append(f"{host} did not join the swarm (state {found.state or 'unknown'})")
        elif stage == 2 and MANAGER in site.hosts[host].roles and not self._ready(transport):
            problems.append(f"{host} joined but is not a reachable manager")
        if stage == 2 and leader:
            problems += role_problems(transport, swarm, site)
        return problems

    @staticmethod
    def _ready(transport: Transport) -> bool:
        return transport.run(MANAGER_READY, timeout=60).ok


MANAGER_ROLE = "manager"


def role_change(
    node: HostFacts, manager: str, role: Literal["worker", "manager"]
) -> Literal["promote", "demote", ""]:
    """How the first manager changes the role of ``node``, a node of its swarm ("" : no
    change, or not in that swarm: it joins with its role)."""
    info = node.facts[SWARM_INFO]
    member = info.state == "active" and manager in info.managers
    if not member or info.manager == (role == MANAGER_ROLE):
        return ""
    if not info.node_id:
        raise PlanConflict(
            f"{node.name} is in this swarm but docker info does not give its node ID.",
            f"Check dockerd on {node.name} (docker info) and plan again.",
        )
    return "demote" if info.manager else "promote"


def role_action(
    node: HostFacts, manager: str, role: Literal["worker", "manager"]
) -> RunCommand | None:
    """On the first manager: ``docker node promote`` a worker the site makes a manager
    (``demote`` the other way), undone by the inverse."""
    change = role_change(node, manager, role)
    if not change:
        return None
    node_id = node.facts[SWARM_INFO].node_id
    back = "demote" if change == "promote" else "promote"
    now, before = ("a manager", "a worker") if change == "promote" else ("a worker", "a manager")
    back_role: Literal["worker", "manager"] = "worker" if role == MANAGER_ROLE else "manager"
    return RunCommand(
        settled_command(change, node_id, role),
        why=f"make {node.name} {now} of this swarm (it is {before}; the site gives it the role "
        f"swarm-{role})",
        undo=settled_command(back, node_id, back_role),
        undo_why=f"make {node.name} {before} again",
        timeout=120,
    )


def settled_command(change: str, node_id: str, role: Literal["worker", "manager"]) -> str:
    """``docker node promote|demote``, then wait (bounded) until the swarm holds the node in
    its new role. The command returns before the node has joined or left the managers'
    consensus; a promote sent while a demote is still under way (a rollback, then the same
    change again) can leave the node a manager by name that never becomes reachable."""
    return f"docker node {change} {node_id} >/dev/null && ( {role_script(node_id, role)} ) 1>&2"


def role_script(node_id: str, role: Literal["worker", "manager"]) -> str:
    """Bounded (60 s): succeeds once the swarm holds ``node_id`` in ``role``: a promoted
    manager reachable in the managers' consensus, a demoted worker out of it (no manager
    status left)."""
    want = '"manager reachable"' if role == MANAGER_ROLE else 'worker|"worker "'
    return (
        f"for i in $(seq 120); do r=$(docker node inspect {node_id} --format '{{{{.Spec.Role}}}} "
        "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}' 2>/dev/null)\n"
        f'  case "$r" in {want}) exit 0 ;; esac; sleep 0.5\ndone\necho "$r"; exit 1'
    )


def role_problems(transport: Transport, answers: SwarmAnswers, site: SiteFacts) -> list[str]:
    """Run on the first manager after stage 2: every node whose role it changed has it."""
    address, _ = _address(answers, first_manager(site).facts[SWARM_HOST])
    problems = []
    for node, role in joining(site):
        if role_change(node, address, role):
            node_id = node.facts[SWARM_INFO].node_id
            now = transport.run(role_script(node_id, role), timeout=90)
            if not now.ok:
                problems.append(f"{node.name} is not a {role} of the swarm after docker node "
                                f"{'promote' if role == MANAGER_ROLE else 'demote'} "
                                f"({now.out.strip() or 'unknown'})")  # fmt: skip
    return problems


MANAGER_READY = (
    "for i in $(seq 60); do [ \"$(docker info --format '{{.Swarm.ControlAvailable}}' "
    '2>/dev/null)" = true ] && exit 0; sleep 0.5; done; exit 1'
)
"""Bounded: a joined manager takes a moment to take part in the managers' consensus."""


def stack_problems(transport: Transport, answers: SwarmAnswers, site: SiteFacts) -> list[str]:
    """Run on the first manager: the stack's tasks run, on several nodes, and every node
    answers on the published port (its own task in host mode, the routing mesh otherwise)."""
    tasks = transport.run(tasks_script(answers.stack_name), timeout=60)
    if not tasks.ok:
        return [f"the stack's tasks do not all run ({tasks.out.strip() or 'none'})"]
    nodes = [first_manager(site), *(node for node, _ in joining(site))]
    spread = transport.run(spread_script(answers.stack_name), timeout=30)
    running = set(spread.out.split())
    wanted = len(nodes) if answers.publish_mode == "host" else min(2, answers.stack_replicas)
    problems = []
    if len(running) < min(wanted, len(nodes)):
        problems.append(f"the stack's tasks run on {len(running)} node(s) "
                        f"({', '.join(sorted(running)) or 'none'}), not {wanted}")  # fmt: skip
    for node in nodes:
        address, _ = _address(answers, node.facts[SWARM_HOST])
        if not transport.run(ask_script(address, answers.stack_port), timeout=60).ok:
            problems.append(f"nothing answers on {node.name}'s {address}:{answers.stack_port}")
    return problems


SWARM_SITE = SwarmSiteStep()
