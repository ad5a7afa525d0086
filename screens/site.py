"""A site in the wizard: several hosts (marked on the start screen, or a site file) previewed
together, every host's diff grouped per host, and applied as one reviewed change.

Everything between reading and applying is :mod:`wizard.site`; no step is named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from screens.dialogs import ErrorScreen
from screens.preview import PreviewScreen
from screens.start import HostChoice, SiteChoice
from wizard.checks import conflict_lines
from wizard.facts import Facts
from wizard.render import RenderedLine
from wizard.site.apply import apply_site, close_all, preview_site
from wizard.site.check import site_conflicts
from wizard.site.model import Site, load_site, site_from_hosts
from wizard.site.plan import SiteSession, render_site, site_session
from wizard.transaction import Event
from wizard.transport.base import Transport

if TYPE_CHECKING:
    from screens.app import HostwizApp


def conflict_lines_of(session: SiteSession, facts: Mapping[str, Facts]) -> list[RenderedLine]:
    """The combination checker's findings on the whole site, shown above its preview."""
    found = conflict_lines(site_conflicts(session, facts))
    return [RenderedLine("warning", line) for line in found]


def _site(app: HostwizApp, choice: SiteChoice) -> tuple[Site, SiteSession]:
    site = (
        load_site(choice.file)
        if choice.file
        else site_from_hosts([host.target for host in choice.hosts], app.args.preset)
    )
    return site, site_session(site, app.args.overrides or [])


async def site_flow(app: HostwizApp, choice: SiteChoice) -> None:
    """Connect to every host, preview, apply on confirmation, preview again (then empty);
    Back returns to the start screen. Errors are shown, never raised."""
    transports: dict[str, Transport] = {}
    try:
        site, session = await app.blocking("Reading the site…", partial(_site, app, choice))
        for host in site.hosts:
            known = next((c for c in choice.hosts if c.target == host.target), None)
            picked = known or HostChoice(host.target, "", None)
            transports[host.name] = await app.blocking(
                f"Connecting to {host.target}…", partial(app.connect, picked)
            )
        while True:
            plan, facts = await app.blocking(
                f"Reading the state of {len(transports)} hosts…",
                partial(preview_site, session, transports),
            )
            go = await app.push_screen_wait(
                PreviewScreen(
                    f"Site {site.name}: what would change on each host",
                    [*conflict_lines_of(session, facts), *render_site(plan, session)],
                    empty=plan.empty,
                )
            )
            if not go:
                return

            def progress(event: Event) -> None:
                app.call_from_thread(app.set_busy, event.message)

            result = await app.blocking(
                f"Applying site {site.name}…",
                partial(apply_site, session, transports, expected=plan, progress=progress,
                        confirm_timeout=app.args.confirm_timeout),
            )  # fmt: skip
            app.notify(result.message, title=f"Site {site.name}", timeout=20)
    except Exception as error:
        await app.push_screen_wait(ErrorScreen(error))
    finally:
        await app.blocking("Disconnecting…", partial(close_all, transports))
