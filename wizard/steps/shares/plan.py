"""The pure planner of the shares step: accounts, folders, the export, the server.

Each command knows its inverse (an ``undo`` script, run by a rollback or by the host's safety
timer), and files (the export, ganesha.conf) are put back from the snapshot. Nothing is done
recursively: a folder that already holds files gets its own mode and owner only, and the
preview says how many entries lie under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Facts, restart_service_script
from wizard.plan import Plan
from wizard.steps.shares import exports, help
from wizard.steps.shares.answers import SharesAnswers
from wizard.steps.shares.facts import (
    ACCOUNTS,
    EXPORTS,
    EXPORTS_FILE,
    GANESHA,
    GANESHA_CONF,
    GANESHA_PID,
    NFS_VERSIONS,
    NFS_VERSIONS_FILE,
    Accounts,
    NfsHost,
    folder_fact,
    nfs_host_fact,
)
from wizard.transport.base import shell_quote

STEP = "shares"


@dataclass(frozen=True)
class WantedFolder:
    path: str
    mode: int
    owner: str
    group: str
    why: str


def folder_paths(answers: SharesAnswers) -> list[str]:
    base = answers.path.rstrip("/")
    paths = [base, f"{base}/shared", f"{base}/private"]
    paths += [f"{base}/private/{user}" for user in answers.users]
    if answers.drop_folder:
        paths.append(f"{base}/drop")
    return paths


def wanted_folders(answers: SharesAnswers, accounts: Accounts) -> list[WantedFolder]:
    base = answers.path.rstrip("/")
    folders = [
        WantedFolder(base, 0o755, "root", "root", "the exported folder"),
        WantedFolder(f"{base}/shared", 0o3770, "root", answers.group, help.SHARED_WHY),
        WantedFolder(f"{base}/private", 0o755, "root", "root", "holds one folder per user"),
    ]
    for user in answers.users:
        group = accounts.primary_group(user) if user in accounts.users else user
        folders.append(WantedFolder(f"{base}/private/{user}", 0o700, user, group, help.PRIVATE_WHY))
    if answers.drop_folder:
        folders.append(WantedFolder(f"{base}/drop", 0o1777, "root", "root", help.DROP_WHY))
    return folders


def choose_server(answers: SharesAnswers, host: NfsHost) -> str:
    """kernel or ganesha, from the answer and what the host has (explained when neither)."""
    kernel = host.has("exportfs") and host.kernel_nfsd
    ganesha = host.has("ganesha.nfsd")
    if answers.server == "kernel" and not kernel:
        raise PlanConflict(
            "the kernel NFS server is not available on this host"
            + (" (the kernel has no nfsd)." if host.has("exportfs") else "."),
            'Install it (apt install nfs-kernel-server), or use server = "ganesha" '
            "(apt install nfs-ganesha nfs-ganesha-vfs), which needs no kernel support.",
        )
    if answers.server == "ganesha" and not ganesha:
        raise PlanConflict(
            "NFS-Ganesha is not installed on this host.",
            "Install it (apt install nfs-ganesha nfs-ganesha-vfs) and plan again.",
        )
    if answers.server != "auto":
        return answers.server
    if kernel:
        return "kernel"
    if ganesha:
        return "ganesha"
    raise PlanConflict(
        "this host has no NFS server.",
        "Install one and plan again: apt install nfs-kernel-server (the usual choice), or "
        "apt install nfs-ganesha nfs-ganesha-vfs (runs where the kernel server cannot, e.g. "
        "in containers).",
    )


# ---- ids -------------------------------------------------------------------------------


def check_ids(answers: SharesAnswers, accounts: Accounts) -> None:
    """Refuse, before any change, ids that cannot be the same on server and clients."""
    for user, uid in answers.pinned_uids().items():
        holder = accounts.user_with_uid(uid)
        if holder and holder != user:
            raise PlanConflict(
                f"uid {uid} is pinned for {user}, but on this host uid {uid} is {holder}. "
                f"Over NFS the server sends numbers: {holder}'s files would show up as "
                f"{user}'s on every client where {user} is {uid}.",
                f"Pin another uid for {user} (one free on the server and on every client; "
                f"`getent passwd {uid}` on each shows who holds it).",
            )
        if user in accounts.users and accounts.users[user][0] != uid:
            have = accounts.users[user][0]
            raise PlanConflict(
                f"{user} already exists here with uid {have}, not the pinned {uid}. "
                f"A client where {user} is {uid} would see {user}'s files here as someone "
                "else's (NFS sends numbers, not names).",
                f"Pin {user}={have} (and use {have} on the clients), or renumber {user} "
                f"yourself first (usermod -u {uid} {user}; then chown the files that "
                f"`find / -xdev -uid {have}` lists).",
            )
    if answers.gid:
        holder = accounts.group_with_gid(answers.gid)
        if holder and holder != answers.group:
            raise PlanConflict(
                f"gid {answers.gid} is pinned for the group {answers.group}, but on this host "
                f"it is the group {holder}.",
                "Pin another gid, free on the server and on every client "
                f"(`getent group {answers.gid}` shows who holds it).",
            )
        if answers.group in accounts.groups and accounts.groups[answers.group][0] != answers.gid:
            have = accounts.groups[answers.group][0]
            raise PlanConflict(
                f"the group {answers.group} already exists here with gid {have}, not the "
                f"pinned {answers.gid}.",
                f"Pin gid = {have} (and use it on the clients), or choose another group name.",
            )


_KEPT = " (kept on rollback: remove_created_users_on_rollback is false)"


def account_actions(answers: SharesAnswers, accounts: Accounts) -> list[Action]:
    actions: list[Action] = []
    group = answers.group
    if group not in accounts.groups:
        gid = f"-g {answers.gid} " if answers.gid else ""
        actions.append(
            RunCommand(
                f"groupadd {gid}{group}",
                why=f"create the group {group} (the share's group)",
                undo=f"groupdel {group} 2>/dev/null || true",
            )
        )
    pins = answers.pinned_uids()
    for user in answers.users:
        if user in accounts.users:
            continue
        uid = f"-u {pins[user]} " if user in pins else ""
        keep = not answers.remove_created_users_on_rollback
        actions.append(
            RunCommand(
                f"useradd -m -U -s /bin/bash {uid}{user}",
                why=f"create the user {user}" + (_KEPT if keep else ""),
                undo=None if keep else f"userdel {user} 2>/dev/null || true",
                undo_why="" if keep else f"remove the account {user} (its files stay)",
                irreversible=keep,
            )
        )
    for user in answers.users:
        if user in accounts.members(group):
            continue
        actions.append(
            RunCommand(
                f"gpasswd -a {user} {group} >/dev/null",
                why=f"{user} joins {group}",
                undo=f"gpasswd -d {user} {group} >/dev/null 2>&1 || true",
            )
        )
    return actions


# ---- folders ---------------------------------------------------------------------------


def _mode(mode: int) -> str:
    """Five octal digits: GNU chmod keeps a directory's setgid bit on a shorter number."""
    return f"{mode:05o}"


def folder_actions(wanted: list[WantedFolder], facts: Facts) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    notes: list[str] = []
    for folder in wanted:
        now = facts[folder_fact(folder.path)]
        path = shell_quote(folder.path)
        owner = f"{folder.owner}:{folder.group}"
        if not now.exists:
            actions.append(
                RunCommand(
                    f"mkdir -p {path} && chown {owner} {path} && chmod {_mode(folder.mode)} {path}",
                    why=f"create {folder.path} ({folder.mode:04o}, {owner}): {folder.why}",
                    undo=f"rmdir {path} 2>/dev/null || true",
                    undo_why=f"remove {folder.path} if it is still empty (files are never deleted)",
                )
            )
            continue
        if (now.mode, now.owner, now.group) == (folder.mode, folder.owner, folder.group):
            continue
        actions.append(
            RunCommand(
                f"chown {owner} {path} && chmod {_mode(folder.mode)} {path}",
                why=f"{folder.path}: {now.mode:04o} {now.owner}:{now.group} -> "
                f"{folder.mode:04o} {owner} (the folder only): {folder.why}",
                undo=f"chown {now.owner}:{now.group} {path} && chmod {_mode(now.mode)} {path}",
            )
        )
        if now.entries:
            notes.append(help.content_note(folder.path, now.entries, folder.group))
    return actions, notes


# ---- the server ------------------------------------------------------------------------

_GANESHA_RUN = (
    "ganesha.nfsd -f "
    + GANESHA_CONF
    + " -L /var/log/ganesha/ganesha.log -N NIV_EVENT -p "
    + GANESHA_PID
)
_STOP_GANESHA = (
    f"p=$(cat {GANESHA_PID} 2>/dev/null)\n"
    'if [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = ganesha.nfsd ]; then\n'
    '  kill "$p"; i=0\n'
    '  while [ -d "/proc/$p" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n'
    "fi\n"
)
_START_GANESHA = (
    "mkdir -p /run/ganesha /var/log/ganesha /var/lib/nfs/ganesha\n"
    f"setsid {_GANESHA_RUN} </dev/null >/dev/null 2>&1\n"
    "i=0\n"
    "until ss -ltnH | awk '{print $4}' | grep -q ':2049$'; do\n"
    "  if [ $i -ge 100 ]; then\n"
    "    echo 'ganesha.nfsd did not start; its log says:' >&2\n"
    "    tail -n 5 /var/log/ganesha/ganesha.log >&2; exit 1\n"
    "  fi\n"
    "  sleep 0.1; i=$((i+1))\n"
    "done\n"
)


def ganesha_scripts(manager: str, was_running: bool) -> tuple[str, str]:
    """(start or restart Ganesha on the new configuration, its self-contained undo)."""
    if manager == "systemd":
        start = "systemctl enable nfs-ganesha >/dev/null 2>&1; systemctl restart nfs-ganesha"
        undo = (
            "systemctl restart nfs-ganesha"
            if was_running
            else "systemctl disable --now nfs-ganesha >/dev/null 2>&1 || true"
        )
        return start, undo
    undo = _STOP_GANESHA + (_START_GANESHA if was_running else "")
    return _STOP_GANESHA + _START_GANESHA, undo


def _kernel_actions(
    answers: SharesAnswers, host: NfsHost, facts: Facts
) -> tuple[list[Action], list[FileState], list[str]]:
    """The export in a drop-in of hostwiz's own, NFSv3 off (nfs.conf.d), then exportfs -ra;
    the server is (re)started only when it is down or the protocol versions change."""
    path = answers.path.rstrip("/")
    state, versions = facts[EXPORTS], facts[NFS_VERSIONS]
    content = exports.kernel_exports(path, answers.networks, answers.root_squash).encode()
    actions: list[Action] = []
    if not versions.exists or versions.content != exports.NFS_CONF_V4_ONLY.encode():
        actions.append(
            WriteFile(NFS_VERSIONS_FILE, exports.NFS_CONF_V4_ONLY.encode(), why=help.V4_ONLY_WHY)
        )
    if actions or not host.listening:
        manager = facts[SERVICE_MANAGER]
        restart = restart_service_script(manager, "nfs-kernel-server")
        enable = (
            "systemctl enable nfs-kernel-server >/dev/null 2>&1; " if manager == "systemd" else ""
        )
        actions.append(
            RunCommand(
                enable + restart,
                why="(re)start the kernel NFS server with NFSv4 only",
                undo=restart
                if host.listening
                else (
                    "systemctl stop nfs-kernel-server"
                    if manager == "systemd"
                    else "/etc/init.d/nfs-kernel-server stop"
                ),
                undo_why="run the NFS server as before (nfs.conf.d is put back first)",
                timeout=120,
            )
        )
    if not state.exists or state.content != content:
        actions.append(WriteFile(EXPORTS_FILE, content, 0o644, why=help.EXPORTS_WHY))
    if actions:
        actions.append(
            RunCommand(
                "exportfs -ra",
                why="publish the export (exportfs -ra re-reads /etc/exports and exports.d)",
                undo="exportfs -ra",
                undo_why="publish the exports as they were (the file is put back first)",
                timeout=60,
            )
        )
    return actions, [state, versions], []


def server_actions(
    answers: SharesAnswers, server: str, facts: Facts
) -> tuple[list[Action], list[FileState], list[str]]:
    host = facts[nfs_host_fact(answers.path)]
    path = answers.path.rstrip("/")
    if server == "kernel":
        return _kernel_actions(answers, host, facts)
    state = facts[GANESHA]
    text = state.text if state.exists else ""
    if exports.EXPORT_ID in exports.other_export_ids(text):
        raise PlanConflict(
            f"{GANESHA_CONF} already has an export with Export_Id {exports.EXPORT_ID}.",
            "Give that export another Export_Id, then plan again.",
        )
    warnings = []
    core = not exports.defines_block(text, "NFS_CORE_PARAM")
    if not core:
        warnings.append(help.GANESHA_CORE_WARNING)
    if host.filesystem.startswith("overlay"):
        raise PlanConflict(
            f"{answers.path} lies on an overlay file system, which Ganesha's VFS backend "
            "cannot export (it needs file handles the overlay does not give).",
            "Put the share on a real file system (ext4, xfs, btrfs, tmpfs), e.g. a disk "
            "mounted at /srv, and plan again.",
        )
    block = exports.ganesha_block(path, answers.networks, answers.root_squash, core=core)
    content = exports.with_section(text, block).encode()
    actions: list[Action] = []
    if not state.exists or state.content != content:
        actions.append(WriteFile(GANESHA_CONF, content, 0o644, why=help.GANESHA_WHY))
    if actions or not host.ganesha_running:
        start, undo = ganesha_scripts(facts[SERVICE_MANAGER], host.ganesha_running)
        actions.append(
            RunCommand(
                start,
                why="(re)start NFS-Ganesha on the new configuration (NFSv4 over TCP only)",
                undo=undo,
                undo_why="start Ganesha again on the old configuration if it ran before, "
                "else stop it",
                timeout=60,
            )
        )
        if facts[SERVICE_MANAGER] != "systemd":
            warnings.append(help.NO_SERVICE_WARNING)
    return actions, [state], warnings


# ---- the plan --------------------------------------------------------------------------


def plan(answers: SharesAnswers, facts: Facts) -> Plan:
    """Pure: what brings the host to ``answers``; an empty plan means the shares are there."""
    if not answers.enabled:
        return Plan(STEP)
    if not answers.networks:  # checked here: --set and forms fill in one answer at a time
        raise PlanConflict(
            "no networks may mount the share.",
            "List the clients' networks in shares.networks, e.g. 192.168.10.0/24.",
        )
    host = facts[nfs_host_fact(answers.path)]
    accounts = facts[ACCOUNTS]
    check_ids(answers, accounts)
    server = choose_server(answers, host)
    missing = [tool for tool in ("useradd", "gpasswd") if not host.has(tool)]
    if missing:
        raise PlanConflict(
            f"{', '.join(missing)} is missing on the host.", "Install it (apt install passwd)."
        )
    actions = account_actions(answers, accounts)
    folders, content_notes = folder_actions(wanted_folders(answers, accounts), facts)
    actions += folders
    served, before, warnings = server_actions(answers, server, facts)
    actions += served
    if not actions:
        return Plan(STEP)
    notes = [
        help.server_note(server),
        *help.bits_notes(answers),
        *content_notes,
        *help.id_notes(answers, accounts),
        help.client_commands(answers, host.address),
    ]
    if host.docker:
        notes.append(help.docker_note(host.docker))
    return Plan(
        STEP,
        tuple(actions),
        before=tuple(
            state
            for state in before
            if any(isinstance(a, WriteFile) and a.path == state.path for a in actions)
        ),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )
