"""The words an apply's result uses: a rollback says which snapshot it put back."""

from __future__ import annotations

from typing import Any, cast

from wizard.actions import RunCommand
from wizard.errors import HostwizError
from wizard.plan import Changeset, Plan, PortMove
from wizard.transaction import Event, _confirm, done_headline, unconfirmed_message
from wizard.transport.base import Transport

UNDO = RunCommand("true", why="undo")


def test_a_rollback_says_it_put_back_a_snapshot_not_that_it_applied() -> None:
    back = Plan("rollback 20261203-1", (UNDO, UNDO), rolls_back="20261203-1")
    headline = done_headline(Changeset("h", (back,)), 2)
    assert headline == "Put back 2 change(s) from snapshot 20261203-1."


def test_a_change_says_it_applied() -> None:
    assert done_headline(Changeset("h", (Plan("ssh", (UNDO,)),)), 1) == "Applied 1 change(s)."


CAUSE = (
    "a new connection to the new SSH port 2222 failed: No answer from 10.0.0.5:2222 (web1) "
    "within 10 s. Likely cause: another firewall drops new connections to port 2222 "
    "(hostwiz's zones open it): on the host (iptables -S INPUT, nft list ruleset) or in front "
    "of it (a cloud security group, a router)."
)


def test_an_unconfirmed_change_says_its_cause_once_without_stray_brackets() -> None:
    message = unconfirmed_message("Applied", PortMove(22, 2222), CAUSE, 60, "hostwiz recover")
    assert message.count("No answer from") == 1, message
    assert ".)" not in message and ".):" not in message, message
    assert message == (
        "Applied, but SSH was to move to port 2222 and hostwiz could not confirm the change. "
        "A new connection to the new SSH port 2222 failed: No answer from 10.0.0.5:2222 (web1) "
        "within 10 s. Likely cause: another firewall drops new connections to port 2222 "
        "(hostwiz's zones open it): on the host (iptables -S INPUT, nft list ruleset) or in "
        "front of it (a cloud security group, a router). The host will undo the change by "
        "itself (SSH back on port 22) within 60 s. Run `hostwiz recover` if you cannot get "
        "back in."
    )


class _Failing:
    """A new connection that could not be opened."""

    started = 0.0

    def result(self) -> Transport:
        raise HostwizError("No answer from 10.0.0.5:2222 (web1) within 10 s.")


def test_a_failed_confirmation_is_not_also_said_as_a_warning_before_the_result() -> None:
    said: list[Event] = []
    problem = _confirm(
        cast(Transport, None), cast(Any, _Failing()), "s1", said.append, PortMove(22, 2222)
    )
    assert problem.startswith("a new connection to the new SSH port 2222 failed: No answer")
    assert said == [], said
