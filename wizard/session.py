"""The one way through, used by every front end: facts -> plans -> preview -> apply.

Front ends collect answers and show results; everything between lives here, so the Textual
wizard, the plain prompts and the scripted CLI behave identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wizard.actions import FileState, RunCommand, WriteFile
from wizard.errors import HostChanged
from wizard.facts import Fact, Facts, gather
from wizard.local import LocalContext, LocalReport, client_host
from wizard.plan import Changeset, Plan
from wizard.steps import STEPS
from wizard.steps.base import (
    APPLIED_STEPS,
    DECLARED_NEEDS,
    AddsLocalStatus,
    DeclaresNeeds,
    FinishesLocally,
    GuardsNeeds,
    Need,
    NotesAfterRollback,
    PlansWithFewerFacts,
    PreparesLocally,
    Step,
    StepStatus,
    settled_status,
)
from wizard.transaction import ApplyResult, HealthCheck, Progress, apply_changeset
from wizard.transport.base import Transport


@dataclass(frozen=True)
class Selection:
    """One step the admin wants, with their answers for it."""

    step: Step[Any]
    answers: Any


def in_step_order(selections: Iterable[Selection]) -> list[Selection]:
    """The selections in the registry's order (:data:`wizard.steps.STEPS`), whatever order a
    preset, ``--set`` or a front end gave them in.

    Later steps build on earlier ones: the firewall opens the port the SSH step moves to, the
    TLS step merges into the engine step's daemon.json. So hostwiz decides the order, never the
    preset. The sort is stable; steps the registry does not know (tests) keep their order, last.
    """
    rank = {name: index for index, name in enumerate(STEPS)}
    return sorted(selections, key=lambda selection: rank.get(selection.step.name, len(rank)))


def selections_for(answers: Mapping[str, Any]) -> list[Selection]:
    """One selection per step named in ``answers`` (step name -> answers), in step order."""
    return in_step_order(Selection(STEPS[name], value) for name, value in answers.items())


def _declares_needs(selections: Sequence[Selection]) -> bool:
    return any(isinstance(selection.step, DeclaresNeeds) for selection in selections)


def needs_guards(selections: Sequence[Selection], *, needs: bool = False) -> list[Selection]:
    """The steps that meet other steps' needs (:class:`~wizard.steps.base.GuardsNeeds`) and
    are not selected, in their "off" form: planned only to check that what they left on the
    host earlier lets the needs through (zones an earlier apply loaded must let SSH in on the
    port the SSH step moves it to). None when no selected step declares needs, unless
    ``needs`` says that others (a site's steps) do."""
    if not (needs or _declares_needs(selections)):
        return []
    chosen = {selection.step.name for selection in selections}
    return [
        Selection(step, step.off_answers())
        for step in STEPS.values()
        if isinstance(step, GuardsNeeds) and step.name not in chosen
    ]


def plan_facts(selection: Selection) -> list[Fact[Any]]:
    """The facts planning ``selection`` reads (see :class:`PlansWithFewerFacts`)."""
    if isinstance(selection.step, PlansWithFewerFacts):
        return selection.step.plan_facts(selection.answers)
    return selection.step.facts(selection.answers)


def facts_needed(
    selections: Sequence[Selection], *, needs: bool = False, planning: bool = False
) -> list[Fact[Any]]:
    """Every fact the selected steps read, with those of the needs guards (see
    :func:`needs_guards`; ``needs``: others declare needs on this host too).

    ``planning``: only what their plans read (:func:`plan_facts`), for a plan or an apply
    that shows no step status: an off step then costs the host little or nothing."""
    needed: list[Fact[Any]] = []
    for selection in selections:
        step = selection.step
        needed.extend(plan_facts(selection) if planning else step.facts(selection.answers))
    for guard in needs_guards(selections, needs=needs):
        needed.extend(plan_facts(guard))  # a guard is only ever planned
    if needed and not planning:
        needed.append(APPLIED_STEPS)  # for the statuses (settled_status)
    return needed


def collect_needs(selections: Sequence[Selection], facts: Facts) -> tuple[Need, ...]:
    """What every selected step needs from the others (:class:`DeclaresNeeds`), in step
    order, each once."""
    found: list[Need] = []
    for selection in in_step_order(selections):
        if isinstance(selection.step, DeclaresNeeds):
            found.extend(selection.step.needs(selection.answers, facts))
    return tuple(dict.fromkeys(found))


def with_needs(selections: Sequence[Selection], facts: Facts, extra: Sequence[Need] = ()) -> Facts:
    """``facts`` with the declared needs of ``selections`` (plus ``extra``: a site step's
    needs on this host) as :data:`~wizard.steps.base.DECLARED_NEEDS`, for the step that
    meets them."""
    needs = tuple(dict.fromkeys((*collect_needs(selections, facts), *extra)))
    return facts.with_values({DECLARED_NEEDS: needs})


def _with_needs_once(selections: Sequence[Selection], facts: Facts) -> Facts:
    """``facts`` with the needs, unless the session put them in already (a preview's)."""
    return facts if DECLARED_NEEDS in facts else with_needs(selections, facts)


def _meets_needs(selections: Sequence[Selection]) -> bool:
    return any(isinstance(selection.step, GuardsNeeds) for selection in selections)


def with_session(selections: Sequence[Selection], session: Sequence[Selection]) -> list[Selection]:
    """``selections`` and, when one of them meets needs (the firewall), the steps of the
    ``session`` that declare needs: the facts their needs are read from
    (:func:`session_needs`)."""
    if not _meets_needs(selections):
        return list(selections)
    chosen = {selection.step.name for selection in selections}
    others = [s for s in session if isinstance(s.step, DeclaresNeeds)]
    return [*selections, *(s for s in others if s.step.name not in chosen)]


def session_needs(
    selections: Sequence[Selection], session: Sequence[Selection], facts: Facts
) -> tuple[Need, ...]:
    """What the ``session``'s steps (all the steps of a front end's step list, with their
    answers) need, when ``selections`` (the steps opened from it) meet needs: the inputs the
    step list's statuses were computed from (:func:`statuses` hands every step's needs to
    the firewall), so a step's preview agrees with its status. Steps that only declare needs
    plan with their own, as before: another step's wish must not refuse them."""
    return collect_needs(session, facts) if _meets_needs(selections) else ()


def read_facts(
    transport: Transport,
    selections: Sequence[Selection],
    *,
    planning: bool = False,
    session: Sequence[Selection] = (),
) -> Facts:
    """Every fact every selected step needs, in one round trip (``planning``: only what
    their plans read, see :func:`facts_needed`; ``session``: see :func:`with_session`)."""
    return gather(transport, facts_needed(with_session(selections, session), planning=planning))


def plan_changeset(
    host: str, selections: Sequence[Selection], facts: Facts, needs: Sequence[Need] = ()
) -> Changeset:
    """Plan each step on top of the files the steps before it will have written.

    Two steps may share a file (the engine and TLS steps both edit daemon.json): the later one
    merges into the earlier one's result instead of overwriting it. A command that a later step
    asks for again (the same ``key``: restarting dockerd) runs only once, at its last place.
    The steps are planned in step order (:func:`in_step_order`), whatever order they are given
    in. Every step plans with the needs the selected steps declare (plus ``needs``, a site
    step's for this host) in its facts; a needs guard that is not selected is planned in its
    "off" form after them, and refuses needs that what it left on the host would block.
    """
    facts = with_needs(selections, facts, needs)
    plans: list[Plan] = []
    for selection in in_step_order(selections):
        plan = selection.step.plan(selection.answers, facts).with_before(facts.file)
        if getattr(selection.answers, "enabled", True) is False:
            plan = replace(plan, off=True)
        plans.append(plan)
        facts = facts.with_files(
            FileState(a.path, True, a.content, a.mode, a.owner, a.group)
            for a in plan.actions
            if isinstance(a, WriteFile)
        )
    for guard in needs_guards(selections, needs=bool(needs)):
        if all(fact in facts for fact in plan_facts(guard)):
            guard.step.plan(guard.answers, facts)  # refuses a need its loaded state blocks
    return Changeset(host, tuple(_without_repeated_commands(plans)))


def _without_repeated_commands(plans: list[Plan]) -> list[Plan]:
    """Commands that share a :attr:`~wizard.actions.RunCommand.key` (two steps that both
    restart dockerd) run once, at the last place one of them is asked for."""
    later: set[str] = set()
    kept: list[Plan] = []
    for plan in reversed(plans):
        actions = []
        for action in reversed(plan.actions):
            if isinstance(action, RunCommand) and action.key:
                if action.key in later:
                    continue
                later.add(action.key)
            actions.append(action)
        kept.append(replace(plan, actions=tuple(reversed(actions))))
    return list(reversed(kept))


def statuses(selections: Sequence[Selection], facts: Facts) -> list[tuple[Step[Any], StepStatus]]:
    facts = _with_needs_once(selections, facts)
    return [
        (s.step, settled_status(s.step.name, s.step.status(s.answers, facts), facts))
        for s in selections
    ]


def step_statuses(
    selections: Sequence[Selection], facts: Facts, transport: Transport
) -> list[tuple[Step[Any], StepStatus]]:
    """Each step's status, with what this machine adds where a step says so (the TLS step:
    how long the client certificate here lasts)."""
    host = client_host(transport)
    result: list[tuple[Step[Any], StepStatus]] = []
    for (step, status), selection in zip(statuses(selections, facts), selections, strict=True):
        if isinstance(step, AddsLocalStatus):
            status = step.local_status(selection.answers, status, facts, host)
        result.append((step, status))
    return result


# ---- local work around the plan (wizard.local) ------------------------------------------


@dataclass(frozen=True)
class PreparedSelections:
    selections: list[Selection]
    """The selections to plan and apply, with the answers each step's ``prepare`` made."""
    created: tuple[Path, ...] = ()
    """Local folders created while preparing (the only local change before an apply)."""


def prepare_local(
    selections: Sequence[Selection], facts: Facts, local: LocalContext
) -> PreparedSelections:
    """Run the ``prepare`` hook of every selected step that has one, in step order: the local
    work before planning, which may ask for a secret through ``local.ask``. Nothing on the
    host changes here; locally, at most what the hooks report as created."""
    prepared: list[Selection] = []
    created: list[Path] = []
    for selection in selections:
        if not isinstance(selection.step, PreparesLocally):
            prepared.append(selection)
            continue
        made = selection.step.prepare(selection.answers, facts, local)
        prepared.append(Selection(selection.step, made.answers))
        created.extend(made.created)
    return PreparedSelections(prepared, tuple(created))


def after_confirmed(selections: Sequence[Selection]) -> LocalReport:
    """After a confirmed apply (or when the host needed nothing): every selected step's local
    work, as lines to show; stops at the first that fails."""
    lines: list[str] = []
    for selection in selections:
        if not isinstance(selection.step, FinishesLocally):
            continue
        report = selection.step.after_confirmed(selection.answers)
        lines.extend(report.lines)
        if not report.ok:
            return LocalReport(lines, ok=False)
    return LocalReport(lines)


def with_after_confirmed(result: ApplyResult, selections: Sequence[Selection]) -> ApplyResult:
    """``result`` with the local work's lines appended (only after a confirmed apply)."""
    if not result.confirmed:
        return result
    report = after_confirmed(selections)
    if not report.lines:
        return result
    return replace(result, message="\n".join([result.message, *report.lines]))


def after_rolled_back(
    steps: Iterable[str], host: str, answers: Mapping[str, Any] | None = None
) -> list[str]:
    """After a rollback of a snapshot that recorded ``steps`` (step names): what the local
    side of those steps leaves on this machine and what to do, as lines to show (empty when
    nothing stays). ``host`` names the host's local files (:func:`client_host`); ``answers``
    holds the admin's answers by step name where known (else the step's defaults)."""
    lines: list[str] = []
    recorded = set(steps)
    for name, step in STEPS.items():
        if name not in recorded or not isinstance(step, NotesAfterRollback):
            continue
        given = (answers or {}).get(name)
        lines.extend(
            step.after_rolled_back(given if given is not None else step.answers_type(), host)
        )
    return lines


def with_rollback_notes(
    result: ApplyResult, steps: Iterable[str], host: str, answers: Mapping[str, Any] | None = None
) -> ApplyResult:
    """``result`` of a rollback with :func:`after_rolled_back`'s lines appended (only when
    the rollback was confirmed: otherwise the host is as it was)."""
    if not result.confirmed:
        return result
    lines = after_rolled_back(steps, host, answers)
    if not lines:
        return result
    return replace(result, message="\n".join([result.message, *lines]))


def preview(
    transport: Transport,
    selections: Sequence[Selection],
    *,
    planning: bool = False,
    session: Sequence[Selection] = (),
) -> tuple[Changeset, Facts]:
    """Read the host and plan ``selections`` (with the needs of the ``session``'s steps, see
    :func:`session_needs`); the facts come back with the needs planned with."""
    facts = read_facts(transport, selections, planning=planning, session=session)
    needs = session_needs(selections, session, facts)
    changeset = plan_changeset(transport.host_label, selections, facts, needs)
    return changeset, (with_needs(selections, facts, needs) if needs else facts)


def apply(
    transport: Transport,
    selections: Sequence[Selection],
    *,
    expected: Changeset | None = None,
    progress: Progress | None = None,
    confirm_timeout: int = 60,
    planning: bool = False,
    session: Sequence[Selection] = (),
) -> ApplyResult:
    """Re-read the host, refuse if the plan is no longer the one shown, then apply it.

    ``planning``: ``expected`` was planned from the planning facts alone (``hostwiz apply``):
    they are read again, so that the plans compare like with like. ``session``: it was
    planned with the needs of these steps (:func:`session_needs`)."""
    changeset, facts = preview(transport, selections, planning=planning, session=session)
    if expected is not None and changeset != expected:
        raise HostChanged(
            f"{transport.host_label} changed after the plan was shown, so it no longer "
            "describes what would happen.",
            "Look at the new plan (plan again) and confirm that one.",
        )
    return apply_planned(transport, selections, changeset, facts, progress=progress,
                         confirm_timeout=confirm_timeout)  # fmt: skip


def apply_planned(
    transport: Transport,
    selections: Sequence[Selection],
    changeset: Changeset,
    facts: Facts,
    *,
    progress: Progress | None = None,
    confirm_timeout: int = 60,
) -> ApplyResult:
    """Apply a changeset planned from ``facts`` just now (no re-read in between)."""
    facts = _with_needs_once(selections, facts)  # the health checks compare with the plan
    checks = [
        HealthCheck(s.step, s.answers, facts)
        for s, plan in zip(in_step_order(selections), changeset.plans, strict=True)
        if not plan.empty
    ]
    return apply_changeset(
        transport, changeset, checks, progress=progress, confirm_timeout=confirm_timeout
    )
