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

import base64
import binascii
import calendar
import contextlib
import getpass
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snapshots.layout import LAST_FILE, RESTORE_COMMAND, SNAPSHOT_DIR, snapshot_dir
from snapshots.local_journal import JournalEntry, entries, last_transaction
from snapshots.store import SnapshotInfo, decode_meta, list_snapshots, stopped_at
from wizard.errors import ConnectionFailed, HostwizError, SudoFailed
from wizard.steps.firewall.loaded import loaded_zone_ports
from wizard.transaction import disarm_script
from wizard.transport.base import Transport, hostwiz_command

SETTLED = ("confirmed", "reverted", "revert incomplete")


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _ago(seconds: float) -> str:
    return f"{int(seconds)} s ago" if seconds < 120 else f"{int(seconds // 60)} min ago"


# ---- the host's own record of its last change ---------------------------------------------

HOST_CHANGE_SCRIPT = f"""id=$(cat {LAST_FILE} 2>/dev/null) || exit 0
d={SNAPSHOT_DIR}/$id
[ -f "$d/meta.json" ] || exit 0
echo "id $id"
echo "now $(date +%s)"
echo "deadline $(cat "$d/deadline" 2>/dev/null)"
pid=$(cat "$d/watchdog.pid" 2>/dev/null)
[ -n "$pid" ] && grep -q "hostwiz-watchdog-$id" /proc/$pid/cmdline 2>/dev/null && echo timer
echo "meta $(base64 -w0 "$d/meta.json")"
sed 's/^/journal /' "$d/journal" 2>/dev/null
true"""
"""Prints the host's last snapshot: its journal, the safety timer's deadline file (host clock),
whether the timer runs, and the host's clock now (to turn its times into this machine's)."""


@dataclass(frozen=True)
class HostChange:
    """What the host's own journal says about its last change (times on this machine's clock:
    the host's times shifted by the difference between the two clocks)."""

    snapshot_id: str
    events: tuple[tuple[float, str], ...]
    """(time, word) per journal line: recorded, armed 60s, start N, done N, confirmed,
    reverting (REASON), reverted (REASON), revert incomplete (REASON)."""
    deadline: float | None = None
    """When the safety timer fires, from the host's deadline file."""
    timer_running: bool = False
    steps: tuple[str, ...] = ()
    ssh_port_before: int | None = None
    ssh_port_after: int | None = None
    actions: tuple[str, ...] = ()
    """What each action of the change does, in words (meta.json's ``actions``)."""

    @property
    def last(self) -> str:
        return self.events[-1][1] if self.events else "unknown"

    def when(self, prefix: str) -> float | None:
        """The time of the last journal line starting with ``prefix``."""
        found = [at for at, word in self.events if word.startswith(prefix)]
        return found[-1] if found else None

    @property
    def armed_at(self) -> float | None:
        return self.when("armed")

    @property
    def state(self) -> str:
        """confirmed, undone, incomplete, reverting, pending (the timer runs) or interrupted."""
        word = self.last
        if word == "confirmed":
            return "confirmed"
        if word.startswith("reverted"):
            return "undone"
        if word.startswith("revert incomplete"):
            return "incomplete"
        if word.startswith("reverting"):
            return "reverting"
        return "pending" if self.timer_running else "interrupted"


def _reason(word: str) -> str:
    return word.partition("(")[2].rstrip(")")


def parse_host_change(output: str, local_now: float) -> HostChange | None:
    """Parse :data:`HOST_CHANGE_SCRIPT`'s output (None: the host has no snapshot)."""
    fields: dict[str, str] = {}
    journal: list[str] = []
    timer = False
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        if key == "journal":
            journal.append(value)
        elif key == "timer":
            timer = True
        elif key:
            fields[key] = value.strip()
    if not fields.get("id"):
        return None
    host_now = _int(fields.get("now")) or local_now
    shift = clock_shift(local_now, host_now)
    events = []
    for line in journal:
        stamp, _, word = line.partition(" ")
        try:
            at = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            continue
        events.append((at + shift, word.strip()))
    deadline = _int(fields.get("deadline"))
    meta = _meta(fields.get("meta", ""))
    moved = meta.get("ssh_port")
    move: dict[str, Any] = moved if isinstance(moved, dict) else {}
    return HostChange(
        fields["id"],
        tuple(events),
        None if deadline is None else deadline + shift,
        timer,
        tuple(str(step) for step in meta.get("steps", ()) or ()),
        _int(move.get("before")),
        _int(move.get("after")),
        tuple(str(action) for action in meta.get("actions", ()) or ()),
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _meta(encoded: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.b64decode(encoded).decode("utf-8", "replace"))
    except (ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def read_host_change(transport: Transport) -> HostChange | None:
    """The host's own record of its last change (None: no snapshot there)."""
    return parse_host_change(transport.run(HOST_CHANGE_SCRIPT).out, time.time())


# ---- what the journals say ----------------------------------------------------------------


def step_titles(steps: Iterable[str]) -> str:
    """A change's steps as the admin knows them ("SSH hardening, Docker engine"), not their
    ids ("ssh, docker"); '' for none."""
    from wizard.steps import step_title  # the step registry imports every step

    return ", ".join(step_title(step) for step in steps)


def explain_last_change(
    host: str, now: float | None = None, on_host: HostChange | None = None
) -> list[str]:
    """Plain sentences about the last transaction hostwiz ran against ``host``.

    ``on_host`` (read over a connection): the host's own journal, which says what really
    happened and when; without it, this machine's journal, whose times are estimates.
    Relative times ("in 20 s", "3 s ago") are as of ``now``: call again to show them.
    """
    entries = last_transaction(host)
    now = time.time() if now is None else now
    if on_host is not None and (not entries or entries[0].snapshot_id <= on_host.snapshot_id):
        return _explain_from_host(on_host, entries, now)
    if not entries:
        return [f"hostwiz has no record of changing {host} from this machine."]
    first, last = entries[0], entries[-1]
    steps = step_titles(first.steps) or "a change"
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
    lines.append(_state_sentence(last, now, connect_again(host, first.ssh_port_before)))
    lines += why_unconfirmed(entries, first.snapshot_id)
    return lines


def why_unconfirmed(entries: list[JournalEntry], snapshot_id: str) -> list[str]:
    """Why hostwiz could not confirm the change (what this machine's journal recorded when
    the new connection failed: a port a firewall drops, say), and the next step: without it,
    the admin applies the same change again and is locked out the same way."""
    for entry in reversed(entries):
        if entry.snapshot_id == snapshot_id and entry.event == "unconfirmed" and entry.detail:
            return [
                f"Why no new connection could confirm it: {entry.detail}",
                "Put that right before you apply the change again.",
            ]
    return []


EVENT_WORDS = {
    "applying": "hostwiz stopped while applying it",
    "unconfirmed": "no new connection could confirm it",
    "interrupted": "hostwiz was interrupted",
}
"""This machine's journal words, as the admin reads them."""


def progress_words(state: str, actions: tuple[str, ...] = ()) -> str:
    """How far an interrupted change got, from the host journal's last word
    (:func:`snapshots.store.stopped_at`) and what its actions do: 'it stopped after step 3
    of 8 ("create the dockremap user")', not "done 2"."""
    where = stopped_at(state)
    if where is not None:
        when, step = where
        if when == "before":
            return "it stopped before its first step"
        of = f" of {len(actions)}" if actions else ""
        what = f' ("{actions[step - 1]}")' if step <= len(actions) else ""
        during = "after" if when == "after" else "in the middle of"
        return f"it stopped {during} step {step}{of}{what}"
    if state.partition(" ")[0] == "reverting":
        return "the host had started putting it back, and was stopped"
    return f"its journal's last word is {state!r}"


def connect_again(host: str, port: int | None = None) -> str:
    """How to connect again, ready to paste: recover again (it says what it finds), or plain
    ssh on the port SSH is back on once the change is undone."""
    again = f"`hostwiz recover --host {host}` again"
    if port is None:
        return again
    name = host.rpartition("@")[2]
    return f"{again} (or `ssh -p {port} {name}`: SSH is on port {port} again then)"


def _state_sentence(last: JournalEntry, now: float, again: str = "") -> str:
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
            f"It was never confirmed ({EVENT_WORDS.get(last.event, last.event)}), so the "
            "host's safety timer should have "
            f"put the snapshot back by itself at {_clock(last.deadline)} "
            f"({_ago(now - last.deadline)}; this machine's estimate: the host's own journal "
            "says for sure)."
        )
    return (
        f"It is not confirmed ({EVENT_WORDS.get(last.event, last.event)}): the host's safety "
        "timer puts the snapshot back by "
        f"itself at {_clock(last.deadline)}, in {int(last.deadline - now)} s (this machine's "
        f"estimate). Wait, then run {again or 'hostwiz recover again'}."
    )


_WHY_UNDONE = {
    "timeout": "no new connection could confirm it before the host's safety timer ran out",
    "failed": "an action failed, so hostwiz undid it at once",
    "health check failed": "a health check failed after the change, so hostwiz undid it at once",
    "manual": "someone ran the restore command on the host",
    "recover": "it was rolled back from the recovery",
}


CLOCKS_IN_STEP = 2.0
"""Seconds within which the host's clock counts as this machine's (no shift applied)."""


def clock_shift(local_now: float, host_now: float) -> float:
    """Seconds to add to a host time to read it on this machine's clock.

    The host prints whole seconds (``date +%s`` truncates, and so do the journal's stamps),
    so clocks in step look up to a second (plus the round trip) apart: shifting by that would
    move the host's own times into the next second. Only a real difference is shifted.
    """
    shift = float(math.floor(local_now - host_now))  # whole seconds, like the host's stamps
    return 0.0 if abs(shift) < CLOCKS_IN_STEP else shift


def _explain_from_host(change: HostChange, entries: list[JournalEntry], now: float) -> list[str]:
    steps = step_titles(change.steps) or "a change"
    started = change.when("recorded") or (change.events[0][0] if change.events else None)
    at = f", started at {_clock(started)}" if started is not None else ""
    lines = [f"Last change on the host: {steps} (snapshot {change.snapshot_id}){at}."]
    before, after = change.ssh_port_before, change.ssh_port_after
    state = change.state
    if state == "confirmed":
        confirmed = change.when("confirmed")
        lines.append(
            "It was confirmed over a new connection"
            + (f" at {_clock(confirmed)}" if confirmed else "")
            + (f"; SSH is on port {after}" if after else "")
            + ". It is not what locks anyone out, unless something changed on the host since."
        )
    elif state in ("undone", "incomplete"):
        word = change.last
        reason = _reason(word)
        why = _WHY_UNDONE.get(reason, f"of {reason!r}" if reason else "of an unknown reason")
        how = "undid" if state == "undone" else "only partly undid"
        sentence = f"The host {how} it at {_clock(change.events[-1][0])} because {why}"
        if state == "undone" and before is not None:
            sentence += f"; SSH is on port {before} again"
        lines.append(sentence + ".")
        if reason == "timeout":
            lines += why_unconfirmed(entries, change.snapshot_id)
        if state == "incomplete":
            lines.append(
                f"Its journal ({SNAPSHOT_DIR}/{change.snapshot_id}/journal) names what could "
                "not be put back."
            )
    elif state == "reverting":
        lines.append("The host is putting the snapshot back right now.")
    elif state == "pending" and change.deadline is not None:
        if before is not None and after is not None:
            lines.append(
                f"It moves SSH from port {before} to port {after}; once undone, SSH is on port "
                f"{before} again."
            )
        if change.deadline > now:
            lines.append(
                "It is not confirmed: the host's safety timer puts the snapshot back by itself "
                f"at {_clock(change.deadline)}, in {int(change.deadline - now + 0.5)} s."
            )
        else:
            lines.append(
                "It is not confirmed: the host's safety timer is putting the snapshot back now "
                f"(its deadline was {_clock(change.deadline)}, {_ago(now - change.deadline)})."
            )
    else:
        lines.append(
            f"It was interrupted: {progress_words(change.last, change.actions)}. It was never "
            "confirmed nor undone, and no safety timer runs for it any more."
        )
    return lines


# ---- how a new connection fares -----------------------------------------------------------

FAILURES = {
    "no-answer": "no answer",
    "refused": "refused",
    "login-refused": "login refused",
    "host-key": "host key not trusted",
    "no-root": "no root rights",
    "no-route": "no route",
    "unknown-name": "host name not found",
}


def failure_kind(error: HostwizError) -> str:
    """How a connection failed, in the one vocabulary of recovery (a lockout's cause, a try
    of another way in): the :attr:`~wizard.errors.ConnectionFailed.kind` set where the error
    was raised (no-answer, refused, no-route, login-refused, host-key, failed), or no-root
    (the login works, root rights do not); failed for anything else."""
    if isinstance(error, SudoFailed):
        return "no-root"
    if isinstance(error, ConnectionFailed):
        return error.kind
    return "failed"


@dataclass(frozen=True)
class Fresh:
    """How a brand-new connection to the host fared (the way the admin would come in)."""

    kind: str
    """works, or a :func:`failure_kind`."""
    message: str
    port: int | None = None
    """The port tried (when it works: the port that answered)."""
    failed_on: int | None = None
    """Works on ``port`` only: the open connection's port, where a new connection failed (SSH
    moved from there, e.g. by hostwiz's apply from another process)."""


LIVE_ZONES_SCRIPT = (
    "iptables-save 2>/dev/null; echo '#hostwiz-nft'; nft list table inet hostwiz 2>/dev/null; true"
)


def confirmation_cause(transport: Transport, error: HostwizError, port: int | None) -> str:
    """The likely cause of a failed confirmation, in one sentence ('' when unknown).

    ``transport`` is the connection that made the change (still open): for a connection that
    got no answer, hostwiz's own zones loaded on the host are read to tell them from any other
    firewall.
    """
    kind = failure_kind(error)
    on = f"port {port}" if port else "the SSH port"
    if kind == "refused":
        return f"Likely cause: nothing listens on {on} (sshd did not start there)."
    if kind == "login-refused":
        return "Likely cause: sshd answers, but the new settings refuse this login."
    if kind != "no-answer" or port is None:
        return ""
    try:
        live = transport.run(LIVE_ZONES_SCRIPT).out
    except HostwizError:
        return "Likely cause: a firewall drops new connections (which one is unknown)."
    save, _, nft = live.partition("#hostwiz-nft")
    zones = loaded_zone_ports(save, nft)
    closed = sorted(name for name, ports in zones.items() if port not in ports)
    if closed:
        shown = "; ".join(f"zone {name} opens {_tcp(zones[name])}" for name in closed)
        return (
            f"Likely cause: hostwiz's own firewall zones, loaded on the host, do not open {on} "
            f"({shown})."
        )
    where = "hostwiz's zones open it" if zones else "hostwiz's zones are not loaded"
    return (
        f"Likely cause: another firewall drops new connections to {on} ({where}): on the host "
        "(iptables -S INPUT, nft list ruleset) or in front of it (a cloud security group, a "
        "router)."
    )


def _tcp(ports: set[int]) -> str:
    return ", ".join(f"{port}/tcp" for port in sorted(ports)) or "no TCP port"


def fresh_connection(transport: Transport, on_host: HostChange | None = None) -> Fresh:
    """Open (and close) a new connection the way the open one came in: an open connection
    proves nothing about new ones (a firewall may drop new connections only).

    When that fails, SSH may have moved since this connection was opened (hostwiz's own apply
    from another process, say): the ports the host's record of its last change names
    (``on_host``, read over ``transport`` when not given), the local journal's and the port
    hostwiz remembers for the host are tried before anything else is blamed.
    """
    port = getattr(transport, "port", None)
    try:
        fresh = transport.reconnect()
    except HostwizError as error:
        first = Fresh(failure_kind(error), error.message, port)
    else:
        fresh.close()
        return Fresh("works", "a new connection works", port)
    tries = [first]
    for other in moved_ports(transport, on_host):
        if other == port:
            continue
        try:
            fresh = transport.reconnect(port=other)
        except HostwizError as error:
            tries.append(Fresh(failure_kind(error), error.message, other))
            continue
        fresh.close()
        where = f"port {port}" if port else "the port this connection came in on"
        return Fresh(
            "works",
            f"a new connection works on port {other} (SSH moved there: not on {where}, "
            f"{FAILURES.get(first.kind, first.kind)})",
            other,
            failed_on=port,
        )
    return _most_telling(tries)


ANSWERING = ("login-refused", "host-key", "no-root")
"""Failures that show sshd answers on the port (the right port, another problem)."""


def _most_telling(tries: list[Fresh]) -> Fresh:
    """The failure to explain: at a port where sshd answers, else the first (the open
    connection's port); the message names the other ports tried."""
    chosen = next((fresh for fresh in tries if fresh.kind in ANSWERING), tries[0])
    others = [fresh for fresh in tries if fresh is not chosen]
    if not others:
        return chosen
    also = "; ".join(
        f"port {fresh.port}: {FAILURES.get(fresh.kind, fresh.kind)}" for fresh in others
    )
    return Fresh(chosen.kind, f"{chosen.message} (also tried {also})", chosen.port)


def moved_ports(transport: Transport, on_host: HostChange | None = None) -> list[int]:
    """Ports SSH may be on now besides the open connection's: where the host's last change
    moved it to (or back from), the local journal's ports, the port hostwiz remembers."""
    from wizard.transport.ports import remembered_port

    if on_host is None:
        try:
            on_host = read_host_change(transport)
        except HostwizError:
            on_host = None
    found: list[int | None] = []
    if on_host is not None:
        found += [on_host.ssh_port_after, on_host.ssh_port_before]
    with contextlib.suppress(OSError):  # this machine's files: only hints here
        found += [*journal_ports(transport.host_label), remembered_port(transport.host_label)]
    return [port for port in dict.fromkeys(found) if port is not None]


def lockout_cause(
    kind: str, port: int | None, state: str, when: float | None, again: str = ""
) -> list[str]:
    """Why new connections fail, in plain words, from how they fail (``kind``) and the state of
    hostwiz's last change (``state``: confirmed, undone, undoing (its deadline passed within
    :data:`UNDO_TIME`: the host may be putting it back), overdue (this machine's journal says it
    should be undone by now), pending, none, unknown), undone or due at ``when``.

    ``again``: how to connect again (:func:`connect_again`), for a change still pending.

    The point: once hostwiz's change is undone (or was confirmed) and new connections still
    fail, hostwiz's change is not the cause, and restoring it again changes nothing.
    """
    on = f"port {port}" if port else "the SSH port"
    what = {
        "no-answer": f"New connections to {on} get no answer: the packets are dropped on the "
        "way, most likely by a firewall (on the host, or in front of it).",
        "refused": f"New connections to {on} are refused: nothing listens there (sshd stopped, "
        "or listens on another port).",
        "login-refused": f"sshd answers on {on}, but refuses the login: the user, the key, or "
        "sshd's login settings.",
        "no-route": "There is no network route to the host: it is down, or its network is.",
        "host-key": "sshd answers, but with a host key that is not the one trusted.",
    }.get(kind, "")
    lines = [what] if what else []
    if state == "pending":
        lines.append(
            "hostwiz's last change is not confirmed yet: the host puts it back by itself"
            + (f" at {_clock(when)}" if when else "")
            + f". Wait for that, then run {again or 'hostwiz recover again'}."
        )
        return lines
    if state == "none":
        lines.append("hostwiz has no record of a change that could cause this: look on the host.")
    elif state == "undone":
        lines.append(
            "hostwiz's last change is already undone"
            + (f" (at {_clock(when)})" if when else "")
            + ", and new connections still fail: so the cause is not hostwiz's change, and "
            "restoring a snapshot again would not help."
        )
    elif state == "confirmed":
        lines.append(
            "hostwiz's last change was confirmed over a new connection, so new connections "
            "worked after it: the cause is not hostwiz's change but something since."
        )
    elif state in ("overdue", "undoing"):
        lines.append(
            "By this machine's journal, the host's safety timer should already have undone "
            "hostwiz's last change"
            + (f" (at {_clock(when)})" if when else "")
            + ", and new connections still fail: so the cause is most likely not hostwiz's "
            "change. `/var/lib/hostwiz/restore` at the console shows what the host did."
        )
        if state == "undoing":
            lines.append(
                "That was less than a minute ago, though: the host may still be putting the "
                "change back (restarting what it changed takes a while). Wait a minute and "
                "run this again before you look further."
            )
    else:
        return lines
    return lines


NOT_OURS = ("undone", "confirmed", "overdue", "undoing", "none")
"""States of hostwiz's last change in which it is not (or most likely not) what blocks SSH."""


@dataclass(frozen=True)
class Lockout:
    """Why new connections fail, and whether hostwiz's last change can be the cause."""

    kind: str
    """How the new connection failed (:func:`failure_kind`)."""
    lines: list[str]
    not_ours: bool
    """hostwiz's change is not the cause: console checks, not ``restore LAST``."""


def judge_lockout(
    host: str,
    kind: str,
    port: int | None,
    *,
    now: float | None = None,
    on_host: HostChange | None = None,
) -> Lockout:
    """:func:`lockout_cause` for ``host``, from the host's journal when read, else this
    machine's."""
    now = time.time() if now is None else now
    state, when = change_state(host, now, on_host)
    again = connect_again(host, _port_before(host, on_host))
    return Lockout(kind, lockout_cause(kind, port, state, when, again), state in NOT_OURS)


def _port_before(host: str, on_host: HostChange | None) -> int | None:
    """The port SSH is back on once the last change is undone (None: it did not move SSH)."""
    if on_host is not None:
        return on_host.ssh_port_before
    entries = last_transaction(host)
    return entries[0].ssh_port_before if entries else None


def change_state(host: str, now: float, on_host: HostChange | None) -> tuple[str, float | None]:
    """The state of hostwiz's last change for :func:`lockout_cause`, and its time."""
    if on_host is not None:
        state = on_host.state
        if state in ("undone", "incomplete"):
            return "undone", on_host.events[-1][0]
        if state == "confirmed":
            return "confirmed", on_host.when("confirmed")
        if state in ("pending", "reverting"):
            return "pending", on_host.deadline
        return "unknown", None
    entries = last_transaction(host)
    if not entries:
        return "none", None
    last = entries[-1]
    if last.event == "confirmed":
        return "confirmed", last.time
    if last.event == "reverted":
        return "undone", last.time
    if last.deadline is None:
        return "unknown", None
    if now < last.deadline:
        return "pending", last.deadline
    return ("undoing" if now < last.deadline + UNDO_TIME else "overdue"), last.deadline


UNDO_TIME = 60.0
"""Seconds after the safety timer's deadline during which the host may still be putting the
change back (an engine it restarts takes a while): until then, new connections that fail are
no sure sign of another cause."""


SSHD_LOG = (
    "if [ -d /run/systemd/system ]; then journalctl -u ssh -n 30; "
    "else tail -n 30 /var/log/auth.log || echo 'no auth.log (no syslog): see sshd -t'; fi"
)
"""sshd's log on either init: on a sysv host journalctl exits 0 with "No entries", so
``journalctl … || tail …`` showed nothing there; a host without syslog has no auth.log."""

START_SSHD = {
    "systemd": "systemctl start ssh",
    "sysv": "/etc/init.d/ssh start",
}
"""How to start sshd, per the host's init."""

CONSOLE_CHECKS = {
    "no-answer": [
        ("iptables -S INPUT", "a rule that drops SSH (DROP or REJECT for its port)"),
        ("nft list ruleset", "the same for nftables"),
        ("ss -tlnp", "sshd listening, and on which port"),
    ],
    "refused": [
        ("ss -tlnp", "sshd listening, and on which port"),
        ("sshd -t", "sshd's config: prints what is wrong in it (nothing: it is fine)"),
        (SSHD_LOG, "sshd's log"),
    ],
    "login-refused": [
        (SSHD_LOG, "sshd's log"),
        ("sshd -T | grep -Ei 'permitrootlogin|passwordauth|pubkeyauth|allowusers'",
         "sshd's login settings"),
    ],
}  # fmt: skip


def start_sshd(init: str = "") -> list[tuple[str, str]]:
    """The command that starts sshd once ``sshd -t`` is clean: the host's init's form when
    known, else both (systemd, then sysv)."""
    why = "then start sshd"
    if init in START_SSHD:
        return [(START_SSHD[init], f"{why} (once sshd -t is clean)")]
    return [
        (START_SSHD["systemd"], f"{why} (once sshd -t is clean; systemd)"),
        (START_SSHD["sysv"], f"{why} instead, on a host without systemd"),
    ]


def console_checks(kind: str, init: str = "") -> list[str]:
    """What to look at from the console when the cause is not hostwiz's change (``init``:
    the host's init system, systemd or sysv, when known)."""
    first = list(CONSOLE_CHECKS.get(kind, CONSOLE_CHECKS["no-answer"]))
    if kind == "refused":  # sshd is not running: check its config, then start it
        first += start_sshd(init)
    checks = dict(first)
    for other in CONSOLE_CHECKS.values():
        for command, why in other:
            checks.setdefault(command, why)
    return [f"    {command}    # {why}" for command, why in checks.items()]


def console_instructions(
    host: str, practice_host: bool, *, not_ours: bool = False, kind: str = ""
) -> list[str]:
    """Where the console is, then the commands to type (each with a ``#`` comment).

    ``not_ours``: hostwiz's change is not the cause (:func:`lockout_cause`): the commands
    that show what blocks SSH, and the restore list only to see what the host did;
    otherwise the restore commands. The host's init is not known here (it could not be
    reached), so a refused connection's advice gives both ways to start sshd.
    """
    first = (
        f"Open the practice host's console with `hostwiz lab shell {host}` (a root shell "
        "there) and type:"
        if practice_host
        else "At the VM console (your provider's web console or the VM's serial console), "
        "log in as root and type:"
    )
    listing = f"    {RESTORE_COMMAND}          # lists the snapshots and what happened to each"
    if not_ours:
        return [first, *console_checks(kind), listing]
    return [
        first,
        listing,
        f"    {RESTORE_COMMAND} LAST     # puts back the state before the last change",
    ]


@dataclass(frozen=True)
class Interrupted:
    snapshot: SnapshotInfo
    timer_running: bool
    deadline: float | None = None
    """When the running safety timer undoes it (this machine's clock); None: not known."""


def _timer_script(snapshot_id: str) -> str:
    """Prints ``running`` or ``stopped``, the snapshot's deadline (host clock, ``-`` when
    there is none) and the host's clock now."""
    snap = snapshot_dir(snapshot_id)
    return (
        f'pid=$(cat {snap}/watchdog.pid 2>/dev/null); state=stopped; [ -n "$pid" ] && '
        f"grep -q hostwiz-watchdog-{snapshot_id} /proc/$pid/cmdline 2>/dev/null && "
        f"state=running; d=$(cat {snap}/deadline 2>/dev/null); "
        'echo "$state ${d:--} $(date +%s)"'
    )


def interrupted_transactions(transport: Transport) -> list[Interrupted]:
    """Snapshots whose transaction never reached confirmed or reverted (with when a still
    running safety timer undoes each)."""
    found = []
    for info in list_snapshots(transport):
        if any(word in info.state for word in SETTLED) or info.state == "recorded":
            continue
        words = [*transport.run(_timer_script(info.id)).out.split(), "", "", ""][:3]
        alive = words[0] == "running"
        deadline, host_now = _int(words[1]), _int(words[2])
        if alive and deadline is not None and host_now is not None:
            local_now = time.time()
            found.append(Interrupted(info, True, deadline + clock_shift(local_now, host_now)))
        else:
            found.append(Interrupted(info, alive))
    return found


def undo_time_line(item: Interrupted, recover_command: str) -> str:
    """What to say about a change whose safety timer still runs: when the host undoes it,
    and when to look again."""
    if item.deadline is None:
        return (
            "Its safety timer is still running: the host undoes it by itself unless it is "
            f"confirmed; run {recover_command} again once it has."
        )
    return (
        f"Its safety timer is still running: the host undoes it at {_clock(item.deadline)} "
        f"unless confirmed; run {recover_command} again after that."
    )


def roll_back_interrupted(transport: Transport, snapshot_id: str) -> str:
    """Put an interrupted change back with the host's own restore script; what it said, and
    what the rolled-back steps leave on this machine (:func:`wizard.session.after_rolled_back`).
    """
    from wizard.local import client_host
    from wizard.session import after_rolled_back  # it imports every step: only when needed

    snap = snapshot_dir(snapshot_id)
    meta, _problem = decode_meta(transport.run(f"cat {snap}/meta.json 2>/dev/null").stdout)
    result = transport.run(f"sh {snap}/restore.sh recover")
    transport.run(disarm_script(snapshot_id, confirmed=False))
    said = (result.out + result.err).strip()
    if not result.ok:
        return said
    steps = [str(step) for step in meta.get("steps", [])]
    words = rolled_back_words(
        snapshot_id, steps, hostwiz_command(transport, "plan"), hostwiz_command(transport, "apply")
    )
    lines = (said, *words, *after_rolled_back(steps, client_host(transport)))
    return "\n".join(line for line in lines if line)


def rolled_back_words(
    snapshot_id: str, steps: Iterable[str], plan_command: str, apply_command: str
) -> list[str]:
    """After a recovery's rollback: what was put back (the restore script says only
    "restored snapshot X"), and what to do next."""
    titles = step_titles(steps)
    what = f"what {titles} had changed" if titles else "what the change had changed"
    return [
        f"Put back: {what}, as it was before snapshot {snapshot_id}.",
        f"Next: see what that leaves to do with `{plan_command}`; once whatever interrupted "
        f"the change is fixed, apply it again with `{apply_command}`.",
    ]


def finish_interrupted(transport: Transport, snapshot_id: str) -> bool:
    """Keep an interrupted change: confirm it (this connection is a fresh one) and disarm."""
    return transport.run(disarm_script(snapshot_id)).ok


# ---- other ways in ------------------------------------------------------------------------

COMMON_SSH_PORTS = (22, 2222, 2022, 2200, 22222, 222, 8022)
"""Ports admins often move SSH to, tried after the ones hostwiz knows of."""
FALLBACK_USERS = ("root", "admin")
PARALLEL_TRIES = 8
"""Ports tried at once: a full search takes about one connect timeout."""


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
    """works, or how it failed (:func:`failure_kind`): refused, no-answer, no-route (no sshd
    there), login-refused, no-root (sshd answers there), host-key, failed"""
    message: str


@dataclass
class Search:
    """What :func:`find_a_way_in` tried, and the way that works (if any)."""

    tried: list[Tried] = field(default_factory=list)
    found: WayIn | None = None
    transport: Transport | None = None
    """Open when the way found also gives root rights."""


OpenWay = Callable[[WayIn], Transport]


def find_a_way_in(
    open_way: OpenWay,
    *,
    ports: Iterable[int],
    users: Iterable[str],
    keys: Iterable[Path] = (),
    configured_keys: Iterable[Path] = (),
    say: Callable[[Tried], None] | None = None,
    stop: Callable[[], bool] | None = None,
    tried_already: Iterable[Tried] = (),
    likely: Iterable[int] = (),
) -> Search:
    """Try ports, then users and keys on the ports where sshd answers; stop at the first that
    works.

    ``tried_already``: ways that just failed (the connection the caller opened first), counted
    and told as tries, not tried again. ``likely``: the ports hostwiz knows of (configured,
    remembered, the ones its journal says SSH was at or moved to): tried first, on their own;
    the other ``ports`` (guesses) only when none of them works.

    First every port as configured (user and key), all at once (at most
    :data:`PARALLEL_TRIES` in parallel; ``likely`` ports, then the others; the first port in
    order that works wins): a port
    that refuses or stays silent has no sshd, a refused login means sshd is there. Then, on
    those ports, every user with every key (``configured_keys`` are skipped for the
    configured user: the first round offered them).
    A host key that is unknown or changed is never accepted here: that port is reported and
    left alone. ``say`` hears each try as it ends; ``stop`` returning True (the admin left)
    ends the search before the next try.
    """
    search = Search()
    users, keys = list(users), list(keys)
    configured_user = users[0]
    already_offered = set(configured_keys)
    lock = threading.Lock()

    def attempt(way: WayIn) -> tuple[str, Transport | None]:
        """One try; tells ``say`` (under a lock: tries may run in parallel)."""
        if stop is not None and stop():
            return "stopped", None
        try:
            transport = open_way(way)
        except HostwizError as error:
            tried = Tried(way, failure_kind(error), error.message)
            transport = None
        else:
            tried = Tried(way, "works", "that works")
        with lock:
            search.tried.append(tried)
            if say:
                say(tried)
        return tried.result, transport

    def settle(way: WayIn, result: str, transport: Transport | None) -> bool:
        """Record a way that works (or logs in without root); True ends the search."""
        if result == "works":
            search.found, search.transport = way, transport
            return True
        if transport is not None:
            transport.close()  # a later port that works too: the first one wins
        if result == "no-root" and search.found is None:
            search.found = way
        return result == "stopped"

    # Every port of a round at once (bounded): a port that drops packets costs one timeout,
    # not one each. Then, in order, the first that works wins. The known ports first: a guessed
    # port answering first would hide (and delay) the port the last change moved SSH to.
    port_list = list(dict.fromkeys([*likely, *ports]))
    first = list(dict.fromkeys(likely))
    rounds = [first, [port for port in port_list if port not in first]]
    previous = list(tried_already)
    answering: list[int] = []
    done = False
    for round_ports in rounds:
        if done or search.transport is not None or not round_ports:
            continue
        ways = [WayIn(port, configured_user) for port in round_ports]
        known = {tried.way: tried for tried in previous if tried.way in ways}
        for tried in known.values():
            search.tried.append(tried)
            if say:
                say(tried)
        todo = [way for way in ways if way not in known]
        with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_TRIES, len(todo))),
                                thread_name_prefix="hostwiz-way-in") as pool:  # fmt: skip
            fresh = dict(zip(todo, pool.map(attempt, todo), strict=True))
        outcomes = [(known[way].result, None) if way in known else fresh[way] for way in ways]
        for way, (result, transport) in zip(ways, outcomes, strict=True):
            if done:
                if transport is not None:
                    transport.close()
                continue
            done = settle(way, result, transport)
            if result in ("login-refused", "no-root"):
                answering.append(way.port)
    search.tried.sort(key=lambda tried: port_list.index(tried.way.port))
    if done or search.transport is not None:
        return search
    for port in answering:
        for user in users:
            for key in [None, *keys]:
                if user == configured_user and (key is None or key in already_offered):
                    continue  # tried above
                way = WayIn(port, user, key)
                if settle(way, *attempt(way)):
                    return search
    return search
