"""The local copy of a snapshot unpacks on Debian 12's Python (3.11.2: no extractall filter)."""

from __future__ import annotations

import base64
import io
import tarfile

import pytest

from snapshots.store import save_local_copy
from wizard.errors import HostwizError


def archive(*entries: tuple[str, bytes, int]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.uname = len(data), mode, 4242, "someone"
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_snapshot_unpacks_owned_by_us_without_setuid(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    folder = save_local_copy("web1", archive(("20240501-1/meta.json", b"{}", 0o4755)))
    assert folder is not None and folder.name == "20240501-1" and tmp_path in folder.parents
    saved = folder / "meta.json"
    assert saved.read_bytes() == b"{}"
    assert saved.stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize("name", ["../escape", "/etc/escape", "a/../../escape"])
def test_entries_outside_the_folder_are_refused(tmp_path, monkeypatch, name):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with pytest.raises(HostwizError, match="unsafe entry"):
        save_local_copy("web1", archive((name, b"x", 0o644)))
    assert not (tmp_path / "escape").exists()
