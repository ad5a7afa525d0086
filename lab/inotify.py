"""How close this machine is to its inotify instance limit (read only, never changed).

Every practice host's PID 1 (systemd above all) and many of its services open inotify
instances, charged to root on this machine: ``fs.inotify.max_user_instances`` (often 128) caps
them for all of root's processes together. Near the cap, a booting host's systemd cannot get
one and exits (its launcher reports exit status 255) without saying why on this side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
NEAR = 0.9
"""In use at this share of the limit (or above) counts as near it."""
SPARE = 8
"""...as do fewer than this many instances left (a host's boot takes a few at once)."""


@dataclass(frozen=True)
class InotifyUse:
    in_use: int
    limit: int

    @property
    def near_limit(self) -> bool:
        return self.in_use >= self.limit * NEAR or self.limit - self.in_use < SPARE


def max_user_instances(proc: Path | None = None) -> int | None:
    """``fs.inotify.max_user_instances`` (read from /proc/sys; None when unreadable)."""
    try:
        path = (proc or PROC) / "sys" / "fs" / "inotify" / "max_user_instances"
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def instances_in_use(uid: int, proc: Path | None = None) -> int:
    """The inotify instances open in the processes of ``uid`` (their fds that are
    ``anon_inode:inotify``); processes that end meanwhile are skipped."""
    count = 0
    for entry in (proc or PROC).iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == "anon_inode:inotify":
                    count += 1
            except OSError:
                continue
    return count


def inotify_use(proc: Path | None = None) -> InotifyUse | None:
    """Root's (this user's) inotify instances and the limit; None when the limit is unknown."""
    limit = max_user_instances(proc)
    if limit is None:
        return None
    return InotifyUse(instances_in_use(os.getuid(), proc), limit)


def inotify_hint(proc: Path | None = None) -> str:
    """What to say when a host stopped while starting: the inotify limit when it is near,
    else '' (the cause is elsewhere: the console log in the details)."""
    use = inotify_use(proc)
    if use is None or not use.near_limit:
        return ""
    return (
        f"This machine's inotify instances are nearly used up: {use.in_use} in use of "
        f"fs.inotify.max_user_instances = {use.limit}, and a booting host's init needs some. "
        "Take down practice hosts you no longer need (hostwiz lab ls, hostwiz lab down NAME) "
        "or wait for other runs to end, then try again; --init sysv needs fewer. hostwiz does "
        "not change the machine's sysctl: raising the limit is the machine admin's call."
    )
