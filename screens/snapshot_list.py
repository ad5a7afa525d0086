"""The list of the host's snapshots, to pick one to restore; and a site's last change, to put
every host back."""

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
    from wizard.site.apply import HostRollback


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
        from wizard.steps import step_title

        states = shown_states(self.snapshots)
        table = self.query_one(DataTable)
        table.add_columns("Time", "Steps", "Files", "State", "Id")
        for info in reversed(self.snapshots):
            steps = ", ".join(step_title(name) for name in info.steps) or info.reason
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


class SiteSnapshotsScreen(Screen[bool]):
    """A site's last change, host by host (the snapshot each host took), and the site
    journal's story; Enter previews putting every host back. True: preview that; False: back.

    The plans come from :func:`wizard.site.apply.site_rollback_plans` (``rollback --site``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "roll_back", "Roll back the site"),
    ]

    def __init__(self, site: str, plans: Sequence[HostRollback], story: Sequence[str]) -> None:
        super().__init__()
        self.sub_title = "site snapshots"
        self.site = site
        self.plans = list(plans)
        self.story = list(story)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Site {self.site}: its last change", classes="title")
        if self.plans:
            yield Static(
                "Enter (or r) previews putting every host back to before it, newest first, "
                "each from its own snapshot.",
                classes="hint",
            )
            yield DataTable(id="site-snapshot-table", cursor_type="row", zebra_stripes=True)
        else:
            yield Static(
                f"No change of site {self.site} to roll back: none is recorded on this "
                "machine, or it was put back already.",
                classes="note",
            )
        if self.story:
            yield Static("\n".join(self.story), id="site-story", classes="note")
        yield Footer()

    def on_mount(self) -> None:
        if not self.plans:
            return
        table = self.query_one(DataTable)
        table.add_columns("Host", "Stage", "Snapshot", "Putting it back")
        for item in self.plans:
            changes = len(item.plan.actions)
            undo = f"{changes} change(s)" if changes else "nothing: as before already"
            table.add_row(item.host, str(item.stage), item.snapshot_id, undo)
        table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "roll_back" and not self.plans:
            return None
        return True

    @on(DataTable.RowSelected, "#site-snapshot-table")
    def picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(True)

    def action_roll_back(self) -> None:
        if self.plans:
            self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)
