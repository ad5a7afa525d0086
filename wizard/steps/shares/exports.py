"""The export, as the kernel server and as NFS-Ganesha want it (pure text rendering).

Both say the same thing: one folder, NFSv4 only, AUTH_SYS, writes committed before the reply
(``sync``), root squashed unless the admin trusts the clients, and only the listed networks.
"""

from __future__ import annotations

import re

BEGIN = "# BEGIN hostwiz shares (managed by hostwiz: edit with hostwiz, not by hand)"
END = "# END hostwiz shares"
EXPORT_ID = 4242
"""Ganesha's Export_Id for hostwiz's export (any number other exports do not use)."""


NFS_CONF_V4_ONLY = (
    "# Written by hostwiz (shares step): the kernel NFS server speaks NFSv4 only.\n"
    "[nfsd]\nvers3=n\n"
)


def kernel_exports(path: str, networks: tuple[str, ...], root_squash: bool) -> str:
    """One line of /etc/exports.d/hostwiz.exports: the folder, then one entry per network."""
    squash = "root_squash" if root_squash else "no_root_squash"
    options = f"rw,sync,{squash},no_subtree_check,sec=sys"
    clients = " ".join(f"{network}({options})" for network in networks)
    return (
        "# Written by hostwiz (shares step). NFSv4 clients mount " + path + f".\n{path} {clients}\n"
    )


def ganesha_block(
    path: str, networks: tuple[str, ...], root_squash: bool, *, core: bool = True
) -> str:
    """hostwiz's section of ganesha.conf: NFSv4 only over TCP (no rpcbind needed), and one
    EXPORT that nobody may use except the listed networks."""
    squash = "Root_Squash" if root_squash else "No_Root_Squash"
    lines = [BEGIN]
    if core:
        lines += [
            "NFS_CORE_PARAM {",
            "    Protocols = 4;",
            "    Enable_UDP = false;",
            "    Enable_NLM = false;",
            "    Enable_RQUOTA = false;",
            "}",
            "NFSV4 {",
            "    # No 90 s grace period after each restart (it blocks every open). Clients",
            "    # re-take their locks themselves; fine for home and shared folders.",
            "    Graceless = true;",
            "}",
        ]
    lines += [
        "EXPORT {",
        f"    Export_Id = {EXPORT_ID};",
        f"    Path = {path};",
        f"    Pseudo = {path};",
        "    Protocols = 4;",
        "    Transports = TCP;",
        "    SecType = sys;",
        "    Access_Type = None;",
        f"    Squash = {squash};",
        "    Anonymous_Uid = 65534;",
        "    Anonymous_Gid = 65534;",
        "    FSAL { Name = VFS; }",
        "    CLIENT {",
        f"        Clients = {', '.join(networks)};",
        "        Access_Type = RW;",
        "    }",
        "}",
        END,
    ]
    return "\n".join(lines) + "\n"


def without_section(text: str) -> str:
    """``text`` without hostwiz's section (the admin's own lines stay as they were)."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == BEGIN:
            inside = True
        elif inside and line.rstrip("\n") == END:
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)


def with_section(text: str, section: str) -> str:
    """``text`` with hostwiz's section replaced by ``section`` (appended at the end)."""
    rest = without_section(text)
    if rest and not rest.endswith("\n"):
        rest += "\n"
    return rest + section


def _active_lines(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def defines_block(text: str, block: str) -> bool:
    """Whether the admin's part of ganesha.conf (comments aside) opens a ``block``."""
    return bool(re.search(rf"(?im)^\s*{block}\s*\{{", _active_lines(without_section(text))))


def other_export_ids(text: str) -> set[int]:
    """Export_Id values the admin's part of ganesha.conf already uses."""
    found = re.findall(r"(?i)export_id\s*=\s*(\d+)", _active_lines(without_section(text)))
    return {int(number) for number in found}
