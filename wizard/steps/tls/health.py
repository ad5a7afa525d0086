"""After an apply: this machine reaches the API over TLS with the new certificates."""

from __future__ import annotations

from wizard.facts import Facts
from wizard.steps.tls.answers import (
    DockerTlsAnswers,
)
from wizard.steps.tls.plan import (
    PreparedTls,
    _unwrap,
)
from wizard.tls_client import (
    check_tls_endpoint,
)
from wizard.transport.base import Transport


def health(
    transport: Transport, answers: DockerTlsAnswers | PreparedTls, facts: Facts
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
