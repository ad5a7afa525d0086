"""The site journal: one local record per site that ties its hosts' snapshots together.

Each host's transaction keeps its own journal (on the host, and locally per host in
:mod:`snapshots.local_journal`). This file says which of those transactions made one site
change, in which stage and order, which failed, and which were put back: what
``hostwiz recover --site`` and ``hostwiz rollback --site`` read.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from snapshots.store import SAFE_NAME, local_root

EVENTS = ("applying", "applied", "failed", "rolled-back", "rollback-failed", "done",
          "reverted", "incomplete", "rollback")  # fmt: skip
"""applying (the site change starts), per host: applied / failed / rolled-back /
rollback-failed; at the end: done, reverted (every host put back) or incomplete (some host
could not be put back); rollback (an admin's ``rollback --site`` starts)."""


@dataclass(frozen=True)
class SiteEntry:
    time: float
    site: str
    site_id: str
    event: str
    host: str = ""
    stage: int = 0
    snapshot_id: str = ""
    detail: str = ""


def new_site_id() -> str:
    return time.strftime("site-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(3)


def now() -> float:
    return time.time()


def journal_file(site: str) -> Path:
    return local_root().parent / "journal" / f"site-{SAFE_NAME.sub('_', site)}.jsonl"


def record(entry: SiteEntry) -> None:
    path = journal_file(entry.site)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(entry)) + "\n")


def _entry(line: bytes) -> SiteEntry | None:
    """One line, or None when it is damaged (it is skipped; the others still count)."""
    try:
        data: Any = json.loads(line.decode("utf-8"))
        entry = SiteEntry(**data)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return None
    texts = (entry.site, entry.site_id, entry.event, entry.host, entry.snapshot_id, entry.detail)
    if not all(isinstance(value, str) for value in texts):
        return None
    if not isinstance(entry.time, int | float) or not isinstance(entry.stage, int):
        return None
    return entry


def entries(site: str) -> list[SiteEntry]:
    path = journal_file(site)
    if not path.exists():
        return []
    return [entry for line in path.read_bytes().splitlines() if (entry := _entry(line))]


def last_change(site: str) -> list[SiteEntry]:
    """Every entry of the site's most recent change, oldest first."""
    found = entries(site)
    if not found:
        return []
    last = found[-1].site_id
    return [entry for entry in found if entry.site_id == last]


def applied_hosts(change: list[SiteEntry]) -> list[SiteEntry]:
    """The host transactions of ``change`` that applied and were not put back, in order."""
    back = {(e.host, e.snapshot_id) for e in change if e.event == "rolled-back"}
    return [e for e in change if e.event == "applied" and (e.host, e.snapshot_id) not in back]


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def explain(site: str) -> list[str]:
    """The whole story of the site's last change, in plain words, oldest first."""
    change = last_change(site)
    if not change:
        return [f"No site change recorded for {site} on this machine."]
    lines = [f"Last change of site {site} ({change[0].site_id}), started {_clock(change[0].time)}:"]
    words = {
        "applied": "applied and confirmed (snapshot {snap})",
        "failed": "FAILED: {detail}",
        "rolled-back": "put back (snapshot {snap})",
        "rollback-failed": "could NOT be put back (snapshot {snap}): {detail}",
    }
    for entry in change:
        if entry.event in words:
            said = words[entry.event].format(snap=entry.snapshot_id, detail=entry.detail)
            stage = f", stage {entry.stage}" if entry.stage else ""
            lines.append(f"  {_clock(entry.time)}  {entry.host}{stage}: {said}")
        elif entry.event == "rollback":
            lines.append(f"  {_clock(entry.time)}  rollback asked: {entry.detail}")
    end = change[-1]
    ends = {
        "done": "Every host's change was applied and confirmed.",
        "reverted": "Every host was put back, in reverse order, each from its own snapshot"
        + (
            " (asked with rollback --site)."
            if end.detail == "rollback --site"
            else f", because the site change did not go through: {end.detail}"
        ),
        "incomplete": "Some host could not be put back: see above; `hostwiz recover --host "
        "HOST` on it explains and finishes.",
    }
    unfinished = (
        "The site change did not finish (hostwiz stopped in the middle). The hosts marked "
        "applied above keep their change (`hostwiz rollback --site FILE` puts them back); on "
        "the others each host's own safety timer undoes what was not confirmed (`hostwiz "
        "recover --host HOST` shows where it stands)."
    )
    lines.append(ends.get(end.event, unfinished))
    return lines
