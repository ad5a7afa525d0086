"""The TLS step's local side, shared by the CLI, the plain prompts and the Textual wizard.

The TLS step needs the CA passphrase *before* planning (see :mod:`wizard.steps.docker_tls`).
Every front end does the same four things, which live here so they behave alike:

1. read the facts, then :func:`prepare_selections`: for a TLS step that is on, ask for the
   passphrase in the front end's own way (an :data:`AskPassphrase`), open or create the CA and
   put the :class:`~wizard.steps.docker_tls.PreparedTls` in place of the plain answers;
2. plan, preview and apply those selections as usual;
3. after a *confirmed* apply, :func:`install_clients`: the client bundle and docker context,
   and the ``docker --context NAME ps`` line to show;
4. in the step list, :func:`step_statuses` adds the client certificate's days left to the
   server certificate's.

The passphrase comes from a person (asked twice for a new CA), or for scripts from
``--passphrase-file FILE`` or the ``HOSTWIZ_CA_PASSPHRASE`` environment variable. It is only
ever held as a :class:`~wizard.secrets.Secret`, never stored, logged or put on a command line.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard.errors import HostwizError
from wizard.secrets import Secret

if TYPE_CHECKING:
    from wizard.facts import Facts
    from wizard.session import Selection
    from wizard.steps.base import Step, StepStatus
    from wizard.transaction import ApplyResult
    from wizard.transport.base import Transport

PASSPHRASE_ENV = "HOSTWIZ_CA_PASSPHRASE"
NEVER_STORED = (
    "The passphrase protects your CA's key on this machine. hostwiz never stores, shows or "
    "logs it; without it this CA cannot sign certificates again."
)


class PassphraseNotGiven(HostwizError):
    title = "No CA passphrase"


@dataclass(frozen=True)
class PassphraseRequest:
    """What a front end needs to ask for the CA passphrase."""

    site: str
    host: str
    new_ca: bool
    """True: the CA is created now, so the passphrase is chosen (and asked twice)."""
    folder: Path
    """Where the site's CA is, or will be."""
    problem: HostwizError | None = None
    """Why the previous answer was refused (wrong, too short, the two differ)."""

    @property
    def prompt(self) -> str:
        if self.new_ca:
            return f"Choose a passphrase for the new CA {self.site!r}"
        return f"Passphrase of your CA {self.site!r}"

    @property
    def explanation(self) -> str:
        if self.new_ca:
            return (
                f"The TLS step for {self.host} needs a certificate authority (CA). There is none "
                f"for site {self.site!r} on this machine yet, so hostwiz creates it in "
                f"{self.folder}, its key encrypted with a passphrase you choose now (at least 12 "
                "characters; a few unrelated words work well)."
            )
        return (
            f"The TLS step for {self.host} issues certificates from your CA {self.site!r} "
            f"({self.folder}); its key is unlocked with the passphrase you chose for it."
        )


@dataclass(frozen=True)
class CaPassphrase:
    """An answer: the passphrase, and for a new CA the second typing of it."""

    passphrase: Secret
    confirmation: Secret | None = None


AskPassphrase = Callable[[PassphraseRequest], "CaPassphrase | None"]
"""Asks for the passphrase (None: the admin declined)."""


@dataclass(frozen=True)
class PreparedSelections:
    selections: list[Selection]
    """The selections to plan and apply: TLS steps carry their PreparedTls."""
    created: tuple[Path, ...] = ()
    """CA folders created while preparing (the only local change before an apply)."""


def is_tls(step: Step[Any]) -> bool:
    return step.name == "tls"


def client_host(transport: Transport) -> str:
    """The host's name for the client bundle and docker context: ``admin@web1:22`` → web1."""
    target = transport.host_label.rpartition("@")[2]
    if target.startswith("["):
        return target[1:].partition("]")[0]
    return target.partition(":")[0] if target.count(":") == 1 else target


def client_address(transport: Transport) -> str:
    """What the docker client connects to: where the SSH connection goes (its HostName)."""
    hostname = getattr(transport, "hostname", "")
    return hostname if isinstance(hostname, str) and hostname else client_host(transport)


def prepare_selections(
    selections: Sequence[Selection],
    facts: Facts,
    transport: Transport,
    ask: AskPassphrase,
    *,
    tries: int = 3,
    ca_root: Path | None = None,
) -> PreparedSelections:
    """Replace each TLS step's plain answers by what :func:`prepare` makes of them.

    The passphrase is asked only when the CA is needed (the step is on and the host's own TLS
    setup is not reused); whatever would be refused anyway is explained before it is asked.
    A wrong, short or mismatched passphrase is asked again (``tries`` times in all), then
    raised. Nothing on the host changes here; locally, at most a new CA is created.
    """
    from wizard.pki import CaFolder, PassphraseProblem, WrongPassphrase
    from wizard.session import Selection
    from wizard.steps.docker_tls import (
        PreparedTls,
        ca_exists,
        check_before_ca,
        needs_ca,
        prepare,
    )

    host, address = client_host(transport), client_address(transport)
    prepared: list[Selection] = []
    created: list[Path] = []
    for selection in selections:
        answers = selection.answers
        if not is_tls(selection.step) or isinstance(answers, PreparedTls):
            prepared.append(selection)
            continue
        if not needs_ca(answers, facts):
            made = prepare(answers, facts, host=host, address=address, passphrase=Secret(""))
            prepared.append(Selection(selection.step, made))
            continue
        check_before_ca(answers, host)  # refused before the passphrase is asked
        folder = CaFolder.for_site(answers.site, ca_root).path
        problem: HostwizError | None = None
        for attempt in range(1, max(tries, 1) + 1):
            new_ca = not ca_exists(answers.site, ca_root)
            given = ask(PassphraseRequest(answers.site, host, new_ca, folder, problem))
            if given is None:
                raise PassphraseNotGiven(
                    "no CA passphrase was given, so nothing was planned or changed.",
                    "The TLS step needs it to issue certificates. Give it when asked, or turn "
                    "the step off (tls.enabled = false).",
                )
            try:
                made = prepare(
                    answers, facts, host=host, address=address, passphrase=given.passphrase,
                    confirmation=given.confirmation, ca_root=ca_root,
                )  # fmt: skip
            except (WrongPassphrase, PassphraseProblem) as error:
                if attempt >= tries:
                    raise
                problem = error
                continue
            if new_ca:
                created.append(folder)
            prepared.append(Selection(selection.step, made))
            break
    return PreparedSelections(prepared, tuple(created))


# ---- scripted passphrases -------------------------------------------------------------------


def scripted_passphrase(
    passphrase_file: str | None, environ: Mapping[str, str] | None = None
) -> Secret | None:
    """The passphrase given for scripts: the first line of ``passphrase_file``, else the
    ``HOSTWIZ_CA_PASSPHRASE`` environment variable; None when neither is given."""
    if passphrase_file:
        path = Path(passphrase_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
            raise HostwizError(
                f"cannot read the passphrase file {path}: {reason}.",
                "Give a readable file whose first line is the CA passphrase.",
            ) from None
        return Secret(text.splitlines()[0] if text else "")
    value = (os.environ if environ is None else environ).get(PASSPHRASE_ENV)
    return None if value is None else Secret(value)


def readable_by_others(passphrase_file: str) -> bool:
    """True when the passphrase file can be read by its group or by everyone."""
    try:
        mode = Path(passphrase_file).expanduser().stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def answer_with(secret: Secret) -> AskPassphrase:
    """An :data:`AskPassphrase` for scripts: the same passphrase, typed "twice" for a new CA
    (there is no typing to get wrong). Use with ``tries=1``: asking again gets the same."""

    def ask(request: PassphraseRequest) -> CaPassphrase:
        return CaPassphrase(secret, secret if request.new_ca else None)

    return ask


def nobody_to_ask(request: PassphraseRequest) -> CaPassphrase | None:
    raise PassphraseNotGiven(
        f"the TLS step needs the passphrase of your CA {request.site!r}, and nobody is here to "
        "type it. Nothing was changed.",
        f"Run in a terminal, or give it for scripts with {PASSPHRASE_ENV}=... in the "
        "environment or --passphrase-file FILE (its first line); never on the command line.",
    )


# ---- after the apply ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientReport:
    lines: list[str]
    ok: bool = True


def install_clients(selections: Sequence[Selection]) -> ClientReport:
    """After a confirmed apply: each TLS step's client bundle and docker context, as lines
    to show (where the bundle went, and the ``docker --context NAME ps`` to try)."""
    from wizard.steps.docker_tls import PreparedTls, install_client

    lines: list[str] = []
    for selection in selections:
        if not isinstance(selection.answers, PreparedTls):
            continue
        try:
            setup = install_client(selection.answers)
        except (HostwizError, OSError, subprocess.SubprocessError) as error:
            message = error.message if isinstance(error, HostwizError) else str(error)
            lines.append(
                "The change on the host is in place, but your docker client could not be set "
                f"up: {message}"
            )
            if isinstance(error, HostwizError) and error.hint:
                lines.append(f"What to do: {error.hint}")
            return ClientReport(lines, ok=False)
        if setup is None:
            continue
        state = "written" if setup.bundle_changed else "unchanged"
        lines.append(f"Client bundle ({state}): {setup.bundle_dir} (ca.pem, cert.pem, key.pem)")
        context = setup.context
        if context.action == "skipped":
            lines.append(context.message)
        else:
            lines.append(f"docker context {context.name!r} {context.action}. Try:")
            lines.append(f"  docker --context {context.name} ps")
    return ClientReport(lines)


def with_client_setup(result: ApplyResult, selections: Sequence[Selection]) -> ApplyResult:
    """``result`` with the client setup's lines appended (only after a confirmed apply)."""
    if not result.confirmed:
        return result
    report = install_clients(selections)
    if not report.lines:
        return result
    return replace(result, message="\n".join([result.message, *report.lines]))


# ---- the step list --------------------------------------------------------------------------


def step_statuses(
    selections: Sequence[Selection], facts: Facts, transport: Transport
) -> list[tuple[Step[Any], StepStatus]]:
    """Each step's status; the TLS step's also says how long the client certificate on this
    machine lasts (the server certificate's days are in the step's own summary)."""
    from wizard.session import statuses
    from wizard.steps.base import Status
    from wizard.steps.docker_tls import HOST_IDENTITY, PreparedTls, client_days_left

    found = statuses(selections, facts)
    result: list[tuple[Step[Any], StepStatus]] = []
    for (step, status), selection in zip(found, selections, strict=True):
        if is_tls(step) and status.status in {Status.DONE, Status.DRIFTED}:
            answers = selection.answers
            plain = answers.answers if isinstance(answers, PreparedTls) else answers
            if "server certificate" in status.summary:
                days = client_days_left(plain, client_host(transport), facts[HOST_IDENTITY].now)
                status = replace(status, summary=f"{status.summary}; {client_note(days)}")
        result.append((step, status))
    return result


def client_note(days: int | None) -> str:
    if days is None:
        return "no client certificate on this machine"
    if days < 0:
        return f"client certificate expired {-days} days ago"
    return f"client certificate valid {days} more days"
