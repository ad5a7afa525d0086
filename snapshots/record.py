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

from snapshots.layout import LAST_FILE, RESTORE_COMMAND, SNAPSHOT_DIR, journal_path, snapshot_dir
from wizard import __version__
from wizard.actions import RunCommand
from wizard.plan import Changeset
from wizard.transport.base import shell_quote


def new_snapshot_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class UndoCommand:
    index: int
    """Position of the command in the changeset's actions (as in the journal's ``done N``)."""
    script: str


def undo_commands(changeset: Changeset) -> list[UndoCommand]:
    return [
        UndoCommand(index, action.undo)
        for index, action in enumerate(changeset.actions())
        if isinstance(action, RunCommand) and action.undo
    ]


def meta_document(snapshot_id: str, changeset: Changeset, reason: str) -> dict[str, object]:
    move = changeset.ssh_port
    moved = {"ssh_port": {"before": move.before, "after": move.after}} if move else {}
    return {
        "id": snapshot_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": changeset.host,
        "steps": list(changeset.steps),
        "reason": reason,
        "paths": list(changeset.touched_paths()),
        "actions": [action.describe() for action in changeset.actions()],
        "undo": [undo.index for undo in undo_commands(changeset)],
        "hostwiz": __version__,
        **moved,
    }


def _heredoc(target: str, content: str) -> str:
    marker = "HOSTWIZ_EOF_" + secrets.token_hex(6)
    return f"cat > {target} <<'{marker}'\n{content}\n{marker}\n"


def restore_script(snapshot_id: str, paths: tuple[str, ...], undo: list[UndoCommand]) -> str:
    """The self-contained script that puts every recorded path back and runs the undos."""
    snap = snapshot_dir(snapshot_id)
    lines = [
        "#!/bin/sh",
        f"# hostwiz snapshot {snapshot_id}: puts back what was there before this change.",
        f"# From the VM console: {RESTORE_COMMAND} {snapshot_id}",
        "set -u",
        f"SNAP={snap}",
        'reason="${1:-manual}"',
        'log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >> "$SNAP/journal"; }',
        'if ! mkdir "$SNAP/.restoring" 2>/dev/null; then',
        '  echo "a restore of this snapshot is already running" >&2; exit 75',
        "fi",
        "trap 'rmdir \"$SNAP/.restoring\"' EXIT",
        'log "reverting ($reason)"',
        "# A restore run by hand also stops this change's safety timer (unless it is the timer).",
        'w=$(cat "$SNAP/watchdog.pid" 2>/dev/null)',
        'if [ -n "$w" ] && [ "$w" != "$$" ] && grep -q "hostwiz-watchdog" "/proc/$w/cmdline" \\',
        '    2>/dev/null; then kill -TERM -- -"$w" 2>/dev/null || kill -TERM "$w"; fi',
        "failed=0",
        "restore_path() {",
        '  n=$1; p=$2; saved="$SNAP/files/$n"',
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
            f"{{ failed=1; log 'could not restore {path}'; }}"
        )
    for item in reversed(undo):
        lines.append(
            f'if grep -q " start {item.index}$" "$SNAP/journal"; then '
            f'sh "$SNAP/undo-{item.index}.sh" >> "$SNAP/restore.log" 2>&1 || '
            f'{{ failed=1; log "undo of action {item.index} failed"; }}; fi'
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
  for d in {SNAPSHOT_DIR}/*/; do
    [ -f "$d/meta.json" ] && echo "$(basename "$d")  $(tail -n 1 "$d/journal" 2>/dev/null)"
  done
  exit 0
fi
id=$1
[ "$id" = LAST ] && id=$(cat {LAST_FILE})
exec sh {SNAPSHOT_DIR}/"$id"/restore.sh manual
"""


def record_script(snapshot_id: str, changeset: Changeset, reason: str = "apply") -> str:
    """Create the snapshot folder on the host; print it as base64 tar for the local copy."""
    snap = snapshot_dir(snapshot_id)
    paths = changeset.touched_paths()
    undo = undo_commands(changeset)
    parts = [
        "set -e",
        "umask 077",
        f"mkdir -p {SNAPSHOT_DIR} {snap}/files",
        f"chmod 700 {SNAPSHOT_DIR.rsplit('/', 1)[0]} {SNAPSHOT_DIR} {snap}",
    ]
    for number, path in enumerate(paths):
        quoted = shell_quote(path)
        saved = f"{snap}/files/{number}"
        parts.append(
            f"if [ -f {quoted} ]; then cp {quoted} {saved}; "
            f"stat -c '%a %U %G' {quoted} > {saved}.meta; "
            f'else d=$(dirname {quoted}); while [ ! -d "$d" ]; do '
            f'echo "$d" >> {saved}.newdirs; d=$(dirname "$d"); done; fi'
        )
    for item in undo:
        parts.append(_heredoc(f"{snap}/undo-{item.index}.sh", item.script))
    meta = json.dumps(meta_document(snapshot_id, changeset, reason), indent=2)
    parts.append(_heredoc(f"{snap}/meta.json", meta))
    parts.append(_heredoc(f"{snap}/restore.sh", restore_script(snapshot_id, paths, undo)))
    parts.append(f"chmod 700 {snap}/restore.sh")
    parts.append(_heredoc(RESTORE_COMMAND, RESTORE_WRAPPER))
    parts.append(f"chmod 700 {RESTORE_COMMAND}")
    parts.append(f"echo {snapshot_id} > {LAST_FILE}")
    parts.append(f'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) recorded" >> {journal_path(snapshot_id)}')
    parts.append(f"tar -C {SNAPSHOT_DIR} -cf - {snapshot_id} | base64 -w0")
    parts.append("echo")
    return "\n".join(parts) + "\n"
