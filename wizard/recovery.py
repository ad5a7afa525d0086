"""Guided recovery: what happened to a host, and how to get it back.

Two situations. hostwiz cannot get in: the local journal says what was applied last and whether
the host's safety timer should already have undone it, and the admin is told exactly what to
type at the VM console. hostwiz can get in: the host's journal shows any transaction that was
interrupted (started, never confirmed nor reverted, and no safety timer still running), which
can be rolled back or finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from snapshots.layout import RESTORE_COMMAND, snapshot_dir
from snapshots.local_journal import JournalEntry, last_transaction
from snapshots.store import SnapshotInfo, list_snapshots
from wizard.transaction import disarm_script
from wizard.transport.base import Transport

SETTLED = ("confirmed", "reverted", "revert incomplete")


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def explain_last_change(host: str, now: float | None = None) -> list[str]:
    """Plain sentences about the last transaction hostwiz ran against ``host``."""
    entries = last_transaction(host)
    if not entries:
        return [f"hostwiz has no record of changing {host} from this machine."]
    first, last = entries[0], entries[-1]
    now = time.time() if now is None else now
    steps = ", ".join(first.steps) or "a change"
    lines = [
        f"Last change from here: {steps} (snapshot {first.snapshot_id}), started at "
        f"{_clock(first.time)}."
    ]
    lines.append(_state_sentence(last, now))
    return lines


def _state_sentence(last: JournalEntry, now: float) -> str:
    if last.event == "confirmed":
        return (
            "It was confirmed over a new connection, so it is not what locked you out unless "
            "something changed on the host since."
        )
    if last.event == "reverted":
        return f"It failed and was undone at once ({last.detail})."
    if last.deadline is None:
        return f"Its last recorded state is {last.event!r}."
    if now >= last.deadline:
        return (
            f"It was never confirmed ({last.event}), so the host's safety timer should have "
            f"put the snapshot back by itself at {_clock(last.deadline)} "
            f"({int(now - last.deadline)} s ago). Try connecting again."
        )
    return (
        f"It is not confirmed ({last.event}): the host's safety timer puts the snapshot back by "
        f"itself at {_clock(last.deadline)}, in {int(last.deadline - now)} s. Wait, then connect "
        "again."
    )


def console_instructions(host: str, practice_host: bool) -> list[str]:
    where = (
        f"`hostwiz lab shell {host}` (the practice host's console)"
        if practice_host
        else "your provider's web console or the VM's serial console"
    )
    return [
        f"At the VM console ({where}), log in as root and type:",
        f"    {RESTORE_COMMAND}          # lists the snapshots and what happened to each",
        f"    {RESTORE_COMMAND} LAST     # puts back the state before the last change",
    ]


@dataclass(frozen=True)
class Interrupted:
    snapshot: SnapshotInfo
    timer_running: bool


def interrupted_transactions(transport: Transport) -> list[Interrupted]:
    """Snapshots whose transaction never reached confirmed or reverted."""
    found = []
    for info in list_snapshots(transport):
        if any(word in info.state for word in SETTLED) or info.state == "recorded":
            continue
        snap = snapshot_dir(info.id)
        alive = transport.run(
            f'pid=$(cat {snap}/watchdog.pid 2>/dev/null) && [ -n "$pid" ] && '
            f"grep -q hostwiz-watchdog-{info.id} /proc/$pid/cmdline 2>/dev/null"
        ).ok
        found.append(Interrupted(info, alive))
    return found


def roll_back_interrupted(transport: Transport, snapshot_id: str) -> str:
    result = transport.run(f"sh {snapshot_dir(snapshot_id)}/restore.sh recover")
    transport.run(disarm_script(snapshot_id, confirmed=False))
    return (result.out + result.err).strip()


def finish_interrupted(transport: Transport, snapshot_id: str) -> bool:
    """Keep an interrupted change: confirm it (this connection is a fresh one) and disarm."""
    return transport.run(disarm_script(snapshot_id)).ok
