"""Where snapshots live on the host.

``/var/lib/hostwiz/snapshots/ID/`` holds ``meta.json``, ``files/N`` (the before-content of the
N-th touched path, with ``files/N.meta`` = "mode owner group" and ``files/N.newdirs`` = folders
the change created), ``undo-N.sh`` for commands that have an undo, ``journal`` (one line per
event: armed, done N, confirmed, reverting, reverted) and ``restore.sh``.
``/var/lib/hostwiz/restore [ID|LAST]`` runs a snapshot's restore script from the VM console.
"""

HOSTWIZ_DIR = "/var/lib/hostwiz"
SNAPSHOT_DIR = f"{HOSTWIZ_DIR}/snapshots"
RESTORE_COMMAND = f"{HOSTWIZ_DIR}/restore"
LAST_FILE = f"{HOSTWIZ_DIR}/LAST"


def snapshot_dir(snapshot_id: str) -> str:
    return f"{SNAPSHOT_DIR}/{snapshot_id}"


def journal_path(snapshot_id: str) -> str:
    return f"{snapshot_dir(snapshot_id)}/journal"
