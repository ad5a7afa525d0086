"""The combination checker on a site: every host's answers (its preset and the site steps on
its roles) and facts, checked together (:mod:`wizard.checks.site`)."""

from __future__ import annotations

from collections.abc import Mapping

from wizard.checks import (
    HOST_FACTS,
    Conflict,
    SiteHostCheck,
    SiteStepAnswers,
    answers_mapping,
    check_site,
    host_values,
)
from wizard.facts import Facts, gather
from wizard.site.plan import SiteSession, in_parallel
from wizard.transport.base import Transport


def site_conflicts(session: SiteSession, facts: Mapping[str, Facts]) -> list[Conflict]:
    """The conflicts of the site, from every host's facts (read with :data:`HOST_FACTS`; a host
    whose checker facts were not read is checked on its answers alone)."""
    hosts = [
        SiteHostCheck(
            host.name,
            host.roles,
            answers_mapping(session.selections[host.name]),
            host_values(facts[host.name]),
        )
        for host in session.site.hosts
    ]
    values = answers_mapping(session.steps)
    steps = [SiteStepAnswers(s.step.name, s.step.roles, values.get(s.step.name, {}))
             for s in session.steps]  # fmt: skip
    return check_site(hosts, steps)


def read_check_facts(transports: Mapping[str, Transport]) -> dict[str, Facts]:
    """Only what the checker reads, from every host at the same time (``hostwiz check``)."""
    return in_parallel(dict(transports), lambda transport: gather(transport, list(HOST_FACTS)))
