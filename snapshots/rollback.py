"""Rolling back, shown as a plan first like every other change.

The plan compares each recorded before-state with what the host holds now, so only what differs
is rewritten, and rolling back a second time plans nothing. Undo commands (such as restarting a
service on the restored configuration, or leaving a swarm) run when some file really changes
back, or when the change is still in effect: confirmed, and put back by no later rollback. A
change made of commands alone (docker network create, gpasswd) has no file to compare, so its
state decides; once rolled back, it is no longer in effect and a second rollback plans nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snapshots.layout import RESTORE_COMMAND, snapshot_dir
from snapshots.store import (
    SnapshotDamaged,
    decode_journal,
    decode_meta,
    list_snapshots,
    shown_states,
    unbase64,
)
from wizard.actions import Action, FileState, RemoveFile, RunCommand, WriteFile
from wizard.errors import HostwizError
from wizard.facts import file_fact, gather, owner_names
from wizard.plan import Plan, PortMove
from wizard.transport.base import Transport, hostwiz_command, shell_quote

ALWAYS_SECRET = frozenset({"/etc/shadow", "/etc/gshadow"})
"""Files whose content (password hashes) a preview never shows, whatever their mode."""


def _read_snapshot_script(snapshot_id: str) -> str:
    snap = snapshot_dir(snapshot_id)
    return f"""[ -f {snap}/meta.json ] || exit 3
printf 'meta %s\\n' "$(base64 -w0 {snap}/meta.json)"
printf 'journal %s\\n' "$(base64 -w0 {snap}/journal 2>/dev/null)"
for f in {snap}/files/* {snap}/undo-*.sh; do
  [ -f "$f" ] && printf 'file %s %s\\n' "${{f#{snap}/}}" "$(base64 -w0 "$f")"
done
true"""


def _damaged(transport: Transport, snapshot_id: str, what: str) -> SnapshotDamaged:
    return SnapshotDamaged(
        f"snapshot {snapshot_id} on {transport.host_label} is damaged: {what}. hostwiz cannot "
        "tell what it would put back, so it plans no rollback from it; nothing was changed.",
        f"Look at {snapshot_dir(snapshot_id)} on the host. Its own restore script may still "
        f"work from the VM console ({RESTORE_COMMAND} {snapshot_id}); other snapshots are not "
        "affected (hostwiz snapshots lists them).",
    )


def _file_meta(raw: bytes) -> tuple[int, str, str] | None:
    """``files/N.meta`` ("mode uid gid owner group"; older snapshots: "mode owner group") as
    mode, owner and group (names, or numbers where the host had no name), or None when it is
    damaged."""
    try:
        mode, *ids = raw.decode("utf-8").split()
        number = int(mode, 8)
    except (UnicodeDecodeError, ValueError):
        return None
    if len(ids) not in (2, 4) or not 0 <= number <= 0o7777:
        return None
    owner, group = owner_names(ids[2:] + ids[:2] if len(ids) == 4 else ids)
    return number, owner, group


def _still_in_effect(transport: Transport, snapshot_id: str) -> bool:
    """Whether the change is confirmed and no later confirmed rollback put it back."""
    return shown_states(list_snapshots(transport)).get(snapshot_id) == "confirmed"


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def undo_words(meta: Mapping[str, Any], index: int) -> str:
    """What running the undo of the change's command ``index`` does, in the clearest words the
    snapshot holds: the command's own words for its undo ("leave the swarm again"), else the
    words the change was applied with ('undo "start squid at every boot"'; older snapshots
    record no undo words), never just a number."""
    undo, whys = meta.get("undo", []), meta.get("undo_why", [])
    if index in undo and len(whys) == len(undo) and whys[undo.index(index)].strip():
        return str(whys[undo.index(index)]).strip()
    actions = meta.get("actions", [])
    said = actions[index].strip().splitlines() if 0 <= index < len(actions) else []
    if said:
        return f'undo "{said[0]}"'
    return f"run the undo script the change left (undo-{index}.sh; it says no more about it)"


def rollback_plan(transport: Transport, snapshot_id: str) -> Plan:
    if not snapshot_id.replace("-", "").isalnum():
        raise HostwizError(f"{snapshot_id!r} is not a snapshot id", "List them with snapshots.")
    result = transport.run(_read_snapshot_script(snapshot_id))
    if result.exit_code == 3:
        raise HostwizError(
            f"there is no snapshot {snapshot_id} on {transport.host_label}.",
            f"List them with: {hostwiz_command(transport, 'snapshots')}",
        )
    saved: dict[str, bytes] = {}
    meta_raw = journal_raw = b""
    for line in result.out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "meta":
            meta_raw = unbase64(rest)
        elif kind == "journal":
            journal_raw = unbase64(rest)
        elif kind == "file":
            name, _, data = rest.partition(" ")
            saved[name] = unbase64(data)
    meta, problem = decode_meta(meta_raw)
    journal, journal_problem = decode_journal(journal_raw)
    if problem or journal_problem:
        # Without the journal, hostwiz cannot tell which commands ran (and need their undo).
        raise _damaged(transport, snapshot_id, problem or journal_problem)
    paths = [str(p) for p in meta.get("paths", [])]
    current = gather(transport, [file_fact(path) for path in paths])
    actions: list[Action] = []
    before: list[FileState] = []
    for number, path in enumerate(paths):
        now = current[file_fact(path)]
        before.append(now)
        key = f"files/{number}"
        if f"{key}.meta" in saved:
            recorded = _file_meta(saved[f"{key}.meta"])
            if recorded is None:
                raise _damaged(transport, snapshot_id, f"{key}.meta (about {path}) is unreadable")
            mode, owner, group = recorded
            content = saved.get(key, b"")
            wanted = FileState(path, True, content, mode, owner, group)
            if now != wanted:
                # A key put back must stay as unseen as when it was first written.
                secret = b"PRIVATE KEY" in content or not mode & 0o077 or path in ALWAYS_SECRET
                put_back = WriteFile(path, content, mode, owner, group, why="put back",
                                     secret=secret, restores=True)  # fmt: skip
                actions.append(put_back)
        elif now.exists:
            actions.append(RemoveFile(path, why="did not exist before", restores=True))
            newdirs = _text(saved.get(f"{key}.newdirs", b""))
            if newdirs is None:
                raise _damaged(transport, snapshot_id, f"{key}.newdirs is not UTF-8 text")
            created = newdirs.split()
            if created:
                folders = " ".join(shell_quote(folder) for folder in created)
                actions.append(
                    RunCommand(
                        f"rmdir --ignore-fail-on-non-empty {folders}",
                        why="remove the folders the change created, if empty",
                    )
                )
    undo_scripts = meta.get("undo", [])
    if actions or (undo_scripts and _still_in_effect(transport, snapshot_id)):
        started = {line.rsplit(" ", 1)[1] for line in journal.splitlines() if " start " in line}
        for index in reversed(undo_scripts):
            script = _text(saved.get(f"undo-{index}.sh", b""))
            if script is None:
                raise _damaged(transport, snapshot_id, f"undo-{index}.sh is not UTF-8 text")
            if str(index) in started and script:
                actions.append(RunCommand(script, why=undo_words(meta, index)))
    # A change that moved SSH moves it back: the confirmation goes to the old port.
    moved = meta.get("ssh_port")
    ssh_port = PortMove(moved["after"], moved["before"]) if moved and actions else None
    return Plan(
        f"rollback {snapshot_id}",
        tuple(actions),
        before=tuple(before),
        notes=(f"Puts back what snapshot {snapshot_id} recorded ({', '.join(paths)}).",),
        ssh_port=ssh_port,
        rolls_back=snapshot_id,
        rolled_back_steps=tuple(str(step) for step in meta.get("steps", [])),
    )
