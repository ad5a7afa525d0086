"""The command line's progress lines, shared by the one-host and the site commands."""

from __future__ import annotations

import sys
from typing import Any

MARKS = {"action": "  ..", "action-done": "  ok", "action-failed": "  !!", "warning": "  !"}


def print_progress(event: Any) -> None:
    """Each step of an apply or rollback on stderr as it happens. The final ``done`` event
    is the outcome, which the command prints itself (on stdout, once)."""
    if event.kind == "done":
        return
    print(f"{MARKS.get(event.kind, '--')} {event.message}", file=sys.stderr)
    if event.kind == "action-failed" and event.output:
        print("     " + event.output.replace("\n", "\n     "), file=sys.stderr)
