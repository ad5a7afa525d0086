"""Rough edges a first-time admin hit in the wizard (found by walking it in tmux at 80×24),
each pinned by a Pilot test: the screens fit 80 columns, a typo can be fixed in place, an error
is shown where the eye is, and what to press is what the footer says.

No practice host is needed: the screens get real step data, and the one connection attempt
goes to a closed loopback port.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from screen_data import docker_changeset
from test_screens import (
    Harness,
    firewall_screen,
    palette,
    passphrase_screen,
    run_async,
    step_screen,
    until,
    wait_for,
)
from textual.binding import Binding
from textual.widgets import Button, DataTable, Input, OptionList, Static, Switch

import screens
from screens.app import HostwizApp, default_args
from screens.apply import ApplyScreen, result_content
from screens.audit import AuditScreen
from screens.dialogs import PasswordScreen, SavePresetScreen, SecretScreen
from screens.preview import PreviewScreen
from screens.start import HostChoice, StartScreen
from screens.step_form import StepScreen, UnsavedScreen
from screens.step_list import StepListScreen, StepRow
from tests.unit.test_audit import containers, good_raw, inspect, rootless_engine, rootless_mode
from wizard.audit import Finding, Severity, findings_in
from wizard.audit.report import as_text
from wizard.audit.table import container_table
from wizard.audit.view import HostView
from wizard.render import render_changeset
from wizard.steps import STEPS
from wizard.steps.docker import DockerEngineAnswers
from wizard.steps.ssh.answers import SshAnswers
from wizard.transaction import ApplyResult


def visible(widget: Any) -> bool:
    """Whether all of ``widget`` is on the screen, above the footer (not scrolled away or
    pushed off the bottom)."""
    region = widget.region
    footer = widget.screen.query("Footer")
    bottom = footer.first().region.y if footer else widget.screen.region.bottom
    return (
        bool(region.area)
        and widget.screen.region.contains_region(region)
        and (region.bottom <= bottom)
    )


@run_async
async def test_a_typed_host_that_fails_stays_typed_for_fixing() -> None:
    """s5e9 instead of s5e1: the start screen comes back saying why, with the text typed
    still in the input and the cursor in it, not on the list of other hosts."""
    app = HostwizApp(default_args(), hosts=[HostChoice("lab1", "practice host")])
    async with app.run_test(size=(80, 24)) as pilot:
        start = await wait_for(pilot, StartScreen, 30)
        await pilot.press("ctrl+l", *"nobody@127.0.0.1:1", "enter")
        await until(pilot, lambda: app.screen is not start and isinstance(app.screen, StartScreen))
        again = app.screen
        assert isinstance(again, StartScreen)
        await until(pilot, lambda: bool(again.query("#problem")), 30)
        await pilot.pause()
        target = again.query_one("#target", Input)
        assert target.value == "nobody@127.0.0.1:1"
        assert app.focused is target
        await pilot.press("escape")
        await pilot.pause()


class FakeConnection:
    """What "connecting" returns in a test that never reaches a host: the step list's rows
    come from :data:`FRESH_ROWS` instead of the host's facts."""

    def __init__(self, target: str) -> None:
        self.host_label = target
        self.closed = False

    def close(self) -> None:
        self.closed = True


@run_async
async def test_other_host_comes_back_to_the_host_just_left() -> None:
    """Pressing "Other host" (h) on the step list of the third host put the start screen's cursor
    back on the first: Enter there opened a host the admin had not chosen. Now the cursor is
    on the host just left (the step list also comes back on the step just left); a typed
    host comes back typed, in the input, ready to be changed for the next one."""
    hosts = [HostChoice(name, "practice host") for name in ("lab1", "lab2", "lab3")]
    app = HostwizApp(default_args(), hosts=hosts)
    opened: list[FakeConnection] = []

    async def connect(choice: HostChoice) -> FakeConnection:
        opened.append(FakeConnection(choice.target))
        return opened[-1]

    async def statuses(transport: Any) -> list[StepRow]:
        return FRESH_ROWS

    app.open_connection = connect  # type: ignore[assignment]
    app.read_statuses = statuses  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, StartScreen, 30)
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, StepListScreen, 30)
        assert [c.host_label for c in opened] == ["lab3"]
        await pilot.press("h")
        start = await wait_for(pilot, StartScreen, 30)
        await pilot.pause()
        assert opened[0].closed
        listed = start.query_one("#hosts", OptionList)
        assert listed.highlighted == 2 and app.focused is listed
        await pilot.press("up", "enter")  # the next host is one key away
        await wait_for(pilot, StepListScreen, 30)
        assert [c.host_label for c in opened] == ["lab3", "lab2"]
        await palette(pilot, "Other host")  # the command palette's "Other host": the same
        start = await wait_for(pilot, StartScreen, 30)
        await pilot.pause()
        assert start.query_one("#hosts", OptionList).highlighted == 1
        await pilot.press("ctrl+l", *"admin@192.0.2.10", "enter")
        await wait_for(pilot, StepListScreen, 30)
        await pilot.press("h")
        start = await wait_for(pilot, StartScreen, 30)
        await pilot.pause()
        target = start.query_one("#target", Input)
        assert target.value == "admin@192.0.2.10" and app.focused is target
        assert target.cursor_position == len(target.value)
        await pilot.press("escape")
        await pilot.pause()


@run_async
async def test_back_from_a_site_the_cursor_is_where_the_admin_left_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a site of several hosts, the start screen came back with its cursor on the first
    host (and a typed site file gone): Enter there opened a host the admin had not chosen. As
    after "Other host", the cursor is back on the host Enter was pressed on, and a typed site
    file is back in the input, ready to be opened again or changed."""
    import screens.site

    hosts = [HostChoice(name, "practice host") for name in ("lab1", "lab2", "lab3")]
    app = HostwizApp(default_args(), hosts=hosts)
    sites: list[Any] = []

    async def site_flow(app: Any, choice: Any) -> None:  # the site's own screens: left at once
        sites.append(choice)

    monkeypatch.setattr(screens.site, "site_flow", site_flow)
    async with app.run_test(size=(80, 24)) as pilot:
        start = await wait_for(pilot, StartScreen, 30)
        # lab2 and lab3 marked, Enter on lab2 (marked: the site is lab2, lab3).
        await pilot.press("down", "space", "down", "space", "up", "enter")
        await until(pilot, lambda: app.screen is not start and isinstance(app.screen, StartScreen))
        start = app.screen
        await pilot.pause()
        assert [h.target for h in sites[0].hosts] == ["lab2", "lab3"]
        listed = start.query_one("#hosts", OptionList)
        assert listed.highlighted == 1 and app.focused is listed
        assert "[x]" not in str(listed.get_option_at_index(2).prompt)  # a new choice: unmarked
        await pilot.press("ctrl+l", *"sites/office.toml", "enter")
        await until(pilot, lambda: app.screen is not start and isinstance(app.screen, StartScreen))
        start = app.screen
        await pilot.pause()
        assert sites[1].file == "sites/office.toml"
        target = start.query_one("#target", Input)
        assert target.value == "sites/office.toml" and app.focused is target
        await pilot.press("escape")
        await pilot.pause()


@run_async
async def test_an_ssh_port_out_of_range_is_marked_while_typing() -> None:
    """70000 used to pass the form and fail only after a round trip to the host."""
    app = Harness(lambda: StepScreen(STEPS["ssh"], SshAnswers()))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        field = screen.query_one("#field-port", Input)
        field.focus()
        field.value = ""
        await pilot.press(*"70000")
        await pilot.pause()
        error = screen.query_one("#row-port .field-error", Static)
        assert "70000 is not a port number" in str(error.content)
        assert screen.query_one("#preview", Button).disabled
        await pilot.press("ctrl+n")  # refused here, not sent to the host
        await pilot.pause()
        assert app.results == []


# The step list as a fresh practice host shows it (the firewall's summary is the longest).
FRESH_ROWS = [
    StepRow("ssh", "SSH hardening", "not done", "password logins are allowed"),
    StepRow("docker", "Docker engine", "not done", "Docker runs with its defaults"),
    StepRow("tls", "Docker API over TLS", "off", "not chosen: the Docker API is only on the host"),
    StepRow("firewall", "Firewall zones", "off",
            "not chosen: no zones, Docker's published ports are open to all"),
    StepRow("shares", "NFS shares", "off", "not chosen: no shares"),
    StepRow("proxy", "Web proxy (squid)", "off", "not chosen: no web proxy"),
    StepRow("swarm", "Docker swarm", "off", "not chosen: hostwiz sets up no swarm"),
]  # fmt: skip
AUDIT_NOTE = "\n".join(
    ["Applied 5 change(s). Undo with: hostwiz rollback --host s5e1 20261203-230149-8814ee9",
     "Audit, before → after:"]
    + [f"fixed:  finding number {n}" for n in range(1, 8)]
)  # fmt: skip


@run_async
async def test_step_list_fits_80_columns_and_cuts_long_details_with_an_ellipsis() -> None:
    app = Harness(lambda: StepListScreen("s5e1", FRESH_ROWS, preset="preset hardened"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#step-table", DataTable)
        assert table.virtual_size.width <= table.size.width  # no horizontal scrollbar
        details = str(table.get_cell("firewall", "details"))
        assert details.endswith("…") and details.startswith("not chosen: no zones, Docker")
        await pilot.press("down", "down", "down")
        await pilot.pause()
        detail = str(app.screen.query_one("#step-detail", Static).content)
        assert detail.endswith("open to all")  # the whole summary, under the table


@run_async
async def test_step_list_comes_back_on_the_step_just_left() -> None:
    app = Harness(lambda: StepListScreen("s5e1", FRESH_ROWS, cursor="firewall"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == ["step:firewall"]


@run_async
async def test_a_long_note_on_the_step_list_scrolls_instead_of_running_off_the_screen() -> None:
    app = Harness(lambda: StepListScreen("s5e1", FRESH_ROWS, note=AUDIT_NOTE))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        note = app.screen.query_one("#note-box")
        assert visible(note)
        footer_top = app.screen.query_one("Footer").region.y
        assert note.region.bottom <= footer_top
        assert note.max_scroll_y > 0  # the rest is a scroll away


@run_async
async def test_audit_table_shows_the_fixing_step_at_80_columns() -> None:
    """The findings of a fresh practice host: the longest title used to push "Fixed by" off
    the right edge of an 80-column terminal."""
    findings = [
        Finding("firewall.none", Severity.HIGH, "No firewall", "m", "e", "firewall"),
        Finding("daemon.icc", Severity.LOW,
                "Containers on the default bridge can all talk to each other", "m", "e",
                "docker"),
        Finding("container.socket", Severity.CRITICAL, "Container holds the Docker socket",
                "m", "e", manual="Recreate it.", subject="web-1"),
    ]  # fmt: skip
    titles = {"firewall": "Firewall zones", "docker": "Docker engine"}
    app = Harness(lambda: AuditScreen("s5e1", findings, titles=titles))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#finding-table", DataTable)
        columns = list(table.columns.values())
        fixed_by = next(i for i, c in enumerate(columns) if str(c.label) == "Fixed by")
        right_edge = sum(c.get_render_width(table) for c in columns[: fixed_by + 1])
        assert right_edge <= table.size.width
        rows = {str(table.get_row_at(i)[fixed_by]) for i in range(table.row_count)}
        assert rows == {"Firewall zones", "Docker engine", "by hand"}
        finding = next(i for i, c in enumerate(columns) if str(c.label) == "Finding")
        shown = [str(table.get_row_at(i)[finding]) for i in range(table.row_count)]
        assert "Container holds the Docker socket (web-1)" in shown  # what it is about


def two_engines(rootless_container: str = "web") -> HostView:
    """A host whose system engine runs ``db`` and admin's rootless engine runs
    ``rootless_container``, both as root (the audit's own parsing of the facts)."""
    return rootless_mode(
        rootless_engine(inspect(rootless_container, Config__User="")),
        docker_info=good_raw()["docker_info"],
        **{"audit:containers": containers(inspect("db", Config__User=""))},
    )


STEP_TITLES = {name: step.title for name, step in STEPS.items()}


@run_async
async def test_a_long_finding_is_cut_with_an_ellipsis_and_shown_whole_under_the_table() -> None:
    """At 80 columns the findings table scrolled sideways: a long title ran off the right
    edge, and with it what the finding is about (which container, of which engine), which the
    panel under the table did not say either. Now each finding fits, cut with "…" (its title
    first, its subject kept as far as it can be), and the panel says it whole; a long host
    name is whole in the intro."""
    view = two_engines("monitoring-node-exporter-1")
    findings = findings_in(view)
    host = "build-server-of-the-accounting-department.example.internal"
    app = Harness(lambda: AuditScreen(host, findings, container_table(view), titles=STEP_TITLES))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one("#finding-table", DataTable)
        assert table.virtual_size.width <= table.size.width  # no horizontal scrollbar
        column = [str(c.label) for c in table.columns.values()].index("Finding")
        shown = {f.key: str(table.get_row_at(i)[column]) for i, f in enumerate(findings)}
        icc = shown[("daemon.icc", "")]
        assert icc.endswith("…") and icc.startswith("Containers on the default bridge can")
        engine = "monitoring-node-exporter-1 (admin's rootless engine)"
        root = shown[("container.root-user", engine)]
        assert root.startswith("Container runs as root (monitoring-node-") and root.endswith("…)")
        assert shown[("container.root-user", "db")] == "Container runs as root (db)"  # whole
        row = list(shown).index(("container.root-user", engine))
        table.move_cursor(row=row, animate=False)
        await pilot.pause()
        detail = str(screen.query_one("#finding-detail", Static).content)
        assert detail.startswith(f"Container runs as root ({engine})\n"), detail
        assert host in str(screen.query_one(".intro", Static).content)
        assert visible(screen.query_one(".intro"))
        await pilot.resize_terminal(160, 40)  # wider: whole again, the cursor kept
        await pilot.pause()
        assert str(table.get_row_at(row)[column]) == f"Container runs as root ({engine})"
        assert table.cursor_row == row and table.virtual_size.width <= table.size.width


@run_async
async def test_the_audit_names_the_engine_of_a_rootless_engines_container() -> None:
    """The running containers said "web" for admin's rootless engine's container, as if the
    system engine ran it; the findings above it, the CLI and the JSON name its engine."""
    view = two_engines("web")
    findings = findings_in(view)
    app = Harness(lambda: AuditScreen("s5e1", findings, container_table(view)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        rows = app.screen.query_one("#container-table", DataTable)
        names = [str(rows.get_row_at(i)[0]) for i in range(rows.row_count)]
    assert names == ["db", "web (admin's rootless engine)"]
    assert {f.subject for f in findings if f.id == "container.root-user"} == set(names)
    assert "web  (" in (text := as_text("s5e1", view, findings))
    assert ", under admin's rootless engine)" in text


@run_async
async def test_at_80x24_the_audit_shows_every_container_and_the_whole_finding_by_keys() -> None:
    """At 80x24 a tall finding panel left the running containers' table only its header (and
    cut the panel itself): the screen was one fixed-height column. Now the findings and the
    containers are two tabs (f and c, as the footer says), each with the whole height, and a
    finding that says more than its panel shows scrolls in it (Tab, then the arrows)."""
    system = containers(*(inspect(f"app-{n}", Config__User="") for n in range(6)))
    view = rootless_mode(
        rootless_engine(inspect("web", Config__User="")),
        docker_info=good_raw()["docker_info"],
        **{"audit:containers": system},
    )
    meaning = " ".join(["Why this matters, at length."] * 40)
    long = Finding("x.long", Severity.CRITICAL, "A finding that says a lot", meaning, "e", "docker")
    findings = [long, *findings_in(view)]
    app = Harness(lambda: AuditScreen("s5e1", findings, container_table(view), titles=STEP_TITLES))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        footer = [b.binding.description for b in screen.active_bindings.values() if b.binding.show]
        assert "Containers" in footer and "Findings" not in footer  # what c does, on the screen
        await pilot.press("c")
        await pilot.pause()
        rows = screen.query_one("#container-table", DataTable)
        assert rows.row_count == 7 and app.focused is rows
        assert visible(rows) and rows.region.height >= rows.row_count + 1  # header and all rows
        await pilot.press("f")
        await pilot.pause()
        table = screen.query_one("#finding-table", DataTable)
        assert app.focused is table and visible(table)
        box = screen.query_one("#detail-box")
        assert visible(box) and box.max_scroll_y > 0  # the long finding is cut, for now
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is box
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y  # its end can be read
        await pilot.press("shift+tab", "down")  # another finding: its panel starts at the top
        await pilot.pause()
        assert app.focused is table and box.scroll_y == 0


def test_the_apply_result_says_how_to_undo_once() -> None:
    undo = "hostwiz rollback --host s5e1 20261203-225736-876f3ef"
    result = ApplyResult("20261203-225736-876f3ef", 2, f"Applied 2 change(s). Undo with: {undo}")
    shown = str(result_content(result, "hostwiz rollback --host s5e1", ["/etc/ssh/x.conf"]))
    assert shown.count(undo) == 1, shown
    assert shown.startswith("Applied 2 change(s).")
    assert f"To undo: {undo} (or Snapshots in the step list)" in shown


@run_async
async def test_the_rollback_preview_footer_says_roll_back() -> None:
    """The button said "Roll back (a)" and the footer "a Apply"."""
    app = Harness(
        lambda: PreviewScreen("Roll back s5e1", render_changeset(docker_changeset()),
                              empty=False, action="Roll back")
    )  # fmt: skip
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = {b.binding.key: b.binding.description for b in app.screen.active_bindings.values()}
        assert keys["a"] == "Roll back"
        await pilot.press("a")
        await pilot.pause()
    assert app.results == [True]


@run_async
async def test_the_ca_passphrase_dialog_keeps_its_error_and_buttons_on_an_80x24_screen() -> None:
    """A short passphrase at 80×24: the error was cut after two lines and the Cancel and
    Create CA buttons were pushed off the bottom of the dialog."""
    app = Harness(passphrase_screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SecretScreen)
        await pilot.press(*"short", "enter", *"short", "enter")
        await pilot.pause()
        await pilot.pause()
        assert "shorter than 12 characters" in screen.error_text
        dialog = screen.query_one("#ca-passphrase")
        for selector in ("#passphrase", "#confirmation", "#passphrase-error", "#cancel", "#ok"):
            widget = screen.query_one(selector)
            assert dialog.content_region.contains_region(widget.region), selector
            assert visible(widget), selector
        error = screen.query_one("#passphrase-error", Static)
        assert error.region.height >= 3  # the whole message, not its first lines


@run_async
async def test_a_typo_in_a_list_shows_its_red_line_on_an_80x24_screen() -> None:
    """'shh' for 'ssh' in the mgmt services: the explanation (with "Did you mean 'ssh'?")
    was six lines under the input, below the bottom of the screen, and the status line only
    said "see the red lines"."""
    app = Harness(firewall_screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        field = screen.query_one("#field-mgmt_services", Input)
        body = screen.query_one("#step-body")
        field.focus()
        await pilot.pause()
        # The input on the last line of the form's view, as Tab brought it there.
        body.scroll_to(y=body.scroll_y - (body.region.bottom - 1 - field.region.y), animate=False)
        await pilot.pause()
        assert field.region.y == body.region.bottom - 1
        field.cursor_position = len(field.value)
        await pilot.press(*", shh")
        for _ in range(3):
            await pilot.pause()
        error = screen.query_one("#row-mgmt_services .field-error", Static)
        assert "Did you mean 'ssh'?" in str(error.content)
        assert visible(error)
        assert visible(field)
        status = str(screen.query_one("#form-status", Static).content)
        assert "Services offered to mgmt" in status


def friendly(key: str) -> str:
    """A key as help.md writes it: ctrl+l -> Ctrl+L, escape -> Escape."""
    return "+".join(part.capitalize() if len(part) > 1 else part.upper() for part in key.split("+"))


@pytest.mark.parametrize(
    "screen", [StartScreen, StepListScreen, StepScreen, PreviewScreen, AuditScreen]
)
def test_help_explains_every_key_the_footer_shows(screen: type[Any]) -> None:
    """Ctrl+L and Space were in the start screen's footer and nowhere in F1's help."""
    text = (Path(screens.__file__).parent / "help.md").read_text(encoding="utf-8")
    table = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")}
    keys = {part for row in table for part in row.replace(" or ", "/").split("/")}
    keys = {key.strip() for key in keys}
    for binding in screen.BINDINGS:
        assert isinstance(binding, Binding)
        if binding.show:
            for key in binding.key.split(","):
                wanted = friendly(key.strip())
                assert wanted in keys or wanted.lower() in keys, (screen.__name__, wanted, keys)


@run_async
async def test_step_list_says_which_answers_differ_from_the_preset() -> None:
    """After choosing rootless Docker the list still said "answers from preset hardened"."""
    app = Harness(
        lambda: StepListScreen(
            "s5e1", FRESH_ROWS, preset="preset hardened", edited=["Docker engine"]
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        intro = str(app.screen.query_one("#intro", Static).content)
        assert "answers from preset hardened, changed here for Docker engine" in intro
        assert "w saves them" in intro


@run_async
async def test_leaving_a_step_with_changes_says_which_answers_changed() -> None:
    app = Harness(step_screen)  # the Docker engine step
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#field-icc", Switch).toggle()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, UnsavedScreen)
        said = " ".join(str(s.content) for s in dialog.query(Static).results(Static))
        assert "You changed answers of Docker engine (Inter-container traffic" in said
        await pilot.press("d")
        await pilot.pause()
    assert app.results == [None]


@run_async
async def test_a_step_opened_from_the_audit_says_which_finding_brought_it() -> None:
    """Enter on "Container root is host root" opened the Docker engine step with nothing to
    say why; with rootless mode already chosen it looked like nothing was wrong."""
    finding = Finding(
        "daemon.no-userns", Severity.MEDIUM, "Container root is host root", "m",
        "daemon.json has no userns-remap; dockerd runs as root", "docker",
    )  # fmt: skip
    app = Harness(lambda: AuditScreen("s5e1", [finding], titles={"docker": "Docker engine"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == ["step:docker"] and screen.chosen is finding

    reason = "Opened from the audit for: Container root is host root. Found: daemon.json …"
    app = Harness(lambda: StepScreen(STEPS["docker"], DockerEngineAnswers(), reason=reason))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = app.screen.query_one("#reason", Static)
        assert str(shown.content) == reason and visible(shown)


@run_async
async def test_connecting_says_how_long_it_waits_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "Connecting to web1…" alone looked hung on a slow host: the text names the time limit,
    the one the connection really uses."""
    import threading

    from wizard.transport.ssh import SshTransport

    used: list[float] = []
    release = threading.Event()

    def slow_connect(target: str, **kwargs: Any) -> Any:
        used.append(kwargs.get("connect_timeout", 10))  # SshTransport.connect default
        release.wait(30)
        raise OSError("no answer")

    monkeypatch.setattr(SshTransport, "connect", slow_connect)
    app = HostwizApp(default_args(), hosts=[HostChoice("lab1", "practice host")])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, StartScreen, 30)
        await pilot.press("ctrl+l", *"admin@web1", "enter")
        await until(pilot, lambda: bool(used), 30)
        busy = app.screen_stack[0].query_one("#busy-text", Static)
        assert used == [10]
        assert str(busy.render()) == (
            "Connecting to admin@web1… (gives up after 10 s without an answer; Escape stops "
            "waiting)"
        )
        release.set()
        await until(pilot, lambda: isinstance(app.screen, StartScreen), 30)
        await pilot.press("escape")
        await pilot.pause()


class NoHost:
    """The transport run_step is given when the plan comes from fixture facts."""

    host_label = "web1"


@run_async
async def test_escape_after_going_back_from_a_preview_asks_before_keeping_the_answers() -> None:
    """Back on the preview, then Escape on the questions: the answers that were previewed
    stayed in the session without a word, and the step list then said the step was "changed
    here". Now Escape asks as for any edited answers: Discard puts back what the session had,
    Save keeps them."""
    for choice, kept in (("d", 5), ("s", 9)):
        app = HostwizApp(default_args(), hosts=[])
        app.plan_selections = lambda _transport, selections: (  # type: ignore[method-assign]
            selections,
            docker_changeset(selections[0].answers),
        )
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, StartScreen, 30)
            assert await app.steps_loaded()
            preset = app.answers["docker"]
            assert preset.log_max_file == 5
            worker = app.run_worker(app.run_step(NoHost(), "docker"))  # type: ignore[arg-type]
            step = await wait_for(pilot, StepScreen, 30)
            step.query_one("#field-log_max_file", Input).value = "9"
            await pilot.pause()
            await pilot.press("ctrl+n")
            await wait_for(pilot, PreviewScreen, 30)
            await pilot.press("escape")  # back: not applied
            step = await wait_for(pilot, StepScreen, 30)
            assert step.query_one("#field-log_max_file", Input).value == "9"
            await pilot.press("escape")
            dialog = await wait_for(pilot, UnsavedScreen, 10)
            said = " ".join(str(s.content) for s in dialog.query(Static).results(Static))
            assert "You changed answers of Docker engine (Log files kept" in said, said
            await pilot.press(choice)
            await worker.wait()
            assert app.answers["docker"].log_max_file == kept
            assert app.edited_steps() == ([] if choice == "d" else ["Docker engine"])
            await pilot.press("escape")
            await pilot.pause()


def footer_keys_cut(screen: Any) -> list[str]:
    """The footer keys whose label is not all on the screen: off its right edge, or under
    another key (the palette's ^p is docked on the right, over whatever reaches it)."""
    cut = []
    for key in screen.query("FooterKey"):
        region = key.region
        label = f"{key.key_display} {key.description}"
        if not region.area or region.right > screen.size.width:
            cut.append(label)
            continue
        first, _ = screen.get_widget_at(region.x, region.y)
        last, _ = screen.get_widget_at(region.right - 1, region.y)
        if first is not key or last is not key:
            cut.append(label)
    return cut


FOOTER_SCREENS = {
    "start": lambda: StartScreen([HostChoice("lab1", "practice host")]),
    "steps": lambda: StepListScreen("s5e1", FRESH_ROWS, preset="preset hardened"),
    "step": step_screen,
    "preview": lambda: PreviewScreen("Docker engine: what would change on web1",
                                     render_changeset(docker_changeset()), empty=False),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FOOTER_SCREENS))
@run_async
async def test_every_key_the_footer_shows_is_whole_at_80_columns(name: str) -> None:
    """At 80×24 the step list's footer ran under the palette key ("^t Light/dark" cut) and
    the start screen's hid half of "f1 Help": in the wizard itself, with its own keys."""
    app = HostwizApp(default_args(), hosts=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, StartScreen, 30)
        await app.push_screen(FOOTER_SCREENS[name]())
        await pilot.pause()
        await pilot.pause()
        screen = app.screen
        shown = [f"{k.key_display} {k.description}" for k in screen.query("FooterKey")]
        assert "f1 Help" in shown, shown
        assert footer_keys_cut(screen) == [], shown
        app.pop_screen()
        await pilot.press("escape")
        await pilot.pause()


def test_help_lists_every_key_of_the_step_list_and_the_wizard() -> None:
    """Keys the step list's footer leaves out (to fit 80 columns) are in F1's help."""
    text = (Path(screens.__file__).parent / "help.md").read_text(encoding="utf-8")
    table = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")}
    keys = {part.strip() for row in table for part in row.replace(" or ", "/").split("/")}
    names = {"question_mark": "?"}
    for binding in [*StepListScreen.BINDINGS, *HostwizApp.BINDINGS]:
        assert isinstance(binding, Binding)
        wanted = names.get(binding.key) or friendly(binding.key)
        assert wanted in keys or wanted.lower() in keys, (binding.key, keys)


class Opened:
    """A connection a stopped attempt still got (closed by the wizard, never used)."""

    host_label = "web1"
    closed = False

    def close(self) -> None:
        self.closed = True


def shown_keys(screen: Any) -> list[str]:
    return [f"{key.key_display} {key.description}" for key in screen.query("FooterKey")]


@run_async
async def test_escape_while_connecting_goes_back_to_the_start_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "Connecting…" could not be left: Escape did nothing until the host answered or the
    time limit ran out. Now Escape goes back to the start screen at once, the host still
    typed; the attempt's thread ends by itself, asks nothing more (no sudo password dialog
    over the start screen) and closes the connection it still opens."""
    import threading

    from wizard.transport.ssh import SshTransport

    started, release = threading.Event(), threading.Event()
    asked: list[BaseException] = []
    opened: list[Opened] = []

    def hanging_connect(target: str, **kwargs: Any) -> Opened:
        started.set()
        release.wait(30)
        try:
            kwargs["sudo_password"]()
        except Exception as error:  # what the stopped attempt is told
            asked.append(error)
        opened.append(Opened())
        return opened[-1]

    monkeypatch.setattr(SshTransport, "connect", hanging_connect)
    app = HostwizApp(default_args(), hosts=[HostChoice("lab1", "practice host")])
    async with app.run_test(size=(80, 24)) as pilot:
        start = await wait_for(pilot, StartScreen, 30)
        assert "esc Stop" not in shown_keys(start)  # Escape quits here, as the footer says
        await pilot.press("ctrl+l", *"admin@web1", "enter")
        await until(pilot, started.is_set, 30)
        await pilot.pause()
        assert "esc Stop" in shown_keys(app.screen)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, StartScreen) and app.screen is not start)
        again = app.screen
        await until(pilot, lambda: bool(again.query("#problem")))
        problem = str(again.query_one("#problem", Static).content)
        assert "you stopped connecting to admin@web1 before it answered" in problem, problem
        assert again.query_one("#target", Input).value == "admin@web1"
        assert "esc Stop" not in shown_keys(again)
        release.set()
        await until(pilot, lambda: bool(opened) and opened[0].closed, 30)
        assert [type(error).__name__ for error in asked] == ["Cancelled"]
        assert app.screen is again and app.transport is None
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@run_async
async def test_the_connecting_text_wraps_instead_of_running_off_an_80_column_screen() -> None:
    """ "…Escape stops waitin" (and a long host name pushed more off the right edge)."""
    app = HostwizApp(default_args(), hosts=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, StartScreen, 30)
        app.pop_screen()  # the screen a wait is shown on
        app.set_busy(app.connecting("admin@build-server-02.example.org:2222"))
        await pilot.pause()
        await pilot.pause()
        busy = app.screen.query_one("#busy-text", Static)
        assert app.screen.region.contains_region(busy.region), busy.region
        assert busy.region.height >= 2  # wrapped: all of it is there


def test_quitting_after_stopping_a_connection_does_not_wait_for_the_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Escape while connecting, then Escape (quit): the wizard ended only once the abandoned
    attempt did (up to its time limit, with a blank terminal)."""
    import threading

    from wizard.transport.ssh import SshTransport

    started, release = threading.Event(), threading.Event()
    opened: list[Opened] = []

    def hanging_connect(target: str, **kwargs: Any) -> Opened:
        started.set()
        release.wait(60)
        opened.append(Opened())
        return opened[-1]

    monkeypatch.setattr(SshTransport, "connect", hanging_connect)
    app = HostwizApp(default_args(host="admin@web1"), hosts=[])

    async def stop_then_quit() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, started.is_set, 30)
            await pilot.pause()
            await pilot.press("escape")
            await wait_for(pilot, StartScreen, 30)
            await pilot.press("escape")
            await pilot.pause()

    try:
        asyncio.run(stop_then_quit())
        assert app.return_value == 0
        assert not opened  # the wizard is over; the attempt still hangs, on its own
    finally:
        release.set()
    for _ in range(600):  # bounded: it ends by itself, and closes what it opened
        if opened and opened[0].closed:
            break
        time.sleep(0.05)
    assert opened and opened[0].closed


def test_a_wrapped_note_in_the_preview_keeps_its_indent() -> None:
    """The rows a long note wraps onto started one or two spaces further in than the indent
    ("│    first." under "│   reach them;"): the space it broke at was kept."""
    from screens.widgets import wrap_line
    from wizard.render import RenderedLine

    note = RenderedLine(
        "note",
        "Docker publishes container ports on every address and would let anyone reach them; "
        "hostwiz filters them in DOCKER-USER, which Docker consults first.",
    )
    for width in range(60, 80):  # the preview's width, whatever the terminal's
        rows = wrap_line(note, width)
        assert len(rows) >= 2
        assert all(row.startswith("  ") and row[2] != " " for row in rows[1:]), rows
    diff = RenderedLine("add", "+" + "word  " * 20)  # a file's spaces are kept as they are
    assert "".join(row.removeprefix("+↳ ") for row in wrap_line(diff, 40)) == diff.text


@pytest.mark.parametrize(
    "make",
    [lambda: PasswordScreen("admin@web1"), lambda: SavePresetScreen("hostwiz.toml")],
    ids=["sudo-password", "save-preset"],
)
@run_async
async def test_a_dialog_without_buttons_says_which_keys_answer_it(make: Any) -> None:
    """The sudo password and Save preset dialogs have one input, no buttons, and the footer
    under them is the screen's behind: nothing said that Enter answers and Escape cancels
    (nor where "hostwiz.toml" would be written)."""
    app = Harness(make)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        said = " ".join(str(s.content) for s in app.screen.query(Static).results(Static))
        assert "Enter: " in said and "Escape: " in said, said
        if isinstance(app.screen, SavePresetScreen):
            assert str(Path.cwd()) in said
        hint = app.screen.query_one(".hint", Static)
        assert visible(hint)
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


@run_async
async def test_the_apply_log_shows_its_last_line_once_the_result_is_shown() -> None:
    """The result panel takes room from the log when the change ends: the log stayed where
    it was, and its last visible line was "[ .. ] restart dockerd…", as if still running."""
    import threading

    from wizard.transaction import Event

    finish = threading.Event()

    def many_actions(progress: Any) -> ApplyResult:
        for number in range(1, 7):
            progress(Event("action", f"write /etc/hostwiz-example-{number}", number))
            progress(Event("action-done", f"write /etc/hostwiz-example-{number}", number))
        restart = "restart dockerd so the new settings take effect, and wait until it answers"
        progress(Event("action", restart, 7))
        progress(Event("action-done", restart, 7, "Restarting Docker: docker.\nanswers"))
        progress(Event("health", "Checking Docker engine"))
        progress(Event("confirm", "Confirmed over a new connection in 0.4 s"))
        progress(Event("done", "Applied 7 change(s)."))
        finish.wait(30)  # the log is on screen first, then the result panel grows
        return ApplyResult("20240501-101500-ab12", 7, "Applied 7 change(s).", True)

    app = Harness(lambda: ApplyScreen("Applying Docker engine on web1", "web1", many_actions))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        await until(pilot, lambda: len(screen.query(".event")) == 17)
        for _ in range(3):
            await pilot.pause()
        finish.set()
        await until(pilot, lambda: screen.done)
        for _ in range(3):
            await pilot.pause()
        log = screen.query_one("#events")
        last = list(screen.query(".event"))[-1]
        assert "Applied 7 change(s)" in str(last.render())
        assert log.region.contains_region(last.region), (log.region, last.region)
