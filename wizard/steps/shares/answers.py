"""What the admin chooses for NFS shares: who, which folders, which server, for whom.

Everything that needs no host is checked when the answers are built (a preset, ``--set`` or a
form field): user and group names, paths, networks, uid pins. What depends on the host (a
pinned uid already taken by another name, a folder full of files) is the planner's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.answers import USER_NAME, check_fields, describe
from wizard.errors import InvalidAnswer

FOLDER_PATH = re.compile(r"/[A-Za-z0-9._/-]{0,200}")
"""An absolute path without spaces, commas or quotes: it lands in /etc/exports (where a space
separates the path from the clients) and in a ganesha.conf value."""
MAX_ID = 60000
"""Above this, Debian keeps ids for nobody (65534) and dynamic ranges; pins stay below."""


def _when_enabled(label: str, help: str, **extra: Any) -> dict[str, object]:
    result: dict[str, object] = describe(label, help, show_if=("enabled", True), **extra)
    return result


@dataclass(frozen=True)
class SharesAnswers:
    enabled: bool = field(
        default=False,
        metadata=describe(
            "NFS shares",
            "On: hostwiz creates a group and its users, a private folder per user, a shared "
            "folder for the group, and serves them over NFSv4 to the networks you list.",
        ),
    )
    server: Literal["auto", "kernel", "ganesha"] = field(
        default="auto",
        metadata=_when_enabled(
            "NFS server",
            "kernel: the Linux NFS server (nfs-kernel-server; /etc/exports.d and exportfs -ra). "
            "ganesha: NFS-Ganesha, a server that runs as an ordinary process (EXPORT blocks in "
            "/etc/ganesha/ganesha.conf); it also works where the kernel server cannot, such as "
            "in containers. auto: the kernel server if it is installed, else Ganesha.",
        ),
    )
    path: str = field(
        default="/srv/nfs",
        metadata=_when_enabled(
            "Folder to share",
            "The one exported folder. Inside it hostwiz makes shared/ (the group's folder), "
            "private/NAME/ (one per user) and, if you want one, drop/.",
        ),
    )
    group: str = field(
        default="share",
        metadata=_when_enabled(
            "Group of the share",
            "Members may work in shared/. Created if missing, reused if it exists.",
            kind="user",
        ),
    )
    gid: int = field(
        default=0,
        metadata=_when_enabled(
            "Group id (gid) of the group",
            "0: the host picks one (or keeps the existing one). Over NFS the server and every "
            "client must give the group the same gid: pin it here (e.g. 3000) to use the same "
            "number everywhere.",
        ),
    )
    users: tuple[str, ...] = field(
        default=(),
        metadata=_when_enabled(
            "Users of the share",
            "Linux user names, comma separated (e.g. alice, bob). Missing ones are created "
            "(without a password: they log in with a key, or use the share from a client); "
            "existing ones are reused. Each joins the group and gets a private folder.",
        ),
    )
    uids: tuple[str, ...] = field(
        default=(),
        metadata=_when_enabled(
            "Pinned user ids",
            "NAME=UID pairs, e.g. alice=2001, bob=2002. NFS (AUTH_SYS) sends numbers, not "
            "names: alice must be 2001 on the server and on every client, or bob's client "
            "would see alice's files as his. Unpinned users keep the id the host gives them. "
            "A pinned id that another name holds on the host is refused before any change.",
        ),
    )
    drop_folder: bool = field(
        default=False,
        metadata=_when_enabled(
            "Drop folder open to all (1777)",
            "drop/: everyone may add files, nobody may delete or rename another's (like /tmp). "
            "For handing in work.",
        ),
    )
    networks: tuple[str, ...] = field(
        default=(),
        metadata=_when_enabled(
            "Networks that may mount",
            "Networks or addresses of the clients, e.g. 192.168.10.0/24. Any other host is "
            "refused by the NFS server; the firewall step offers nfs to these only.",
            item="network",
        ),
    )
    root_squash: bool = field(
        default=True,
        metadata=_when_enabled(
            "Squash root from clients",
            "true (root_squash): root on a client counts as nobody here, so a client's root "
            "cannot read private folders or plant root-owned files. Turn off only for clients "
            "you trust as much as this host.",
        ),
    )
    server_address: str = field(
        default="",
        metadata=_when_enabled(
            "Address clients use",
            "The name or address the clients mount from (for the client instructions). "
            "Empty: the host's first address.",
        ),
    )
    client_mount_point: str = field(
        default="/mnt/share",
        metadata=_when_enabled(
            "Mount point on the clients", "Where the client instructions mount the share."
        ),
    )
    remove_created_users_on_rollback: bool = field(
        default=False,
        metadata=_when_enabled(
            "Remove the users hostwiz created on rollback",
            "Off: a rollback takes the share, the folders' modes and the memberships back, "
            "but keeps users hostwiz created (they may own files by then). On: it also "
            "removes those accounts (userdel, never their files).",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "shares")
        for name in (self.group, *self.users):
            if not USER_NAME.fullmatch(name):
                raise InvalidAnswer(
                    f"shares: {name!r} is not a Linux user or group name.",
                    "Use lower case letters, digits, - and _, starting with a letter or _.",
                )
        if self.group in self.users:
            raise InvalidAnswer(
                f"shares: {self.group!r} is both the group and a user.",
                "Give the group its own name (e.g. share or team).",
            )
        if len(set(self.users)) != len(self.users):
            raise InvalidAnswer("shares.users: a user is listed twice.", "List each user once.")
        for name, value in (("path", self.path), ("client_mount_point", self.client_mount_point)):
            if not FOLDER_PATH.fullmatch(value) or "/../" in f"{value}/" or value == "/":
                raise InvalidAnswer(
                    f"shares.{name}: {value!r} is not a usable folder.",
                    "Give an absolute path of letters, digits, . _ - and / (no spaces, no "
                    "'..'), e.g. /srv/nfs.",
                )
        if self.server_address and not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", self.server_address):
            raise InvalidAnswer(
                f"shares.server_address: {self.server_address!r} is not a host name or address.",
                "E.g. nas.example.org or 192.168.10.5.",
            )
        if not 0 <= self.gid <= MAX_ID:
            raise InvalidAnswer(f"shares.gid: {self.gid} is out of range.", f"Use 1 to {MAX_ID}.")
        self.pinned_uids()

    def pinned_uids(self) -> dict[str, int]:
        """``uids`` as name -> uid (checked: known users, numbers in range, no id twice)."""
        pins: dict[str, int] = {}
        for entry in self.uids:
            name, sep, number = entry.partition("=")
            name, number = name.strip(), number.strip()
            if not sep or not number.isdigit() or not 1000 <= int(number) <= MAX_ID:
                raise InvalidAnswer(
                    f"shares.uids: {entry!r} is not NAME=UID with a uid from 1000 to {MAX_ID}.",
                    "E.g. alice=2001 (ids below 1000 belong to the system).",
                )
            if name not in self.users:
                raise InvalidAnswer(
                    f"shares.uids: {name!r} is not one of the share's users.",
                    f"Pin ids of the users listed in shares.users ({', '.join(self.users)}).",
                )
            if int(number) in pins.values():
                raise InvalidAnswer(
                    f"shares.uids: uid {number} is pinned twice.", "Give each user its own uid."
                )
            pins[name] = int(number)
        return pins
