"""A rollback says what each undo puts back, in words, not "undo action 4 of SNAPSHOT" (jargon
for a first-time admin): the command's own undo words, recorded in the snapshot, else the words
the change was applied with. Read through rollback_plan from a snapshot folder on this machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import snapshots.rollback
from snapshots.record import UndoCommand, meta_document, restore_script
from snapshots.rollback import rollback_plan, undo_words
from wizard.actions import RemoveFile, RunCommand, WriteFile
from wizard.host.docker import restart_dockerd
from wizard.plan import Changeset, Plan
from wizard.render import as_text, render_plan
from wizard.secrets import MASK, Secret
from wizard.transaction import action_script
from wizard.transport.local import LocalTransport

SNAPSHOT = "20261204-074000-000abcd"
TOKEN = Secret("SWMTKN-1-secret")


def changeset(config: str) -> Changeset:
    return Changeset("web1", (Plan("demo", (
        WriteFile(config, b"new\n"),
        RunCommand("touch /run/x", why="start squid at every boot", undo="rm -f /run/x"),
        RunCommand("join", why="join the swarm", undo="leave", undo_why="leave the swarm again"),
        RunCommand(f"join {TOKEN.reveal()}", undo="leave", secrets=(TOKEN,)),
    )),))  # fmt: skip


def test_each_undo_is_named_by_its_own_words_or_the_words_it_was_applied_with() -> None:
    meta = meta_document(SNAPSHOT, changeset("/etc/demo"), "apply")
    assert undo_words(meta, 2) == "leave the swarm again"
    assert undo_words(meta, 1) == 'undo "start squid at every boot"'
    assert undo_words(meta, 3) == f'undo "join {MASK}"'  # a command's secret stays unseen
    assert TOKEN.reveal() not in json.dumps(meta)


def test_the_dockerd_restart_says_what_its_undo_does() -> None:
    """A Docker rollback read 'undo "restart dockerd so the new settings take effect, and wait
    until it answers"' (the words it was applied with), and the preview showed its undo as a
    shell script."""
    restart = restart_dockerd("systemd")
    meta = meta_document(SNAPSHOT, Changeset("web1", (Plan("docker", (restart,)),)), "apply")
    words = "restart dockerd on the settings put back, and wait until it answers"
    assert undo_words(meta, 0) == words
    shown = as_text(render_plan(Plan("docker", (restart,))))
    assert f"undo: {words}" in shown and "undo: timeout" not in shown


def test_a_snapshot_of_an_older_hostwiz_without_undo_words_still_says_what_was_done() -> None:
    meta = meta_document(SNAPSHOT, changeset("/etc/demo"), "apply")
    del meta["undo_why"]
    assert undo_words(meta, 2) == 'undo "join the swarm"'
    assert "undo-5.sh" in undo_words({"undo": [5]}, 5)


def test_the_rollback_preview_and_log_say_what_each_undo_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "demo.conf"
    config.write_text("new\n")
    snap = tmp_path / SNAPSHOT
    (snap / "files").mkdir(parents=True)
    (snap / "files" / "0").write_text("old\n")
    (snap / "files" / "0.meta").write_text(f"644 0 0 {config.owner()} {config.group()}\n")
    meta = meta_document(SNAPSHOT, changeset(str(config)), "apply")
    (snap / "meta.json").write_text(json.dumps(meta))
    for index in meta["undo"]:  # type: ignore[attr-defined]
        (snap / f"undo-{index}.sh").write_text(f"undo {index}\n")
    (snap / "journal").write_text("".join(f"t start {n}\nt done {n}\n" for n in range(4)))
    monkeypatch.setattr(snapshots.rollback, "snapshot_dir", lambda _id: str(snap))

    plan = rollback_plan(LocalTransport(), SNAPSHOT)
    undos = [action.describe() for action in plan.actions if isinstance(action, RunCommand)]
    assert undos == [
        f'undo "join {MASK}"',
        "leave the swarm again",
        'undo "start squid at every boot"',
    ]
    shown = as_text(render_plan(plan))
    assert "run: leave the swarm again" in shown
    assert "undo action" not in shown and SNAPSHOT not in "".join(undos)


def test_a_rollback_says_it_puts_files_back_and_removes_the_ones_the_change_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollback's files read "write PATH (mode 0644, root:root)" in the apply log (CLI,
    plain, the wizard's log) and "changed: PATH" in its preview, as when the change wrote
    them. Now they say what a rollback does to them; the writes and removals are the same."""
    config, created = tmp_path / "demo.conf", tmp_path / "created.conf"
    config.write_text("new\n")
    created.write_text("made by the change\n")
    snap = tmp_path / SNAPSHOT
    (snap / "files").mkdir(parents=True)
    (snap / "files" / "0").write_text("old\n")
    (snap / "files" / "0.meta").write_text(f"644 0 0 {config.owner()} {config.group()}\n")
    change = Changeset("web1", (Plan("demo", (WriteFile(str(config), b"new\n"),
                                              WriteFile(str(created), b"x"))),))  # fmt: skip
    (snap / "meta.json").write_text(json.dumps(meta_document(SNAPSHOT, change, "apply")))
    (snap / "journal").write_text("".join(f"t start {n}\nt done {n}\n" for n in range(2)))
    monkeypatch.setattr(snapshots.rollback, "snapshot_dir", lambda _id: str(snap))

    plan = rollback_plan(LocalTransport(), SNAPSHOT)
    put_back, removed = plan.actions
    assert isinstance(put_back, WriteFile) and isinstance(removed, RemoveFile)
    # What the apply log says (the transaction's events are the actions' descriptions).
    assert put_back.describe() == f"put back {config} as it was before the change"
    assert removed.describe() == f"remove {created} (it did not exist before)"
    shown = as_text(render_plan(plan))
    assert f"put back {config} as it was before the change (mode 0644, " in shown
    assert f"remove {created} (it did not exist before)\n" in shown
    assert "changed: " not in shown and "remove: " not in shown
    # The same write and removal as before: only the words differ.
    owner = (put_back.owner, put_back.group)
    assert action_script(put_back) == action_script(WriteFile(str(config), b"old\n", 0o644, *owner))
    assert action_script(removed) == action_script(RemoveFile(str(created)))


def test_the_hosts_own_restore_names_an_undo_that_failed_in_words() -> None:
    """restore.sh (run by the safety timer or from the console) logs a failed undo to the
    snapshot's journal, which its message tells the admin to read."""
    script = restore_script(SNAPSHOT, (), [UndoCommand(3, "leave", 'leave the swarm\'s "x"')])
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert "log 'could not leave the swarm'\"'\"'s \"x\" (undo-3.sh)'" in script
    assert "undo of action" not in script
    assert "log 'could not undo command 4 (undo-4.sh)'" in restore_script(
        SNAPSHOT, (), [UndoCommand(4, "true")]
    )
