"""A practice host that stops while starting: the error's hint names this machine's inotify
instances when they are near their limit (read from /proc, never changed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lab.hosts
import lab.inotify
from lab.inotify import inotify_hint, inotify_use
from lab.model import LabHost
from wizard.errors import LabError


def fake_proc(root: Path, limit: int, inotify_fds: int, other_fds: int = 3) -> Path:
    """A /proc with the limit and one process of this user holding ``inotify_fds``."""
    (root / "sys" / "fs" / "inotify").mkdir(parents=True)
    (root / "sys" / "fs" / "inotify" / "max_user_instances").write_text(f"{limit}\n")
    fds = root / "4242" / "fd"
    fds.mkdir(parents=True)
    for number in range(inotify_fds):
        os.symlink("anon_inode:inotify", fds / str(number))
    for number in range(other_fds):
        os.symlink(f"/dev/pts/{number}", fds / str(10000 + number))
    (root / "self").mkdir()  # not a process directory
    return root


def test_instances_in_use_are_counted_against_the_limit(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, limit=128, inotify_fds=125)
    use = inotify_use(proc)
    assert use is not None and (use.in_use, use.limit) == (125, 128) and use.near_limit
    hint = inotify_hint(proc)
    assert "125 in use of fs.inotify.max_user_instances = 128" in hint
    assert "hostwiz lab down" in hint
    assert (tmp_path / "sys/fs/inotify/max_user_instances").read_text() == "128\n"  # unchanged


def test_no_hint_far_from_the_limit(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, limit=128, inotify_fds=10)
    assert inotify_hint(proc) == ""


def test_stopped_while_starting_says_inotify_is_near_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = fake_proc(tmp_path / "proc", limit=128, inotify_fds=127)
    monkeypatch.setattr(lab.inotify, "PROC", proc)
    host = LabHost(
        name="s5f9", address="10.213.0.99", address6="", init_pid=0, state_dir=tmp_path,
        admin_password="", number=99, veth="", docker=False, init_start=0, launcher_pid=0,
        launcher_start=0, owner="", created=0.0,
    )  # fmt: skip
    log = tmp_path / "console.log"
    log.write_text("Failed to allocate directory watch: Too many open files\n")
    with pytest.raises(LabError) as raised:
        lab.hosts._await_init(host, log, lambda: 255)
    assert "stopped while starting (exit status 255)" in raised.value.message
    assert "inotify" in raised.value.hint and "127 in use" in raised.value.hint
