"""The list of the host's snapshots, to pick one to restore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

if TYPE_CHECKING:
    from snapshots.store import SnapshotInfo


class SnapshotsScreen(Screen[str | None]):
    """The host's snapshots; returns the id to roll back to (previewed first), or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def __init__(self, host: str, snapshots: Sequence[SnapshotInfo]) -> None:
        super().__init__()
        self.sub_title = "snapshots"
        self.host = host
        self.snapshots = list(snapshots)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Snapshots on {self.host}", classes="title")
        if self.snapshots:
            yield Static(
                "Enter on a snapshot previews putting the host back to before it.", classes="hint"
            )
            yield DataTable(id="snapshot-table", cursor_type="row", zebra_stripes=True)
        else:
            yield Static(
                "No snapshots on this host yet: hostwiz takes one before each change.",
                classes="note",
            )
        yield Footer()

    def on_mount(self) -> None:
        if not self.snapshots:
            return
        from snapshots.store import shown_states

        states = shown_states(self.snapshots)
        table = self.query_one(DataTable)
        table.add_columns("Time", "Steps", "Files", "State", "Id")
        for info in reversed(self.snapshots):
            steps = ", ".join(info.steps) or info.reason
            state = f"damaged: {info.damaged}" if info.damaged else states[info.id]
            table.add_row(
                info.created or "?", steps, str(len(info.paths)), state, info.id, key=info.id
            )
        table.focus()

    @on(DataTable.RowSelected, "#snapshot-table")
    def picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_back(self) -> None:
        self.dismiss(None)
