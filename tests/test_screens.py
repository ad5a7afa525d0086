"""The Textual wizard, driven with Pilot.

Screens that need no host get real step data (the Docker engine step's fields, a changeset
planned from fixture fact tables) and are driven one at a time inside a small harness app. The
whole app runs against loopback for connection failures and against a practice host (``lab``).
SVG snapshots of the main screens are taken at 80×24 and 120×40.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from screen_data import HOST, docker_changeset, firewall_context, firewall_context_for
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Label, Select, Static, Switch

from screens.app import HostwizApp, default_args
from screens.apply import ApplyScreen, clock_time
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
from screens.start import HostChoice, RecoverChoice, StartScreen, ssh_config_hosts
from screens.step_form import KeptAnswers, StepScreen, UnsavedScreen
from screens.step_list import StepListScreen, StepRow
from screens.widgets import ProgressLog, QuestionForm
from snapshots import local_journal
from snapshots.store import SnapshotInfo
from wizard.errors import ApplyFailed, ConnectionFailed, HostKeyChanged
from wizard.local import SecretAnswer
from wizard.pki import WrongPassphrase
from wizard.recovery import (
    COMMON_SSH_PORTS,
    Fresh,
    HostChange,
    Interrupted,
    Search,
    Tried,
    WayIn,
    explain_last_change,
)
from wizard.render import RenderedLine, render_changeset
from wizard.steps import STEPS
from wizard.steps.docker import DockerEngineAnswers
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.steps.tls.local import passphrase_request
from wizard.transaction import ApplyResult, Event
from wizard.transport.ssh_connect import HostKeyInfo
from wizard.ways_in import WaysIn


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body with asyncio (no pytest async plugin is needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


CSS = Path(__file__).parent.parent / "screens" / "hostwiz.tcss"
SIZES = [(80, 24), (120, 40)]


class Harness(App[None]):
    """Shows one screen and records what it dismissed with."""

    CSS_PATH = CSS

    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make = make
        self.results: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("harness")

    def on_mount(self) -> None:
        self.push_screen(self.make(), self.results.append)


def step_screen() -> StepScreen:
    return StepScreen(STEPS["docker"], DockerEngineAnswers())


def firewall_screen(answers: FirewallAnswers | None = None) -> StepScreen:
    """The firewall step's form with what a small router's facts say about its questions."""
    answers = answers or FirewallAnswers(enabled=True)
    return StepScreen(
        STEPS["firewall"], answers, firewall_context(answers), context_for=firewall_context_for()
    )


def preview_screen() -> PreviewScreen:
    changeset = docker_changeset()
    return PreviewScreen(
        f"Docker engine: what would change on {HOST}",
        render_changeset(changeset),
        empty=changeset.empty,
    )


def step_list_screen() -> StepListScreen:
    rows = [StepRow("docker", "Docker engine", "not done", "Docker runs with its defaults")]
    return StepListScreen(HOST, rows, preset="preset hardened")


def start_screen() -> StartScreen:
    hosts = [
        HostChoice("hw1", "practice host", "/tmp/lab/ssh_config"),
        HostChoice("web1", "from ~/.ssh/config"),
    ]
    return StartScreen(hosts)


# The messages wizard.transaction sends.
ARMED = Event(
    "armed",
    "Safety timer armed: the host undoes this by itself in 60 s unless hostwiz confirms over "
    "a new connection.",
)
EVENTS = [
    Event("snapshot", "Snapshot 20240501-101500-ab12 recorded on the host"),
    ARMED,
    Event("action", "create the unprivileged dockremap user", 1),
    Event("action-done", "create the unprivileged dockremap user", 1),
    Event("action", "hardened dockerd settings", 4),
    Event("action-done", "hardened dockerd settings", 4),
    Event("health", "Checking Docker engine"),
    Event("confirm", "Confirmed over a new connection in 1.4 s"),
    Event("done", "Applied 2 change(s). Undo with: hostwiz rollback 20240501-101500-ab12"),
]
RESULT = ApplyResult("20240501-101500-ab12", 5, "Docker engine is set up on web1.", True)


def replay(progress: Callable[[Event], None]) -> ApplyResult:
    for event in EVENTS:
        progress(event)
    return RESULT


def apply_screen() -> ApplyScreen:
    return ApplyScreen(
        f"Applying Docker engine on {HOST}",
        HOST,
        replay,
        changed=docker_changeset().touched_paths(),
    )


FIXED = 1714558500.0
"""2024-05-01 10:15:00 UTC: the clock of screens whose text shows times."""


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = FIXED) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


UNCONFIRMED = ApplyResult(
    "20240501-101500-ab12",
    2,
    "Applied, but hostwiz could not confirm over a new connection: the host will undo the "
    "change by itself within 60 s. Run `hostwiz recover` if you cannot get back in.",
    confirmed=False,
)


def unconfirmed_apply_screen() -> ApplyScreen:
    def run(progress: Callable[[Event], None]) -> ApplyResult:
        for event in EVENTS[:7]:
            progress(event)
        progress(
            Event(
                "warning",
                "Could not open a new connection: 10.213.0.12 refused the connection on port 22.",
            )
        )
        return UNCONFIRMED

    return ApplyScreen(
        f"Applying Docker engine on {HOST}",
        HOST,
        run,
        changed=["/etc/docker/daemon.json"],
        clock=FakeClock(),
    )


SNAPSHOT_ID = "20240501-101500-ab12"


def interrupted(snapshot_id: str = SNAPSHOT_ID, *, timer: bool = False) -> Interrupted:
    return Interrupted(
        SnapshotInfo(
            snapshot_id,
            "2024-05-01T10:15:00Z",
            ("docker",),
            ("/etc/docker/daemon.json", "/etc/subuid"),
            (),
            "done 1",
        ),
        timer,
    )


def recovery_screen() -> RecoveryScreen:
    """Connected: two interrupted changes, one of them still timed by the host."""
    found = [interrupted(), interrupted("20240501-103000-cd34", timer=True)]
    actions = RecoveryActions(lambda: found, lambda snapshot_id: "", lambda snapshot_id: True)
    return RecoveryScreen(HOST, actions=actions, clock=FakeClock())


LOCKED = "locked1"


def write_journal(host: str, *entries: tuple[float, str, float | None]) -> None:
    """A local journal for ``host``: (time, event, deadline) of one transaction."""
    local_journal.journal_file(host).unlink(missing_ok=True)
    for when, event, deadline in entries:
        local_journal.record(
            local_journal.JournalEntry(when, host, SNAPSHOT_ID, event, ("docker",), deadline)
        )


def refused(port: int) -> str:
    return f"10.213.0.12:{port} ({LOCKED}) refused the connection: nothing listens on port {port} there."


NOTHING_ANSWERS = [
    Tried(WayIn(22, "root"), "refused", refused(22)),
    Tried(
        WayIn(2222, "root"), "no-answer", f"No answer from 10.213.0.12:2222 ({LOCKED}) within 4 s."
    ),
    *(Tried(WayIn(port, "root"), "refused", refused(port)) for port in (2022, 2200)),
]


class ReplayedSearch:
    """A search for other ways in that replays ``tries`` (one per ``step`` gate when given)
    and finds ``found``; it records the thread it ran in and whether it was told to stop."""

    def __init__(
        self,
        tries: list[Tried],
        found: WayIn | None = None,
        *,
        transport: Any = None,
        options: tuple[str, ...] = (),
        moved: bool = False,
        step: threading.Semaphore | None = None,
    ) -> None:
        self.tries, self.found, self.transport = tries, found, transport
        self.options, self.moved, self.step = options, moved, step
        self.in_thread: bool | None = None
        self.stopped = False

    def __call__(self, say: Callable[[Tried], None], stop: Callable[[], bool]) -> WaysIn | None:
        self.in_thread = threading.current_thread() is not threading.main_thread()
        search = Search()
        for tried in self.tries:
            if self.step is not None:
                while not self.step.acquire(timeout=0.05):
                    if stop():
                        self.stopped = True
                        return WaysIn(LOCKED, LOCKED, 22, search)
            search.tried.append(tried)
            say(tried)
        search.found, search.transport = self.found, self.transport
        return WaysIn(LOCKED, LOCKED, 22, search, self.options, port_remembered=self.moved)


def locked_out_screen(search: ReplayedSearch | None = None) -> RecoveryScreen:
    """Cannot get in: the journal has an unconfirmed change whose timer has 30 s to go, and
    none of the other ways in works."""
    write_journal(LOCKED, (FIXED - 30, "applying", FIXED + 30))
    problem = ConnectionFailed(
        refused(22),
        "Check the port, and that the SSH server runs on the host (systemctl status ssh on the "
        "VM console).",
        kind="refused",
    )
    return RecoveryScreen(
        LOCKED,
        practice=True,
        problem=problem,
        search=search or ReplayedSearch(NOTHING_ANSWERS),
        clock=FakeClock(),
    )


HOST_KEY_CHANGED = HostKeyChanged(
    HOST, "SHA256:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5", "/root/.ssh/known_hosts"
)


def host_key_changed_screen() -> StartScreen:
    hosts = [HostChoice(HOST, "from ~/.ssh/config")]
    return StartScreen(hosts, problem=HOST_KEY_CHANGED, failed=hosts[0])


def snapshots_screen() -> SnapshotsScreen:
    infos = [
        SnapshotInfo(
            "20240501-101500-ab12",
            "2024-05-01T10:15:00Z",
            ("docker",),
            ("/etc/docker/daemon.json", "/etc/subuid", "/etc/subgid"),
            (),
            "confirmed",
        ),
        SnapshotInfo(
            "20240502-090000-cd34",
            "2024-05-02T09:00:00Z",
            ("rollback 20240501-101500-ab12",),
            ("/etc/docker/daemon.json",),
            (),
            "confirmed",
            "rollback",
        ),
    ]
    return SnapshotsScreen(HOST, infos)


# ---- the question form ------------------------------------------------------------------


@run_async
async def test_form_is_built_from_the_step_fields() -> None:
    app = Harness(step_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        form = app.screen.query_one(QuestionForm)
        names = [row.info.name for row in form.rows()]
        assert names == [info.name for info in form.fields]
        assert isinstance(app.screen.query_one("#field-mode"), Select)
        assert isinstance(app.screen.query_one("#field-icc"), Switch)
        assert isinstance(app.screen.query_one("#field-log_max_size"), Input)
        # show_if: the rootless user is only asked for in rootless mode.
        assert not form.row("rootless_user").display
        app.screen.query_one("#field-mode", Select).value = "rootless"
        await pilot.pause()
        assert form.row("rootless_user").display


@run_async
async def test_validation_as_typed_blocks_the_preview() -> None:
    app = Harness(step_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        size = app.screen.query_one("#field-log_max_size", Input)
        size.value = ""
        size.focus()
        await pilot.press(*"10 megs")
        await pilot.pause()
        row = app.screen.query_one(QuestionForm).row("log_max_size")
        assert "expected a size such as 10m" in str(row.query_one(".field-error", Static).content)
        assert row.has_class("invalid")
        assert app.screen.query_one("#preview", Button).disabled
        await pilot.press("ctrl+n")
        assert app.results == []  # still on the step
        size.value = "20m"
        await pilot.pause()
        assert not row.has_class("invalid")
        assert not app.screen.query_one("#preview", Button).disabled
        await pilot.press("ctrl+n")
        await pilot.pause()
    assert app.results == [DockerEngineAnswers(log_max_size="20m")]


@run_async
async def test_rootless_needs_a_valid_user_name_and_back_returns_none() -> None:
    app = Harness(step_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.screen.query_one("#field-mode", Select).value = "rootless"
        user = app.screen.query_one("#field-rootless_user", Input)
        user.value = "Bad User"
        await pilot.pause()
        assert app.screen.query_one("#preview", Button).disabled
        user.value = "admin"
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.results[-1] == DockerEngineAnswers(mode="rootless", rootless_user="admin")

    back = Harness(step_screen)
    async with back.run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert back.results == [None]


@run_async
async def test_values_keep_int_and_bool_types() -> None:
    app = Harness(step_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.screen.query_one("#field-log_max_file", Input).value = "9"
        app.screen.query_one("#field-icc", Switch).value = True
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
    assert app.results == [DockerEngineAnswers(log_max_file=9, icc=True)]


def context_text(form: QuestionForm, name: str) -> str:
    """The host's line under a question ("" when there is none)."""
    found = form.row(name).query(".field-context")
    return str(found.first(Static).content).removeprefix("▸ ") if found else ""


@run_async
async def test_the_host_says_its_interfaces_and_ssh_path_next_to_the_zone_questions() -> None:
    app = Harness(lambda: firewall_screen(FirewallAnswers()))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        form = app.screen.query_one(QuestionForm)
        # Zones off: only the switch is asked; the zone questions come with it.
        shown = [row.info.name for row in form.rows() if row.display]
        assert shown == ["enabled"]
        app.screen.query_one("#field-enabled", Switch).value = True
        await pilot.pause()
        assert all(row.display for row in form.rows())
        for zone in ("mgmt", "lan", "wan"):
            line = context_text(form, f"{zone}_interfaces")
            assert "eth0 192.0.2.10/24" in line and "lan 10.0.0.1/24" in line, line
            assert "wan 198.51.100.7/24" in line, line
            assert "docker0" not in line, line  # Docker's bridges are not the admin's to zone
        # Where the SSH connection comes in: once, under the zone eth0 is in with these
        # answers (in no list: the zone of interfaces not listed, wan).
        assert ssh_lines(form) == {
            "wan_services": "Your SSH connection comes from 192.0.2.50 on eth0, which is in zone "
            "wan with these answers (in no list: interfaces not listed are wan): keep ssh in "
            "wan's services."
        }
        assert context_text(form, "forward") == ""  # nothing to say there
        # eth0 typed into the management zone: the line follows it.
        mgmt = app.screen.query_one("#field-mgmt_interfaces", Input)
        mgmt.focus()
        await pilot.press(*"eth0")
        await pilot.pause()
        assert list(ssh_lines(form)) == ["mgmt_services"]
        assert (
            "which is in zone mgmt with these answers: keep ssh in mgmt's"
            in ssh_lines(form)["mgmt_services"]
        )
        await pilot.press(*["backspace"] * 4)
        await pilot.pause()
        assert list(ssh_lines(form)) == ["wan_services"]
        # The context is shown, not asked: the answers are unchanged by it.
        await pilot.press("ctrl+n")
        await pilot.pause()
    assert app.results == [FirewallAnswers(enabled=True)]


def ssh_lines(form: QuestionForm) -> dict[str, str]:
    """The rows that say where the admin's SSH connection comes in, and what they say."""
    found = {}
    for row in form.rows():
        line = context_text(form, row.info.name)
        if row.display and "Your SSH connection" in line:
            found[row.info.name] = line
    return found


@run_async
async def test_escape_with_edited_answers_asks_to_keep_editing_discard_or_save() -> None:
    app = Harness(step_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        step = app.screen
        step.query_one("#field-log_max_file", Input).value = "9"
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, UnsavedScreen)
        await pilot.press("escape")  # keep editing: the answer is still there
        await pilot.pause()
        assert app.screen is step and app.results == []
        assert step.query_one("#field-log_max_file", Input).value == "9"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("s")  # save: kept, not previewed
        await pilot.pause()
    assert app.results == [KeptAnswers(DockerEngineAnswers(log_max_file=9))]

    discard = Harness(step_screen)
    async with discard.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        discard.screen.query_one("#field-log_max_size", Input).value = "1 gig"  # not valid
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        dialog = discard.screen
        assert isinstance(dialog, UnsavedScreen)
        assert dialog.query_one("#save", Button).disabled  # nothing valid to save
        await pilot.press("s")
        await pilot.pause()
        assert discard.screen is dialog
        await pilot.press("d")
        await pilot.pause()
    assert discard.results == [None]

    # The same value typed back (a list with other spaces): nothing to ask.
    same = Harness(lambda: firewall_screen(FirewallAnswers(enabled=True)))
    async with same.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        same.screen.query_one("#field-mgmt_services", Input).value = "ssh,ping"
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert same.results == [None]


def error_under(form: QuestionForm, name: str) -> str:
    return str(form.row(name).query_one(".field-error", Static).content)


@run_async
async def test_list_items_and_answers_across_fields_are_checked_as_typed() -> None:
    app = Harness(firewall_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        form = screen.query_one(QuestionForm)
        services = screen.query_one("#field-wan_services", Input)
        services.focus()
        await pilot.press("end", *", htps")
        await pilot.pause()
        assert "'htps' is neither a known service nor a port" in error_under(form, "wan_services")
        assert "https" in error_under(form, "wan_services")  # the suggestion
        assert form.row("wan_services").has_class("invalid")
        assert screen.query_one("#preview", Button).disabled
        await pilot.press("backspace", "backspace", *"tps")
        await pilot.pause()
        assert error_under(form, "wan_services") == ""
        assert not screen.query_one("#preview", Button).disabled
        # One interface in two zones: said under the second, at once.
        screen.query_one("#field-mgmt_interfaces", Input).value = "eth0"
        screen.query_one("#field-lan_interfaces", Input).value = "lan, eth0"
        await pilot.pause()
        assert "interface eth0 is also in firewall.mgmt_interfaces" in error_under(
            form, "lan_interfaces"
        )
        assert screen.query_one("#preview", Button).disabled
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.results == []
        assert app.focused is screen.query_one("#field-lan_interfaces", Input)


@run_async
async def test_the_questions_come_back_on_the_one_the_error_was_about() -> None:
    """The plan refuses to cut the admin's SSH: its hint names the form's questions with their
    preset keys, and the questions come back focused on the zone's services."""
    from screens.app import field_in_error
    from tests.unit.test_firewall_plan import firewall_facts
    from wizard.errors import PlanConflict

    answers = FirewallAnswers(enabled=True, wan_services=("ping",))
    with pytest.raises(PlanConflict) as refused:
        STEPS["firewall"].plan(answers, firewall_facts(answers))
    hint = refused.value.hint
    assert '"Services offered to wan" (wan_services)' in hint
    assert '"Allow a change that cuts my SSH path" (allow_cutting_my_ssh = true)' in hint
    assert field_in_error(STEPS["firewall"], refused.value) == "wan_services"

    app = Harness(
        lambda: StepScreen(
            STEPS["firewall"], answers, context_for=firewall_context_for(), focus="wan_services"
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.focused is app.screen.query_one("#field-wan_services", Input)


@run_async
async def test_switches_say_on_or_off() -> None:
    app = Harness(step_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        row = app.screen.query_one(QuestionForm).row("icc")

        def word() -> str:
            return str(row.query_one(".switch-state", Label).content)

        assert word() == "Off"
        app.screen.query_one("#field-icc", Switch).value = True
        await pilot.pause()
        assert word() == "On"


@run_async
async def test_help_says_how_to_close_it_and_its_footer_offers_close() -> None:
    from textual.widgets._footer import FooterKey

    app = Harness(start_screen)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.push_screen(HelpScreen())
        await pilot.pause()
        help_screen = app.screen
        assert "Escape, q or F1 closes this help" in text_of(help_screen, "#help-close")
        keys = [(key.key_display, key.description) for key in help_screen.query(FooterKey)]
        assert ("esc", "Close") in keys, keys
        assert all(description != "Quit" for _, description in keys)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


# ---- preview, apply, lists, modals ---------------------------------------------------------


@run_async
async def test_preview_shows_warnings_and_confirms_or_goes_back() -> None:
    app = Harness(preview_screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        warnings = app.screen.query_one("#warnings", Static)
        assert "separate storage area" in str(warnings.content)
        await pilot.press("escape")
        await pilot.pause()
        app.push_screen(preview_screen(), app.results.append)
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
    assert app.results == [False, True]


@run_async
async def test_an_empty_preview_cannot_be_applied() -> None:
    app = Harness(lambda: PreviewScreen("nothing", [], empty=True))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.screen.query_one("#apply", Button).disabled
        await pilot.press("a")
        await pilot.pause()
        assert app.results == []
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [False]


@run_async
async def test_apply_screen_logs_each_event_and_says_how_to_undo() -> None:
    app = Harness(apply_screen)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        for _ in range(50):
            await pilot.pause(0.02)
            if screen.done:
                break
        lines = screen.query_one(ProgressLog).lines
        assert len(lines) == len(EVENTS)
        assert lines[0].startswith("[snap]") and "Confirmed" in lines[-2]
        result = str(screen.query_one("#result", Static).content)
        assert f"hostwiz rollback --host {HOST} {RESULT.snapshot_id}" in result
        assert "/etc/docker/daemon.json" in result
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [RESULT]


@run_async
async def test_apply_screen_explains_a_failure_without_traceback() -> None:
    go = threading.Event()

    def fails(progress: Callable[[Event], None]) -> ApplyResult:
        go.wait(10)
        progress(Event("action-failed", "restart dockerd", 5, "Job for docker.service failed."))
        raise ConnectionFailed("the connection to web1 was lost.", "Check the network.")

    app = Harness(lambda: ApplyScreen("Applying", HOST, fails))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        await pilot.press("escape")  # not possible while running
        await pilot.pause()
        assert app.screen is screen
        go.set()
        for _ in range(50):
            await pilot.pause(0.02)
            if screen.done:
                break
        text = str(screen.query_one("#result", Static).content)
        assert "Cannot connect: the connection to web1 was lost." in text
        assert "What to do: Check the network." in text
        assert "Traceback" not in text
        output = str(screen.query_one("#command-output", Static).content)
        assert "Job for docker.service failed." in output
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def until(pilot: Any, condition: Callable[[], bool], seconds: float = 10) -> None:
    """Let the app run until ``condition`` holds (at most ``seconds``)."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen never got there")


async def palette(pilot: Any, command: str) -> None:
    """Run a command palette entry: type its name, wait until it is the first hit, Enter."""
    from textual.command import CommandList

    await pilot.press("ctrl+p", *command)

    def first_hit() -> str:
        found = pilot.app.screen.query(CommandList)
        if not found or not found.first().option_count:
            return ""
        return str(found.first().get_option_at_index(0).prompt)

    await until(pilot, lambda: first_hit().startswith(command))
    await pilot.press("enter")


def text_of(screen: Screen[Any], selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


def window_of(screen: Screen[Any]) -> str:
    """The apply screen's safety-window line."""
    return text_of(screen, "#window")


@run_async
async def test_apply_screen_counts_down_the_safety_window_until_confirmed() -> None:
    clock = FakeClock()
    gates = [threading.Event(), threading.Event()]

    def run(progress: Callable[[Event], None]) -> ApplyResult:
        progress(EVENTS[0])
        progress(ARMED)
        gates[0].wait(10)
        progress(Event("action", "hardened dockerd settings", 4))
        gates[1].wait(10)
        progress(Event("action-done", "hardened dockerd settings", 4))
        progress(Event("confirm", "Confirmed over a new connection in 1.4 s"))
        return RESULT

    app = Harness(lambda: ApplyScreen("Applying", HOST, run, clock=clock))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        await until(pilot, lambda: screen.safety == "ticking")
        window = text_of(screen, "#window")
        assert "unless hostwiz confirms over a new connection" in window
        assert f"at {clock_time(FIXED + 60)} (in 60 s)" in window
        clock.now += 25
        # The line ticks by itself, once a second.
        await until(pilot, lambda: f"at {clock_time(FIXED + 60)} (in 35 s)" in window_of(screen))
        # A command starts: the host moves its deadline to a full window from now.
        gates[0].set()
        await until(pilot, lambda: len(screen.query_one(ProgressLog).lines) == 3)
        assert f"at {clock_time(FIXED + 85)} (in 60 s)" in text_of(screen, "#window")
        clock.now += 70  # the command takes longer than the window
        await until(pilot, lambda: "waits while the current command runs" in window_of(screen))
        assert screen.check_action("close", ()) is None  # no way out while it runs
        gates[1].set()
        await until(pilot, lambda: screen.done)
        window = text_of(screen, "#window")
        assert window.startswith("✓ Confirmed over a new connection in 1.4 s")
        assert "safety timer is stopped" in window
        assert screen.query_one("#window").has_class("ok")
        assert not screen.check_action("recover", ())
        await pilot.press("c")  # not offered: nothing to recover
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [RESULT]
    assert not screen.recover_requested


@run_async
async def test_apply_screen_unconfirmed_says_when_the_host_undoes_it_and_offers_recovery() -> None:
    host = "late1"
    clock = FakeClock()

    def run(progress: Callable[[Event], None]) -> ApplyResult:
        progress(EVENTS[0])
        progress(ARMED)
        progress(Event("warning", "Could not open a new connection: timed out."))
        # What apply_changeset records when the confirmation did not come.
        write_journal(host, (FIXED, "applying", FIXED + 60), (FIXED + 5, "unconfirmed", FIXED + 65))
        return UNCONFIRMED

    app = Harness(lambda: ApplyScreen("Applying", host, run, changed=["/x"], clock=clock))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        await until(pilot, lambda: screen.done)
        window = text_of(screen, "#window")
        assert window.startswith("✗ Not confirmed over a new connection")
        # The same time as the recovery screen gives (both from the local journal).
        at = clock_time(FIXED + 65)
        assert f"undoes this change by itself at {at} (in 65 s)" in window
        assert at in " ".join(explain_last_change(host, FIXED + 1))
        result = text_of(screen, "#result")
        assert "c: the recovery screen" in result
        assert "hostwiz rollback" not in result  # the host undoes it by itself
        clock.now += 70
        await until(
            pilot, lambda: f"should have undone this change by itself at {at}" in window_of(screen)
        )
        assert screen.check_action("recover", ())
        await pilot.press("c")
        await pilot.pause()
    assert app.results == [UNCONFIRMED]
    assert screen.recover_requested


@run_async
async def test_apply_screen_says_a_failed_change_was_undone_at_once() -> None:
    def run(progress: Callable[[Event], None]) -> ApplyResult:
        progress(ARMED)
        progress(Event("action", "restart dockerd", 5))
        progress(Event("action-failed", "restart dockerd failed (exit 1)", 5, "no such key"))
        progress(Event("undo", "Undoing what was done so far"))
        raise ApplyFailed("restart dockerd failed. Everything done so far was undone.")

    app = Harness(lambda: ApplyScreen("Applying", HOST, run, clock=FakeClock()))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        await until(pilot, lambda: screen.done)
        assert "undid the change at once" in text_of(screen, "#window")
        assert not screen.check_action("recover", ())


@run_async
async def test_recovery_screen_when_the_host_cannot_be_reached() -> None:
    clock = FakeClock()

    def make() -> RecoveryScreen:
        screen = locked_out_screen()
        screen.clock = clock
        return screen

    app = Harness(make)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: bool(screen.explanation))
        assert "refused the connection" in text_of(screen, "#problem")
        explained = text_of(screen, "#explain")
        assert f"snapshot {SNAPSHOT_ID}" in explained
        assert f"by itself at {clock_time(FIXED + 30)}, in 30 s" in explained
        console = screen.console_text
        assert f"hostwiz lab shell {LOCKED}" in console  # a practice host's console
        assert "/var/lib/hostwiz/restore LAST" in console
        assert "press t to connect again" in console
        # The other ways in were tried, one line each; none works: the console stays.
        await until(pilot, lambda: not screen.searching)
        assert tries_of(screen) == [
            "✗ port 22 as root: refused (nothing listens there)",
            "✗ port 2222 as root: no answer",
            "✗ port 2022 as root: refused (nothing listens there)",
            "✗ port 2200 as root: refused (nothing listens there)",
        ]
        assert text_of(screen, "#search-outcome").startswith("None of them works.")
        assert screen.query_one("#console").display
        assert not screen.query_one("#found-buttons").display
        clock.now += 10  # the explanation follows the host's timer
        await until(pilot, lambda: "in 20 s" in text_of(screen, "#explain"))
        await pilot.press("t")
        await pilot.pause()
    assert app.results == ["retry"]

    not_practice = Harness(
        lambda: RecoveryScreen("admin@198.51.100.7:2222", problem=ConnectionFailed("no route."))
    )
    async with not_practice.run_test() as pilot:
        screen = recovery_of(not_practice)
        await until(pilot, lambda: bool(screen.explanation))
        assert "has no record of changing admin@198.51.100.7:2222" in text_of(screen, "#explain")
        assert "provider's web console" in screen.console_text
        await pilot.press("escape")
        await pilot.pause()
    assert not_practice.results == [None]


def recovery_of(app: App[Any]) -> RecoveryScreen:
    screen = app.screen
    assert isinstance(screen, RecoveryScreen)
    return screen


def tries_of(screen: RecoveryScreen) -> list[str]:
    return [str(line.content) for line in screen.query(".try").results(Static)]


@run_async
async def test_recovery_screen_finds_another_way_in_and_continues_connected() -> None:
    connection = object()  # the app's SshTransport; the screen only hands it over
    search = ReplayedSearch(
        [*NOTHING_ANSWERS[:3], Tried(WayIn(2200, "root"), "works", "that works")],
        WayIn(2200, "root"),
        transport=connection,
        moved=True,
    )
    app = Harness(lambda: locked_out_screen(search))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: screen.ways_in is not None)
        assert search.in_thread
        assert tries_of(screen)[-1] == "✓ port 2200 as root: that works"
        outcome = text_of(screen, "#search-outcome")
        assert outcome.startswith("What works: port 2200 as root.")
        assert f"hostwiz uses port 2200 for {LOCKED} from now on" in outcome
        assert not screen.query_one("#console").display  # in: no console needed
        await pilot.pause()
        assert app.focused is screen.query_one("#continue", Button)
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == ["connected"]
    assert screen.ways_in is not None and screen.ways_in.transport is connection


@run_async
async def test_recovery_screen_a_login_without_root_rights_says_how_to_use_it() -> None:
    key = Path.home() / ".ssh" / "id_ed25519"
    admin = WayIn(22, "admin", key)
    search = ReplayedSearch(
        [
            Tried(WayIn(22, "root"), "login-refused", "root@10.213.0.12 was refused."),
            Tried(admin, "no-root", "no sudo password was given."),
        ],
        admin,
        options=("--host", f"admin@{LOCKED}", "-i", str(key)),
    )
    app = Harness(lambda: locked_out_screen(search))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: screen.ways_in is not None)
        assert tries_of(screen)[-1] == (
            "✗ port 22 as admin with the key ~/.ssh/id_ed25519: logs in, but no root rights "
            "(no sudo password was given)"
        )
        outcome = text_of(screen, "#search-outcome")
        assert outcome.startswith("What logs in: port 22 as admin with the key ~/.ssh/id_ed25519.")
        assert "no root rights that way (no sudo password was given)" in outcome
        assert f"Connect as admin@{LOCKED}" in outcome
        assert not screen.query_one("#found-buttons").display  # nothing to continue with
        assert screen.query_one("#console").display


@run_async
async def test_recovery_screen_stops_searching_when_left_and_not_with_a_changed_key() -> None:
    search = ReplayedSearch(NOTHING_ANSWERS, step=threading.Semaphore(1))
    app = Harness(lambda: locked_out_screen(search))
    async with app.run_test() as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: len(tries_of(screen)) == 1)
        assert screen.searching
        await pilot.press("escape")
        await until(pilot, lambda: search.stopped)
    assert app.results == [None]

    untouched = ReplayedSearch(NOTHING_ANSWERS)
    danger = Harness(lambda: RecoveryScreen(HOST, problem=HOST_KEY_CHANGED, search=untouched))
    async with danger.run_test() as pilot:
        screen = recovery_of(danger)
        await until(pilot, lambda: bool(screen.explanation))
        assert "Not looking for other ways in: the host key changed" in text_of(
            screen, "#search-outcome"
        )
        assert untouched.in_thread is None and not screen.searching


class FakeHost:
    """RecoveryActions that record each call and the thread it ran in."""

    def __init__(self, found: list[Interrupted], *, fail_load: bool = False) -> None:
        self.found = found
        self.fail_load = fail_load
        self.calls: list[tuple[str, str, bool]] = []

    def _call(self, what: str, snapshot_id: str = "") -> None:
        in_thread = threading.current_thread() is not threading.main_thread()
        self.calls.append((what, snapshot_id, in_thread))

    def load(self) -> list[Interrupted]:
        self._call("load")
        if self.fail_load:
            raise ConnectionFailed("the connection to web1 was lost.", "Connect again.")
        return self.found

    def roll_back(self, snapshot_id: str) -> str:
        self._call("roll back", snapshot_id)
        return "restored /etc/docker/daemon.json"

    def finish(self, snapshot_id: str) -> bool:
        self._call("finish", snapshot_id)
        return True

    def actions(self) -> RecoveryActions:
        return RecoveryActions(self.load, self.roll_back, self.finish)


@run_async
async def test_recovery_screen_rolls_back_keeps_or_leaves_each_interrupted_change() -> None:
    ids = ["20240501-101500-aa11", "20240501-101600-bb22", "20240501-101700-cc33"]
    running = "20240501-101800-dd44"
    host = FakeHost([*(interrupted(i) for i in ids), interrupted(running, timer=True)])
    app = Harness(lambda: RecoveryScreen(HOST, actions=host.actions()))
    async with app.run_test(size=(100, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, RecoveryScreen)
        await until(pilot, lambda: screen.pending is not None)
        await pilot.pause(0.1)  # laid out
        assert not screen.query_one("#console").display  # connected: no console needed
        item = screen.query_one(f"#pending-{running}")
        assert "safety timer is still running" in " ".join(
            str(s.content) for s in item.query(Static).results(Static)
        )
        assert not item.query(Button)  # nothing to decide: the host puts it back
        await pilot.click(f"#rollback-{ids[0]}")
        await until(pilot, lambda: ids[0] in screen.outcomes)
        await pilot.click(f"#finish-{ids[1]}")
        await until(pilot, lambda: ids[1] in screen.outcomes)
        await pilot.click(f"#leave-{ids[2]}")
        await until(pilot, lambda: ids[2] in screen.outcomes)
        assert screen.outcomes == {ids[0]: "rolled back", ids[1]: "kept", ids[2]: "left"}
        first = screen.query_one(f"#pending-{ids[0]}")
        assert "Rolled back" in str(first.query_one(".outcome", Static).content)
        assert not first.query_one(".pending-buttons").display
        assert "recover --host web1" in str(
            screen.query_one(f"#pending-{ids[2]}").query_one(".outcome", Static).content
        )
        await pilot.press("t")  # check again
        await until(pilot, lambda: len(host.calls) == 4)
        await pilot.press("escape")
        await pilot.pause()
    assert host.calls == [
        ("load", "", True),
        ("roll back", ids[0], True),
        ("finish", ids[1], True),
        ("load", "", True),
    ]
    assert app.results == [None]


def undone_on_host(reverted: float) -> HostChange:
    """The host's journal: SSH was to move 22 → 2222, nobody confirmed, the timer undid it."""
    return HostChange(
        SNAPSHOT_ID,
        ((FIXED - 60, "recorded"), (FIXED - 60, "armed 60s"), (FIXED - 50, "done 0"),
         (reverted - 1, "reverting (timeout)"), (reverted, "reverted (timeout)")),
        deadline=reverted - 1,
        steps=("ssh",),
        ssh_port_before=22,
        ssh_port_after=2222,
    )  # fmt: skip


@run_async
async def test_recovery_screen_connected_tries_a_new_connection_and_reads_the_hosts_journal() -> (
    None
):
    """A foreign rule drops new SSH connections; the change was undone by the host's timer 10 s
    before this machine's journal expected. The open connection still works: the screen tries a
    new one, says it gets no answer, that the host undid the change at the host's time (SSH
    on 22 again), and that the cause is not hostwiz's change; the console shows what to look
    at, not restore LAST."""
    host = "undone1"
    write_journal(host, (FIXED - 60, "applying", FIXED), (FIXED - 40, "unconfirmed", FIXED + 10))
    reverted = FIXED - 5
    fresh = Fresh("no-answer", f"No answer from 10.213.0.12:22 ({host}) within 10 s.", 22)
    fake = FakeHost([])
    actions = RecoveryActions(fake.load, fake.roll_back, fake.finish,
                              host_change=lambda: undone_on_host(reverted),
                              fresh=lambda: fresh)  # fmt: skip
    clock = FakeClock()
    app = Harness(lambda: RecoveryScreen(host, practice=True, actions=actions, clock=clock))
    async with app.run_test(size=(100, 50)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: screen.lockout is not None)
        await until(pilot, lambda: "undid" in text_of(screen, "#explain"))
        explained = text_of(screen, "#explain")
        assert (
            f"The host undid it at {clock_time(reverted)} because no new connection could "
            "confirm it before the host's safety timer ran out; SSH is on port 22 again."
        ) in explained, explained
        assert "puts the snapshot back" not in explained
        assert clock_time(FIXED + 10) not in explained  # this machine's estimate is not used
        assert text_of(screen, "#fresh").startswith("✗ A new connection fails (no answer)")
        lockout = text_of(screen, "#lockout")
        assert "get no answer" in lockout and "firewall" in lockout
        assert "the cause is not hostwiz's change" in lockout
        assert screen.query_one("#console").display
        console = screen.console_text
        assert "iptables -S INPUT" in console and "ss -tlnp" in console
        assert "/var/lib/hostwiz/restore LAST" not in console
        assert f"hostwiz lab shell {host}" in console


@run_async
async def test_recovery_screen_says_which_port_a_new_connection_got_in_on() -> None:
    """SSH moved to 2222 while this connection stayed on 22: the new connection got in on
    2222 (:func:`wizard.recovery.fresh_connection`), and the screen says so, not a lockout."""
    fresh = Fresh(
        "works",
        "a new connection works on port 2222 (SSH moved there: not on port 22, refused)",
        2222,
        failed_on=22,
    )
    fake = FakeHost([])
    actions = RecoveryActions(fake.load, fake.roll_back, fake.finish, host_change=lambda: None,
                              fresh=lambda: fresh)  # fmt: skip
    app = Harness(lambda: RecoveryScreen("moved1", actions=actions, clock=FakeClock()))
    async with app.run_test(size=(100, 50)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: screen.fresh is not None)
        await pilot.pause()
        shown = text_of(screen, "#fresh")
        assert shown.startswith("✓ A new connection gets in (port 2222).")
        assert "Not on port 22, where this connection came in" in shown
        assert screen.lockout is None


@run_async
async def test_recovery_screen_locked_out_after_the_timer_blames_no_undone_change() -> None:
    """Cannot get in, this machine's journal says the timer should have undone the change 10 s
    ago, no other way in works: the time since is recomputed (not left at "10 s ago"), the
    cause is most likely not hostwiz's change, and the console shows what to look at."""
    host = "overdue1"
    write_journal(
        host, (FIXED - 70, "applying", FIXED - 10), (FIXED - 60, "unconfirmed", FIXED - 10)
    )
    clock = FakeClock()
    problem = ConnectionFailed(f"No answer from 10.213.0.12:22 ({host}) within 4 s.",
                               kind="no-answer")  # fmt: skip
    tries = [Tried(WayIn(22, "root"), "no-answer", problem.message),
             Tried(WayIn(2222, "root"), "refused", refused(2222))]  # fmt: skip
    app = Harness(lambda: RecoveryScreen(host, practice=True, problem=problem,
                                         search=ReplayedSearch(tries), clock=clock))  # fmt: skip
    async with app.run_test(size=(100, 50)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: "(10 s ago" in text_of(screen, "#explain"))
        assert "this machine's estimate" in text_of(screen, "#explain")
        clock.now += 100
        await until(pilot, lambda: "(110 s ago" in text_of(screen, "#explain"))
        await until(pilot, lambda: screen.lockout is not None)
        lockout = text_of(screen, "#lockout")
        assert "New connections to port 22 get no answer" in lockout
        assert "the cause is most likely not hostwiz's change" in lockout
        assert "iptables -S INPUT" in screen.console_text
        assert "/var/lib/hostwiz/restore LAST" not in screen.console_text
        assert "press t to connect again" in screen.console_text


@run_async
async def test_recovery_screen_falls_back_to_the_console_when_listing_fails() -> None:
    host = FakeHost([], fail_load=True)
    app = Harness(lambda: RecoveryScreen(HOST, actions=host.actions()))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = recovery_of(app)
        await until(pilot, lambda: bool(screen.query("#pending .problem")))
        problem = str(screen.query_one("#pending .problem", Static).content)
        assert problem.startswith("Cannot connect: the connection to web1 was lost.")
        assert screen.query_one("#console").display
        assert "/var/lib/hostwiz/restore LAST" in screen.console_text

    empty = Harness(lambda: RecoveryScreen(HOST, actions=FakeHost([]).actions()))
    async with empty.run_test() as pilot:
        screen = recovery_of(empty)
        await until(pilot, lambda: screen.pending == [])
        assert "No interrupted change on the host" in str(
            screen.query_one("#pending Static", Static).content
        )


@run_async
async def test_host_key_changed_stands_out() -> None:
    app = Harness(host_key_changed_screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        problem = app.screen.query_one("#problem", Static)
        assert problem.has_class("danger")
        text = str(problem.content)
        assert text.startswith(" ⚠ HOST KEY CHANGED ")
        assert "Do not type passwords" in text
        assert HOST_KEY_CHANGED.fingerprint in text
        assert "ssh-keygen -R web1" in text
        # Ctrl+R: recovery for the host that failed.
        await pilot.press("ctrl+r")
        await pilot.pause()
    assert app.results == [RecoverChoice(HostChoice(HOST, "from ~/.ssh/config"), HOST_KEY_CHANGED)]

    modal = Harness(lambda: ErrorScreen(HOST_KEY_CHANGED))
    async with modal.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert modal.screen.query_one(".dialog").has_class("danger")
        plain = Harness(lambda: ErrorScreen(ConnectionFailed("refused.")))
    async with plain.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not plain.screen.query_one(".dialog").has_class("danger")


@run_async
async def test_start_screen_recovery_for_the_highlighted_or_typed_host() -> None:
    app = Harness(start_screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "ctrl+r")
        await pilot.pause()
        app.push_screen(start_screen(), app.results.append)
        await pilot.pause()
        await pilot.press("ctrl+l", *"admin@192.0.2.10", "ctrl+r")
        await pilot.pause()
    assert app.results == [
        RecoverChoice(HostChoice("web1", "from ~/.ssh/config")),
        RecoverChoice(HostChoice("admin@192.0.2.10", "typed", None)),
    ]


@run_async
async def test_start_screen_offers_no_recovery_for_a_name_that_does_not_resolve() -> None:
    """A typo in the host name: the hint says to check the name; Ctrl+R: recovery would only
    search ports and keys of a host that does not exist."""
    typo = ConnectionFailed(
        "The host name 'web-on' could not be resolved: Name or service not known.",
        "Check the host name 'web-on': did you mean 'web-one' (an ssh config Host entry)?",
        kind="unknown-name",
    )
    failed = HostChoice("web-on", "typed", None)
    app = Harness(lambda: StartScreen([], problem=typo, failed=failed, initial="web-on"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = text_of(app.screen, "#problem")
        assert "did you mean 'web-one'" in shown
        assert "Ctrl+R" not in shown and "Fix the name" in shown
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)  # still there, to fix the name
    assert app.results == []


@run_async
async def test_step_list_keys() -> None:
    for key, expected in [("enter", "step:docker"), ("s", "snapshots"), ("c", "recover"),
                          ("w", "save"), ("h", "host"), ("escape", "quit")]:  # fmt: skip
        app = Harness(step_list_screen)
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
        assert app.results == [expected], key


@run_async
async def test_a_long_step_summary_is_shown_whole_under_the_table() -> None:
    """Zones loaded while the step is off: the list says what that means and what to do."""
    from wizard.steps.firewall import STEP_OFF_ZONES_ACTIVE

    rows = [
        StepRow("docker", "Docker engine", "not done", "Docker runs with its defaults"),
        StepRow("firewall", "Firewall zones", "done", STEP_OFF_ZONES_ACTIVE),
    ]
    app = Harness(lambda: StepListScreen(HOST, rows, preset="preset hardened"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert not screen.query_one("#step-detail").display  # short: the table says it all
        await pilot.press("down")
        await pilot.pause()
        detail = text_of(screen, "#step-detail")
        assert screen.query_one("#step-detail").display
        assert detail == f"Firewall zones: {STEP_OFF_ZONES_ACTIVE}"
        assert "earlier apply are active" in detail and "turn the step on" in detail
        assert "roll back the snapshot" in detail
        cell = str(screen.query_one(DataTable).get_row_at(1)[2])
        assert cell.endswith("…") and len(cell) <= 48


@run_async
async def test_snapshots_list_newest_first_and_pick() -> None:
    app = Harness(snapshots_screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        assert row_ids(table) == ["20240502-090000-cd34", "20240501-101500-ab12"]
        assert table.get_row_at(0)[0] == "2024-05-02 09:00:00"
        # The change that rollback put back says so (its own journal says "confirmed").
        assert table.get_row_at(1)[3] == "rolled back"
        assert table.get_row_at(0)[3] == "confirmed"
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.results == ["20240501-101500-ab12"]


@run_async
async def test_a_wrapped_diff_line_keeps_its_mark_at_80_columns() -> None:
    """A long rule line wraps in an 80-column terminal: every row it takes keeps its + or -
    (with a continuation arrow), so the rest does not read as an unchanged line."""
    added = ("+-A HOSTWIZ-IN-lan -s 10.214.2.0/24 -p tcp -m tcp --dport 2049 -m comment "
             '--comment "the shares step exports /srv/nfs to the clients of 10.214.2.0/24" '
             "-j ACCEPT")  # fmt: skip
    removed = "-" + "x" * 150  # no space to break at: cut, still marked
    lines = [RenderedLine("header", "changed: /etc/hostwiz/rules.v4 (mode 0600, root:root)"),
             RenderedLine("add", added), RenderedLine("remove", removed),
             RenderedLine("context", " COMMIT")]  # fmt: skip
    app = Harness(lambda: PreviewScreen("Firewall zones: what would change", lines, empty=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.screen.query_one(".diff-text")
        rows = [text.render_line(y).text.rstrip() for y in range(text.size.height)]
    assert text.size.width < 80 and len(rows) > len(lines)
    adds = [row for row in rows if row.startswith("+")]
    removes = [row for row in rows if row.startswith("-")]
    assert " ".join(r[1:].removeprefix("↳ ") for r in adds).split() == added[1:].split(), rows
    assert len(adds) > 1 and all(r.startswith("+↳ ") for r in adds[1:]), rows
    assert "".join(r[1:].removeprefix("↳ ") for r in removes) == removed[1:], rows
    assert len(removes) > 1 and all(r.startswith("-↳ ") for r in removes[1:]), rows
    # Every row is one of the four lines: none starts unmarked.
    assert len(rows) == 1 + len(adds) + len(removes) + 1 and rows[-1] == " COMMIT", rows


@run_async
async def test_snapshots_name_their_steps_by_title() -> None:
    """A first-time admin knows the steps by their titles, not by hostwiz's names for them."""
    both = SnapshotInfo("20240503-080000-ef56", "2024-05-03T08:00:00Z", ("ssh", "tls"),
                        ("/etc/ssh/sshd_config.d/50-hostwiz.conf",), (), "confirmed")  # fmt: skip
    app = Harness(lambda: SnapshotsScreen(HOST, [*snapshots_screen().snapshots, both]))
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        both_titles = f"{STEPS['ssh'].title}, {STEPS['tls'].title}"
        assert table.get_row_at(0)[1].startswith(STEPS["ssh"].title)  # cut at 80 columns
        assert f"Steps: {both_titles}\n" in text_of(app.screen, "#snapshot-detail")
        assert table.get_row_at(2)[1] == STEPS["docker"].title
        # A rollback's snapshot is no step's: it keeps what it recorded.
        assert table.get_row_at(1)[1] == "rollback 20240501-101500-ab12"


@run_async
async def test_a_damaged_snapshot_is_listed_with_what_is_wrong() -> None:
    damaged = SnapshotInfo("20240503-080000-ef56", "", (), (), (), "confirmed", "unknown",
                           damaged="meta.json is not valid JSON (Expecting value at line 1)")  # fmt: skip
    app = Harness(lambda: SnapshotsScreen(HOST, [*snapshots_screen().snapshots, damaged]))
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        created, steps, files, state = table.get_row_at(0)
        assert (created, steps, files) == ("?", "unknown", "0")
        assert row_ids(table)[0] == "20240503-080000-ef56"
        assert state.startswith("damaged: ")
        detail = text_of(app.screen, "#snapshot-detail")
        assert "State: damaged: meta.json is not valid JSON (Expecting value at line 1)" in detail


def row_ids(table: DataTable[Any]) -> list[str | None]:
    """The keys of the table's rows, top to bottom (the snapshot ids)."""
    return [row.key.value for row in table.ordered_rows]


@run_async
async def test_snapshots_fit_80_columns_and_the_highlighted_one_is_shown_whole() -> None:
    """Time, steps, files, state and id scrolled sideways at 80 columns: the id and the
    end of a long state were off the right edge. Now nothing scrolls sideways: long steps and
    states are cut with "…" and the pane under the table says everything about the
    highlighted snapshot."""
    steps = ("ssh", "docker", "tls", "firewall")
    paths = tuple(f"/etc/hostwiz/file-{n}" for n in range(9))
    many = [SnapshotInfo(f"20261203-2301{n:02d}-8814ee9", f"2026-12-03T23:01:{n:02d}Z", steps,
                         paths, (), "confirmed") for n in range(20)]  # fmt: skip
    damaged = SnapshotInfo("20261203-235900-0badf00", "", (), (), (), "confirmed", "unknown",
                           damaged="meta.json is not valid JSON (Expecting value at line 1)")  # fmt: skip
    app = Harness(lambda: SnapshotsScreen(HOST, [*many, damaged]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.virtual_size.width <= table.size.width  # no horizontal scrollbar
        assert [str(column.label) for column in table.columns.values()] == [
            "Made (UTC)", "Steps", "Files", "State"
        ]  # fmt: skip
        made, cut, files, state = table.get_row_at(1)
        assert (made, files, state) == ("2026-12-03 23:01:19", "9", "confirmed")
        assert cut.endswith("…") and cut.startswith(STEPS["ssh"].title)
        assert table.get_row_at(0)[3].endswith("…")  # the damaged one's state
        detail = app.screen.query_one("#snapshot-detail")
        assert "meta.json is not valid JSON (Expecting value at line 1)" in text_of(
            app.screen, "#snapshot-detail"
        )
        await pilot.press("down")
        await pilot.pause()
        shown = text_of(app.screen, "#snapshot-detail")
        titles = ", ".join(STEPS[name].title for name in steps)
        assert "Snapshot 20261203-230119-8814ee9, made 2026-12-03 23:01:19 UTC" in shown
        assert f"Steps: {titles}" in shown
        assert "Files (9): /etc/hostwiz/file-0, " in shown and "and 3 more" in shown
        assert "State: confirmed" in shown
        footer = app.screen.query_one("Footer")
        assert app.screen.region.contains_region(detail.region)
        assert detail.region.bottom <= footer.region.y
        assert detail.size.height >= shown.count("\n") + 1  # every line, none cut off
        await pilot.resize_terminal(160, 40)  # wider: the steps whole, the cursor kept
        await pilot.pause()
        assert table.get_row_at(1)[1] == titles and table.cursor_row == 1
        assert table.virtual_size.width <= table.size.width
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == ["20261203-230119-8814ee9"]


@run_async
async def test_start_screen_pick_or_type() -> None:
    app = Harness(start_screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.results == [HostChoice("web1", "from ~/.ssh/config")]
        app.push_screen(start_screen(), app.results.append)
        await pilot.pause()
        await pilot.press("ctrl+l", *"admin@192.0.2.10:2222", "enter")
        await pilot.pause()
    assert app.results[-1].target == "admin@192.0.2.10:2222"


def test_ssh_config_hosts(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host web1 web2\n  User admin\nHost *.lan !x\nhost db\nMatch all\n")
    assert ssh_config_hosts(config) == ["web1", "web2", "db"]
    assert ssh_config_hosts(tmp_path / "missing") == []


@run_async
async def test_trust_modal_defaults_to_refuse() -> None:
    info = HostKeyInfo("web1", "192.0.2.10", 22, "ssh-ed25519",
                       "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                       Path("/root/.ssh/known_hosts"))  # fmt: skip
    app = Harness(lambda: TrustKeyScreen(info))
    async with app.run_test() as pilot:
        await pilot.pause()
        text = " ".join(str(s.content) for s in app.screen.query(Static))
        assert "SHA256:abcdefghijklmnopqrstuvwxyz" in text and "ssh-ed25519" in text
        await pilot.press("enter")  # the focused button is Refuse
        await pilot.pause()
        app.push_screen(TrustKeyScreen(info), app.results.append)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.results == [False, True]


@run_async
async def test_error_modal_shows_message_and_hint() -> None:
    error = ConnectionFailed("web1 refused the connection on port 22.", "Is sshd running?")
    app = Harness(lambda: ErrorScreen(error))
    async with app.run_test() as pilot:
        await pilot.pause()
        text = " ".join(str(s.content) for s in app.screen.query(Static))
        assert "web1 refused the connection" in text and "Is sshd running?" in text
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


CA_FOLDER = Path("/home/admin/.local/share/hostwiz/ca/default")


def passphrase_screen(*, new_ca: bool = True, problem: Any = None) -> SecretScreen:
    return SecretScreen(passphrase_request("default", HOST, new_ca, CA_FOLDER, problem))


@run_async
async def test_a_new_ca_asks_twice_and_refuses_a_mismatch_or_a_short_passphrase() -> None:
    app = Harness(passphrase_screen)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SecretScreen)
        assert screen.query_one("#passphrase", Input).password
        assert screen.query_one("#confirmation", Input).password  # the confirm field is there
        text = " ".join(str(s.content) for s in screen.query(Static))
        assert "never stores" in text and str(CA_FOLDER) in text
        # Two different passphrases: explained, both fields emptied, the dialog stays.
        await pilot.press(*"correct horse battery", "enter", *"correct horse batery", "enter")
        await pilot.pause()
        assert "the two passphrases differ" in screen.error_text
        assert screen.query_one("#passphrase", Input).value == ""
        assert screen.query_one("#confirmation", Input).value == ""
        assert screen.query_one("#passphrase", Input).has_focus
        assert app.results == []
        # Too short, even typed twice the same.
        await pilot.press(*"short", "enter", *"short", "enter")
        await pilot.pause()
        assert "shorter than 12 characters" in screen.error_text and app.results == []
        await pilot.press(*"correct horse battery", "enter", *"correct horse battery", "enter")
        await pilot.pause()
    assert len(app.results) == 1
    answer = app.results[0]
    assert isinstance(answer, SecretAnswer)
    assert answer.secret.reveal() == "correct horse battery"
    assert answer.confirmation == answer.secret
    assert "correct horse" not in repr(answer)  # a Secret never shows its value


@run_async
async def test_an_existing_ca_asks_once_shows_why_it_is_asked_again_and_escape_cancels() -> None:
    wrong = WrongPassphrase(
        "the passphrase does not unlock the CA in /x.",
        "Type the passphrase chosen (nothing was changed).",
    )
    app = Harness(lambda: passphrase_screen(new_ca=False, problem=wrong))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SecretScreen)
        assert not screen.query("#confirmation")  # no confirm field for an existing CA
        assert "does not unlock the CA" in screen.error_text
        await pilot.press(*"my old passphrase", "enter")
        await pilot.pause()
    assert len(app.results) == 1 and app.results[0].confirmation is None
    assert app.results[0].secret.reveal() == "my old passphrase"

    cancelled = Harness(lambda: passphrase_screen(new_ca=False))
    async with cancelled.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"typed", "escape")
        await pilot.pause()
    assert cancelled.results == [None]


# ---- the whole app -----------------------------------------------------------------------


@run_async
async def test_app_starts_on_the_host_choice_with_help_and_theme() -> None:
    app = HostwizApp(default_args(), hosts=[])
    async with app.run_test() as pilot:
        for _ in range(100):
            await pilot.pause(0.02)
            if isinstance(app.screen, StartScreen):
                break
        assert isinstance(app.screen, StartScreen)
        # The steps load behind the start screen (it needs none of them).
        await until(pilot, lambda: bool(app.step_titles()))
        assert ("docker", "Docker engine") in app.step_titles()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@run_async
async def test_a_preset_that_cannot_be_loaded_is_explained_and_ends_the_wizard(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[docker]\nlog_max_size = "huge"\n')
    app = HostwizApp(default_args(preset=str(broken)), hosts=[])
    async with app.run_test(size=(100, 30)) as pilot:
        error = await wait_for(pilot, ErrorScreen, 30)
        text = ""
        for _ in range(100):  # the screen is pushed before its texts are mounted
            text = " ".join(str(s.content) for s in error.query(Static).results(Static))
            if text:
                break
            await pilot.pause(0.05)
        assert "expected a size such as 10m" in text
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 1


@run_async
async def test_unreachable_host_is_explained_on_the_start_screen() -> None:
    """A real connection attempt to a closed loopback port."""
    app = HostwizApp(default_args(host="nobody@127.0.0.1:1"), hosts=[])
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(300):
            await pilot.pause(0.05)
            if isinstance(app.screen, StartScreen) and app.screen.query("#problem"):
                break
        screen = app.screen
        assert isinstance(screen, StartScreen)
        problem = str(screen.query_one("#problem", Static).content)
        assert problem.startswith("Cannot connect:")
        assert "127.0.0.1" in problem
        assert "Traceback" not in problem
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@run_async
async def test_recovery_is_reachable_after_a_failed_connection() -> None:
    """Ctrl+R on the start screen and Recovery in the palette; t tries to connect again."""
    app = HostwizApp(default_args(host="nobody@127.0.0.1:1"), hosts=[])
    async with app.run_test(size=(100, 30)) as pilot:
        start = await wait_for(pilot, StartScreen, 30)
        await until(pilot, lambda: bool(start.query("#problem")), 30)
        assert "Ctrl+R: recovery" in text_of(start, "#problem")
        await pilot.press("ctrl+r")
        screen = await wait_for(pilot, RecoveryScreen, 30)
        assert screen.host == "nobody@127.0.0.1:1" and screen.actions is None
        assert "127.0.0.1" in text_of(screen, "#problem")
        await until(pilot, lambda: bool(screen.explanation))
        assert "has no record of changing nobody@127.0.0.1:1" in text_of(screen, "#explain")
        assert "provider's web console" in screen.console_text
        await pilot.press("escape")
        start = await wait_for(pilot, StartScreen, 30)
        assert start.problem is not None  # still says why
        await palette(pilot, "Recovery")
        screen = await wait_for(pilot, RecoveryScreen, 30)
        await pilot.press("t")  # connect again: refused again, explained again
        start = await wait_for(pilot, StartScreen, 30)
        await until(pilot, lambda: bool(start.query("#problem")), 30)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


# ---- snapshots of the main screens ---------------------------------------------------------

SCREENS: dict[str, Callable[[], Screen[Any]]] = {
    "start": start_screen,
    "steps": step_list_screen,
    "step": step_screen,
    "preview": preview_screen,
    "apply": apply_screen,
    "unconfirmed": unconfirmed_apply_screen,
    "snapshots": snapshots_screen,
    "recovery": recovery_screen,
    "lockedout": locked_out_screen,
    "passphrase": passphrase_screen,
}


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen in UTC, whatever the machine's zone (for the SVG snapshots)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def still_working(screen: Screen[Any]) -> bool:
    if isinstance(screen, ApplyScreen):
        return not screen.done
    if isinstance(screen, RecoveryScreen):
        return (
            not screen.explanation
            or screen.searching
            or (screen.actions is not None and screen.pending is None)
        )
    return False


async def settle(pilot: Any) -> None:
    """Wait (bounded) until the screen has everything it loads or runs."""
    for _ in range(20):
        await pilot.pause(0.02)
    screen = pilot.app.screen
    for _ in range(500):
        if not still_working(screen):
            break
        await asyncio.sleep(0.02)
    for field in screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make the picture depend on time
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
def test_snapshot(snap_compare: Any, utc: None, name: str, size: tuple[int, int]) -> None:
    assert snap_compare(Harness(SCREENS[name]), terminal_size=size, run_before=settle)


def test_snapshot_host_key_changed(snap_compare: Any) -> None:
    assert snap_compare(Harness(host_key_changed_screen), terminal_size=(80, 24), run_before=settle)


def test_snapshot_firewall_form(snap_compare: Any) -> None:
    """80x24, scrolled to the first zone question: the host's interfaces under its help."""

    async def to_zones(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.screen.query_one("#field-mgmt_interfaces", Input).focus()
        await settle(pilot)

    assert snap_compare(Harness(firewall_screen), terminal_size=(80, 24), run_before=to_zones)


def test_snapshot_light_theme(snap_compare: Any) -> None:
    async def light(pilot: Any) -> None:
        pilot.app.theme = "textual-light"
        await pilot.pause()

    assert snap_compare(Harness(preview_screen), terminal_size=(80, 24), run_before=light)


# ---- against a practice host ---------------------------------------------------------------


@pytest.fixture
def lab(docker_defaults: Any) -> Any:
    """The shared practice host with Docker's defaults (tests/conftest.py)."""
    return docker_defaults


async def wait_for(pilot: Any, kind: type[Screen[Any]], seconds: float = 120) -> Any:
    for _ in range(int(seconds / 0.05)):
        await pilot.pause(0.05)
        if isinstance(pilot.app.screen, kind):
            return pilot.app.screen
    raise AssertionError(f"{kind.__name__} never showed; now on {pilot.app.screen!r}")


def docker_status(screen: StepListScreen) -> str:
    return next(row.status for row in screen.rows if row.name == "docker")


async def until_done(pilot: Any, screen: ApplyScreen, seconds: float = 300) -> None:
    for _ in range(int(seconds / 0.1)):
        await pilot.pause(0.1)
        if screen.done:
            return
    raise AssertionError("the change did not finish")


@pytest.mark.lab
@pytest.mark.docker
@run_async
async def test_wizard_applies_a_step_then_rolls_it_back(lab: Any) -> None:
    """Host → steps → questions → preview → apply → steps → snapshots → rollback, for real."""
    app = HostwizApp(default_args(host=lab.name))
    async with app.run_test(size=(120, 40)) as pilot:
        steps = await wait_for(pilot, StepListScreen)
        assert docker_status(steps) == "not done"
        # Open the step through the command palette.
        await palette(pilot, "Step: Docker engine")
        step = await wait_for(pilot, StepScreen)
        step.query_one("#field-log_max_file", Input).value = "4"
        await pilot.pause()
        await pilot.press("ctrl+n")
        preview = await wait_for(pilot, PreviewScreen)
        assert not preview.empty
        await pilot.press("a")
        applying = await wait_for(pilot, ApplyScreen)
        await until_done(pilot, applying)
        assert applying.result is not None and applying.result.confirmed, applying.result
        snapshot_id = applying.result.snapshot_id
        await pilot.press("enter")
        steps = await wait_for(pilot, StepListScreen)
        assert docker_status(steps) == "done"
        daemon_json = lab.console().run("cat /etc/docker/daemon.json").out
        assert '"userns-remap": "default"' in daemon_json
        assert '"max-file": "4"' in daemon_json

        await pilot.press("s")
        listing = await wait_for(pilot, SnapshotsScreen)
        assert snapshot_id in [info.id for info in listing.snapshots]
        await pilot.press("enter")  # the newest: the change just made
        rollback = await wait_for(pilot, PreviewScreen)
        assert "Roll back" in rollback.heading and not rollback.empty
        await pilot.press("a")
        undoing = await wait_for(pilot, ApplyScreen)
        await until_done(pilot, undoing)
        assert undoing.result is not None and undoing.result.confirmed, undoing.result
        # It says what it did: put that change back, not "Applied N change(s)".
        said = str(undoing.query_one("#result", Static).content)
        assert said.startswith(f"Put back {undoing.result.actions_done} change(s) from snapshot "
                               f"{snapshot_id}."), said  # fmt: skip
        await pilot.press("enter")
        steps = await wait_for(pilot, StepListScreen)
        assert docker_status(steps) == "not done"
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0
    assert lab.console().run("test -e /etc/docker/daemon.json").exit_code != 0


@pytest.mark.lab
@run_async
async def test_new_host_key_and_sudo_password_are_asked_in_modals(lab: Any, tmp_path: Path) -> None:
    """The SSH callbacks run in the worker thread and ask through modal screens."""
    from lab import lab_paths

    paths = lab_paths()
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {lab.name}\n  HostName {lab.address}\n  IdentityFile {paths.key}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {tmp_path / 'known_hosts'}\n"
    )
    target = f"admin@{lab.name}"
    app = HostwizApp(default_args(host=target, ssh_config=str(config)), hosts=[])
    async with app.run_test(size=(100, 30)) as pilot:
        trust = await wait_for(pilot, TrustKeyScreen, 60)
        assert trust.info.fingerprint.startswith("SHA256:")
        await pilot.press("y")
        await wait_for(pilot, PasswordScreen, 60)
        await pilot.press(*"wrong-password", "enter")
        start = await wait_for(pilot, StartScreen, 60)
        for _ in range(100):
            await pilot.pause(0.05)
            if start.query("#problem"):
                break
        problem = str(start.query_one("#problem", Static).content)
        assert "No administrator rights" in problem, problem
        assert "wrong-password" not in problem
        await pilot.press("ctrl+l", "enter")  # the same host again: its key is known now
        await wait_for(pilot, PasswordScreen, 60)
        await pilot.press(*lab.admin_password, "enter")
        steps = await wait_for(pilot, StepListScreen, 60)
        assert steps.host
        await pilot.press("escape")
        await pilot.pause()
    assert (tmp_path / "known_hosts").read_text().count("\n") >= 1


@pytest.fixture
def tls_admin(make_lab_hosts: Any, lab_ssh_config: Path, tmp_path: Path) -> Iterator[Any]:
    """A practice host with dockerd of this test's own, and this machine's HOME, DOCKER_CONFIG
    and XDG data dir (the CA) under tmp_path, set once the host is up (the lab keeps its own
    files in the real XDG data dir) and put back before it is taken down."""
    (host,) = make_lab_hosts(1)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("DOCKER_CONFIG", str(home / ".docker"))
        patch.setenv("XDG_DATA_HOME", str(home / "data"))
        patch.setenv("XDG_STATE_HOME", str(home / "state"))
        yield host, Path(lab_ssh_config), home


def tls_row(screen: StepListScreen) -> StepRow:
    return next(row for row in screen.rows if row.name == "tls")


@pytest.mark.lab
@pytest.mark.docker
@run_async
async def test_wizard_tls_asks_the_passphrase_applies_and_sets_up_the_docker_client(
    tls_admin: Any,
) -> None:
    """TLS step: on → new CA passphrase (a mismatch first) → the real plan → apply → the
    result shows `docker --context NAME ps`, which works; then a wrong passphrase for the
    existing CA is explained in the dialog and Escape goes back to the questions."""
    import subprocess

    from wizard.tls_client import Bundle, sdk_client

    host, ssh_config, home = tls_admin
    passphrase = "correct horse battery staple"
    app = HostwizApp(default_args(host=host.name, ssh_config=str(ssh_config)))
    async with app.run_test(size=(120, 40)) as pilot:
        steps = await wait_for(pilot, StepListScreen)
        assert tls_row(steps).status == "off"
        await palette(pilot, "Step: Docker API over TLS")
        step = await wait_for(pilot, StepScreen)
        step.query_one("#field-enabled", Switch).value = True
        await pilot.pause()
        await pilot.press("ctrl+n")
        dialog = await wait_for(pilot, SecretScreen, 60)
        assert dialog.request.confirm and dialog.query("#confirmation")
        await pilot.press(*passphrase, "enter", *"correct horse battery stable", "enter")
        await until(pilot, lambda: "differ" in dialog.error_text)
        await pilot.press(*passphrase, "enter", *passphrase, "enter")
        preview = await wait_for(pilot, PreviewScreen, 120)
        shown = "\n".join(line.text for line in preview.lines)
        assert "/etc/docker/tls/server-cert.pem" in shown and "tcp://0.0.0.0:2376" in shown
        assert passphrase not in shown and "BEGIN EC PRIVATE KEY" not in shown
        await pilot.press("a")
        applying = await wait_for(pilot, ApplyScreen)
        await until_done(pilot, applying)
        assert applying.result is not None and applying.result.confirmed, applying.result
        result = text_of(applying, "#result")
        assert f"docker --context {host.name} ps" in result
        assert f"{home}/.docker/hostwiz/{host.name}" in result
        await pilot.press("enter")
        steps = await wait_for(pilot, StepListScreen)
        row = tls_row(steps)
        assert row.status == "done", row
        assert "server certificate valid 36" in row.summary
        assert "client certificate valid 36" in row.summary

        # The CA exists now: asked once; a wrong passphrase is explained in the dialog.
        await palette(pilot, "Step: Docker API over TLS")
        await wait_for(pilot, StepScreen)
        await pilot.press("ctrl+n")
        dialog = await wait_for(pilot, SecretScreen, 60)
        assert not dialog.request.confirm and not dialog.query("#confirmation")
        await pilot.press(*"not my passphrase", "enter")
        await until(
            pilot,
            lambda: isinstance(pilot.app.screen, SecretScreen) and pilot.app.screen is not dialog,
            60,
        )
        again = pilot.app.screen
        assert isinstance(again, SecretScreen)
        assert "does not unlock the CA" in again.error_text
        await pilot.press("escape")
        await wait_for(pilot, StepScreen)
        await pilot.press("escape")
        await wait_for(pilot, StepListScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0

    ps = subprocess.run(
        ["docker", "--context", host.name, "ps"], capture_output=True, text=True, timeout=60
    )
    assert ps.returncode == 0, ps.stderr
    client = sdk_client(host.address, 2376, Bundle(home / ".docker" / "hostwiz" / host.name))
    assert client.version()["ApiVersion"]
    client.close()


@pytest.fixture
def own_host(make_lab_hosts: Any) -> Any:
    """A practice host of this test's own (no dockerd: the test changes its snapshots)."""
    return make_lab_hosts(1, docker=False)[0]


def interrupt_a_change(host: Any) -> str:
    """Leave a transaction half done on ``host``, as a hostwiz killed mid-apply does (with no
    safety timer left running): snapshot recorded, one file written, never confirmed."""
    from snapshots.record import new_snapshot_id, record_script
    from wizard.actions import WriteFile
    from wizard.plan import Changeset, Plan
    from wizard.transaction import action_script, journaled

    snapshot_id = new_snapshot_id()
    action = WriteFile("/etc/hostwiz-half-done", b"half done\n")
    changeset = Changeset(host.name, (Plan("docker", (action,)),))
    console = host.console()
    assert console.run(record_script(snapshot_id, changeset)).ok
    script, stdin = action_script(action)
    assert console.run(journaled(script, snapshot_id, 0, 60), stdin=stdin).ok
    assert console.run("test -e /etc/hostwiz-half-done").ok
    return snapshot_id


@pytest.mark.lab
@run_async
async def test_recovery_rolls_back_an_interrupted_change_on_a_practice_host(own_host: Any) -> None:
    """Step list → c → the interrupted change is listed → Roll back, for real."""
    host = own_host
    snapshot_id = interrupt_a_change(host)
    app = HostwizApp(default_args(host=host.name))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, StepListScreen)
        await pilot.press("c")
        screen = await wait_for(pilot, RecoveryScreen)
        await until(pilot, lambda: screen.pending is not None, 60)
        await pilot.pause(0.1)
        assert [item.snapshot.id for item in screen.pending or []] == [snapshot_id]
        assert not screen.pending[0].timer_running
        await pilot.click(f"#rollback-{snapshot_id}")
        await until(pilot, lambda: screen.outcomes.get(snapshot_id) == "rolled back", 60)
        assert not host.console().run("test -e /etc/hostwiz-half-done").ok
        await pilot.press("t")  # check again: nothing left
        await until(pilot, lambda: screen.pending == [], 60)
        await pilot.press("escape")
        await wait_for(pilot, StepListScreen)
        # The palette reaches it too.
        await palette(pilot, "Recovery")
        screen = await wait_for(pilot, RecoveryScreen)
        await until(pilot, lambda: screen.pending == [], 60)
        await pilot.press("escape")
        await wait_for(pilot, StepListScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0
    journal = host.console().run(f"cat /var/lib/hostwiz/snapshots/{snapshot_id}/journal").out
    assert "reverted" in journal and " confirmed" not in journal


DROP_SYN = "INPUT -p tcp --dport 22 --syn -j DROP"
"""Inside a practice host: its sshd never hears a new connection (connecting hangs)."""


def syns_dropped(console: Any) -> int:
    """How many connection attempts the DROP_SYN rule has swallowed so far."""
    out = console.run("iptables -L INPUT -v -n -x --line-numbers").out
    rows = [line.split() for line in out.splitlines() if "DROP" in line and "dpt:22" in line]
    return int(rows[0][1]) if rows else 0


@pytest.mark.lab
@run_async
async def test_escape_stops_connecting_to_a_host_that_does_not_answer(
    own_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host drops SSH's connection attempts (iptables inside it), so "Connecting…" hangs:
    Escape goes back to the start screen at once. The attempt's thread is left to end by
    itself; once the host answers again it still gets in, and that connection is closed,
    never used: no step list, no SSH session left on the host."""
    from wizard.transport.ssh import SshTransport

    console = own_host.console()
    assert console.run(f"iptables -I {DROP_SYN}").ok
    opened: list[SshTransport] = []
    closed: list[SshTransport] = []
    real_connect, real_close = SshTransport.connect, SshTransport.close

    def recording_connect(*args: Any, **kwargs: Any) -> SshTransport:
        transport = real_connect(*args, **kwargs)
        opened.append(transport)
        return transport

    def recording_close(self: SshTransport) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(SshTransport, "connect", recording_connect)
    monkeypatch.setattr(SshTransport, "close", recording_close)
    app = HostwizApp(default_args(host=own_host.name), hosts=[])
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(300):  # until the host has swallowed the first attempt
            await pilot.pause(0.1)
            if syns_dropped(console):
                break
        assert syns_dropped(console) > 0
        await pilot.press("escape")
        assert console.run(f"iptables -D {DROP_SYN}").ok  # answers again (retried SYNs)
        start = await wait_for(pilot, StartScreen, 30)
        await until(pilot, lambda: bool(start.query("#problem")), 30)
        problem = str(start.query_one("#problem", Static).content)
        assert f"you stopped connecting to {own_host.name} before it answered" in problem
        await until(pilot, lambda: bool(opened) and opened[0] in closed, 60)
        assert app.screen is start and app.transport is None
        sessions = "ss -Htn state established '( sport = :22 )'"
        for _ in range(100):
            if not console.run(sessions).out.strip():
                break
            await pilot.pause(0.1)
        assert not console.run(sessions).out.strip()
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@pytest.mark.lab
@run_async
async def test_a_step_never_applied_is_not_done_not_drifted(own_host: Any) -> None:
    """A host whose sshd already refuses passwords (as cloud images do), never touched by
    hostwiz: its settings differ from the answers, but that is not drift."""
    console = own_host.console()
    assert console.run(
        "printf 'PasswordAuthentication no\\n' > /etc/ssh/sshd_config.d/50-cloud.conf"
    ).ok
    app = HostwizApp(default_args(host=own_host.name))
    async with app.run_test(size=(120, 40)) as pilot:
        steps = await wait_for(pilot, StepListScreen)
        row = next(row for row in steps.rows if row.name == "ssh")
        assert row.status == "not done", row
        assert row.summary.startswith("never applied by hostwiz: "), row
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@pytest.mark.lab
@run_async
async def test_recovery_screen_finds_ssh_moved_by_hand_and_continues_connected(
    own_host: Any,
) -> None:
    """sshd moved to port 2200 at the console, hostwiz not told: the wizard cannot get in.
    Ctrl+R → the recovery screen lists each try (port 22 refused, … port 2200 works), says
    hostwiz remembers the port, and continues connected: the interrupted change (rolled back
    here), then the step list over port 2200."""
    from wizard.transport.ports import remembered_port

    host = own_host
    console = host.console()
    snapshot_id = interrupt_a_change(host)
    moved = (
        "printf 'Port 2200\\n' > /etc/ssh/sshd_config.d/10-by-hand.conf && /etc/init.d/ssh reload"
    )
    assert console.run(moved).ok
    for _ in range(100):
        if console.run("ss -Hltnp 'sport = :2200' | grep -q sshd").ok:
            break
        time.sleep(0.1)
    assert remembered_port(host.name) is None
    app = HostwizApp(default_args(host=host.name))
    async with app.run_test(size=(100, 40)) as pilot:
        start = await wait_for(pilot, StartScreen, 60)
        await until(pilot, lambda: bool(start.query("#problem")), 60)
        assert "refused the connection" in text_of(start, "#problem")
        await pilot.press("ctrl+r")
        screen = await wait_for(pilot, RecoveryScreen, 60)
        assert screen.search is not None
        await until(pilot, lambda: not screen.searching, 120)
        tries = tries_of(screen)  # every port at once, each shown as it ends
        assert "✗ port 22 as root: refused (nothing listens there)" in tries, tries
        assert "✓ port 2200 as root: that works" in tries, tries
        assert sorted(t.way.port for t in screen.tried) == sorted(COMMON_SSH_PORTS)
        outcome = text_of(screen, "#search-outcome")
        assert "What works: port 2200 as root." in outcome
        assert f"hostwiz uses port 2200 for {host.name} from now on" in outcome
        assert remembered_port(host.name) == 2200
        assert not screen.query_one("#console").display
        await pilot.click("#continue")
        await until(pilot, lambda: app.screen is not screen, 30)
        connected = app.screen
        assert isinstance(connected, RecoveryScreen) and connected.actions is not None
        await until(pilot, lambda: connected.pending is not None, 60)
        await pilot.pause(0.1)
        assert [item.snapshot.id for item in connected.pending or []] == [snapshot_id]
        await until(pilot, lambda: connected.fresh is not None, 60)
        assert text_of(connected, "#fresh").startswith("✓ A new connection gets in (port 2200)")
        await pilot.click(f"#rollback-{snapshot_id}")
        await until(pilot, lambda: connected.outcomes.get(snapshot_id) == "rolled back", 60)
        await pilot.press("escape")
        steps = await wait_for(pilot, StepListScreen, 60)
        assert steps.host == f"root@{host.name}"
        assert app.transport is not None and app.transport.port == 2200
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0
    assert not console.run("test -e /etc/hostwiz-half-done").ok


@pytest.fixture
def reachable(request: pytest.FixtureRequest) -> Any:
    """The shared practice host, for tests that change nothing on it."""
    try:
        return request.getfixturevalue("lab_host")
    except pytest.FixtureLookupError:
        pytest.skip("practice hosts are not available here (no lab_host fixture)")


@pytest.mark.lab
@run_async
async def test_firewall_questions_name_the_practice_hosts_interfaces(reachable: Any) -> None:
    """The facts the step list read are reused: the firewall form lists the host's real
    interfaces and addresses and where hostwiz's own SSH connection comes in."""
    console = reachable.console()
    address = console.run("ip -4 -o addr show dev eth0 | awk '{print $4}'").out.split()[0]
    app = HostwizApp(default_args(host=reachable.name))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, StepListScreen)
        await palette(pilot, "Step: Firewall zones")
        step = await wait_for(pilot, StepScreen)
        form = step.query_one(QuestionForm)
        step.query_one("#field-enabled", Switch).value = True
        await pilot.pause()
        for zone in ("mgmt", "lan", "wan"):
            assert form.row(f"{zone}_interfaces").display
            line = context_text(form, f"{zone}_interfaces")
            assert line.startswith("This host has: ") and f"eth0 {address}" in line, line
        # Once, under the services of the zone eth0 is in with the preset's answers (wan).
        assert list(ssh_lines(form)) == ["wan_services"]
        assert "on eth0, which is in zone wan" in ssh_lines(form)["wan_services"]
        await pilot.press("escape")  # the switch was turned on: discard that
        await wait_for(pilot, UnsavedScreen, 10)
        await pilot.press("d")
        await wait_for(pilot, StepListScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@pytest.mark.lab
@run_async
async def test_kept_answers_and_a_refused_plan_on_a_practice_host(reachable: Any) -> None:
    """Escape, Save keeps the edited answers (nothing planned or applied); a firewall that
    would cut the admin's SSH is refused in a dialog, after which the questions come back on
    the zone's services."""
    app = HostwizApp(default_args(host=reachable.name))
    async with app.run_test(size=(120, 40)) as pilot:
        steps = await wait_for(pilot, StepListScreen)
        before = docker_status(steps)
        await palette(pilot, "Step: Docker engine")
        step = await wait_for(pilot, StepScreen)
        step.query_one("#field-log_max_file", Input).value = "7"
        await pilot.pause()
        await pilot.press("escape")
        await wait_for(pilot, UnsavedScreen, 10)
        await pilot.press("s")
        steps = await wait_for(pilot, StepListScreen)
        assert app.answers["docker"].log_max_file == 7
        assert "Docker engine: your answers are kept for this session, not applied" in (
            text_of(steps, "#note")
        )
        assert docker_status(steps) == before

        await palette(pilot, "Step: Firewall zones")
        step = await wait_for(pilot, StepScreen)
        step.query_one("#field-enabled", Switch).value = True
        await pilot.pause()
        step.query_one("#field-wan_services", Input).value = "ping"
        await pilot.pause()
        await pilot.press("ctrl+n")
        error = await wait_for(pilot, ErrorScreen, 60)
        said = " ".join(str(s.content) for s in error.query(Static).results(Static))
        assert "this would lock you out" in said
        assert '"Allow a change that cuts my SSH path" (allow_cutting_my_ssh = true)' in said
        await pilot.press("escape")
        step = await wait_for(pilot, StepScreen, 10)
        await pilot.pause()
        assert app.focused is step.query_one("#field-wan_services", Input)
        assert step.query_one("#field-wan_services", Input).value == "ping"
        await pilot.press("escape")  # the refused answers are not kept without asking
        await wait_for(pilot, UnsavedScreen, 10)
        await pilot.press("d")
        await wait_for(pilot, StepListScreen)
        assert app.edited_steps() == ["Docker engine"]  # the firewall's are the preset's again
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@pytest.mark.lab
def test_printed_commands_work_when_pasted(reachable: Any, tmp_path: Path) -> None:
    """A command hostwiz prints names the host and the ssh config it was reached through:
    pasted as it is, it works."""
    import shlex
    import subprocess
    import sys

    from lab import lab_paths
    from snapshots.rollback import rollback_plan
    from wizard.errors import HostwizError
    from wizard.transport.base import hostwiz_command
    from wizard.transport.ssh import SshTransport

    config = tmp_path / "my ssh config"
    config.write_text(lab_paths().ssh_config.read_text())
    with SshTransport.connect(reachable.name, ssh_config=config) as transport:
        assert hostwiz_command(transport, "rollback", "X") == (
            f"hostwiz rollback --host {reachable.name} -F '{config}' X"
        )
        with pytest.raises(HostwizError) as missing:
            rollback_plan(transport, "20000101-000000-0000")
    hint = missing.value.hint
    assert hint.startswith("List them with: hostwiz snapshots --host "), hint
    words = shlex.split(hint.removeprefix("List them with: "))
    pasted = subprocess.run(
        [sys.executable, "-m", *words], capture_output=True, text=True, timeout=120, check=False
    )
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    # Through the lab's own ssh config (found by itself), no -F is needed.
    with SshTransport.connect(reachable.name, ssh_config=lab_paths().ssh_config) as transport:
        assert hostwiz_command(transport, "recover") == f"hostwiz recover --host {reachable.name}"


@pytest.mark.lab
@run_async
async def test_a_changed_host_key_is_refused_and_stands_out(reachable: Any, tmp_path: Path) -> None:
    """known_hosts holds another key for the host: the start screen says so, prominently."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lab import lab_paths

    lab = reachable
    other_key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{lab.address} {other_key}\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {lab.name}\n  HostName {lab.address}\n  User root\n"
        f"  IdentityFile {lab_paths().key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n"
    )
    app = HostwizApp(default_args(host=lab.name, ssh_config=str(config)), hosts=[])
    async with app.run_test(size=(80, 24)) as pilot:
        start = await wait_for(pilot, StartScreen, 60)
        await until(pilot, lambda: bool(start.query("#problem")), 60)
        problem = start.query_one("#problem", Static)
        assert isinstance(start.problem, HostKeyChanged)
        assert problem.has_class("danger")
        assert str(problem.content).startswith(" ⚠ HOST KEY CHANGED ")
        assert f"ssh-keygen -R {lab.address}" in str(problem.content)
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0
    assert known_hosts.read_text() == f"{lab.address} {other_key}\n"  # never replaced


PRESET_WITH_COMMENTS = """\
# Our team's settings: reviewed by Sam, 2024-05.
[docker]
# Small logs: the VMs have 10 GB disks.
log_max_size = "5m"
"""


@pytest.mark.lab
@run_async
async def test_save_preset_from_the_wizard_keeps_the_files_comments(
    reachable: Any, tmp_path: Path
) -> None:
    from presets import load_preset
    from wizard.steps.docker import DockerEngineAnswers

    path = tmp_path / "team.toml"
    path.write_text(PRESET_WITH_COMMENTS)
    app = HostwizApp(default_args(host=reachable.name))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, StepListScreen)
        await pilot.press("w")
        dialog = await wait_for(pilot, SavePresetScreen, 10)
        dialog.query_one("#path", Input).value = str(path)
        await pilot.press("enter")
        await wait_for(pilot, StepListScreen, 10)
        answers = dict(app.answers)
        await pilot.press("escape")
        await pilot.pause()
    text = path.read_text()
    assert text.startswith("# Our team's settings: reviewed by Sam, 2024-05.\n[docker]\n")
    assert "# Small logs: the VMs have 10 GB disks.\nlog_max_size = " in text
    saved = load_preset(str(path)).answers
    assert saved["docker"] == answers["docker"]
    assert isinstance(saved["docker"], DockerEngineAnswers)
    assert set(saved) == set(answers)  # every step, each with its help as comments
