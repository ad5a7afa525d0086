"""The words an apply's result uses: a rollback says which snapshot it put back."""

from __future__ import annotations

from wizard.actions import RunCommand
from wizard.plan import Changeset, Plan
from wizard.transaction import done_headline

UNDO = RunCommand("true", why="undo")


def test_a_rollback_says_it_put_back_a_snapshot_not_that_it_applied() -> None:
    back = Plan("rollback 20261203-1", (UNDO, UNDO), rolls_back="20261203-1")
    headline = done_headline(Changeset("h", (back,)), 2)
    assert headline == "Put back 2 change(s) from snapshot 20261203-1."


def test_a_change_says_it_applied() -> None:
    assert done_headline(Changeset("h", (Plan("ssh", (UNDO,)),)), 1) == "Applied 1 change(s)."
