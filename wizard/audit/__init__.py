"""The audit: where a host stands and why it matters (issue #17).

:data:`AUDIT_FACTS` are read in one round trip; :func:`findings` is pure over them, so every
rule is unit tested with fact tables. :func:`compare` tells what a change fixed.
"""

from __future__ import annotations

from collections.abc import Iterable

from wizard.audit.facts import Container
from wizard.audit.model import AuditDiff, Finding, Rule, Severity, compare, failing, worst_first
from wizard.audit.rules import RULES
from wizard.audit.view import AUDIT_FACTS, HostView, audit_facts, host_view
from wizard.facts import Facts, gather
from wizard.transport.base import Transport


def findings(facts: Facts) -> list[Finding]:
    """Every rule's findings over ``facts``, worst first."""
    return findings_in(host_view(facts))


def findings_in(view: HostView) -> list[Finding]:
    return worst_first(f for rule in RULES for f in rule.findings(view))


def read_audit_facts(transport: Transport, waiting_for: Iterable[str] = ()) -> Facts:
    """Everything the audit needs, in one round trip; the containers are listed once those
    named in ``waiting_for`` run again (a bounded wait, see :func:`audit_again`)."""
    return gather(transport, audit_facts(waiting_for))


def audit_again(transport: Transport, before: HostView) -> HostView:
    """The audit after a change, to compare with ``before`` (:func:`change`).

    A change that restarts dockerd stops the containers (unless live-restore was on); dockerd
    starts those with a restart policy again by itself, possibly a moment after it answers, so
    an audit straight after could miss them. This one waits (at most
    :data:`~wizard.audit.facts.RESTART_WAIT` seconds, in the same round trip) until the
    containers ``before`` saw running with such a policy run again.
    """
    return host_view(read_audit_facts(transport, waiting_for=before.restarted_with_dockerd))


def change(before: HostView, after: HostView) -> AuditDiff:
    """What a change did to the audit: container findings whose container did not run at the
    second audit are not called fixed (see :func:`compare`)."""
    return compare(findings_in(before), findings_in(after), running_after=after.running)


def audit(transport: Transport) -> list[Finding]:
    return findings(read_audit_facts(transport))


__all__ = [
    "AUDIT_FACTS",
    "AuditDiff",
    "Container",
    "Finding",
    "HostView",
    "Rule",
    "Severity",
    "audit",
    "audit_again",
    "change",
    "compare",
    "containers",
    "failing",
    "findings",
    "host_view",
    "read_audit_facts",
    "worst_first",
]
