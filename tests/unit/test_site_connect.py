"""Connecting: a site's hosts at the same time (none left open on a failure), and the planning
code imported while a connection opens."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

import pytest

from hostwiz import site_cli
from wizard.errors import ConnectionFailed
from wizard.site.model import site_from_hosts


class FakeTransport:
    def __init__(self, target: str) -> None:
        self.host_label = target
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _args() -> argparse.Namespace:
    return argparse.Namespace(host=None, ssh_config=None, identity=None)


def test_hosts_are_connected_at_the_same_time(monkeypatch):
    targets = ["a", "b", "c"]
    # Each connect waits until all three are connecting: one after the other, the first
    # would wait in vain (BrokenBarrierError after the timeout).
    barrier = threading.Barrier(len(targets), timeout=10)

    def connect(options):
        barrier.wait()
        return FakeTransport(options.host)

    monkeypatch.setattr(site_cli, "open_transport", connect)
    with site_cli.connected(_args(), site_from_hosts(targets, None)) as transports:
        assert sorted(t.host_label for t in transports.values()) == targets
        opened = list(transports.values())
    assert all(t.closed for t in opened)


def test_a_failed_connect_closes_the_others_and_names_the_first_failure(monkeypatch):
    made: list[FakeTransport] = []

    def connect(options):
        if options.host in ("b", "d"):
            raise ConnectionFailed(f"cannot reach {options.host}")
        made.append(FakeTransport(options.host))
        return made[-1]

    monkeypatch.setattr(site_cli, "open_transport", connect)
    site = site_from_hosts(["a", "b", "c", "d"], None)
    with pytest.raises(ConnectionFailed, match="cannot reach b"), site_cli.connected(_args(), site):
        pytest.fail("no site without all of its hosts")
    assert sorted(t.host_label for t in made) == ["a", "c"]
    assert all(t.closed for t in made)


def test_modules_imported_meanwhile_are_loaded_and_a_broken_one_is_left_for_later():
    import sys

    from wizard.connect import _import_meanwhile

    sys.modules.pop("json.tool", None)
    _import_meanwhile(["no_such_module_for_hostwiz", "json.tool"])
    for thread in threading.enumerate():
        if thread.name == "hostwiz-imports":
            thread.join(timeout=30)
    assert "json.tool" in sys.modules


# ---- the site's session is made while its hosts connect ------------------------------------


def _waiting_for(
    made: threading.Event, opened: list[FakeTransport]
) -> Callable[[argparse.Namespace], FakeTransport]:
    """A connect that waits until the session is made: it fails unless the session is made
    while the hosts connect (not before, as it was)."""

    def connect(options: argparse.Namespace) -> FakeTransport:
        assert made.wait(10), "the session was not made while connecting"
        opened.append(FakeTransport(options.host))
        return opened[-1]

    return connect


def test_the_session_is_made_on_this_thread_while_the_hosts_connect(monkeypatch):
    made, opened, seen = threading.Event(), [], []

    def meanwhile() -> None:
        seen.append(threading.current_thread())
        made.set()

    monkeypatch.setattr(site_cli, "open_transport", _waiting_for(made, opened))
    site = site_from_hosts(["a", "b"], None)
    with site_cli.connected(_args(), site, meanwhile) as transports:
        assert sorted(transports) == ["a", "b"] and seen == [threading.main_thread()]
    assert all(t.closed for t in opened)


def test_a_session_that_cannot_be_made_closes_every_connection(monkeypatch):
    made, opened = threading.Event(), []

    def meanwhile() -> None:
        made.set()
        raise ValueError("bad --set")

    monkeypatch.setattr(site_cli, "open_transport", _waiting_for(made, opened))
    site = site_from_hosts(["a", "b"], None)
    with pytest.raises(ValueError, match="bad --set"), site_cli.connected(_args(), site, meanwhile):
        pytest.fail("nothing runs without a session")
    assert len(opened) == 2 and all(t.closed for t in opened)
