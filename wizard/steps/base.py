"""What every step provides. Adding a step means one module implementing :class:`Step`.

The flow, the transaction and the front ends only ever talk to this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from snapshots.store import LIST_SCRIPT, applied_steps, parse_listing
from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts
from wizard.local import LocalContext, LocalReport, Prepared
from wizard.plan import Plan
from wizard.transport.base import Transport

A = TypeVar("A")


class Status(Enum):
    NOT_DONE = "not done"
    OFF = "off"
    """The step is not chosen (its answers say ``enabled = false``): nothing is left to do."""
    DONE = "done"
    DRIFTED = "drifted"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StepStatus:
    status: Status
    summary: str


def _parse_applied(code: int, out: str) -> frozenset[str]:
    return applied_steps(parse_listing(out))


APPLIED_STEPS = Fact("hostwiz_applied_steps", LIST_SCRIPT, _parse_applied)
"""The steps hostwiz applied on the host (a confirmed snapshot no rollback put back since):
read with every step's facts, so that a status can tell drift from never applied."""


def status_from_plan(
    plan: Callable[[], Plan], *, done: str, untouched: str | None = None, chosen: str = "settings"
) -> StepStatus:
    """The usual status ladder, derived from the step's own plan: a plan that cannot be made
    is "unknown" (its message), an empty plan is "done" (``done``), a host that shows none of
    the step's work is "not done" (``untouched``, when the caller found it so), and anything
    else has "drifted" by the plan's number of changes from the chosen ``chosen``."""
    try:
        planned = plan()
    except PlanConflict as error:
        return StepStatus(Status.UNKNOWN, error.message)
    if planned.empty:
        return StepStatus(Status.DONE, done)
    if untouched is not None:
        return StepStatus(Status.NOT_DONE, untouched)
    return StepStatus(Status.DRIFTED, f"{len(planned.actions)} change(s) from the chosen {chosen}")


def settled_status(name: str, status: StepStatus, facts: Facts) -> StepStatus:
    """A step's status, where "drifted" needs hostwiz to have applied the step: differences
    from the answers on a host where it never was (or was rolled back) are "not done"."""
    if status.status is not Status.DRIFTED or APPLIED_STEPS not in facts:
        return status
    if name in facts[APPLIED_STEPS]:
        return status
    return StepStatus(Status.NOT_DONE, f"never applied by hostwiz: {status.summary}")


class Step(Protocol, Generic[A]):
    """A topic of hardening: its questions, the facts it reads, and its pure planner.

    ``A`` is ``answers_type``: the questions, from a preset, ``--set`` or a form, and what
    :meth:`plan`, :meth:`health` and :meth:`status` take. A ``prepare`` hook
    (:class:`PreparesLocally`) returns answers of that same type: a subclass may carry what
    it made on this machine (the TLS step's ``PreparedTls`` is a ``DockerTlsAnswers`` with its
    certificates), never a different type, so ``Step[A]`` holds for prepared answers too.
    """

    name: str
    """Short key used in presets (``[docker]``) and on the command line (``--set docker.x=y``)."""
    title: str
    explanation: str
    """Plain words: what the step does, why it matters, what breaks if it is skipped."""
    answers_type: type[A]

    def facts(self, answers: A) -> list[Fact[Any]]:
        """Every fact :meth:`plan` and :meth:`status` read (gathered in one round trip)."""
        ...

    def plan(self, answers: A, facts: Facts) -> Plan:
        """Pure: the actions that bring the host to ``answers``; empty when already there."""
        ...

    def health(self, transport: Transport, answers: A, facts: Facts) -> list[str]:
        """After apply: problems found (empty when healthy). May talk to the host."""
        ...

    def status(self, answers: A, facts: Facts) -> StepStatus:
        """Where the host stands for this step, for the wizard's step list."""
        ...


# ---- hooks a step may add (the session runs them; front ends never name a step) -----------


@runtime_checkable
class PreparesLocally(Protocol):
    """A step with local work before planning (see :mod:`wizard.local`): opening or creating
    something on the admin's machine, asking for a secret through ``local.ask``."""

    def prepare(self, answers: Any, facts: Facts, local: LocalContext) -> Prepared:
        """The answers to plan with, of the step's answers type (a subclass of it may carry
        what was made), and folders created.
        Raises a :class:`~wizard.errors.HostwizError` when it cannot (nothing planned then)."""
        ...


@runtime_checkable
class FinishesLocally(Protocol):
    """A step with local work after a confirmed apply (or when the host needed nothing)."""

    def after_confirmed(self, answers: Any) -> LocalReport:
        """Set up the local side for the prepared ``answers``; lines to show. A failure is
        reported (``ok`` False), not raised: the change on the host stays."""
        ...


@runtime_checkable
class NotesAfterRollback(Protocol):
    """A step whose local side outlives a rollback of the host (a docker context, a client
    bundle): after a snapshot that included the step is rolled back, what stays on this
    machine and what to do about it."""

    def after_rolled_back(self, answers: Any, host: str) -> list[str]:
        """Lines to show (empty when nothing local is left); ``host`` is the host's name for
        local files. Reads this machine only; never raises."""
        ...


@runtime_checkable
class PlansWithFewerFacts(Protocol):
    """A step whose plan reads less than :meth:`Step.facts` (which also serves its status and
    its form's context): a step that is off plans nothing, yet the step list still shows what
    an earlier apply left on the host. ``hostwiz plan`` and ``apply`` read only these, so a
    preset that lists a step as off does not pay for its facts on every run."""

    def plan_facts(self, answers: Any) -> list[Fact[Any]]:
        """The facts :meth:`Step.plan` (and ``needs``, ``prepare``, ``health``) read with
        ``answers``: a subset of ``facts(answers)``."""
        ...


@runtime_checkable
class AddsLocalStatus(Protocol):
    """A step whose status also depends on this machine (a client certificate's days)."""

    def local_status(self, answers: Any, status: StepStatus, facts: Facts, host: str) -> StepStatus:
        """``status`` (the host's side, settled) with what this machine adds."""
        ...


# ---- what a step exposes to others, and what it needs from them (#12) --------------------


@dataclass(frozen=True)
class Need:
    """Something a step needs from the host's other steps: a service that must be reachable.

    The firewall offers it (:class:`GuardsNeeds`); the step that needs it never names the
    firewall, and the firewall never reads the needing step's files."""

    service: str
    """An entry the firewall's service lists understand: ``nfs``, ``swarm``, ``docker-tls``,
    ``ssh``, ``esp``, or a port (``2377/tcp``, ``7946`` for tcp and udp)."""
    sources: tuple[str, ...] = ()
    """Networks or addresses that must reach it. Empty: whoever the admin chose (the zone
    their own SSH connection comes in through, unless a zone offers it already)."""
    why: str = ""
    """Plain words naming the step and its reason: "the shares step exports /srv/nfs to them"."""
    untrusted_ok: bool = False
    """May hostwiz offer it to an untrusted zone (wan) on its own? False for what must never
    face the internet (nfs, the Docker API, VXLAN's 4789/udp): then it refuses instead."""
    own_accept: bool = False
    """The step lets this traffic in itself, ahead of the zones (the proxy's own chain for
    redirected web traffic): zones loaded earlier cannot block it, so the firewall's "off"
    check leaves it alone (with the firewall on, its zones offer it all the same)."""


def _no_needs(code: int, out: str) -> tuple[Need, ...]:
    return ()


DECLARED_NEEDS: Fact[tuple[Need, ...]] = Fact("hostwiz_declared_needs", "true", _no_needs)
"""Not read from the host: the session puts the needs of every selected step (and, on a site,
of the site steps) into the facts it plans with (:meth:`~wizard.facts.Facts.with_values`), so
the step that meets them finds them without naming any step."""


def declared_needs(facts: Facts) -> tuple[Need, ...]:
    """The needs the session collected (none when it collected none)."""
    if DECLARED_NEEDS not in facts:
        return ()
    return facts[DECLARED_NEEDS]


@runtime_checkable
class DeclaresNeeds(Protocol):
    """A step that exposes something other steps must let through (a port, a service)."""

    def needs(self, answers: Any, facts: Facts) -> tuple[Need, ...]:
        """What it needs with these answers (none while it is off). Pure; returns () when the
        facts do not tell (its own plan then says why)."""
        ...


@runtime_checkable
class GuardsNeeds(Protocol):
    """A step that meets the needs of the others (the firewall): its ``plan`` reads them with
    :func:`declared_needs`. When it is not selected, the session still plans it with
    :meth:`off_answers` whenever a selected step declares needs: what it left on the host
    earlier (zones loaded by a former apply) must let them through, or the plan is refused."""

    def off_answers(self) -> Any:
        """The answers of its "off" form (changes nothing, checks what is loaded)."""
        ...


def question_context(step: Step[Any], answers: Any, facts: Facts) -> dict[str, str]:
    """What the host says about some of a step's questions (field name -> a line to show
    next to it), e.g. the host's interfaces next to "LAN interfaces". Steps that want this
    define ``question_context(answers, facts)``; the others have none."""
    context = getattr(step, "question_context", None)
    if context is None:
        return {}
    try:
        result: dict[str, str] = context(answers, facts)
    except (KeyError, ValueError):
        return {}  # facts of another selection: nothing to say
    return result
