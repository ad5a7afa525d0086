"""The local copy of a host's snapshot folder is unpacked on Python 3.11.2 (no tarfile
``filter=``), and entries that would leave the target folder are refused."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pytest

from snapshots import store
from wizard.errors import HostwizError


def tar_of(*entries: tuple[str, bytes | None, str]) -> str:
    """(name, content or None for a symlink, link target) -> base64 tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


def test_unpacks_the_snapshot_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "local_root", lambda: tmp_path / "snapshots")
    folder = store.save_local_copy("web1", tar_of(("20260101-x/meta.json", b"{}", "")))
    assert folder == tmp_path / "snapshots" / "web1" / "20260101-x"
    assert (folder / "meta.json").read_bytes() == b"{}"


@pytest.mark.parametrize(
    "entry",
    [("../escape.txt", b"x", ""), ("/abs.txt", b"x", ""), ("20260101-x/link", None, "/etc")],
)
def test_refuses_entries_leaving_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: tuple[str, bytes | None, str]
) -> None:
    monkeypatch.setattr(store, "local_root", lambda: tmp_path / "snapshots")
    with pytest.raises(HostwizError, match="unsafe entry"):
        store.save_local_copy("web1", tar_of(entry))
    assert not (tmp_path / "escape.txt").exists()
