"""``hostwiz --plain --site FILE`` (and ``--plain`` with several ``--host``): a site line by line.

Prompts are driven through a prompt_toolkit pipe input, as in tests/test_plain.py. On two
practice hosts: the preview names both, yes applies on both (the files are on both hosts), a
second visit has nothing to change and its rollback offer puts both hosts back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.plain_text import PlainTextOutput

from hostwiz.cli import main
from hostwiz.site_cli import connected
from screens.app import default_args
from screens.plain import NO_CHANGES
from screens.plain_common import PlainRun
from screens.plain_site import _asker, run_plain_site
from tests.site_demo import DEMO, FOLDER, PEER_CONF, SOURCE, TOKEN, WRITER
from wizard.local import SecretRequest
from wizard.site.model import load_site
from wizard.site.registry import SITE_STEPS

DROP_IN = "/etc/ssh/sshd_config.d/00-hostwiz.conf"


@pytest.fixture
def keys() -> Iterator[Any]:
    """Type into prompts: ``keys("text")`` queues input; returns the prompt options."""
    with create_pipe_input() as pipe:

        def send(text: str) -> dict[str, Any]:
            pipe.send_text(text)
            return {"input": pipe, "output": DummyOutput()}

        yield send


@pytest.fixture
def screen() -> io.StringIO:
    """What the prompts show (the questions), as plain text."""
    return io.StringIO()


@pytest.fixture
def typed(keys: Any, screen: io.StringIO) -> Any:
    """``keys``, with the prompts written to ``screen``."""

    def send(text: str) -> dict[str, Any]:
        return {**keys(text), "output": PlainTextOutput(screen)}

    return send


# ---- routing (no practice host) -------------------------------------------------------------


def test_plain_takes_several_hosts_and_explains_an_unreachable_one(capsys: Any) -> None:
    """Several --host with --plain is a site (it used to be refused: "takes one --host"); a
    closed loopback port is explained, nothing asked, nothing changed."""
    code = main(
        ["--plain", "--yes", "--host", "nobody@127.0.0.1:1", "--host", "nobody@127.0.0.1:2"]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "takes one --host" not in err
    assert "Cannot connect:" in out and "127.0.0.1" in out
    assert out.strip().endswith(NO_CHANGES)
    assert "Traceback" not in out + err


def test_the_full_screen_wizard_still_takes_one_host_and_says_where_sites_go(capsys: Any) -> None:
    assert main(["--host", "a", "--host", "b"]) == 1
    err = capsys.readouterr().err
    assert "takes one --host" in err and "--plain --site FILE" in err
    assert main(["--site", "office.toml"]) == 1
    assert "--plain --site FILE" in capsys.readouterr().err
    assert main(["snapshots", "--host", "a", "--host", "b"]) == 1
    assert "snapshots takes one --host" in capsys.readouterr().err


def test_a_missing_site_file_is_explained(tmp_path: Path, capsys: Any) -> None:
    assert main(["--plain", "--site", str(tmp_path / "nowhere.toml")]) == 1
    out, err = capsys.readouterr()
    assert "nowhere.toml" in out + err and "Traceback" not in out + err


def test_the_ca_passphrase_is_asked_once_for_the_whole_site(keys: Any) -> None:
    """Every host's TLS step asks for the same CA: plain mode's password prompt shows once."""
    out = io.StringIO()
    run = PlainRun(prompt_options=keys("correct horse battery\r"), out=out)
    ask, tries = _asker(default_args(plain=True), run)
    request = SecretRequest("Passphrase of your CA 'office'", "Why.", "Never stored.", "CA",
                            "Open", "Opening", confirm=False,
                            needed_by="the TLS step needs the passphrase of your CA 'office'")  # fmt: skip
    first, second = ask(request), ask(request)  # two hosts; the input holds one answer
    assert first is not None and second is not None
    assert first.secret.reveal() == second.secret.reveal() == "correct horse battery"
    assert out.getvalue().count("Why.") == 1
    assert tries == 3


# ---- on two practice hosts ------------------------------------------------------------------


@pytest.fixture
def demo_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SITE_STEPS, DEMO.name, DEMO)


def _site_file(folder: Path, writer: str, source: str) -> Path:
    """The two-stage demo site step, and the SSH step on both hosts (the site's preset)."""
    (folder / "ssh-only.toml").write_text("[ssh]\n")
    path = folder / "demo.toml"
    path.write_text(
        f'name = "{folder.name}"\npreset = "ssh-only.toml"\n'
        f'[hosts.writer]\ntarget = "{writer}"\nroles = ["{WRITER}"]\n'
        f'[hosts.source]\ntarget = "{source}"\nroles = ["{SOURCE}"]\n'
        "[steps.site-demo]\n"
    )
    return path


def _taken(screen: io.StringIO) -> str:
    """What the prompts showed since the last call."""
    text = screen.getvalue()
    screen.seek(0)
    screen.truncate()
    return text


def _visit(path: Path, typed: str, keys: Any) -> int:
    args = default_args(plain=True, site=str(path), confirm_timeout=30)
    return run_plain_site(args, load_site(path), partial(connected, args), **keys(typed))


@pytest.mark.lab
def test_plain_site_previews_both_hosts_applies_on_yes_and_rolls_back_on_offer(
    make_lab_hosts: Any,
    demo_step: None,
    tmp_path: Path,
    typed: Any,
    screen: io.StringIO,
    capsys: Any,
) -> None:
    hosts = make_lab_hosts(2, docker=False)
    writer, source = (host.console() for host in hosts)
    path = _site_file(tmp_path, hosts[0].name, hosts[1].name)

    # Ctrl-C at the question: nothing changes.
    assert _visit(path, "\x03", typed) == 1
    assert capsys.readouterr().out.strip().endswith(NO_CHANGES)
    assert not source.run(f"test -e {DROP_IN} || test -e {FOLDER}").ok

    # Apply? y; look at putting the site back? n.
    assert _visit(path, "y\rn\r", typed) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "=== source [demo-source]" in out and "=== writer [demo-writer]" in out, out
    assert f"peer = {hosts[1].address}" in out  # the writer's diff names the source
    assert out.count("PermitRootLogin") >= 2  # the SSH step on both hosts
    asked = _taken(screen)
    assert "Apply on 2 hosts (writer, source)?" in asked, asked
    assert f"Look at putting back site {tmp_path.name}'s last change?" in asked
    assert f"Applied site {tmp_path.name} on " in out
    for console in (writer, source):
        assert "PermitRootLogin prohibit-password" in console.run(f"cat {DROP_IN}").out
    assert len(source.run(f"cat {TOKEN}").out.strip()) == 32
    assert writer.run(f"cat {PEER_CONF}").out == f"peer = {hosts[1].address}\n"

    # A second visit: nothing to change; the offer shows the last change and puts it back.
    assert _visit(path, "y\ry\r", typed) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "Nothing to change" in out
    asked = _taken(screen)
    assert "Apply on" not in asked and f"Put back site {tmp_path.name} (writer, " in asked, asked
    assert f"Last change of site {tmp_path.name}" in out
    assert out.index("=== writer (") < out.index("=== source (")  # newest first
    assert "Put back: writer" in out
    for console in (writer, source):
        assert not console.run(f"test -e {DROP_IN} || test -e {FOLDER}").ok

    # Nothing left to put back: nothing is offered (the second n would answer the offer).
    assert _visit(path, "n\rn\r", typed) == 0
    out = capsys.readouterr().out
    asked = _taken(screen)
    assert "Apply on 2 hosts (" in asked and NO_CHANGES in out
    assert "putting back" not in asked


@pytest.mark.lab
def test_plain_site_yes_applies_without_asking(
    make_lab_hosts: Any, demo_step: None, tmp_path: Path, capsys: Any
) -> None:
    hosts = make_lab_hosts(2, docker=False)
    path = _site_file(tmp_path, hosts[0].name, hosts[1].name)
    argv = ["--plain", "--yes", "--site", str(path), "--confirm-timeout", "30"]
    assert main(argv) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "Apply on" not in out and f"Applied site {tmp_path.name}" in out
    for host in hosts:
        assert "PermitRootLogin" in host.console().run(f"cat {DROP_IN}").out
    assert main(argv) == 0
    assert "Nothing to change" in capsys.readouterr().out


@pytest.mark.lab
def test_plain_site_failure_says_what_was_put_back_and_where_the_story_is(
    make_lab_hosts: Any, demo_step: None, tmp_path: Path, capsys: Any
) -> None:
    """The writer's stage fails (a file where it needs a folder): the source, already
    confirmed, is put back; plain mode says so and names ``recover --site``, not "No changes"."""
    hosts = make_lab_hosts(2, docker=False)
    writer, source = (host.console() for host in hosts)
    assert writer.run(f"touch {FOLDER}").ok
    path = _site_file(tmp_path, hosts[0].name, hosts[1].name)
    assert main(["--plain", "--yes", "--site", str(path), "--confirm-timeout", "30"]) == 1
    out = capsys.readouterr().out
    assert "put back" in out and f"hostwiz recover --site {path}" in out, out
    assert NO_CHANGES not in out and "Traceback" not in out
    assert not source.run(f"test -e {TOKEN} || test -e {DROP_IN}").ok
