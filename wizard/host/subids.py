"""Subordinate id ranges (/etc/subuid, /etc/subgid): userns-remap and rootless Docker both
give a user its own range."""

from __future__ import annotations

from wizard.actions import FileState, WriteFile
from wizard.facts import file_fact

ID_RANGE = 65536
FIRST_SUBORDINATE_ID = 100000

SUBUID = file_fact("/etc/subuid")
SUBGID = file_fact("/etc/subgid")


def parse_id_ranges(content: bytes) -> list[tuple[str, int, int]]:
    """Entries of /etc/subuid or /etc/subgid as ``(name, start, count)``."""
    ranges = []
    for line in content.decode("utf-8", "replace").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((parts[0], int(parts[1]), int(parts[2])))
    return ranges


# ---- dockerd's configuration and restart, shared by every step that changes them ---------


def free_range(entries: list[tuple[str, int, int]]) -> int:
    """The first 65536-aligned subordinate range above 100000 that overlaps nobody's."""
    start = FIRST_SUBORDINATE_ID
    while any(s < start + ID_RANGE and start < s + n for _, s, n in entries):
        start += ID_RANGE
    return start


def ensure_range(state: FileState, user: str) -> WriteFile | None:
    """The write that gives ``user`` a range of its own in ``state``'s file, or None when it
    has one of at least :data:`ID_RANGE` ids already."""
    entries = parse_id_ranges(state.content)
    if any(name == user and count >= ID_RANGE for name, _, count in entries):
        return None
    start = free_range(entries)
    content = state.content
    if content and not content.endswith(b"\n"):
        content += b"\n"
    content += f"{user}:{start}:{ID_RANGE}\n".encode()
    return WriteFile(
        state.path,
        content,
        state.mode if state.exists else 0o644,
        why=f"give {user} its own range of {ID_RANGE} subordinate ids",
    )
