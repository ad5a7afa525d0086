"""Step: Docker swarm mode on one host, as a manager (issue #16, seed 000).

A custom docker_gwbridge before ``docker swarm init`` (subnet, icc, masquerade, host binding
address), the init with advertise and data path addresses from the host's real interfaces, an
overlay network (encrypted by default, refused where the kernel cannot carry it) and an
optional demo stack. Joining other hosts (the token as a :class:`wizard.secrets.Secret`) is a
site change: :mod:`wizard.steps.swarm.site`.
"""

from __future__ import annotations

from typing import Any

from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts
from wizard.plan import Plan
from wizard.steps.base import Need, Status, StepStatus
from wizard.steps.swarm.answers import SwarmAnswers
from wizard.steps.swarm.health import health_problems
from wizard.steps.swarm.needs import network_of, node_needs
from wizard.steps.swarm.plan import facts_for, host_of, plan_swarm, resolve
from wizard.transport.base import Transport


class SwarmStep:
    name = "swarm"
    title = "Docker swarm"
    explanation = (
        "Makes this host a Docker swarm manager, the seed's way: first a docker_gwbridge with "
        "your subnet, no traffic between containers over it and no masquerading, then docker "
        "swarm init on the address you choose, an overlay network (encrypted when the kernel "
        "can carry it) and, if you want, a small demo stack. With the firewall step on, its zones "
        "offer 2377/tcp, 7946/tcp+udp and 4789/udp (and ESP) to the nodes' network only."
    )
    answers_type = SwarmAnswers

    def facts(self, answers: SwarmAnswers) -> list[Fact[Any]]:
        return facts_for(answers)

    def plan(self, answers: SwarmAnswers, facts: Facts) -> Plan:
        return plan_swarm(answers, facts)

    def needs(self, answers: SwarmAnswers, facts: Facts) -> tuple[Need, ...]:
        """A lone manager: the swarm ports from the network it advertises on (the nodes that
        join later), 4789/udp and ESP from its data path network. A site's swarm step gives
        each node its peers' addresses instead."""
        if not answers.enabled:
            return ()
        try:
            host = host_of(facts)
            advertise = resolve(answers.advertise_address, host, "advertise_address")
            data = resolve(answers.data_path_address or advertise, host, "data_path_address")
        except (KeyError, PlanConflict):
            return ()  # its plan says why
        control, path = network_of(host, advertise), network_of(host, data)
        return node_needs(answers, True, (control,) if control else (), (path,) if path else ())

    def health(self, transport: Transport, answers: SwarmAnswers, facts: Facts) -> list[str]:
        return health_problems(transport, answers)

    def status(self, answers: SwarmAnswers, facts: Facts) -> StepStatus:
        if not answers.enabled:
            return StepStatus(Status.OFF, "not chosen: hostwiz sets up no swarm")
        try:
            host = host_of(facts)
        except KeyError:
            return StepStatus(Status.UNKNOWN, "not read yet for these answers")
        try:
            plan = self.plan(answers, facts)
        except (PlanConflict, KeyError) as error:
            return StepStatus(Status.UNKNOWN, getattr(error, "message", str(error)))
        if plan.empty:
            return StepStatus(Status.DONE, "swarm manager with the chosen networks")
        if host.state != "active":
            return StepStatus(Status.NOT_DONE, "not in a swarm")
        return StepStatus(Status.DRIFTED, f"{len(plan.actions)} change(s) from the chosen swarm")

    def question_context(self, answers: SwarmAnswers, facts: Facts) -> dict[str, str]:
        host = host_of(facts)
        listed = "; ".join(f"{n} {', '.join(a)}" for n, a in host.interfaces.items() if a)
        kernel = host.kernel
        return {
            "advertise_address": f"This host has: {listed or 'none found'}.",
            "overlay_encrypted": f"Kernel: ESP {kernel.esp}, AES-GCM {kernel.gcm}.",
            "endpoint_mode": f"Kernel IPVS: {kernel.ipvs}.",
        }


SWARM = SwarmStep()

__all__ = ["SWARM", "SwarmAnswers", "SwarmStep"]
