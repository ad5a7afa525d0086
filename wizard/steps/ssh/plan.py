"""Planning the SSH step: one drop-in, the main file's Include and Port lines, the banner,
and a checked reload; refused when it would lock the admin out."""

from __future__ import annotations

import fnmatch

from wizard.actions import Action, FileState, RemoveFile, RunCommand, WriteFile, ensure_file
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Facts
from wizard.plan import Plan, PortMove
from wizard.steps.ssh.answers import (
    BANNER_FILE,
    DROP_IN,
    HOST_KEY_ALGORITHMS,
    INCLUDE_LINE,
    MAIN_CONFIG,
    SshAnswers,
)
from wizard.steps.ssh.crypto import (
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
from wizard.steps.ssh.facts import (
    ACCOUNTS,
    BANNER,
    DROP,
    EFFECTIVE,
    LOGIN,
    MAIN,
    PORT_FILES,
    SOCKET_DROP,
    LoginUser,
    unknown_account_warnings,
)
from wizard.steps.ssh.port import (
    LISTENERS,
    SOCKET_DROP_IN,
    SSH_SOCKET,
    SSHD_LISTEN,
    only_port,
    port_in,
    reload_commands,
    socket_drop_in,
)


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
    if not port:
        return  # sshd stays where it is: who listens where is not read (plan_facts)
    others = [name for name in facts[LISTENERS].get(port, ()) if name not in {"sshd", "systemd"}]
    if others:
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


def plan(step: str, answers: SshAnswers, facts: Facts) -> Plan:
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
    if answers.port and facts[SSH_SOCKET]:
        socket = socket_drop_in(answers.port)
        if facts[SOCKET_DROP].content != socket:
            actions.append(WriteFile(SOCKET_DROP_IN, socket, 0o644, why="ssh.socket listens there"))
    actions += _banner_actions(answers, facts[BANNER])
    wanted = drop_in_text(answers, port, algorithms).encode()
    write = ensure_file(drop, wanted, mode=0o644, owner="root", group="root",
                        why="hardened sshd settings")  # fmt: skip
    if write is not None:
        actions.append(write)
    unknown_names = (
        unknown_account_warnings(answers, facts[ACCOUNTS])
        if answers.allow_users or answers.allow_groups
        else ()  # nobody named: the host's accounts are not read (plan_facts)
    )
    if not actions:
        return Plan(step, (), before=(main, drop, facts[BANNER]), warnings=unknown_names)
    apply, undo = reload_commands(facts[SERVICE_MANAGER], facts[SSH_SOCKET])
    actions.append(
        RunCommand(
            apply,
            why="check the new configuration (sshd -t), then reload sshd; open sessions "
            "stay connected",
            undo=undo,
            undo_why="reload sshd on the configuration put back (or start it, if it stopped)",
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
    # the other port files and ssh.socket's drop-in change only with a port to move to
    moving = (*facts[PORT_FILES], facts[SOCKET_DROP]) if answers.port else ()
    return Plan(
        step,
        tuple(actions),
        before=(main, drop, facts[BANNER], *moving),
        notes=notes,
        warnings=warnings,
        ssh_port=move,
    )
