"""The list of steps, with each step's status and a short summary of its answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
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
    "off": "$text-muted",
    "drifted": "bold $text-error",
    "unknown": "$text-muted",
}


SUMMARY_WIDTH = 48
"""The Details column at most (wide terminals); narrower ones get what is left of the width."""


def short_summary(summary: str, width: int = SUMMARY_WIDTH) -> str:
    """A summary as the step table shows it: whole when short, else its start and "…"."""
    if len(summary) <= width:
        return summary
    return summary[: width - 1].rstrip(" ,;:") + "…"


def summary_width(screen_width: int, rows: Sequence[StepRow]) -> int:
    """How wide the Details column may be for the table to fit ``screen_width`` columns
    (80×24 included) without a horizontal scrollbar: the screen's padding, the other two
    columns and each column's padding of 1 on both sides come off."""
    title = max((len(row.title) for row in rows), default=4)
    status = max(9, *(len(row.status) for row in rows)) if rows else 9
    spare = screen_width - 2 - (title + 2) - (status + 2) - 2 - 1
    return max(16, min(SUMMARY_WIDTH, spare))


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
        self,
        host: str,
        rows: Sequence[StepRow],
        *,
        preset: str = "",
        note: str = "",
        cursor: str | None = None,
        edited: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.sub_title = host
        self.host = host
        self.rows = list(rows)
        self.preset = preset
        self.note = note
        self.cursor = cursor
        self.edited = list(edited)
        """Titles of the steps whose answers were changed from the preset's in this session."""
        """The step to start on (the one just left), else the first."""
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="steps"):
            yield Static(self.intro(), classes="intro", id="intro")
            yield DataTable(id="step-table", cursor_type="row", zebra_stripes=True)
            detail = Static("", id="step-detail", classes="note")
            detail.display = False
            yield detail
            yield Static(
                "Enter opens a step: its questions, then a preview of exactly what would change.",
                classes="hint",
            )
            if self.note:
                # A long note (what a change fixed, by finding) scrolls instead of running
                # off the bottom of a small terminal.
                with VerticalScroll(id="note-box", classes="note"):
                    yield Static(self.note, id="note")
        yield Footer()

    def intro(self) -> Content:
        """Which host, and where the answers come from (and which were changed here)."""
        parts: list[Content | str | tuple[str, str]] = [
            "Host ", (self.host, "bold"), "  ·  answers from ", (self.preset, "bold")
        ]  # fmt: skip
        if self.edited:
            parts += [
                ", changed here for ",
                (", ".join(self.edited), "bold"),
                " (kept until you quit; w saves them)",
            ]
        return Content.assemble(*parts)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Step")
        # Styled cells are not measured for the column width: make room for "not done".
        table.add_column("Status", width=max(9, *(len(row.status) for row in self.rows)))
        table.add_column("Details", key="details")
        self._width = summary_width(self.app.size.width, self.rows)
        for row in self.rows:
            status = Content.styled(row.status, STATUS_STYLES.get(row.status, ""))
            summary = short_summary(row.summary, self._width)
            table.add_row(row.title, status, summary, key=row.name)
        names = [row.name for row in self.rows]
        if self.cursor in names:
            table.move_cursor(row=names.index(self.cursor), animate=False)
        table.focus()
        self.call_after_refresh(self.fit_note)

    def fit_note(self) -> None:
        """Give the note what height the rest leaves (it scrolls inside), so that it never
        runs off the bottom of the screen."""
        notes = self.query("#note-box")
        if not notes:
            return
        note = notes.first()
        steps = self.query_one("#steps")
        used = sum(
            child.region.height + child.styles.margin.top + child.styles.margin.bottom
            for child in steps.children
            if child is not note and child.display
        )
        room = steps.content_size.height - used - note.styles.margin.top
        note.styles.max_height = max(3, room)

    def on_resize(self) -> None:
        """Re-cut the summaries for the new width (the table must fit without scrolling)."""
        self.call_after_refresh(self.fit_note)
        width = summary_width(self.app.size.width, self.rows)
        if not self._width or width == self._width:
            return
        self._width = width
        table = self.query_one(DataTable)
        for row in self.rows:
            table.update_cell(row.name, "details", short_summary(row.summary, width))

    @on(DataTable.RowHighlighted, "#step-table")
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted step's whole summary, wrapped (the table shows its start)."""
        row = next((r for r in self.rows if r.name == event.row_key.value), None)
        detail = self.query_one("#step-detail", Static)
        width = self._width or SUMMARY_WIDTH
        if row is None or short_summary(row.summary, width) == row.summary:
            detail.display = False
            self.call_after_refresh(self.fit_note)
            return
        detail.update(Content.assemble((f"{row.title}: ", "bold"), row.summary))
        detail.display = True
        self.call_after_refresh(self.fit_note)

    @on(DataTable.RowSelected, "#step-table")
    def open_step(self, event: DataTable.RowSelected) -> None:
        self.dismiss(f"step:{event.row_key.value}")

    def action_choose(self, what: str) -> None:
        self.dismiss(what)
