"""The full-screen wizard: ``hostwiz`` without a command.

The flow (host → steps → questions → preview → apply → steps) is sequential code in one
``@work`` coroutine, :meth:`HostwizApp.run_flow`, that awaits each stage's screen with
``push_screen_wait``. Anything that talks to the host runs in a thread worker; the SSH
callbacks (trust this host key? sudo password?) run in that thread and ask through a modal
screen on the app's thread.

Importing this module must stay fast: paramiko, docker and cryptography (pulled in by the
transport and the steps) are only imported inside functions, once they are needed.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, LoadingIndicator, Static
from textual.worker import Worker, WorkerCancelled, WorkerFailed, get_current_worker

from screens.apply import ApplyScreen
from screens.audit import audit_flow
from screens.dialogs import (
    ErrorScreen,
    PasswordScreen,
    SavePresetScreen,
    SecretScreen,
    TrustKeyScreen,
)
from screens.help import HelpScreen
from screens.preview import PreviewScreen
from screens.recovery import RecoveryActions, RecoveryScreen
from screens.snapshot_list import SnapshotsScreen
from screens.start import HostChoice, RecoverChoice, SiteChoice, StartScreen, host_name
from screens.step_form import KeptAnswers, StepScreen
from screens.step_list import StepListScreen, StepRow
from wizard.errors import HostwizError, SudoFailed

if TYPE_CHECKING:
    from wizard.facts import Facts
    from wizard.local import SecretAnswer, SecretRequest
    from wizard.plan import Changeset
    from wizard.recovery import Tried
    from wizard.render import RenderedLine
    from wizard.secrets import Secret
    from wizard.session import Selection
    from wizard.transaction import ApplyResult, Progress
    from wizard.transport.ssh import SshTransport
    from wizard.transport.ssh_connect import HostKeyInfo
    from wizard.ways_in import WaysIn

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT = 10.0
"""Seconds the wizard waits for a host to answer each connection step (TCP, SSH handshake,
login) before it gives up; the "Connecting…" text says so, so a slow host does not look hung."""


class Cancelled(HostwizError):
    title = "Cancelled"


class Stopped(Cancelled):
    """The admin stopped a wait (Escape while connecting)."""

    title = "Stopped"


class Handover:
    """Between a job and the wizard waiting for it, when the admin may stop the wait.

    The job runs in a daemon thread of its own, which the worker's thread waits for until
    the job ends or the wait is stopped. Either the job's result is handed over to the
    wizard, or the wait was stopped first: the job then runs on by itself and gives what it
    still returns to ``discard`` (a transport is closed, never used). The lock decides which
    came first, so a result is never both. A daemon, so that quitting the wizard does not wait
    for an attempt nobody waits for (the process's end closes what it holds).
    """

    def __init__(self, discard: Callable[[Any], None]) -> None:
        self._discard = discard
        self._lock = threading.Lock()
        self._stopped = False
        self._taken = False

    def run(self, job: Callable[[], T]) -> T:
        """In the worker's thread: start the job, wait for it or for :meth:`stop`."""
        finished = threading.Event()
        outcome: list[Any] = []
        context = contextvars.copy_context()  # the worker's: ask_from_thread knows it

        def attempt() -> None:
            try:
                result = context.run(job)
            except BaseException as error:  # for the worker to raise, if still waited for
                outcome.append(error)
                finished.set()
                return
            with self._lock:
                taken = self._taken = not self._stopped
            if taken:
                outcome.append(result)
            else:
                self._discard(result)
            finished.set()

        threading.Thread(target=attempt, name="hostwiz-stoppable", daemon=True).start()
        while not finished.wait(0.1) and not self._stopped:
            pass
        if not outcome or (self._stopped and not self._taken):
            raise Cancelled("nobody waits for this result any more.")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return cast(T, outcome[0])

    def stop(self) -> bool:
        """On the app's thread: stop waiting; False when the result was handed over already."""
        with self._lock:
            if self._taken:
                return False
            self._stopped = True
            return True

    @property
    def stopped(self) -> bool:
        return self._stopped


class StepCommands(Provider):
    """Command palette entries that open a step (only while the step list is shown)."""

    async def discover(self) -> Hits:
        app = self.app
        assert isinstance(app, HostwizApp)
        for name, title in app.step_titles():
            yield DiscoveryHit(
                f"Step: {title}",
                app.palette_action(f"step:{name}"),
                help="Open the step's questions",
            )

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, HostwizApp)
        matcher = self.matcher(query)
        for name, title in app.step_titles():
            text = f"Step: {title}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    app.palette_action(f"step:{name}"),
                    help="Open the step's questions",
                )


class HostwizApp(App[int]):
    """The wizard; its return value is the process exit code."""

    CSS_PATH = "hostwiz.tcss"
    TITLE = "hostwiz"
    SUB_TITLE = "hardened Docker host"
    COMMANDS: ClassVar[Any] = App.COMMANDS | {StepCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        # In F1's help and the palette: the footer keeps its 80 columns for each screen's keys.
        Binding("ctrl+t", "toggle_dark", "Light/dark", show=False),
        # Only while a wait can be stopped (connecting), on the screen that shows it.
        Binding("escape", "stop_waiting", "Stop"),
    ]

    def __init__(self, args: argparse.Namespace, *, hosts: list[HostChoice] | None = None):
        super().__init__()
        self.args = args
        self.hosts = hosts
        """Start-screen candidates; None finds them (practice hosts, ssh config) in a thread."""
        self.transport: SshTransport | None = None
        self.answers: dict[str, Any] = {}
        self.host_facts: Facts | None = None
        """What the step list last read from the host (reused for the questions' context)."""
        self.preset_source = ""
        self.preset_answers: dict[str, Any] = {}
        """The answers as the preset gave them (to tell which steps were changed since)."""
        self._titles: list[tuple[str, str]] = []
        self._loading: Worker[None] | None = None
        self._stoppable: tuple[Handover, Worker[Any]] | None = None
        """The wait that Escape stops, while there is one (see :meth:`blocking`)."""

    # ---- layout and app-wide actions ---------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="busy"):
            yield LoadingIndicator()
            yield Static("Starting…", id="busy-text")
        yield Footer()

    def on_mount(self) -> None:
        self.run_flow()

    def set_busy(self, text: str) -> None:
        """What the base screen says while a worker talks to the host."""
        with contextlib.suppress(NoMatches):  # the app is shutting down
            self.query_one("#busy-text", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_waiting":  # hidden, and Escape left to the screens, otherwise
            return self._stoppable is not None and len(self.screen_stack) == 1
        return True

    def action_stop_waiting(self) -> None:
        """Escape while connecting: stop waiting (the attempt's thread ends by itself)."""
        if self._stoppable is None:
            return
        handover, worker = self._stoppable
        if handover.stop():
            worker.cancel()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def step_titles(self) -> list[tuple[str, str]]:
        return list(self._titles)

    def palette_action(self, what: str) -> Callable[[], None]:
        """A palette command that answers the step list (the flow waits on it).

        Recovery also works from the start screen (for the host that failed, or the one
        picked or typed there).
        """

        def run() -> None:
            if isinstance(self.screen, StepListScreen):
                self.screen.dismiss(what)
            elif what == "recover" and isinstance(self.screen, StartScreen):
                self.screen.action_recover()
            elif what == "snapshots" and callable(getattr(self.screen, "action_snapshots", None)):
                self.screen.action_snapshots()  # type: ignore[attr-defined]  # a site's preview
            else:
                self.notify(
                    "Finish or leave this screen first (Escape goes back).", severity="warning"
                )

        return run

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and how hostwiz works", self.action_help)
        yield SystemCommand(
            "Light/dark", "Switch between light and dark colours", self.action_toggle_dark
        )
        yield SystemCommand(
            "Audit",
            "Where the host stands, and the step that fixes each finding",
            self.palette_action("audit"),
        )
        yield SystemCommand(
            "Snapshots", "List the host's snapshots and roll back", self.palette_action("snapshots")
        )
        yield SystemCommand(
            "Recovery",
            "Locked out or a change was interrupted: what happened and how to fix it",
            self.palette_action("recover"),
        )
        yield SystemCommand(
            "Save preset", "Save the answers as a preset file", self.palette_action("save")
        )
        yield SystemCommand(
            "Refresh", "Read the host's state again", self.palette_action("refresh")
        )
        yield SystemCommand(
            "Other host", "Disconnect and choose another host", self.palette_action("host")
        )

    # ---- threads ----------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="host")
    def _in_thread(self, job: Callable[[], T]) -> T:
        return job()

    async def blocking(
        self, text: str, job: Callable[[], T], *, discard: Callable[[T], None] | None = None
    ) -> T:
        """Run ``job`` in a thread worker, showing ``text``; re-raise its error as is.

        With ``discard``, Escape stops the wait (raising :class:`Stopped`): a thread cannot be
        interrupted, so the job runs on by itself and hands what it still returns to
        ``discard`` instead of to the wizard (see :class:`Handover`).
        """
        self.set_busy(text)
        if discard is None:
            worker: Worker[T] = self._in_thread(job)
        else:
            handover = Handover(discard)
            worker = self._in_thread(partial(handover.run, job))
            self._stoppable = (handover, worker)
            self.refresh_bindings()
        try:
            return await worker.wait()
        except WorkerFailed as failed:
            raise failed.error from None
        except WorkerCancelled:
            if discard is not None and handover.stopped:  # else the wizard is closing
                raise Stopped("you stopped waiting.") from None
            raise
        finally:
            if discard is not None:
                self._stoppable = None
                self.refresh_bindings()

    def ask_from_thread(self, screen: Screen[R]) -> R:
        """From a worker thread: show ``screen`` on the app's thread and wait for its result."""
        answer: Future[R] = Future()
        worker = get_current_worker()

        def show() -> Any:
            # On the app's thread, where a wait is stopped: a stopped attempt asks nothing.
            if worker.is_cancelled:
                answer.set_exception(Cancelled("the wait for this answer was stopped."))
                return None
            answered: Callable[[Any], None] = answer.set_result
            return self.push_screen(screen, answered)

        self.call_from_thread(show)
        while True:
            try:
                return answer.result(timeout=0.2)
            except TimeoutError:
                if worker.is_cancelled:
                    raise Cancelled("the wizard was closed while waiting for an answer.") from None

    def _trust_key(self, info: HostKeyInfo) -> bool:
        return self.ask_from_thread(TrustKeyScreen(info))

    def _sudo_password(self, host: str) -> Secret:
        from wizard.secrets import Secret

        password = self.ask_from_thread(PasswordScreen(host))
        if password is None:
            raise SudoFailed(
                "no sudo password was given.", "Connect again and type it, or log in as root."
            )
        return Secret(password)

    def ask_secret(self, request: SecretRequest) -> SecretAnswer | None:
        """From the planning thread: a secret a step needs (the CA passphrase), in a modal."""
        answer = self.ask_from_thread(SecretScreen(request))
        if answer is not None:
            self.call_from_thread(self.set_busy, request.busy)
        return answer

    def plan_selections(
        self, transport: SshTransport, selections: list[Selection]
    ) -> tuple[list[Selection], Changeset]:
        """Blocking: read the host, do the steps' local work (the CA passphrase when a step
        needs it), plan."""
        from wizard.local import local_context
        from wizard.session import plan_changeset, prepare_local, read_facts, session_needs

        # The step list's statuses counted every step's needs: the preview plans with them too.
        session = self.selections()
        facts = read_facts(transport, selections, session=session)
        local = local_context(transport, self.ask_secret, tries=10)
        prepared = prepare_local(selections, facts, local)
        for folder in prepared.created:
            self.call_from_thread(
                self.notify,
                f"Created your CA in {folder}; its key is encrypted with your passphrase. "
                "Back the folder up.",
                timeout=15,
            )
        needs = session_needs(selections, session, facts)
        changeset = plan_changeset(transport.host_label, prepared.selections, facts, needs)
        return prepared.selections, changeset

    def ssh_config_for(self, choice: HostChoice) -> Path | None:
        """Blocking: ``--ssh-config``, else the file that lists the host, else the lab's for
        a practice host (None: the usual ~/.ssh/config)."""
        from wizard.connect import lab_ssh_config

        if self.args.ssh_config:
            return Path(self.args.ssh_config)
        if choice.ssh_config:
            return Path(choice.ssh_config)
        return lab_ssh_config(host_name(choice.target))

    def connect(self, choice: HostChoice) -> SshTransport:
        """Blocking: open the SSH transport, asking through modals when needed."""
        from wizard.transport.ssh import SshTransport

        args = self.args
        accept: bool | Callable[[HostKeyInfo], bool] = (
            True if args.accept_new_host_key else self._trust_key
        )
        return SshTransport.connect(
            choice.target,
            ssh_config=self.ssh_config_for(choice),
            accept_new_host_key=accept,
            sudo_password=lambda: self._sudo_password(choice.target),
            identity_file=Path(args.identity) if args.identity else None,
            connect_timeout=CONNECT_TIMEOUT,
        )

    def connecting(self, target: str) -> str:
        """What the base screen says while :meth:`connect` runs, with its time limit."""
        return (
            f"Connecting to {target}… (gives up after {CONNECT_TIMEOUT:g} s without an answer; "
            "Escape stops waiting)"
        )

    async def open_connection(self, choice: HostChoice) -> SshTransport:
        """:meth:`connect`, with the spinner; Escape stops waiting (raises :class:`Stopped`),
        and a connection the abandoned attempt still opens is closed unused."""
        try:
            return await self.blocking(
                self.connecting(choice.target), partial(self.connect, choice), discard=close_unused
            )
        except Stopped:
            raise Stopped(
                f"you stopped connecting to {choice.target} before it answered.",
                "Enter tries again. A host that does not answer may be down, behind a "
                "firewall, or listening on another port.",
            ) from None

    def look_for_ways_in(
        self, choice: HostChoice, say: Callable[[Tried], None], stop: Callable[[], bool]
    ) -> WaysIn | None:
        """Blocking (the recovery screen's worker): the ``hostwiz recover`` search for another
        way into the host. A host key seen for the first time is not trusted on the way (only
        with --accept-new-host-key); a sudo password is asked in a modal, as when connecting."""
        from wizard.transport.ssh import SshTransport
        from wizard.ways_in import PROBE_TIMEOUT, look_for_ways_in

        config = self.ssh_config_for(choice)
        identity = Path(self.args.identity) if self.args.identity else None

        def open_at(target: str, port: int, key: Path | None) -> SshTransport:
            return SshTransport.connect(
                target,
                ssh_config=config,
                accept_new_host_key=bool(self.args.accept_new_host_key),
                sudo_password=lambda: self._sudo_password(target),
                identity_file=key or identity,
                port=port,
                connect_timeout=PROBE_TIMEOUT,
            )

        return look_for_ways_in(
            choice.target, open_at, ssh_config=config, identity=identity, say=say, stop=stop
        )

    def _load_answers(self) -> None:
        """Blocking: the preset's answers (with --set overrides), defaults for other steps."""
        from presets import apply_overrides, load_preset
        from wizard.steps import STEPS

        preset = apply_overrides(
            load_preset(self.args.preset or "hardened"), self.args.overrides or []
        )
        self.preset_source = preset.source
        self.answers = {
            name: preset.answers.get(name) or step.answers_type() for name, step in STEPS.items()
        }
        self.preset_answers = dict(self.answers)
        self._titles = [(name, step.title) for name, step in STEPS.items()]

    def edited_steps(self) -> list[str]:
        """The titles of the steps whose answers differ from the preset's."""
        return [
            title
            for name, title in self._titles
            if self.answers.get(name) != self.preset_answers.get(name)
        ]

    def selections(self, names: Iterable[str] | None = None) -> list[Selection]:
        from wizard.session import selections_for

        wanted = list(self.answers) if names is None else list(names)
        return selections_for({name: self.answers[name] for name in wanted})

    # ---- the flow ---------------------------------------------------------------------

    def load_steps(self) -> None:
        """Start loading the steps and the preset in a thread, once the first screen is up.

        Nothing on the start screen needs them, and they are the slowest imports (the steps
        pull in their own libraries): the admin reads the start screen meanwhile.
        """
        if self._loading is None:
            self._loading = self._in_thread(self._load_answers)
            self.watch_loading()

    @work(group="load", exit_on_error=False)
    async def watch_loading(self) -> None:
        """A preset that cannot be loaded is shown as soon as it is known; the wizard ends."""
        assert self._loading is not None
        try:
            await self._loading.wait()
        except WorkerCancelled:  # the wizard was closed first
            return
        except WorkerFailed as failed:
            await self.push_screen_wait(ErrorScreen(failed.error))
            self.exit(1)

    async def steps_loaded(self) -> bool:
        """Wait for :meth:`load_steps`; False when it failed (the error is on screen)."""
        self.load_steps()
        assert self._loading is not None
        self.set_busy("Loading the steps and the preset…")
        try:
            await self._loading.wait()
        except (WorkerFailed, WorkerCancelled):
            return False
        return True

    @work(exclusive=True, group="flow")
    async def run_flow(self) -> None:
        problem: BaseException | None = None
        failed: HostChoice | None = None
        left: HostChoice | None = None  # "Other host": the start screen's cursor stays on it
        pending: HostChoice | None = (
            HostChoice(self.args.host, "", None) if self.args.host else None
        )
        while True:
            choice: HostChoice | RecoverChoice | SiteChoice | None = pending
            pending = None
            if choice is None:
                self.call_after_refresh(self.load_steps)
                choice = await self.push_screen_wait(
                    StartScreen(
                        self.hosts,
                        problem=problem,
                        failed=failed,
                        # A typed host that failed stays typed, to fix a typo in place.
                        initial=failed.target if failed is not None else self.args.host or "",
                        ssh_config=self.args.ssh_config,
                        current=left,
                    )
                )
            if choice is None:
                break
            if not await self.steps_loaded():
                return
            if isinstance(choice, SiteChoice):  # several hosts: back to the start after
                from screens.site import site_flow

                await site_flow(self, choice)
                problem, failed, left = None, None, choice.left
                continue
            if isinstance(choice, RecoverChoice):
                answer, found = await self.recovery(
                    choice.host.target, problem=choice.problem, searching=choice.host
                )
                if answer == "retry":
                    pending = choice.host
                if found is None:
                    continue
                transport, recovered = found, True
            else:
                try:
                    transport = await self.open_connection(choice)
                except Exception as error:
                    problem, failed = error, choice
                    continue
                recovered = False
            problem, failed = None, None
            self.transport = transport
            try:
                if recovered:  # in over another way: first what was interrupted, then the steps
                    await self.recovery(transport.host_label, transport=transport)
                again = await self.host_session(transport)
            finally:
                self.transport = None
                await self.blocking("Disconnecting…", transport.close)
            if not again:
                break
            left = choice.host if isinstance(choice, RecoverChoice) else choice
        self.exit(0)

    async def host_session(self, transport: SshTransport) -> bool:
        """The step list and everything reached from it; True to choose another host."""
        note = ""
        cursor: str | None = None
        while True:
            rows = await self.read_statuses(transport)
            action = await self.push_screen_wait(
                StepListScreen(
                    transport.host_label,
                    rows,
                    preset=self.preset_source,
                    note=note,
                    cursor=cursor,
                    edited=self.edited_steps(),
                )
            )
            note = ""
            if action.startswith("step:"):  # back on the step list, the cursor stays on it
                cursor = action.removeprefix("step:")
            try:
                if action == "quit":
                    return False
                if action == "host":
                    return True
                if action == "save":
                    await self.save_preset()
                elif action == "audit":
                    note = await audit_flow(self, transport)
                elif action == "snapshots":
                    note = await self.snapshots(transport)
                elif action == "recover":
                    await self.recovery(transport.host_label, transport=transport)
                elif action.startswith("step:"):
                    note = await self.run_step(transport, action.removeprefix("step:"))
            except Exception as error:
                await self.push_screen_wait(ErrorScreen(error))

    async def read_statuses(self, transport: SshTransport) -> list[StepRow]:
        from wizard.session import read_facts, step_statuses

        selections = self.selections()
        self.host_facts = None
        try:
            facts = await self.blocking(
                f"Reading the state of {transport.host_label}…",
                lambda: read_facts(transport, selections),
            )
        except Exception as error:
            await self.push_screen_wait(ErrorScreen(error))
            return [
                StepRow(s.step.name, s.step.title, "unknown", "could not be read")
                for s in selections
            ]
        self.host_facts = facts
        return [
            StepRow(step.name, step.title, status.status.value, status.summary)
            for step, status in step_statuses(selections, facts, transport)
        ]

    def question_context(self, selection: Selection) -> dict[str, str]:
        """What the host says about the step's questions, from the facts the step list read
        (no new round trip; nothing when they could not be read)."""
        from wizard.steps.base import question_context

        if self.host_facts is None:
            return {}
        return question_context(selection.step, selection.answers, self.host_facts)

    def context_for(self, selection: Selection) -> Callable[[Any], dict[str, str]] | None:
        """The same, as a function of the answers typed so far (for the form to follow)."""
        from wizard.steps.base import question_context

        if self.host_facts is None:
            return None
        return partial(question_context, selection.step, facts=self.host_facts)

    async def run_step(self, transport: SshTransport, name: str, *, reason: str = "") -> str:
        """Questions → (CA passphrase) → preview → apply for one step; returns a note for the
        step list. A plan the host refuses is explained, then the questions come back."""
        from wizard.local import SecretNotGiven
        from wizard.render import render_changeset
        from wizard.session import after_confirmed, apply
        from wizard.transport.base import hostwiz_command

        focus: str | None = None
        # The session's answers before this visit: answers sent to a preview are only kept
        # once applied or saved (Escape on the questions then asks; Discard puts these back).
        saved = self.answers[name]
        while True:
            selection = self.selections([name])[0]
            answers = await self.push_screen_wait(
                StepScreen(
                    selection.step,
                    selection.answers,
                    self.question_context(selection),
                    context_for=self.context_for(selection),
                    focus=focus,
                    reason=reason,
                    saved=saved,
                )
            )
            focus = None
            if answers is None:
                self.answers[name] = saved
                return ""
            if isinstance(answers, KeptAnswers):
                self.answers[name] = answers.answers
                return (
                    f"{selection.step.title}: your answers are kept for this session, not "
                    "applied. Open the step again to preview and apply them; w saves them to "
                    "a preset file."
                )
            self.answers[name] = answers
            changeset: Changeset
            try:
                selections, changeset = await self.blocking(
                    f"Planning {selection.step.title} on {transport.host_label}…",
                    partial(self.plan_selections, transport, self.selections([name])),
                )
            except SecretNotGiven:  # Escape in the passphrase dialog: back to the questions
                continue
            except HostwizError as error:
                await self.push_screen_wait(ErrorScreen(error))
                focus = field_in_error(selection.step, error)
                continue
            lines = conflict_warnings(self.selections()) + render_changeset(changeset)
            go = await self.push_screen_wait(
                PreviewScreen(
                    f"{selection.step.title}: what would change on {changeset.host}",
                    lines,
                    empty=changeset.empty,
                )
            )
            if not go:
                if changeset.empty:
                    # The host needs nothing; this machine may still lack the client bundle.
                    report = await self.blocking(
                        "Setting up your docker client…", partial(after_confirmed, selections)
                    )
                    if report.lines:
                        return "\n".join(report.lines)
                continue
            applying = ApplyScreen(
                f"Applying {selection.step.title} on {changeset.host}",
                transport.host_label,
                partial(self._apply, apply, transport, selections, changeset),
                changed=changeset.touched_paths(),
                window=self.args.confirm_timeout,
                rollback=hostwiz_command(transport, "rollback"),
            )
            return await self.finish_apply(transport, applying)

    def _apply(
        self,
        apply: Callable[..., ApplyResult],
        transport: SshTransport,
        selections: list[Selection],
        expected: Changeset,
        progress: Progress,
    ) -> ApplyResult:
        """In the apply screen's thread: apply, then (confirmed only) the steps' local work
        (the TLS step's client bundle and docker context), whose lines the result panel
        shows."""
        from wizard.session import with_after_confirmed

        result = apply(
            transport,
            selections,
            expected=expected,
            progress=progress,
            confirm_timeout=self.args.confirm_timeout,
            session=self.selections(),  # as planned (plan_selections)
        )
        return with_after_confirmed(result, selections)

    async def snapshots(self, transport: SshTransport) -> str:
        from snapshots.rollback import rollback_plan
        from snapshots.store import list_snapshots
        from wizard.local import client_host
        from wizard.plan import Changeset
        from wizard.render import render_changeset
        from wizard.session import with_rollback_notes
        from wizard.transaction import apply_changeset
        from wizard.transport.base import hostwiz_command

        found = await self.blocking("Listing snapshots…", lambda: list_snapshots(transport))
        snapshot_id = await self.push_screen_wait(SnapshotsScreen(transport.host_label, found))
        if snapshot_id is None:
            return ""
        plan = await self.blocking(
            f"Reading snapshot {snapshot_id}…", lambda: rollback_plan(transport, snapshot_id)
        )
        changeset = Changeset(transport.host_label, (plan,))
        go = await self.push_screen_wait(
            PreviewScreen(
                f"Roll back {transport.host_label} to before {snapshot_id}",
                render_changeset(changeset),
                empty=changeset.empty,
                action="Roll back",
            )
        )
        if not go:
            return ""
        steps = next((info.steps for info in found if info.id == snapshot_id), ())
        undoing = ApplyScreen(
            f"Rolling back to before {snapshot_id}",
            transport.host_label,
            lambda progress: with_rollback_notes(
                apply_changeset(
                    transport,
                    changeset,
                    progress=progress,
                    confirm_timeout=self.args.confirm_timeout,
                    reason="rollback",
                ),
                steps,
                client_host(transport),
                self.answers,
            ),
            changed=changeset.touched_paths(),
            window=self.args.confirm_timeout,
            rollback=hostwiz_command(transport, "rollback"),
        )
        return await self.finish_apply(transport, undoing)

    async def finish_apply(self, transport: SshTransport, screen: ApplyScreen) -> str:
        """Show an apply screen; open the recovery screen when the admin asks from there."""
        result = await self.push_screen_wait(screen)
        if screen.recover_requested:
            await self.recovery(transport.host_label, transport=transport)
        return result.message if result is not None else ""

    async def recovery(
        self,
        target: str,
        *,
        problem: BaseException | None = None,
        transport: SshTransport | None = None,
        searching: HostChoice | None = None,
    ) -> tuple[str | None, SshTransport | None]:
        """The recovery screen: connected (``transport``) or not (``searching`` for another
        way into that host). Returns the screen's answer ("retry" to connect again) and the
        connection to go on with when the search found one and the admin chose to."""
        from wizard.connect import lab_ssh_config
        from wizard.transport.ssh import SshTransport

        practice = await self.blocking(
            f"Looking up {target}…", lambda: lab_ssh_config(host_name(target)) is not None
        )
        actions = None
        if transport is not None:
            from wizard.recovery import (
                finish_interrupted,
                fresh_connection,
                interrupted_transactions,
                read_host_change,
                roll_back_interrupted,
            )

            actions = RecoveryActions(
                load=partial(interrupted_transactions, transport),
                roll_back=partial(roll_back_interrupted, transport),
                finish=partial(finish_interrupted, transport),
                host_change=partial(read_host_change, transport),
                fresh=partial(fresh_connection, transport),
            )
        search = None if searching is None else partial(self.look_for_ways_in, searching)
        screen = RecoveryScreen(
            target, practice=practice, problem=problem, actions=actions, search=search
        )
        answer = await self.push_screen_wait(screen)
        found = screen.ways_in.transport if screen.ways_in is not None else None
        if answer == "connected" and isinstance(found, SshTransport):
            return answer, found
        if found is not None:
            await self.blocking("Disconnecting…", found.close)
        return answer, None

    async def save_preset(self) -> None:
        from presets import save_preset

        default = self.args.preset if str(self.args.preset).endswith(".toml") else "hostwiz.toml"
        path = await self.push_screen_wait(SavePresetScreen(default))
        if path is None:
            return
        try:
            save_preset(Path(path), self.answers)
        except OSError as error:
            raise HostwizError(
                f"could not write {path}: {error.strerror}.", "Choose a folder you can write to."
            ) from None
        from wizard.transport.base import shell_quote

        words = ["hostwiz", *(self.transport.cli_options if self.transport else ()), "--preset"]
        again = " ".join(shell_quote(word) for word in [*words, path])
        self.notify(f"Answers saved to {path}. Use them with: {again}")


def close_unused(transport: SshTransport) -> None:
    """Close a connection nobody waits for any more (its attempt was stopped)."""
    with contextlib.suppress(Exception):  # in a thread nobody watches: nothing to report to
        transport.close()


def field_in_error(step: Any, error: HostwizError) -> str | None:
    """The step's question an error is about (the questions come back focused on it)."""
    from screens.questions import field_named_in
    from wizard.answers import fields_of

    return field_named_in(fields_of(step.answers_type), error.message, error.hint)


def default_args(**values: Any) -> argparse.Namespace:
    """The wizard's options with their command-line defaults (for tests and embedding)."""
    base: dict[str, Any] = {
        "host": None,
        "ssh_config": None,
        "identity": None,
        "accept_new_host_key": False,
        "sudo_password_stdin": False,
        "preset": "hardened",
        "overrides": [],
        "plain": False,
        "yes": False,
        "confirm_timeout": 60,
        "passphrase_file": None,
    }
    base.update(values)
    return argparse.Namespace(**base)


def run_app(args: argparse.Namespace) -> int:
    """Entry point used by ``hostwiz`` (see :func:`hostwiz.cli.cmd_wizard`)."""
    from wizard.confirm_timeout import check_confirm_timeout

    if threading.current_thread() is not threading.main_thread():
        raise HostwizError("the wizard must run in the main thread.")
    check_confirm_timeout(args.confirm_timeout)  # before the first screen
    app = HostwizApp(args)
    try:
        result = app.run()
    finally:
        if app.transport is not None:  # quit (Ctrl+Q) while connected
            app.transport.close()
    return 1 if result is None else int(result)


def conflict_warnings(selections: list[Selection]) -> list[RenderedLine]:
    """The combination checker's findings over every step's answers, as preview warnings."""
    from wizard.checks import conflict_lines, conflicts_for
    from wizard.render import RenderedLine as Line

    return [Line("warning", text) for text in conflict_lines(conflicts_for(selections))]
