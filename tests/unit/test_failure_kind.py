"""How a connection failed is a ``kind`` set where the error is raised, read by every part of
recovery (the lockout's cause, the tries of other ways in) in one vocabulary; never guessed
from the message's words."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wizard.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostwizError,
    SudoFailed,
)
from wizard.recovery import WayIn, failure_kind, find_a_way_in
from wizard.transport.ssh import SshTransport


def test_the_kind_comes_from_the_error_not_from_its_words() -> None:
    reworded = ConnectionFailed("Port 22 said no (refused the connection).", kind="no-answer")
    assert failure_kind(reworded) == "no-answer"
    assert failure_kind(ConnectionFailed("refused the connection")) == "failed"
    assert failure_kind(AuthenticationFailed("every key refused")) == "login-refused"
    assert failure_kind(HostKeyChanged("h", "SHA256:x", "/k")) == "host-key"
    assert failure_kind(SudoFailed("no sudo password")) == "no-root"
    assert failure_kind(HostwizError("something else")) == "failed"


def test_a_try_of_another_way_in_speaks_the_same_words_as_the_lockout() -> None:
    def open_way(way: WayIn) -> SshTransport:
        if way.port == 22:
            raise ConnectionFailed("gone", kind="refused")
        raise ConnectionFailed("silent", kind="no-answer")

    search = find_a_way_in(open_way, ports=[22, 2222], users=["root"])
    assert [(t.way.port, t.result) for t in search.tried] == [(22, "refused"), (2222, "no-answer")]


def test_a_closed_port_on_loopback_is_refused_where_the_connection_is_made(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        config = tmp_path / "ssh_config"
        config.write_text("")
        with pytest.raises(ConnectionFailed) as caught:
            SshTransport.connect(f"root@127.0.0.1:{port}", ssh_config=config,
                                 known_hosts=tmp_path / "known", connect_timeout=2,
                                 use_remembered_port=False)  # fmt: skip
    assert caught.value.kind == "refused"
    assert failure_kind(caught.value) == "refused"
