"""Finding snapshots: on the host (the source of truth) and the local copies kept beside them."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from snapshots.layout import SNAPSHOT_DIR
from wizard.errors import HostwizError
from wizard.transport.base import Transport

SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@-]+")


class SnapshotDamaged(HostwizError):
    title = "Damaged snapshot"


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    created: str
    steps: tuple[str, ...]
    paths: tuple[str, ...]
    actions: tuple[str, ...]
    state: str
    """The journal's last word: recorded, armed, done N, confirmed, reverted (...), ..."""
    reason: str = "apply"
    damaged: str = ""
    """Why the snapshot's meta.json or journal cannot be trusted ("" when it can)."""

    @property
    def reverted(self) -> bool:
        return "reverted" in self.state


def _last_event(journal: str) -> str:
    lines = [line for line in journal.splitlines() if line.strip()]
    if not lines:
        return "unknown"
    return lines[-1].split(" ", 1)[1] if " " in lines[-1] else lines[-1]


def unbase64(text: str) -> bytes:
    """Bytes from the base64 a listing script printed ("-" or anything broken: none)."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _is_list_of(value: object, kind: type) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, kind) and not isinstance(item, bool) for item in value
    )


def meta_problem(meta: object) -> str:
    """What is wrong with a parsed meta.json ("" when hostwiz can use it)."""
    if not isinstance(meta, dict):
        return "meta.json is not a JSON object"
    for key in ("id", "created", "reason"):
        if key in meta and not isinstance(meta[key], str):
            return f'meta.json\'s "{key}" is not text'
    for key in ("steps", "paths", "actions"):
        if not _is_list_of(meta.get(key, []), str):
            return f'meta.json\'s "{key}" is not a list of text'
    if not _is_list_of(meta.get("undo", []), int):
        return 'meta.json\'s "undo" is not a list of numbers'
    moved = meta.get("ssh_port")
    if moved is not None and not (
        isinstance(moved, dict)
        and all(
            isinstance(moved.get(key), int)
            and not isinstance(moved.get(key), bool)
            and 1 <= moved[key] <= 65535
            for key in ("before", "after")
        )
    ):
        return 'meta.json\'s "ssh_port" is not a pair of ports'
    return ""


def decode_meta(raw: bytes) -> tuple[dict[str, Any], str]:
    """meta.json's content and "", or {} and what is wrong with it (never raises)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}, "meta.json is not UTF-8 text"
    if not text.strip():
        return {}, "meta.json is empty"
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as error:
        return {}, f"meta.json is not valid JSON ({error.msg} at line {error.lineno})"
    problem = meta_problem(meta)
    return ({} if problem else meta), problem


def decode_journal(raw: bytes) -> tuple[str, str]:
    """The journal as text and "", or as far as it reads and what is wrong with it."""
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), "its journal is not UTF-8 text"


def snapshot_info(folder: str, meta_raw: bytes, journal_raw: bytes) -> SnapshotInfo:
    """One snapshot from its folder name and files; a damaged one says why (never raises)."""
    meta, problem = decode_meta(meta_raw)
    journal, journal_problem = decode_journal(journal_raw)
    state = _last_event(journal)
    if problem:
        return SnapshotInfo(folder, "", (), (), (), state, reason="unknown", damaged=problem)
    if str(meta.get("id", folder)) != folder:
        journal_problem = f"meta.json names another snapshot ({meta['id']})"
    return SnapshotInfo(
        id=folder,
        created=str(meta.get("created", "")),
        steps=tuple(meta.get("steps", ())),
        paths=tuple(meta.get("paths", ())),
        actions=tuple(meta.get("actions", ())),
        state=state,
        reason=str(meta.get("reason", "apply")),
        damaged=journal_problem,
    )


def parse_listing(output: str) -> list[SnapshotInfo]:
    """Parse the output of :data:`LIST_SCRIPT`: ``snapshot META JOURNAL FOLDER`` per snapshot,
    the files as base64. Damaged snapshots are listed too, each saying what is wrong."""
    snapshots = []
    for line in output.splitlines():
        kind, _, rest = line.partition(" ")
        fields = rest.split(" ", 2)
        if kind != "snapshot" or len(fields) != 3 or not fields[2]:
            continue
        meta, journal, folder = fields
        snapshots.append(snapshot_info(folder, unbase64(meta), unbase64(journal)))
    return sorted(snapshots, key=lambda info: info.id)


LIST_SCRIPT = f"""for d in {SNAPSHOT_DIR}/*/; do
  [ -f "$d/meta.json" ] || continue
  m=$(base64 -w0 "$d/meta.json" 2>/dev/null); j=$(base64 -w0 "$d/journal" 2>/dev/null)
  n=${{d%/}}; printf 'snapshot %s %s %s\\n' "${{m:--}}" "${{j:--}}" "${{n##*/}}"
done
true"""


def list_snapshots(transport: Transport) -> list[SnapshotInfo]:
    return parse_listing(transport.run(LIST_SCRIPT).out)


def local_root() -> Path:
    return Path(platformdirs.user_state_dir("hostwiz")) / "snapshots"


def save_local_copy(host: str, tar_base64: str) -> Path | None:
    """Unpack the host's snapshot folder under the XDG state dir (0700: it may hold secrets)."""
    if not tar_base64.strip():
        return None
    target = local_root() / SAFE_NAME.sub("_", host)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for folder in (local_root(), target):
        folder.chmod(0o700)
    data = base64.b64decode(tar_base64.strip())
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        archive.extractall(target, filter="data")
    return target / names[0].split("/")[0] if names else None
