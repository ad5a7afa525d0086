"""Finding snapshots: on the host (the source of truth) and the local copies kept beside them."""

from __future__ import annotations

import base64
import io
import json
import os
import re
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


def _plain_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's files and folders, each kept inside the target and owned by us.

    What ``extractall(filter="data")`` does, which Python 3.11.2 (Debian 12) does not have:
    no absolute paths, no ``..``, no links or devices, no setuid bits, no foreign owners.
    """
    members = []
    for member in archive.getmembers():
        parts = PurePosixPath(member.name).parts
        if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
            raise HostwizError(
                f"the host's snapshot archive holds an unsafe entry: {member.name!r}",
                "The local copy was not made; the snapshot on the host is unaffected. Check "
                "/var/lib/hostwiz/snapshots on the host for files you did not expect.",
            )
        member.mode &= 0o755
        member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
        members.append(member)
    return members


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
        archive.extractall(target, members=_plain_members(archive))
    return target / names[0].split("/")[0] if names else None
