"""Rolling back a change made of commands alone (no file to compare): its undo runs while the
change is in effect, and a second rollback plans nothing. Found by the swarm and NFS steps,
whose `docker swarm leave` and `gpasswd -d` were skipped when no recorded file differed."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshots.rollback import rollback_plan
from wizard.actions import RunCommand
from wizard.plan import Changeset, Plan
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

MARK = "/root/hostwiz-command-only"


def test_a_command_only_change_is_undone_by_rollback_and_only_once(
    make_lab_hosts, lab_ssh_config: Path
) -> None:
    (host,) = make_lab_hosts(1, docker=False)
    console = host.console()
    plan = Plan("demo", (RunCommand(f"mkdir {MARK}", why="a change without a file",
                                    undo=f"rmdir {MARK}"),))  # fmt: skip
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        applied = apply_changeset(ssh, Changeset(host.name, (plan,)), confirm_timeout=30)
        assert applied.confirmed and applied.snapshot_id
        assert console.run(f"test -d {MARK}").ok

        back = rollback_plan(ssh, applied.snapshot_id)
        assert [a.script.strip() for a in back.actions if isinstance(a, RunCommand)] == [
            f"rmdir {MARK}"
        ]
        # Each undo says what it does, in the words the change was made with (no "action 0").
        assert [a.describe() for a in back.actions] == ['undo "a change without a file"']
        undone = apply_changeset(ssh, Changeset(host.name, (back,)), confirm_timeout=30,
                                 reason="rollback")  # fmt: skip
        assert undone.confirmed
        assert not console.run(f"test -e {MARK}").ok
        # It says what it did: put a snapshot's change back, not "Applied 1 change(s)".
        assert undone.message.startswith(
            f"Put back 1 change(s) from snapshot {applied.snapshot_id}. Undo with: "
        ), undone.message

        assert rollback_plan(ssh, applied.snapshot_id).empty  # no longer in effect
