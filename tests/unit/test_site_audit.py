"""Auditing a site: every host at once; a host that fails is reported alone."""

from __future__ import annotations

import threading
from typing import Any

from wizard.audit.site import audit_hosts
from wizard.errors import ConnectionFailed
from wizard.site.model import SiteHost, parse_site


def test_every_host_is_read_at_the_same_time_and_a_host_that_fails_is_reported_alone() -> None:
    """Two hosts connect at once (a barrier only both together pass: one after the other,
    it breaks); the one that cannot be reached is reported with why, the other is not."""
    site = parse_site('[hosts.a]\n[hosts.b]\nroles = ["web"]\n')
    together = threading.Barrier(2, timeout=30)

    def connect(host: SiteHost) -> Any:
        together.wait()
        raise ConnectionFailed(f"{host.name} is away", "Start it.", kind="no-answer")

    audits = audit_hosts(site, connect)
    assert [(a.host.name, a.problem.message if a.problem else "") for a in audits] == [
        ("a", "a is away"), ("b", "b is away")
    ]  # fmt: skip
