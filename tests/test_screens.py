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
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from screen_data import HOST, RESET_DOCKER, docker_changeset
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Select, Static, Switch

from screens.app import HostwizApp, default_args
from screens.stages import (
    ApplyScreen,
    ErrorScreen,
    HelpScreen,
    HostChoice,
    PasswordScreen,
    PreviewScreen,
    SnapshotsScreen,
    StartScreen,
    StepListScreen,
    StepRow,
    StepScreen,
    TrustKeyScreen,
    ssh_config_hosts,
)
from screens.widgets import ProgressLog, QuestionForm
from snapshots.store import SnapshotInfo
from wizard.errors import ConnectionFailed
from wizard.render import render_changeset
from wizard.steps import STEPS
from wizard.steps.docker_engine import DockerEngineAnswers
from wizard.transaction import ApplyResult, Event
from wizard.transport.ssh import HostKeyInfo


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


EVENTS = [
    Event("snapshot", "snapshot 20240501-101500-ab12 recorded (4 files)"),
    Event("armed", "the host undoes everything by itself in 60 s unless confirmed"),
    Event("action", "create the unprivileged dockremap user", 1),
    Event("action-done", "create the unprivileged dockremap user", 1),
    Event("action", "hardened dockerd settings", 4),
    Event("action-done", "hardened dockerd settings", 4),
    Event("health", "Docker engine: healthy"),
    Event("confirm", "confirmed over a fresh connection"),
    Event("done", "2 actions applied"),
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
            (),
            ("/etc/docker/daemon.json",),
            (),
            "reverted (rollback)",
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
        assert lines[0].startswith("[snap]") and "confirmed" in lines[-2]
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


@run_async
async def test_step_list_keys() -> None:
    for key, expected in [("enter", "step:docker"), ("s", "snapshots"), ("w", "save"),
                          ("h", "host"), ("escape", "quit")]:  # fmt: skip
        app = Harness(step_list_screen)
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
        assert app.results == [expected], key


@run_async
async def test_snapshots_list_newest_first_and_pick() -> None:
    app = Harness(snapshots_screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        assert table.get_row_at(0)[-1] == "20240502-090000-cd34"
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.results == ["20240501-101500-ab12"]


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


# ---- snapshots of the main screens ---------------------------------------------------------

SCREENS: dict[str, Callable[[], Screen[Any]]] = {
    "start": start_screen,
    "steps": step_list_screen,
    "step": step_screen,
    "preview": preview_screen,
    "apply": apply_screen,
    "snapshots": snapshots_screen,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
def test_snapshot(snap_compare: Any, name: str, size: tuple[int, int]) -> None:
    async def settle(pilot: Any) -> None:
        for _ in range(20):
            await pilot.pause(0.02)
        screen = pilot.app.screen
        if isinstance(screen, ApplyScreen):
            while not screen.done:
                await asyncio.sleep(0.02)
            await pilot.pause()

    assert snap_compare(Harness(SCREENS[name]), terminal_size=size, run_before=settle)


def test_snapshot_light_theme(snap_compare: Any) -> None:
    async def light(pilot: Any) -> None:
        pilot.app.theme = "textual-light"
        await pilot.pause()

    assert snap_compare(Harness(preview_screen), terminal_size=(80, 24), run_before=light)


# ---- against a practice host ---------------------------------------------------------------


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The shared practice host with Docker's defaults, put back after the test."""
    try:
        host = request.getfixturevalue("lab_host")
    except pytest.FixtureLookupError:
        pytest.skip("practice hosts are not available here (no lab_host fixture)")
    console = host.console()
    assert console.run(RESET_DOCKER).ok
    try:
        yield host
    finally:
        console.run(RESET_DOCKER)


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
        await pilot.press("ctrl+p", *"Step: Docker", "enter")
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
    from wizard.lab import lab_paths

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
