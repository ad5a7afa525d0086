"""An audit as text (for a terminal) and as JSON (for scripts and CI)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wizard.audit.model import Finding, Severity, failing
from wizard.audit.table import container_table, table_as_json
from wizard.audit.view import HostView
from wizard.errors import HostwizError
from wizard.host.docker import DAEMON_JSON_PATH, ROOT_SOCKET

if TYPE_CHECKING:
    from wizard.audit.site import HostAudit
    from wizard.site.model import Site

WIDTH = 96


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {s.value: sum(1 for f in findings if f.severity is s) for s in Severity}


def fix_text(finding: Finding, host: str = "HOST") -> str:
    """What to do about a finding, in one line."""
    if finding.fix:
        text = f'the "{finding.fix}" step fixes it (hostwiz --host {host}, open that step)'
        return text + (f"; or by hand: {finding.manual}" if finding.manual else "")
    return (
        f"by hand: {finding.manual}" if finding.manual else "nothing to fix: for your information"
    )


def as_json(
    host: str, view: HostView, findings: Sequence[Finding], fail_on: Severity | None
) -> dict[str, Any]:
    return {
        "host": host,
        "fail_on": fail_on.value if fail_on else None,
        "failed": bool(fail_on and failing(findings, fail_on)),
        "counts": counts(findings),
        "containers": table_as_json(view),
        "findings": [f.as_dict() for f in findings],
        "engines": engines_as_json(view),
    }


def engines_as_json(view: HostView) -> list[dict[str, Any]]:
    """The Docker engines the audit asked: the system one, then each rootless one answering.
    The system engine's ``enabled_at_boot`` is read only beside a rootless engine (None: not
    read); ``containers`` is None when the engine could not be asked."""
    system: dict[str, Any] = {
        "name": "system",
        "rootless": False,
        "user": "root",
        "socket": ROOT_SOCKET,
        "answers": view.info.reachable,
        "running": view.dockerd.running,
        "enabled_at_boot": list(view.system_enabled) if view.rootless_engines else None,
        "config": DAEMON_JSON_PATH,
        "containers": None if view.containers is None else len(view.containers),
    }
    engines = [system]
    for engine in view.rootless_engines:
        engines.append({
            "name": engine.name,
            "rootless": True,
            "user": engine.user,
            "socket": engine.socket,
            "answers": True,
            "running": True,
            "enabled_at_boot": None,
            "config": engine.config_path or None,
            "containers": None if engine.containers is None else len(engine.containers),
        })  # fmt: skip
    return engines


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def as_text(host: str, view: HostView, findings: Sequence[Finding]) -> str:
    lines: list[str] = []
    summary = ", ".join(f"{n} {name}" for name, n in counts(findings).items() if n)
    lines.append(f"Audit of {host}: {summary or 'nothing found'}")
    table = container_table(view)
    if view.all_containers is not None:
        lines += ["", f"Running containers ({len(table)}), least privilege; ! marks a risk:"]
    for container, cells in table:
        engine = f", under {container.engine}" if container.engine else ""
        lines.append(f"  {container.name}  ({container.image}{engine})")
        for cell in cells:
            mark = "!" if cell.risky else " "
            lines.append(f"   {mark} {cell.column:<18} {cell.value}")
    for severity in Severity:
        group = [f for f in findings if f.severity is severity]
        if not group:
            continue
        lines += ["", f"{severity.value.upper()} ({len(group)})"]
        for finding in group:
            about = f"  [{finding.subject}]" if finding.subject else ""
            lines.append(f"  * {finding.title}{about}")
            lines += _wrap(f"Found: {finding.evidence}", "      ")
            lines += _wrap(f"Why it matters: {finding.meaning}", "      ")
            lines += _wrap(f"Fix: {fix_text(finding, host)}", "      ")
    return "\n".join(lines) + "\n"


# ---- a site: every host's audit, grouped by host --------------------------------------------


def site_as_json(
    site: Site, audits: Sequence[HostAudit], fail_on: Severity | None
) -> dict[str, Any]:
    """The site's audit for scripts: each host's report as for one host (``as_json``), with
    its name and roles in the site, or its ``error`` when it could not be audited."""
    hosts: list[dict[str, Any]] = []
    for audit in audits:
        about = {"name": audit.host.name, "target": audit.host.target,
                 "roles": list(audit.host.roles)}  # fmt: skip
        if audit.problem is not None or audit.view is None:
            problem = audit.problem or HostwizError("not audited")
            hosts.append({**about, "error": {"message": problem.message, "hint": problem.hint}})
        else:
            hosts.append({**about, **as_json(audit.label, audit.view, audit.findings, fail_on)})
    everything = [finding for audit in audits for finding in audit.findings]
    return {
        "site": site.name,
        "fail_on": fail_on.value if fail_on else None,
        "failed": bool(fail_on and failing(everything, fail_on)),
        "unaudited": [audit.host.name for audit in audits if audit.problem is not None],
        "counts": counts(everything),
        "hosts": hosts,
    }


def site_as_text(site: Site, audits: Sequence[HostAudit]) -> str:
    """A summary line per host, then each host's report (as for one host) under its name."""
    lines = [f"Audit of site {site.name} ({len(audits)} hosts):"]
    for audit in audits:
        if audit.problem is not None:
            state = "NOT AUDITED: " + audit.problem.message
        else:
            state = ", ".join(f"{n} {name}" for name, n in counts(audit.findings).items() if n)
        lines.append(f"  {audit.host.name:<16} {state or 'nothing found'}")
    text = "\n".join(lines) + "\n"
    for audit in audits:
        roles = f" [{', '.join(audit.host.roles)}]" if audit.host.roles else ""
        text += f"\n=== {audit.host.name}{roles} ({audit.host.target}) ===\n"
        if audit.problem is not None or audit.view is None:
            problem = audit.problem or HostwizError("not audited")
            text += "\n".join(_wrap(f"Could not audit it: {problem.message}", "  ")) + "\n"
            if problem.hint:
                text += "\n".join(_wrap(f"What to do: {problem.hint}", "  ")) + "\n"
            continue
        text += as_text(audit.host.target, audit.view, audit.findings)
    return text
