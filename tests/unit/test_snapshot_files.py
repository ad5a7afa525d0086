"""Snapshots on this machine and the host scripts that record and restore them (no host)."""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from snapshots.record import restore_script
from snapshots.store import save_local_copy
from wizard.errors import HostwizError
from wizard.facts import file_fact


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return base64.b64encode(buffer.getvalue()).decode()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


def test_a_snapshot_is_unpacked_privately_on_debian_12s_python(tmp_path: Path) -> None:
    """extractall(filter=...) does not exist on 3.11.2: this used to raise TypeError."""
    data = archive(
        (entry("20260101-000000-abcd", tarfile.DIRTYPE, mode=0o755), b""),
        (entry("20260101-000000-abcd/files", tarfile.DIRTYPE), b""),
        (entry("20260101-000000-abcd/files/0", mode=0o644), b"before\n"),
        (entry("20260101-000000-abcd/meta.json", mode=0o666), b"{}"),
    )
    local = save_local_copy("web1", data)
    assert local is not None and local.name == "20260101-000000-abcd"
    assert (local / "files" / "0").read_bytes() == b"before\n"
    assert (local / "files" / "0").stat().st_mode & 0o777 == 0o600
    assert (local / "meta.json").stat().st_mode & 0o777 == 0o600
    assert local.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "member",
    [
        entry("/etc/evil"),
        entry("snap/../../evil"),
        entry("snap/link", tarfile.SYMTYPE, link="/etc/passwd"),
        entry("snap/inside", tarfile.SYMTYPE, link="files"),
        entry("snap/hard", tarfile.LNKTYPE, link="snap/meta.json"),
        entry("snap/dev", tarfile.CHRTYPE),
        entry("snap/fifo", tarfile.FIFOTYPE),
    ],
    ids=["absolute", "dotdot", "symlink-out", "symlink", "hardlink", "device", "fifo"],
)
def test_an_unsafe_archive_is_refused_and_nothing_is_written(
    tmp_path: Path, member: tarfile.TarInfo
) -> None:
    data = archive((entry("snap", tarfile.DIRTYPE), b""), (member, b"x"))
    with pytest.raises(HostwizError, match="unsafe to unpack") as caught:
        save_local_copy("unsafe-host", data)
    assert caught.value.hint
    from snapshots.store import local_root

    assert not (local_root() / "unsafe-host" / "snap").exists()


def test_a_garbled_archive_is_a_clear_error() -> None:
    with pytest.raises(HostwizError, match="could not keep a local copy"):
        save_local_copy("garbled", "not base64 at all!")


def test_restore_script_quotes_a_path_with_a_quote(tmp_path: Path) -> None:
    script = restore_script("20260101-000000-abcd", ("/etc/it's here.conf",), [])
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert "could not restore /etc/it'\"'\"'s here.conf'" in script


def test_an_owner_without_a_name_is_kept_by_number() -> None:
    fact = file_fact("/etc/x")
    state = fact.parse(0, "640 UNKNOWN staff 4242 50\n" + base64.b64encode(b"x").decode())
    assert (state.mode, state.owner, state.group) == (0o640, "4242", "staff")
    named = fact.parse(0, "600 root root 0 0\n")
    assert (named.owner, named.group) == ("root", "root")
    legacy = fact.parse(0, "644 root adm\n")  # the three fields other readers pass
    assert (legacy.owner, legacy.group) == ("root", "adm")


def test_file_fact_follows_a_symbolic_link(tmp_path: Path) -> None:
    """A link's own mode reads 777; the target's (what is planned and written) is wanted."""
    from wizard.facts import gather
    from wizard.transport.local import LocalTransport

    real = tmp_path / "real.json"
    real.write_bytes(b"{}\n")
    real.chmod(0o640)
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    state = gather(LocalTransport(), [file_fact(str(link))])[file_fact(str(link))]
    assert state.exists and state.mode == 0o640 and state.content == b"{}\n"


def test_file_fact_reads_a_path_with_a_space_and_a_quote(tmp_path: Path) -> None:
    from wizard.facts import gather
    from wizard.transport.local import LocalTransport

    odd = tmp_path / "it's here.conf"
    odd.write_bytes(b"x\n")
    state = gather(LocalTransport(), [file_fact(str(odd))])[file_fact(str(odd))]
    assert state.exists and state.content == b"x\n"


def test_snapshot_ids_sort_in_the_order_they_were_made_within_a_second() -> None:
    import re
    import time

    from snapshots.record import new_snapshot_id

    made = []
    for _ in range(5):
        made.append(new_snapshot_id())
        time.sleep(0.002)
    assert sorted(made) == made
    assert all(re.fullmatch(r"\d{8}-\d{6}-\d{3}[0-9a-f]{4}", one) for one in made)
