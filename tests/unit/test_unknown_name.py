"""A host name that does not resolve: its own kind of failure, a hint to check the name
(naming the ssh config's Host entries close to it), and no recovery offered for a typo."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from hostwiz.cli import main
from wizard.errors import UNKNOWN_NAME, ConnectionFailed, recovery_can_help
from wizard.recovery import failure_kind
from wizard.transport.ssh import SshTransport


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name lookup fails as for a name nobody knows (no query leaves this machine)."""

    def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(
        "Host web-one\n  HostName web-one.example.invalid\n"
        "Host db-main\n  HostName db.example.invalid\n"
        "Host *.corp\n  User admin\n",
        encoding="utf-8",
    )
    return path


def test_a_misspelt_name_is_its_own_kind_and_names_the_close_host_entry(
    no_dns: None, config: Path
) -> None:
    with pytest.raises(ConnectionFailed) as raised:
        SshTransport.connect("admin@web-on", ssh_config=config, connect_timeout=1)
    error = raised.value
    assert error.kind == UNKNOWN_NAME and failure_kind(error) == UNKNOWN_NAME
    assert "could not be resolved" in error.message
    assert "Check the host name 'web-on'" in error.hint
    assert "did you mean 'web-one'" in error.hint
    assert "db-main" not in error.hint and "*.corp" not in error.hint
    assert not recovery_can_help(error)


def test_a_name_close_to_nothing_gets_the_check_without_a_guess(no_dns: None, config: Path) -> None:
    with pytest.raises(ConnectionFailed) as raised:
        SshTransport.connect("zzqqxx", ssh_config=config, connect_timeout=1)
    assert raised.value.kind == UNKNOWN_NAME
    assert "Check the host name 'zzqqxx'" in raised.value.hint
    assert "did you mean" not in raised.value.hint


def test_other_connection_failures_still_offer_recovery() -> None:
    assert recovery_can_help(ConnectionFailed("No answer.", kind="no-answer"))
    assert recovery_can_help(ConnectionFailed("Refused.", kind="refused"))
    assert recovery_can_help(None)


def test_recover_does_not_search_ways_in_for_a_misspelt_name(
    no_dns: None, config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import wizard.ways_in

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no other way in is worth trying for a name that does not exist")

    monkeypatch.setattr(wizard.ways_in, "try_other_ways", never)
    status = main(["recover", "--host", "web-on", "-F", str(config)])
    out = capsys.readouterr().out
    assert status == 1
    assert "hostwiz cannot find web-on" in out
    assert "did you mean 'web-one'" in out
    assert "/var/lib/hostwiz/restore" not in out and "What that means" not in out
