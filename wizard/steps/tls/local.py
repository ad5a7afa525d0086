"""The TLS step's local side (see the package docstring): opening or creating the CA and
issuing certificates before planning, the client bundle and docker context after a confirmed
apply, and the client certificate's days in the status."""

from __future__ import annotations

import getpass
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from wizard.errors import HostwizError, InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.local import LocalContext, LocalReport, Prepared, SecretNotGiven, SecretRequest
from wizard.pki import (
    MAX_COMMON_NAME,
    MIN_PASSPHRASE,
    CaFolder,
    CertificateAuthority,
    IssuedCert,
    PassphraseProblem,
    WrongPassphrase,
    cert_info,
    is_dns_name,
    issued_by,
    key_matches,
    new_passphrase,
    normalise_names,
)
from wizard.secrets import Secret
from wizard.steps.base import Status, StepStatus
from wizard.steps.tls.answers import (
    TLS_KEYS,
    DockerTlsAnswers,
    _check_client_name,
    _check_names,
)
from wizard.steps.tls.facts import (
    HOST_IDENTITY,
    SERVER_CERT,
    SERVER_KEY,
    HostIdentity,
)
from wizard.steps.tls.plan import (
    PreparedTls,
    TlsMaterial,
    _args_to_check,
    _check_config,
    _daemon_config,
    _existing_conflict,
    _listener,
    _listeners,
    foreign_setup,
)
from wizard.tls_client import (
    BUNDLE_FILES,
    Bundle,
    ContextResult,
    check_bundle_folder,
    context_exists,
    context_name,
    default_bundle_dir,
    ensure_context,
)


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
    base = PreparedTls.of(answers, host=host, client_address=address,
                          client_bundle=str(bundle_dir), context=context_name(host))  # fmt: skip
    if not answers.enabled:
        return base
    if not address:
        raise InvalidAnswer(
            "hostwiz does not know which address your docker client should use for this host.",
            "Set tls.address to the host's name or IP address.",
        )
    address = _check_names((address,), "address")[0]
    if not needs_ca(answers, facts):
        return replace(base, client_address=address)
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
    return replace(base, client_address=address, material=material)


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
    bundle = Bundle(Path(prepared.client_bundle))
    try:
        changed = bundle.write(material.ca_cert, material.client)
    except OSError as error:
        raise HostwizError(
            f"could not write the client bundle in {bundle.folder}: {error.strerror}.",
            "Choose a folder you can write to (tls.bundle_dir).",
        ) from None
    context = ensure_context(
        prepared.context, prepared.client_address, prepared.port, bundle,
        refresh=changed, env=env, cli=docker_cli,
    )  # fmt: skip
    return ClientSetup(bundle.folder, changed, context)


# ---- the hooks (wizard.local), run by the session -----------------------------------------


def prepare_local_work(answers: DockerTlsAnswers, facts: Facts, local: LocalContext) -> Prepared:
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


def after_confirmed(answers: DockerTlsAnswers) -> LocalReport:
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


def after_rolled_back(
    answers: DockerTlsAnswers,
    host: str,
    *,
    env: dict[str, str] | None = None,
    docker_cli: str = "docker",
) -> list[str]:
    """After a rollback that undid this step on ``host``: the docker context and client
    bundle that :func:`after_confirmed` made stay on this machine and point at a TLS port
    that is closed again. Says which of them exist and how to remove them (or that applying
    the step again brings the port back); nothing when neither exists."""
    context = context_name(host)
    folder = client_bundle_dir(answers, host)
    has_context = context_exists(context, env=env, cli=docker_cli)
    try:
        has_bundle = any((folder / name).is_file() for name in BUNDLE_FILES)
    except OSError:
        has_bundle = False
    left = [
        *([f"your docker context {context!r}"] if has_context else []),
        *([f"the client bundle in {folder}"] if has_bundle else []),
    ]
    if not left:
        return []
    fixes = [
        *([f"remove the context with `docker context rm {context}`"] if has_context else []),
        *([f"delete {folder}"] if has_bundle else []),
    ]
    point = "still points" if len(left) == 1 else "still point"
    return [
        f"On this machine, {' and '.join(left)} {point} at the host's Docker TLS port, which "
        "the rollback closed again.",
        f"What to do: {' and '.join(fixes)}, or apply the TLS step again.",
    ]


def local_status(
    answers: DockerTlsAnswers, status: StepStatus, facts: Facts, host: str
) -> StepStatus:
    """Where hostwiz's own setup is in place, how long the client certificate on this
    machine lasts (the server certificate's days are in the step's own summary)."""
    if status.status not in {Status.DONE, Status.DRIFTED} or not _own_setup_in_place(
        answers, facts
    ):
        return status
    days = client_days_left(answers, host, facts[HOST_IDENTITY].now)
    return replace(status, summary=f"{status.summary}; {client_note(days)}")
