"""A site's connections are opened at the same time, and none is left open on a failure."""

from __future__ import annotations

import argparse
import threading

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
