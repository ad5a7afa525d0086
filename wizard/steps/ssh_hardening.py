"""Step: SSH hardening (seed 003): keys only, root without passwords, strong host keys.

hostwiz writes one drop-in, ``/etc/ssh/sshd_config.d/00-hostwiz.conf``. sshd keeps the *first*
value it reads for most keywords and reads the drop-ins where the main file includes them (at
its top on Debian and Ubuntu), so a file that sorts first wins over the main file and over
cloud images' ``50-cloud-init.conf`` (which often turns passwords back on).

The step refuses to plan a change that would lock out the admin running it: the user hostwiz
is logged in as must still be allowed in, with a key, after the change.

The rest of the usual baselines (dev-sec's ssh-baseline, Mozilla's OpenSSH guidelines, CIS
Debian 5.2) are answers with hardened defaults: log level, idle-client checks, sessions per
connection, agent and TCP forwarding, compression, TCP keepalives, an optional banner, and
strong algorithm lists limited to what the host's OpenSSH supports and hostwiz's own client
speaks (:mod:`wizard.steps.ssh_crypto`). The health check wants ``sshd -T`` to show each.

It can also move sshd to another port (:mod:`wizard.steps.ssh_port`). Its plan then says so
(``Plan.ssh_port``), and the transaction confirms over a new connection to the new port: the
move is only kept once the new port answers with the host's known key.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.actions import Action, FileState, RemoveFile, RunCommand, WriteFile
from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact
from wizard.host.sshd import DROP_IN_PATH
from wizard.plan import Plan, PortMove
from wizard.steps.base import Status, StepStatus
from wizard.steps.ssh_crypto import (
    KEYWORDS,
    KINDS,
    SUPPORTED,
    Algorithms,
    client_problem,
    missing_kinds,
    paramiko_algorithms,
    strong_subset,
    with_fallback,
)
from wizard.steps.ssh_port import (
    LISTENERS,
    SSH_SOCKET,
    SSHD_LISTEN,
    listen_problems,
    listening_script,
    only_port,
    parse_listen,
    parse_listeners,
    port_files_fact,
    port_in,
    reload_commands,
)
from wizard.transport.base import Transport

MAIN_CONFIG = "/etc/ssh/sshd_config"
DROP_IN = DROP_IN_PATH
INCLUDE_LINE = "Include /etc/ssh/sshd_config.d/*.conf"
BANNER_FILE = "/etc/ssh/hostwiz-banner"
BANNER_MAX = 2000
"""Characters of banner text: sshd sends it to every client before login, keep it short."""
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
            item="user_pattern",
        ),
    )
    allow_groups: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Allowed groups",
            "If set, only members of these groups may log in.",
            item="group_pattern",
        ),
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
            "default (hardening guides advise it: one key type fewer to trust and protect), "
            "dsa (broken) is never offered.",
            item="word",
        ),
    )
    x11_forwarding: bool = field(
        default=False,
        metadata=describe("X11 forwarding", "Servers rarely need graphical forwarding: keep off."),
    )
    log_level: Literal["VERBOSE", "INFO"] = field(
        default="VERBOSE",
        metadata=describe(
            "Log detail",
            "VERBOSE also logs the fingerprint of the key each login used, so the auth log "
            "(journalctl -u ssh, or /var/log/auth.log) tells whose key got in. INFO: sshd's "
            "default, without fingerprints.",
        ),
    )
    client_alive_interval: int = field(
        default=300,
        metadata=describe(
            "Idle check (seconds)",
            "After this many seconds without a word from the client, sshd asks whether it is "
            "still there (through the encrypted connection). 0 turns the check off.",
        ),
    )
    client_alive_count_max: int = field(
        default=2,
        metadata=describe(
            "Unanswered idle checks",
            "sshd hangs up after this many idle checks go unanswered: with 300 and 2, a "
            "connection whose client vanished (laptop closed, network gone) ends after about "
            "10 minutes instead of lingering. Live sessions answer by themselves, however "
            "long they sit idle.",
        ),
    )
    max_sessions: int = field(
        default=10,
        metadata=describe(
            "Sessions per connection",
            "Shells, commands and file transfers one SSH connection may run at the same time "
            "(10 is sshd's default). hostwiz itself needs at least 2.",
        ),
    )
    allow_agent_forwarding: bool = field(
        default=False,
        metadata=describe(
            "Agent forwarding",
            "Lets you use the keys on your own machine from this host (ssh -A), for example "
            "to git pull from GitHub or to hop on to another server without copying a private "
            "key here. Off: anyone with root on this host could use your agent (and so your "
            "keys) while you are logged in. Turn on only if you work that way; ProxyJump "
            "(ssh -J, which needs TCP forwarding) is the safer way to hop.",
        ),
    )
    allow_tcp_forwarding: bool = field(
        default=False,
        metadata=describe(
            "TCP forwarding (tunnels)",
            "Lets SSH users open tunnels through this host: ssh -L to reach a database or web "
            "page that only listens on the server, ssh -D as a proxy, ssh -J / ProxyJump to "
            "reach other machines through this one, and VS Code Remote-SSH (it needs this on). "
            "Off: a stolen key cannot turn this host into a tunnel into your network. Turn on "
            "if you use any of these.",
        ),
    )
    compression: bool = field(
        default=False,
        metadata=describe(
            "Compression",
            "Compressing an encrypted stream can leak what it carries and adds work for the "
            "server; on today's networks it rarely helps. Keep off.",
        ),
    )
    tcp_keep_alive: bool = field(
        default=False,
        metadata=describe(
            "TCP keepalive",
            "Unencrypted TCP probes that anyone on the path can fake, and that drop a session "
            "at a short network hiccup. Off: the idle checks above (encrypted) find dead "
            "clients instead.",
        ),
    )
    strong_algorithms: bool = field(
        default=True,
        metadata=describe(
            "Strong algorithms only",
            "Key exchange, ciphers and MACs limited to modern ones (Mozilla's and ssh-audit's "
            "lists) that this host's OpenSSH supports, read with ssh -Q. Any OpenSSH from the "
            "last ten years still connects; very old clients or network gear may not. false: "
            "sshd's own defaults.",
        ),
    )
    banner: bool = field(
        default=False,
        metadata=describe(
            "Login banner",
            "Show a text (such as a legal notice) to everyone who connects, before they log "
            "in. Some company policies require one; it protects nothing by itself.",
        ),
    )
    banner_text: str = field(
        default="Authorized access only. Connections are logged.",
        metadata=describe(
            "Banner text",
            f"The text shown before login, written to {BANNER_FILE}. Plain text; new lines "
            "allowed (in a preset: a TOML multi-line string), no other control characters.",
            kind="multiline",
            show_if=("banner", True),
        ),
    )
    port: int = field(
        default=0,
        metadata=describe(
            "SSH port",
            "0 keeps the port sshd listens on now (22 on a fresh host). Another number (such "
            "as 2222) moves SSH there, and only there: fewer bots knock, though it is no real "
            "protection. hostwiz keeps the move only once a new connection gets in on the new "
            "port. Open it first in any firewall in front of the host.",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "ssh")  # answers made in code are checked like typed ones
        check_baseline(self)


def banner_problem(text: str) -> str:
    """What is wrong with a banner text ("" if nothing)."""
    if not text.strip():
        return "the banner text is empty"
    if len(text) > BANNER_MAX:
        return f"the banner text has {len(text)} characters; at most {BANNER_MAX} are allowed"
    text = text.replace("\r\n", "\n")
    bad = sorted({ch for ch in text if ch != "\n" and (ord(ch) < 32 or 127 <= ord(ch) < 160)})
    if bad:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in bad)
        return f"the banner text contains control characters ({shown})"
    return ""


def check_baseline(answers: SshAnswers) -> None:
    """Refuse values sshd would reject, or that would leave hostwiz without a session."""
    if answers.max_sessions < 2:
        raise InvalidAnswer(
            f"ssh.max_sessions = {answers.max_sessions}: hostwiz needs at least 2 sessions per "
            "connection (its shell, plus a command or a Docker API connection).",
            "Keep 10 (sshd's default) unless you have a reason.",
        )
    if answers.banner:
        problem = banner_problem(answers.banner_text)
        if problem:
            raise InvalidAnswer(
                f"ssh.banner_text: {problem}.",
                "Write plain text; new lines are fine, tabs and other control characters "
                "are not. Or set ssh.banner = false.",
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


EFFECTIVE = Fact("sshd_effective", "sshd -T 2>/dev/null", parse_effective)
"""sshd's effective configuration (``sshd -T``): lower-case keyword -> value."""

MAIN = file_fact(MAIN_CONFIG)
DROP = file_fact(DROP_IN)
BANNER = file_fact(BANNER_FILE)


PORT_FILES = port_files_fact(DROP_IN)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def baseline_settings(answers: SshAnswers, algorithms: Algorithms | None) -> dict[str, str]:
    """The baseline keywords (dev-sec, Mozilla, CIS 5.2) and their values, in file order.

    ``algorithms`` are the strong lists for this host (None: leave sshd's defaults).
    """
    settings = {
        "LogLevel": answers.log_level,
        "ClientAliveInterval": str(answers.client_alive_interval),
        "ClientAliveCountMax": str(answers.client_alive_count_max),
        "MaxSessions": str(answers.max_sessions),
        "AllowAgentForwarding": _yes(answers.allow_agent_forwarding),
        "AllowTcpForwarding": _yes(answers.allow_tcp_forwarding),
        "Compression": _yes(answers.compression),
        "TCPKeepAlive": _yes(answers.tcp_keep_alive),
    }
    if answers.strong_algorithms and algorithms is not None:
        settings.update({KEYWORDS[kind]: ",".join(algorithms.of(kind)) for kind in KINDS})
    if answers.banner:
        settings["Banner"] = BANNER_FILE
    return settings


def banner_bytes(answers: SshAnswers) -> bytes:
    """The banner file's content: the text with one final new line."""
    return (answers.banner_text.replace("\r\n", "\n").rstrip("\n") + "\n").encode()


def drop_in_text(
    answers: SshAnswers, port: int | None = None, strong: Algorithms | None = None
) -> str:
    """The drop-in's text; ``port`` (None: no Port line) is the only port sshd listens on;
    ``strong``: the strong algorithm lists for this host (None: none written)."""
    algorithms = [alg for kind in answers.host_key_types for alg in HOST_KEY_ALGORITHMS[kind]]
    lines = [
        "# Written by hostwiz (SSH hardening). sshd keeps the first value it reads, and this",
        "# file sorts first among the drop-ins, so these settings win. Undo: hostwiz rollback.",
    ]
    if port is not None:
        lines += [
            "# Unlike the settings below, every Port line adds a listener: hostwiz commented",
            "# out the others, so this is the only port sshd listens on.",
            f"Port {port}",
        ]
    lines += [
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
    lines += [f"{key} {value}" for key, value in baseline_settings(answers, strong).items()]
    return "\n".join(lines) + "\n"


def effective_differences(
    effective: dict[str, str], answers: SshAnswers, strong: Algorithms | None
) -> list[str]:
    """Baseline settings ``sshd -T`` shows with another value than the answers want.

    ``sshd -T`` prints keywords in lower case, and algorithm lists as written in the file.
    """
    wanted = {key.lower(): value for key, value in baseline_settings(answers, strong).items()}
    wanted.update(
        {
            "logingracetime": str(answers.login_grace_time),
            "maxauthtries": str(answers.max_auth_tries),
            "x11forwarding": _yes(answers.x11_forwarding),
        }
    )
    return [
        f"{key} is {effective.get(key)!r} instead of {value!r}"
        for key, value in wanted.items()
        if effective.get(key) != value
    ]


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


def _main_config(main: FileState, port: int | None) -> WriteFile | None:
    """The main file with the drop-in folder included first and, when moving, no Port lines."""
    text = main.text
    why = []
    if not any(line.strip().startswith("Include") and "sshd_config.d" in line
               for line in text.splitlines()):  # fmt: skip
        text = f"{INCLUDE_LINE}\n{text}"
        why.append("make sshd read its drop-in folder first")
    if port is not None and only_port(text, port, DROP_IN) != text:
        text = only_port(text, port, DROP_IN)
        why.append(f"leave port {port} as the only port (Port lines add listeners)")
    if not why:
        return None
    return WriteFile(
        MAIN_CONFIG, text.encode(), main.mode, main.owner, main.group, why="; ".join(why)
    )


def _other_port_files(files: tuple[FileState, ...], port: int) -> list[WriteFile]:
    """Other drop-ins' Port lines commented out, their ListenAddress ports moved."""
    writes = []
    for state in files:
        text = only_port(state.text, port, DROP_IN)
        if text != state.text:
            writes.append(
                WriteFile(state.path, text.encode(), state.mode, state.owner, state.group,
                          why=f"leave port {port} as the only port sshd listens on")
            )  # fmt: skip
    return writes


def wanted_port(answers: SshAnswers, drop: FileState) -> int | None:
    """The port the drop-in sets: the answer, or (0 = keep) the one it already sets, if any."""
    if answers.port:
        return answers.port
    return port_in(drop.text) if drop.exists else None


def _check_port(port: int, facts: Facts) -> None:
    if not 0 <= port <= 65535:
        raise PlanConflict(
            f"{port} is not a port number.",
            "Use a port from 1 to 65535 (for example 2222), or 0 to keep the current port.",
        )
    others = [name for name in facts[LISTENERS].get(port, ()) if name not in {"sshd", "systemd"}]
    if port and others:
        raise PlanConflict(
            f"port {port} is already in use on the host (by {', '.join(others)}), so sshd "
            "could not listen there.",
            "Pick a port nothing listens on (ss -ltnp on the host lists the busy ones), or 0 "
            "to keep the current port.",
        )


def _port_notes(move: PortMove) -> tuple[tuple[str, ...], tuple[str, ...]]:
    notes = (
        f"SSH moves from port {move.before} to port {move.after}, and only there. hostwiz "
        f"confirms over a new connection to port {move.after}; if it cannot get in, the host "
        f"moves SSH back to port {move.before} by itself when the safety window ends.",
        f"Afterwards: ssh -p {move.after} ..., or `Port {move.after}` for this host in your "
        "~/.ssh/config. hostwiz remembers the new port for this host.",
    )
    warnings = (
        f"Open port {move.after} first in every firewall in front of this host (a cloud "
        "security group, a router's port forward, a firewall on the host itself); if you reach "
        f"the host through a port forward, forward port {move.after} too.",
    )
    return notes, warnings


def chosen_algorithms(answers: SshAnswers, facts: Facts) -> Algorithms | None:
    """The strong algorithm lists to write (None: strong_algorithms is off).

    Refuses (PlanConflict) when the host supports no strong algorithm of a kind, or when
    hostwiz's own client could not negotiate with what is left.
    """
    if not answers.strong_algorithms:
        return None
    supported = with_fallback(facts[SUPPORTED], facts[EFFECTIVE])
    unread = missing_kinds(supported)
    if unread:
        raise PlanConflict(
            f"hostwiz could not read which {' and '.join(unread)} algorithms this host's "
            "OpenSSH supports (neither ssh -Q nor sshd -T listed any).",
            "Run sshd -T as root on the host: it says what is wrong with the configuration. "
            "Or set ssh.strong_algorithms = false to keep sshd's defaults.",
        )
    chosen = strong_subset(supported)
    missing = missing_kinds(chosen)
    if missing:
        raise PlanConflict(
            f"this host's OpenSSH supports none of the strong {' or '.join(missing)} "
            "algorithms (ssh -Q kex, ssh -Q cipher and ssh -Q mac on the host list what it "
            "supports), so hostwiz cannot limit sshd to strong ones.",
            "Update OpenSSH on the host (apt-get install --only-upgrade openssh-server), or set "
            "ssh.strong_algorithms = false to keep sshd's defaults.",
        )
    problem = client_problem(chosen, paramiko_algorithms())
    if problem:
        raise PlanConflict(
            f"this would lock hostwiz out: {problem}.",
            "Set ssh.strong_algorithms = false to keep sshd's defaults, or update hostwiz "
            "(its paramiko) so that it speaks a modern algorithm of that kind.",
        )
    return chosen


def _banner_actions(answers: SshAnswers, current: FileState) -> list[Action]:
    """Write the banner file when the banner is on; remove hostwiz's file when it is off."""
    if answers.banner:
        text = banner_bytes(answers)
        if current.exists and current.content == text and current.mode == 0o644:
            return []
        return [WriteFile(BANNER_FILE, text, 0o644, why="the text sshd shows before login")]
    if current.exists:
        return [RemoveFile(BANNER_FILE, why="the login banner is off")]
    return []


class SshHardeningStep:
    name = "ssh"
    title = "SSH hardening"
    explanation = (
        "Makes SSH accept keys only, so that the password-guessing bots that hit every public "
        "server get nowhere; keeps root from logging in with a password; offers only strong host "
        "key types and modern algorithms; drops vanished clients, logs which key logged in, "
        "turns off forwarding you do not use; and can limit who may log in at all. hostwiz "
        "refuses a setting that would "
        "lock you out, checks the new configuration with sshd -t before reloading, and only "
        "keeps the change once a brand-new SSH connection gets in."
    )
    answers_type = SshAnswers

    def facts(self, answers: SshAnswers) -> list[Fact[Any]]:
        return [MAIN, DROP, EFFECTIVE, LOGIN, SERVICE_MANAGER, SSHD_LISTEN, PORT_FILES, LISTENERS,
                SSH_SOCKET, SUPPORTED, BANNER, ACCOUNTS]  # fmt: skip

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
        _check_port(answers.port, facts)
        algorithms = chosen_algorithms(answers, facts)
        actions: list[Action] = []
        main, drop = facts[MAIN], facts[DROP]
        port = wanted_port(answers, drop)
        include = _main_config(main, answers.port or None)
        if include:
            actions.append(include)
        others = _other_port_files(facts[PORT_FILES], answers.port) if answers.port else []
        actions += others
        actions += _banner_actions(answers, facts[BANNER])
        wanted = drop_in_text(answers, port, algorithms).encode()
        if not drop.exists or drop.content != wanted or drop.mode != 0o644:
            actions.append(WriteFile(DROP_IN, wanted, 0o644, why="hardened sshd settings"))
        unknown_names = unknown_account_warnings(answers, facts[ACCOUNTS])
        if not actions:
            return Plan(
                self.name, (), before=(main, drop, facts[BANNER]), warnings=unknown_names
            )
        apply, undo = reload_commands(facts[SERVICE_MANAGER], facts[SSH_SOCKET])
        actions.append(
            RunCommand(
                apply,
                why="check the new configuration (sshd -t), then reload sshd; open sessions "
                "stay connected",
                undo=undo,
            )
        )
        notes: tuple[str, ...] = (
            "Open sessions stay connected; hostwiz keeps the change only after a new "
            "connection logs in.",
        )
        warnings: tuple[str, ...] = unknown_names
        listen = facts[SSHD_LISTEN]
        move = None
        if answers.port and listen.ports != (answers.port,):
            move = PortMove(listen.port, answers.port)
            port_notes, port_warnings = _port_notes(move)
            notes += port_notes
            warnings += port_warnings
        return Plan(
            self.name,
            tuple(actions),
            before=(main, drop, facts[BANNER], *(facts[PORT_FILES])),
            notes=notes,
            warnings=warnings,
            ssh_port=move,
        )

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
        wrong += effective_differences(effective, answers, chosen_algorithms(answers, facts))
        problems = [f"sshd's effective configuration differs: {', '.join(wrong)}"] if wrong else []
        if answers.port:
            listen = parse_listen(0, transport.run(SSHD_LISTEN.command).out)
            listeners = parse_listeners(0, transport.run(listening_script(answers.port)).out)
            problems += listen_problems(answers.port, listen, listeners, facts[SSH_SOCKET])
        return problems

    def status(self, answers: SshAnswers, facts: Facts) -> StepStatus:
        effective = facts[EFFECTIVE]
        try:
            plan = self.plan(answers, facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        if plan.empty:
            port = f", port {answers.port}" if answers.port else ""
            return StepStatus(Status.DONE, f"keys only, hardened{port}")
        if effective.get("passwordauthentication") == "yes":
            return StepStatus(Status.NOT_DONE, "password logins are allowed")
        return StepStatus(Status.DRIFTED, f"{len(plan.actions)} change(s) from the chosen settings")


SSH_HARDENING = SshHardeningStep()
