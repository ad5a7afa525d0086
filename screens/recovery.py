"""The recovery screen: a change that was interrupted, why new connections fail, ways back in."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static
from textual.worker import get_current_worker

from screens.errors import error_content, is_danger
from screens.start import host_name
from wizard.errors import HostwizError

if TYPE_CHECKING:
    from wizard.recovery import Fresh, HostChange, Interrupted, Lockout, Tried, WayIn
    from wizard.ways_in import WaysIn


@dataclass(frozen=True)
class RecoveryActions:
    """What the recovery screen may do on a connected host; each runs in a thread worker.

    In the app these are :mod:`wizard.recovery`'s functions bound to the open transport.
    """

    load: Callable[[], Sequence[Interrupted]]
    roll_back: Callable[[str], str]
    """Put the snapshot back now; returns what restore.sh said."""
    finish: Callable[[str], bool]
    """Keep the change: mark it confirmed; False when the host refused (already reverting)."""
    host_change: Callable[[], HostChange | None] | None = None
    """The host's own journal of its last change (:func:`wizard.recovery.read_host_change`)."""
    fresh: Callable[[], Fresh] | None = None
    """Try a brand-new connection (:func:`wizard.recovery.fresh_connection`): the open one
    proves nothing about new ones."""


class WaysInSearch(Protocol):
    """Looks for another way into the host (blocking; the recovery screen runs it in a thread
    worker). In the app: :func:`wizard.ways_in.look_for_ways_in` with the app's connection
    settings. ``say`` hears each try as it ends; ``stop`` returns True once the admin left."""

    def __call__(self, say: Callable[[Tried], None], stop: Callable[[], bool]) -> WaysIn | None: ...


def try_outcome(tried: Tried) -> str:
    """How a try ended, in a few words where the error's full message says no more (the
    problem box above already shows the full message for the configured way)."""
    message = tried.message
    briefly = {
        "refused": "refused (nothing listens there)",
        "no-answer": "no answer",
        "no-route": "no route to the host",
    }
    if tried.result in briefly:
        return briefly[tried.result]
    if tried.result == "login-refused":
        return "sshd answers there, but refused the login"
    if tried.result == "no-root":
        return f"logs in, but no root rights ({message.rstrip('.')})"
    return message


def way_text(way: WayIn) -> str:
    """``port 22 as admin with the key ~/.ssh/id_ed25519`` (keys under the home folder short)."""
    return way.describe().replace(f" {Path.home()}/", " ~/")


def tried_line(tried: Tried) -> Content:
    """One try of the search: a mark, the way, how it ended."""
    way = way_text(tried.way)
    works = tried.result == "works"
    return Content.assemble(
        ("✓ " if works else "✗ ", "bold $text-success" if works else "$text-error"),
        (way, "bold" if works else ""),
        ": ",
        (try_outcome(tried), "" if works else "$text-muted"),
    )


class PendingChange(Vertical):
    """One interrupted change on the host, with what can be done about it."""

    DEFAULT_CLASSES = "pending"

    def __init__(self, item: Interrupted, host: str) -> None:
        self.item = item
        self.snapshot_id = item.snapshot.id
        super().__init__(id=f"pending-{self.snapshot_id}")
        self.host = host

    def compose(self) -> ComposeResult:
        info = self.item.snapshot
        yield Static(
            Content.assemble(
                "Snapshot ",
                (info.id, "bold"),
                f" · {', '.join(info.steps) or info.reason} · started {info.created}",
                "\nLast state on the host: ",
                (info.state, "bold $text-warning"),
                f" · {len(info.paths)} file(s)",
            ),
            classes="pending-text",
        )
        if self.item.timer_running:
            deadline = self.item.deadline
            yield Static(
                "Its safety timer is still running: the host puts it back by itself at "
                f"{time.strftime('%H:%M:%S', time.localtime(deadline))} unless confirmed. "
                "Check again (t) after that."
                if deadline is not None
                else "Its safety timer is still running: the host puts it back by itself. "
                "Check again (t) once it has.",
                classes="pending-note",
            )
            return
        with Horizontal(classes="buttons pending-buttons"):
            yield Button(
                "Roll back", id=f"rollback-{self.snapshot_id}", variant="warning", compact=True
            )
            yield Button("Keep", id=f"finish-{self.snapshot_id}", variant="primary", compact=True)
            yield Button("Leave", id=f"leave-{self.snapshot_id}", compact=True)
        yield Static(
            "Roll back: put the files back as they were before it. Keep: the change is fine, "
            "mark it confirmed. Leave: decide later.",
            classes="pending-note",
        )
        yield Static("", classes="outcome")

    def on_mount(self) -> None:
        for outcome in self.query(".outcome"):
            outcome.display = False

    def show_outcome(self, text: Content | str, *, settled: bool) -> None:
        outcome = self.query_one(".outcome", Static)
        outcome.update(text)
        outcome.display = True
        if settled:
            for widget in self.query(".pending-buttons, .pending-note"):
                widget.display = False


SETTLED_OUTCOMES = ("rolled back", "kept", "left")


class RecoveryScreen(Screen[str | None]):
    """Recovery for one host; returns ``"retry"`` to connect again, ``"connected"`` to go on
    over the way in the search found (:attr:`ways_in`), None to go back.

    Always shown: what the journals say about the last change (the host's own once read over
    the connection, else this machine's, an estimate), its relative times recomputed every
    second. Without ``actions`` (hostwiz cannot get in): what to type at the VM console and,
    given a ``search``, the other ways in tried one by one (in a thread worker) with what
    worked; a way with root rights can be continued connected; when none works, why (how the
    connection failed, and whether hostwiz's last change can be the cause). With ``actions``
    (connected): whether a brand-new connection gets in (the open one proves nothing about new
    ones) and, when it does not, why; the interrupted changes on the host, each with Roll back /
    Keep / Leave; if listing them fails, the console instructions instead.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("t", "again", "Try again"),
    ]

    def __init__(
        self,
        host: str,
        *,
        practice: bool = False,
        problem: BaseException | None = None,
        actions: RecoveryActions | None = None,
        search: WaysInSearch | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.sub_title = "recovery"
        self.host = host
        self.practice = practice
        self.problem = problem
        self.actions = actions
        self.search = search if actions is None else None
        self.tried: list[Tried] = []
        """The tries of the search so far, in order."""
        self.searching = False
        self.ways_in: WaysIn | None = None
        """What the search found; its transport (if any) is the app's once this screen is
        dismissed with ``"connected"``, and to be closed otherwise."""
        self.leaving = False
        self.clock = clock
        self.explanation: list[str] = []
        self.deadline: float | None = None
        self.on_host: HostChange | None = None
        """The host's own journal of its last change, once read (connected only)."""
        self.host_read_at: float | None = None
        self.fresh: Fresh | None = None
        """How a brand-new connection fared (connected only), once tried."""
        self.lockout: Lockout | None = None
        """Why new connections fail, once known."""
        self.pending: list[Interrupted] | None = None
        """The interrupted changes once listed (None before, or when listing failed)."""
        self.outcomes: dict[str, str] = {}
        """What was done, by snapshot id: rolled back, kept, left, or failed."""
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="recovery"):
            yield Static(f"Recovery: {self.host}", classes="title")
            if self.problem is not None:
                yield Static(
                    error_content(self.problem),
                    id="problem",
                    classes="problem danger" if is_danger(self.problem) else "problem",
                )
            yield Static("What this machine's journal says", id="explain-title", classes="section")
            yield Static("…", id="explain", classes="recovery-text")
            if self.search is not None:
                yield Static("Other ways in", id="search-title", classes="section")
                yield Static(
                    "The ports SSH was on or moved to and the usual SSH ports, then other "
                    "users and your other keys where sshd answers:",
                    classes="recovery-text search-intro",
                )
                yield Vertical(id="tries", classes="recovery-text")
                yield Static("", id="search-outcome", classes="recovery-text")
                with Horizontal(id="found-buttons", classes="buttons"):
                    yield Button(
                        "Continue connected", id="continue", variant="primary", compact=True
                    )
            if self.actions is not None:
                if self.actions.fresh is not None:
                    yield Static("A new connection", classes="section")
                    yield Static("Trying a new connection…", id="fresh", classes="recovery-text")
                    yield Static("", id="lockout", classes="recovery-text")
                yield Static("Interrupted changes on the host", classes="section")
                yield Vertical(id="pending")
            if self.actions is None or self.actions.fresh is None:
                yield Static("", id="lockout", classes="recovery-text")
            yield Static("Get in at the console", id="console-title", classes="section")
            with Vertical(id="console", classes="recovery-text"):
                yield from self.console_lines()
        yield Footer()

    def console_lines(self, not_ours: bool = False, kind: str = "") -> ComposeResult:
        """console_instructions, each command on its own line (readable at 80 columns)."""
        from wizard.recovery import console_instructions

        first, *commands = console_instructions(
            host_name(self.host), self.practice, not_ours=not_ours, kind=kind
        )
        yield Static(first)
        for line in commands:
            command, _, comment = line.strip().partition("#")
            yield Static(command.strip(), classes="console-command")
            if comment.strip():
                yield Static(comment.strip(), classes="console-comment")
        if self.actions is None:
            yield Static("Then press t to connect again.", classes="console-then")

    @property
    def console_text(self) -> str:
        """What the console instructions say, as plain text."""
        return "\n".join(
            str(line.content) for line in self.query_one("#console").query(Static).results(Static)
        )

    def on_mount(self) -> None:
        self.explain()
        self.set_interval(1.0, self._tick)
        self.query_one("#lockout").display = False
        if self.actions is not None:
            self.query_one("#console-title").display = False
            self.query_one("#console").display = False
            self.load()
            self.read_host()
        if self.search is not None:
            self.query_one("#found-buttons").display = False
            if is_danger(self.problem):
                self._say_outcome(
                    Content.styled(
                        "Not looking for other ways in: the host key changed (above). Find "
                        "out why first.",
                        "bold $text-error",
                    )
                )
            else:
                self.searching = True
                self._say_outcome(Content.styled("Searching…", "$text-muted"))
                self.look_for_ways_in()

    def _tick(self) -> None:
        """Relative times ("in 20 s", "3 s ago") are recomputed, never left to go stale. Once
        the host's timer is due, the host's journal is read again (every 5 s) until it says
        what happened."""
        if self.deadline is not None:
            self.explain()
        change, now = self.on_host, self.clock()
        if (
            change is not None
            and change.state in ("pending", "reverting")
            and (change.deadline or now) <= now
            and now - (self.host_read_at or 0) >= 5
        ):
            self.read_host()

    @work(thread=True, exit_on_error=False, exclusive=True, group="explain")
    def explain(self) -> None:
        """Read the local journal (a file on this machine) and explain it, with the host's
        own journal when read."""
        from snapshots.local_journal import last_transaction
        from wizard.recovery import explain_last_change

        on_host = self.on_host
        try:
            lines = explain_last_change(self.host, self.clock(), on_host)
            entries = last_transaction(self.host)
        except OSError as error:
            lines, entries = [f"The local journal cannot be read: {error}."], []
        deadline = entries[-1].deadline if entries else None
        if on_host is not None:
            deadline = on_host.deadline
        self.app.call_from_thread(self._show_explanation, lines, deadline)

    @work(thread=True, exit_on_error=False, exclusive=True, group="host-journal")
    def read_host(self) -> None:
        """Read the host's journal, then try a new connection (once): what the open connection
        cannot tell."""
        assert self.actions is not None
        self.host_read_at = self.clock()
        change: HostChange | None = None
        if self.actions.host_change is not None:
            with contextlib.suppress(Exception):  # the explanation stays this machine's
                change = self.actions.host_change()
        self.app.call_from_thread(self._host_read, change)
        if self.actions.fresh is not None and self.fresh is None:
            try:
                fresh = self.actions.fresh()
            except Exception as error:
                from wizard.recovery import Fresh

                fresh = Fresh("failed", str(error))
            self.app.call_from_thread(self._show_fresh, fresh)

    def _host_read(self, change: HostChange | None) -> None:
        self.on_host = change
        self.explain()
        if self.fresh is not None and self.fresh.kind != "works":
            self._show_fresh(self.fresh)  # the host's state may have changed the verdict

    def _show_fresh(self, fresh: Fresh) -> None:
        from wizard.recovery import FAILURES, judge_lockout

        self.fresh = fresh
        box = self.query_one("#fresh", Static)
        if fresh.kind == "works":
            box.update(
                Content.assemble(
                    ("✓ A new connection gets in", "bold $text-success"),
                    f" (port {fresh.port})." if fresh.port else ".",
                    f"\nNot on port {fresh.failed_on}, where this connection came in: "
                    f"{fresh.message}."
                    if fresh.failed_on is not None
                    else "",
                )
            )
            return
        lockout = judge_lockout(
            self.host, fresh.kind, fresh.port, now=self.clock(), on_host=self.on_host
        )
        how = FAILURES.get(fresh.kind, fresh.kind)
        box.update(
            Content.assemble(
                (f"✗ A new connection fails ({how}): ", "bold $text-error"),
                fresh.message,
                "\nThis connection stays open, but nobody can log in anew until that is fixed.",
            )
        )
        self.call_after_refresh(self._show_lockout, lockout)

    async def _show_lockout(self, lockout: Lockout) -> None:
        """Why connections fail, then the console: what to look at, or what to restore."""
        self.lockout = lockout
        box = self.query_one("#lockout", Static)
        box.update(
            Content.assemble(
                ("What that means: ", "bold"),
                " ".join(lockout.lines),
            )
        )
        box.display = bool(lockout.lines)
        console = self.query_one("#console", Vertical)
        await console.remove_children()
        await console.mount_all(self.console_lines(lockout.not_ours, lockout.kind))
        self.query_one("#console-title").display = True
        console.display = True

    def _show_explanation(self, lines: list[str], deadline: float | None) -> None:
        self.explanation = lines
        self.deadline = deadline
        if self.on_host is not None:
            self.query_one("#explain-title", Static).update("What the host's journal says")
        self.query_one("#explain", Static).update("\n".join(lines))

    @work(thread=True, exit_on_error=False, exclusive=True, group="host")
    def load(self) -> None:
        assert self.actions is not None
        try:
            found = list(self.actions.load())
        except Exception as error:
            self.app.call_from_thread(self.call_later, self._show_load_failed, error)
        else:
            self.app.call_from_thread(self.call_later, self._show_pending, found)

    async def _show_pending(self, found: list[Interrupted]) -> None:
        self.outcomes = {}
        box = self.query_one("#pending", Vertical)
        await box.remove_children()  # gone before new ones with the same ids come
        box.loading = False
        self.pending = found
        if not found:
            await box.mount(
                Static(
                    "No interrupted change on the host: every change was confirmed or undone.",
                    classes="recovery-text ok-text",
                )
            )
            return
        await box.mount_all(PendingChange(item, self.host) for item in found)
        self.call_after_refresh(self._focus_first_button)

    def _focus_first_button(self) -> None:
        buttons = self.query(".pending-buttons Button")
        if buttons:
            buttons.first().focus(scroll_visible=False).scroll_visible(animate=False)

    async def _show_load_failed(self, error: BaseException) -> None:
        self.pending = None
        box = self.query_one("#pending", Vertical)
        await box.remove_children()
        box.loading = False
        await box.mount(Static(error_content(error), classes="problem"))
        self.query_one("#console-title").display = True
        self.query_one("#console").display = True

    @on(Button.Pressed, ".pending-buttons Button")
    def chosen(self, event: Button.Pressed) -> None:
        event.stop()
        what, _, snapshot_id = (event.button.id or "").partition("-")
        if self.outcomes.get(snapshot_id) in SETTLED_OUTCOMES:
            return
        if self.busy:
            self.notify("One thing at a time: wait for the host to answer.", severity="warning")
            return
        if what == "leave":
            self.outcomes[snapshot_id] = "left"
            self._item(snapshot_id).show_outcome(
                Content.assemble(
                    "Left as it is. Later: Recovery here, or ",
                    (f"hostwiz recover --host {self.host}", "bold"),
                ),
                settled=True,
            )
            return
        self.busy = True
        for button in self.query(".pending-buttons Button").results(Button):
            button.disabled = True
        self._item(snapshot_id).show_outcome(
            "Rolling back…" if what == "rollback" else "Marking it confirmed…", settled=False
        )
        self.act(what, snapshot_id)

    def _item(self, snapshot_id: str) -> PendingChange:
        return self.query_one(f"#pending-{snapshot_id}", PendingChange)

    @work(thread=True, exit_on_error=False, group="host")
    def act(self, what: str, snapshot_id: str) -> None:
        assert self.actions is not None
        try:
            if what == "rollback":
                said = self.actions.roll_back(snapshot_id)
                outcome: tuple[str, Content, bool] = (
                    "rolled back",
                    Content.assemble(
                        ("Rolled back: ", "bold $text-success"),
                        "the files are as they were before this change.",
                        Content.styled(f"\n{said[-600:]}" if said else "", "$text-muted"),
                    ),
                    True,
                )
            elif self.actions.finish(snapshot_id):
                outcome = (
                    "kept",
                    Content.assemble(
                        ("Kept: ", "bold $text-success"),
                        f"snapshot {snapshot_id} is marked confirmed; the change stays.",
                    ),
                    True,
                )
            else:
                outcome = (
                    "failed",
                    Content.styled(
                        "The host refused to mark it confirmed: it may already be putting "
                        "it back. Check again (t).",
                        "$text-error",
                    ),
                    False,
                )
        except Exception as error:
            outcome = ("failed", error_content(error), False)
        self.app.call_from_thread(self._acted, snapshot_id, *outcome)

    def _acted(self, snapshot_id: str, word: str, text: Content, settled: bool) -> None:
        self.busy = False
        self.outcomes[snapshot_id] = word
        self._item(snapshot_id).show_outcome(text, settled=settled)
        for button in self.query(".pending-buttons Button").results(Button):
            button.disabled = False
        self.explain()

    def action_again(self) -> None:
        if self.actions is None:
            self._leave("retry")
        elif not self.busy:
            self.query_one("#pending", Vertical).loading = True
            self.load()
            self.fresh = None  # a new connection and the host's journal, again
            self.read_host()

    def action_back(self) -> None:
        if self.busy:
            self.notify("Wait for the host to answer first.", severity="warning")
            return
        self._leave(None)

    def _leave(self, answer: str | None) -> None:
        self.leaving = True  # ends the search before its next try
        self.dismiss(answer)

    # ---- other ways in (not connected) --------------------------------------------------

    @work(thread=True, exit_on_error=False, exclusive=True, group="search")
    def look_for_ways_in(self) -> None:
        """Run the search; each try is shown as it ends. A transport found after the admin
        left is closed here."""
        assert self.search is not None
        worker = get_current_worker()

        def say(tried: Tried) -> None:
            with contextlib.suppress(RuntimeError):  # the app is closing
                self.app.call_from_thread(self._show_try, tried)

        def stop() -> bool:
            return self.leaving or worker.is_cancelled

        found: WaysIn | BaseException | None
        try:
            found = self.search(say, stop)
        except Exception as error:
            found = error
        try:
            kept = self.app.call_from_thread(self._show_found, found)
        except RuntimeError:
            kept = False
        transport = None if isinstance(found, BaseException | None) else found.transport
        if not kept and transport is not None:
            transport.close()

    def _show_try(self, tried: Tried) -> None:
        if self.leaving:
            return
        self.tried.append(tried)
        self.query_one("#tries", Vertical).mount(Static(tried_line(tried), classes="try"))

    def _say_outcome(self, text: Content) -> None:
        self.query_one("#search-outcome", Static).update(text)

    def _show_found(self, found: WaysIn | BaseException | None) -> bool:
        """Show what the search found; False when nobody is here to use it any more."""
        if self.leaving:
            return False
        self.searching = False
        if isinstance(found, BaseException):
            self._say_outcome(error_content(found))
            self.call_after_refresh(self._show_console)
            return True
        self.ways_in = found
        self._say_outcome(self._found_text(found))
        if found is not None and found.transport is not None:
            self.query_one("#console-title").display = False
            self.query_one("#console").display = False
            self.query_one("#found-buttons").display = True
            self.call_after_refresh(self._focus_continue)
        else:
            if found is not None and found.way is None:
                self.call_after_refresh(self._judge_lockout, found.configured_port)
            self.call_after_refresh(self._show_console)
        return True

    async def _judge_lockout(self, port: int) -> None:
        """No way in: why (how the configured way failed), and whether hostwiz's last change
        can be the cause (this machine's journal: the host's cannot be read)."""
        from wizard.recovery import failure_kind, judge_lockout

        problem = self.problem
        kind = failure_kind(problem) if isinstance(problem, HostwizError) else "failed"
        await self._show_lockout(judge_lockout(self.host, kind, port, now=self.clock()))
        self._show_console()

    def _found_text(self, found: WaysIn | None) -> Content:
        name = host_name(self.host)
        if found is None:
            return Content.assemble(
                (f"{name} does not resolve here: ", "bold $text-error"),
                "other ports, users or keys cannot help. Check the name (HostName in your "
                "ssh config) or your DNS; meanwhile, the console (below).",
            )
        way = found.way
        if way is None:
            return Content.assemble(
                ("None of them works. ", "bold $text-error"),
                "Get in at the console (below).",
            )
        parts = [
            Content.styled(f"What works: {way_text(way)}.", "bold $text-success")
            if found.transport is not None
            else Content.styled(f"What logs in: {way_text(way)}.", "bold $text-warning")
        ]
        if found.port_note():
            parts.append(Content(f"\n{found.port_note()}"))
        if found.transport is None:
            why = next((t.message for t in self.tried if t.way == way), "").rstrip(".")
            parts.append(
                Content(
                    f"\n{way.user} logs in, but hostwiz got no root rights that way ({why}). "
                    f"Connect as {way.user}@{name} (Escape, then type it) and give the sudo "
                    "password when asked."
                )
            )
        elif found.next_time():
            parts.append(
                Content.assemble("\nNext time, connect with: ", (found.next_time(), "bold"))
            )
        if found.transport is not None:
            parts.append(
                Content.styled(
                    "\nContinue connected: the changes that were interrupted, to roll back or "
                    "keep, then the steps.",
                    "$text-muted",
                )
            )
        return Content.assemble(*parts)

    def _focus_continue(self) -> None:
        self.query_one("#continue", Button).focus(scroll_visible=False).scroll_visible(
            animate=False
        )

    def _show_console(self) -> None:
        self.query_one("#recovery", VerticalScroll).scroll_end(animate=False)

    @on(Button.Pressed, "#continue")
    def continue_connected(self, event: Button.Pressed) -> None:
        event.stop()
        self._leave("connected")
