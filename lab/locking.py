"""File locks with a bounded wait.

The machine lock (``/run/hostwiz-lab/.lock``) serialises what every lab on the machine
shares: picking names and addresses, creating or deleting the bridge. It is held for
milliseconds, never while a host boots. The last ``lab down`` removes the lock file and its
directory too, so a waiter re-checks after locking that it holds the file still at the path
(otherwise two processes could each hold a lock on a different file).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from lab.paths import RUN_ROOT
from wizard.errors import LabError


@contextmanager
def file_lock(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing)."""
    deadline = time.monotonic() + timeout
    while True:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"Another lab command has held {path} for over {timeout:.0f}s.",
                            "Wait for it to finish; if none is running, try again.",
                        ) from None
                    time.sleep(0.02)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
        finally:
            os.close(fd)
        # The file was removed while we waited: lock the new one.


def machine_lock() -> AbstractContextManager[None]:
    return file_lock(RUN_ROOT / ".lock")
