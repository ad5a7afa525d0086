"""Step: SSH hardening (seed 003): keys only, root without passwords, strong host keys.

hostwiz writes one drop-in, ``/etc/ssh/sshd_config.d/00-hostwiz.conf``. sshd keeps the *first*
value it reads for most keywords and reads the drop-ins where the main file includes them (at
its top on Debian and Ubuntu), so a file that sorts first wins over the main file and over
cloud images' ``50-cloud-init.conf`` (which often turns passwords back on).

The step refuses to plan a change that would lock out the admin running it: the user hostwiz
is logged in as must still be allowed in, with a key, after the change.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.answers import describe
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact
from wizard.plan import Plan
from wizard.steps.base import Status, StepStatus
from wizard.transport.base import Transport

MAIN_CONFIG = "/etc/ssh/sshd_config"
DROP_IN = "/etc/ssh/sshd_config.d/00-hostwiz.conf"
INCLUDE_LINE = "Include /etc/ssh/sshd_config.d/*.conf"
HOST_KEY_ALGORITHMS = {
    "ed25519": ("ssh-ed25519",),
    "rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ecdsa": ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
}


@dataclass(frozen=True)
class SshAnswers:
    permit_root_login: Literal["prohibit-password", "no"] = field(
        default="prohibit-password",
        metadata=describe(
            "Root login",
            "prohibit-password: root may log in with a key only. no: root may not log in at "
            "all (log in as yourself and use sudo).",
        ),
    )
    password_authentication: bool = field(
        default=False,
        metadata=describe(
            "Password logins",
            "false: only keys are accepted, so password guessing bots get nowhere.",
        ),
    )
    allow_users: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Allowed users",
            "If set, only these users may log in over SSH (comma-separated; * wildcards).",
        ),
    )
    allow_groups: tuple[str, ...] = field(
        default=(),
        metadata=describe("Allowed groups", "If set, only members of these groups may log in."),
    )
    login_grace_time: int = field(
        default=30,
        metadata=describe(
            "Login grace time", "Seconds a client has to log in before sshd hangs up."
        ),
    )
    max_auth_tries: int = field(
        default=3,
        metadata=describe(
            "Tries per connection", "Authentication attempts allowed per connection."
        ),
    )
    host_key_types: tuple[str, ...] = field(
        default=("ed25519", "rsa"),
        metadata=describe(
            "Host key types",
            "Host key types sshd offers: ed25519 and rsa are recommended; ecdsa is dropped by "
            "default (seed advice), dsa is never offered.",
        ),
    )
    x11_forwarding: bool = field(
        default=False,
        metadata=describe("X11 forwarding", "Servers rarely need graphical forwarding: keep off."),
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
h=$(getent passwd "$u" | cut -d: -f6)
[ -s "$h/.ssh/authorized_keys" ] && echo "keys yes" || echo "keys no\"""",
    parse_login,
)


def parse_effective(code: int, out: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key:
            config.setdefault(key.lower(), value.strip())
    return config


EFFECTIVE = Fact("sshd_effective", "sshd -T 2>/dev/null", parse_effective)
"""sshd's effective configuration (``sshd -T``): lower-case keyword -> value."""

MAIN = file_fact(MAIN_CONFIG)
DROP = file_fact(DROP_IN)


def drop_in_text(answers: SshAnswers) -> str:
    algorithms = [alg for kind in answers.host_key_types for alg in HOST_KEY_ALGORITHMS[kind]]
    lines = [
        "# Written by hostwiz (SSH hardening). sshd keeps the first value it reads, and this",
        "# file sorts first among the drop-ins, so these settings win. Undo: hostwiz rollback.",
        f"PermitRootLogin {answers.permit_root_login}",
        f"PasswordAuthentication {'yes' if answers.password_authentication else 'no'}",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "PubkeyAuthentication yes",
        f"LoginGraceTime {answers.login_grace_time}",
        f"MaxAuthTries {answers.max_auth_tries}",
        f"X11Forwarding {'yes' if answers.x11_forwarding else 'no'}",
        f"HostKeyAlgorithms {','.join(algorithms)}",
    ]
    if answers.allow_users:
        lines.append(f"AllowUsers {' '.join(answers.allow_users)}")
    if answers.allow_groups:
        lines.append(f"AllowGroups {' '.join(answers.allow_groups)}")
    return "\n".join(lines) + "\n"


def lockout_problem(answers: SshAnswers, login: LoginUser) -> str:
    """Why the logged-in admin could not get back in after this change ("" if they could)."""
    user = login.name
    if user == "root" and answers.permit_root_login == "no":
        return "you are logged in as root, and this change forbids root logins"
    if answers.allow_users and not any(
        fnmatch.fnmatch(user, pattern.split("@")[0]) for pattern in answers.allow_users
    ):
        return f"{user} (the user you are logged in as) is not in AllowUsers"
    if answers.allow_groups and not set(login.groups) & set(answers.allow_groups):
        return f"{user} is in none of the allowed groups ({', '.join(answers.allow_groups)})"
    if not answers.password_authentication and not login.has_keys:
        return f"{user} has no SSH key installed (~/.ssh/authorized_keys is empty)"
    return ""


def _with_include(main: FileState) -> WriteFile | None:
    text = main.text
    if any(line.strip().startswith("Include") and "sshd_config.d" in line
           for line in text.splitlines()):  # fmt: skip
        return None
    return WriteFile(
        MAIN_CONFIG,
        f"{INCLUDE_LINE}\n{text}".encode(),
        main.mode,
        main.owner,
        main.group,
        why="make sshd read its drop-in folder first",
    )


class SshHardeningStep:
    name = "ssh"
    title = "SSH hardening"
    explanation = (
        "Makes SSH accept keys only, so that the password-guessing bots that hit every public "
        "server get nowhere; keeps root from logging in with a password; offers only strong host "
        "key types; and can limit who may log in at all. hostwiz refuses a setting that would "
        "lock you out, checks the new configuration with sshd -t before reloading, and only "
        "keeps the change once a brand-new SSH connection gets in."
    )
    answers_type = SshAnswers

    def facts(self, answers: SshAnswers) -> list[Fact[Any]]:
        return [MAIN, DROP, EFFECTIVE, LOGIN, SERVICE_MANAGER]

    def plan(self, answers: SshAnswers, facts: Facts) -> Plan:
        unknown = [kind for kind in answers.host_key_types if kind not in HOST_KEY_ALGORITHMS]
        if unknown or not answers.host_key_types:
            raise PlanConflict(
                f"unknown host key type(s): {', '.join(unknown) or '(none given)'}.",
                "Use ed25519, rsa or ecdsa (ed25519 and rsa recommended).",
            )
        login = facts[LOGIN]
        problem = lockout_problem(answers, login)
        if problem:
            raise PlanConflict(
                f"this would lock you out: {problem}.",
                "Log in as a user who stays allowed, with a key (for example: add your key to "
                "admin's ~/.ssh/authorized_keys and connect as admin@HOST), then run this step "
                "again; or change the answers.",
            )
        actions: list[Action] = []
        main = facts[MAIN]
        include = _with_include(main)
        if include:
            actions.append(include)
        drop = facts[DROP]
        wanted = drop_in_text(answers).encode()
        if not drop.exists or drop.content != wanted or drop.mode != 0o644:
            actions.append(WriteFile(DROP_IN, wanted, 0o644, why="hardened sshd settings"))
        if actions:
            manager = facts[SERVICE_MANAGER]
            reload = "systemctl reload ssh" if manager == "systemd" else "/etc/init.d/ssh reload"
            actions.append(
                RunCommand(
                    f"sshd -t && {reload}",
                    why="check the new configuration (sshd -t), then reload sshd; open "
                    "sessions stay connected",
                    undo=reload,
                )
            )
        notes = (
            "Open sessions stay connected; hostwiz keeps the change only after a new "
            "connection logs in.",
        )
        return Plan(self.name, tuple(actions), before=(main, drop), notes=notes if actions else ())

    def health(self, transport: Transport, answers: SshAnswers, facts: Facts) -> list[str]:
        effective = parse_effective(0, transport.run("sshd -T").out)
        wanted = {
            "permitrootlogin": "without-password"
            if answers.permit_root_login == "prohibit-password"
            else "no",
            "passwordauthentication": "yes" if answers.password_authentication else "no",
        }
        wrong = [f"{key} is {effective.get(key)!r}" for key, value in wanted.items()
                 if effective.get(key) not in {value, answers.permit_root_login}]  # fmt: skip
        return [f"sshd's effective configuration differs: {', '.join(wrong)}"] if wrong else []

    def status(self, answers: SshAnswers, facts: Facts) -> StepStatus:
        effective = facts[EFFECTIVE]
        try:
            plan = self.plan(answers, facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        if plan.empty:
            return StepStatus(Status.DONE, "keys only, hardened")
        if effective.get("passwordauthentication") == "yes":
            return StepStatus(Status.NOT_DONE, "password logins are allowed")
        return StepStatus(Status.DRIFTED, f"{len(plan.actions)} change(s) from the chosen settings")


SSH_HARDENING = SshHardeningStep()
