"""One screen per stage of the wizard, each returning its result with ``dismiss``.

The screens get plain data and never talk to the host themselves (except :class:`ApplyScreen`,
which runs the callable it is given in a thread worker), so each can be driven in a test with
data built there. The order of the stages lives in :meth:`screens.app.HostwizApp.run_flow`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from hostwiz.tls_setup import NEVER_STORED, CaPassphrase
from screens.widgets import DiffView, ProgressLog, QuestionForm
from wizard.errors import HostKeyChanged, HostwizError

if TYPE_CHECKING:
    from hostwiz.tls_setup import PassphraseRequest
    from hostwiz.ways_in import WaysIn
    from snapshots.store import SnapshotInfo
    from wizard.recovery import Fresh, HostChange, Interrupted, Lockout, Tried, WayIn
    from wizard.render import RenderedLine
    from wizard.steps.base import Step
    from wizard.transaction import ApplyResult, Event, Progress
    from wizard.transport.ssh import HostKeyInfo

HERE = Path(__file__).parent


@dataclass(frozen=True)
class HostChoice:
    """A host the admin can pick on the start screen."""

    target: str
    """What is passed to the SSH transport: an ssh config name or ``user@host[:port]``."""
    detail: str = ""
    ssh_config: str | None = None
    """The ssh_config file that defines ``target`` (practice hosts have their own)."""


@dataclass(frozen=True)
class RecoverChoice:
    """From the start screen: open the recovery screen for ``host`` instead of connecting."""

    host: HostChoice
    problem: BaseException | None = None
    """Why connecting to it failed, when it did."""


def host_name(target: str) -> str:
    """The host part of ``user@host[:port]`` (``admin@hw1`` is practice host ``hw1``)."""
    host = target.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class StepRow:
    """A line of the step list."""

    name: str
    title: str
    status: str
    summary: str


def describe_error(error: BaseException) -> tuple[str, str, str]:
    """(title, message, hint) of any error, in plain words and without a traceback."""
    if isinstance(error, HostwizError):
        return error.title, error.message, error.hint
    return (
        "Unexpected problem",
        f"{type(error).__name__}: {error}",
        "This is a bug in hostwiz. Nothing more was done after it; please report it.",
    )


def is_danger(error: BaseException | None) -> bool:
    """Errors that must stand out: the host may not be the one it claims to be."""
    return isinstance(error, HostKeyChanged)


def error_content(error: BaseException) -> Content:
    title, message, hint = describe_error(error)
    if is_danger(error):
        parts = [
            Content.styled(f" ⚠ {title} ", "bold reverse $text-error"),
            Content.styled(" Do not type passwords or continue until you know why.\n", "bold"),
            Content(message),
        ]
    else:
        parts = [Content.styled(f"{title}: ", "bold $text-error"), Content(message)]
    if hint:
        parts += [Content("\n"), Content.styled("What to do: ", "bold"), Content(hint)]
    return Content.assemble(*parts)


# ---- start ------------------------------------------------------------------------------


class StartScreen(Screen[HostChoice | RecoverChoice | None]):
    """Pick a practice host or an ssh config entry, or type ``user@host[:port]``.

    After a failed connection (``problem``, for the host ``failed``) it says why, and Ctrl+R
    asks for the recovery screen of that host (:class:`RecoverChoice`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "quit_wizard", "Quit"),
        Binding("ctrl+l", "focus_target", "Type a host", show=True),
        Binding("ctrl+r", "recover", "Recovery"),
    ]

    def __init__(
        self,
        candidates: Sequence[HostChoice] | None = None,
        *,
        problem: BaseException | None = None,
        failed: HostChoice | None = None,
        initial: str = "",
        ssh_config: str | None = None,
    ) -> None:
        super().__init__()
        self.sub_title = "choose a host"
        self.candidates = list(candidates) if candidates is not None else None
        self.problem = problem
        self.failed = failed
        self.initial = initial
        self.ssh_config = ssh_config

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="start"):
            yield Static(
                "Which machine should become a hardened Docker host? Pick one (↑/↓, Enter) or "
                "type its address below. Nothing is changed before you have seen and confirmed "
                "a preview.",
                classes="intro",
            )
            if self.problem is not None:
                danger = is_danger(self.problem)
                recovery = "\nCtrl+R: recovery (what the last change did, how to get back in)."
                yield Static(
                    Content.assemble(
                        error_content(self.problem),
                        Content.styled("" if danger else recovery, "$text-muted"),
                    ),
                    id="problem",
                    classes="problem danger" if danger else "problem",
                )
            yield OptionList(id="hosts")
            yield Label("Or type user@host[:port], or a Host name from your ssh config:")
            yield Input(self.initial, placeholder="admin@192.0.2.10:22", id="target")
        yield Footer()

    def on_mount(self) -> None:
        if self.candidates is None:
            self.query_one("#hosts", OptionList).loading = True
            self.call_after_refresh(self.load_candidates)  # after the first paint
        else:
            self.show_candidates(self.candidates)

    @work(thread=True, exit_on_error=False)
    def load_candidates(self) -> None:
        found = find_hosts(self.ssh_config)
        self.app.call_from_thread(self.show_candidates, found)

    def show_candidates(self, found: Sequence[HostChoice]) -> None:
        self.candidates = list(found)
        hosts = self.query_one("#hosts", OptionList)
        hosts.loading = False
        hosts.clear_options()
        for index, choice in enumerate(self.candidates):
            text = Content.assemble((choice.target, "bold"), "  ", (choice.detail, "$text-muted"))
            hosts.add_option(Option(text, id=str(index)))
        if not self.candidates:
            hosts.add_option(
                Option("(no practice hosts or ssh config entries found)", disabled=True)
            )
            self._focus(self.query_one("#target", Input))
        else:
            hosts.highlighted = 0
            self._focus(hosts)

    def _focus(self, widget: Widget) -> None:
        """Focus and bring into view without an animation: a scroll animation still pending
        when the wizard quits would never finish (and Pilot tests would wait for it)."""
        widget.focus(scroll_visible=False)
        widget.scroll_visible(animate=False)

    @on(OptionList.OptionSelected, "#hosts")
    def picked(self, event: OptionList.OptionSelected) -> None:
        assert self.candidates is not None and event.option.id is not None
        self.dismiss(self.candidates[int(event.option.id)])

    @on(Input.Submitted, "#target")
    def typed(self, event: Input.Submitted) -> None:
        target = event.value.strip()
        if not target or " " in target:
            self.notify(
                "Type a host such as admin@192.0.2.10 or a name from ~/.ssh/config.",
                severity="warning",
            )
            return
        self.dismiss(HostChoice(target, "typed", None))

    def action_focus_target(self) -> None:
        self._focus(self.query_one("#target", Input))

    def action_recover(self) -> None:
        """Recovery for the host that failed, else the typed or highlighted one."""
        target = self.query_one("#target", Input)
        typed = target.value.strip()
        hosts = self.query_one("#hosts", OptionList)
        highlighted = hosts.highlighted_option
        if self.failed is not None and not (target.has_focus and typed != self.failed.target):
            self.dismiss(RecoverChoice(self.failed, self.problem))
        elif typed and (target.has_focus or highlighted is None):
            self.dismiss(RecoverChoice(HostChoice(typed, "typed", None)))
        elif highlighted is not None and highlighted.id is not None and self.candidates:
            self.dismiss(RecoverChoice(self.candidates[int(highlighted.id)]))
        else:
            self.notify("Pick or type the host to recover first.", severity="warning")

    def action_quit_wizard(self) -> None:
        self.dismiss(None)


def ssh_config_hosts(path: Path) -> list[str]:
    """Concrete ``Host`` names of an ssh config (patterns with * ? ! are not hosts)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    names: list[str] = []
    for line in text.splitlines():
        words = line.strip().split()
        if len(words) < 2 or words[0].lower() != "host":
            continue
        for word in words[1:]:
            if not any(char in word for char in "*?!") and word not in names:
                names.append(word)
    return names


def find_hosts(ssh_config: str | None = None) -> list[HostChoice]:
    """Practice hosts (when the lab is available) and the entries of the ssh config."""
    found: list[HostChoice] = []
    try:
        from wizard.lab import lab_list, lab_paths
    except ImportError:
        pass
    else:
        try:
            lab_config = str(lab_paths().ssh_config)
            for host in lab_list():
                found.append(HostChoice(host.name, "practice host", lab_config))
        except HostwizError:
            pass
    config = Path(ssh_config) if ssh_config else Path.home() / ".ssh" / "config"
    for name in ssh_config_hosts(config):
        if all(choice.target != name for choice in found):
            found.append(HostChoice(name, f"from {config}", ssh_config))
    return found


# ---- step list ----------------------------------------------------------------------------

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


# ---- one step -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptAnswers:
    """From a step: keep these answers (Escape, then Save) without previewing them now."""

    answers: Any


class StepScreen(Screen[Any]):
    """A step's explanation and its questions; returns the new answers (to preview),
    :class:`KeptAnswers` (kept, back to the steps) or None (back, nothing kept).

    ``context`` is what the host says about some questions (field name -> line, from
    :func:`wizard.steps.base.question_context` over the facts the step list read);
    ``context_for`` (answers -> such lines) keeps it up to date while the answers change.
    ``focus`` names the question to start on (the one an error was about). Escape with edited
    answers asks whether to keep editing, discard them or save them (:class:`UnsavedScreen`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "preview", "Preview changes"),
    ]

    def __init__(
        self,
        step: Step[Any],
        answers: Any,
        context: Mapping[str, str] | None = None,
        *,
        context_for: Callable[[Any], Mapping[str, str]] | None = None,
        focus: str | None = None,
    ) -> None:
        super().__init__()
        self.sub_title = step.title
        self.step = step
        self.answers = answers
        self.context = dict(context or {})
        self.context_for = context_for
        self.focus_field = focus

    def compose(self) -> ComposeResult:
        from wizard.answers import as_mapping, fields_of

        yield Header()
        with VerticalScroll(id="step-body"):
            yield Static(self.step.title, classes="title")
            yield Static(self.step.explanation, classes="explanation")
            yield QuestionForm(
                fields_of(self.step.answers_type),
                as_mapping(self.answers),
                context=self.context,
                build=self._build,
                context_for=self.context_for,
                id="form",
            )
        yield Static("", id="form-status")
        with Horizontal(classes="buttons"):
            yield Button("Back", id="back", compact=True)
            yield Button("Preview changes", id="preview", variant="primary", compact=True)
        yield Footer()

    def _build(self, values: dict[str, Any]) -> Any:
        from wizard.answers import build

        return build(self.step.answers_type, values, base=self.answers)

    def on_mount(self) -> None:
        form = self.query_one(QuestionForm)
        self.show_validity(form)
        wanted = self.focus_field
        if wanted and self.query(f"#field-{wanted}") and form.row(wanted).display:
            self.focus_on(wanted)
            return
        first = self.query(".field-row Input, .field-row Switch, .field-row Select").first()
        first.focus()

    def focus_on(self, name: str) -> None:
        """Focus a question and bring it into view (without an animation)."""
        control = self.query_one(f"#field-{name}")
        control.focus(scroll_visible=False)
        self.call_after_refresh(
            lambda: self.query_one(QuestionForm).row(name).scroll_visible(animate=False)
        )

    def show_validity(self, form: QuestionForm) -> None:
        valid = not form.errors() and not form.problem
        status = self.query_one("#form-status", Static)
        if form.problem:
            status.update(Content.styled(form.problem, "$text-error"))
        else:
            status.update("" if valid else "Some answers need fixing (see the red lines).")
        self.query_one("#preview", Button).disabled = not valid

    @on(QuestionForm.Changed)
    def form_changed(self, event: QuestionForm.Changed) -> None:
        self.show_validity(event.form)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        form = self.query_one(QuestionForm)
        if not form.edited:
            self.dismiss(None)
            return
        valid = not form.errors() and not form.problem
        self.app.push_screen(UnsavedScreen(self.step.title, can_save=valid), self._unsaved)

    def _unsaved(self, choice: str | None) -> None:
        if choice == "discard":
            self.dismiss(None)
        elif choice == "save":
            answers = self.checked_answers()
            if answers is not None:
                self.dismiss(KeptAnswers(answers))

    def checked_answers(self) -> Any | None:
        """The form's answers, or None after focusing the first question in error."""
        form = self.query_one(QuestionForm)
        form.check_across()
        errors = form.errors()
        if errors:
            name = next(iter(errors))
            self.focus_on(name)
            self.notify(f"{name.replace('_', ' ')}: {errors[name]}", severity="error")
            return None
        try:
            return self._build(form.values())
        except HostwizError as error:
            self.query_one("#form-status", Static).update(error_content(error))
            return None

    @on(Button.Pressed, "#preview")
    def action_preview(self) -> None:
        answers = self.checked_answers()
        if answers is not None:
            self.dismiss(answers)


class UnsavedScreen(ModalScreen[str]):
    """Escape on a step whose answers were edited: keep editing, discard or save them.
    Returns ``keep``, ``discard`` or ``save``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('keep')", "Keep editing"),
        Binding("d", "choose('discard')", "Discard"),
        Binding("s", "choose('save')", "Save"),
    ]

    def __init__(self, title: str, *, can_save: bool = True) -> None:
        super().__init__()
        self.step_title = title
        self.can_save = can_save

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="unsaved"):
            yield Static("Unsaved answers", classes="title")
            yield Static(
                f"You changed answers of {self.step_title}. Save keeps them for this session "
                "(nothing is applied until you preview and apply); Discard drops them."
                + ("" if self.can_save else " Some answers need fixing before they can be saved.")
            )
            with Horizontal(classes="buttons"):
                yield Button("Keep editing (Esc)", id="keep", compact=True)
                yield Button("Discard (d)", id="discard", variant="warning", compact=True)
                yield Button(
                    "Save (s)",
                    id="save",
                    variant="primary",
                    disabled=not self.can_save,
                    compact=True,
                )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters == ("save",) and not self.can_save:
            return None
        return True

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id or "keep")

    def action_choose(self, choice: str) -> None:
        if choice == "save" and not self.can_save:
            return
        self.dismiss(choice)


# ---- preview ------------------------------------------------------------------------------


class PreviewScreen(Screen[bool]):
    """The exact diff and commands; returns True to apply, False to go back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "apply", "Apply"),
    ]

    def __init__(
        self, title: str, lines: Sequence[RenderedLine], *, empty: bool, action: str = "Apply"
    ) -> None:
        super().__init__()
        self.sub_title = "preview"
        self.heading = title
        self.lines = list(lines)
        self.empty = empty
        self.action_word = action

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.heading, classes="title")
        warnings = [line.text for line in self.lines if line.kind == "warning"]
        if warnings:
            yield Static("\n".join(warnings), id="warnings", classes="warnings")
        if self.empty:
            yield Static(
                "Nothing to change: the host already matches these answers.", classes="note"
            )
        # Warnings are in the panel above; the diff keeps the rest, in order.
        yield DiffView([line for line in self.lines if line.kind != "warning"], id="diff")
        with Horizontal(classes="buttons"):
            yield Button("Back", id="back", compact=True)
            yield Button(
                f"{self.action_word} (a)",
                id="apply",
                variant="warning",
                disabled=self.empty,
                compact=True,
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DiffView).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply" and self.empty:
            return None
        return True

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        if not self.empty:
            self.dismiss(True)


# ---- apply ----------------------------------------------------------------------------------

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


# ---- snapshots ----------------------------------------------------------------------------


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


# ---- recovery -----------------------------------------------------------------------------


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
    worker). In the app: :func:`hostwiz.ways_in.look_for_ways_in` with the app's connection
    settings. ``say`` hears each try as it ends; ``stop`` returns True once the admin left."""

    def __call__(self, say: Callable[[Tried], None], stop: Callable[[], bool]) -> WaysIn | None: ...


def try_outcome(tried: Tried) -> str:
    """How a try ended, in a few words where the error's full message says no more (the
    problem box above already shows the full message for the configured way)."""
    message = tried.message
    if tried.result == "no-ssh":
        if "refused the connection" in message:
            return "refused (nothing listens there)"
        if message.startswith("No answer"):
            return "no answer"
        if "no network route" in message:
            return "no route to the host"
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
            yield Static(
                "Its safety timer is still running: the host puts it back by itself. "
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


# ---- modals -------------------------------------------------------------------------------


class TrustKeyScreen(ModalScreen[bool]):
    """Asks whether to trust a host key seen for the first time."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Trust"),
        Binding("n,escape", "answer(False)", "Refuse"),
    ]

    def __init__(self, info: HostKeyInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        info = self.info
        with Vertical(classes="dialog"):
            yield Static("New host key", classes="title")
            yield Static(
                Content.assemble(
                    (info.host, "bold"),
                    f" ({info.hostname}:{info.port}) presents a ",
                    (info.key_type, "bold"),
                    " host key never seen before:\n\n  ",
                    (info.fingerprint, "bold $text-warning"),
                    "\n\nCompare it with the VM's console: ssh-keygen -lf "
                    "/etc/ssh/ssh_host_ed25519_key.pub. If it matches, trust it; it is added to ",
                    str(info.known_hosts),
                    ".",
                )
            )
            with Horizontal(classes="buttons"):
                yield Button("Refuse (n)", id="refuse")
                yield Button("Trust (y)", id="trust", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#refuse", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust")

    def action_answer(self, trust: bool) -> None:
        self.dismiss(trust)


class PasswordScreen(ModalScreen[str | None]):
    """Asks for the sudo password (never stored, never shown)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("sudo password", classes="title")
            yield Static(
                f"The login user on {self.host} needs its password for sudo. It is "
                "kept in memory only while connected."
            )
            yield Input(password=True, id="password")

    @on(Input.Submitted, "#password")
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CaPassphraseScreen(ModalScreen[CaPassphrase | None]):
    """Asks for the TLS step's CA passphrase: once to unlock an existing CA, twice (a confirm
    field) to create a new one. Returns the answer, or None (Escape) to go back.

    A new passphrase that is empty, short or typed differently twice is refused right here;
    whether an existing CA's passphrase is right is only known once the CA is opened, so the
    app shows this screen again with the error (``request.problem``).
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, request: PassphraseRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(classes="dialog", id="ca-passphrase"):
            yield Static(
                "New CA passphrase" if request.new_ca else "CA passphrase", classes="title"
            )
            yield Static(request.explanation)
            yield Static(NEVER_STORED, classes="hint")
            yield Input(password=True, placeholder="passphrase", id="passphrase", compact=True)
            if request.new_ca:
                yield Input(
                    password=True,
                    placeholder="the same passphrase again",
                    id="confirmation",
                    compact=True,
                )
            problem = request.problem
            yield Static(
                f"{problem.message} {problem.hint}" if problem is not None else "",
                id="passphrase-error",
            )
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(
                    "Create CA" if request.new_ca else "Unlock",
                    id="ok",
                    variant="primary",
                    compact=True,
                )

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    @on(Input.Submitted, "#passphrase")
    def first_typed(self) -> None:
        if self.request.new_ca:
            self.query_one("#confirmation", Input).focus()
        else:
            self.submit()

    @on(Input.Submitted, "#confirmation")
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        from wizard.secrets import Secret

        passphrase = Secret(self.query_one("#passphrase", Input).value)
        if not self.request.new_ca:
            self.dismiss(CaPassphrase(passphrase))
            return
        from wizard.pki import new_passphrase

        confirmation = Secret(self.query_one("#confirmation", Input).value)
        try:
            new_passphrase(passphrase, confirmation)
        except HostwizError as error:  # empty, short, or the two differ: type both again
            self.show_error(f"{error.message} {error.hint}")
            for field in self.query(Input).results(Input):
                field.value = ""
            self.query_one("#passphrase", Input).focus()
            return
        self.dismiss(CaPassphrase(passphrase, confirmation))

    def show_error(self, text: str) -> None:
        self.query_one("#passphrase-error", Static).update(text)

    @property
    def error_text(self) -> str:
        return str(self.query_one("#passphrase-error", Static).content)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorScreen(ModalScreen[None]):
    """A problem in plain words: what went wrong and what to do."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "close", "Close")]

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error danger" if is_danger(self.error) else "dialog error"):
            yield Static(error_content(self.error))
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary", compact=True)

    @on(Button.Pressed, "#ok")
    def action_close(self) -> None:
        self.dismiss(None)


class SavePresetScreen(ModalScreen[str | None]):
    """Asks where to save the answers as a preset file."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Save answers as a preset", classes="title")
            yield Static(
                "A TOML file you can reuse: hostwiz --preset FILE. If it exists, "
                "its comments are kept."
            )
            yield Input(self.default, id="path")

    @on(Input.Submitted, "#path")
    def submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if not path.endswith(".toml"):
            self.notify("A preset file name ends in .toml", severity="warning")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)


CLOSE_HELP = "Escape, q or F1 closes this help; ↑/↓ and Page Up/Down scroll it."


class HelpScreen(ModalScreen[None]):
    """Keys and concepts; the text is kept as Markdown in screens/help.md."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it and pygments: only when asked for

        text = (HERE / "help.md").read_text(encoding="utf-8")
        with VerticalScroll(classes="dialog help"):
            yield Static(CLOSE_HELP, id="help-close", classes="hint")
            yield Markdown(text)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
