"""Auditing a site: every host at once, one round trip each (``hostwiz audit --site FILE``,
or repeated ``--host``).

Each host is connected to, read (:data:`~wizard.audit.view.AUDIT_FACTS`, one round trip) and
let go in a thread of its own (a bounded pool, as a site's apply). A host that cannot be
audited (no connection, the read failed) is reported with the reason, and the others still
are: an audit never stops at the first host that is down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wizard.audit.model import Finding, Severity, failing
from wizard.audit.view import HostView, host_view
from wizard.errors import HostwizError
from wizard.site.model import Site, SiteHost
from wizard.site.plan import in_parallel
from wizard.transport.base import Transport


@dataclass(frozen=True)
class HostAudit:
    """One host's audit, or why it could not be audited (``problem``)."""

    host: SiteHost
    label: str
    """How the connection names the host (``root@web1``); the target when none opened."""
    view: HostView | None = None
    findings: tuple[Finding, ...] = ()
    problem: HostwizError | None = None


Connect = Callable[[SiteHost], Transport]
"""Opens a connection to one host of the site (it is closed after its read)."""


def audit_hosts(site: Site, connect: Connect) -> list[HostAudit]:
    """Every host of ``site`` audited at the same time, in the site's order."""
    from wizard.audit import findings_in, read_audit_facts

    def one(host: SiteHost) -> HostAudit:
        try:
            transport = connect(host)
        except HostwizError as error:
            return HostAudit(host, host.target, problem=error)
        try:
            facts = read_audit_facts(transport)
        except HostwizError as error:
            return HostAudit(host, transport.host_label, problem=error)
        finally:
            transport.close()
        view = host_view(facts)
        return HostAudit(host, transport.host_label, view, tuple(findings_in(view)))

    return list(in_parallel({host.name: host for host in site.hosts}, one).values())


def failing_hosts(audits: Iterable[HostAudit], threshold: Severity) -> list[HostAudit]:
    """The hosts with a finding at least as severe as ``threshold``."""
    return [audit for audit in audits if failing(audit.findings, threshold)]


def unaudited(audits: Sequence[HostAudit]) -> list[HostAudit]:
    return [audit for audit in audits if audit.problem is not None]
