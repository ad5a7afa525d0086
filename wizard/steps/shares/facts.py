"""What the shares step reads from the host: accounts, folders, the NFS servers it has.

Each fact is a command plus a pure parser; the step gathers them with every other step's
facts in one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.facts import Fact, file_fact
from wizard.transport.base import shell_quote

EXPORTS_FILE = "/etc/exports.d/hostwiz.exports"
GANESHA_CONF = "/etc/ganesha/ganesha.conf"
GANESHA_PID = "/run/ganesha/ganesha.pid"
NFS_VERSIONS_FILE = "/etc/nfs.conf.d/hostwiz-nfsv4.conf"
EXPORTS = file_fact(EXPORTS_FILE)
GANESHA = file_fact(GANESHA_CONF)
NFS_VERSIONS = file_fact(NFS_VERSIONS_FILE)


@dataclass(frozen=True)
class Accounts:
    """The host's users (name -> uid, primary gid) and groups (name -> gid, members)."""

    users: dict[str, tuple[int, int]]
    groups: dict[str, tuple[int, tuple[str, ...]]]

    def user_with_uid(self, uid: int) -> str:
        return next((name for name, (u, _) in self.users.items() if u == uid), "")

    def group_with_gid(self, gid: int) -> str:
        return next((name for name, (g, _) in self.groups.items() if g == gid), "")

    def primary_group(self, user: str) -> str:
        gid = self.users[user][1]
        return self.group_with_gid(gid) or str(gid)

    def members(self, group: str) -> tuple[str, ...]:
        return self.groups[group][1] if group in self.groups else ()


def parse_accounts(code: int, out: str) -> Accounts:
    """``getent passwd``, a ``--`` line, then ``getent group``."""
    passwd, _, group = out.partition("\n--\n")
    users: dict[str, tuple[int, int]] = {}
    for line in passwd.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            users.setdefault(parts[0], (int(parts[2]), int(parts[3])))
    groups: dict[str, tuple[int, tuple[str, ...]]] = {}
    for line in group.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit():
            members = tuple(m for m in parts[3].split(",") if m)
            groups.setdefault(parts[0], (int(parts[2]), members))
    return Accounts(users, groups)


ACCOUNTS: Fact[Accounts] = Fact(
    "shares_accounts", "getent passwd; echo --; getent group", parse_accounts
)


@dataclass(frozen=True)
class Folder:
    """A folder as the host has it: its mode, owner, group and how many entries lie under it
    (everything a recursive chmod would touch), or ``exists=False``."""

    path: str
    exists: bool
    mode: int = 0
    owner: str = ""
    group: str = ""
    entries: int = 0


COUNT_LIMIT = 100_000
"""Entries counted under a folder at most: a big share must not slow down every fact read."""


def folder_fact(path: str) -> Fact[Folder]:
    quoted = shell_quote(path)
    command = (
        f"if [ -d {quoted} ]; then stat -c '%a %U %G' {quoted}; "
        f"find {quoted} -xdev -mindepth 1 2>/dev/null | head -n {COUNT_LIMIT + 1} | wc -l; "
        "else echo MISSING; fi"
    )

    def parse(code: int, out: str) -> Folder:
        lines = out.split()
        if code != 0 or not lines or lines[0] == "MISSING" or len(lines) < 4:
            return Folder(path, exists=False)
        mode, owner, group, entries = lines[:4]
        return Folder(path, True, int(mode, 8), owner, group, int(entries))

    return Fact(f"shares_folder:{path}", command, parse)


@dataclass(frozen=True)
class NfsHost:
    """The NFS servers the host has and how it runs them, plus what matters around them."""

    tools: frozenset[str]
    """exportfs, ganesha.nfsd, systemctl, useradd... (those installed)."""
    kernel_nfsd: bool
    """The kernel offers the nfsd file system (the kernel server can run)."""
    ganesha_running: bool
    listening: bool
    """Something listens on TCP port 2049 (an NFS server)."""
    address: str
    """The host's first address (for the client instructions)."""
    filesystem: str
    """The file system type under the shared folder (or its nearest existing parent)."""
    docker: str
    """"": no dockerd; "rootful", "userns-remap" or "rootless" (a user's rootless engine)."""

    def has(self, tool: str) -> bool:
        return tool in self.tools


_TOOLS = ("exportfs", "ganesha.nfsd", "systemctl", "useradd", "gpasswd", "dockerd")


def nfs_host_fact(path: str) -> Fact[NfsHost]:
    quoted = shell_quote(path)
    command = "\n".join(
        (
            f"for t in {' '.join(_TOOLS)}; do command -v $t >/dev/null 2>&1 && echo tool $t; done",
            "grep -qw nfsd /proc/filesystems 2>/dev/null && echo kernel-nfsd",
            f'p=$(cat {GANESHA_PID} 2>/dev/null); [ -n "$p" ] && '
            '[ "$(cat /proc/$p/comm 2>/dev/null)" = ganesha.nfsd ] && echo ganesha-running',
            "ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ':2049$' && echo listening",
            "echo address $(hostname -I 2>/dev/null | awk '{print $1}')",
            f'p={quoted}; i=0; while [ ! -e "$p" ] && [ $i -lt 64 ]; do '
            'p=$(dirname "$p"); i=$((i+1)); done; echo filesystem $(stat -f -c %T "$p")',
            "grep -q userns-remap /etc/docker/daemon.json 2>/dev/null && echo docker userns-remap",
            "ls -d /home/*/.local/share/docker 2>/dev/null | head -n1 | grep -q . && "
            "echo docker rootless",
            "true",
        )
    )
    return Fact("shares_nfs_host", command, parse_nfs_host)


def parse_nfs_host(code: int, out: str) -> NfsHost:
    tools: set[str] = set()
    words: dict[str, str] = {}
    flags: set[str] = set()
    for line in out.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "tool":
            tools.add(value)
        elif value:
            words.setdefault(key, value.strip())
        else:
            flags.add(key)
    docker = words.get("docker", "")
    if not docker and "dockerd" in tools:
        docker = "rootful"
    return NfsHost(
        tools=frozenset(tools),
        kernel_nfsd="kernel-nfsd" in flags,
        ganesha_running="ganesha-running" in flags,
        listening="listening" in flags,
        address=words.get("address", ""),
        filesystem=words.get("filesystem", ""),
        docker=docker,
    )
