"""What a site step provides: a step that plans for several hosts at once, in stages.

The contract (every NFS, proxy or swarm step follows it; see docs/architecture.md, "Sites"):

* ``roles``: the roles it plans for. A site without a host of one of them is refused before
  anything is read, unless the step names the ones it needs in an optional
  ``required_roles`` (a swarm of managers only has no worker).
* ``stages``: how many stages it has (1 for a plain multi-host step). Stage ``n`` of every
  site step is applied on every host, one transaction per host, hosts in parallel, before
  stage ``n + 1`` starts. Each host's single-host steps (its preset) go with stage 1.
* ``facts(answers, role)``: the facts to read from every host that has ``role`` (in the same
  round trip as that host's single-host facts).
* ``produces(answers, stage, role)``: facts that read what ``stage`` leaves on hosts with
  ``role`` (a join token, a certificate). They are read with the other facts for the preview,
  and read again on those hosts right after the stage's transaction. A value read in the
  preview only counts when the stage had nothing to change on that host; otherwise it is
  *pending* (:meth:`SiteFacts.produced` returns None) until the stage has applied. A secret
  value (a token) must be parsed into a :class:`wizard.secrets.Secret` and written with
  ``WriteFile(secret=True)`` / ``RunCommand(secrets=...)``: it is never shown or logged.
* ``plan(answers, stage, site)``: pure. Host name -> :class:`~wizard.plan.Plan` for the hosts
  this stage changes (hosts left out change nothing; each ``Plan.step`` is the step's
  ``name``, which is how its health check is found), from :class:`SiteFacts`: every host's
  facts (read from all of them: the same uids on server and clients, one host's address in
  another's rules) and the values earlier stages produced. A plan that reads a pending value
  is a *provisional* preview: it is planned again with the real value once the producing
  stage has applied, and the preview says so.
* ``health(transport, answers, stage, host, site)``: after a host's stage applied, problems
  found (empty when healthy). May talk to that host; a problem undoes that host's stage and
  puts back the whole site.

Optional (:class:`DeclaresSiteNeeds`): ``needs(answers, site)``, what each host needs its other
steps to let through (a swarm node's ports from its peers, nfs from the clients on the
server). They reach that host's stage-1 single-host plan like the needs its own steps declare
(:func:`wizard.session.plan_changeset`), so its firewall offers them.

A site step never imports another step, and no front end names one: they are found through
:data:`wizard.site.registry.SITE_STEPS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts
from wizard.plan import Plan
from wizard.steps.base import Need
from wizard.transport.base import Transport

A = TypeVar("A")
T = TypeVar("T")


@dataclass(frozen=True)
class HostFacts:
    """What was read from one host of the site."""

    name: str
    roles: tuple[str, ...]
    facts: Facts
    produced: Facts | None = None
    """Facts read after earlier stages applied on this host (None: none yet)."""
    fresh: frozenset[str] = frozenset()
    """Names of produced facts whose value is real (its stage changes nothing on this host,
    or it has applied); the others are pending."""


@dataclass
class SiteFacts:
    """Every host's facts, for one site step's plan of one stage."""

    hosts: Mapping[str, HostFacts]
    pending: list[str] = field(default_factory=list)
    """Produced values this plan asked for that are not known yet (makes it provisional)."""

    def with_role(self, role: str) -> list[HostFacts]:
        """The hosts that have ``role``, in the site's order."""
        return [host for host in self.hosts.values() if role in host.roles]

    def one(self, role: str) -> HostFacts:
        """The one host with ``role``; refused when there are none or several."""
        found = self.with_role(role)
        if len(found) != 1:
            names = ", ".join(host.name for host in found) or "none"
            raise PlanConflict(
                f"this step needs exactly one host with the role {role!r} (found: {names}).",
                f'Give exactly one host `roles = ["{role}"]` in the site file.',
            )
        return found[0]

    def produced(self, host: str, fact: Fact[T]) -> T | None:
        """What an earlier stage left on ``host`` (read by ``fact``), or None while that
        stage has still to apply (the plan is then a provisional preview)."""
        facts = self.hosts[host]
        if facts.produced is None or fact.name not in facts.fresh or fact not in facts.produced:
            self.pending.append(f"{fact.name} on {host}")
            return None
        return facts.produced[fact]


class SiteStep(Protocol, Generic[A]):
    """A step that plans for several hosts of a site at once (see the module docstring)."""

    name: str
    title: str
    explanation: str
    answers_type: type[A]
    roles: tuple[str, ...]
    stages: int

    def facts(self, answers: A, role: str) -> list[Fact[Any]]: ...

    def produces(self, answers: A, stage: int, role: str) -> list[Fact[Any]]: ...

    def plan(self, answers: A, stage: int, site: SiteFacts) -> Mapping[str, Plan]: ...

    def health(
        self, transport: Transport, answers: A, stage: int, host: str, site: SiteFacts
    ) -> list[str]: ...


@runtime_checkable
class DeclaresSiteNeeds(Protocol):
    """A site step whose hosts need something from their other steps (the firewall)."""

    def needs(self, answers: Any, site: SiteFacts) -> Mapping[str, tuple[Need, ...]]:
        """Host name -> what it needs, from every host's facts (hosts left out need nothing).
        Pure; raises :class:`~wizard.errors.PlanConflict` where its plan would."""
        ...
