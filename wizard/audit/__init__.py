"""The audit: where a host stands and why it matters (issue #17).

:data:`AUDIT_FACTS` are read in one round trip; :func:`findings` is pure over them, so every
rule is unit tested with fact tables. :func:`compare` tells what a change fixed.
"""

from __future__ import annotations

from wizard.audit.facts import Container
from wizard.audit.model import AuditDiff, Finding, Rule, Severity, compare, failing, worst_first
from wizard.audit.rules import RULES
from wizard.audit.view import AUDIT_FACTS, HostView, host_view
from wizard.facts import Facts, gather
from wizard.transport.base import Transport


def findings(facts: Facts) -> list[Finding]:
    """Every rule's findings over ``facts``, worst first."""
    return findings_in(host_view(facts))


def findings_in(view: HostView) -> list[Finding]:
    return worst_first(f for rule in RULES for f in rule.findings(view))


def read_audit_facts(transport: Transport) -> Facts:
    """Everything the audit needs, in one round trip."""
    return gather(transport, AUDIT_FACTS)


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
    "compare",
    "containers",
    "failing",
    "findings",
    "host_view",
    "read_audit_facts",
    "worst_first",
]
