"""Plans: what one step would change on one host, as frozen data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from wizard.actions import Action, FileState


@dataclass(frozen=True)
class PortMove:
    """After this change, sshd listens on ``after`` instead of ``before``.

    The transaction opens its confirmation connection to ``after``: a port change is only kept
    once the new port answers.
    """

    before: int
    after: int


@dataclass(frozen=True)
class Plan:
    """The actions one step needs, in order. No actions means the step is already done."""

    step: str
    actions: tuple[Action, ...] = ()
    before: tuple[FileState, ...] = ()
    """Before-state of every file the actions write or remove, for diffs. The session fills it
    in from the file facts (:meth:`with_before`); a step lists only states no file fact has."""
    notes: tuple[str, ...] = ()
    """Plain-words explanations shown with the preview."""
    warnings: tuple[str, ...] = ()
    """Things the admin should know before confirming (shown prominently)."""
    ssh_port: PortMove | None = None
    """Set when this plan moves sshd to another port (None: SSH stays where it is)."""
    rolls_back: str | None = None
    """The snapshot whose change this plan puts back (a rollback's plan); None otherwise."""
    rolled_back_steps: tuple[str, ...] = ()
    """A rollback's plan: the steps that snapshot's change applied (their local side may
    need a word afterwards, :func:`wizard.session.after_rolled_back`)."""
    off: bool = False
    """The step is not chosen (its answers say ``enabled = false``): an empty plan then means
    "off", not that the host is already set (the session fills it in)."""

    @property
    def empty(self) -> bool:
        return not self.actions

    def before_of(self, path: str) -> FileState:
        for state in self.before:
            if state.path == path:
                return state
        return FileState(path, exists=False)

    def with_before(self, known: Callable[[str], FileState | None]) -> Plan:
        """This plan with the before-state of every touched path that ``known`` (the file
        facts) has and :attr:`before` does not list yet."""
        listed = {state.path for state in self.before}
        found = [known(path) for path in self.touched_paths() if path not in listed]
        added = tuple(state for state in found if state is not None)
        return replace(self, before=self.before + added) if added else self

    def touched_paths(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for action in self.actions:
            for path in action.paths:
                seen.setdefault(path, None)
        return tuple(seen)


@dataclass(frozen=True)
class Changeset:
    """The plans of every step asked for on one host, applied as one transaction."""

    host: str
    plans: tuple[Plan, ...]

    @property
    def empty(self) -> bool:
        return all(plan.empty for plan in self.plans)

    def actions(self) -> Iterator[Action]:
        for plan in self.plans:
            yield from plan.actions

    def touched_paths(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for plan in self.plans:
            for path in plan.touched_paths():
                seen.setdefault(path, None)
        return tuple(seen)

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(plan.step for plan in self.plans if not plan.empty)

    @property
    def ssh_port(self) -> PortMove | None:
        """Where SSH listens after the whole changeset, if any plan moves it."""
        moves = [plan.ssh_port for plan in self.plans if plan.ssh_port and not plan.empty]
        if not moves or moves[0].before == moves[-1].after:
            return None
        return PortMove(moves[0].before, moves[-1].after)
