"""The confirmation window: how long the host waits for hostwiz to confirm a change.

Every entry point that takes it (``--confirm-timeout``, the wizard, plain mode) checks it
here, and :func:`wizard.transaction.apply_changeset` checks it again before it touches the host.
A window of 0 s (or less) arms a safety timer that fires before the first action has run: the
host "undoes" nothing, the actions then apply, and nothing ever undoes them. A window of a few
seconds can do the same on a slow link. A window of hours leaves a host that cut the admin off
unreachable for hours.
"""

from __future__ import annotations

from wizard.errors import InvalidAnswer

MIN_CONFIRM_TIMEOUT = 10
"""Long enough for the arm, the first action and a fresh SSH login on a slow link."""
MAX_CONFIRM_TIMEOUT = 3600
"""An hour: longer, and a change that locked the admin out keeps them out too long."""
DEFAULT_CONFIRM_TIMEOUT = 60


def check_confirm_timeout(seconds: object, where: str = "--confirm-timeout") -> int:
    """``seconds`` as an int when it is a whole number of seconds in the accepted range, else
    an :class:`~wizard.errors.InvalidAnswer` naming ``where`` it came from."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidAnswer(
            f"{where} = {seconds!r} is not a whole number of seconds.",
            f"Give {MIN_CONFIRM_TIMEOUT} to {MAX_CONFIRM_TIMEOUT} seconds (default "
            f"{DEFAULT_CONFIRM_TIMEOUT}).",
        )
    if not MIN_CONFIRM_TIMEOUT <= seconds <= MAX_CONFIRM_TIMEOUT:
        why = (
            "the host's safety timer would fire before the change is even applied, and then "
            "nothing would undo it"
            if seconds < MIN_CONFIRM_TIMEOUT
            else "a change that locks you out would keep you out that long"
        )
        raise InvalidAnswer(
            f"{where} = {seconds} s is outside {MIN_CONFIRM_TIMEOUT} to {MAX_CONFIRM_TIMEOUT} s: "
            f"{why}. Nothing was changed.",
            f"Give {MIN_CONFIRM_TIMEOUT} to {MAX_CONFIRM_TIMEOUT} seconds (default "
            f"{DEFAULT_CONFIRM_TIMEOUT}): the time the host waits for hostwiz to confirm a "
            "change over a new connection before it undoes the change by itself.",
        )
    return seconds
