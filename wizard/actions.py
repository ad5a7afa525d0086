"""Actions: the only things a plan can ask a host to do.

Actions are frozen data. Each one can say how to undo itself:

* a :class:`WriteFile` or :class:`RemoveFile` is undone by putting the file's before-state back
  (recorded in the snapshot just before the apply);
* a :class:`RunCommand` names the files it changes (``touches``), which are snapshotted and put
  back the same way, plus an optional ``undo`` script run *after* every file has been restored
  (so that "restart dockerd" is undone by restarting it again on the restored configuration).

That ordering rule (restore all files first, then run undo scripts newest first) is what both the
in-process undo and the host's self-contained ``restore.sh`` follow.

Symbolic links: a path hostwiz manages may be a link (``/etc/docker/daemon.json`` pointing into
a configuration repository, say). hostwiz then works on the file the link names, everywhere:
facts read the target's content, mode and owner (``stat -L``), a :class:`WriteFile` writes the
target atomically and keeps the target's own mode and owner as planned, a :class:`RemoveFile`
removes the target, and a snapshot records and ``restore.sh`` puts back the target. The link
itself is never replaced or removed, so the admin's layout survives and the target never takes
the link's meaningless 0777 mode. A link that cannot be followed (a loop, or a target in a
folder that does not exist) is refused with a clear message instead of being overwritten.
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
    restores: bool = False
    """A rollback's write of the file's recorded before-state: the same write, said as
    "put back PATH as it was before the change" in the preview and the apply log."""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        if self.restores:
            return f"put back {self.path} as it was before the change"
        return f"write {self.path} (mode {self.mode:04o}, {self.owner}:{self.group})"


@dataclass(frozen=True)
class RemoveFile:
    path: str
    why: str = ""
    restores: bool = False
    """A rollback's removal of a file the change created: said "(it did not exist before)"."""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"remove {self.path}" + (" (it did not exist before)" if self.restores else "")


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
    key: str = ""
    """Names what the command does when several steps may ask for it (``"restart dockerd"``):
    a changeset runs the commands sharing a key once, at the last place one is asked for."""

    @property
    def paths(self) -> tuple[str, ...]:
        return self.touches

    def describe(self) -> str:
        return self.why or self.script


Action = WriteFile | RemoveFile | RunCommand


def ensure_file(
    state: FileState,
    content: bytes,
    *,
    mode: int | None = None,
    owner: str | None = None,
    group: str | None = None,
    why: str = "",
    secret: bool = False,
) -> WriteFile | None:
    """The write that makes ``state.path`` hold ``content`` with this mode and owner, or None
    when the file already is so. ``mode``/``owner``/``group`` left out keep the file's own
    (``0644 root:root`` for a new file), so an admin's chmod is not undone for nothing."""
    mode = mode if mode is not None else (state.mode if state.exists else 0o644)
    owner = owner if owner is not None else (state.owner if state.exists else "root")
    group = group if group is not None else (state.group if state.exists else "root")
    wanted = FileState(state.path, True, content, mode, owner, group)
    if state == wanted:
        return None
    return WriteFile(state.path, content, mode, owner, group, why=why, secret=secret)


def resolve_link_script(var: str = "p", fail: str = "exit 1") -> str:
    """Shell that points ``$var`` at the file a symbolic link names (the policy in the module
    docstring); ``fail`` runs, after a message on stderr, when the link cannot be followed."""
    return (
        f'if [ -L "${var}" ]; then hostwiz_l=$(readlink -f "${var}") || '
        f"{{ echo \"${var} is a symbolic link that cannot be followed (a loop, or its target's "
        f'folder is missing); hostwiz leaves it alone" >&2; {fail}; }}; {var}=$hostwiz_l; fi'
    )
