"""One screen per stage of the wizard, each returning its result with ``dismiss``.

The screens get plain data and never talk to the host themselves (except :class:`ApplyScreen`,
which runs the callable it is given in a thread worker), so each can be driven in a test with
data built there. The order of the stages lives in :meth:`screens.app.HostwizApp.run_flow`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
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

from screens.widgets import DiffView, ProgressLog, QuestionForm
from wizard.errors import HostwizError

if TYPE_CHECKING:
    from snapshots.store import SnapshotInfo
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


def error_content(error: BaseException) -> Content:
    title, message, hint = describe_error(error)
    parts = [Content.styled(f"{title}: ", "bold $text-error"), Content(message)]
    if hint:
        parts += [Content("\n"), Content.styled("What to do: ", "bold"), Content(hint)]
    return Content.assemble(*parts)


# ---- start ------------------------------------------------------------------------------


class StartScreen(Screen[HostChoice | None]):
    """Pick a practice host or an ssh config entry, or type ``user@host[:port]``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "quit_wizard", "Quit"),
        Binding("ctrl+l", "focus_target", "Type a host", show=True),
    ]

    def __init__(
        self,
        candidates: Sequence[HostChoice] | None = None,
        *,
        problem: BaseException | None = None,
        initial: str = "",
        ssh_config: str | None = None,
    ) -> None:
        super().__init__()
        self.sub_title = "choose a host"
        self.candidates = list(candidates) if candidates is not None else None
        self.problem = problem
        self.initial = initial
        self.ssh_config = ssh_config

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="start"):
            yield Static(
                "Which machine should become a hardened Docker host? Pick one (↑/↓, Enter) or "
                "type its address below. Nothing is changed before you have seen and confirmed "
                "a preview.",
                classes="intro",
            )
            if self.problem is not None:
                yield Static(error_content(self.problem), id="problem", classes="problem")
            yield OptionList(id="hosts")
            yield Label("Or type user@host[:port], or a Host name from your ssh config:")
            yield Input(self.initial, placeholder="admin@192.0.2.10:22", id="target")
        yield Footer()

    def on_mount(self) -> None:
        if self.candidates is None:
            self.query_one("#hosts", OptionList).loading = True
            self.load_candidates()
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
            self.query_one("#target", Input).focus()
        else:
            hosts.highlighted = 0
            hosts.focus()

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
        self.query_one("#target", Input).focus()

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


class StepListScreen(Screen[str]):
    """The steps for one host with their status; returns what to do next.

    Results: ``step:NAME``, ``snapshots``, ``save``, ``refresh``, ``host`` or ``quit``.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('snapshots')", "Snapshots"),
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
            table.add_row(row.title, status, row.summary, key=row.name)
        table.focus()

    @on(DataTable.RowSelected, "#step-table")
    def open_step(self, event: DataTable.RowSelected) -> None:
        self.dismiss(f"step:{event.row_key.value}")

    def action_choose(self, what: str) -> None:
        self.dismiss(what)


# ---- one step -----------------------------------------------------------------------------


class StepScreen(Screen[Any]):
    """A step's explanation and its questions; returns the new answers, or None for back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "preview", "Preview changes"),
    ]

    def __init__(self, step: Step[Any], answers: Any) -> None:
        super().__init__()
        self.sub_title = step.title
        self.step = step
        self.answers = answers

    def compose(self) -> ComposeResult:
        from wizard.answers import as_mapping, fields_of

        yield Header()
        with VerticalScroll(id="step-body"):
            yield Static(self.step.title, classes="title")
            yield Static(self.step.explanation, classes="explanation")
            yield QuestionForm(
                fields_of(self.step.answers_type), as_mapping(self.answers), id="form"
            )
        yield Static("", id="form-status")
        with Horizontal(classes="buttons"):
            yield Button("Back", id="back", compact=True)
            yield Button("Preview changes", id="preview", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        first = self.query(".field-row Input, .field-row Switch, .field-row Select").first()
        first.focus()

    @on(QuestionForm.Changed)
    def form_changed(self, event: QuestionForm.Changed) -> None:
        status = self.query_one("#form-status", Static)
        status.update("" if event.valid else "Some answers need fixing (see the red lines).")
        self.query_one("#preview", Button).disabled = not event.valid

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#preview")
    def action_preview(self) -> None:
        from wizard.answers import build

        form = self.query_one(QuestionForm)
        errors = form.errors()
        if errors:
            name = next(iter(errors))
            self.query_one(f"#field-{name}").focus()
            self.notify(f"{name.replace('_', ' ')}: {errors[name]}", severity="error")
            return
        try:
            answers = build(
                self.step.answers_type, form.values(), base=self.answers, where=self.step.title
            )
        except HostwizError as error:
            self.query_one("#form-status", Static).update(error_content(error))
            return
        self.dismiss(answers)


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


# ---- apply --------------------------------------------------------------------------------


class ApplyScreen(Screen["ApplyResult | None"]):
    """Runs the change in a thread worker and shows one line per event, then the result."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Continue"),
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
    ) -> None:
        super().__init__()
        self.sub_title = "applying"
        self.heading = title
        self.host = host
        self.run = run
        self.changed = list(changed)
        self.result: ApplyResult | None = None
        self.done = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.heading, classes="title")
        yield ProgressLog(id="progress")
        yield Static(
            "Working… the host undoes everything by itself if the connection is lost.",
            id="result",
            classes="running",
        )
        yield Footer()

    def on_mount(self) -> None:
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
        self.query_one(ProgressLog).add_event(message.event)

    def on_apply_screen_finished(self, message: Finished) -> None:
        self.done = True
        self.result = message.result
        panel = self.query_one("#result", Static)
        panel.remove_class("running")
        if message.error is not None:
            panel.add_class("failed")
            panel.update(error_content(message.error))
        else:
            assert message.result is not None
            panel.add_class("ok" if message.result.confirmed else "failed")
            panel.update(result_content(message.result, self.host, self.changed))
        self.sub_title = "finished"
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close" and not self.done:
            return None
        return True

    def action_close(self) -> None:
        if self.done:
            self.dismiss(self.result)


def result_content(result: ApplyResult, host: str, changed: Sequence[str]) -> Content:
    parts = [Content.styled(result.message, "bold")]
    if result.snapshot_id:
        if changed:
            parts.append(Content("\nChanged: " + ", ".join(changed)))
        parts.append(Content.assemble("\nSnapshot: ", (result.snapshot_id, "bold")))
        parts.append(
            Content.assemble(
                "\nTo undo: ",
                (f"hostwiz rollback --host {host} {result.snapshot_id}", "bold"),
                " (or Snapshots in the step list)",
            )
        )
    parts.append(Content.styled("\nPress Enter to go back to the steps.", "$text-muted"))
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
        table = self.query_one(DataTable)
        table.add_columns("Time", "Steps", "Files", "State", "Id")
        for info in reversed(self.snapshots):
            steps = ", ".join(info.steps) or info.reason
            table.add_row(
                info.created, steps, str(len(info.paths)), info.state, info.id, key=info.id
            )
        table.focus()

    @on(DataTable.RowSelected, "#snapshot-table")
    def picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_back(self) -> None:
        self.dismiss(None)


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


class ErrorScreen(ModalScreen[None]):
    """A problem in plain words: what went wrong and what to do."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "close", "Close")]

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
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


class HelpScreen(ModalScreen[None]):
    """Keys and concepts; the text is kept as Markdown in screens/help.md."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it and pygments: only when asked for

        text = (HERE / "help.md").read_text(encoding="utf-8")
        with VerticalScroll(classes="dialog help"):
            yield Markdown(text)

    def action_close(self) -> None:
        self.dismiss(None)
