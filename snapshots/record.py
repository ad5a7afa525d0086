"""The script that records a snapshot on the host, and the restore script it leaves there.

Recording happens on the host itself (``cp`` of each file about to change) rather than from the
facts hostwiz read earlier, so the snapshot is exactly what was there the moment before acting,
and ``restore.sh`` needs nothing but ``sh`` and coreutils: an admin locked out of SSH can run it
from the VM console.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from snapshots.layout import (
    ABOUT_FILE,
    ACTIVE_FILE,
    HOSTWIZ_DIR,
    LAST_FILE,
    RESTORE_COMMAND,
    SNAPSHOT_DIR,
    TRANSACTION_LOCK,
    journal_path,
    snapshot_dir,
)
from wizard import __version__
from wizard.actions import Action, RunCommand, resolve_link_script
from wizard.plan import Changeset
from wizard.secrets import mask
from wizard.transport.base import shell_quote


def new_snapshot_id() -> str:
    """``YYYYmmdd-HHMMSS-mmmRRRR``: UTC time, milliseconds, 4 random hex digits.

    Ids sort in the order the changes were made, even within one second (a rollback made
    right after its change must sort after it: which change a rollback put back is read from
    that order, see :func:`snapshots.store.shown_states`).
    """
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}{secrets.token_hex(2)}"


@dataclass(frozen=True)
class UndoCommand:
    index: int
    """Position of the command in the changeset's actions (as in the journal's ``done N``)."""
    script: str
    why: str = ""
    """The command's ``undo_why`` (secrets masked): what the undo does, in plain words."""


def undo_commands(changeset: Changeset) -> list[UndoCommand]:
    return [
        UndoCommand(index, action.undo, mask(action.undo_why, action.secrets))
        for index, action in enumerate(changeset.actions())
        if isinstance(action, RunCommand) and action.undo
    ]


def _described(action: Action) -> str:
    return mask(action.describe(), action.secrets if isinstance(action, RunCommand) else ())


def meta_document(snapshot_id: str, changeset: Changeset, reason: str) -> dict[str, object]:
    move = changeset.ssh_port
    undo = undo_commands(changeset)
    moved = {"ssh_port": {"before": move.before, "after": move.after}} if move else {}
    return {
        "id": snapshot_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": changeset.host,
        "steps": list(changeset.steps),
        "reason": reason,
        "paths": list(changeset.touched_paths()),
        "actions": [_described(action) for action in changeset.actions()],
        "undo": [item.index for item in undo],
        # What each undo does, in words (parallel to "undo"; "" where the command gave none):
        # a rollback's preview and log say this rather than a command's number.
        "undo_why": [item.why for item in undo],
        "hostwiz": __version__,
        **moved,
    }


def _heredoc(target: str, content: str) -> str:
    marker = "HOSTWIZ_EOF_" + secrets.token_hex(6)
    return f"cat > {target} <<'{marker}'\n{content}\n{marker}\n"


def restore_script(snapshot_id: str, paths: tuple[str, ...], undo: list[UndoCommand]) -> str:
    """The self-contained script that puts every recorded path back and runs the undos.

    It holds the snapshot's lock (``flock`` on ``lock`` in the snapshot folder) from before it
    decides until it is done, and so does the confirmation (:func:`wizard.transaction.
    disarm_script`): a confirmation either lands before the safety timer decides (the timer then
    sees it and does nothing) or after the restore (and is refused as too late). The kernel drops
    an flock with its holder, so a restore killed halfway (reboot, power loss, kill -9) never
    blocks the next one. Children that may outlive this script (undo scripts, daemons they
    start) do not inherit the lock.
    """
    snap = snapshot_dir(snapshot_id)
    lines = [
        "#!/bin/sh",
        f"# hostwiz snapshot {snapshot_id}: puts back what was there before this change.",
        f"# From the VM console: {RESTORE_COMMAND} {snapshot_id}",
        "set -u",
        f"SNAP={snap}",
        'reason="${1:-manual}"',
        'log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >> "$SNAP/journal"; }',
        'exec 9>>"$SNAP/lock"',
        "# By hand: give a confirmation in progress a moment; the timer and hostwiz wait longer.",
        'if [ "$reason" = manual ]; then wait=10; else wait=600; fi',
        'if ! flock -w "$wait" 9; then',
        '  echo "a restore of this snapshot is already running (or hostwiz is confirming it);'
        ' try again in a minute" >&2; exit 75',
        "fi",
        "# The timer undoes only a change nobody confirmed; no automatic restore repeats one",
        "# that finished while it waited for the lock (by hand, a restore always runs).",
        'if [ "$reason" = timeout ] && grep -q " confirmed$" "$SNAP/journal"; then exit 0; fi',
        'if [ "$reason" != manual ] && tail -n 1 "$SNAP/journal" | grep -q " reverted ("; then',
        '  echo "snapshot ' + snapshot_id + ' was already restored"; exit 0',
        "fi",
        'log "reverting ($reason)"',
        "# A restore run by hand also stops this change's safety timer (unless it is the timer).",
        'w=$(cat "$SNAP/watchdog.pid" 2>/dev/null)',
        'if [ -n "$w" ] && [ "$w" != "$$" ] && grep -q "hostwiz-watchdog" "/proc/$w/cmdline" \\',
        '    2>/dev/null; then kill -TERM -- -"$w" 2>/dev/null || kill -TERM "$w"; fi',
        "failed=0",
        "# files/N.meta: mode uid gid owner group (numeric ids: an owner without a name still",
        "# chowns). A symbolic link is written through to its target, never replaced.",
        "restore_path() {",
        '  n=$1; p=$2; saved="$SNAP/files/$n"',
        "  " + resolve_link_script("p", "return 1"),
        '  if [ -f "$saved.meta" ]; then',
        '    set -- $(cat "$saved.meta"); d=$(dirname "$p"); mkdir -p "$d"',
        '    t=$(mktemp "$d/.hostwiz-restore.XXXXXX") || return 1',
        '    if cat "$saved" > "$t" && chown "$2:$3" "$t" && chmod "$1" "$t" && sync "$t" \\',
        '        && mv -f "$t" "$p"; then return 0; fi',
        '    rm -f "$t"; return 1',
        "  fi",
        '  rm -f "$p"',
        '  if [ -f "$saved.newdirs" ]; then',
        '    while read -r d; do rmdir "$d" 2>/dev/null; done < "$saved.newdirs"',
        "  fi",
        "  return 0",
        "}",
    ]
    for number, path in enumerate(paths):
        lines.append(
            f"restore_path {number} {shell_quote(path)} || "
            f"{{ failed=1; log {shell_quote(f'could not restore {path}')}; }}"
        )
    for item in reversed(undo):
        failed = f"could not {item.why or 'undo command ' + str(item.index)} (undo-{item.index}.sh)"
        lines.append(
            f'if grep -q " start {item.index}$" "$SNAP/journal"; then '
            f'sh "$SNAP/undo-{item.index}.sh" >> "$SNAP/restore.log" 2>&1 9>&- || '
            f"{{ failed=1; log {shell_quote(failed)}; }}; fi"
        )
    lines += [
        'if [ $failed = 0 ]; then log "reverted ($reason)"; echo "restored snapshot '
        + snapshot_id
        + '"; else log "revert incomplete ($reason)"; '
        'echo "some parts could not be restored: see $SNAP/journal" >&2; exit 1; fi',
    ]
    return "\n".join(lines) + "\n"


RESTORE_WRAPPER = f"""#!/bin/sh
# Put a host back as it was before a hostwiz change (written by hostwiz).
#   {RESTORE_COMMAND}          list the snapshots, newest last
#   {RESTORE_COMMAND} LAST     undo the most recent change
#   {RESTORE_COMMAND} ID       undo the change recorded as snapshot ID
if [ $# -eq 0 ]; then
  n=0
  echo "hostwiz snapshots on this host, newest last:"; echo
  # Oldest first, by when each was recorded (two may share an ID's second).
  for m in $(ls -1tr {SNAPSHOT_DIR}/*/meta.json 2>/dev/null); do
    d=$(dirname "$m"); n=$((n + 1)); id=$(basename "$d")
    if [ "$id" = "$(cat {LAST_FILE} 2>/dev/null)" ]; then echo "$id  (LAST)"; else echo "$id"; fi
    if [ -f "$d/{ABOUT_FILE}" ]; then sed 's/^/    /' "$d/{ABOUT_FILE}"
    else echo "    made:  $(sed -n 's/^ *"created": "\\([^"]*\\)".*/\\1/p' "$d/meta.json")"; fi
    last=$(grep . "$d/journal" 2>/dev/null | tail -n 1)
    case "${{last#* }}" in
      confirmed) state="kept (confirmed)" ;;
      "reverted ("*) state="undone ${{last#* reverted }}" ;;
      "reverting ("*) state="undo started ${{last#* reverting }}, not finished" ;;
      "revert incomplete"*) state="undo incomplete: see $d/journal" ;;
      "") state="unknown (no journal)" ;;
      *) state="applied, not confirmed: its safety timer may still undo it" ;;
    esac
    echo "    last:  $state, at $(echo "${{last%% *}}" | sed 's/T/ /; s/Z$/ UTC/')"
    echo
  done
  if [ $n = 0 ]; then echo "(none)"; exit 0; fi
  echo "Undo one: {RESTORE_COMMAND} ID   (or LAST for $(cat {LAST_FILE} 2>/dev/null))"
  exit 0
fi
id=$1
[ "$id" = LAST ] && id=$(cat {LAST_FILE})
if [ ! -f {SNAPSHOT_DIR}/"$id"/restore.sh ]; then
  echo "no snapshot $id on this host; run {RESTORE_COMMAND} with no argument to list them" >&2
  exit 2
fi
exec sh {SNAPSHOT_DIR}/"$id"/restore.sh manual
"""


def about_text(snapshot_id: str, changeset: Changeset, reason: str) -> str:
    """What the console's snapshot list shows for this snapshot (plain text, no JSON)."""
    meta = meta_document(snapshot_id, changeset, reason)
    made = str(meta["created"]).replace("T", " ").replace("Z", " UTC")
    lines = [
        f"made:  {made} (hostwiz {reason})",
        f"steps: {', '.join(changeset.steps) or '-'}",
        f"files: {', '.join(changeset.touched_paths()) or '-'}",
    ]
    return "\n".join(lines)


BUSY_EXIT = 73
"""Exit status of :func:`claim_script` when another change holds the host."""


def claim_script(snapshot_id: str) -> str:
    """Make this change the host's only one in progress, or print ``hostwiz-busy ID TIME``.

    A change is in progress from its record to its confirmation or undo: exactly while its
    safety timer lives (the watchdog process; it restores in that same process) or a restore of
    it runs (it holds the snapshot's flock). ``ACTIVE`` names the latest change; a short flock on
    ``transaction.lock`` makes checking and claiming one step, held by the recording shell until
    the timer is armed. Nothing here outlives a dead hostwiz: its timer ends at the deadline.
    """
    return f"""command -v flock >/dev/null || {{ echo "no flock (util-linux)" >&2; exit 1; }}
umask 077
mkdir -p {HOSTWIZ_DIR}
exec 8>>{TRANSACTION_LOCK}
flock -w 60 8 || {{ echo "hostwiz-busy unknown unknown"; exit {BUSY_EXIT}; }}
a=$(cat {ACTIVE_FILE} 2>/dev/null || true)
if [ -n "$a" ] && [ -d {SNAPSHOT_DIR}/"$a" ]; then
  s={SNAPSHOT_DIR}/$a; busy=
  w=$(cat "$s/watchdog.pid" 2>/dev/null || true)
  if [ -n "$w" ] && tr '\\0' ' ' < "/proc/$w/cmdline" 2>/dev/null \
      | grep -q -e "hostwiz-watchdog-$a" -e "$s/restore.sh"; then busy=1; fi
  if [ -z "$busy" ] && ! flock -n "$s/lock" true 2>/dev/null; then busy=1; fi
  if [ -n "$busy" ]; then
    echo "hostwiz-busy $a $(sed -n '1s/ .*//p' "$s/journal" 2>/dev/null)"; exit {BUSY_EXIT}
  fi
fi
echo {snapshot_id} > {ACTIVE_FILE}
"""


def record_script(snapshot_id: str, changeset: Changeset, reason: str = "apply") -> str:
    """Create the snapshot folder on the host; print it as base64 tar for the local copy."""
    snap = snapshot_dir(snapshot_id)
    paths = changeset.touched_paths()
    undo = undo_commands(changeset)
    parts = [
        claim_script(snapshot_id),
        "set -e",
        "umask 077",
        f"mkdir -p {SNAPSHOT_DIR} {snap}/files",
        f"chmod 700 {SNAPSHOT_DIR.rsplit('/', 1)[0]} {SNAPSHOT_DIR} {snap}",
    ]
    for number, path in enumerate(paths):
        quoted = shell_quote(path)
        saved = f"{snap}/files/{number}"
        parts.append(
            f"if [ -f {quoted} ]; then cp -L {quoted} {saved}; "
            f"stat -L -c '%a %u %g %U %G' {quoted} > {saved}.meta; "
            f'else d=$(dirname {quoted}); while [ ! -d "$d" ]; do '
            f'echo "$d" >> {saved}.newdirs; d=$(dirname "$d"); done; fi'
        )
    for item in undo:
        parts.append(_heredoc(f"{snap}/undo-{item.index}.sh", item.script))
    meta = json.dumps(meta_document(snapshot_id, changeset, reason), indent=2)
    parts.append(_heredoc(f"{snap}/meta.json", meta))
    parts.append(_heredoc(f"{snap}/{ABOUT_FILE}", about_text(snapshot_id, changeset, reason)))
    parts.append(_heredoc(f"{snap}/restore.sh", restore_script(snapshot_id, paths, undo)))
    parts.append(f"chmod 700 {snap}/restore.sh")
    parts.append(_heredoc(RESTORE_COMMAND, RESTORE_WRAPPER))
    parts.append(f"chmod 700 {RESTORE_COMMAND}")
    parts.append(f"echo {snapshot_id} > {LAST_FILE}")
    parts.append(f'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) recorded" >> {journal_path(snapshot_id)}')
    parts.append(f"tar -C {SNAPSHOT_DIR} -cf - {snapshot_id} | base64 -w0")
    parts.append("echo")
    return "\n".join(parts) + "\n"
