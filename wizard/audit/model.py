"""What an audit reports: findings with a severity, plain-words meaning and the step that fixes
them, and the before/after comparison of two audits."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from wizard.errors import InvalidAnswer


class Severity(Enum):
    """How bad a finding is, worst first. ``rank`` orders them (critical is 4, info 0)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def named(cls, name: str) -> Severity:
        """The severity called ``name`` (any case); a clear error for anything else."""
        try:
            return cls(name.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise InvalidAnswer(f"{name!r} is not a severity.", f"Use one of: {names}.") from None


@dataclass(frozen=True)
class Finding:
    """One thing the audit found, explained for a first-time admin.

    ``fix`` names the hostwiz step that fixes it (``docker``, ``tls``, ``firewall``, ``ssh``);
    None when no step does, and ``manual`` then says what to do by hand.
    """

    id: str
    severity: Severity
    title: str
    meaning: str
    evidence: str
    fix: str | None = None
    manual: str = ""
    subject: str = ""
    """What the finding is about (a container, a file, a listener); "" for the host itself."""
    container: str = ""
    """The container the finding is about ("" when it is not about one): the audit only sees
    running containers, so such a finding says nothing once its container is not running."""
    engine: str = ""
    """The rootless engine the finding is about (``admin's rootless engine``); "" for the
    system engine and the host itself."""

    @property
    def key(self) -> tuple[str, str]:
        """What stays the same for the same problem across two audits (evidence may change)."""
        return (self.id, self.subject)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "meaning": self.meaning,
            "evidence": self.evidence,
            "fix": self.fix,
            "manual": self.manual,
            "subject": self.subject,
            "engine": self.engine,
        }


@dataclass(frozen=True)
class Hit:
    """What a rule's check returns for each place its problem shows up."""

    evidence: str
    subject: str = ""
    container: str = ""
    """The container the hit is about, for container rules (see :attr:`Finding.container`)."""
    engine: str = ""
    """The rootless engine it is about (see :attr:`Finding.engine`)."""
    severity: Severity | None = None
    """The rule's severity, unless this hit is worse or milder (and ``meaning`` says why)."""
    meaning: str = ""
    """The rule's meaning, unless this hit needs other words."""
    title: str = ""
    """The rule's title, unless it would not be true of this hit (see ``meaning``)."""


@dataclass(frozen=True)
class Rule:
    """A check written as data: its words, its severity, the step that fixes it, and a pure
    function over the audit's view of the host returning one :class:`Hit` per occurrence."""

    id: str
    severity: Severity
    title: str
    meaning: str
    check: Callable[[Any], Sequence[Hit]]
    fix: str | None = None
    manual: str = ""

    def findings(self, state: Any) -> list[Finding]:
        return [
            Finding(
                self.id,
                hit.severity or self.severity,
                hit.title or self.title,
                hit.meaning or self.meaning,
                hit.evidence,
                self.fix,
                self.manual,
                hit.subject,
                hit.container,
                hit.engine,
            )
            for hit in self.check(state)
        ]


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.id, f.subject))


def failing(findings: Iterable[Finding], threshold: Severity) -> list[Finding]:
    """The findings at or above ``threshold`` (what makes ``hostwiz audit`` exit non-zero)."""
    return [f for f in findings if f.severity.at_least(threshold)]


@dataclass(frozen=True)
class AuditDiff:
    """Two audits of one host compared: what a change fixed, what it brought, what remains,
    and what could not be checked again because its container was not running (``not_running``:
    neither fixed nor remaining, since the second audit did not see the container at all)."""

    fixed: tuple[Finding, ...] = ()
    new: tuple[Finding, ...] = ()
    remaining: tuple[Finding, ...] = field(default=())
    not_running: tuple[Finding, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.fixed or self.new)

    def lines(self) -> list[str]:
        """Plain lines for a terminal or a result panel."""
        out = []
        for finding in self.fixed:
            out.append(f"fixed: [{finding.severity.value}] {_label(finding)}")
        for finding in self.new:
            if finding.severity is Severity.INFO:
                continue  # e.g. a certificate's days left, once TLS is set up: not a problem
            out.append(f"new:   [{finding.severity.value}] {_label(finding)}")
        for finding in self.not_running:
            out.append(f"not running now: [{finding.severity.value}] {_label(finding)}")
        if self.not_running:
            out.append(_not_running_note(self.not_running))
        if not out:
            out.append("The audit finds the same things as before.")
        return out


def _label(finding: Finding) -> str:
    return f"{finding.title} ({finding.subject})" if finding.subject else finding.title


def _not_running_note(findings: Iterable[Finding]) -> str:
    names = list(dict.fromkeys(f.container for f in findings))
    it = "it runs" if len(names) == 1 else "they run"
    return (
        f"Not checked again: {', '.join(names)} did not run when the host was audited again "
        f"(stopped, or still starting after dockerd restarted). These findings are not fixed; "
        f"run hostwiz audit once {it}."
    )


def compare(
    before: Iterable[Finding],
    after: Iterable[Finding],
    running_after: Collection[str] | None = None,
) -> AuditDiff:
    """Which findings of ``before`` are gone ``after`` (fixed), which appeared (new).

    ``running_after`` names the containers the second audit saw running (None: unknown, e.g.
    Docker could not be asked). A container finding gone because its container was not running
    then is not fixed: nothing was checked. It is ``not_running`` instead.
    """
    before_list, after_list = worst_first(before), worst_first(after)
    before_keys = {f.key for f in before_list}
    after_keys = {f.key for f in after_list}
    seen = frozenset(running_after or ())
    gone = [f for f in before_list if f.key not in after_keys]
    return AuditDiff(
        fixed=tuple(f for f in gone if not f.container or f.container in seen),
        new=tuple(f for f in after_list if f.key not in before_keys),
        remaining=tuple(f for f in after_list if f.key in before_keys),
        not_running=tuple(f for f in gone if f.container and f.container not in seen),
    )
