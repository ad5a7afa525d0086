"""Actions: the only things a plan can ask a host to do.

Actions are frozen data. Each one can say how to undo itself:

* a :class:`WriteFile` or :class:`RemoveFile` is undone by putting the file's before-state back
  (recorded in the snapshot just before the apply);
* a :class:`RunCommand` names the files it changes (``touches``), which are snapshotted and put
  back the same way, plus an optional ``undo`` script run *after* every file has been restored
  (so that "restart dockerd" is undone by restarting it again on the restored configuration).

That ordering rule (restore all files first, then run undo scripts newest first) is what both the
in-process undo and the host's self-contained ``restore.sh`` follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wizard.secrets import Secret


@dataclass(frozen=True)
class FileState:
    """What a path holds on the host (its before-state, or what a plan wants)."""

    path: str
    exists: bool
    content: bytes = b""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""

    path: str
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    why: str = ""
    secret: bool = False
    """Content is never shown (keys); the diff says only that it changes."""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"write {self.path} (mode {self.mode:04o}, {self.owner}:{self.group})"


@dataclass(frozen=True)
class RemoveFile:
    path: str
    why: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"remove {self.path}"


@dataclass(frozen=True)
class RunCommand:
    """Run a shell script on the host as root."""

    script: str
    why: str = ""
    undo: str | None = None
    """Script that reverses the command, run after the touched files are restored."""
    undo_why: str = ""
    """Plain words for a long ``undo`` script: previews show these instead of the script (the
    snapshot on the host keeps the script itself, in ``undo-N.sh``)."""
    touches: tuple[str, ...] = ()
    """Files the command changes; they are snapshotted and restored on undo."""
    irreversible: bool = False
    """Neither restoring files nor ``undo`` brings the old state back (flagged in previews)."""
    secrets: tuple[Secret, ...] = field(default=(), compare=False)
    timeout: float = 300.0

    @property
    def paths(self) -> tuple[str, ...]:
        return self.touches

    def describe(self) -> str:
        return self.why or self.script


Action = WriteFile | RemoveFile | RunCommand
