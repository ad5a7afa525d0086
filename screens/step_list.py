"""The list of steps, with each step's status and a short summary of its answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static


@dataclass(frozen=True)
class StepRow:
    """A line of the step list."""

    name: str
    title: str
    status: str
    summary: str


STATUS_STYLES = {
    "done": "$text-success",
    "not done": "$text-warning",
    "drifted": "bold $text-error",
    "unknown": "$text-muted",
}


SUMMARY_WIDTH = 48


def short_summary(summary: str) -> str:
    """A summary as the step table shows it: whole when short, else its start and "…"."""
    if len(summary) <= SUMMARY_WIDTH:
        return summary
    return summary[: SUMMARY_WIDTH - 1].rstrip(" ,;:") + "…"


class StepListScreen(Screen[str]):
    """The steps for one host with their status; returns what to do next.

    Results: ``step:NAME``, ``snapshots``, ``recover``, ``save``, ``refresh``, ``host`` or
    ``quit``.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "choose('audit')", "Audit"),
        Binding("s", "choose('snapshots')", "Snapshots"),
        Binding("c", "choose('recover')", "Recovery"),
        Binding("w", "choose('save')", "Save preset"),
        Binding("r", "choose('refresh')", "Refresh", show=False),
        Binding("h", "choose('host')", "Other host", show=False),
        Binding("escape", "choose('quit')", "Quit"),
    ]

    def __init__(
        self, host: str, rows: Sequence[StepRow], *, preset: str = "", note: str = ""
    ) -> None:
        super().__init__()
        self.sub_title = host
        self.host = host
        self.rows = list(rows)
        self.preset = preset
        self.note = note

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="steps"):
            yield Static(
                Content.assemble(
                    "Host ", (self.host, "bold"), "  ·  answers from ", (self.preset, "bold")
                ),
                classes="intro",
            )
            yield DataTable(id="step-table", cursor_type="row", zebra_stripes=True)
            detail = Static("", id="step-detail", classes="note")
            detail.display = False
            yield detail
            yield Static(
                "Enter opens a step: its questions, then a preview of exactly what would change.",
                classes="hint",
            )
            if self.note:
                yield Static(self.note, id="note", classes="note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Step")
        # Styled cells are not measured for the column width: make room for "not done".
        table.add_column("Status", width=max(9, *(len(row.status) for row in self.rows)))
        table.add_column("Details")
        for row in self.rows:
            status = Content.styled(row.status, STATUS_STYLES.get(row.status, ""))
            table.add_row(row.title, status, short_summary(row.summary), key=row.name)
        table.focus()

    @on(DataTable.RowHighlighted, "#step-table")
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted step's whole summary, wrapped (the table shows its start)."""
        row = next((r for r in self.rows if r.name == event.row_key.value), None)
        detail = self.query_one("#step-detail", Static)
        if row is None or short_summary(row.summary) == row.summary:
            detail.display = False
            return
        detail.update(Content.assemble((f"{row.title}: ", "bold"), row.summary))
        detail.display = True

    @on(DataTable.RowSelected, "#step-table")
    def open_step(self, event: DataTable.RowSelected) -> None:
        self.dismiss(f"step:{event.row_key.value}")

    def action_choose(self, what: str) -> None:
        self.dismiss(what)
