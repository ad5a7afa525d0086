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

import platformdirs

from snapshots.layout import SNAPSHOT_DIR
from wizard.errors import HostwizError
from wizard.transport.base import Transport

SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@-]+")


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

    @property
    def reverted(self) -> bool:
        return "reverted" in self.state


def _last_event(journal: str) -> str:
    lines = [line for line in journal.splitlines() if line.strip()]
    if not lines:
        return "unknown"
    return lines[-1].split(" ", 1)[1] if " " in lines[-1] else lines[-1]


def parse_listing(output: str) -> list[SnapshotInfo]:
    """Parse the output of :data:`LIST_SCRIPT` (one JSON line per snapshot)."""
    snapshots = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        meta = data.get("meta") or {}
        journal = base64.b64decode(data.get("journal", "")).decode("utf-8", "replace")
        snapshots.append(
            SnapshotInfo(
                id=str(meta.get("id", "")),
                created=str(meta.get("created", "")),
                steps=tuple(meta.get("steps", ())),
                paths=tuple(meta.get("paths", ())),
                actions=tuple(meta.get("actions", ())),
                state=_last_event(journal),
                reason=str(meta.get("reason", "apply")),
            )
        )
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
  printf '{{"meta": %s, "journal": "%s"}}\\n' "$(tr -d '\\n' < "$d/meta.json")" \\
    "$(base64 -w0 "$d/journal" 2>/dev/null)"
done"""


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
