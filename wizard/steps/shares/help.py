"""The words of the shares step: what each bit does (with alice and bob), what the clients
need, and why ids must match. Kept apart from the planner so the planner stays logic."""

from __future__ import annotations

from wizard.steps.shares.answers import SharesAnswers
from wizard.steps.shares.facts import COUNT_LIMIT, Accounts

EXPLANATION = (
    "Shares folders over NFSv4: a private folder per user (only its owner gets in), a shared "
    "folder for a group where new files keep the group and nobody can delete or rename "
    "another member's files (setgid + sticky bit, mode 3770), and optionally a drop folder "
    "open to all (1777). Only the networks you list may mount it, root on a client counts as "
    "nobody (root_squash), and writes are on disk before the client hears back (the kernel's "
    "sync; Ganesha commits as NFS asks). "
    "NFS sends user ids as numbers, so alice must have the same uid on the server and on every "
    "client: pin the ids here and use the same on the clients. The preview prints the commands "
    "to run on each client. With userns-remap or rootless Docker, containers that bind-mount "
    "the share see other numbers than the host's users (explained in the preview)."
)

SHARED_WHY = "the group's folder: setgid (new files keep the group) + sticky (3770)"
PRIVATE_WHY = "a private folder: its owner only (0700)"
DROP_WHY = "a drop folder open to all, sticky (1777)"
EXPORTS_WHY = "the export for the kernel NFS server (a file of its own in /etc/exports.d)"
V4_ONLY_WHY = "NFSv3 off in the kernel server (NFSv4 needs no rpcbind, mountd or statd ports)"
GANESHA_WHY = "hostwiz's section of ganesha.conf: NFSv4 over TCP, one EXPORT"
GANESHA_CORE_WARNING = (
    "ganesha.conf already has an NFS_CORE_PARAM block of yours, so hostwiz does not add its "
    "own (Protocols = 4, Enable_UDP = false). Without them Ganesha also tries NFSv3 and "
    "rpcbind; if it does not start, add those two lines to your block."
)
NO_SERVICE_WARNING = (
    "This host has no service manager entry for Ganesha (no systemd): hostwiz starts "
    "ganesha.nfsd itself, and it will not come back by itself after a reboot. Start it at "
    "boot with: ganesha.nfsd -f /etc/ganesha/ganesha.conf -p /run/ganesha/ganesha.pid"
)


def server_note(server: str) -> str:
    if server == "kernel":
        return (
            "NFS server: the kernel's (nfs-kernel-server). The export lives in its own file, "
            "/etc/exports.d/hostwiz.exports (your /etc/exports stays as it is), and exportfs "
            "-ra publishes it without stopping existing mounts. NFSv3 is turned off in "
            "/etc/nfs.conf.d/hostwiz-nfsv4.conf (one restart of the server when that changes)."
        )
    return (
        "NFS server: NFS-Ganesha (no kernel NFS server here, or you chose it). hostwiz keeps "
        "its part of /etc/ganesha/ganesha.conf between BEGIN/END hostwiz lines, serves NFSv4 "
        "over TCP only (no rpcbind, no NFSv3) and restarts Ganesha to load it."
    )


def bits_notes(answers: SharesAnswers) -> list[str]:
    """What each folder's mode means, told with two users (the admin's own where given)."""
    names = [*answers.users[:2], *(n for n in ("alice", "bob") if n not in answers.users)]
    a, b = names[0], names[1]
    base = answers.path.rstrip("/")
    notes = [
        f"{base}/private/{a} is 0700, {a} only: {a} reads and writes there; {b} can neither "
        f"list, read nor write it (ls {base}/private/{a} -> Permission denied).",
        f"{base}/shared is 3770 (rwxrws--T, root:{answers.group}): 2 = setgid, 1 = sticky. "
        f"Setgid: a file {a} creates there belongs to group {answers.group}, not to {a}'s own "
        f"group, so {b} can read it. Sticky: {b} may add files but cannot delete, rename or "
        f"replace {a}'s (rm/mv -> Operation not permitted); only the file's owner (or root on "
        "the server) can. Others than the group get nothing (the final 0). 2770 + chmod +t is "
        "the same mode written in two steps.",
        f"Files keep the creator's umask: with the usual 022 a file {a} writes in shared/ is "
        f"readable by {b} but not writable; {a} can `chmod g+w FILE`, or set umask 002.",
    ]
    if answers.drop_folder:
        notes.append(
            f"{base}/drop is 1777 (rwxrwxrwt): everyone may add files, like /tmp; {b} cannot "
            f"delete or rename {a}'s file there, and reads it only if its mode allows."
        )
    return notes


def content_note(path: str, entries: int, group: str) -> str:
    count = f"more than {COUNT_LIMIT}" if entries > COUNT_LIMIT else str(entries)
    return (
        f"{path} already holds {count} files and folders. hostwiz changes the folder itself "
        "only, never recursively: the entries keep their owners and modes. To hand them to "
        f"the group yourself, first count: find {path} -xdev ! -group {group} | wc -l, then "
        f"chgrp -R {group} {path} && find {path} -type d -exec chmod g+s {{}} +"
    )


def id_notes(answers: SharesAnswers, accounts: Accounts) -> list[str]:
    pins = answers.pinned_uids()
    lines = []
    for user in answers.users:
        uid = pins.get(user) or (accounts.users[user][0] if user in accounts.users else None)
        lines.append(f"{user}={uid}" if uid else f"{user}=(picked by useradd)")
    gid = answers.gid or (accounts.groups[answers.group][0] if answers.group in accounts.groups
                          else None)  # fmt: skip
    return [
        "Ids: over NFS (AUTH_SYS) a client sends numbers and the server trusts them, so every "
        f"client must know the same users with the same uids ({', '.join(lines)}) and "
        f"{answers.group} with gid {gid or '(picked by groupadd)'}. Different numbers mean "
        "someone else's files, or none. Pin the ids (uids = alice=2001, gid = 3000) to choose "
        "them; `id NAME` on each machine shows them."
    ]


def client_commands(answers: SharesAnswers, address: str) -> str:
    server = answers.server_address or address or "SERVER"
    path = answers.path.rstrip("/")
    mount = answers.client_mount_point
    pins = answers.pinned_uids()
    accounts = []
    if answers.gid:
        accounts.append(f"  groupadd -g {answers.gid} {answers.group}")
    for user in answers.users:
        if user in pins:
            accounts.append(f"  useradd -m -u {pins[user]} {user}")
    if accounts:
        accounts.append(
            "  " + " && ".join(f"gpasswd -a {user} {answers.group}" for user in answers.users)
        )
    return "\n".join(
        [
            "On each client (as root), with the same ids as here:",
            "  apt install nfs-common",
            f"  mkdir -p {mount}",
            *accounts,
            f"  echo '{server}:{path} {mount} nfs4 _netdev,nofail,hard 0 0' >> /etc/fstab",
            "  mount -a",
            f"_netdev waits for the network at boot; nofail lets the client boot when {server} "
            "is down.",
        ]
    )


def docker_note(docker: str) -> str:
    detail = {
        "userns-remap": "This host runs Docker with userns-remap: root in a container is "
        "uid 100000+ here, and a container's uid 1000 is 101000",
        "rootless": "A user runs rootless Docker here: container uids map into that user's "
        "subordinate range (100000+)",
    }.get(docker, "Docker is installed here: with userns-remap or rootless Docker, "
          "container uids map into a subordinate range (100000+)")  # fmt: skip
    return (
        f"{detail}. A container that bind-mounts the share therefore sees other numbers than "
        "alice's and bob's: their private folders stay closed to it and its files belong to "
        "nobody the share knows. Run such a container as the user's id mapped back "
        "(--user, or --userns=host), or give it its own folder."
    )
