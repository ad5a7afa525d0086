"""The SSH step's answers, the files it manages, and the baseline checks on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer
from wizard.host.sshd import DROP_IN_PATH

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
            "Off: only keys are accepted, so password-guessing bots get nowhere (everyone who "
            "logs in needs their public key on the host first: ssh-copy-id). On: passwords "
            "are accepted too.",
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
            "last ten years still connects; very old clients or network gear may not. Off: "
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
    if not 0 <= answers.port <= 65535:
        # Here, not only in the planner: the form marks the field as it is typed, plain mode
        # asks again, and a preset names its file and line.
        raise InvalidAnswer(
            f"ssh.port: {answers.port} is not a port number.",
            "Use a port from 1 to 65535 (for example 2222), or 0 to keep the current port.",
        )
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
