"""Rough edges a first-time admin hit in the wizard (found by walking it in tmux at 80×24),
each pinned by a Pilot test: the screens fit 80 columns, a typo can be fixed in place, an error
is shown where the eye is, and what to press is what the footer says.

No practice host is needed: the screens get real step data, and the one connection attempt
goes to a closed loopback port.
"""

from __future__ import annotations

from typing import Any

from test_screens import Harness, run_async, until, wait_for
from textual.widgets import Button, DataTable, Input, Static

from screens.app import HostwizApp, default_args
from screens.start import HostChoice, StartScreen
from screens.step_form import StepScreen
from wizard.steps import STEPS
from wizard.steps.ssh.answers import SshAnswers


def visible(widget: Any) -> bool:
    """Whether all of ``widget`` is on the screen (not scrolled away, not clipped)."""
    screen = widget.screen.region
    region = widget.region
    return bool(region.area) and screen.contains_region(region) and region == widget.visible_region


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
