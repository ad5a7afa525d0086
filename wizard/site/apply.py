"""Applying a site: one commit-confirmed transaction per host and stage.

* Stages run in order (a later stage uses what an earlier one produced); the hosts of a stage
  are independent and run at the same time (a bounded pool). Each host's transaction is
  :func:`wizard.transaction.apply_changeset`, unchanged: its own snapshot, safety timer,
  health checks and confirmation over a new connection.
* After a stage, the hosts it changed are read again, so the next stage is planned from the
  real state and the values the stage produced (a join token).
* When a host fails (its own transaction has then put it back, or its timer will), every host
  already confirmed is put back, newest first, each from its own snapshot
  (:func:`snapshots.rollback.rollback_plan`, applied as a transaction like any other).
* The site journal (:mod:`wizard.site.journal`) ties the hosts' snapshots together for
  ``hostwiz recover --site`` and ``hostwiz rollback --site``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from snapshots.rollback import rollback_plan
from wizard.errors import ApplyFailed, HostChanged, HostwizError
from wizard.facts import Fact, Facts
from wizard.local import client_host
from wizard.plan import Changeset, Plan
from wizard.render import RenderedLine, render_changeset
from wizard.session import after_rolled_back, in_step_order, with_needs
from wizard.site import journal
from wizard.site.model import Site
from wizard.site.plan import (
    HostChange,
    Produced,
    SitePlan,
    SiteSession,
    in_parallel,
    mark_fresh,
    plan_site,
    plan_stage,
    read_site,
    site_needs,
)
from wizard.site.step import HostFacts, SiteFacts, SiteStep
from wizard.steps.base import Status, StepStatus
from wizard.transaction import ApplyResult, Event, HealthCheck, Progress, apply_changeset
from wizard.transport.base import Transport


@dataclass(frozen=True)
class HostApplied:
    host: str
    stage: int
    result: ApplyResult


@dataclass(frozen=True)
class SiteResult:
    site_id: str | None
    applied: tuple[HostApplied, ...]
    message: str

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def labels_of(transports: Mapping[str, Transport]) -> dict[str, str]:
    return {name: transport.host_label for name, transport in transports.items()}


def preview_site(
    session: SiteSession, transports: Mapping[str, Transport]
) -> tuple[SitePlan, dict[str, Facts]]:
    """Read every host (one round trip each, at the same time) and plan every stage."""
    facts = read_site(session, transports)
    return plan_site(session, labels_of(transports), facts), facts


def apply_site(
    session: SiteSession,
    transports: Mapping[str, Transport],
    *,
    expected: SitePlan | None = None,
    progress: Progress | None = None,
    confirm_timeout: int = 60,
) -> SiteResult:
    """Re-read every host, refuse if the plan is no longer the one shown, then apply it."""
    plan, facts = preview_site(session, transports)
    # A provisional plan is compared too: re-planned before its stage, with the same values
    # pending, it is the one shown unless the host changed.
    if expected is not None and plan != expected:
        raise HostChanged(
            f"a host of site {session.site.name} changed after the plan was shown, so it no "
            "longer describes what would happen. Nothing was changed.",
            "Look at the new plan (plan again) and confirm that one.",
        )
    return apply_site_planned(session, transports, plan, facts, progress=progress,
                              confirm_timeout=confirm_timeout)  # fmt: skip


class _SiteHealth:
    """A site step's health check for one host and stage, in the shape of a step's (the
    transaction runs :class:`~wizard.transaction.HealthCheck`s)."""

    def __init__(self, step: SiteStep[Any], stage: int, host: str, view: SiteFacts) -> None:
        self.site_step, self.stage, self.host, self.view = step, stage, host, view
        self.name, self.title, self.explanation = step.name, step.title, step.explanation
        self.answers_type: type[Any] = step.answers_type

    def facts(self, answers: Any) -> list[Fact[Any]]:
        return []

    def plan(self, answers: Any, facts: Facts) -> Plan:
        return Plan(self.name)

    def health(self, transport: Transport, answers: Any, facts: Facts) -> list[str]:
        return self.site_step.health(transport, answers, self.stage, self.host, self.view)

    def status(self, answers: Any, facts: Facts) -> StepStatus:
        return StepStatus(Status.UNKNOWN, "a site step's part on one host")


def _checks(
    session: SiteSession, change: HostChange, facts: Mapping[str, Facts],
    produced: Mapping[str, Produced],
) -> list[HealthCheck]:  # fmt: skip
    plans = change.changeset.plans
    checks: list[HealthCheck] = []
    if change.stage == 1:
        selections = in_step_order(session.selections[change.host])
        needs = site_needs(session, facts)[change.host]
        mine = with_needs(selections, facts[change.host], needs)  # as planned (the firewall's)
        for selection, plan in zip(selections, plans, strict=False):
            if not plan.empty:
                checks.append(HealthCheck(selection.step, selection.answers, mine))
    view = SiteFacts({
        host.name: HostFacts(host.name, host.roles, facts[host.name], produced[host.name].facts,
                             frozenset(produced[host.name].fresh))
        for host in session.site.hosts
    })  # fmt: skip
    for site_selection in session.steps:
        if any(plan.step == site_selection.step.name and not plan.empty for plan in plans):
            step = _SiteHealth(site_selection.step, change.stage, change.host, view)
            checks.append(HealthCheck(step, site_selection.answers, facts[change.host]))
    return checks


class _Story:
    """Writes the site journal; never lets a local write failure hide the hosts' state."""

    def __init__(self, site: str, site_id: str, say: Progress) -> None:
        self.site, self.site_id, self.say = site, site_id, say
        self._lock = threading.Lock()  # the hosts of a stage write from their threads

    def __call__(self, event: str, host: str = "", stage: int = 0, snapshot: str = "",
                 detail: str = "") -> None:  # fmt: skip
        entry = journal.SiteEntry(journal.now(), self.site, self.site_id, event, host, stage,
                                  snapshot, detail)  # fmt: skip
        try:
            with self._lock:
                journal.record(entry)
        except OSError as error:
            self.say(Event("warning", f"Could not write the site journal: {error}"))


def _for_host(say: Progress, host: str) -> Progress:
    def tell(event: Event) -> None:
        say(replace(event, message=f"{host}: {event.message}"))

    return tell


def apply_site_planned(
    session: SiteSession,
    transports: Mapping[str, Transport],
    plan: SitePlan,
    facts: Mapping[str, Facts],
    *,
    progress: Progress | None = None,
    confirm_timeout: int = 60,
) -> SiteResult:
    """Apply a site plan made from ``facts`` just now (see the module docstring)."""
    say = progress or (lambda event: None)
    if plan.empty:
        say(Event("done", "Nothing to do: every host is already as asked."))
        return SiteResult(None, (), "nothing to do")
    site_id = journal.new_site_id()
    story = _Story(session.site.name, site_id, say)
    story("applying", detail=f"{len(session.site.hosts)} hosts, {plan.stages} stage(s)")
    current = dict(facts)
    produced = {name: Produced(facts[name]) for name in facts}
    done: list[HostApplied] = []
    labels = labels_of(transports)
    stage = 1
    try:
        for stage in range(1, plan.stages + 1):
            changes = (
                [c for c in plan.changes if c.stage == 1]
                if stage == 1
                else plan_stage(session, stage, labels, current, produced)
            )
            waiting = [c for c in changes if c.provisional and not c.changeset.empty]
            if waiting:
                raise HostwizError(
                    f"stage {stage} still waits for {', '.join(waiting[0].provisional)} after "
                    "the stage that produces it applied.",
                    "This is a fault in the site step: its stage did not leave the value it "
                    "promised.",
                )
            _run_stage(session, transports, changes, stage, current, produced, done, story,
                       say, confirm_timeout)  # fmt: skip
    except HostwizError as error:
        raise _put_back(session, transports, done, story, say, confirm_timeout, stage,
                        error) from error  # fmt: skip
    except Exception as error:
        wrapped = HostwizError(f"{type(error).__name__}: {error}")
        raise _put_back(session, transports, done, story, say, confirm_timeout, stage,
                        wrapped) from error  # fmt: skip
    story("done")
    hosts = ", ".join(dict.fromkeys(applied.host for applied in done))
    message = (f"Applied site {session.site.name} on {hosts or 'no host'}. Undo with: "
               f"{session.site.command('rollback')}")  # fmt: skip
    say(Event("done", message))
    return SiteResult(site_id, tuple(done), message)


def _run_stage(
    session: SiteSession,
    transports: Mapping[str, Transport],
    changes: Sequence[HostChange],
    stage: int,
    current: dict[str, Facts],
    produced: dict[str, Produced],
    done: list[HostApplied],
    story: _Story,
    say: Progress,
    confirm_timeout: int,
) -> None:
    """Apply one stage on its hosts at once; then read them again for the next stage."""
    work = {c.host: c for c in changes if not c.changeset.empty}
    for change in changes:
        if change.changeset.empty:
            mark_fresh(session, stage, change.host, produced[change.host])

    def one(change: HostChange) -> ApplyResult | HostwizError:
        """One host's transaction, journaled as soon as it ends (an interrupted site apply
        still says which hosts kept their change)."""
        checks = _checks(session, change, current, produced)
        name = change.host
        try:
            result = apply_changeset(transports[name], change.changeset, checks,
                                     progress=_for_host(say, name),
                                     confirm_timeout=confirm_timeout)  # fmt: skip
        except HostwizError as error:
            story("failed", name, stage, detail=error.message)
            return error
        if result.confirmed:
            story("applied", name, stage, result.snapshot_id or "")
        else:
            story("failed", name, stage, result.snapshot_id or "", result.message)
        return result

    outcomes = in_parallel(work, one)
    failed: list[tuple[str, HostwizError]] = []
    for name, outcome in outcomes.items():  # the site's order
        if isinstance(outcome, ApplyResult) and outcome.confirmed:
            done.append(HostApplied(name, stage, outcome))
        elif isinstance(outcome, ApplyResult):
            failed.append((name, ApplyFailed(outcome.message)))
        else:
            failed.append((name, outcome))
    if failed:
        name, error = failed[0]
        raise HostwizError(f"{name} (stage {stage}): {error.message}", error.hint,
                           details=error.details)  # fmt: skip
    if stage < session.stages and work:
        again = read_site(session, transports, work)
        for name, facts in again.items():
            current[name] = facts
            produced[name].facts = facts
            mark_fresh(session, stage, name, produced[name])


def _put_back(
    session: SiteSession,
    transports: Mapping[str, Transport],
    done: list[HostApplied],
    story: _Story,
    say: Progress,
    confirm_timeout: int,
    stage: int,
    error: HostwizError,
) -> ApplyFailed:
    """A host failed: put back every host already confirmed, newest first."""
    back, stuck = roll_back_hosts(transports, done, story, say, confirm_timeout)
    story("incomplete" if stuck else "reverted", detail=error.message)
    what = f"site {session.site.name} did not go through: {error.message.rstrip('.')}"
    if not done:
        return ApplyFailed(f"{what}. No other host had been changed.",
                           error.hint or "Fix what the message says, then apply again.",
                           details=error.details)  # fmt: skip
    if stuck:
        return ApplyFailed(
            f"{what}. Put back: {', '.join(back) or 'none'}; NOT put back: {', '.join(stuck)}.",
            f"Run `{session.site.command('recover')}` to see the whole story, and "
            "`hostwiz recover --host HOST` on each host not put back.",
            details=error.details,
        )
    return ApplyFailed(
        f"{what}. The hosts changed before were put back, in reverse order: {', '.join(back)}.",
        (error.hint + " " if error.hint else "")
        + f"`{session.site.command('recover')}` tells the whole story.",
        details=error.details,
    )


def roll_back_hosts(
    transports: Mapping[str, Transport],
    applied: Sequence[HostApplied],
    story: _Story,
    say: Progress,
    confirm_timeout: int,
) -> tuple[list[str], list[str]]:
    """Put back each host's snapshot, newest first; returns (put back, could not)."""
    back: list[str] = []
    stuck: list[str] = []
    for item in reversed(applied):
        snapshot = item.result.snapshot_id or ""
        transport = transports[item.host]
        label = f"{item.host} ({snapshot})"
        try:
            plan = rollback_plan(transport, snapshot)
            changeset = Changeset(transport.host_label, (plan,))
            result = apply_changeset(
                transport,
                changeset,
                progress=_for_host(say, item.host),
                confirm_timeout=confirm_timeout,
                reason="rollback",
            )
        except HostwizError as error:
            stuck.append(label)
            story("rollback-failed", item.host, item.stage, snapshot, error.message)
            continue
        if result.confirmed:
            back.append(label)
            story("rolled-back", item.host, item.stage, snapshot)
        else:
            stuck.append(label)
            story("rollback-failed", item.host, item.stage, snapshot, result.message)
    return back, stuck


@dataclass(frozen=True)
class HostRollback:
    """One host's part of a ``rollback --site``: its snapshot and the plan that puts it back."""

    host: str
    stage: int
    snapshot_id: str
    plan: Plan


def site_rollback_plans(site: str, transports: Mapping[str, Transport]) -> list[HostRollback]:
    """What putting back the site's last change would do on each host, newest first."""
    change = journal.last_change(site)
    plans = []
    for entry in reversed(journal.applied_hosts(change)):
        if entry.host not in transports:
            raise HostwizError(f"the site's last change applied on {entry.host}, which is not "
                               "in the site any more.",
                               f"Roll it back alone: hostwiz rollback --host {entry.host} "
                               f"{entry.snapshot_id}")  # fmt: skip
        plan = rollback_plan(transports[entry.host], entry.snapshot_id)
        plans.append(HostRollback(entry.host, entry.stage, entry.snapshot_id, plan))
    return plans


class SiteRolledBack(NamedTuple):
    """What ``rollback --site`` did: hosts put back and not (``host (snapshot)``), and what
    stays on this machine from the steps put back (:func:`wizard.session.after_rolled_back`)."""

    back: list[str]
    stuck: list[str]
    notes: list[str]


def rollback_site(
    site: str,
    transports: Mapping[str, Transport],
    plans: Sequence[HostRollback],
    *,
    progress: Progress | None = None,
    confirm_timeout: int = 60,
) -> SiteRolledBack:
    """Put back every host of the site's last change in reverse order (as ``plans`` says)."""
    say = progress or (lambda event: None)
    change = journal.last_change(site)
    site_id = change[0].site_id if change else journal.new_site_id()
    story = _Story(site, site_id, say)
    story("rollback", detail="the admin asked to put the whole site back")
    applied = [
        HostApplied(p.host, p.stage, ApplyResult(p.snapshot_id, 0, ""))
        for p in reversed(plans)
        if not p.plan.empty
    ]
    back, stuck = roll_back_hosts(transports, applied, story, say, confirm_timeout)
    for p in plans:
        if p.plan.empty:  # nothing differs: it counts as put back
            story("rolled-back", p.host, p.stage, p.snapshot_id)
    story("incomplete" if stuck else "reverted", detail="rollback --site")
    notes = [
        f"{p.host}: {line}"
        for p in plans
        if f"{p.host} ({p.snapshot_id})" in back
        for line in after_rolled_back(p.plan.rolled_back_steps, client_host(transports[p.host]))
    ]
    return SiteRolledBack(back, stuck, notes)


def render_rollback(site: Site, plans: Sequence[HostRollback]) -> list[RenderedLine]:
    """What ``rollback --site`` would do, host by host in the order it would (newest first)."""
    lines: list[RenderedLine] = []
    for item in plans:
        target = site.host(item.host).target
        lines.append(RenderedLine("header", f"=== {item.host} ({target}): put back snapshot "
                                  f"{item.snapshot_id} ==="))  # fmt: skip
        lines.extend(render_changeset(Changeset(target, (item.plan,))))
    return lines


def close_all(transports: Mapping[str, Transport]) -> None:
    for transport in transports.values():
        with contextlib.suppress(Exception):
            transport.close()
