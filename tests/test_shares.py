"""NFS shares on practice hosts: NFS-Ganesha on a server host, real NFSv4 from other hosts
(libnfs through ``tests/nfs_probe.py``, with the uid and gid a client would send)."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

import pytest

from lab import LabHost, console
from snapshots.rollback import rollback_plan
from tests.probes import nfs_practice_hosts, on_console
from wizard.errors import PlanConflict
from wizard.plan import Changeset
from wizard.session import Selection, apply, preview
from wizard.steps.shares import SHARES, SharesAnswers
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

ALICE, BOB, SHARE = 2001, 2002, 3000
EXPORT = "/srv/nfs"


def shares(answers: SharesAnswers) -> list[Selection]:
    return [Selection(SHARES, answers)]


def nfs(client: LabHost, server: LabHost, uid: int, gid: int, *op: str) -> str:
    """One NFSv4 operation from ``client`` as uid:gid ("ok", or "error: ..." from libnfs)."""
    args = " ".join(shlex.quote(part) for part in op)
    script = f"python3 /root/nfs_probe.py {server.address} {EXPORT} {uid} {gid} {args}"
    result = console(client).run(script, timeout=60)
    return (result.out + result.err).strip()


def stat(host: LabHost, path: str) -> str:
    return on_console(host, f"stat -c '%a %U %G' {path}").strip()


@pytest.fixture
def site(make_lab_hosts: Any) -> list[LabHost]:
    """A server, a client inside the allowed network and one outside it."""
    return nfs_practice_hosts(make_lab_hosts, 3)


def test_sticky_share_over_nfs_then_rollback(site: list[LabHost], lab_ssh_config: Any) -> None:
    server, client, outsider = site
    answers = SharesAnswers(
        enabled=True,
        server="ganesha",
        path=EXPORT,
        users=("alice", "bob"),
        uids=(f"alice={ALICE}", f"bob={BOB}"),
        gid=SHARE,
        drop_folder=True,
        networks=(f"{client.address}/32",),
    )
    original_conf = on_console(server, "cat /etc/ganesha/ganesha.conf")
    with SshTransport.connect(server.name, ssh_config=lab_ssh_config) as ssh:
        # A pinned uid that another name holds is found and explained before any change.
        on_console(server, f"useradd -u {ALICE} carol")
        with pytest.raises(PlanConflict, match="carol") as refused:
            apply(ssh, shares(answers))
        assert f"uid {ALICE}" in refused.value.message
        assert on_console(server, "getent group share; getent passwd alice; true") == ""
        assert "hostwiz" not in on_console(server, "cat /etc/ganesha/ganesha.conf")
        on_console(server, "userdel carol")

        changeset, _ = preview(ssh, shares(answers))
        notes = "\n".join(changeset.plans[0].notes)
        assert "cannot delete, rename" in notes and "_netdev,nofail" in notes
        result = apply(ssh, shares(answers))
        assert result.confirmed
        snapshot = result.snapshot_id
        assert snapshot
        # Applying twice plans nothing.
        assert preview(ssh, shares(answers))[0].empty

    assert stat(server, f"{EXPORT}/shared") == "3770 root share"
    assert stat(server, f"{EXPORT}/private/alice") == "700 alice alice"
    assert stat(server, f"{EXPORT}/drop") == "1777 root root"
    assert on_console(
        server, "id -u alice; id -u bob; getent group share | cut -d: -f3,4"
    ).split() == [str(ALICE), str(BOB), f"{SHARE}:alice,bob"]

    # alice writes in her folder; bob can neither read nor write there.
    assert nfs(client, server, ALICE, ALICE, "write", "/private/alice/diary", "mine") == "ok"
    assert nfs(client, server, ALICE, ALICE, "read", "/private/alice/diary") == "mineok"
    assert "error" in nfs(client, server, BOB, BOB, "read", "/private/alice/diary")
    assert "error" in nfs(client, server, BOB, BOB, "write", "/private/alice/bob-was-here", "x")

    # Both write in the shared folder (as members of the share's group).
    assert nfs(client, server, ALICE, SHARE, "write", "/shared/plan.txt", "alice's") == "ok"
    assert nfs(client, server, BOB, SHARE, "write", "/shared/notes.txt", "bob's") == "ok"
    assert nfs(client, server, BOB, SHARE, "read", "/shared/plan.txt") == "alice'sok"
    # bob cannot delete, rename or overwrite (replace by renaming onto) alice's file.
    assert "NFS4ERR_PERM" in nfs(client, server, BOB, SHARE, "unlink", "/shared/plan.txt")
    assert "error" in nfs(client, server, BOB, SHARE, "rename", "/shared/plan.txt", "/shared/x")
    assert "error" in nfs(
        client, server, BOB, SHARE, "rename", "/shared/notes.txt", "/shared/plan.txt"
    )
    assert "error" in nfs(client, server, BOB, SHARE, "write", "/shared/plan.txt", "bob's")
    assert on_console(server, f"cat {EXPORT}/shared/plan.txt") == "alice's"
    # alice herself may delete her own file.
    assert nfs(client, server, ALICE, SHARE, "write", "/shared/tmp", "x") == "ok"
    assert nfs(client, server, ALICE, SHARE, "unlink", "/shared/tmp") == "ok"
    # New files carry the share's group (setgid), also when alice's own group is her primary.
    on_console(server, f"su alice -c 'echo local > {EXPORT}/shared/local.txt'")
    assert stat(server, f"{EXPORT}/shared/local.txt").endswith(" alice share")
    assert stat(server, f"{EXPORT}/shared/plan.txt").split()[1:] == ["alice", "share"]

    # root on a client is squashed: it cannot get into alice's folder, and its files are
    # nobody's.
    assert "error" in nfs(client, server, 0, 0, "read", "/private/alice/diary")
    assert nfs(client, server, 0, 0, "write", "/drop/from-root", "x") == "ok"
    assert stat(server, f"{EXPORT}/drop/from-root") == "644 nobody nogroup"

    # A host outside the allowed networks is refused.
    assert "error" in nfs(outsider, server, ALICE, SHARE, "read", "/shared/plan.txt")

    # Rollback removes the export and restores modes and memberships; the users stay
    # (remove_created_users_on_rollback is false) and so do their files.
    with SshTransport.connect(server.name, ssh_config=lab_ssh_config) as ssh:
        rollback = rollback_plan(ssh, snapshot)
        assert apply_changeset(
            ssh, Changeset(server.name, (rollback,)), reason="rollback"
        ).confirmed
        assert rollback_plan(ssh, snapshot).empty  # twice is harmless
    assert on_console(server, "cat /etc/ganesha/ganesha.conf") == original_conf
    assert "ganesha" not in on_console(server, "ps -eo comm")
    assert "error" in nfs(client, server, ALICE, SHARE, "read", "/shared/plan.txt")
    assert on_console(server, "getent group share; true") == ""
    assert on_console(server, "id -nG alice").split() == ["alice"]
    assert on_console(server, f"cat {EXPORT}/shared/plan.txt") == "alice's"  # files are kept


def test_rollback_removes_created_users_when_asked(
    site: list[LabHost], lab_ssh_config: Any
) -> None:
    server, client, _ = site
    on_console(server, f"mkdir -p {EXPORT}/shared && echo old > {EXPORT}/shared/old.txt "
                       f"&& chmod 0750 {EXPORT}/shared")  # fmt: skip
    answers = SharesAnswers(
        enabled=True, server="ganesha", path=EXPORT, users=("dave",),
        networks=(f"{client.address}/32",), remove_created_users_on_rollback=True,
    )  # fmt: skip
    with SshTransport.connect(server.name, ssh_config=lab_ssh_config) as ssh:
        changeset, _ = preview(ssh, shares(answers))
        notes = "\n".join(changeset.plans[0].notes)
        assert f"{EXPORT}/shared already holds 1 files" in notes  # never chmod -R unseen
        result = apply(ssh, shares(replace(answers)))
        assert result.confirmed and result.snapshot_id
        assert stat(server, f"{EXPORT}/shared") == "3770 root share"
        assert stat(server, f"{EXPORT}/shared/old.txt") == "644 root root"  # not recursive
        rollback = rollback_plan(ssh, result.snapshot_id)
        assert apply_changeset(
            ssh, Changeset(server.name, (rollback,)), reason="rollback"
        ).confirmed
    assert stat(server, f"{EXPORT}/shared") == "750 root root"
    assert on_console(server, "getent passwd dave; true") == ""
    assert on_console(server, "ls -d /home/dave").strip() == "/home/dave"  # files stay
