"""The list of the host's snapshots, to pick one to restore; and a site's last change, to put
every host back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from screens.step_list import short_summary

if TYPE_CHECKING:
    from snapshots.store import SnapshotInfo
    from wizard.site.apply import HostRollback


MADE_WIDTH = len("2024-05-02 09:00:00")
FILES_WIDTH = len("Files")
LISTED_PATHS = 6
"""The detail pane lists this many of a snapshot's files, then says how many more."""


def made(created: str) -> str:
    """When a snapshot was made, as the "Made (UTC)" column shows it (meta.json's
    ``2024-05-02T09:00:00Z``: the same time, easier to read)."""
    return created.replace("T", " ").removesuffix("Z") if created else "?"


def column_widths(
    screen_width: int, steps: Sequence[str], states: Sequence[str]
) -> tuple[int, int]:
    """How wide the Steps and State columns may be for the table to fit ``screen_width``
    columns (80 included) without a horizontal scrollbar: the table's margin, a vertical
    scrollbar, the Made and Files columns and each column's padding of 1 on both sides come
    off. State gets up to a third of the rest, Steps what is left; each no wider than needed."""
    spare = screen_width - 2 - 2 - (MADE_WIDTH + 2) - (FILES_WIDTH + 2) - 2 - 2
    state = min(max((len(text) for text in states), default=5), max(9, spare // 3))
    state = max(state, len("State"))
    step = min(max((len(text) for text in steps), default=5), max(8, spare - state))
    return max(step, len("Steps")), state


class SnapshotsScreen(Screen[str | None]):
    """The host's snapshots; returns the id to roll back to (previewed first), or None.

    The table fits an 80-column terminal: long steps and states are cut with "…", and the
    highlighted snapshot's id, steps, files and state are shown whole in a pane under it.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def __init__(self, host: str, snapshots: Sequence[SnapshotInfo]) -> None:
        super().__init__()
        self.sub_title = "snapshots"
        self.host = host
        self.snapshots = list(snapshots)
        self.by_id = {info.id: info for info in self.snapshots}
        self.steps: dict[str, str] = {}
        """Snapshot id -> its steps in words (titles, or what a rollback recorded)."""
        self.states: dict[str, str] = {}
        """Snapshot id -> its state in words (``rolled back``, ``damaged: …``)."""
        self._widths = (0, 0)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Snapshots on {self.host}", classes="title")
        if self.snapshots:
            yield Static(
                "Enter on a snapshot previews putting the host back to before it.", classes="hint"
            )
            yield DataTable(id="snapshot-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="snapshot-detail")
        else:
            yield Static(
                "No snapshots on this host yet: hostwiz takes one before each change.",
                classes="note",
            )
        yield Footer()

    def on_mount(self) -> None:
        if not self.snapshots:
            return
        from snapshots.store import shown_states, state_words
        from wizard.steps import step_title

        shown = shown_states(self.snapshots)
        for info in self.snapshots:
            self.steps[info.id] = ", ".join(step_title(name) for name in info.steps) or info.reason
            words = state_words(shown[info.id], info.actions)
            self.states[info.id] = f"damaged: {info.damaged}" if info.damaged else words
        self.fill(self.widths())
        self.query_one(DataTable).focus()

    def widths(self) -> tuple[int, int]:
        return column_widths(
            self.app.size.width, list(self.steps.values()), list(self.states.values())
        )

    def fill(self, widths: tuple[int, int]) -> None:
        """(Re)build the table with the Steps and State columns ``widths`` wide; the cursor
        stays on its row."""
        self._widths = steps, states = widths
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        table.add_column("Made (UTC)", width=MADE_WIDTH)
        table.add_column("Steps", width=steps)
        table.add_column("Files", width=FILES_WIDTH)
        table.add_column("State", width=states)
        for info in reversed(self.snapshots):
            table.add_row(
                made(info.created),
                short_summary(self.steps[info.id], steps),
                str(len(info.paths)),
                short_summary(self.states[info.id], states),
                key=info.id,
            )
        table.move_cursor(row=row, animate=False)

    def on_resize(self) -> None:
        """Cut the steps and states again for the new width (the table must fit without
        scrolling sideways)."""
        if self.snapshots and self._widths[0] and self.widths() != self._widths:
            self.fill(self.widths())

    def detail(self, snapshot_id: str) -> Content:
        """Everything about one snapshot, whole: its id (for ``hostwiz rollback``), when it
        was made, its steps, the files it saved and its state."""
        info = self.by_id[snapshot_id]
        when = f"{made(info.created)} UTC" if info.created else "at an unknown time"
        paths = list(info.paths[:LISTED_PATHS])
        if len(info.paths) > LISTED_PATHS:
            paths.append(f"and {len(info.paths) - LISTED_PATHS} more")
        return Content.assemble(
            ("Snapshot ", "bold"), info.id, f", made {when}\n",
            ("Steps: ", "bold"), self.steps[info.id], "\n",
            (f"Files ({len(info.paths)}): ", "bold"), ", ".join(paths) or "none", "\n",
            ("State: ", "bold"), self.states[info.id],
        )  # fmt: skip

    @on(DataTable.RowHighlighted, "#snapshot-table")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        snapshot_id = str(event.row_key.value)
        if snapshot_id in self.by_id:
            self.query_one("#snapshot-detail", Static).update(self.detail(snapshot_id))

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
