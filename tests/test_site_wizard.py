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
from textual.widgets import DataTable, Input, Static

from screens.app import HostwizApp, default_args
from screens.preview import PreviewScreen
from screens.snapshot_list import SiteSnapshotsScreen
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
        assert app.results == [SiteChoice((HOSTS[0], HOSTS[2], HOSTS[1]), cursor=HOSTS[1])]

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
    shown = getattr(pilot.app.screen, "error_text", "")  # a dialog's error says why it stays
    raise AssertionError(f"never happened; now on {pilot.app.screen!r} {shown}")


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


@pytest.mark.lab
def test_the_wizard_puts_a_site_back_from_its_preview(
    make_lab_hosts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lab_ssh_config: Path
) -> None:
    """A site applied (by the core, as ``apply --site`` does), then in the wizard: the empty
    preview, ``s`` lists each host's snapshot of the site's change and the journal's story,
    Enter previews the rollback (newest first), ``a`` puts both hosts back, and the preview
    that follows shows the site's change again."""
    from wizard.site.apply import apply_site, close_all
    from wizard.site.model import load_site
    from wizard.site.plan import site_session
    from wizard.transport.ssh import SshTransport

    monkeypatch.setitem(SITE_STEPS, DEMO.name, DEMO)
    writer, source = make_lab_hosts(2, docker=False)
    path = tmp_path / "back.toml"
    path.write_text(
        f'[hosts.writer]\ntarget = "{writer.name}"\nroles = ["{WRITER}"]\n'
        f'[hosts.source]\ntarget = "{source.name}"\nroles = ["{SOURCE}"]\n[steps.site-demo]\n'
    )
    site = load_site(path)
    opened = {host.name: SshTransport.connect(host.target, ssh_config=lab_ssh_config)
              for host in site.hosts}  # fmt: skip
    try:
        apply_site(site_session(site), opened, confirm_timeout=30)
    finally:
        close_all(opened)
    assert writer.console().run(f"test -s {PEER_CONF}").ok

    async def body() -> None:
        app = HostwizApp(default_args(confirm_timeout=30), hosts=[])
        async with app.run_test(size=(120, 40)) as pilot:
            start = await wait_for(pilot, lambda s: isinstance(s, StartScreen))
            start.query_one("#target", Input).value = str(path)
            await pilot.press("ctrl+l", "enter")
            await wait_for(pilot, lambda s: isinstance(s, PreviewScreen) and s.empty)
            await pilot.press("s")
            listed = await wait_for(  # the table fills after mount: wait for its rows
                pilot,
                lambda s: isinstance(s, SiteSnapshotsScreen) and s.query_one(DataTable).row_count,
            )
            table = listed.query_one(DataTable)
            hosts = [table.get_row_at(row)[0] for row in range(table.row_count)]
            assert hosts == ["writer", "source"]  # newest first: stage 2, then stage 1
            assert "writer, stage 2: applied and confirmed" in str(
                listed.query_one("#site-story", Static).content
            )
            await pilot.press("enter")
            undo = await wait_for(
                pilot, lambda s: isinstance(s, PreviewScreen) and s.action_word == "Roll back"
            )
            shown = "\n".join(line.text for line in undo.lines)
            assert shown.index("=== writer") < shown.index("=== source")
            await pilot.press("a")
            again = await wait_for(
                pilot, lambda s: isinstance(s, PreviewScreen) and s is not undo and not s.empty
            )
            assert f"peer = {source.address}" in "\n".join(line.text for line in again.lines)
            await pilot.press("escape")
            await wait_for(pilot, lambda s: isinstance(s, StartScreen))
            await pilot.press("escape")
            await pilot.pause()

    asyncio.run(body())
    assert not writer.console().run(f"test -e {PEER_CONF} || test -e {FOLDER}").ok
    assert not source.console().run(f"test -e {TOKEN} || test -e {FOLDER}").ok


@pytest.mark.lab
@pytest.mark.docker
def test_the_wizard_applies_a_site_with_tls_asking_the_passphrase_once(
    make_lab_hosts: Any, tmp_path: Path, lab_ssh_config: Path
) -> None:
    """Both hosts' preset turns TLS on: the wizard's passphrase dialog comes once (a new CA,
    typed twice) for the site, the preview shows a server certificate for each host, the
    apply installs a client bundle and docker context per host, and the preview that follows
    is empty without asking again."""
    import os
    import subprocess

    from screens.dialogs import SecretScreen
    from wizard.tls_client import Bundle

    first, second = make_lab_hosts(2)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (tmp_path / "tls.toml").write_text("[tls]\nenabled = true\n")
    path = tmp_path / "tls-site.toml"
    path.write_text(f'preset = "tls.toml"\n[hosts.one]\ntarget = "{first.name}"\n'
                    f'[hosts.two]\ntarget = "{second.name}"\n')  # fmt: skip
    passphrase = "correct horse battery staple"

    async def body() -> None:
        app = HostwizApp(default_args(ssh_config=str(lab_ssh_config), confirm_timeout=60),
                         hosts=[])  # fmt: skip
        async with app.run_test(size=(120, 40)) as pilot:
            start = await wait_for(pilot, lambda s: isinstance(s, StartScreen))
            start.query_one("#target", Input).value = str(path)
            await pilot.press("ctrl+l", "enter")
            dialog = await wait_for(pilot, lambda s: isinstance(s, SecretScreen))
            assert dialog.request.confirm  # a new CA: chosen now
            # Typed once each field has the cursor, as a person types (keys pressed before the
            # dialog has focused its field would go nowhere on a loaded machine).
            await wait_for(pilot, lambda s: s.focused is not None and s.focused.id == "passphrase")
            await pilot.press(*passphrase, "enter")
            await wait_for(
                pilot, lambda s: s.focused is not None and s.focused.id == "confirmation"
            )
            await pilot.press(*passphrase, "enter")
            preview = await wait_for(pilot, lambda s: isinstance(s, PreviewScreen), 180)
            shown = "\n".join(line.text for line in preview.lines)
            assert shown.count("/etc/docker/tls/server-cert.pem") >= 2, shown
            assert passphrase not in shown
            await pilot.press("a")
            await wait_for(pilot, lambda s: isinstance(s, PreviewScreen) and s.empty, 300)
            await pilot.press("escape")
            await wait_for(pilot, lambda s: isinstance(s, StartScreen))
            await pilot.press("escape")
            await pilot.pause()

    with pytest.MonkeyPatch.context() as patch:  # after the hosts are up: the lab's own files
        for key, value in (("HOME", home), ("DOCKER_CONFIG", home / ".docker"),
                           ("XDG_DATA_HOME", home / "data")):  # fmt: skip
            patch.setenv(key, str(value))
        patch.delenv("HOSTWIZ_CA_PASSPHRASE", raising=False)
        asyncio.run(body())
        for host in (first, second):
            assert Bundle(home / ".docker" / "hostwiz" / host.name).read() is not None
            version = subprocess.run(
                ["docker", "--context", host.name, "version", "--format", "{{.Server.Version}}"],
                capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ),
            )  # fmt: skip
            assert version.returncode == 0 and version.stdout.strip(), version.stderr
