"""Step: the Docker API over TCP, protected by TLS with certificates from a private CA.

Without this step the Docker API is only on the host's socket, reached over SSH. With it,
dockerd also listens on ``tcp://0.0.0.0:2376`` and answers only clients whose certificate was
signed by the admin's own CA (``tlsverify``); the local socket keeps working.

Where the certificates come from (the design choice)
----------------------------------------------------
Creating a CA, issuing certificates and writing the admin's client bundle are side effects on
the admin's machine, and issuing needs the CA passphrase, which is never stored. They are kept
out of the pure planner in three phases:

1. :func:`~wizard.steps.tls.local.prepare` (run by the session's ``prepare_local`` through
   the step's ``prepare`` hook, after reading facts, before planning) opens the
   local CA with the passphrase, or creates it (passphrase asked twice), and decides from the
   facts whether the host's server certificate and the admin's client certificate can stay or
   must be (re)issued: missing, from another CA, not covering the host's names, or due for
   renewal. Newly issued PEM bytes are held in memory only. It returns a :class:`PreparedTls`:
   the same answers (a subclass of :class:`DockerTlsAnswers`, so the step is honestly a
   ``Step[DockerTlsAnswers]``) plus that material. The only local change it can make is
   creating a new CA.
2. :meth:`DockerTlsStep.plan` is pure: given prepared answers and the facts, it returns
   the WriteFile/RunCommand actions. Because the material is fixed, re-planning at apply time
   gives the same plan; because :func:`prepare` keeps certificates that are still good, a
   second run plans nothing. Plain answers (without material) plan nothing while the step is
   off, and otherwise raise :class:`NeedsPassphrase`; :meth:`DockerTlsStep.status` needs no
   material, so the step list works without the passphrase.
3. After a confirmed apply, :func:`~wizard.steps.tls.local.install_client` (the step's
   ``after_confirmed`` hook) writes the client bundle and the docker context, so nothing
   local points at a host that rolled the change back.

The package: ``answers`` (the questions, the paths), ``facts`` (the host's names, the
certificates in place), ``plan`` (pure), ``health``, ``local`` (the CA, issuing, the bundle,
the passphrase request), and the step here.

Issuing inside the plan was rejected: it would need the CA key (a secret, and a file read) in
every re-plan, and fresh keys each time would make the plan never settle.
"""

from __future__ import annotations

from typing import Any

from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts
from wizard.host.docker import DAEMON_JSON, DOCKERD
from wizard.local import LocalContext, LocalReport, Prepared
from wizard.plan import Plan
from wizard.steps.base import Need, Status, StepStatus
from wizard.steps.tls import health as _health
from wizard.steps.tls import local as _local
from wizard.steps.tls import plan as _plan
from wizard.steps.tls.answers import TLS_KEYS, DockerTlsAnswers
from wizard.steps.tls.facts import (
    CONFIGURED_CERT,
    DROP_IN,
    HOST_CA,
    HOST_IDENTITY,
    SERVER_CERT,
    SERVER_KEY,
    TLS_DIR_META,
)
from wizard.steps.tls.plan import _daemon_config, _listener, foreign_setup
from wizard.transport.base import Transport


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

    def facts(self, answers: DockerTlsAnswers) -> list[Fact[Any]]:
        return [
            DAEMON_JSON, DOCKERD, SERVICE_MANAGER, HOST_IDENTITY, SERVER_CERT, HOST_CA,
            SERVER_KEY, TLS_DIR_META, DROP_IN, CONFIGURED_CERT,
        ]  # fmt: skip

    def plan_facts(self, answers: DockerTlsAnswers) -> list[Fact[Any]]:
        """Off, the plan (and prepare, needs, health) reads nothing; the status still tells
        a certificate an earlier apply left (through :meth:`facts`)."""
        return self.facts(answers) if answers.enabled else []

    def plan(self, answers: DockerTlsAnswers, facts: Facts) -> Plan:
        return _plan.plan(self.name, answers, facts)

    def health(self, transport: Transport, answers: DockerTlsAnswers, facts: Facts) -> list[str]:
        return _health.health(transport, answers, facts)

    def status(self, answers: DockerTlsAnswers, facts: Facts) -> StepStatus:
        now = facts[HOST_IDENTITY].now
        try:
            current = _daemon_config(facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        found = foreign_setup(current, facts, None)
        if found:
            other = facts[CONFIGURED_CERT].info
            expiry = f"; its certificate expires in {other.days_left(now)} days" if other else ""
            if answers.existing == "reuse":
                return StepStatus(Status.DONE, f"the host's own TLS setup is kept{expiry}")
            return StepStatus(Status.UNKNOWN, f"another TLS setup is in place{expiry}")
        info = facts[SERVER_CERT].info
        configured = all(current.get(key) == value for key, value in TLS_KEYS.items()) and (
            current.get("tlsverify") is True and _listener(answers) in (current.get("hosts") or [])
        )
        if info is None or not configured:
            if not answers.enabled:
                return StepStatus(Status.OFF, "not chosen: the Docker API is only on the host")
            return StepStatus(Status.NOT_DONE, "no TLS for the Docker API yet")
        days = info.days_left(now)
        if days < 0:
            return StepStatus(Status.DRIFTED, f"server certificate expired {-days} days ago")
        wanted = facts[HOST_IDENTITY].names()
        if days < answers.renew_within_days:
            return StepStatus(Status.DRIFTED, f"server certificate expires in {days} days: renew")
        if not info.covers(wanted):
            missing = sorted(set(wanted) - set(info.names))
            return StepStatus(Status.DRIFTED, f"server certificate lacks {', '.join(missing)}")
        return StepStatus(
            Status.DONE, f"{_listener(answers)}, server certificate valid {days} more days"
        )

    def needs(self, answers: DockerTlsAnswers, facts: Facts) -> tuple[Need, ...]:
        """The TLS port, for the clients of the zone the admin chose (never wan by itself)."""
        if not answers.enabled or answers.listen_address in {"127.0.0.1", "::1"}:
            return ()
        service = "docker-tls" if answers.port == 2376 else f"{answers.port}/tcp"
        why = f"the tls step's dockerd answers the Docker API on {answers.port}/tcp"
        return (Need(service, why=why),)

    # ---- local work (wizard.local): run by the session, never named by a front end -------

    def prepare(self, answers: DockerTlsAnswers, facts: Facts, local: LocalContext) -> Prepared:
        return _local.prepare_local_work(answers, facts, local)

    def after_confirmed(self, answers: DockerTlsAnswers) -> LocalReport:
        return _local.after_confirmed(answers)

    def after_rolled_back(self, answers: DockerTlsAnswers, host: str) -> list[str]:
        return _local.after_rolled_back(answers, host)

    def local_status(
        self, answers: DockerTlsAnswers, status: StepStatus, facts: Facts, host: str
    ) -> StepStatus:
        return _local.local_status(answers, status, facts, host)


DOCKER_TLS = DockerTlsStep()
