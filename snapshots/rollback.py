"""Rolling back, shown as a plan first like every other change.

The plan compares each recorded before-state with what the host holds now, so only what differs
is rewritten, and rolling back a second time plans nothing. Undo commands (such as restarting a
service on the restored configuration) run only when some file really changes back.
"""

from __future__ import annotations

import base64
import json

from snapshots.layout import snapshot_dir
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
    meta: dict[str, object] = {}
    journal = ""
    for line in result.out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "meta":
            meta = json.loads(base64.b64decode(rest))
        elif kind == "journal":
            journal = base64.b64decode(rest).decode()
        elif kind == "file":
            name, _, data = rest.partition(" ")
            saved[name] = base64.b64decode(data)
    paths = [str(p) for p in meta.get("paths", [])]  # type: ignore[attr-defined]
    current = gather(transport, [file_fact(path) for path in paths])
    actions: list[Action] = []
    before: list[FileState] = []
    for number, path in enumerate(paths):
        now = current[file_fact(path)]
        before.append(now)
        key = f"files/{number}"
        if f"{key}.meta" in saved:
            mode, *ids = saved[f"{key}.meta"].decode().split()
            # "mode uid gid owner group" (older snapshots: "mode owner group")
            owner, group = owner_names(ids[2:] + ids[:2] if len(ids) >= 4 else ids)
            content = saved.get(key, b"")
            wanted = FileState(path, True, content, int(mode, 8), owner, group)
            if now != wanted:
                # A key put back must stay as unseen as when it was first written.
                secret = (
                    b"PRIVATE KEY" in content or not int(mode, 8) & 0o077 or path in ALWAYS_SECRET
                )
                actions.append(
                    WriteFile(path, content, int(mode, 8), owner, group, why="put back",
                              secret=secret)
                )  # fmt: skip
        elif now.exists:
            actions.append(RemoveFile(path, why="did not exist before"))
            created = saved.get(f"{key}.newdirs", b"").decode().split()
            if created:
                folders = " ".join(shell_quote(folder) for folder in created)
                actions.append(
                    RunCommand(
                        f"rmdir --ignore-fail-on-non-empty {folders}",
                        why="remove the folders the change created, if empty",
                    )
                )
    if actions:
        started = {line.rsplit(" ", 1)[1] for line in journal.splitlines() if " start " in line}
        for index in reversed([int(i) for i in meta.get("undo", [])]):  # type: ignore[attr-defined]
            script = saved.get(f"undo-{index}.sh", b"").decode()
            if str(index) in started and script:
                actions.append(RunCommand(script, why=f"undo action {index} of {snapshot_id}"))
    # A change that moved SSH moves it back: the confirmation goes to the old port.
    moved = meta.get("ssh_port")
    ssh_port = (
        PortMove(int(moved["after"]), int(moved["before"]))  # type: ignore[index]
        if moved and actions
        else None
    )
    return Plan(
        f"rollback {snapshot_id}",
        tuple(actions),
        before=tuple(before),
        notes=(f"Puts back what snapshot {snapshot_id} recorded ({', '.join(paths)}).",),
        ssh_port=ssh_port,
    )
