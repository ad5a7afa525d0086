"""The audit screen: where the host stands, worst first, each finding explained in plain words;
Enter on one that a hostwiz step fixes opens that step. Opened with ``a`` on the step list (or
"Audit" in the command palette); after the step, the step list says what the change fixed.

The findings and the running containers are two tabs (``f`` and ``c``, as the footer says), each
with the whole height: on one 80x24 screen the finding's panel left the containers' table only
its header. The panel scrolls itself (Tab reaches it) when a finding says more than it shows.

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
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from screens.step_list import short_summary

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


SEVERITY_WIDTH = 9


def about(finding: Finding) -> str:
    """A finding's title with what it is about (a container, a file), as the table and the
    panel name it: ``Container holds the Docker socket (web (admin's rootless engine))``."""
    return f"{finding.title} ({finding.subject})" if finding.subject else finding.title


def finding_cell(title: str, subject: str, width: int) -> str:
    """A finding as the table's Finding column shows it, at most ``width`` characters: whole
    when it fits, else cut with "…" (the panel under the table shows it whole). The subject
    is kept whole when it can be, else both are cut, the title keeping 3/5 of the width: two
    findings with the same title differ by their subject (which container, which file)."""
    whole = f"{title} ({subject})" if subject else title
    if len(whole) <= width:
        return whole
    if not subject:
        return short_summary(title, width)
    kept = short_summary(title, max(width - len(subject) - 3, min(len(title), width * 3 // 5)))
    room = width - len(kept) - 3  # " (" and ")"
    if room < 4:
        return short_summary(whole, width)
    return f"{kept} ({short_summary(subject, room)})"


def finding_width(screen_width: int, fixes: Sequence[str], findings: Sequence[str]) -> int:
    """How wide the Finding column may be for the table to fit ``screen_width`` columns (80
    included) without a horizontal scrollbar: the screen's padding, a vertical scrollbar, the
    Severity and Fixed by columns and each column's padding of 1 on both sides come off."""
    fixed_by = max([len("Fixed by"), *(len(fix) for fix in fixes)])
    spare = screen_width - 2 - 2 - (SEVERITY_WIDTH + 2) - (fixed_by + 2) - 2
    return max(len("Finding"), min(spare, max((len(text) for text in findings), default=0)))


class DetailBox(VerticalScroll):
    """The selected finding's panel: it scrolls when the finding says more than it shows, and
    only then is it a stop for Tab (its arrows scroll it)."""

    def allow_focus(self) -> bool:
        return self.max_scroll_y > 0


class AuditScreen(Screen[str | None]):
    """Findings grouped by severity with their explanation; returns ``step:NAME`` to open the
    step that fixes the selected finding, or None (back to the step list)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("f", "tab('findings')", "Findings"),
        Binding("c", "tab('containers')", "Containers"),
    ]
    DEFAULT_CSS = """
    AuditScreen #audit { height: 1fr; padding: 0 1; }
    AuditScreen #audit-tabs, AuditScreen #audit-tabs ContentSwitcher,
    AuditScreen #audit-tabs TabPane { height: 1fr; }
    AuditScreen #audit-tabs TabPane { padding: 0; }
    AuditScreen #finding-table { height: 1fr; min-height: 6; }
    AuditScreen #detail-box { height: auto; max-height: 60%; padding: 0 1;
                              border: round $primary; }
    AuditScreen #detail-box:focus { border: round $accent; }
    AuditScreen #container-table { height: 1fr; }
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
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="audit"):
            yield Static(self.summary(), classes="intro")
            with TabbedContent(id="audit-tabs"):
                with TabPane(f"Findings ({len(self.findings)})", id="findings"):
                    yield DataTable(id="finding-table", cursor_type="row")
                    with DetailBox(id="detail-box"):
                        yield Static("", id="finding-detail")
                if self.containers:
                    with TabPane(f"Running containers ({len(self.containers)})", id="containers"):
                        yield Static(
                            "Least privilege of each; ! marks a risk, explained under Findings.",
                            classes="hint",
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

    def fix_of(self, finding: Finding) -> str:
        """The "Fixed by" column: the step's title, "by hand", or "-" (nothing to fix)."""
        if finding.fix:
            return self.titles.get(finding.fix, finding.fix)
        return "by hand" if finding.manual else "-"

    def finding_width(self) -> int:
        fixes = [self.fix_of(finding) for finding in self.findings]
        return finding_width(self.app.size.width, fixes, [about(f) for f in self.findings])

    def on_mount(self) -> None:
        table = self.query_one("#finding-table", DataTable)
        self.fill_findings(self.finding_width())
        if self.containers:
            rows = self.query_one("#container-table", DataTable)
            rows.add_column("Container")
            # Styled cells are not measured for the column width: give each room for its text.
            for index, cell in enumerate(self.containers[0][1]):
                values = [len(cells[index].value) + 2 for _, cells in self.containers]
                rows.add_column(cell.column, width=max(len(cell.column), *values))
            for container, cells in self.containers:
                # A rootless engine's container says whose engine runs it, as its findings
                # do (two engines may each run a container called web).
                rows.add_row(container.label, *(self._cell(cell) for cell in cells))
        table.focus()
        self.show(self.findings[0] if self.findings else None)

    def fill_findings(self, width: int) -> None:
        """(Re)build the findings table with a Finding column ``width`` wide, so that it never
        scrolls sideways: a long finding is cut with "…" (the panel below shows it whole),
        never the step that fixes it. The cursor stays on its row."""
        self._width = width
        table = self.query_one("#finding-table", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        table.add_column("Severity", width=SEVERITY_WIDTH)
        table.add_column("Fixed by")
        table.add_column("Finding", width=width)
        for finding in self.findings:
            severity = finding.severity.value
            table.add_row(
                Content.styled(severity, SEVERITY_STYLES[severity]),
                self.fix_of(finding),
                finding_cell(finding.title, finding.subject, width),
                key=f"{finding.id}|{finding.subject}",
            )
        table.move_cursor(row=row, animate=False)

    def on_resize(self) -> None:
        """Cut the findings again for the new width."""
        if self._width and self.finding_width() != self._width:
            self.fill_findings(self.finding_width())

    @staticmethod
    def _cell(cell: Cell) -> Content:
        if cell.risky:
            return Content.styled(f"! {cell.value}", "bold $text-error")
        return Content(cell.value)

    def show(self, finding: Finding | None) -> None:
        detail = self.query_one("#finding-detail", Static)
        self.query_one("#detail-box", DetailBox).scroll_home(animate=False)
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
                Content.styled(about(finding), "bold"),
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers the tab that is not shown (none without running containers)."""
        if action == "tab":
            tabs = self.query_one("#audit-tabs", TabbedContent)
            return bool(self.containers) and parameters[0] != tabs.active
        return True

    def action_tab(self, pane: str) -> None:
        """Show the findings or the running containers, the cursor in its table."""
        if pane == "containers" and not self.containers:
            return
        self.query_one("#audit-tabs", TabbedContent).active = pane
        table_id = "#finding-table" if pane == "findings" else "#container-table"
        self.query_one(table_id, DataTable).focus()

    @on(TabbedContent.TabActivated, "#audit-tabs")
    def tab_shown(self) -> None:
        self.refresh_bindings()

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
        reason = (
            f"Opened from the audit for: {about(screen.chosen)}. Found: {screen.chosen.evidence}"
        )
    note = await app.run_step(transport, choice.removeprefix("step:"), reason=reason)
    if not note:
        return ""
    after = await app.blocking(f"Auditing {host} again…", partial(audit_again, transport, view))
    diff = change(view, after)
    return "\n".join([note, "Audit, before → after:", *diff.lines()])
