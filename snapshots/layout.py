"""Where snapshots live on the host.

``/var/lib/hostwiz/snapshots/ID/`` holds ``meta.json``, ``about`` (the same in plain words, for
the console's list), ``files/N`` (the before-content of the N-th touched path, with
``files/N.meta`` = "mode uid gid owner group" and ``files/N.newdirs`` = folders the change
created), ``undo-N.sh`` for commands that have an undo, ``journal`` (one line per event: armed,
done N, confirmed, reverting, reverted), ``restore.sh``, ``watchdog.sh`` (the safety timer) and
``lock`` (flocked by the restore and the confirmation, so they never overlap).
``/var/lib/hostwiz/restore [ID|LAST]`` runs a snapshot's restore script from the VM console.
``/var/lib/hostwiz/ACTIVE`` names the latest change; ``transaction.lock`` serialises claiming it
(one change at a time per host, see :func:`snapshots.record.claim_script`).
``/var/lib/hostwiz/rearm`` restarts the ACTIVE change's safety timer at boot when a reboot ended
it before the change was confirmed or undone (see :func:`wizard.transaction.arm_script`).
"""

HOSTWIZ_DIR = "/var/lib/hostwiz"
SNAPSHOT_DIR = f"{HOSTWIZ_DIR}/snapshots"
RESTORE_COMMAND = f"{HOSTWIZ_DIR}/restore"
LAST_FILE = f"{HOSTWIZ_DIR}/LAST"
ACTIVE_FILE = f"{HOSTWIZ_DIR}/ACTIVE"
TRANSACTION_LOCK = f"{HOSTWIZ_DIR}/transaction.lock"
ABOUT_FILE = "about"
REARM_COMMAND = f"{HOSTWIZ_DIR}/rearm"
"""Run at boot: restarts the safety timer of a change that a reboot caught unconfirmed."""
WATCHDOG_FILE = "watchdog.sh"


def snapshot_dir(snapshot_id: str) -> str:
    return f"{SNAPSHOT_DIR}/{snapshot_id}"


def journal_path(snapshot_id: str) -> str:
    return f"{snapshot_dir(snapshot_id)}/journal"


def lock_path(snapshot_id: str) -> str:
    """The snapshot's flock: held by its restore and by its confirmation."""
    return f"{snapshot_dir(snapshot_id)}/lock"
