"""The audit screen: where the host stands, worst first, each finding explained in plain words;
Enter on one that a hostwiz step fixes opens that step. Opened with ``a`` on the step list (or
"Audit" in the command palette); after the step, the step list says what the change fixed.

Like the other screens it gets plain data (findings and the least-privilege table) and never
talks to the host; :func:`audit_flow` does the reading, in the app's thread worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

if TYPE_CHECKING:
    from screens.app import HostwizApp
    from wizard.audit import Container, Finding
    from wizard.audit.table import Cell
    from wizard.transport.ssh import SshTransport

SEVERITY_STYLES = {
    "critical": "bold reverse $text-error",
    "high": "bold $text-error",
    "medium": "bold $text-warning",
    "low": "$text-primary",
    "info": "$text-muted",
}


class AuditScreen(Screen[str | None]):
    """Findings grouped by severity with their explanation; returns ``step:NAME`` to open the
    step that fixes the selected finding, or None (back to the step list)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]
    DEFAULT_CSS = """
    AuditScreen #audit { height: 1fr; padding: 0 1; }
    AuditScreen #finding-table { height: 1fr; min-height: 6; }
    AuditScreen #finding-detail { height: auto; max-height: 12; padding: 0 1;
                                  border: round $primary; }
    AuditScreen #container-table { height: auto; max-height: 10; }
    """

    def __init__(
        self,
        host: str,
        findings: Sequence[Finding],
        containers: Sequence[tuple[Container, Sequence[Cell]]] = (),
        *,
        titles: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.sub_title = f"audit of {host}"
        self.host = host
        self.findings = list(findings)
        self.containers = list(containers)
        self.titles = dict(titles or {})
        """Step name -> title, for the "Fixed by" column."""
        self.by_key = {f"{f.id}|{f.subject}": f for f in self.findings}
        self.chosen: Finding | None = None
        """The finding whose step the admin opened (Enter)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="audit"):
            yield Static(self.summary(), classes="intro")
            yield DataTable(id="finding-table", cursor_type="row")
            yield Static("", id="finding-detail")
            if self.containers:
                yield Static(
                    "Running containers (! marks a risk, explained above):", classes="hint"
                )
                yield DataTable(id="container-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def summary(self) -> Content:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
        parts: list[Content | str] = ["Audit of ", Content.styled(self.host, "bold"), ": "]
        if not counts:
            parts.append("nothing found.")
        for index, (name, count) in enumerate(counts.items()):
            parts += [
                ", " if index else "",
                Content.styled(f"{count} {name}", SEVERITY_STYLES[name]),
            ]
        parts.append("  ·  Enter on a finding opens the step that fixes it.")
        return Content.assemble(*parts)

    def on_mount(self) -> None:
        table = self.query_one("#finding-table", DataTable)
        # "Fixed by" before the finding: at 80 columns a long finding is cut at its end (the
        # panel below shows it whole), never the step that fixes it.
        table.add_column("Severity", width=9)
        table.add_column("Fixed by")
        table.add_column("Finding")
        for finding in self.findings:
            severity = finding.severity.value
            fix = self.titles.get(finding.fix, finding.fix) if finding.fix else "by hand"
            if not finding.fix and not finding.manual:
                fix = "-"
            about = f" ({finding.subject})" if finding.subject else ""
            table.add_row(
                Content.styled(severity, SEVERITY_STYLES[severity]),
                fix,
                finding.title + about,
                key=f"{finding.id}|{finding.subject}",
            )
        if self.containers:
            rows = self.query_one("#container-table", DataTable)
            rows.add_column("Container")
            # Styled cells are not measured for the column width: give each room for its text.
            for index, cell in enumerate(self.containers[0][1]):
                values = [len(cells[index].value) + 2 for _, cells in self.containers]
                rows.add_column(cell.column, width=max(len(cell.column), *values))
            for container, cells in self.containers:
                rows.add_row(container.name, *(self._cell(cell) for cell in cells))
        table.focus()
        self.show(self.findings[0] if self.findings else None)

    @staticmethod
    def _cell(cell: Cell) -> Content:
        if cell.risky:
            return Content.styled(f"! {cell.value}", "bold $text-error")
        return Content(cell.value)

    def show(self, finding: Finding | None) -> None:
        detail = self.query_one("#finding-detail", Static)
        if finding is None:
            detail.update("No findings: this host is as hostwiz would leave it.")
            return
        if finding.fix:
            fix = Content.assemble(
                "Enter opens the ",
                Content.styled(self.titles.get(finding.fix, finding.fix), "bold"),
                " step, which fixes it.",
                f" Or by hand: {finding.manual}" if finding.manual else "",
            )
        elif finding.manual:
            fix = Content(f"No hostwiz step fixes this. By hand: {finding.manual}")
        else:
            fix = Content("For your information; nothing to fix.")
        detail.update(
            Content.assemble(
                Content.styled(finding.title, "bold"),
                "\n",
                Content.styled("Found: ", "bold"),
                finding.evidence,
                "\n",
                Content.styled("Why it matters: ", "bold"),
                finding.meaning,
                "\n",
                Content.styled("Fix: ", "bold"),
                fix,
            )
        )

    def selected(self) -> Finding | None:
        table = self.query_one("#finding-table", DataTable)
        if not self.findings:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.by_key.get(str(key))

    @on(DataTable.RowHighlighted, "#finding-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show(self.by_key.get(str(event.row_key.value)))

    @on(DataTable.RowSelected, "#finding-table")
    def open_fix(self, event: DataTable.RowSelected) -> None:
        finding = self.by_key.get(str(event.row_key.value))
        if finding is None:
            return
        if finding.fix:
            self.chosen = finding
            self.dismiss(f"step:{finding.fix}")
        elif finding.manual:
            self.notify(f"No hostwiz step fixes this. By hand: {finding.manual}", timeout=10)
        else:
            self.notify("For your information; nothing to fix.")

    def action_back(self) -> None:
        self.dismiss(None)


async def audit_flow(app: HostwizApp, transport: SshTransport) -> str:
    """Audit → (step that fixes a finding → audit again); returns a note for the step list
    saying which findings the change fixed (and any it brought)."""
    from wizard.audit import audit_again, change, findings_in, host_view, read_audit_facts
    from wizard.audit.table import container_table

    host = transport.host_label
    view = host_view(await app.blocking(f"Auditing {host}…", partial(read_audit_facts, transport)))
    before = findings_in(view)
    screen = AuditScreen(host, before, container_table(view), titles=dict(app.step_titles()))
    choice = await app.push_screen_wait(screen)
    if not choice:
        return ""
    reason = ""
    if screen.chosen is not None:
        about = f" ({screen.chosen.subject})" if screen.chosen.subject else ""
        reason = (
            f"Opened from the audit for: {screen.chosen.title}{about}. "
            f"Found: {screen.chosen.evidence}"
        )
    note = await app.run_step(transport, choice.removeprefix("step:"), reason=reason)
    if not note:
        return ""
    after = await app.blocking(f"Auditing {host} again…", partial(audit_again, transport, view))
    diff = change(view, after)
    return "\n".join([note, "Audit, before → after:", *diff.lines()])
