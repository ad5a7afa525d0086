"""The wizard picks several hosts: Space marks hosts on the start screen and Enter opens them
as one site, a typed .toml path opens a site file; on practice hosts, the site's preview shows
every host's diff and its apply changes both hosts (the generic site machinery, no step
named)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from screens.app import HostwizApp, default_args
from screens.preview import PreviewScreen
from screens.start import HostChoice, SiteChoice, StartScreen
from tests.site_demo import DEMO, FOLDER, PEER_CONF, SOURCE, TOKEN, WRITER
from wizard.site.registry import SITE_STEPS

CSS = Path(__file__).parent.parent / "screens" / "hostwiz.tcss"


class Harness(App[None]):
    CSS_PATH = CSS

    def __init__(self, screen: StartScreen) -> None:
        super().__init__()
        self.start = screen
        self.results: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("harness")

    def on_mount(self) -> None:
        self.push_screen(self.start, self.results.append)


HOSTS = [HostChoice("a", "practice host"), HostChoice("b", "ssh config"), HostChoice("c")]


def test_space_marks_hosts_and_enter_opens_them_as_one_site() -> None:
    async def body() -> None:
        app = Harness(StartScreen(HOSTS))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("space", "down", "down", "space", "up", "enter")
            await pilot.pause()
        assert app.results == [SiteChoice((HOSTS[0], HOSTS[2], HOSTS[1]))]

    asyncio.run(body())


def test_unmarking_leaves_one_host_and_a_typed_toml_is_a_site_file() -> None:
    async def body() -> None:
        app = Harness(StartScreen(HOSTS))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("space", "space", "down", "enter")
            await pilot.pause()
        assert app.results == [HOSTS[1]]
        typed = Harness(StartScreen(HOSTS))
        async with typed.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+l", *"sites/office.toml", "enter")
            await pilot.pause()
        assert typed.results == [SiteChoice(file="sites/office.toml")]

    asyncio.run(body())


async def wait_for(pilot: Any, check: Any, seconds: float = 120) -> Any:
    for _ in range(int(seconds / 0.05)):
        await pilot.pause(0.05)
        if check(pilot.app.screen):
            return pilot.app.screen
    raise AssertionError(f"never happened; now on {pilot.app.screen!r}")


@pytest.mark.lab
def test_the_wizard_previews_and_applies_a_two_host_site(
    make_lab_hosts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SITE_STEPS, DEMO.name, DEMO)
    writer, source = make_lab_hosts(2, docker=False)
    path = tmp_path / "pair.toml"
    path.write_text(
        f'[hosts.writer]\ntarget = "{writer.name}"\nroles = ["{WRITER}"]\n'
        f'[hosts.source]\ntarget = "{source.name}"\nroles = ["{SOURCE}"]\n[steps.site-demo]\n'
    )

    async def body() -> None:
        app = HostwizApp(default_args(confirm_timeout=30), hosts=[])
        async with app.run_test(size=(120, 40)) as pilot:
            start = await wait_for(pilot, lambda s: isinstance(s, StartScreen))
            start.query_one("#target", Input).value = str(path)
            await pilot.press("ctrl+l", "enter")
            preview = await wait_for(pilot, lambda s: isinstance(s, PreviewScreen))
            shown = "\n".join(line.text for line in preview.lines)
            assert "=== source [demo-source]" in shown and "=== writer [demo-writer]" in shown
            assert f"peer = {source.address}" in shown and not preview.empty
            await pilot.press("a")
            again = await wait_for(pilot, lambda s: isinstance(s, PreviewScreen) and s.empty)
            assert again is not preview
            await pilot.press("escape")
            await wait_for(pilot, lambda s: isinstance(s, StartScreen))
            await pilot.press("escape")
            await pilot.pause()

    asyncio.run(body())
    assert writer.console().run(f"cat {PEER_CONF}").out == f"peer = {source.address}\n"
    assert source.console().run(f"test -s {TOKEN}").ok
    assert source.console().run(f"test -d {FOLDER}").ok
