"""Processes seen from the machine: start times, children, ending a host by its recorded pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    return text[text.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None if there is no such process.

    Zombies count as gone: they have exited and only wait to be reaped.
    """
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (this kernel has no /proc/PID/task/PID/children)."""
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and parent_pid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def executable(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def is_same_process(pid: int, started: int) -> bool:
    """True when ``pid`` is still the process that started at ``started``."""
    return pid > 0 and start_time(pid) == started


def kill_recorded(pid: int, started: int, timeout: float = 10.0) -> bool:
    """SIGKILL ``pid`` if it is still the recorded process; wait (bounded) until it is gone.

    Returns False when it did not go away within ``timeout``.
    """
    if not is_same_process(pid, started):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(pid, started):
            return True
        time.sleep(0.02)
    return False
