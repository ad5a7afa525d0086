"""Step: a squid web proxy for the clients behind a router (issue #15, seed 000).

squid runs on the router itself (a host package): the router REDIRECTs the clients' web
traffic to squid's intercept port, squid logs it, caches it and refuses blocked domains. See
:mod:`wizard.steps.proxy.rules` for the packet rules and what the other placements (squid on
another host, in a container) will need.
"""

from __future__ import annotations

from typing import Any

from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts
from wizard.plan import Plan
from wizard.steps.base import Need, Status, StepStatus
from wizard.steps.proxy import rules
from wizard.steps.proxy.answers import ProxyAnswers
from wizard.steps.proxy.health import health_problems
from wizard.steps.proxy.plan import client_networks, facts_for, host_of, plan_proxy
from wizard.transport.base import Transport


class ProxyStep:
    name = "proxy"
    title = "Web proxy (squid)"
    explanation = (
        "Sends the web traffic (HTTP) of the clients behind this router through squid, on "
        "this host: every request is logged with the client's address, pages are cached, and "
        "blocked domains get squid's deny page. The clients need no setting (the router "
        "redirects their traffic). SSH, ping and everything else keep their normal path. "
        "HTTPS is not intercepted (that would need a certificate authority on every client)."
    )
    answers_type = ProxyAnswers

    def facts(self, answers: ProxyAnswers) -> list[Fact[Any]]:
        return facts_for(answers)

    def plan_facts(self, answers: ProxyAnswers) -> list[Fact[Any]]:
        """Off, the plan (and needs, health) reads nothing; the status and the form still
        read the host's rules and networks (through :meth:`facts`)."""
        return facts_for(answers) if answers.enabled else []

    def plan(self, answers: ProxyAnswers, facts: Facts) -> Plan:
        return plan_proxy(answers, facts)

    def needs(self, answers: ProxyAnswers, facts: Facts) -> tuple[Need, ...]:
        """The intercept port, from the client networks: their redirected web traffic comes
        in on it (direct connections are dropped before any zone sees them)."""
        if not answers.enabled:
            return ()
        try:
            host = host_of(answers, facts)
        except KeyError:
            return ()
        sources = client_networks(answers, host, 4) + client_networks(answers, host, 6)
        if not sources:
            return ()  # its plan says why
        why = "the proxy step's squid takes the clients' redirected web traffic on it"
        port = f"{answers.intercept_port}/tcp"
        return (Need(port, sources, why, untrusted_ok=True, own_accept=True),)

    def health(self, transport: Transport, answers: ProxyAnswers, facts: Facts) -> list[str]:
        return health_problems(transport, answers)

    def status(self, answers: ProxyAnswers, facts: Facts) -> StepStatus:
        try:
            host = host_of(answers, facts)
        except KeyError:  # facts read for another log folder: not read for these answers
            return StepStatus(Status.UNKNOWN, "not read yet for these answers")
        loaded = rules.loaded(host.rules_v4)
        if not answers.enabled:
            if loaded:
                return StepStatus(Status.DONE, "proxy rules loaded (step off: left as they are)")
            return StepStatus(Status.OFF, "not chosen: no web proxy")
        try:
            plan = self.plan(answers, facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        if plan.empty:
            return StepStatus(Status.DONE, "squid takes the clients' web traffic")
        if not loaded:
            return StepStatus(Status.NOT_DONE, "no web proxy")
        return StepStatus(Status.DRIFTED, f"{len(plan.actions)} change(s) from the chosen proxy")

    def question_context(self, answers: ProxyAnswers, facts: Facts) -> dict[str, str]:
        host = host_of(answers, facts)
        listed = "; ".join(
            f"{name} {', '.join(nets) or 'no address'}" for name, nets in host.networks.items()
        )
        return {"client_interfaces": f"This host has: {listed or 'none found'}."}


PROXY = ProxyStep()

__all__ = ["PROXY", "ProxyAnswers", "ProxyStep"]
