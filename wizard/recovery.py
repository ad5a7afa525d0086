"""Guided recovery: what happened to a host, and how to get it back.

Two situations. hostwiz cannot get in: the local journal says what was applied last and whether
the host's safety timer should already have undone it; hostwiz tries the other ways in
(:func:`find_a_way_in`: the ports SSH was at or moved to, common SSH ports, other users, other
keys) and says which worked; failing that, the admin is told exactly what to type at the VM
console. hostwiz can get in: the host's journal shows any transaction that was interrupted
(started, never confirmed nor reverted, and no safety timer still running), which can be rolled
back or finished.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from snapshots.layout import RESTORE_COMMAND, snapshot_dir
from snapshots.local_journal import JournalEntry, entries, last_transaction
from snapshots.store import SnapshotInfo, list_snapshots
from wizard.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
    HostwizError,
    SudoFailed,
)
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
    if first.ssh_port_before is not None and first.ssh_port_after is not None:
        where = (
            f"so SSH is on port {first.ssh_port_after} now"
            if last.event == "confirmed"
            else f"so SSH is on port {first.ssh_port_after} until it is undone, then on "
            f"port {first.ssh_port_before} again"
        )
        lines.append(
            f"It moved SSH from port {first.ssh_port_before} to port {first.ssh_port_after}, "
            f"{where}."
        )
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
    """Where the console is, then the restore commands (each with a ``#`` comment)."""
    first = (
        f"Open the practice host's console with `hostwiz lab shell {host}` (a root shell "
        "there) and type:"
        if practice_host
        else "At the VM console (your provider's web console or the VM's serial console), "
        "log in as root and type:"
    )
    return [
        first,
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


# ---- other ways in ------------------------------------------------------------------------

COMMON_SSH_PORTS = (22, 2222, 2022, 2200, 22222, 222, 8022)
"""Ports admins often move SSH to, tried after the ones hostwiz knows of."""
FALLBACK_USERS = ("root", "admin")


def journal_ports(host: str) -> list[int]:
    """Ports the local journal says SSH was at or moved to on ``host``, newest first."""
    ports: list[int] = []
    for entry in reversed(entries(host)):
        for port in (entry.ssh_port_after, entry.ssh_port_before):
            if port is not None and port not in ports:
                ports.append(port)
    return ports


def candidate_ports(configured: int, known: Iterable[int]) -> list[int]:
    """Where to look for sshd: the configured port, ports from the journal, common ones."""
    return list(dict.fromkeys([configured, *known, *COMMON_SSH_PORTS]))


def candidate_users(configured: str) -> list[str]:
    """The configured user, then root, admin and the local login name."""
    try:
        local = getpass.getuser()
    except (KeyError, OSError):
        local = "root"
    return list(dict.fromkeys([configured, *FALLBACK_USERS, local]))


def candidate_keys(home: Path, configured: Iterable[Path] = ()) -> list[Path]:
    """The configured identities, then every ``~/.ssh/id_*`` private key."""
    found = [path for path in configured if path.is_file()]
    folder = home / ".ssh"
    found += sorted(p for p in folder.glob("id_*") if p.is_file() and p.suffix != ".pub")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class WayIn:
    """One way to try: a port, a user, and a key (None: the keys the ssh config names)."""

    port: int
    user: str
    key: Path | None = None

    def describe(self) -> str:
        key = f" with the key {self.key}" if self.key else ""
        return f"port {self.port} as {self.user}{key}"


@dataclass(frozen=True)
class Tried:
    way: WayIn
    result: str
    """works, no-root (login works, root rights do not), login-refused, host-key, no-ssh"""
    message: str


@dataclass
class Search:
    """What :func:`find_a_way_in` tried, and the way that works (if any)."""

    tried: list[Tried] = field(default_factory=list)
    found: WayIn | None = None
    transport: Transport | None = None
    """Open when the way found also gives root rights."""


OpenWay = Callable[[WayIn], Transport]


def _classify(error: HostwizError) -> str:
    if isinstance(error, SudoFailed):
        return "no-root"
    if isinstance(error, AuthenticationFailed):
        return "login-refused"
    if isinstance(error, HostKeyChanged | HostKeyUnknown):
        return "host-key"
    if isinstance(error, ConnectionFailed):
        return "no-ssh"
    return "failed"


def find_a_way_in(
    open_way: OpenWay,
    *,
    ports: Iterable[int],
    users: Iterable[str],
    keys: Iterable[Path] = (),
    configured_keys: Iterable[Path] = (),
    say: Callable[[Tried], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Search:
    """Try ports, then users and keys on the ports where sshd answers; stop at the first that
    works.

    First every port as configured (user and key): a port that refuses or stays silent has no
    sshd, a refused login means sshd is there. Then, on those ports, every user with every key
    (``configured_keys`` are skipped for the configured user: the first round offered them).
    A host key that is unknown or changed is never accepted here: that port is reported and
    left alone. ``say`` hears each try as it ends; ``stop`` returning True (the admin left)
    ends the search before the next try.
    """
    search = Search()
    users, keys = list(users), list(keys)
    configured_user = users[0]
    already_offered = set(configured_keys)

    def attempt(way: WayIn) -> str:
        if stop is not None and stop():
            return "stopped"
        try:
            transport = open_way(way)
        except HostwizError as error:
            result = _classify(error)
            tried = Tried(way, result, error.message)
            search.tried.append(tried)
            if say:
                say(tried)
            if result == "no-root" and search.found is None:
                search.found = way
            return result
        tried = Tried(way, "works", "that works")
        search.tried.append(tried)
        if say:
            say(tried)
        search.found, search.transport = way, transport
        return "works"

    answering = []
    for port in ports:
        result = attempt(WayIn(port, configured_user))
        if result in ("works", "stopped"):
            return search
        if result in ("login-refused", "no-root"):
            answering.append(port)
    for port in answering:
        for user in users:
            for key in [None, *keys]:
                if user == configured_user and (key is None or key in already_offered):
                    continue  # tried above
                if attempt(WayIn(port, user, key)) in ("works", "stopped"):
                    return search
    return search
