"""Local work: what a step does on the admin's machine around the pure plan, and the secrets
it asks for, in terms every front end answers the same way.

A step may declare two hooks (see :class:`wizard.steps.base.Step`):

* ``prepare(answers, facts, local)``, run after the facts are read and before planning, on
  this machine: open or create something local, asking the admin for a secret through
  :attr:`LocalContext.ask` when it needs one. It returns a :class:`Prepared`: the answers to
  plan with (they may carry what was made, such as issued certificates) and the folders it
  created.
* ``after_confirmed(answers)``, run after a confirmed apply (or when the host needed nothing):
  set up the local side (a client bundle) and return lines to show.

A secret is asked with a :class:`SecretRequest`, which says everything a front end shows: the
wizard answers it with a dialog, plain mode and the CLI with password prompts, scripts with an
environment variable or a file (:func:`scripted_secret`, :func:`answer_with`). Secrets are only
ever held as :class:`~wizard.secrets.Secret`, never stored, logged or put on a command line.

The session (:mod:`wizard.session`) runs the hooks, so no front end names a step.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.errors import HostwizError
from wizard.secrets import Secret
from wizard.transport.base import Transport

SECRET_ENV = "HOSTWIZ_CA_PASSPHRASE"
"""The environment variable a script gives a step's secret in (the CLI also takes
``--passphrase-file FILE``, whose first line is the secret)."""


class SecretNotGiven(HostwizError):
    """Nobody gave the secret a step needs (declined, or nobody is there to type it)."""

    title = "No CA passphrase"


@dataclass(frozen=True)
class SecretRequest:
    """Everything a front end needs to ask for one secret."""

    prompt: str
    """The prompt's own words: "Passphrase of your CA 'default'"."""
    explanation: str
    """Why the secret is needed now, shown before the first prompt."""
    note: str
    """What happens to the secret (never stored), shown with the explanation."""
    title: str
    """A dialog's title."""
    submit: str
    """A dialog's button."""
    busy: str
    """What the front end shows while the step uses the answer ("Opening your CA")."""
    confirm: bool
    """True: the secret is chosen now, so it is typed twice."""
    needed_by: str
    """Who needs what, for the error when nobody can type it: "the TLS step needs the
    passphrase of your CA 'default'"."""
    min_length: int = 0
    """Shortest acceptable new secret (front ends that validate as the admin types)."""
    problem: HostwizError | None = None
    """Why the previous answer was refused (wrong, too short, the two differ)."""
    check_new: Callable[[Secret, Secret], Any] | None = field(default=None, compare=False)
    """Refuses a new secret and its second typing (raises a :class:`HostwizError`): a dialog
    checks them before it closes."""


@dataclass(frozen=True)
class SecretAnswer:
    """An answer: the secret, and when it was chosen now, the second typing of it."""

    secret: Secret
    confirmation: Secret | None = None


AskSecret = Callable[[SecretRequest], "SecretAnswer | None"]
"""Asks for a secret (None: the admin declined)."""


@dataclass(frozen=True)
class LocalContext:
    """What local work knows about the run: the host as the admin's machine names it, and how
    to ask for a secret."""

    host: str
    """The host's name for local files (a client bundle, a docker context)."""
    address: str
    """Where this machine reaches the host (the SSH connection's HostName)."""
    ask: AskSecret
    tries: int = 3
    """How many answers a refused secret may get (1 for scripts: asking again gets the same)."""
    root: Path | None = None
    """Where steps keep local state (None: their default under the admin's home; tests)."""


def client_host(transport: Transport) -> str:
    """The host's name for local files: ``admin@web1:22`` → web1."""
    target = transport.host_label.rpartition("@")[2]
    if target.startswith("["):
        return target[1:].partition("]")[0]
    return target.partition(":")[0] if target.count(":") == 1 else target


def client_address(transport: Transport) -> str:
    """What a local client connects to: where the SSH connection goes (its HostName)."""
    hostname = getattr(transport, "hostname", "")
    return hostname if isinstance(hostname, str) and hostname else client_host(transport)


def local_context(
    transport: Transport, ask: AskSecret, *, tries: int = 3, root: Path | None = None
) -> LocalContext:
    return LocalContext(client_host(transport), client_address(transport), ask, tries, root)


@dataclass(frozen=True)
class Prepared:
    """What a step's ``prepare`` hook made: the answers to plan with, and local folders it
    created (the only local change before an apply)."""

    answers: Any
    created: tuple[Path, ...] = ()


@dataclass(frozen=True)
class LocalReport:
    """Lines to show after the local work that follows an apply; ``ok`` False when it failed
    (the change on the host stays)."""

    lines: list[str]
    ok: bool = True


# ---- scripted secrets -----------------------------------------------------------------------


def scripted_secret(
    secret_file: str | None, environ: Mapping[str, str] | None = None
) -> Secret | None:
    """The secret given for scripts: the first line of ``secret_file``, else the
    :data:`SECRET_ENV` environment variable; None when neither is given."""
    if secret_file:
        path = Path(secret_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
            raise HostwizError(
                f"cannot read the passphrase file {path}: {reason}.",
                "Give a readable file whose first line is the CA passphrase.",
            ) from None
        return Secret(text.splitlines()[0] if text else "")
    value = (os.environ if environ is None else environ).get(SECRET_ENV)
    return None if value is None else Secret(value)


def readable_by_others(secret_file: str) -> bool:
    """True when the secret file can be read by its group or by everyone."""
    try:
        mode = Path(secret_file).expanduser().stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def answer_with(secret: Secret) -> AskSecret:
    """An :data:`AskSecret` for scripts: the same secret, typed "twice" when it is chosen now
    (there is no typing to get wrong). Use with ``tries=1``: asking again gets the same."""

    def ask(request: SecretRequest) -> SecretAnswer:
        return SecretAnswer(secret, secret if request.confirm else None)

    return ask


def remembering(ask: AskSecret) -> AskSecret:
    """``ask``, but the same need (:attr:`SecretRequest.needed_by`) is asked once: a site's
    hosts share one CA, so its passphrase is typed once for all of them. A request that says
    the last answer was refused (``problem``) is asked again, and its new answer remembered."""
    given: dict[str, Secret] = {}
    lock = threading.Lock()

    def ask_once(request: SecretRequest) -> SecretAnswer | None:
        with lock:
            known = given.get(request.needed_by) if request.problem is None else None
            if known is not None:
                return SecretAnswer(known, known if request.confirm else None)
            answer = ask(request)
            if answer is not None:
                given[request.needed_by] = answer.secret
            return answer

    return ask_once


def nobody_to_ask(request: SecretRequest) -> SecretAnswer | None:
    raise SecretNotGiven(
        f"{request.needed_by}, and nobody is here to type it. Nothing was changed.",
        f"Run in a terminal, or give it for scripts with {SECRET_ENV}=... in the "
        "environment or --passphrase-file FILE (its first line); never on the command line.",
    )
