"""Applying a changeset to a host as one transaction that cannot strand the admin.

1. Record a snapshot on the host (before-state of every touched file, undo scripts, restore.sh).
2. Arm a watchdog *on the host*, outside the SSH session: unless disarmed within the confirm
   window it runs restore.sh by itself (so a change that cuts the admin off undoes itself).
3. Run the actions, each journaled on the host as it completes.
4. Run the steps' health checks.
5. Confirm over a fresh connection (new TCP connection, new authentication) and disarm there.
   When the changeset moves sshd to another port (``Changeset.ssh_port``), that connection goes
   to the new port, with the host key trusted for the old one: a port change is only kept once
   the new port answers. hostwiz then remembers the port for the host
   (:mod:`wizard.transport.ports`), so the next connection goes there too.

Any failure in 3-4 runs restore.sh at once (it restores files, then runs the undo scripts of the
commands that completed, newest first) and reports what failed and what was undone.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from snapshots import local_journal
from snapshots.layout import (
    ACTIVE_FILE,
    REARM_COMMAND,
    SNAPSHOT_DIR,
    WATCHDOG_FILE,
    journal_path,
    lock_path,
    snapshot_dir,
)
from snapshots.record import BUSY_EXIT, new_snapshot_id, record_script
from snapshots.store import save_local_copy
from wizard.actions import Action, RemoveFile, RunCommand, WriteFile, resolve_link_script
from wizard.confirm_timeout import check_confirm_timeout
from wizard.errors import (
    ApplyFailed,
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
    HostwizError,
)
from wizard.facts import Facts
from wizard.plan import Changeset, PortMove
from wizard.secrets import mask
from wizard.steps.base import Step
from wizard.transport.base import CommandResult, Transport, hostwiz_command, shell_quote
from wizard.transport.known_hosts import DEFAULT_SSH_PORT
from wizard.transport.ports import forget_port, remember_port

_log = logging.getLogger(__name__)

EventKind = Literal[
    "snapshot", "armed", "action", "action-done", "action-failed", "health", "undo", "confirm",
    "done", "warning",
]  # fmt: skip


@dataclass(frozen=True)
class Event:
    kind: EventKind
    message: str
    index: int | None = None
    output: str = ""


Progress = Callable[[Event], None]


@dataclass(frozen=True)
class HealthCheck:
    """A step's post-apply check, bound to its answers and the facts it planned from."""

    step: Step[Any]
    answers: Any
    facts: Facts

    def run(self, transport: Transport) -> list[str]:
        return self.step.health(transport, self.answers, self.facts)


@dataclass(frozen=True)
class ApplyResult:
    snapshot_id: str | None
    actions_done: int
    message: str
    confirmed: bool = True
    ssh_port: int | None = None
    """The port SSH listens on now, when this change moved it (and was confirmed there)."""

    @property
    def changed(self) -> bool:
        return self.snapshot_id is not None


def _stamp() -> str:
    return '"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'


def action_script(action: Action) -> tuple[str, bytes]:
    """The script (and stdin) that performs one action on the host.

    A write costs the host a handful of processes (each ~1-2 ms on a busy host); the folder
    is found by the shell itself and only made when missing (the path is absolute).
    """
    if isinstance(action, WriteFile):
        path = shell_quote(action.path)
        owner = shell_quote(f"{action.owner}:{action.group}")
        script = f"""set -e
p={path}
{resolve_link_script()}
d=${{p%/*}}; d=${{d:-/}}; [ -d "$d" ] || mkdir -p "$d"
t=$(mktemp "$d/.hostwiz.XXXXXX")
trap 'rm -f "$t"' EXIT
cat > "$t"
chown {owner} "$t"; chmod {action.mode:04o} "$t"; sync "$t"
mv -f "$t" "$p"
trap - EXIT"""
        return script, action.content
    if isinstance(action, RemoveFile):
        return f'p={shell_quote(action.path)}\n{resolve_link_script()}\nrm -f "$p"', b""
    return action.script, b""


def journaled(script: str, snapshot_id: str, index: int, extend_by: float) -> str:
    """Run ``script`` in a subshell, journaling ``start INDEX`` before and ``done INDEX`` after.

    The undo of a command runs when it *started*, not only when it succeeded: a failed
    "restart dockerd" has still stopped the daemon, and restarting it on the restored
    configuration is exactly what brings it back. Starting an action also pushes the
    watchdog's deadline out by the action's own time limit plus the window, so a slow action
    is not reverted under our feet, while a connection that dies mid-action still is.
    """
    journal = journal_path(snapshot_id)
    deadline = f"{snapshot_dir(snapshot_id)}/deadline"
    # One `date` for the deadline and the start's stamp (a process less per action).
    start = (
        "hostwiz_now=$(date -u '+%s %Y-%m-%dT%H:%M:%SZ')\n"
        f"echo $(( ${{hostwiz_now% *}} + {int(extend_by)} )) > {deadline}.new && "
        f"mv {deadline}.new {deadline}\n"
        f'echo "${{hostwiz_now#* }}" start {index} >> {journal}'
    )
    record = f"[ $rc = 0 ] && echo {_stamp()} done {index} >> {journal}"
    return f"{start}\n(\n{script}\n)\nrc=$?\n{record}\nexit $rc\n"


def watchdog_marker(snapshot_id: str) -> str:
    return f"hostwiz-watchdog-{snapshot_id}"


def set_deadline(snapshot_id: str, seconds: float) -> str:
    """Move the watchdog's deadline to ``seconds`` from now (epoch seconds in a file)."""
    deadline = f"{snapshot_dir(snapshot_id)}/deadline"
    return (
        f"echo $(( $(date +%s) + {int(seconds)} )) > {deadline}.new && mv {deadline}.new {deadline}"
    )


def watchdog_script(snapshot_id: str) -> str:
    """The safety timer's body (``watchdog.sh`` in the snapshot folder).

    It waits until the deadline file's time has passed (hostwiz moves it while it works), then
    runs restore.sh unless the journal says the change was confirmed (restore.sh checks again
    under the snapshot's lock). It is a file, not a one-liner, so that the boot-time re-arm
    (:data:`REARM_SCRIPT`) can start the very same timer after a reboot.
    """
    snap = snapshot_dir(snapshot_id)
    return f"""echo $$ > {snap}/watchdog.pid
while [ "$(date +%s)" -lt "$(cat {snap}/deadline 2>/dev/null || echo 0)" ]; do sleep 0.5; done
grep -q ' confirmed$' {snap}/journal || exec sh {snap}/restore.sh timeout
"""


def _start_watchdog(folder: str, marker: str, *, reused: bool = True) -> str:
    """Shell text starting ``folder/watchdog.sh`` outside any SSH session, named ``marker``
    (the disarm and restore.sh recognise it by that name in its command line): a transient
    system service where systemd runs (so logind cannot end it with the session), a process
    detached with setsid elsewhere. ``reused``: the unit's name may have been used before (a
    re-arm), so a failed unit of that name is cleared first; a new snapshot's name is new, and
    skipping that D-Bus call saves ~10 ms of each apply."""
    watchdog = f"{folder}/{WATCHDOG_FILE}"
    reset = f"  systemctl reset-failed {marker}.service >/dev/null 2>&1 || true\n" if reused else ""
    return f"""if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
{reset}  systemd-run --quiet --collect --unit={marker} sh {watchdog} {marker}
else
  setsid -f sh {watchdog} {marker} </dev/null >/dev/null 2>&1 8>&-
fi"""


REARM_SCRIPT = f"""#!/bin/sh
# Written by hostwiz. At boot: if a reboot ended the safety timer of a change that was neither
# confirmed nor undone, start that timer again, so the change is still undone at its deadline
# (at once when the deadline has passed). Keeping this file is harmless.
a=$(cat {ACTIVE_FILE} 2>/dev/null) || exit 0
s={SNAPSHOT_DIR}/$a
[ -n "$a" ] && [ -f "$s/{WATCHDOG_FILE}" ] && [ -f "$s/journal" ] || exit 0
last=$(tail -n 1 "$s/journal")
case "$last" in *" confirmed"|*" reverted"*|*" revert incomplete"*) exit 0 ;; esac
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) re-armed after a reboot" >> "$s/journal"
rm -f "$s/watchdog.pid"
m=hostwiz-watchdog-$a
{_start_watchdog("$s", "$m")}
exit 0
"""

REARM_UNIT = f"""[Unit]
Description=hostwiz: re-arm the safety timer of a change a reboot caught unconfirmed
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/sh {REARM_COMMAND}

[Install]
WantedBy=multi-user.target
"""

REARM_INIT = f"""#!/bin/sh
### BEGIN INIT INFO
# Provides:          hostwiz-rearm
# Required-Start:    $local_fs
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: hostwiz: re-arm the safety timer of a change a reboot caught unconfirmed
### END INIT INFO
[ "$1" = start ] || exit 0
exec sh {REARM_COMMAND}
"""


def install_rearm_script() -> str:
    """Install the boot-time re-arm once (hostwiz's own, like the console's restore command):
    the script, and a systemd unit (enabled by its link) or an init script (with update-rc.d)."""
    unit = "/etc/systemd/system/hostwiz-rearm.service"
    wants = "/etc/systemd/system/multi-user.target.wants/hostwiz-rearm.service"
    return f"""cat > {REARM_COMMAND}.new <<'HOSTWIZ_REARM'
{REARM_SCRIPT}HOSTWIZ_REARM
chmod 700 {REARM_COMMAND}.new && mv -f {REARM_COMMAND}.new {REARM_COMMAND}
if [ -d /run/systemd/system ]; then
  if [ ! -f {unit} ]; then
    cat > {unit} <<'HOSTWIZ_REARM'
{REARM_UNIT}HOSTWIZ_REARM
    mkdir -p {wants.rsplit("/", 1)[0]} && ln -sf {unit} {wants}
  fi
elif [ ! -f /etc/init.d/hostwiz-rearm ] && [ -d /etc/init.d ]; then
  cat > /etc/init.d/hostwiz-rearm <<'HOSTWIZ_REARM'
{REARM_INIT}HOSTWIZ_REARM
  chmod 755 /etc/init.d/hostwiz-rearm
  command -v update-rc.d >/dev/null 2>&1 && update-rc.d hostwiz-rearm defaults >/dev/null 2>&1
fi
true"""


def arm_script(snapshot_id: str, seconds: int) -> str:
    """Start the host-side rollback timer (:func:`watchdog_script`), outside the SSH session,
    and make sure a reboot cannot end it for good (:func:`install_rearm_script`). It records
    its pid for the disarm to stop it; that takes a few milliseconds after ``systemd-run``
    returns, so the wait for it looks every 10 ms (every 100 ms cost each apply ~0.1 s)."""
    snap = snapshot_dir(snapshot_id)
    marker = watchdog_marker(snapshot_id)
    return f"""{set_deadline(snapshot_id, seconds)}
cat > {snap}/{WATCHDOG_FILE} <<'HOSTWIZ_WATCHDOG'
{watchdog_script(snapshot_id)}HOSTWIZ_WATCHDOG
{install_rearm_script()}
echo {_stamp()} armed {seconds}s >> {snap}/journal
{_start_watchdog(snap, marker, reused=False)}
i=0; while [ ! -s {snap}/watchdog.pid ] && [ $i -lt 500 ]; do i=$((i+1)); sleep 0.01; done
[ -s {snap}/watchdog.pid ]"""


DISARM_LOCK_WAIT = 300
"""Seconds a confirmation waits for a restore of the same snapshot to finish (exit 4 after)."""


def disarm_script(snapshot_id: str, *, confirmed: bool = True) -> str:
    """Stop the watchdog (only our own process, by its pid); mark the change confirmed.

    Everything happens under the snapshot's lock, which restore.sh holds from its decision to
    its end (see :func:`snapshots.record.restore_script`): so the confirmation is recorded
    either before the timer decides (it then sees it and does nothing) or after a restore ended
    (then it is too late: exit 3), and the watchdog is never stopped in the middle of a restore.
    """
    snap = snapshot_dir(snapshot_id)
    marker = watchdog_marker(snapshot_id)
    # Too late is too late: once the host has started putting the snapshot back, a
    # confirmation must not be recorded (exit 3 tells hostwiz so).
    record = (
        f"grep -q ' reverting' {snap}/journal && exit 3\n"
        f"echo {_stamp()} confirmed >> {snap}/journal"
        if confirmed
        else ""
    )
    return f"""exec 9>>{lock_path(snapshot_id)}
flock -w {DISARM_LOCK_WAIT} 9 || exit 4
{record}
pid=$(cat {snap}/watchdog.pid 2>/dev/null); stopped=
if [ -n "$pid" ] && tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null | grep -q {marker}; then
  kill -TERM -- -$pid 2>/dev/null || kill -TERM $pid
  stopped=1
fi
# Only when the timer was not found by its pid: asking systemd costs ~10 ms (D-Bus), on the
# confirmation's path. Its transient unit ends with its process (it is collected).
[ -z "$stopped" ] && [ -d /run/systemd/system ] && systemctl stop {marker}.service >/dev/null 2>&1
rm -f {snap}/watchdog.pid
true"""


def _revert(transport: Transport, snapshot_id: str, reason: str) -> CommandResult:
    return transport.run(f"sh {snapshot_dir(snapshot_id)}/restore.sh {shell_quote(reason)}")


def apply_changeset(
    transport: Transport,
    changeset: Changeset,
    checks: Sequence[HealthCheck] = (),
    *,
    progress: Progress | None = None,
    confirm_timeout: int = 60,
    reason: str = "apply",
) -> ApplyResult:
    """Apply ``changeset`` as described in the module docstring."""
    check_confirm_timeout(confirm_timeout, "the confirmation timeout")  # before the host
    say = progress or (lambda event: None)
    actions = list(changeset.actions())
    if not actions:
        say(Event("done", "Nothing to do: the host is already as asked."))
        return ApplyResult(None, 0, "nothing to do")

    snapshot_id = new_snapshot_id()
    # One round trip: record the snapshot (it prints its tar for the local copy), then arm.
    script = record_script(snapshot_id, changeset, reason) + arm_script(
        snapshot_id, confirm_timeout
    )
    recorded = transport.run(script)
    if recorded.exit_code == BUSY_EXIT:
        raise _busy(transport, recorded.out)
    if not recorded.ok:
        raise ApplyFailed(
            f"could not record a snapshot and arm the safety timer on {transport.host_label}; "
            "nothing was changed.",
            "Check that /var/lib has free space and is writable (df -h /var/lib), and that "
            "setsid and flock (util-linux) exist on the host.",
            details=recorded.err,
        )
    journal = _LocalJournal(changeset, snapshot_id)
    try:
        done, problem, deadline = _apply_armed(
            transport, changeset, actions, checks, snapshot_id, recorded.out, journal, say,
            confirm_timeout,
        )  # fmt: skip
    except (ApplyFailed, ConnectionFailed):
        raise  # explained already, and the host is back or its timer will put it back
    except Exception as error:
        raise _abandon(transport, snapshot_id, journal, say, confirm_timeout, error) from error
    move = changeset.ssh_port
    try:
        journal("unconfirmed" if problem else "confirmed",
                until=deadline if problem else None, detail=problem)  # fmt: skip
    except OSError as error:  # the host's own journal has it; do not fail a kept change
        say(Event("warning", f"Could not write the local journal: {error}"))
    if problem:
        recover = hostwiz_command(transport, "recover")
        return ApplyResult(
            snapshot_id,
            done,
            unconfirmed_message(_done_word(changeset), move, problem, confirm_timeout, recover),
            confirmed=False,
        )
    undo = hostwiz_command(transport, "rollback", snapshot_id)
    message = f"{done_headline(changeset, done)} Undo with: {undo}"
    if move:
        message += "\n" + hand_over_port(transport, changeset.host, move)
    say(Event("done", message))
    return ApplyResult(snapshot_id, done, message, ssh_port=move.after if move else None)


def unconfirmed_message(
    done_word: str, move: PortMove | None, problem: str, confirm_timeout: int, recover: str
) -> str:
    """What an unconfirmed change tells the admin: the cause once, as its own sentence (it
    used to be nested in parentheses after "could not confirm over a new connection")."""
    what = f"SSH was to move to port {move.after} and " if move else ""
    back = f" (SSH back on port {move.before})" if move else ""
    cause = problem.strip()
    cause = cause[:1].upper() + cause[1:]
    if cause and not cause.endswith((".", "!", "?")):
        cause += "."
    return (
        f"{done_word}, but {what}hostwiz could not confirm the change. {cause} The host will "
        f"undo the change by itself{back} within {confirm_timeout} s. Run `{recover}` if you "
        "cannot get back in."
    )


def _done_word(changeset: Changeset) -> str:
    restored = [plan.rolls_back for plan in changeset.plans if plan.rolls_back]
    return f"Put back snapshot {', '.join(restored)}" if restored else "Applied"


def done_headline(changeset: Changeset, done: int) -> str:
    """What a confirmed change did, in words: a rollback says which snapshot it put back
    (it is no new change of the admin's, though it gets its own snapshot to undo it by)."""
    restored = [plan.rolls_back for plan in changeset.plans if plan.rolls_back]
    if restored:
        return f"Put back {done} change(s) from snapshot {', '.join(restored)}."
    return f"Applied {done} change(s)."


def _apply_armed(
    transport: Transport,
    changeset: Changeset,
    actions: list[Action],
    checks: Sequence[HealthCheck],
    snapshot_id: str,
    recorded: str,
    journal: _LocalJournal,
    say: Progress,
    confirm_timeout: int,
) -> tuple[int, str, float]:
    """Everything between arming the timer and the confirmation: (actions done, problem, the
    host's deadline on this machine's clock).

    The local journal is written first, before anything else here can fail on this machine,
    so ``hostwiz recover`` always knows about a change the host may still undo.
    """
    journal("applying", deadline=confirm_timeout)
    local = save_local_copy(changeset.host, recorded)
    say(Event("snapshot", f"Snapshot {snapshot_id} recorded on the host"
              + (f" and in {local}" if local else "")))  # fmt: skip
    say(Event("armed", f"Safety timer armed: the host undoes this by itself in "
              f"{confirm_timeout} s unless hostwiz confirms over a new connection."))  # fmt: skip

    done = 0
    for index, action in enumerate(actions):
        secrets = action.secrets if isinstance(action, RunCommand) else ()
        label = mask(action.describe(), secrets)
        say(Event("action", label, index))
        script, stdin = action_script(action)
        timeout = action.timeout if isinstance(action, RunCommand) else 120.0
        began = local_journal.now()  # the host moves its deadline when the action starts
        try:
            result = transport.run(
                journaled(script, snapshot_id, index, timeout + confirm_timeout),
                stdin=stdin,
                timeout=timeout,
            )
        except ConnectionFailed:
            journal("interrupted", until=began + timeout + confirm_timeout, detail=label)
            say(Event("warning", "Lost the connection mid-change: the host's safety timer will "
                      f"undo it within {confirm_timeout} s."))  # fmt: skip
            raise
        output = mask((result.out + result.err).strip(), secrets)
        if not result.ok:
            say(Event("action-failed", f"{label} failed (exit {result.exit_code})", index, output))
            undo_text = _undo(transport, snapshot_id, "failed", say)
            journal("reverted", detail=f"{label} failed")
            raise ApplyFailed(
                f"{label} failed with exit status {result.exit_code}"
                + (f": {output}" if output else "")
                + f". {undo_text}",
                f"The host is as it was before. Snapshot {snapshot_id} keeps the record.",
            )
        done += 1
        say(Event("action-done", label, index, output))

    move = changeset.ssh_port
    # The fresh connection that will confirm is opened now, after the last action, while the
    # health checks run over the old one: the two waits overlap instead of adding up.
    opening = _FreshConnection(transport, move.after if move else None)
    try:
        for check in checks:
            say(Event("health", f"Checking {check.step.title}"))
            problems = check.run(transport)
            if problems:
                undo_text = _undo(transport, snapshot_id, "health check failed", say)
                journal("reverted", detail="health check failed: " + "; ".join(problems))
                raise ApplyFailed(
                    f"after the change, {check.step.title.lower()} is not healthy: "
                    + "; ".join(problems)
                    + f". {undo_text}",
                    "The host is as it was before. Check the settings, or look at the service's "
                    "log on the host.",
                )
    except BaseException:
        opening.discard()  # after the undo: no connection left behind
        raise

    # The confirmation window starts now: the fresh connection must get in before it ends.
    deadline = _start_window(transport, snapshot_id, confirm_timeout)
    return done, _confirm(transport, opening, snapshot_id, say, move), deadline


def _busy(transport: Transport, output: str) -> ApplyFailed:
    """The host refused to start a second change while another one is in progress."""
    words = (output.strip().splitlines() or [""])[-1].split()
    other = words[1] if len(words) > 1 and words[0] == "hostwiz-busy" else "unknown"
    started = words[2] if len(words) > 2 and words[2] != "unknown" else ""
    what = (
        f"snapshot {other}" + (f", started at {started}" if started else "")
        if other != "unknown"
        else "being recorded right now"
    )
    return ApplyFailed(
        f"another hostwiz change ({what}) is in progress on {transport.host_label}; "
        "nothing was changed.",
        "Wait until it is confirmed or undone (its safety timer ends it), or run "
        "`hostwiz recover` to see where it stands.",
    )


def _abandon(
    transport: Transport,
    snapshot_id: str,
    journal: _LocalJournal,
    say: Progress,
    confirm_timeout: int,
    error: Exception,
) -> ApplyFailed:
    """An unexpected error after the timer was armed: undo now if the host still answers (its
    timer does it otherwise), note it in the local journal if possible, and explain."""
    what = error.message if isinstance(error, HostwizError) else f"{type(error).__name__}: {error}"
    with contextlib.suppress(Exception):  # the front end may be what failed
        say(Event("warning", f"hostwiz failed in the middle of the change: {what}"))
        say(Event("undo", "Undoing what was done so far"))
    try:
        undone = _revert(transport, snapshot_id, "hostwiz error").ok
        transport.run(disarm_script(snapshot_id, confirmed=False))
    except Exception:  # the connection may be what failed: the timer is still armed
        undone = False
    with contextlib.suppress(Exception):  # the local journal may be what failed
        if undone:
            journal("reverted", detail=f"hostwiz error: {what}")
        else:
            journal("interrupted", deadline=confirm_timeout, detail=f"hostwiz error: {what}")
    outcome = (
        "Everything done so far was undone."
        if undone
        else f"The host's safety timer undoes the change by itself within {confirm_timeout} s."
    )
    hint = (
        error.hint
        if isinstance(error, HostwizError) and error.hint
        else (
            "This is a fault in hostwiz or on this machine (free space, permissions of its state "
            "folder); the details say which. Then run it again."
        )
    )
    return ApplyFailed(
        f"hostwiz stopped in the middle of the change on {transport.host_label}: {what}. {outcome}",
        f"{hint} Snapshot {snapshot_id} keeps the record; `hostwiz recover` shows where the "
        "host stands.",
        details="".join(traceback.format_exception(error)),
    )


def _start_window(transport: Transport, snapshot_id: str, seconds: int) -> float:
    """Move the host's deadline to ``seconds`` from now; returns it on this machine's clock.

    The host's own deadline (read back with the host's clock), not this machine's now plus
    the window: the confirmation may take the whole connect timeout, and the local journal
    must not say the host reverts later than it does.
    """
    deadline = f"{snapshot_dir(snapshot_id)}/deadline"
    said = transport.run(
        f"{set_deadline(snapshot_id, seconds)}\necho $(cat {deadline}) $(date +%s)"
    ).out.split()
    now = local_journal.now()
    if len(said) == 2 and all(word.isdigit() for word in said):
        return now + int(said[0]) - int(said[1])
    return now + seconds


def hand_over_port(transport: Transport, host: str, move: PortMove) -> str:
    """Remember where SSH moved (for the next connection) and tell the admin how to connect."""
    from wizard.transport.ssh import SshTransport

    if isinstance(transport, SshTransport):
        configured, command = transport.configured_port, transport.ssh_command(move.after)
    else:
        configured, command = DEFAULT_SSH_PORT, f"ssh -p {move.after} {host}"
    if move.after == configured:
        forget_port(host)
        return (
            f"SSH listens on port {move.after} again (no longer on {move.before}), the port "
            f"your ssh config names. Connect with: {command}"
        )
    remember_port(host, move.after)
    return (
        f"SSH now listens on port {move.after} (no longer on {move.before}). Connect with: "
        f"{command} (in your own ssh config: `Port {move.after}` under `Host {host}`). "
        f"hostwiz remembers port {move.after} for {host}, so `hostwiz --host {host}` keeps "
        "working."
    )


class _LocalJournal:
    """Writes this transaction's events to the admin's local journal."""

    def __init__(self, changeset: Changeset, snapshot_id: str) -> None:
        self._host = changeset.host
        self._steps = changeset.steps
        self._id = snapshot_id
        self._move = changeset.ssh_port

    def __call__(
        self,
        event: str,
        *,
        deadline: float | None = None,
        until: float | None = None,
        detail: str = "",
    ) -> None:
        """``deadline``: seconds from now; ``until``: the time itself (this machine's clock)."""
        when = local_journal.now()
        move = self._move
        if until is None and deadline is not None:
            until = when + deadline
        local_journal.record(
            local_journal.JournalEntry(
                when, self._host, self._id, event, self._steps, until, detail,
                move.before if move else None, move.after if move else None,
            )
        )  # fmt: skip


def _undo(transport: Transport, snapshot_id: str, reason: str, say: Progress) -> str:
    say(Event("undo", "Undoing what was done so far"))
    result = _revert(transport, snapshot_id, reason)
    transport.run(disarm_script(snapshot_id, confirmed=False))
    if result.ok:
        return "Everything done so far was undone."
    return (
        "Undoing it did not fully work either: "
        f"{(result.out + result.err).strip()}. From the console run "
        f"/var/lib/hostwiz/restore {snapshot_id}."
    )


REFUSED_RETRY_PAUSES = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5)
"""Pauses between attempts while new connections are refused (~3 s in all). sshd refuses them
for a few milliseconds while a reload re-executes it: the first retry comes soon (a flat 0.5 s
cost each small sshd change half a second), later ones leave a slower start time."""


def _reconnect_patiently(transport: Transport, port: int | None = None) -> Transport:
    """A fresh connection (to ``port`` if SSH moved), retrying a quick refusal for about 3 s
    (:data:`REFUSED_RETRY_PAUSES`).

    A reloaded sshd refuses connections for a few milliseconds while it re-executes; that must
    not make the host undo a good change. A slow failure (a blackholed port), a refused login
    or a wrong host key is final at once.
    """
    for pause in (*REFUSED_RETRY_PAUSES, None):
        began = time.monotonic()
        try:
            return transport.reconnect(port=port)
        except (AuthenticationFailed, HostKeyUnknown, HostKeyChanged):
            raise
        except ConnectionFailed:
            quick = time.monotonic() - began < 1.0
            if not quick or pause is None:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


def _open_ready(transport: Transport, port: int | None) -> Transport:
    """A fresh connection (:func:`_reconnect_patiently`) with its root shell started.

    Starting the shell (sshd's session channel: a fork, PAM, the login shell; ~0.15 s) is
    most of the cost of a new connection. Done here, in the background, it overlaps the health
    checks; the disarm later is one short round trip. A shell that does not start is the same
    failure as a connection that does not open: no confirmation.
    """
    fresh = _reconnect_patiently(transport, port)
    try:
        started = fresh.run("true", timeout=60)
    except BaseException:
        fresh.close()
        raise
    if not started.ok:
        _log.info("The new connection's root shell did not start: %s", started.err.strip())
    return fresh


class _FreshConnection:
    """A new connection being opened in the background (see :func:`_open_ready`)."""

    def __init__(self, transport: Transport, port: int | None) -> None:
        self.started = time.monotonic()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hostwiz-confirm")
        self._future: Future[Transport] = self._pool.submit(_open_ready, transport, port)
        self._pool.shutdown(wait=False)

    def result(self) -> Transport:
        """The new connection, or the error that opening it raised."""
        return self._future.result()

    def discard(self) -> None:
        """Not needed after all: wait for it to settle, then close it."""
        with contextlib.suppress(Exception):  # one we no longer need may fail any way
            self._future.result().close()


def _confirm(
    transport: Transport,
    opening: _FreshConnection,
    snapshot_id: str,
    say: Progress,
    move: PortMove | None,
) -> str:
    """Disarm the watchdog over a brand-new connection: proof the admin can still get in.

    Returns why that did not work ("" when confirmed), for the admin and the local journal.
    """
    started = opening.started
    where = f" to the new SSH port {move.after}" if move else ""
    try:
        fresh = opening.result()
    except HostwizError as error:
        from wizard.recovery import confirmation_cause  # it imports this module

        port = move.after if move else getattr(transport, "port", None)
        cause = confirmation_cause(transport, error, port)
        said = f"{error.message} {cause}".strip()
        return f"a new connection{where} failed: {said}"  # said once, in the result
    try:
        result = fresh.run(disarm_script(snapshot_id))
    except HostwizError as error:
        return f"the new connection{where} failed: {error.message}"
    finally:
        fresh.close()
    if result.exit_code == 3:
        return "the confirmation came too late: the host had started undoing the change"
    if result.exit_code == 4:
        return (
            f"the confirmation waited {DISARM_LOCK_WAIT} s for a restore of this snapshot on the "
            "host to finish"
        )
    if not result.ok:
        return f"the confirmation over the new connection failed (exit {result.exit_code})"
    say(Event("confirm", f"Confirmed over a new connection{where} in "
              f"{time.monotonic() - started:.1f} s"))  # fmt: skip
    return ""
