"""The pure planner: daemon.json, the certificates :func:`~wizard.steps.tls.local.prepare`
issued, dockerd's listeners and one restart."""

from __future__ import annotations

import shlex
import textwrap
from dataclasses import dataclass, fields
from typing import Any

from wizard.actions import Action, FileState, RunCommand, WriteFile, ensure_file
from wizard.daemon_json import check_types, command_line_flags, dumps, flag_conflicts, parse
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Facts
from wizard.host.docker import DAEMON_JSON, DAEMON_JSON_PATH, DOCKERD, restart_dockerd
from wizard.pki import (
    IssuedCert,
    cert_info,
)
from wizard.plan import Plan
from wizard.steps.tls.answers import (
    DROP_IN_PATH,
    HOST_CA_PATH,
    SERVER_CERT_PATH,
    SERVER_KEY_PATH,
    TLS_DIR,
    TLS_KEYS,
    UNIX_SOCKET,
    DockerTlsAnswers,
)
from wizard.steps.tls.facts import (
    CONFIGURED_CERT,
    DROP_IN,
    HOST_CA,
    SERVER_CERT,
    SERVER_KEY,
    TLS_DIR_META,
)

# ---- prepared answers ---------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """Certificates for one plan: PEM bytes only, made by :func:`prepare`."""

    ca_name: str
    ca_cert: bytes
    server_names: tuple[str, ...]
    server: IssuedCert | None
    """A new server certificate and key; None keeps the host's, which must be ``kept``."""
    kept: bytes
    """The host's server certificate judged still good (when ``server`` is None)."""
    server_reason: str
    client: IssuedCert
    """The admin's client certificate: new, or read back from the bundle."""
    client_new: bool
    client_reason: str

    @property
    def server_cert(self) -> bytes:
        return self.server.cert_pem if self.server else self.kept


@dataclass(frozen=True)
class PreparedTls(DockerTlsAnswers):
    """The answers as :func:`~wizard.steps.tls.local.prepare` leaves them: the same questions,
    answered the same, plus what was made for them on this machine. Prepared answers are
    answers, so the step is a ``Step[DockerTlsAnswers]`` and its planner finds the material
    with :func:`prepared_of`. Never a question: forms, presets and ``--set`` use
    :class:`DockerTlsAnswers` (``answers_type``) and never see these fields."""

    host: str = ""
    """The host's label: names the bundle folder and the docker context."""
    client_address: str = ""
    """What clients (and the health check) connect to: tls.address, else the SSH HostName."""
    client_bundle: str = ""
    """The client bundle's folder: tls.bundle_dir, else the default for the host."""
    context: str = ""
    material: TlsMaterial | None = None
    """None when the step is off or an existing setup is reused."""

    @classmethod
    def of(
        cls, answers: DockerTlsAnswers, *, host: str, client_address: str, client_bundle: str,
        context: str,
    ) -> PreparedTls:  # fmt: skip
        asked = {item.name: getattr(answers, item.name) for item in fields(DockerTlsAnswers)}
        return cls(**asked, host=host, client_address=client_address,
                   client_bundle=client_bundle, context=context)  # fmt: skip


def prepared_of(answers: DockerTlsAnswers) -> PreparedTls | None:
    """What ``prepare`` made for these answers; None for answers as asked."""
    return answers if isinstance(answers, PreparedTls) else None


class ExistingTlsSetup(PlanConflict):
    title = "The host already has a TLS setup"


class NeedsPassphrase(PlanConflict):
    title = "The CA passphrase is needed"


# ---- the pure parts -----------------------------------------------------------------------


def _daemon_config(facts: Facts) -> dict[str, Any]:
    current, reason = parse(facts[DAEMON_JSON].text)
    if current is None:
        raise PlanConflict(
            f"{DAEMON_JSON_PATH} on the host is not valid JSON ({reason}).",
            "Fix it first: the Docker engine step can replace it (docker.replace_invalid_config "
            "= true), or edit it on the host.",
        )
    return current


def foreign_setup(current: dict[str, Any], facts: Facts, ca_pem: bytes | None) -> list[str]:
    """What about the host's TLS setup is not hostwiz's (empty: none, or ours)."""
    found: list[str] = []
    for key, ours in TLS_KEYS.items():
        if key in current and current[key] != ours:
            found.append(f'"{key}": "{current[key]}" (hostwiz uses {ours})')
    if current.get("tlsverify") is False:
        found.append('"tlsverify": false (clients are not asked for a certificate)')
    elif current.get("tls") and not current.get("tlsverify"):
        found.append('"tls": true without "tlsverify" (clients are not asked for a certificate)')
    host_ca = facts[HOST_CA]
    if ca_pem is not None and host_ca.exists and host_ca.content != ca_pem:
        issuer = cert_info(host_ca.content)
        name = issuer.subject if issuer else "an unreadable certificate"
        found.append(f"{HOST_CA_PATH} is the CA {name!r}, not your CA")
    if found:
        other = facts[CONFIGURED_CERT]
        if other.info is not None and other.state.path != SERVER_CERT_PATH:
            info = other.info
            found.append(
                f"its server certificate {other.state.path} is issued by {info.issuer!r} and "
                f"valid until {info.not_after:%Y-%m-%d}"
            )
    return found


def _existing_conflict(found: list[str]) -> ExistingTlsSetup:
    listed = "; ".join(found)
    return ExistingTlsSetup(
        f"dockerd on this host is already set up for TLS by someone else: {listed}. hostwiz "
        "changes nothing until you choose.",
        'Set tls.existing = "replace" to see the plan (a diff of daemon.json and the '
        "certificates) for installing hostwiz's CA and certificates instead: clients of the old "
        'CA will be refused afterwards. Or set tls.existing = "reuse" to keep the setup as it is.',
    )


def _host_flags(args: tuple[str, ...]) -> tuple[list[str], tuple[str, ...]]:
    """The ``-H``/``--host`` values on a dockerd command line, and the line without them."""
    values: list[str] = []
    rest: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in {"-H", "--host"}:
            if index + 1 < len(args):
                values.append(args[index + 1])
            skip = True
        elif arg.startswith(("--host=", "-H=")):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith("-H") and not arg.startswith("--"):
            values.append(arg[2:])
        else:
            rest.append(arg)
    return values, tuple(rest)


def _listener(answers: DockerTlsAnswers) -> str:
    address = answers.listen_address
    return (
        f"tcp://[{address}]:{answers.port}" if ":" in address else f"tcp://{address}:{answers.port}"
    )


def drop_in_content(args: tuple[str, ...]) -> bytes:
    command = shlex.join(args)
    return textwrap.dedent(
        f"""\
        # Written by hostwiz (Docker API over TLS). dockerd refuses to start when its listeners
        # are given both with -H on its command line and as "hosts" in {DAEMON_JSON_PATH};
        # they are in daemon.json now, so this starts dockerd as packaged, without -H.
        [Service]
        ExecStart=
        ExecStart={command}
        """
    ).encode()


@dataclass(frozen=True)
class _Listeners:
    hosts: list[str]
    args_after: tuple[str, ...]
    drop_in: bytes | None
    """The drop-in to write (systemd started dockerd with -H), None when none is needed."""


def _listeners(answers: DockerTlsAnswers, current: dict[str, Any], facts: Facts) -> _Listeners:
    dockerd = facts[DOCKERD]
    args = dockerd.configured_args or dockerd.args
    moved, without = _host_flags(args)
    drop_in = None
    if moved:
        if facts[SERVICE_MANAGER] != "systemd" or not dockerd.configured_args:
            raise PlanConflict(
                f"dockerd is started with {' '.join(f'-H {m}' for m in moved)} on its command "
                "line (DOCKER_OPTS in /etc/default/docker), and dockerd refuses to start when "
                'listeners are given there and as "hosts" in daemon.json.',
                'Remove the -H options from DOCKER_OPTS, and list them under "hosts" in '
                f"{DAEMON_JSON_PATH} instead (hostwiz keeps them there), then plan again.",
            )
        drop_in = drop_in_content(without)
    hosts = list(current.get("hosts") or [])
    for value in moved:
        hosts.append(UNIX_SOCKET if value.startswith("fd://") else value)
    if not hosts:
        hosts.append(UNIX_SOCKET)  # dockerd's own default, which "hosts" would otherwise drop
    tcp = _listener(answers)
    if tcp not in hosts:
        hosts.append(tcp)
    return _Listeners(list(dict.fromkeys(hosts)), without if moved else args, drop_in)


def _args_to_check(listeners: _Listeners, facts: Facts) -> tuple[str, ...]:
    """dockerd's command line after the change: the drop-in's, else what runs plus what the
    service manager would start (either may carry a flag that clashes with daemon.json)."""
    if listeners.drop_in is not None:
        return listeners.args_after
    return facts[DOCKERD].args + listeners.args_after


def _check_config(config: dict[str, Any], args: tuple[str, ...]) -> None:
    problems = check_types(config) + flag_conflicts(config, command_line_flags(args))
    if problems:
        listed = "; ".join(problem.message for problem in problems)
        raise PlanConflict(
            f"dockerd would refuse this daemon.json: {listed}.",
            "Remove the clashing options from dockerd's command line (DOCKER_OPTS or the "
            "service's ExecStart) or correct the keys in daemon.json, then plan again.",
        )


def _write_if_needed(
    actions: list[Action], state: FileState, content: bytes, mode: int, why: str
) -> bool:
    """Append a WriteFile of a public file unless the host has it just so; True if appended."""
    write = ensure_file(state, content, mode=mode, owner="root", group="root", why=why)
    if write is not None:
        actions.append(write)
    return write is not None


def plan(step: str, answers: DockerTlsAnswers, facts: Facts) -> Plan:
    prepared = prepared_of(answers)
    if not answers.enabled:
        return Plan(step)
    current = _daemon_config(facts)
    material = prepared.material if prepared else None
    found = foreign_setup(current, facts, material.ca_cert if material else None)
    if found and answers.existing == "stop":
        raise _existing_conflict(found)
    if found and answers.existing == "reuse":
        return Plan(step, notes=("The host's own TLS setup is kept as it is.",))
    if prepared is None or prepared.material is None:
        raise NeedsPassphrase(
            "the TLS step issues certificates from your CA, which needs its passphrase.",
            "Plan this step through the wizard, which asks for the passphrase (or call "
            "wizard.steps.tls.local.prepare() with it before planning).",
        )
    return _plan_prepared(step, prepared, prepared.material, current, facts, replacing=bool(found))


def _plan_prepared(
    step: str,
    prepared: PreparedTls,
    material: TlsMaterial,
    current: dict[str, Any],
    facts: Facts,
    *,
    replacing: bool,
) -> Plan:
    answers = prepared
    actions: list[Action] = []
    notes: list[str] = []
    warnings: list[str] = []
    restart = False

    folder = facts[TLS_DIR_META]
    if not folder.is_(0o700):
        if folder.exists:
            undo = f"chown {folder.owner}:{folder.group} {TLS_DIR}; "
            undo += f"chmod {folder.mode:o} {TLS_DIR}"
        else:
            undo = f"rmdir {TLS_DIR} 2>/dev/null; true"
        actions.append(
            RunCommand(
                f"install -d -m 0700 -o root -g root {TLS_DIR}",
                why=f"a folder only root can enter, for the TLS key ({TLS_DIR}, 0700)",
                undo=undo,
            )
        )

    restart |= _write_if_needed(
        actions, facts[HOST_CA], material.ca_cert, 0o444,
        f"the CA dockerd checks client certificates against ({material.ca_name})",
    )  # fmt: skip
    cert_state = facts[SERVER_CERT].state
    key = facts[SERVER_KEY]
    if material.server is not None:
        restart |= _write_if_needed(
            actions, cert_state, material.server.cert_pem, 0o444,
            f"the server certificate ({material.server_reason})",
        )  # fmt: skip
        actions.append(
            WriteFile(
                SERVER_KEY_PATH, material.server.key_pem, 0o400, "root", "root",
                why="the server certificate's private key (only root may read it)",
                secret=True,
            )
        )  # fmt: skip
        restart = True
        names = ", ".join(material.server_names)
        notes.append(f"New server certificate ({material.server_reason}) for: {names}.")
    else:
        if cert_state.content != material.kept:
            raise PlanConflict(
                f"{SERVER_CERT_PATH} changed on the host since the certificates were prepared.",
                "Prepare the step again (the wizard does this when you plan again).",
            )
        _write_if_needed(actions, cert_state, material.kept, 0o444, "server certificate mode")
        if not key.is_(0o400):
            actions.append(
                RunCommand(
                    f"chown root:root {SERVER_KEY_PATH} && chmod 0400 {SERVER_KEY_PATH}",
                    why="only root may read the server key",
                    touches=(SERVER_KEY_PATH,),
                )
            )

    listeners = _listeners(answers, current, facts)
    merged = dict(current)
    merged.update({"tls": True, "tlsverify": True, **TLS_KEYS, "hosts": listeners.hosts})
    _check_config(merged, _args_to_check(listeners, facts))
    state = facts[DAEMON_JSON]
    if current != merged or not state.exists:
        actions.append(
            WriteFile(
                DAEMON_JSON_PATH,
                dumps(merged),
                mode=state.mode if state.exists else 0o644,
                owner=state.owner if state.exists else "root",
                group=state.group if state.exists else "root",
                why="dockerd listens on TCP with TLS and asks clients for a certificate",
            )
        )
        restart = True

    manager = facts[SERVICE_MANAGER]
    restart_command = restart_dockerd(manager)
    drop_in = None
    if listeners.drop_in is not None:
        drop_in = ensure_file(
            facts[DROP_IN], listeners.drop_in, mode=0o644, owner="root", group="root",
            why="start dockerd without -H, whose listeners are now in daemon.json",
        )  # fmt: skip
    if drop_in is not None:
        actions.append(drop_in)
        actions.append(
            RunCommand(
                "systemctl daemon-reload",
                why="make systemd read the drop-in",
                undo=f"systemctl daemon-reload\n{restart_command.script}",
            )
        )
        notes.append(
            "systemd starts dockerd with -H fd://, and dockerd refuses to start when "
            'listeners are given both on its command line and as "hosts" in daemon.json. '
            f"{DROP_IN_PATH} starts it without -H; the local socket is listed in daemon.json "
            "instead, so it keeps working."
        )
        restart = True
    if restart:
        actions.append(restart_command)

    if not actions:
        return Plan(step, before=_before(facts))
    endpoint = _listener(answers)
    notes.insert(
        0,
        f"dockerd will listen on {endpoint} and answer only clients with a certificate from "
        f"your CA {material.ca_name!r}; the local socket keeps working.",
    )
    notes.append(
        f"Firewall: open port {answers.port} only to the networks you administer from "
        "(the firewall step will offer this): nobody else should even reach the handshake."
    )
    notes.append(
        f"After the change, your client bundle goes to {prepared.client_bundle} and the docker "
        f"context {prepared.context!r} is made: docker --context {prepared.context} ps"
    )
    if replacing:
        warnings.append(
            "This replaces the host's existing TLS setup: clients holding certificates from "
            "the old CA will be refused. The old files are left where they are."
        )
    return Plan(
        step,
        tuple(actions),
        before=_before(facts),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _before(facts: Facts) -> tuple[FileState, ...]:
    key = facts[SERVER_KEY]
    return (
        facts[DAEMON_JSON],
        facts[HOST_CA],
        facts[SERVER_CERT].state,
        FileState(SERVER_KEY_PATH, key.exists, b"", key.mode, key.owner, key.group),
        facts[DROP_IN],
    )
