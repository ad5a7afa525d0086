"""The apply screen: runs the changeset in a thread worker and shows its progress and result."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Static

from screens.errors import error_content
from screens.widgets import ProgressLog

if TYPE_CHECKING:
    from wizard.transaction import ApplyResult, Event, Progress


ARMED_SECONDS = re.compile(r"\bin (\d+) s\b")


def clock_time(epoch: float) -> str:
    """A wall-clock time as the admin reads it on this machine (HH:MM:SS)."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def journal_deadline(host: str, since: float) -> float | None:
    """When the host's safety timer fires for the latest change made since ``since``.

    The local journal records it (the same time ``hostwiz recover`` explains later); None
    when it holds nothing that recent.
    """
    from snapshots.local_journal import last_transaction

    try:
        entries = last_transaction(host)
    except OSError:
        return None
    recent = [entry for entry in entries if entry.time >= since - 1]
    if not recent or recent[-1].deadline is None:
        return None
    return recent[-1].deadline


class ApplyScreen(Screen["ApplyResult | None"]):
    """Runs the change in a thread worker and shows one line per event, then the result.

    From the ``armed`` event on, a line counts down the safety window: unless hostwiz confirms
    over a new connection, the host undoes the change by itself at the time shown. The host
    pushes that time back while hostwiz works (each command gives it at least a full window
    again), so the line restarts from the latest event: the time shown is never later than the
    host's own. It then says whether the confirmation arrived; when it did not, the host will
    undo the change by itself, and ``c`` leaves this screen asking for the recovery screen
    (:attr:`recover_requested`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Continue"),
        Binding("c", "recover", "Recovery"),
    ]

    class Progressed(Message):
        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class Finished(Message):
        def __init__(self, result: ApplyResult | None, error: BaseException | None) -> None:
            super().__init__()
            self.result = result
            self.error = error

    def __init__(
        self,
        title: str,
        host: str,
        run: Callable[[Progress], ApplyResult],
        *,
        changed: Sequence[str] = (),
        window: int | None = None,
        clock: Callable[[], float] = time.time,
        rollback: str = "",
    ) -> None:
        super().__init__()
        self.sub_title = "applying"
        self.rollback = rollback or f"hostwiz rollback --host {host}"
        """The command that undoes the change, without the snapshot id (with -F and -i when
        the connection needs them)."""
        self.heading = title
        self.host = host
        self.run = run
        self.changed = list(changed)
        self.result: ApplyResult | None = None
        self.done = False
        self.window = window
        """Seconds of the safety window (the armed event says; this is the fallback)."""
        self.clock = clock
        self.started = clock()
        self.deadline: float | None = None
        """Epoch seconds: the host undoes the change by itself then, unless confirmed."""
        self.safety = "idle"
        """idle (not armed yet), ticking, confirmed, undone, or unconfirmed."""
        self.confirmation = ""
        self.recover_requested = False
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.heading, classes="title")
        yield ProgressLog(id="progress")
        yield Static("", id="window")
        yield Static(
            "Working… the host undoes everything by itself if the connection is lost.",
            id="result",
            classes="running",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#window", Static).display = False
        self.run_change()

    @work(thread=True, exit_on_error=False, group="apply")
    def run_change(self) -> None:
        try:
            result = self.run(self._progress)
        except BaseException as error:  # shown in plain words, never as a traceback
            self.post_message(self.Finished(None, error))
        else:
            self.post_message(self.Finished(result, None))

    def _progress(self, event: Event) -> None:
        """Called in the worker thread; post_message is thread-safe."""
        self.post_message(self.Progressed(event))

    def on_apply_screen_progressed(self, message: Progressed) -> None:
        event = message.event
        self.query_one(ProgressLog).add_event(event)
        if event.kind == "armed":
            found = ARMED_SECONDS.search(event.message)
            self.window = int(found.group(1)) if found else (self.window or 60)
            self.deadline = self.clock() + self.window
            self.safety = "ticking"
            self._ticker = self.set_interval(1.0, self.show_window)
        elif event.kind in {"action", "action-done", "health"} and self.safety == "ticking":
            # The host has moved its deadline to at least a full window from now.
            assert self.deadline is not None and self.window is not None
            self.deadline = max(self.deadline, self.clock() + self.window)
        elif event.kind == "confirm" and self.safety == "ticking":
            self.safety = "confirmed"
            self.confirmation = event.message
        elif event.kind == "undo" and self.safety == "ticking":
            self.safety = "undone"
        self.show_window()

    def on_apply_screen_finished(self, message: Finished) -> None:
        self.done = True
        self.result = message.result
        if self.safety == "ticking":
            confirmed = message.result is not None and message.result.confirmed
            self.safety = "confirmed" if confirmed else "unconfirmed"
            if not confirmed:
                self.deadline = journal_deadline(self.host, self.started) or self.deadline
        panel = self.query_one("#result", Static)
        panel.remove_class("running")
        if message.error is not None:
            panel.add_class("failed")
            content = error_content(message.error)
            if self.safety == "unconfirmed":
                content = Content.assemble(content, Content.styled(RECOVER_HINT, "$text-muted"))
            panel.update(content)
        else:
            assert message.result is not None
            panel.add_class("ok" if message.result.confirmed else "failed")
            panel.update(result_content(message.result, self.rollback, self.changed))
        self.sub_title = "finished"
        self.show_window()
        self.refresh_bindings()
        self.query_one(ProgressLog).show_last()

    def show_window(self) -> None:
        """The safety-window line, as of now."""
        line = self.query_one("#window", Static)
        line.display = self.safety != "idle"
        line.set_class(self.safety == "confirmed", "ok")
        line.set_class(self.safety == "unconfirmed", "failed")
        text = self.window_text()
        if text is not None:
            line.update(text)
        if self.safety in {"confirmed", "undone"} and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def window_text(self) -> Content | None:
        if self.safety == "confirmed":
            said = self.confirmation or "Confirmed over a new connection"
            return Content.assemble(
                ("✓ ", "bold $text-success"),
                (said, "bold"),
                ": the host's safety timer is stopped and the change stays.",
            )
        if self.safety == "undone":
            return Content.assemble(
                ("↺ ", "bold $text-warning"),
                "hostwiz undid the change at once and stopped the host's safety timer.",
            )
        if self.deadline is None:
            return None
        left = int(self.deadline - self.clock() + 0.5)
        at = clock_time(self.deadline)
        if self.safety == "unconfirmed":
            if left > 0:
                return Content.assemble(
                    ("✗ Not confirmed over a new connection: ", "bold $text-error"),
                    "the host undoes this change by itself at ",
                    (at, "bold"),
                    f" (in {left} s).",
                )
            return Content.assemble(
                ("✗ Not confirmed over a new connection: ", "bold $text-error"),
                "the host should have undone this change by itself at ",
                (at, "bold"),
                ". The recovery screen (c) shows what the host did.",
            )
        if left > 0:
            return Content.assemble(
                ("⏱ Safety timer: ", "bold $text-warning"),
                "unless hostwiz confirms over a new connection, the host undoes this by itself at ",
                (at, "bold"),
                " (in ",
                (f"{left} s", "bold"),
                ").",
            )
        return Content.assemble(
            ("⏱ Safety timer: ", "bold $text-warning"),
            "the host waits while the current command runs, then undoes this by itself "
            "unless hostwiz confirms over a new connection.",
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close" and not self.done:
            return None
        if action == "recover":
            return self.done and self.safety == "unconfirmed"
        return True

    def action_close(self) -> None:
        if self.done:
            self.dismiss(self.result)

    def action_recover(self) -> None:
        if self.done and self.safety == "unconfirmed":
            self.recover_requested = True
            self.dismiss(self.result)


RECOVER_HINT = "\nc: the recovery screen · Enter: back to the steps."


def result_content(result: ApplyResult, rollback: str, changed: Sequence[str]) -> Content:
    """The result panel: the outcome in bold, lines after it (the docker client set up after
    a TLS change, with its ``docker --context NAME ps``), then where the snapshot is."""
    headline, _, more = result.message.partition("\n")
    if result.snapshot_id and result.confirmed:
        # "To undo:" below says it, with where else to do it: once is enough.
        headline = headline.partition(" Undo with: ")[0]
    parts = [Content.styled(headline, "bold")]
    for line in more.splitlines():
        command = line.startswith("  docker ")
        parts.append(Content.styled(f"\n{line}", "bold $text-success" if command else ""))
    if result.snapshot_id:
        if changed:
            parts.append(Content("\nChanged: " + ", ".join(changed)))
        parts.append(Content.assemble("\nSnapshot: ", (result.snapshot_id, "bold")))
        if result.confirmed:
            parts.append(
                Content.assemble(
                    "\nTo undo: ",
                    (f"{rollback} {result.snapshot_id}", "bold"),
                    " (or Snapshots in the step list)",
                )
            )
    if result.confirmed:
        parts.append(Content.styled("\nPress Enter to go back to the steps.", "$text-muted"))
    else:
        parts.append(Content.styled(RECOVER_HINT, "$text-muted"))
    return Content.assemble(*parts)
