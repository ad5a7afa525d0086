"""Planning a site: every host's facts, then each stage's changeset per host.

Stage 1 of a host holds its single-host steps (its preset, planned exactly as for one host by
:func:`wizard.session.plan_changeset`) followed by every site step's stage-1 plan for it;
stage ``n`` holds the site steps' stage-``n`` plans. A site step's plan for a later stage is
made on top of the files the earlier stages will have written (``Facts.with_files``), and with
the values they produce: known when the producing stage changes nothing on that host (or has
applied), *pending* otherwise, which makes the later plan a provisional preview.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wizard.actions import FileState, WriteFile
from wizard.checks import HOST_FACTS as CHECKER_FACTS
from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts, gather
from wizard.plan import Changeset, Plan
from wizard.render import RenderedLine, render_changeset
from wizard.session import Selection, facts_needed, plan_changeset, selections_for
from wizard.site.answers import site_hint
from wizard.site.model import Site, SiteError, SiteHost
from wizard.site.registry import SITE_STEPS
from wizard.site.step import DeclaresSiteNeeds, HostFacts, SiteFacts, SiteStep
from wizard.steps.base import Need
from wizard.transport.base import Transport

V = TypeVar("V")
R = TypeVar("R")

MAX_PARALLEL = 16
"""Hosts read or changed at the same time (a bounded pool: the admin's machine and link).
A host's work is mostly waiting for it; hostwiz's own CPU time for 10 hosts is about 1.5x
that for one (bench/bench_site.py), so a site of 10 runs in one wave, not two."""


@dataclass(frozen=True)
class SiteSelection:
    """One site step the site file asks for, with its answers."""

    step: SiteStep[Any]
    answers: Any


@dataclass(frozen=True)
class SiteSession:
    """What a site asks for: each host's single-host selections and the site steps."""

    site: Site
    selections: Mapping[str, Sequence[Selection]]
    steps: tuple[SiteSelection, ...]

    @property
    def stages(self) -> int:
        return max((selection.step.stages for selection in self.steps), default=1)

    def roles_of(self, host: str) -> tuple[str, ...]:
        return self.site.host(host).roles


@dataclass(frozen=True)
class HostChange:
    """One host's transaction in one stage."""

    host: str
    stage: int
    changeset: Changeset
    provisional: tuple[str, ...] = ()
    """Produced values this plan waits for (planned again once they are known)."""


@dataclass(frozen=True)
class SitePlan:
    """Every host's change, stage by stage: what the admin reviews before a site apply."""

    site: str
    stages: int
    changes: tuple[HostChange, ...]

    @property
    def empty(self) -> bool:
        return all(change.changeset.empty for change in self.changes)

    def stage(self, number: int) -> list[HostChange]:
        return [c for c in self.changes if c.stage == number and not c.changeset.empty]


@dataclass
class Produced:
    """Produced values read from one host, and which of them are real already."""

    facts: Facts | None = None
    fresh: set[str] = field(default_factory=set)


def site_session(site: Site, overrides: Sequence[str] = ()) -> SiteSession:
    """Each host's selections (its preset with ``--set`` on top) and the site steps."""
    from presets import apply_overrides, load_preset

    loaded: dict[str | None, Sequence[Selection]] = {}
    selections: dict[str, Sequence[Selection]] = {}
    for host in site.hosts:
        if host.preset not in loaded:
            if host.preset is None:
                loaded[None] = []
            else:
                preset = apply_overrides(load_preset(host.preset), overrides)
                loaded[host.preset] = selections_for(preset.answers)
        selections[host.name] = loaded[host.preset]
    steps = tuple(
        SiteSelection(step, site.steps[name])
        for name, step in SITE_STEPS.items()
        if name in site.steps
    )
    session = SiteSession(site, selections, steps)
    check_roles(session)
    return session


def check_roles(session: SiteSession) -> None:
    """Every role a site step needs has a host (refused before anything is read). A step
    whose roles are not all needed names those it needs in ``required_roles``."""
    for selection in session.steps:
        for role in getattr(selection.step, "required_roles", selection.step.roles):
            if not session.site.with_role(role):
                raise SiteError(
                    f"{session.site.source}: the {selection.step.name} step needs a host with "
                    f"the role {role!r}, and no host has it.",
                    f'Add roles = ["{role}"] to the host that plays that part.',
                )


def host_facts_needed(session: SiteSession, host: SiteHost) -> list[Fact[Any]]:
    """Everything to read from ``host`` in one round trip (with the combination checker's
    facts, shown before the site's preview)."""
    needs = any(
        isinstance(selection.step, DeclaresSiteNeeds)
        and bool(set(host.roles) & set(selection.step.roles))
        for selection in session.steps
    )
    needed = [*facts_needed(session.selections[host.name], needs=needs, planning=True),
              *CHECKER_FACTS]  # fmt: skip
    for selection in session.steps:
        for role in host.roles:
            if role not in selection.step.roles:
                continue
            needed.extend(selection.step.facts(selection.answers, role))
            for stage in range(1, selection.step.stages + 1):
                needed.extend(selection.step.produces(selection.answers, stage, role))
    return needed


def in_parallel(work: Mapping[str, V], function: Callable[[V], R]) -> dict[str, R]:
    """``function(value)`` for every item of ``work`` at once (bounded), keyed the same.

    The first error is raised after every call ended (nothing is left running)."""
    if len(work) <= 1:
        return {key: function(value) for key, value in work.items()}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(work)),
                            thread_name_prefix="hostwiz-site") as pool:  # fmt: skip
        futures = {key: pool.submit(function, value) for key, value in work.items()}
    return {key: future.result() for key, future in futures.items()}


def read_site(
    session: SiteSession, transports: Mapping[str, Transport], hosts: Iterable[str] | None = None
) -> dict[str, Facts]:
    """Every host's facts (one round trip per host, hosts at the same time)."""
    wanted = list(hosts) if hosts is not None else [h.name for h in session.site.hosts]
    work = {name: (transports[name], host_facts_needed(session, session.site.host(name)))
            for name in wanted}  # fmt: skip
    return in_parallel(work, lambda item: gather(item[0], item[1]) if item[1] else Facts({}, {}))


def _written(changeset: Changeset) -> list[FileState]:
    return [
        FileState(a.path, True, a.content, a.mode, a.owner, a.group)
        for a in changeset.actions()
        if isinstance(a, WriteFile)
    ]


@contextmanager
def advice_for_site(session: SiteSession, host: str = "") -> Iterator[None]:
    """A refusal raised inside: its ``--set`` advice (the one-host planners') said the way a
    site sets it (:func:`wizard.site.answers.site_hint`)."""
    try:
        yield
    except PlanConflict as error:
        site = session.site
        preset = site.host(host).preset if host else None
        steps = {name: type(answers) for name, answers in site.steps.items()}
        own = {s.step.name: s.step.answers_type for s in session.selections.get(host, ())}
        error.hint = site_hint(error.hint or "", site.source, steps, host, preset, own)
        raise


def site_needs(session: SiteSession, facts: Mapping[str, Facts]) -> dict[str, tuple[Need, ...]]:
    """Host -> what the site steps need from its single-host steps (its firewall)."""
    view = SiteFacts({host.name: HostFacts(host.name, host.roles, facts[host.name])
                      for host in session.site.hosts})  # fmt: skip
    found: dict[str, list[Need]] = {host.name: [] for host in session.site.hosts}
    for selection in session.steps:
        if isinstance(selection.step, DeclaresSiteNeeds):
            for name, needs in selection.step.needs(selection.answers, view).items():
                found[name].extend(needs)
    return {name: tuple(dict.fromkeys(needs)) for name, needs in found.items()}


def plan_stage(
    session: SiteSession,
    stage: int,
    labels: Mapping[str, str],
    facts: Mapping[str, Facts],
    produced: Mapping[str, Produced],
) -> list[HostChange]:
    """Every host's change in ``stage``, from each host's facts as they will be then."""
    plans: dict[str, list[Plan]] = {host.name: [] for host in session.site.hosts}
    waits: dict[str, list[str]] = {host.name: [] for host in session.site.hosts}
    current = dict(facts)
    base: dict[str, Changeset] = {}
    if stage == 1:
        needs = site_needs(session, current)
        for host in session.site.hosts:
            with advice_for_site(session, host.name):
                base[host.name] = plan_changeset(
                    labels[host.name],
                    session.selections[host.name],
                    current[host.name],
                    needs[host.name],
                )
            current[host.name] = current[host.name].with_files(_written(base[host.name]))
    for selection in session.steps:
        if stage > selection.step.stages:
            continue
        view = SiteFacts({
            host.name: HostFacts(host.name, host.roles, current[host.name],
                                 produced[host.name].facts,
                                 frozenset(produced[host.name].fresh))
            for host in session.site.hosts
        })  # fmt: skip
        with advice_for_site(session):
            by_host = selection.step.plan(selection.answers, stage, view)
        for name, plan in by_host.items():
            if name not in plans:
                raise PlanConflict(f"the {selection.step.name} step planned for {name!r}, "
                                   "which is not a host of this site.")  # fmt: skip
            plans[name].append(plan)
            waits[name].extend(view.pending)
            states = [FileState(a.path, True, a.content, a.mode, a.owner, a.group)
                      for a in plan.actions if isinstance(a, WriteFile)]  # fmt: skip
            current[name] = current[name].with_files(states)
    changes = []
    for host in session.site.hosts:
        first = base[host.name].plans if host.name in base else ()
        changeset = Changeset(labels[host.name], (*first, *plans[host.name]))
        changes.append(
            HostChange(host.name, stage, changeset, tuple(dict.fromkeys(waits[host.name])))
        )
    return changes


def stage_products(session: SiteSession, stage: int, host: SiteHost) -> list[Fact[Any]]:
    """The facts that read what ``stage`` leaves on ``host``."""
    found: list[Fact[Any]] = []
    for selection in session.steps:
        if stage <= selection.step.stages:
            for role in host.roles:
                if role in selection.step.roles:
                    found.extend(selection.step.produces(selection.answers, stage, role))
    return found


def mark_fresh(session: SiteSession, stage: int, host: str, produced: Produced) -> None:
    """The values ``stage`` produces on ``host`` are real now (it applied, or had nothing to
    change there)."""
    produced.fresh.update(
        fact.name for fact in stage_products(session, stage, session.site.host(host))
    )


def plan_site(
    session: SiteSession, labels: Mapping[str, str], facts: Mapping[str, Facts]
) -> SitePlan:
    """Every stage, planned from the facts read now (see the module docstring)."""
    produced = {name: Produced(facts[name]) for name in facts}
    current = dict(facts)
    changes: list[HostChange] = []
    for stage in range(1, session.stages + 1):
        planned = plan_stage(session, stage, labels, current, produced)
        changes.extend(planned)
        for change in planned:
            if change.changeset.empty:
                mark_fresh(session, stage, change.host, produced[change.host])
            current[change.host] = current[change.host].with_files(_written(change.changeset))
    return SitePlan(session.site.name, session.stages, tuple(changes))


def render_site(plan: SitePlan, session: SiteSession) -> list[RenderedLine]:
    """Every host's diff, grouped by stage and host."""
    lines: list[RenderedLine] = []
    busy = {change.host for change in plan.changes if not change.changeset.empty}
    for change in plan.changes:
        if change.changeset.empty and (change.host in busy or change.stage > 1):
            continue  # said once per host, only for a host with nothing to do at all
        host = session.site.host(change.host)
        stage = f", stage {change.stage} of {plan.stages}" if plan.stages > 1 else ""
        roles = f" [{', '.join(host.roles)}]" if host.roles else ""
        lines.append(RenderedLine("header", f"=== {host.name}{roles} ({host.target}){stage} ==="))
        if change.changeset.empty:
            lines.append(RenderedLine("note", "nothing to do on this host."))
            continue
        if change.provisional:
            lines.append(RenderedLine(
                "warning",
                "! Provisional: planned again with "
                + ", ".join(change.provisional)
                + " once the stage that produces it has applied.",
            ))  # fmt: skip
        lines.extend(render_changeset(change.changeset))
    return lines
