"""An audit as text (for a terminal) and as JSON (for scripts and CI)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from wizard.audit.model import Finding, Severity, failing
from wizard.audit.table import container_table, table_as_json
from wizard.audit.view import HostView

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
    }


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def as_text(host: str, view: HostView, findings: Sequence[Finding]) -> str:
    lines: list[str] = []
    summary = ", ".join(f"{n} {name}" for name, n in counts(findings).items() if n)
    lines.append(f"Audit of {host}: {summary or 'nothing found'}")
    table = container_table(view)
    if view.containers is not None:
        lines += ["", f"Running containers ({len(table)}), least privilege; ! marks a risk:"]
    for container, cells in table:
        lines.append(f"  {container.name}  ({container.image})")
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
