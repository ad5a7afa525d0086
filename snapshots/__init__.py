"""Before-states: recorded on the host (with a restore script usable from the console) and
locally, and turned back into a plan when the admin rolls back."""

from snapshots.layout import HOSTWIZ_DIR, SNAPSHOT_DIR, snapshot_dir
from snapshots.record import new_snapshot_id, record_script
from snapshots.store import SnapshotInfo, list_snapshots, save_local_copy

__all__ = [
    "HOSTWIZ_DIR",
    "SNAPSHOT_DIR",
    "SnapshotInfo",
    "list_snapshots",
    "new_snapshot_id",
    "record_script",
    "save_local_copy",
    "snapshot_dir",
]
