"""Step: the Docker API over TCP, protected by TLS with certificates from a private CA.

Without this step the Docker API is only on the host's socket, reached over SSH. With it,
dockerd also listens on ``tcp://0.0.0.0:2376`` and answers only clients whose certificate was
signed by the admin's own CA (``tlsverify``); the local socket keeps working.

Where the certificates come from (the design choice)
----------------------------------------------------
Creating a CA, issuing certificates and writing the admin's client bundle are side effects on
the admin's machine, and issuing needs the CA passphrase, which is never stored. They are kept
out of the pure planner in three phases:

1. :func:`prepare` (called by the front end after reading facts, before planning) opens the
   local CA with the passphrase, or creates it (passphrase asked twice), and decides from the
   facts whether the host's server certificate and the admin's client certificate can stay or
   must be (re)issued: missing, from another CA, not covering the host's names, or due for
   renewal. Newly issued PEM bytes are held in memory only. It returns a :class:`PreparedTls`:
   the answers plus that material. The only local change it can make is creating a new CA.
2. :meth:`DockerTlsStep.plan` is pure: given a :class:`PreparedTls` and the facts, it returns
   the WriteFile/RunCommand actions. Because the material is fixed, re-planning at apply time
   gives the same plan; because :func:`prepare` keeps certificates that are still good, a
   second run plans nothing. Plain answers (without material) plan nothing while the step is
   off, and otherwise raise :class:`NeedsPassphrase`; :meth:`DockerTlsStep.status` needs no
   material, so the step list works without the passphrase.
3. After a successful apply, :func:`install_client` writes the client bundle and the docker
   context, so nothing local points at a host that rolled the change back.

Issuing inside the plan was rejected: it would need the CA key (a secret, and a file read) in
every re-plan, and fresh keys each time would make the plan never settle.
"""

from __future__ import annotations

import functools
import getpass
import ipaddress
import shlex
import subprocess
import textwrap
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from wizard.actions import Action, FileState, RunCommand, WriteFile
from wizard.answers import check_fields, describe
from wizard.daemon_json import check_types, command_line_flags, dumps, flag_conflicts, parse
from wizard.errors import HostwizError, InvalidAnswer, PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact
from wizard.host.docker import DAEMON_JSON, DAEMON_JSON_PATH, DOCKERD, ROOT_SOCKET, restart_dockerd
from wizard.local import LocalContext, LocalReport, Prepared, SecretNotGiven, SecretRequest
from wizard.pki import (
    LEAF_DAYS_MAX,
    MAX_COMMON_NAME,
    MIN_PASSPHRASE,
    CaFolder,
    CertificateAuthority,
    CertInfo,
    IssuedCert,
    PassphraseProblem,
    WrongPassphrase,
    cert_info,
    check_site,
    is_dns_name,
    issued_by,
    key_matches,
    new_passphrase,
    normalise_names,
)
from wizard.plan import Plan
from wizard.secrets import Secret
from wizard.steps.base import Status, StepStatus
from wizard.tls_client import (
    Bundle,
    ContextResult,
    check_bundle_folder,
    check_tls_endpoint,
    context_name,
    default_bundle_dir,
    ensure_context,
)
from wizard.transport.base import Transport, shell_quote

TLS_DIR = "/etc/docker/tls"
HOST_CA_PATH = f"{TLS_DIR}/ca.pem"
SERVER_CERT_PATH = f"{TLS_DIR}/server-cert.pem"
SERVER_KEY_PATH = f"{TLS_DIR}/server-key.pem"
DROP_IN_PATH = "/etc/systemd/system/docker.service.d/hostwiz-hosts.conf"
UNIX_SOCKET = f"unix://{ROOT_SOCKET}"
TLS_KEYS = {"tlscacert": HOST_CA_PATH, "tlscert": SERVER_CERT_PATH, "tlskey": SERVER_KEY_PATH}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CONTAINER_INTERFACES = ("docker0", "docker_gwbridge", "br-", "veth")
"""Container bridges: nobody reaches the API through them, and their addresses come and go with
Docker networks (each new one would otherwise make the certificate look out of date)."""

Existing = Literal["stop", "replace", "reuse"]


def _check_names(value: tuple[str, ...], key: str = "extra_sans") -> tuple[str, ...]:
    try:
        return normalise_names(value)
    except InvalidAnswer as error:
        raise type(error)(f"tls.{key}: {error.message}", error.hint) from None


def _check_client_name(name: str, where: str) -> str:
    """The client certificate's common name: at most 64 characters, no control characters."""
    if len(name) > MAX_COMMON_NAME or not name.isprintable():
        raise InvalidAnswer(
            f"{where} is {len(name)} characters"
            + (", with control characters" if not name.isprintable() else "")
            + f": {name!r} cannot name your client certificate.",
            f"Its common name holds at most {MAX_COMMON_NAME} printable characters: set "
            "tls.client_name to a shorter name (one per admin, e.g. alice).",
        )
    return name


@dataclass(frozen=True)
class DockerTlsAnswers:
    enabled: bool = field(
        default=False,
        metadata=describe(
            "Docker API over TLS",
            "true: dockerd also listens on TCP and answers only clients holding a certificate "
            "from your own CA. false: the API stays on the host's socket (reach it over SSH).",
        ),
    )
    site: str = field(
        default="default",
        metadata=describe(
            "CA (site) name",
            "One CA per site: hosts of the same site trust the same CA, kept on this machine "
            "with a passphrase only you know.",
        ),
    )
    address: str = field(
        default="",
        metadata=describe(
            "Address clients use",
            "The name or IP address your docker client connects to. Empty: the address hostwiz "
            "connects to over SSH.",
        ),
    )
    extra_sans: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Extra names in the server certificate",
            "More DNS names or IP addresses clients may use for this host (comma separated); "
            "its host name, FQDN and addresses are always included.",
        ),
    )
    port: int = field(
        default=2376,
        metadata=describe("TLS port", "2376 is Docker's port for TLS.", kind="port"),
    )
    listen_address: str = field(
        default="0.0.0.0",
        metadata=describe(
            "Listen address",
            "Where dockerd listens for TLS clients: 0.0.0.0 for every IPv4 address, :: for "
            "every address, or one of the host's addresses.",
            kind="ip",
        ),
    )
    client_name: str = field(
        default="",
        metadata=describe(
            "Your name in the client certificate",
            "Names your client certificate (one per admin). Empty: your login name here.",
        ),
    )
    server_days: int = field(
        default=365,
        metadata=describe("Server certificate lifetime (days)", "At most 365."),
    )
    client_days: int = field(
        default=365,
        metadata=describe("Client certificate lifetime (days)", "At most 365."),
    )
    renew_within_days: int = field(
        default=30,
        metadata=describe(
            "Renew when fewer days are left",
            "Certificates closer to expiry than this are reissued from the same CA on the "
            "next run, with one dockerd restart.",
        ),
    )
    renew: bool = field(
        default=False,
        metadata=describe(
            "Renew now",
            "Reissue the server and client certificates now even if they are not due.",
        ),
    )
    bundle_dir: str = field(
        default="",
        metadata=describe(
            "Client bundle folder",
            "Where ca.pem, cert.pem and key.pem for your docker client go. Empty: "
            "~/.docker/hostwiz/<host>.",
        ),
    )
    existing: Literal["stop", "replace", "reuse"] = field(
        default="stop",
        metadata=describe(
            "If the host already has another TLS setup",
            "stop: explain it and change nothing. replace: install hostwiz's (the plan shows "
            "the diff; clients of the old CA are refused afterwards). reuse: keep it as it is.",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "tls")  # line breaks and control characters first, in every field
        check_site(self.site)
        if self.client_name.strip():
            _check_client_name(self.client_name.strip(), "tls.client_name")
        object.__setattr__(self, "extra_sans", _check_names(self.extra_sans))
        if self.address:
            _check_names((self.address,), "address")
        for name in ("server_days", "client_days"):
            days = getattr(self, name)
            if not 1 <= days <= LEAF_DAYS_MAX:
                raise InvalidAnswer(
                    f"tls.{name} = {days}: certificates here live 1 to {LEAF_DAYS_MAX} days.",
                    "A short life limits the damage of a leaked key; renewal is automatic.",
                )
        if self.renew_within_days >= min(self.server_days, self.client_days):
            raise InvalidAnswer(
                f"tls.renew_within_days = {self.renew_within_days} is not shorter than the "
                "certificates' lifetime, so every run would renew them.",
                "Keep it well below server_days and client_days (30 is usual).",
            )


# ---- facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostIdentity:
    """The names and addresses the server certificate must carry, and the host's clock."""

    hostname: str
    fqdn: str
    addresses: tuple[str, ...]
    clock: int
    """The host's time (epoch seconds): expiry is judged by the clock the host itself uses."""

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock, UTC)

    def names(self) -> tuple[str, ...]:
        """Host name, FQDN, every non-container address, and the loopback names."""
        found = [name for name in (self.fqdn, self.hostname) if name and is_dns_name(name)]
        return normalise_names([*found, *self.addresses, *LOOPBACK_NAMES])


def parse_identity(code: int, out: str) -> HostIdentity:
    hostname = fqdn = ""
    clock = int(time.time())
    addresses: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "hostname":
            hostname = value
        elif key == "fqdn":
            fqdn = value
        elif key == "now" and value.isdigit():
            clock = int(value)
        elif key == "addr":
            # "2: eth0    inet 10.0.0.5/24 brd ... scope global eth0\ ..."
            parts = value.split()
            if len(parts) < 4 or parts[2] not in {"inet", "inet6"}:
                continue
            interface = parts[1].split("@")[0]
            scope = parts[parts.index("scope") + 1] if "scope" in parts[:-1] else "global"
            if scope == "link" or interface.startswith(CONTAINER_INTERFACES):
                continue
            try:
                addresses.append(str(ipaddress.ip_address(parts[3].split("/")[0])))
            except ValueError:
                continue
    return HostIdentity(hostname, fqdn, tuple(dict.fromkeys(addresses)), clock)


HOST_IDENTITY: Fact[HostIdentity] = Fact(
    "tls:identity",
    'echo "hostname $(hostname 2>/dev/null)"\n'
    'echo "fqdn $(hostname -f 2>/dev/null)"\n'
    'echo "now $(date -u +%s)"\n'
    'ip -o addr show 2>/dev/null | sed "s/^/addr /"',
    parse_identity,
)


@dataclass(frozen=True)
class PathMeta:
    """Whether a path exists, with its mode and owner; never its content (keys)."""

    path: str
    exists: bool
    mode: int = 0
    owner: str = ""
    group: str = ""

    def is_(self, mode: int, owner: str = "root", group: str = "root") -> bool:
        return self.exists and (self.mode, self.owner, self.group) == (mode, owner, group)


def meta_fact(path: str, test: str) -> Fact[PathMeta]:
    quoted = shell_quote(path)

    def parse(code: int, out: str) -> PathMeta:
        fields = out.split()
        if code != 0 or len(fields) != 3:
            return PathMeta(path, False)
        return PathMeta(path, True, int(fields[0], 8), fields[1], fields[2])

    return Fact(f"meta:{path}", f"[ {test} {quoted} ] && stat -L -c '%a %U %G' {quoted}", parse)


@dataclass(frozen=True)
class HostCert:
    """A certificate file on the host, and what it says (``info`` None when unreadable)."""

    state: FileState
    expires: str = ""
    """notAfter in ISO 8601 ("" without a readable certificate): plain data for `hostwiz facts`."""

    @functools.cached_property
    def info(self) -> CertInfo | None:
        return cert_info(self.state.content) if self.state.exists else None


def _host_cert(state: FileState) -> HostCert:
    info = cert_info(state.content) if state.exists else None
    return HostCert(state, info.not_after.isoformat() if info else "")


def cert_fact(name: str, path: str) -> Fact[HostCert]:
    plain = file_fact(path)

    def parse(code: int, out: str) -> HostCert:
        return _host_cert(plain.parse(code, out))

    return Fact(name, plain.command, parse)


def _parse_configured(code: int, out: str) -> HostCert:
    path, _, data = out.partition("\n")
    state = file_fact(path.strip()).parse(0, f"644 root root\n{data}") if path.strip() else None
    if state is None:
        return HostCert(FileState("", False))
    return _host_cert(state)


SERVER_CERT = cert_fact("tls:server-cert", SERVER_CERT_PATH)
HOST_CA = file_fact(HOST_CA_PATH)
SERVER_KEY = meta_fact(SERVER_KEY_PATH, "-f")
TLS_DIR_META = meta_fact(TLS_DIR, "-d")
DROP_IN = file_fact(DROP_IN_PATH)
CONFIGURED_CERT: Fact[HostCert] = Fact(
    "tls:configured-cert",
    f'p=$(sed -n \'s/.*"tlscert"[[:space:]]*:[[:space:]]*"\\([^"]*\\)".*/\\1/p\' '
    f"{DAEMON_JSON_PATH} 2>/dev/null | head -n1)\n"
    'if [ -n "$p" ] && [ -f "$p" ]; then echo "$p"; base64 -w0 "$p"; fi',
    _parse_configured,
)
"""The certificate daemon.json names as ``tlscert``, wherever it is (for a setup not ours)."""


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
class PreparedTls:
    """Answers plus the material :func:`prepare` issued: what the planner and health take."""

    answers: DockerTlsAnswers
    host: str
    """The host's label: names the bundle folder and the docker context."""
    address: str
    """What clients (and the health check) connect to."""
    bundle_dir: str
    context: str
    material: TlsMaterial | None = None
    """None when the step is off or an existing setup is reused."""


def _unwrap(answers: DockerTlsAnswers | PreparedTls) -> tuple[DockerTlsAnswers, PreparedTls | None]:
    if isinstance(answers, PreparedTls):
        return answers.answers, answers
    return answers, None


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
    if state == FileState(state.path, True, content, mode, "root", "root"):
        return False
    actions.append(WriteFile(state.path, content, mode, "root", "root", why=why))
    return True


class DockerTlsStep:
    name = "tls"
    title = "Docker API over TLS"
    explanation = (
        "Lets you run docker commands from your own machine against this host, safely: dockerd "
        "listens on TCP port 2376 and answers only clients holding a certificate signed by your "
        "own certificate authority (CA), which hostwiz creates on your machine, protected by a "
        "passphrase only you know. The host gets a server certificate for its names and "
        "addresses; you get a client certificate and a docker context, so `docker --context "
        "HOST ps` works at once. Certificates last at most a year and are renewed from the same "
        "CA. Skipping this keeps the API reachable only over SSH, which is also safe; exposing "
        "it without TLS would hand root on the host to anyone who can reach the port."
    )
    answers_type = DockerTlsAnswers

    def facts(self, answers: DockerTlsAnswers | PreparedTls) -> list[Fact[Any]]:
        return [
            DAEMON_JSON, DOCKERD, SERVICE_MANAGER, HOST_IDENTITY, SERVER_CERT, HOST_CA,
            SERVER_KEY, TLS_DIR_META, DROP_IN, CONFIGURED_CERT,
        ]  # fmt: skip

    # ---- planning ---------------------------------------------------------------------

    def plan(self, answers: DockerTlsAnswers | PreparedTls, facts: Facts) -> Plan:
        plain, prepared = _unwrap(answers)
        if not plain.enabled:
            return Plan(self.name)
        current = _daemon_config(facts)
        material = prepared.material if prepared else None
        found = foreign_setup(current, facts, material.ca_cert if material else None)
        if found and plain.existing == "stop":
            raise _existing_conflict(found)
        if found and plain.existing == "reuse":
            return Plan(self.name, notes=("The host's own TLS setup is kept as it is.",))
        if prepared is None or prepared.material is None:
            raise NeedsPassphrase(
                "the TLS step issues certificates from your CA, which needs its passphrase.",
                "Plan this step through the wizard, which asks for the passphrase (or call "
                "wizard.steps.docker_tls.prepare() with it before planning).",
            )
        return self._plan_prepared(
            prepared, prepared.material, current, facts, replacing=bool(found)
        )

    def _plan_prepared(
        self,
        prepared: PreparedTls,
        material: TlsMaterial,
        current: dict[str, Any],
        facts: Facts,
        *,
        replacing: bool,
    ) -> Plan:
        answers = prepared.answers
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
        if listeners.drop_in is not None and facts[DROP_IN] != FileState(
            DROP_IN_PATH, True, listeners.drop_in, 0o644, "root", "root"
        ):
            actions.append(
                WriteFile(
                    DROP_IN_PATH, listeners.drop_in, 0o644,
                    why="start dockerd without -H, whose listeners are now in daemon.json",
                )
            )  # fmt: skip
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
            return Plan(self.name, before=self._before(facts))
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
            f"After the change, your client bundle goes to {prepared.bundle_dir} and the docker "
            f"context {prepared.context!r} is made: docker --context {prepared.context} ps"
        )
        if replacing:
            warnings.append(
                "This replaces the host's existing TLS setup: clients holding certificates from "
                "the old CA will be refused. The old files are left where they are."
            )
        return Plan(
            self.name,
            tuple(actions),
            before=self._before(facts),
            notes=tuple(notes),
            warnings=tuple(warnings),
        )

    @staticmethod
    def _before(facts: Facts) -> tuple[FileState, ...]:
        key = facts[SERVER_KEY]
        return (
            facts[DAEMON_JSON],
            facts[HOST_CA],
            facts[SERVER_CERT].state,
            FileState(SERVER_KEY_PATH, key.exists, b"", key.mode, key.owner, key.group),
            facts[DROP_IN],
        )

    # ---- after apply ------------------------------------------------------------------

    def health(
        self, transport: Transport, answers: DockerTlsAnswers | PreparedTls, facts: Facts
    ) -> list[str]:
        """Connect from this machine to ADDR:PORT with the docker SDK over TLS and the client
        certificate; the host must present the new server certificate and refuse a client
        without one."""
        plain, prepared = _unwrap(answers)
        if not plain.enabled or prepared is None or prepared.material is None:
            return []
        material = prepared.material
        return check_tls_endpoint(
            prepared.address, plain.port, material.ca_cert, material.client, material.server_cert
        )

    def status(self, answers: DockerTlsAnswers | PreparedTls, facts: Facts) -> StepStatus:
        plain, _ = _unwrap(answers)
        now = facts[HOST_IDENTITY].now
        try:
            current = _daemon_config(facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        found = foreign_setup(current, facts, None)
        if found:
            other = facts[CONFIGURED_CERT].info
            expiry = f"; its certificate expires in {other.days_left(now)} days" if other else ""
            if plain.existing == "reuse":
                return StepStatus(Status.DONE, f"the host's own TLS setup is kept{expiry}")
            return StepStatus(Status.UNKNOWN, f"another TLS setup is in place{expiry}")
        info = facts[SERVER_CERT].info
        configured = all(current.get(key) == value for key, value in TLS_KEYS.items()) and (
            current.get("tlsverify") is True and _listener(plain) in (current.get("hosts") or [])
        )
        if info is None or not configured:
            if not plain.enabled:
                return StepStatus(Status.NOT_DONE, "off: the Docker API is only on the host")
            return StepStatus(Status.NOT_DONE, "no TLS for the Docker API yet")
        days = info.days_left(now)
        if days < 0:
            return StepStatus(Status.DRIFTED, f"server certificate expired {-days} days ago")
        wanted = facts[HOST_IDENTITY].names()
        if days < plain.renew_within_days:
            return StepStatus(Status.DRIFTED, f"server certificate expires in {days} days: renew")
        if not info.covers(wanted):
            missing = sorted(set(wanted) - set(info.names))
            return StepStatus(Status.DRIFTED, f"server certificate lacks {', '.join(missing)}")
        return StepStatus(
            Status.DONE, f"{_listener(plain)}, server certificate valid {days} more days"
        )


    # ---- local work (wizard.local): run by the session, never named by a front end -------

    def prepare(
        self, answers: DockerTlsAnswers | PreparedTls, facts: Facts, local: LocalContext
    ) -> Prepared:
        """Open or create the CA (its passphrase asked through ``local.ask``) and issue what
        the host and this machine need: :func:`prepare` with the passphrase.

        The passphrase is asked only when the CA is needed (the step is on and the host's own
        TLS setup is not reused); whatever would be refused anyway is explained before it is
        asked. A wrong, short or mismatched passphrase is asked again (``local.tries`` times
        in all), then raised. Nothing on the host changes; locally, at most a new CA.
        """
        if isinstance(answers, PreparedTls):
            return Prepared(answers)
        host, address = local.host, local.address
        if not needs_ca(answers, facts):
            return Prepared(prepare(answers, facts, host=host, address=address,
                                    passphrase=Secret("")))  # fmt: skip
        check_before_ca(answers, host)  # refused before the passphrase is asked
        folder = CaFolder.for_site(answers.site, local.root).path
        problem: HostwizError | None = None
        attempt = 0
        while True:
            attempt += 1
            new_ca = not ca_exists(answers.site, local.root)
            given = local.ask(passphrase_request(answers.site, host, new_ca, folder, problem))
            if given is None:
                raise SecretNotGiven(
                    "no CA passphrase was given, so nothing was planned or changed.",
                    "The TLS step needs it to issue certificates. Give it when asked, or turn "
                    "the step off (tls.enabled = false).",
                )
            try:
                made = prepare(
                    answers, facts, host=host, address=address, passphrase=given.secret,
                    confirmation=given.confirmation, ca_root=local.root,
                )  # fmt: skip
            except (WrongPassphrase, PassphraseProblem) as error:
                if attempt >= local.tries:
                    raise
                problem = error
                continue
            return Prepared(made, (folder,) if new_ca else ())

    def after_confirmed(self, answers: DockerTlsAnswers | PreparedTls) -> LocalReport:
        """The client bundle and docker context, as lines to show (where the bundle went, and
        the ``docker --context NAME ps`` to try)."""
        if not isinstance(answers, PreparedTls):
            return LocalReport([])
        try:
            setup = install_client(answers)
        except (HostwizError, OSError, subprocess.SubprocessError) as error:
            message = error.message if isinstance(error, HostwizError) else str(error)
            lines = [
                "The change on the host is in place, but your docker client could not be set "
                f"up: {message}"
            ]
            if isinstance(error, HostwizError) and error.hint:
                lines.append(f"What to do: {error.hint}")
            return LocalReport(lines, ok=False)
        if setup is None:
            return LocalReport([])
        state = "written" if setup.bundle_changed else "unchanged"
        lines = [f"Client bundle ({state}): {setup.bundle_dir} (ca.pem, cert.pem, key.pem)"]
        context = setup.context
        if context.action == "skipped":
            lines.append(context.message)
        else:
            lines.append(f"docker context {context.name!r} {context.action}. Try:")
            lines.append(f"  docker --context {context.name} ps")
        return LocalReport(lines)

    def local_status(
        self, answers: DockerTlsAnswers | PreparedTls, status: StepStatus, facts: Facts, host: str
    ) -> StepStatus:
        """Where hostwiz's own setup is in place, how long the client certificate on this
        machine lasts (the server certificate's days are in the step's own summary)."""
        plain, _ = _unwrap(answers)
        if status.status not in {Status.DONE, Status.DRIFTED} or not _own_setup_in_place(
            plain, facts
        ):
            return status
        days = client_days_left(plain, host, facts[HOST_IDENTITY].now)
        return replace(status, summary=f"{status.summary}; {client_note(days)}")


DOCKER_TLS = DockerTlsStep()


def _own_setup_in_place(answers: DockerTlsAnswers, facts: Facts) -> bool:
    """daemon.json uses hostwiz's certificates and listener, and the server certificate is
    readable: the case where :meth:`DockerTlsStep.status` speaks of the server certificate."""
    try:
        current = _daemon_config(facts)
    except PlanConflict:
        return False
    if foreign_setup(current, facts, None) or facts[SERVER_CERT].info is None:
        return False
    return all(current.get(key) == value for key, value in TLS_KEYS.items()) and (
        current.get("tlsverify") is True and _listener(answers) in (current.get("hosts") or [])
    )


def client_note(days: int | None) -> str:
    if days is None:
        return "no client certificate on this machine"
    if days < 0:
        return f"client certificate expired {-days} days ago"
    return f"client certificate valid {days} more days"


NEVER_STORED = (
    "The passphrase protects your CA's key on this machine. hostwiz never stores, shows or "
    "logs it; without it this CA cannot sign certificates again."
)


def passphrase_request(
    site: str, host: str, new_ca: bool, folder: Path, problem: HostwizError | None = None
) -> SecretRequest:
    """How the CA passphrase is asked: chosen now (twice) for a new CA, else to unlock it."""
    if new_ca:
        prompt = f"Choose a passphrase for the new CA {site!r}"
        explanation = (
            f"The TLS step for {host} needs a certificate authority (CA). There is none "
            f"for site {site!r} on this machine yet, so hostwiz creates it in "
            f"{folder}, its key encrypted with a passphrase you choose now (at least 12 "
            "characters; a few unrelated words work well)."
        )
    else:
        prompt = f"Passphrase of your CA {site!r}"
        explanation = (
            f"The TLS step for {host} issues certificates from your CA {site!r} "
            f"({folder}); its key is unlocked with the passphrase you chose for it."
        )
    return SecretRequest(
        prompt=prompt,
        explanation=explanation,
        note=NEVER_STORED,
        title="New CA passphrase" if new_ca else "CA passphrase",
        submit="Create CA" if new_ca else "Unlock",
        busy=f"{'Creating' if new_ca else 'Opening'} your CA and issuing certificates…",
        confirm=new_ca,
        needed_by=f"the TLS step needs the passphrase of your CA {site!r}",
        min_length=MIN_PASSPHRASE,
        problem=problem,
        check_new=new_passphrase,
    )


# ---- preparation and the client side (local side effects) ---------------------------------


def needs_ca(answers: DockerTlsAnswers, facts: Facts) -> bool:
    """Whether :func:`prepare` needs the CA (so a front end asks for the passphrase).

    False when the step is off or the host's own TLS setup is reused. Raises what
    :func:`prepare` would refuse before the CA is opened or created (an existing setup to stop
    at, ``-H`` in DOCKER_OPTS, a daemon.json dockerd would refuse), so the admin hears about
    those before typing a passphrase, and a refusal never leaves a new CA behind.
    """
    if not answers.enabled:
        return False
    current = _daemon_config(facts)
    found = foreign_setup(current, facts, None)
    if found and answers.existing == "stop":
        raise _existing_conflict(found)
    if found and answers.existing == "reuse":
        return False
    listeners = _listeners(answers, current, facts)  # refuses -H in DOCKER_OPTS
    merged = {**current, "tls": True, "tlsverify": True, **TLS_KEYS, "hosts": listeners.hosts}
    _check_config(merged, _args_to_check(listeners, facts))
    return True


def client_bundle_dir(answers: DockerTlsAnswers, host: str) -> Path:
    """Where the admin's client bundle for ``host`` is (``tls.bundle_dir`` or the default)."""
    return Path(answers.bundle_dir).expanduser() if answers.bundle_dir else default_bundle_dir(host)


def client_days_left(answers: DockerTlsAnswers, host: str, now: datetime) -> int | None:
    """Days the client certificate in this machine's bundle for ``host`` has left (negative:
    expired), or None when there is no readable one. Reads a local file: not for planners."""
    try:
        found = Bundle(client_bundle_dir(answers, host)).read()
    except OSError:
        return None
    info = cert_info(found[1].cert_pem) if found else None
    return info.days_left(now) if info else None


def server_common_name(identity: HostIdentity, host: str) -> str:
    """The server certificate's common name: the FQDN when it fits in 64 characters, else the
    host name, else the FQDN's first label (at most 63). Clients check the subjectAltName,
    which always carries the full FQDN, so a long one only shortens this label."""
    candidates = [
        identity.fqdn if is_dns_name(identity.fqdn) else "",
        identity.hostname,
        identity.fqdn.split(".")[0] if is_dns_name(identity.fqdn) else "",
        identity.hostname.split(".")[0],
        host,
    ]
    for name in candidates:
        if name and len(name) <= MAX_COMMON_NAME and name.isprintable():
            return name
    return "hostwiz docker server"


def client_common_name(answers: DockerTlsAnswers) -> str:
    """The client certificate's common name: tls.client_name, else the local login name."""
    if answers.client_name.strip():
        return _check_client_name(answers.client_name.strip(), "tls.client_name")
    login = getpass.getuser()
    return _check_client_name(login, "your login name here (the default tls.client_name)")


def check_before_ca(answers: DockerTlsAnswers, host: str) -> Path:
    """Refuse what :func:`prepare` would otherwise refuse after the CA is opened or made (a
    client name too long for a certificate, a bundle folder hostwiz did not make), so that a
    refusal never leaves a new CA behind and comes before the passphrase is asked. Returns the
    bundle folder."""
    client_common_name(answers)
    return check_bundle_folder(client_bundle_dir(answers, host))


def ca_exists(site: str, ca_root: Path | None = None) -> bool:
    """Whether the site's CA exists on this machine (so a front end asks once, or twice)."""
    return CaFolder.for_site(site, ca_root).holds_ca()


def _server_decision(
    answers: DockerTlsAnswers,
    facts: Facts,
    ca: CertificateAuthority,
    names: tuple[str, ...],
) -> str:
    """Why the host needs a new server certificate ("" when the one it has is good)."""
    host_cert = facts[SERVER_CERT]
    info = host_cert.info
    now = facts[HOST_IDENTITY].now
    if answers.renew:
        return "renewal asked for"
    if info is None:
        return "none yet" if not host_cert.state.exists else "the current one is unreadable"
    if not issued_by(host_cert.state.content, ca.cert_pem):
        return "the current one is not from your CA"
    if not facts[SERVER_KEY].exists:
        return "its key is missing"
    if not info.server_auth:
        return "the current one is not for servers"
    if not info.covers(names):
        missing = sorted(set(names) - set(info.names))
        return f"the current one lacks {', '.join(missing)}"
    days = info.days_left(now)
    if days < answers.renew_within_days:
        return f"the current one expires in {days} days" if days >= 0 else "the current one expired"
    return ""


def _client_decision(
    answers: DockerTlsAnswers,
    client_name: str,
    bundle: Bundle,
    ca: CertificateAuthority,
    now: datetime,
) -> tuple[IssuedCert | None, str]:
    """The bundle's client certificate when it can stay, else None and why it cannot."""
    found = bundle.read()
    if answers.renew:
        return None, "renewal asked for"
    if found is None:
        return None, "none yet"
    ca_pem, client = found
    info = cert_info(client.cert_pem)
    if ca_pem != ca.cert_pem or not issued_by(client.cert_pem, ca.cert_pem) or info is None:
        return None, "the bundle's certificate is not from your CA"
    if not info.client_auth or not key_matches(client.cert_pem, client.key_pem):
        return None, "the bundle's certificate or key is not usable"
    if info.subject != client_name:
        return None, f"the bundle is for {info.subject!r}"
    if info.days_left(now) < answers.renew_within_days:
        return None, f"the current one expires in {info.days_left(now)} days"
    return client, ""


def prepare(
    answers: DockerTlsAnswers,
    facts: Facts,
    *,
    host: str,
    passphrase: Secret,
    confirmation: Secret | None = None,
    address: str = "",
    ca_root: Path | None = None,
    now: datetime | None = None,
) -> PreparedTls:
    """Open (or create) the site's CA and issue what the host and the admin need.

    ``passphrase`` unlocks an existing CA; for a new one it must be given twice
    (``confirmation``). Everything that can be refused is checked before the CA is created, so
    a refusal changes nothing. ``address`` is what clients connect to (``answers.address``
    wins; one of them is needed). Raises :class:`~wizard.errors.HostwizError` subclasses, each
    with a message and a hint.
    """
    address = answers.address or address
    bundle_dir = client_bundle_dir(answers, host)
    base = PreparedTls(answers, host, address, str(bundle_dir), context_name(host))
    if not answers.enabled:
        return base
    if not address:
        raise InvalidAnswer(
            "hostwiz does not know which address your docker client should use for this host.",
            "Set tls.address to the host's name or IP address.",
        )
    address = _check_names((address,), "address")[0]
    if not needs_ca(answers, facts):
        return replace(base, address=address)
    current = _daemon_config(facts)
    check_before_ca(answers, host)
    client_name = client_common_name(answers)

    folder = CaFolder.for_site(answers.site, ca_root)
    if folder.holds_ca():
        ca = folder.open(passphrase)
    else:
        chosen = new_passphrase(passphrase, confirmation or Secret(""))
        ca = folder.create(answers.site, chosen, now)

    found = foreign_setup(current, facts, ca.cert_pem)
    if found and answers.existing == "stop":
        raise _existing_conflict(found)
    identity = facts[HOST_IDENTITY]
    names = normalise_names([address, *answers.extra_sans, *identity.names()])
    reason = _server_decision(answers, facts, ca, names)
    common = server_common_name(identity, host)
    server = (
        ca.issue("server", common, names, days=answers.server_days, now=now) if reason else None
    )
    client, client_reason = _client_decision(
        answers, client_name, Bundle(bundle_dir), ca, identity.now
    )
    client_new = client is None
    if client is None:
        client = ca.issue("client", client_name, days=answers.client_days, now=now)
    material = TlsMaterial(
        ca_name=ca.name,
        ca_cert=ca.cert_pem,
        server_names=names,
        server=server,
        kept=b"" if server else facts[SERVER_CERT].state.content,
        server_reason=reason,
        client=client,
        client_new=client_new,
        client_reason=client_reason,
    )
    return replace(base, address=address, material=material)


@dataclass(frozen=True)
class ClientSetup:
    bundle_dir: Path
    bundle_changed: bool
    context: ContextResult


def install_client(
    prepared: PreparedTls, *, env: dict[str, str] | None = None, docker_cli: str = "docker"
) -> ClientSetup | None:
    """After a successful apply: the client bundle and the docker context on this machine.

    ``env`` is the environment the docker CLI runs with (``DOCKER_CONFIG`` picks its config
    folder); it defaults to this process's. Returns None when there is nothing to install.
    """
    material = prepared.material
    if material is None:
        return None
    bundle = Bundle(Path(prepared.bundle_dir))
    try:
        changed = bundle.write(material.ca_cert, material.client)
    except OSError as error:
        raise HostwizError(
            f"could not write the client bundle in {bundle.folder}: {error.strerror}.",
            "Choose a folder you can write to (tls.bundle_dir).",
        ) from None
    context = ensure_context(
        prepared.context, prepared.address, prepared.answers.port, bundle,
        refresh=changed, env=env, cli=docker_cli,
    )  # fmt: skip
    return ClientSetup(bundle.folder, changed, context)


__all__ = [
    "DOCKER_TLS",
    "ClientSetup",
    "DockerTlsAnswers",
    "DockerTlsStep",
    "ExistingTlsSetup",
    "NeedsPassphrase",
    "PreparedTls",
    "TlsMaterial",
    "ca_exists",
    "check_before_ca",
    "client_bundle_dir",
    "client_days_left",
    "install_client",
    "needs_ca",
    "prepare",
]
