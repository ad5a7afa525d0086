"""Finding snapshots: on the host (the source of truth) and the local copies kept beside them."""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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
    for key in ("steps", "paths", "actions", "undo_why"):
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


ROLLBACK_PREFIX = "rollback "
"""A rollback's changeset has one plan, named ``rollback SNAPSHOT_ID``."""


def shown_states(snapshots: Sequence[SnapshotInfo]) -> dict[str, str]:
    """Each snapshot's state as the admin should read it, by id: a change that a later,
    confirmed rollback put back is ``rolled back``, whatever its own journal's last
    word ("confirmed"). A rollback that was itself rolled back puts nothing back."""
    undone: dict[str, str] = {}
    shown: dict[str, str] = {}
    for info in sorted(snapshots, key=lambda item: item.id, reverse=True):
        if info.id in undone:
            shown[info.id] = "rolled back"
            continue
        shown[info.id] = info.state
        if info.state == "confirmed":
            for step in info.steps:
                if step.startswith(ROLLBACK_PREFIX):
                    undone.setdefault(step.removeprefix(ROLLBACK_PREFIX), info.id)
    return shown


def stopped_at(state: str) -> tuple[str, int] | None:
    """Where a change that did not finish stopped, from its journal's last word: ("in" or
    "after", the step's number counted from 1; the journal's ``start N``/``done N`` count from
    0), ("before", 1) when no step had started (``recorded``, ``armed``); None otherwise."""
    word, _, rest = state.partition(" ")
    if word in ("done", "start") and rest.isdigit():
        return ("after" if word == "done" else "in"), int(rest) + 1
    if word in ("recorded", "armed"):
        return "before", 1
    return None


def state_words(state: str, actions: Sequence[str] = ()) -> str:
    """A shown state (:func:`shown_states`) in words for the admin: "interrupted after step 2
    of 4", "put back (timeout)", not the journal's "done 1" or "reverted (timeout)"."""
    word, _, rest = state.partition(" ")
    where = stopped_at(state)
    if where is not None:
        when, step = where
        if when == "before":
            return "interrupted before its first step"
        of = f" of {len(actions)}" if actions else ""
        return f"interrupted {when} step {step}{of}"
    if state == "re-armed after a reboot":
        return "not confirmed (the host was rebooted; its timer puts it back)"
    if word == "reverting":
        return f"being put back {rest}, not finished".replace("  ", " ")
    if word == "reverted":
        return f"put back {rest}".strip()
    return state


def applied_steps(snapshots: Sequence[SnapshotInfo]) -> frozenset[str]:
    """The steps a confirmed change applied that no rollback put back since."""
    shown = shown_states(snapshots)
    return frozenset(
        step
        for info in snapshots
        if shown[info.id] == "confirmed"
        for step in info.steps
        if not step.startswith(ROLLBACK_PREFIX)
    )


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
    """Unpack the host's snapshot folder under the XDG state dir (0700: it may hold secrets).

    Raises :class:`HostwizError` when the archive is garbled or unsafe, or cannot be written.
    """
    if not tar_base64.strip():
        return None
    target = local_root() / SAFE_NAME.sub("_", host)
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in (local_root(), target):
            folder.chmod(0o700)
        data = base64.b64decode(tar_base64.strip(), validate=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            names = _extract_plain(archive, target)
    except UnsafeSnapshotArchive as error:
        raise HostwizError(
            f"the snapshot archive the host sent is unsafe to unpack: {error}",
            "A snapshot folder holds only plain files and folders; look at "
            f"{SNAPSHOT_DIR} on the host for what else is there.",
        ) from error
    except (OSError, tarfile.TarError, binascii.Error, ValueError) as error:
        raise HostwizError(
            f"could not keep a local copy of the snapshot in {target}: {error}",
            f"Check the free space and permissions of {local_root()}.",
        ) from error
    return target / names[0] if names else None


def _extract_plain(archive: tarfile.TarFile, target: Path) -> list[str]:
    """Extract an archive of plain folders and files only; returns its top-level names.

    ``TarFile.extractall(filter="data")`` exists only from Python 3.11.4 (Debian 12 has
    3.11.2), so every member is checked here, the same on every Python: a relative path with
    no ``..``, and a regular file or a folder (a snapshot holds nothing else; links, devices
    and fifos are refused). Files are written 0600 and folders 0700, never through a link.
    """
    members = archive.getmembers()
    for member in members:
        parts = PurePosixPath(member.name).parts
        if member.name.startswith("/") or not parts or ".." in parts:
            raise UnsafeSnapshotArchive(f"{member.name!r} is not a plain relative path")
        if not (member.isfile() or member.isdir()):
            raise UnsafeSnapshotArchive(f"{member.name!r} is not a plain file or folder")
    root = target.resolve()
    tops: list[str] = []
    for member in members:
        parts = PurePosixPath(member.name).parts
        destination = target.joinpath(*parts)
        if not destination.parent.resolve().is_relative_to(root):  # a link from earlier
            raise UnsafeSnapshotArchive(f"{member.name!r} would land outside {target}")
        if parts[0] not in tops:
            tops.append(parts[0])
        if member.isdir():
            destination.mkdir(parents=True, exist_ok=True, mode=0o700)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        source = archive.extractfile(member)
        assert source is not None  # a regular file always has content
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with source, os.fdopen(os.open(destination, flags, 0o600), "wb") as sink:
            shutil.copyfileobj(source, sink)
    return tops


class UnsafeSnapshotArchive(tarfile.TarError):
    """The host's snapshot archive holds something a snapshot never holds."""
