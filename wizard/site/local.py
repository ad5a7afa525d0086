"""A site's local work: each host's steps' ``prepare`` and ``after_confirmed`` hooks
(:mod:`wizard.local`), run as for one host.

Between reading the hosts and planning, every host's selections are prepared in the site's
order with a :class:`~wizard.local.LocalContext` of its own (its name and address for local
files: a client bundle, a docker context), through the one way of asking the front end gave.
The same secret is asked once for the whole site (:func:`wizard.local.remembering`): one CA
passphrase issues every host's server certificate. The prepared answers replace the
selections in the :class:`~wizard.site.plan.SiteSession`, so the re-read before the apply plans
with the same material (a new certificate is issued once, not again at apply time).

After a site apply that went through (or a site that needed nothing), every host's
``after_confirmed`` hooks run; after a failure the site was put back, and nothing local is set
up for a change no host kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from wizard.facts import Facts
from wizard.local import AskSecret, LocalReport, local_context, remembering
from wizard.session import Selection, after_confirmed, prepare_local
from wizard.site.plan import SitePlan, SiteSession, plan_site, read_site
from wizard.transport.base import Transport


@dataclass(frozen=True)
class PreparedSite:
    """The site session with every host's prepared answers, and the local folders made."""

    session: SiteSession
    created: tuple[Path, ...] = ()


def prepare_site(
    session: SiteSession,
    transports: Mapping[str, Transport],
    facts: Mapping[str, Facts],
    ask: AskSecret,
    *,
    tries: int = 3,
    root: Path | None = None,
) -> PreparedSite:
    """Every host's ``prepare`` hooks, host after host in the site's order (they may ask)."""
    once = remembering(ask)
    selections: dict[str, list[Selection]] = {}
    created: list[Path] = []
    for host in session.site.hosts:
        local = local_context(transports[host.name], once, tries=tries, root=root)
        prepared = prepare_local(session.selections[host.name], facts[host.name], local)
        selections[host.name] = prepared.selections
        created.extend(folder for folder in prepared.created if folder not in created)
    return PreparedSite(replace(session, selections=selections), tuple(created))


@dataclass(frozen=True)
class SitePreview:
    """What the admin reviews: the plan, the facts it was made from, and the prepared session
    to apply it with."""

    session: SiteSession
    plan: SitePlan
    facts: dict[str, Facts]
    created: tuple[Path, ...] = ()


def preview_prepared(
    session: SiteSession,
    transports: Mapping[str, Transport],
    ask: AskSecret,
    *,
    tries: int = 3,
    root: Path | None = None,
    on_read: Callable[[dict[str, Facts]], None] | None = None,
) -> SitePreview:
    """Read every host (one round trip each, at once), do the steps' local work, plan.

    ``on_read`` sees the facts before anything local happens or is planned (the combination
    checker's findings show even when planning then refuses)."""
    from wizard.site.apply import labels_of

    facts = read_site(session, transports)
    if on_read is not None:
        on_read(facts)
    prepared = prepare_site(session, transports, facts, ask, tries=tries, root=root)
    plan = plan_site(prepared.session, labels_of(transports), facts)
    return SitePreview(prepared.session, plan, facts, prepared.created)


def site_after_confirmed(session: SiteSession) -> LocalReport:
    """Every host's local work after the site's change went through, host by host; lines are
    marked with the host when the site has several."""
    lines: list[str] = []
    ok = True
    named = len(session.site.hosts) > 1
    for host in session.site.hosts:
        report = after_confirmed(session.selections[host.name])
        lines.extend(f"{host.name}: {line}" if named else line for line in report.lines)
        ok = ok and report.ok
    return LocalReport(lines, ok)
