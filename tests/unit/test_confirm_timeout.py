"""The confirmation window is refused outside 10 to 3600 s, in every entry point, before any
connection is opened (front ends) and before the host is touched (apply_changeset)."""

from __future__ import annotations

from typing import Any

import pytest

from wizard.actions import WriteFile
from wizard.confirm_timeout import check_confirm_timeout
from wizard.errors import InvalidAnswer
from wizard.plan import Changeset, Plan


@pytest.mark.parametrize("seconds", [10, 60, 3600])
def test_the_sane_range_is_accepted(seconds):
    assert check_confirm_timeout(seconds) == seconds


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (0, "would fire before the change is even applied"),
        (-5, "would fire before the change is even applied"),
        (9, "would fire before the change is even applied"),
        (3601, "would keep you out that long"),
        (True, "not a whole number"),
        (30.5, "not a whole number"),
    ],
)
def test_the_rest_is_refused_with_the_range_in_the_hint(seconds, message):
    with pytest.raises(InvalidAnswer, match=message) as caught:
        check_confirm_timeout(seconds)
    assert "10 to 3600 seconds" in caught.value.hint


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a connection or starting the wizard's screens fails the test: a bad window
    must be refused before either."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a connection was opened, or the wizard started")

    monkeypatch.setattr("wizard.connect.open_transport", refuse)
    monkeypatch.setattr("screens.app.HostwizApp.run", refuse)


@pytest.mark.parametrize(
    "argv",
    [
        ["apply", "--host", "web1", "--confirm-timeout", "0"],
        ["apply", "--host", "web1", "--yes", "--confirm-timeout=-30"],
        ["--confirm-timeout", "0", "apply", "--host", "web1"],
        ["rollback", "--host", "web1", "--yes", "--confirm-timeout", "5"],
        ["--host", "web1", "--plain", "--yes", "--confirm-timeout", "0"],
        ["--host", "web1", "--confirm-timeout", "86400"],
    ],
)
def test_the_cli_refuses_a_bad_window_before_connecting(argv, no_connection, capsys):
    from hostwiz.cli import EXIT_ERROR, main

    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Invalid setting: --confirm-timeout = " in err
    assert "What to do: Give 10 to 3600 seconds" in err
    assert "Traceback" not in err


def test_plain_mode_refuses_a_bad_window_before_connecting(no_connection, capsys):
    from screens.app import default_args
    from screens.plain import run_plain

    assert run_plain(default_args(host="web1", yes=True, plain=True, confirm_timeout=0)) == 1
    out = capsys.readouterr().out
    assert "--confirm-timeout = 0 s is outside 10 to 3600 s" in out
    assert "No changes were made." in out


def test_the_wizard_refuses_a_bad_window_before_it_starts(no_connection):
    from screens.app import default_args, run_app

    with pytest.raises(InvalidAnswer, match="outside 10 to 3600 s"):
        run_app(default_args(confirm_timeout=-1))


class RecordingTransport:
    """A host that records every script it is asked to run (none may be, here)."""

    host_label = "web1"

    def __init__(self) -> None:
        self.scripts: list[str] = []

    def run(self, script: str, **kwargs: Any) -> Any:
        self.scripts.append(script)
        raise AssertionError("the host was touched")


@pytest.mark.parametrize("seconds", [0, -1, 4, 7200])
def test_apply_changeset_refuses_before_touching_the_host(seconds):
    from wizard.transaction import apply_changeset

    host = RecordingTransport()
    changeset = Changeset("web1", (Plan("demo", (WriteFile("/etc/demo", b"x\n"),)),))
    with pytest.raises(InvalidAnswer, match="outside 10 to 3600 s"):
        apply_changeset(host, changeset, confirm_timeout=seconds)  # type: ignore[arg-type]
    assert host.scripts == []
