"""The confirmation's fresh connection while sshd re-executes after a reload."""

from __future__ import annotations

from typing import Any

import pytest

from wizard import transaction
from wizard.errors import AuthenticationFailed, ConnectionFailed


class _RefusingTransport:
    """Refuses (at once) the first ``refusals`` reconnects, then connects."""

    def __init__(self, refusals: int, error: Exception | None = None) -> None:
        self.refusals = refusals
        self.error = error or ConnectionFailed("refused", kind="refused")
        self.attempts = 0

    def reconnect(self, *, port: int | None = None) -> Any:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise self.error
        return self


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transaction.time, "sleep", slept.append)
    return slept


def test_a_refusal_during_sshds_reload_is_retried_soon(pauses: list[float]) -> None:
    host = _RefusingTransport(refusals=2)
    assert transaction._reconnect_patiently(host) is host  # type: ignore[arg-type]
    # sshd is back within milliseconds: waiting half a second cost each small change 0.5 s.
    assert pauses == [0.02, 0.05]


def test_refusals_are_retried_for_about_three_seconds_then_reported(
    pauses: list[float],
) -> None:
    host = _RefusingTransport(refusals=100)
    with pytest.raises(ConnectionFailed):
        transaction._reconnect_patiently(host)  # type: ignore[arg-type]
    assert 2.5 <= sum(pauses) <= 3.5
    assert host.attempts == len(pauses) + 1


def test_a_refused_login_is_final_at_once(pauses: list[float]) -> None:
    host = _RefusingTransport(refusals=1, error=AuthenticationFailed("no"))
    with pytest.raises(AuthenticationFailed):
        transaction._reconnect_patiently(host)  # type: ignore[arg-type]
    assert pauses == [] and host.attempts == 1
