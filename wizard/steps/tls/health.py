"""After an apply: this machine reaches the API over TLS with the new certificates."""

from __future__ import annotations

from wizard.facts import Facts
from wizard.steps.tls.answers import (
    DockerTlsAnswers,
)
from wizard.steps.tls.plan import prepared_of
from wizard.tls_client import (
    check_tls_endpoint,
)
from wizard.transport.base import Transport


def health(transport: Transport, answers: DockerTlsAnswers, facts: Facts) -> list[str]:
    """Connect from this machine to ADDR:PORT with the docker SDK over TLS and the client
    certificate; the host must present the new server certificate and refuse a client
    without one."""
    prepared = prepared_of(answers)
    if not answers.enabled or prepared is None or prepared.material is None:
        return []
    material = prepared.material
    return check_tls_endpoint(
        prepared.client_address, answers.port, material.ca_cert, material.client,
        material.server_cert,
    )  # fmt: skip
