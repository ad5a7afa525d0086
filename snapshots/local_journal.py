"""The admin's own record of every transaction, kept beside the local snapshot copies.

When hostwiz cannot get into a host any more, this is what lets ``hostwiz recover`` say what
was applied last, whether it was confirmed, and whether the host's safety timer should already
have put it back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapshots.store import SAFE_NAME, local_root


@dataclass(frozen=True)
class JournalEntry:
    time: float
    host: str
    snapshot_id: str
    event: str
    """applying, confirmed, unconfirmed, reverted, interrupted"""
    steps: tuple[str, ...] = ()
    deadline: float | None = None
    """When the host's safety timer fires unless confirmed (epoch seconds, this machine's clock)."""
    detail: str = ""
    ssh_port_before: int | None = None
    ssh_port_after: int | None = None
    """Set when the transaction moves sshd from one port to another (``hostwiz recover`` tries
    both)."""


def journal_file(host: str) -> Path:
    return local_root().parent / "journal" / f"{SAFE_NAME.sub('_', host)}.jsonl"


def record(entry: JournalEntry) -> None:
    path = journal_file(entry.host)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps({**entry.__dict__, "steps": list(entry.steps)})
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def entries(host: str) -> list[JournalEntry]:
    path = journal_file(host)
    if not path.exists():
        return []
    found = []
    for line in path.read_bytes().splitlines():
        entry = _entry(line)
        if entry is not None:
            found.append(entry)
    return found


def _entry(line: bytes) -> JournalEntry | None:
    """One line of the local journal, or None when it is damaged (not UTF-8, not JSON, or
    with values of the wrong kind): a damaged line is skipped, the others still count."""
    try:
        data: Any = json.loads(line.decode("utf-8"))
        data["steps"] = tuple(data.get("steps", ()))
        entry = JournalEntry(**data)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, AttributeError):
        return None
    number, optional_int = (int, float), (int, type(None))
    valid = (
        isinstance(entry.time, number)
        and all(isinstance(v, str) for v in (entry.host, entry.snapshot_id, entry.event))
        and isinstance(entry.detail, str)
        and all(isinstance(step, str) for step in entry.steps)
        and isinstance(entry.deadline, (*number, type(None)))
        and isinstance(entry.ssh_port_before, optional_int)
        and isinstance(entry.ssh_port_after, optional_int)
    )
    return entry if valid else None


def last_transaction(host: str) -> list[JournalEntry]:
    """Every entry of the most recent transaction on ``host``, oldest first."""
    all_entries = entries(host)
    if not all_entries:
        return []
    last = all_entries[-1].snapshot_id
    return [entry for entry in all_entries if entry.snapshot_id == last]


def now() -> float:
    return time.time()
