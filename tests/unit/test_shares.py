"""The shares step without a host: parsers, answers, rendering and the planner as tables."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from wizard.actions import RunCommand, WriteFile
from wizard.answers import build
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.steps import STEPS
from wizard.steps.shares import SHARES, SharesAnswers, exports
from wizard.steps.shares.facts import (
    GANESHA_CONF,
    folder_fact,
    parse_accounts,
    parse_nfs_host,
)
from wizard.steps.shares.plan import choose_server

PASSWD = "root:x:0:0::/root:/bin/bash\nalice:x:2001:2001::/home/alice:/bin/bash\n"
GROUP = "root:x:0:\nalice:x:2001:\nshare:x:3000:alice\n"


def test_accounts_parser() -> None:
    accounts = parse_accounts(0, f"{PASSWD}--\n{GROUP}")
    assert accounts.users["alice"] == (2001, 2001)
    assert accounts.groups["share"] == (3000, ("alice",))
    assert accounts.user_with_uid(2001) == "alice" and accounts.user_with_uid(5) == ""
    assert accounts.primary_group("alice") == "alice"
    assert accounts.members("nope") == ()


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("MISSING\n", (False, 0, 0)),
        ("3770 root share\n12\n", (True, 0o3770, 12)),
        ("", (False, 0, 0)),
    ],
)
def test_folder_parser(out: str, expected: tuple[bool, int, int]) -> None:
    folder = folder_fact("/srv/nfs").parse(0, out)
    assert (folder.exists, folder.mode, folder.entries) == expected


def test_nfs_host_parser() -> None:
    host = parse_nfs_host(
        0,
        "tool ganesha.nfsd\ntool useradd\ntool dockerd\nganesha-running\n"
        "address 10.0.0.5\nfilesystem ext2/ext3\ndocker userns-remap\n",
    )
    assert host.has("ganesha.nfsd") and not host.has("exportfs")
    assert host.ganesha_running and not host.listening and not host.kernel_nfsd
    assert (host.address, host.filesystem, host.docker) == ("10.0.0.5", "ext2/ext3", "userns-remap")
    assert parse_nfs_host(0, "tool dockerd\n").docker == "rootful"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"users": ["Alice"]}, "not a Linux user"),
        ({"users": ["alice", "alice"]}, "listed twice"),
        ({"group": "alice", "users": ["alice"]}, "both the group and a user"),
        ({"path": "/srv/my share"}, "not a usable folder"),
        ({"path": "/srv/../etc"}, "not a usable folder"),
        ({"path": "/"}, "not a usable folder"),
        ({"networks": ["10.0.0.0/33"]}, "not valid"),
        ({"users": ["alice"], "uids": ["alice=12"]}, "uid from 1000"),
        ({"users": ["alice"], "uids": ["bob=2001"]}, "not one of the share's users"),
        ({"users": ["a", "b"], "uids": ["a=2001", "b=2001"]}, "pinned twice"),
        ({"server_address": "x;reboot"}, "not a host name"),
    ],
)
def test_answers_refuse(changes: dict[str, Any], problem: str) -> None:
    data = {"enabled": True, "networks": ["10.0.0.0/24"], **changes}
    with pytest.raises(InvalidAnswer, match=problem):
        build(SharesAnswers, data, where="--set")


def test_registered_after_the_firewall() -> None:
    names = list(STEPS)
    assert names.index("shares") == names.index("firewall") + 1


def test_kernel_exports_line() -> None:
    text = exports.kernel_exports("/srv/nfs", ("10.0.0.0/24", "192.168.1.7"), True)
    opts = "rw,sync,root_squash,no_subtree_check,sec=sys"
    assert text.splitlines()[-1] == f"/srv/nfs 10.0.0.0/24({opts}) 192.168.1.7({opts})"
    assert "no_root_squash" in exports.kernel_exports("/srv/nfs", ("10.0.0.0/24",), False)


def test_ganesha_section_round_trip() -> None:
    admin = "# the admin's comment\nLOG { Default_Log_Level = EVENT; }\n"
    block = exports.ganesha_block("/srv/nfs", ("10.0.0.0/24",), True)
    merged = exports.with_section(admin, block)
    assert merged.startswith(admin) and "Clients = 10.0.0.0/24;" in merged
    assert "Squash = Root_Squash;" in merged and "Protocols = 4;" in merged
    assert exports.without_section(merged) == admin
    assert exports.with_section(merged, block) == merged  # replaced, not appended twice
    assert not exports.defines_block(merged, "NFS_CORE_PARAM")  # its own block does not count
    assert exports.defines_block("NFS_CORE_PARAM {\n}\n", "NFS_CORE_PARAM")
    assert not exports.defines_block("# NFS_CORE_PARAM {\n", "NFS_CORE_PARAM")
    assert exports.other_export_ids("EXPORT { Export_Id = 7; }") == {7}
    assert "NFS_CORE_PARAM" not in exports.ganesha_block("/x", ("10.0.0.1",), True, core=False)


# ---- the planner over fixture facts ------------------------------------------------------

ANSWERS = SharesAnswers(
    enabled=True,
    server="ganesha",
    users=("alice", "bob"),
    uids=("alice=2001", "bob=2002"),
    gid=3000,
    networks=("10.0.0.0/24",),
)


def raw_facts(answers: SharesAnswers, **overrides: tuple[int, str]) -> Facts:
    raw: dict[str, tuple[int, str]] = {
        "shares_accounts": (0, f"{PASSWD}--\n{GROUP.replace('share:x:3000:alice', '')}"),
        "file:/etc/exports.d/hostwiz.exports": (0, "MISSING"),
        "file:/etc/nfs.conf.d/hostwiz-nfsv4.conf": (0, "MISSING"),
        f"file:{GANESHA_CONF}": (0, "MISSING"),
        "service_manager": (0, "sysv"),
        "shares_nfs_host": (
            0,
            "tool ganesha.nfsd\ntool useradd\ntool gpasswd\naddress 10.0.0.5\nfilesystem tmpfs\n",
        ),
    }
    for fact in SHARES.facts(answers):
        if fact.name.startswith("shares_folder:"):
            raw[fact.name] = (0, "MISSING")
    for name, value in overrides.items():
        raw[name.replace("__", ":")] = value
    return Facts.from_raw(SHARES.facts(answers), raw)


def scripts(answers: SharesAnswers, facts: Facts) -> list[str]:
    return [a.script for a in SHARES.plan(answers, facts).actions if isinstance(a, RunCommand)]


def test_fresh_host_plan() -> None:
    plan = SHARES.plan(ANSWERS, raw_facts(ANSWERS))
    commands = scripts(ANSWERS, raw_facts(ANSWERS))
    assert commands[:4] == [
        "groupadd -g 3000 share",
        "useradd -m -U -s /bin/bash -u 2002 bob",
        "gpasswd -a alice share >/dev/null",
        "gpasswd -a bob share >/dev/null",
    ]  # alice exists with the pinned uid: reused
    assert "mkdir -p /srv/nfs/shared && chown root:share /srv/nfs/shared && chmod 03770 " \
        "/srv/nfs/shared" in commands  # fmt: skip
    assert any("chmod 00700 /srv/nfs/private/bob" in c for c in commands)
    written = [a for a in plan.actions if isinstance(a, WriteFile)]
    assert [w.path for w in written] == [GANESHA_CONF]
    assert b"Clients = 10.0.0.0/24;" in written[0].content
    undo = {a.script: a.undo for a in plan.actions if isinstance(a, RunCommand)}
    assert undo["gpasswd -a bob share >/dev/null"] == "gpasswd -d bob share >/dev/null 2>&1 || true"
    assert undo["groupadd -g 3000 share"] == "groupdel share 2>/dev/null || true"
    bob = next(a for a in plan.actions if isinstance(a, RunCommand) and "useradd" in a.script)
    assert bob.undo is None and bob.irreversible  # kept unless the admin agrees
    notes = "\n".join(plan.notes)
    assert "10.0.0.5:/srv/nfs /mnt/share nfs4 _netdev,nofail" in notes
    assert "useradd -m -u 2002 bob" in notes and "groupadd -g 3000 share" in notes
    assert "bob may add files but cannot delete, rename" in notes
    assert plan.warnings  # no service manager: not started at boot


def test_removing_created_users_is_opt_in() -> None:
    answers = replace(ANSWERS, remove_created_users_on_rollback=True)
    plan = SHARES.plan(answers, raw_facts(answers))
    bob = next(a for a in plan.actions if isinstance(a, RunCommand) and "useradd" in a.script)
    assert bob.undo == "userdel bob 2>/dev/null || true" and not bob.irreversible


def test_done_host_plans_nothing() -> None:
    block = exports.ganesha_block("/srv/nfs", ANSWERS.networks, True).encode()
    conf = f"644 root root\n{base64.b64encode(block).decode()}"
    passwd = PASSWD + "bob:x:2002:2002::/home/bob:/bin/bash\n"
    group = GROUP.replace("share:x:3000:alice", "share:x:3000:alice,bob") + "bob:x:2002:\n"
    folders = {
        "/srv/nfs": "755 root root\n3",
        "/srv/nfs/shared": "3770 root share\n0",
        "/srv/nfs/private": "755 root root\n2",
        "/srv/nfs/private/alice": "700 alice alice\n0",
        "/srv/nfs/private/bob": "700 bob bob\n0",
    }
    overrides = {f"shares_folder__{path}": (0, out) for path, out in folders.items()}
    facts = raw_facts(
        ANSWERS,
        shares_accounts=(0, f"{passwd}--\n{group}"),
        shares_nfs_host=(0, "tool ganesha.nfsd\ntool useradd\ntool gpasswd\nganesha-running\n"),
        **{f"file__{GANESHA_CONF}": (0, conf)},
        **overrides,
    )
    assert SHARES.plan(ANSWERS, facts).empty
    # A folder that drifted gets its own mode back, not recursively, with the count shown.
    drifted = raw_facts(
        ANSWERS,
        shares_accounts=(0, f"{passwd}--\n{group}"),
        shares_nfs_host=(0, "tool ganesha.nfsd\ntool useradd\ntool gpasswd\nganesha-running\n"),
        **{f"file__{GANESHA_CONF}": (0, conf)},
        **{**overrides, "shares_folder__/srv/nfs/shared": (0, "775 root root\n41")},
    )
    plan = SHARES.plan(ANSWERS, drifted)
    [chmod] = [a for a in plan.actions if isinstance(a, RunCommand)]
    assert chmod.script == "chown root:share /srv/nfs/shared && chmod 03770 /srv/nfs/shared"
    assert chmod.undo == "chown root:root /srv/nfs/shared && chmod 00775 /srv/nfs/shared"
    assert any("already holds 41 files" in note for note in plan.notes)


@pytest.mark.parametrize(
    ("passwd", "group", "problem"),
    [
        ("carol:x:2001:2001::/:/bin/sh\n", "", "uid 2001 is carol"),
        ("bob:x:1500:1500::/:/bin/sh\n", "", "bob already exists here with uid 1500"),
        ("", "staff:x:3000:\n", "it is the group staff"),
        ("", "share:x:4000:\n", "already exists here with gid 4000"),
    ],
)
def test_id_mismatch_refused_before_any_change(passwd: str, group: str, problem: str) -> None:
    facts = raw_facts(ANSWERS, shares_accounts=(0, f"root:x:0:0::/:/bin/sh\n{passwd}--\n{group}"))
    with pytest.raises(PlanConflict, match=problem):
        SHARES.plan(ANSWERS, facts)


@pytest.mark.parametrize(
    ("tools", "server", "expected"),
    [
        ("tool exportfs\ntool ganesha.nfsd\nkernel-nfsd\n", "auto", "kernel"),
        ("tool exportfs\ntool ganesha.nfsd\n", "auto", "ganesha"),  # no nfsd in the kernel
        ("tool ganesha.nfsd\n", "auto", "ganesha"),
        ("", "auto", "no NFS server"),
        ("tool ganesha.nfsd\n", "kernel", "not available"),
        ("tool exportfs\nkernel-nfsd\n", "ganesha", "not installed"),
    ],
)
def test_server_choice(tools: str, server: Any, expected: str) -> None:
    answers = replace(ANSWERS, server=server)
    host = parse_nfs_host(0, tools)
    if expected in ("kernel", "ganesha"):
        assert choose_server(answers, host) == expected
    else:
        with pytest.raises(PlanConflict, match=expected):
            choose_server(answers, host)


def test_no_networks_is_refused_by_the_planner() -> None:
    answers = replace(ANSWERS, networks=())  # fine while the admin fills in the answers
    with pytest.raises(PlanConflict, match="no networks"):
        SHARES.plan(answers, raw_facts(answers))


def test_overlay_is_refused_for_ganesha() -> None:
    facts = raw_facts(
        ANSWERS,
        shares_nfs_host=(
            0,
            "tool ganesha.nfsd\ntool useradd\ntool gpasswd\nfilesystem overlayfs\n",
        ),
    )
    with pytest.raises(PlanConflict, match="overlay"):
        SHARES.plan(ANSWERS, facts)


NFS_RESTART = (
    "if /etc/init.d/nfs-kernel-server status >/dev/null 2>&1; then "
    "/etc/init.d/nfs-kernel-server restart; else /etc/init.d/nfs-kernel-server start; fi"
)


def test_kernel_server_plan() -> None:
    answers = replace(ANSWERS, server="kernel")
    facts = raw_facts(
        answers,
        shares_nfs_host=(0, "tool exportfs\nkernel-nfsd\ntool useradd\ntool gpasswd\nlistening\n"),
    )
    plan = SHARES.plan(answers, facts)
    written = [a for a in plan.actions if isinstance(a, WriteFile)]
    assert [w.path for w in written] == [
        "/etc/nfs.conf.d/hostwiz-nfsv4.conf",
        "/etc/exports.d/hostwiz.exports",
    ]
    assert written[0].content.endswith(b"[nfsd]\nvers3=n\n")
    commands = [(a.script, a.undo) for a in plan.actions if isinstance(a, RunCommand)]
    assert commands[-2:] == [
        (NFS_RESTART, NFS_RESTART),
        ("exportfs -ra", "exportfs -ra"),
    ]
    # Done: the files are there and the server listens -> nothing to do.
    versions = base64.b64encode(exports.NFS_CONF_V4_ONLY.encode()).decode()
    line = exports.kernel_exports("/srv/nfs", answers.networks, True).encode()
    done = raw_facts(
        answers,
        shares_nfs_host=(0, "tool exportfs\nkernel-nfsd\ntool useradd\ntool gpasswd\nlistening\n"),
        **{
            "file__/etc/nfs.conf.d/hostwiz-nfsv4.conf": (0, f"644 root root\n{versions}"),
            "file__/etc/exports.d/hostwiz.exports": (
                0,
                f"644 root root\n{base64.b64encode(line).decode()}",
            ),
        },
    )
    assert not [a for a in SHARES.plan(answers, done).actions if not isinstance(a, RunCommand)
                or "exportfs" in a.script or "nfs-kernel" in a.script]  # fmt: skip
    assert SHARES.status(SharesAnswers(), facts).status.value == "off"


def test_content_count_is_bounded() -> None:
    from wizard.steps.shares.help import content_note

    assert "holds more than 100000 files" in content_note("/srv/nfs/shared", 100_001, "share")
    assert "holds 7 files" in content_note("/srv/nfs/shared", 7, "share")
    assert "head -n 100001" in folder_fact("/srv/nfs").command
