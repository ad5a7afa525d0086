"""The shares step across a site: one NFS server and its clients (issue #14, multi-host).

Over NFS with AUTH_SYS the client sends numbers, not names: alice must be the same uid (and
the share's group the same gid) on the server and on every client. So the step reads every
host's accounts first, picks ids that hold everywhere (an existing id when the name exists
somewhere and that id is free elsewhere, else one free on every host) and refuses, naming
host, name and ids, when no single choice fits. Then, in one stage:

* the server: the single-host shares plan with those ids pinned, exported only to the
  clients' addresses (unless the answers name networks);
* each client: the same group and users with the same ids, the mount point, the fstab line
  the single-host help prints, nfs-common where it is missing and can work, and ``mount``
  only where the kernel has an NFSv4 client (elsewhere the mount happens at boot).

Its rollback is the generic site rollback: fstab is put back from the snapshot, the mount
point is removed when empty, the server's export goes as it does alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, file_fact
from wizard.plan import Plan
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.base import Need
from wizard.steps.shares import health as _health
from wizard.steps.shares.answers import MAX_ID, SharesAnswers
from wizard.steps.shares.facts import (
    ACCOUNTS,
    EXPORTS,
    GANESHA,
    NFS_VERSIONS,
    Accounts,
    folder_fact,
    nfs_host_fact,
)
from wizard.steps.shares.plan import account_actions, check_ids, folder_paths, plan
from wizard.transport.base import Transport, shell_quote

SERVER, CLIENT = "nfs-server", "nfs-client"
FSTAB = "/etc/fstab"
FSTAB_FACT = file_fact(FSTAB)
FIRST_UID, FIRST_GID = 2001, 3000


@dataclass(frozen=True)
class NfsClient:
    """What a client has for mounting: mount.nfs4, a kernel NFSv4 client, apt, its address."""

    mount_helper: bool
    kernel_nfs4: bool
    apt: bool
    address: str


def _parse_client(code: int, out: str) -> NfsClient:
    words = dict(line.partition(" ")[::2] for line in out.splitlines())
    return NfsClient(
        mount_helper="mount-helper" in words,
        kernel_nfs4="kernel-nfs4" in words,
        apt="apt" in words,
        address=words.get("address", "").strip(),
    )


CLIENT_FACT: Fact[NfsClient] = Fact(
    "shares_nfs_client",
    "\n".join(
        (
            "command -v mount.nfs4 >/dev/null 2>&1 && echo mount-helper",
            "{ grep -qw nfs4 /proc/filesystems || "
            "ls /lib/modules/$(uname -r)/kernel/fs/nfs/nfsv4.ko* ; } >/dev/null 2>&1 "
            "&& echo kernel-nfs4",
            "command -v apt-get >/dev/null 2>&1 && echo apt",
            "echo address $(hostname -I 2>/dev/null | awk '{print $1}')",
            "true",
        )
    ),
    _parse_client,
)


# ---- ids -------------------------------------------------------------------------------


def _taken(hosts: list[HostFacts], kind: str) -> set[int]:
    """Every uid (kind "user") or gid ("group") some host uses, under any name."""
    found: set[int] = set()
    for host in hosts:
        accounts = host.facts[ACCOUNTS]
        if kind == "user":
            found |= {uid for uid, _ in accounts.users.values()}
        else:
            found |= {gid for gid, _ in accounts.groups.values()}
    return found


def _holders(hosts: list[HostFacts], kind: str, name: str) -> dict[str, int]:
    """Host -> the id ``name`` has there (hosts where it exists)."""
    found: dict[str, int] = {}
    for host in hosts:
        accounts: Accounts = host.facts[ACCOUNTS]
        table: Mapping[str, tuple[int, Any]] = accounts.users if kind == "user" else accounts.groups
        if name in table:
            found[host.name] = table[name][0]
    return found


def _owner_elsewhere(hosts: list[HostFacts], kind: str, name: str, number: int) -> str:
    """ "HOST (NAME)" where another name holds ``number``, or ""."""
    for host in hosts:
        accounts: Accounts = host.facts[ACCOUNTS]
        other = (
            accounts.user_with_uid(number) if kind == "user" else accounts.group_with_gid(number)
        )
        if other and other != name:
            return f"{host.name} ({other})"
    return ""


def choose_id(
    hosts: list[HostFacts], kind: str, name: str, pinned: int, used: set[int], first: int
) -> int:
    """One id for ``name`` that is right on every host (see the module docstring)."""
    word = "uid" if kind == "user" else "gid"
    label = name if kind == "user" else f"the group {name}"
    holders = _holders(hosts, kind, name)
    numbers = sorted(set(holders.values()) | ({pinned} if pinned else set()))
    if len(numbers) > 1:
        where = ", ".join(f"{word} {n} on {h}" for h, n in holders.items())
        pin = f"; pinned {pinned}" if pinned else ""
        raise PlanConflict(
            f"{label} has different {word}s across the site ({where}{pin}). Over NFS the "
            f"client sends the number: files of {label} on the server would belong to "
            "someone else (or nobody) on a client.",
            f"Give {label} one {word} everywhere before sharing: e.g. on each host that differs "
            f"`usermod -u {numbers[0]} {name}` (groupmod -g for a group), then chown the files "
            f"`find / -xdev -{word} OLD` lists; then plan again.",
        )
    if numbers:
        number = numbers[0]
        other = _owner_elsewhere(hosts, kind, name, number)
        if other:
            raise PlanConflict(
                f"{label} is {word} {number} on "
                f"{', '.join(holders) or 'the answers (pinned)'}, but on {other} {word} "
                f"{number} belongs to another name: over NFS one would see the other's files.",
                f"Free {word} {number} on that host, or pin {label} to a {word} free on every "
                "host, then plan again.",
            )
        return number
    taken = _taken(hosts, "user") | _taken(hosts, "group") | used
    for number in range(first, MAX_ID + 1):
        if number not in taken:
            return number
    raise PlanConflict(f"no {word} is free on every host for {label}.", "Pin one by hand.")


def site_answers(answers: SharesAnswers, site: SiteFacts) -> SharesAnswers:
    """The answers with every user's uid and the group's gid pinned (the same everywhere)
    and the networks set to the clients' addresses unless the answers name networks."""
    hosts = list(site.hosts.values())
    pins = answers.pinned_uids()
    chosen: dict[str, int] = {}
    for user in answers.users:
        used = set(chosen.values()) | set(pins.values())  # a later user's pin stays free
        chosen[user] = choose_id(hosts, "user", user, pins.get(user, 0), used, FIRST_UID)
    gid = choose_id(hosts, "group", answers.group, answers.gid, set(chosen.values()), FIRST_GID)
    networks = answers.networks
    if not networks:
        networks = tuple(f"{_address(client)}/32" for client in site.with_role(CLIENT))
    return replace(
        answers,
        enabled=True,
        uids=tuple(f"{user}={uid}" for user, uid in chosen.items()),
        gid=gid,
        networks=networks,
    )


def _address(host: HostFacts) -> str:
    address = host.facts[CLIENT_FACT].address
    if not address:
        raise PlanConflict(
            f"{host.name} has no address to export to (hostname -I says nothing).",
            "Name the clients' networks in the step's networks answer.",
        )
    return address


# ---- clients ---------------------------------------------------------------------------


def fstab_line(answers: SharesAnswers, server: str) -> str:
    """The same line the single-host help tells the admin to add."""
    path = answers.path.rstrip("/")
    return f"{server}:{path} {answers.client_mount_point} nfs4 _netdev,nofail,hard 0 0"


def server_address(answers: SharesAnswers, site: SiteFacts) -> str:
    server = site.one(SERVER)
    return answers.server_address or server.facts[nfs_host_fact(answers.path)].address


def can_mount(client: NfsClient) -> bool:
    """The kernel has an NFSv4 client and mount.nfs4 is there (or stage 1 installs it)."""
    return client.kernel_nfs4 and (client.mount_helper or client.apt)


def mounted_fact(mount: str) -> Fact[bool]:
    return Fact(
        f"shares_mounted:{mount}",
        f"mountpoint -q {shell_quote(mount)} && echo mounted; true",
        lambda code, out: out.strip() == "mounted",
    )


def mount_plan(answers: SharesAnswers, host: HostFacts, name: str) -> Plan:
    """Stage 2: mount now, once the server exports (stage 1 ran on every host)."""
    mount = answers.client_mount_point
    if not can_mount(host.facts[CLIENT_FACT]) or host.facts[mounted_fact(mount)]:
        return Plan(name)
    action = RunCommand(
        f"mount {shell_quote(mount)}",
        why=f"mount the share at {mount} now (the server exports it since stage 1)",
        undo=f"umount {shell_quote(mount)} 2>/dev/null || true",
        timeout=60,
    )
    return Plan(name, (action,))


def client_plan(answers: SharesAnswers, host: HostFacts, server: str, name: str) -> Plan:
    """Stage 1 on a client: accounts with the site's ids, nfs-common, mount point, fstab."""
    accounts = host.facts[ACCOUNTS]
    check_ids(answers, accounts)
    client = host.facts[CLIENT_FACT]
    mount = answers.client_mount_point
    actions: list[Action] = list(account_actions(answers, accounts))
    notes: list[str] = []
    if actions:
        ids = ", ".join(f"{user} uid {uid}" for user, uid in answers.pinned_uids().items())
        notes.append(
            f"The same ids on every host of the site: {ids}, the group {answers.group} gid "
            f"{answers.gid}. NFS sends numbers, not names: other numbers here would show "
            "someone else's files, or none."
        )
    install = not client.mount_helper and client.apt and client.kernel_nfs4
    if install:
        actions.append(
            RunCommand(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y nfs-common",
                why="install the NFS client tools (mount.nfs4)",
                irreversible=True,
                timeout=600,
            )
        )
    if not host.facts[folder_fact(mount)].exists:
        actions.append(
            RunCommand(
                f"mkdir -p {shell_quote(mount)}",
                why=f"create the mount point {mount}",
                undo=f"rmdir {shell_quote(mount)} 2>/dev/null || true",
                undo_why=f"remove {mount} if it is empty",
            )
        )
    line = fstab_line(answers, server)
    fstab: FileState = host.facts[FSTAB_FACT]
    text = fstab.text if fstab.exists else ""
    written = False
    if line not in text.splitlines():
        body = text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
        actions.append(
            WriteFile(FSTAB, body.encode(), fstab.mode if fstab.exists else 0o644,
                      why=f"mount {server}:{answers.path.rstrip('/')} at {mount} at boot "
                      "(_netdev: after the network; nofail: boot even when the server is down)")
        )  # fmt: skip
        written = True
    if written and not can_mount(client):
        notes.append(
            f"{host.name} has no NFSv4 client (mount.nfs4 or kernel support is missing), so "
            f"hostwiz does not mount now: the fstab line mounts {mount} at boot, or with "
            "`mount -a` once nfs-common is installed and the kernel has NFSv4."
        )
    if not actions:
        return Plan(name)
    return Plan(name, tuple(actions), before=(fstab,) if written else (), notes=tuple(notes))


# ---- the step --------------------------------------------------------------------------


class SharesSiteStep:
    name = "nfs"
    title = "NFS server and clients"
    explanation = (
        "One host serves the shares folder over NFSv4; the clients get the same users and "
        "group with the same ids (NFS sends numbers, not names), a mount point and an fstab "
        "line."
    )
    answers_type = SharesAnswers
    roles: tuple[str, ...] = (SERVER, CLIENT)
    stages = 2

    def facts(self, answers: SharesAnswers, role: str) -> list[Fact[Any]]:
        common: list[Fact[Any]] = [ACCOUNTS, CLIENT_FACT, nfs_host_fact(answers.path)]
        if role == SERVER:
            return [*common, EXPORTS, GANESHA, NFS_VERSIONS, SERVICE_MANAGER,
                    *(folder_fact(path) for path in folder_paths(answers))]  # fmt: skip
        mount = answers.client_mount_point
        return [*common, FSTAB_FACT, folder_fact(mount), mounted_fact(mount)]

    def produces(self, answers: SharesAnswers, stage: int, role: str) -> list[Fact[Any]]:
        return []

    def plan(self, answers: SharesAnswers, stage: int, site: SiteFacts) -> Mapping[str, Plan]:
        chosen = site_answers(answers, site)
        server = site.one(SERVER)
        clients = [host for host in site.with_role(CLIENT) if host.name != server.name]
        if stage == 2:
            return {host.name: mount_plan(chosen, host, self.name) for host in clients}
        plans: dict[str, Plan] = {}
        alone = plan(chosen, server.facts)
        plans[server.name] = replace(alone, step=self.name)
        address = server_address(chosen, site)
        for client in clients:
            plans[client.name] = client_plan(chosen, client, address, self.name)
        return plans

    def needs(self, answers: SharesAnswers, site: SiteFacts) -> Mapping[str, tuple[Need, ...]]:
        """The server needs nfs from every client (its firewall offers it to them)."""
        server = site.one(SERVER)
        networks = answers.networks or tuple(
            _address(c) for c in site.with_role(CLIENT) if c.name != server.name
        )
        why = f"the nfs step's clients mount {answers.path} from {server.name}"
        return {server.name: (Need("nfs", networks, why),)}

    def health(
        self, transport: Transport, answers: SharesAnswers, stage: int, host: str, site: SiteFacts
    ) -> list[str]:
        chosen = site_answers(answers, site)
        roles = site.hosts[host].roles
        if SERVER in roles:
            return (
                [] if stage == 2 else _health.health(transport, chosen, self.facts(chosen, SERVER))
            )
        if stage == 2:
            mount = shell_quote(chosen.client_mount_point)
            if transport.run(f"mountpoint -q {mount}").ok:
                return []
            return [f"{chosen.client_mount_point} is not mounted on {host}"]
        line = fstab_line(chosen, server_address(chosen, site))
        if transport.run(f"grep -qxF {shell_quote(line)} {FSTAB}").ok:
            return []
        return [f"the line {line!r} is missing from {FSTAB} on {host}"]


SHARES_SITE = SharesSiteStep()
