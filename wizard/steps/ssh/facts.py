"""What the SSH step reads from the host: the login, the accounts, sshd's effective settings
and its files."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from wizard.facts import Fact, file_fact
from wizard.host.sshd import EFFECTIVE_COMMAND
from wizard.steps.ssh.answers import (
    BANNER_FILE,
    DROP_IN,
    MAIN_CONFIG,
    SshAnswers,
)
from wizard.steps.ssh.port import (
    SOCKET_DROP_IN,
    port_files_fact,
)


@dataclass(frozen=True)
class LoginUser:
    """Who hostwiz is logged in as, and whether that user can log in with a key."""

    name: str
    groups: tuple[str, ...]
    has_keys: bool


def parse_login(code: int, out: str) -> LoginUser:
    values = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return LoginUser(
        values.get("user", "root").strip(),
        tuple(values.get("groups", "").split()),
        values.get("keys", "no").strip() == "yes",
    )


LOGIN = Fact(
    "ssh_login",
    """u="${SUDO_USER:-$(id -un)}"; echo "user $u"; echo "groups $(id -Gn "$u")"
h=$(getent passwd "$u"); h=${h#*:*:*:*:*:}; h=${h%%:*}
[ -s "$h/.ssh/authorized_keys" ] && echo "keys yes" || echo "keys no\"""",
    parse_login,
)


@dataclass(frozen=True)
class Accounts:
    """The user and group names the host knows (``getent``: local files, LDAP…)."""

    users: frozenset[str]
    groups: frozenset[str]


def parse_accounts(code: int, out: str) -> Accounts:
    users, _, groups = out.partition("--groups--\n")
    return Accounts(frozenset(users.split()), frozenset(groups.split()))


ACCOUNTS = Fact(
    "ssh_accounts",
    "getent passwd | cut -d: -f1; echo --groups--; getent group | cut -d: -f1",
    parse_accounts,
)


def unknown_account_warnings(answers: SshAnswers, accounts: Accounts) -> tuple[str, ...]:
    """A warning for each AllowUsers/AllowGroups name (no wildcards) the host does not know:
    sshd takes such a name silently, and nobody of that name can log in."""
    warnings = []
    lists = (("user", "AllowUsers", answers.allow_users, accounts.users),
             ("group", "AllowGroups", answers.allow_groups, accounts.groups))  # fmt: skip
    for kind, keyword, patterns, known in lists:
        for pattern in patterns:
            name = pattern.split("@")[0]
            if any(char in name for char in "*?!") or name in known:
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1)
            guess = f": did you mean {close[0]}?" if close else "."
            warnings.append(
                f"{name} is not a {kind} on this host{guess} {keyword} would list it anyway, "
                f"and no {kind} of that name can log in until one exists."
            )
    return tuple(warnings)


def parse_effective(code: int, out: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key:
            config.setdefault(key.lower(), value.strip())
    return config


EFFECTIVE = Fact("sshd_effective", EFFECTIVE_COMMAND, parse_effective)
"""sshd's effective configuration (``sshd -T``): lower-case keyword -> value."""

MAIN = file_fact(MAIN_CONFIG)
DROP = file_fact(DROP_IN)
BANNER = file_fact(BANNER_FILE)
SOCKET_DROP = file_fact(SOCKET_DROP_IN)


PORT_FILES = port_files_fact(DROP_IN)
