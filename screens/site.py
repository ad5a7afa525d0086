"""A site in the wizard: several hosts (marked on the start screen, or a site file) previewed
together, every host's diff grouped per host, and applied as one reviewed change; from the
preview, ``s`` shows the site's last change and puts every host back.

Everything between reading and applying is :mod:`wizard.site`; no step is named here. The
steps' local work (the CA passphrase, the client bundles) goes through the same hooks as for
one host (:mod:`wizard.site.local`), the passphrase asked in the wizard's dialog.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType

from screens.app import Stopped
from screens.dialogs import ErrorScreen
from screens.preview import PreviewScreen
from screens.snapshot_list import SiteSnapshotsScreen
from screens.start import HostChoice, SiteChoice
from wizard.checks import conflict_lines
from wizard.facts import Facts
from wizard.local import AskSecret, remembering
from wizard.render import RenderedLine
from wizard.site import journal
from wizard.site.apply import (
    apply_site,
    close_all,
    render_rollback,
    rollback_site,
    site_rollback_plans,
)
from wizard.site.check import site_conflicts
from wizard.site.local import preview_prepared, site_after_confirmed
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


class SitePreviewScreen(PreviewScreen):
    """The site's preview, plus ``s``: the site's last change and putting it back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("s", "snapshots", "Snapshots")]
    snapshots_requested = False

    def action_snapshots(self) -> None:
        self.snapshots_requested = True
        self.dismiss(False)


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
            transports[host.name] = await app.open_connection(picked)  # Escape stops it
        # One passphrase for the visit: the preview after an apply (or a rollback) prepares
        # again, from the hosts as they are then, without asking again.
        ask = remembering(app.ask_secret)
        while await _preview_and_apply(app, site, session, transports, ask):
            pass
    except Stopped:  # Escape while connecting: back to the start screen
        pass
    except Exception as error:
        await app.push_screen_wait(ErrorScreen(error))
    finally:
        await app.blocking("Disconnecting…", partial(close_all, transports))


async def _preview_and_apply(
    app: HostwizApp,
    site: Site,
    session: SiteSession,
    transports: dict[str, Transport],
    ask: AskSecret,
) -> bool:
    """One preview (and the apply or the rollback it leads to); False when the admin left."""
    preview = await app.blocking(
        f"Reading the state of {len(transports)} hosts…",
        partial(preview_prepared, session, transports, ask, tries=10),
    )
    for folder in preview.created:
        app.notify(f"Created your CA in {folder}; its key is encrypted with your passphrase. "
                   "Back the folder up.", timeout=15)  # fmt: skip
    screen = SitePreviewScreen(
        f"Site {site.name}: what would change on each host",
        [
            *conflict_lines_of(preview.session, preview.facts),
            *render_site(preview.plan, preview.session),
        ],
        empty=preview.plan.empty,
    )
    go = await app.push_screen_wait(screen)
    if screen.snapshots_requested:
        await site_rollback(app, site, transports)
        return True
    if not go:
        if preview.plan.empty:  # the hosts need nothing; this machine may (a client bundle)
            await _finish_locally(app, site, preview.session, "")
        return False

    def progress(event: Event) -> None:
        app.call_from_thread(app.set_busy, event.message)

    result = await app.blocking(
        f"Applying site {site.name}…",
        partial(apply_site, preview.session, transports, expected=preview.plan,
                progress=progress, confirm_timeout=app.args.confirm_timeout),
    )  # fmt: skip
    await _finish_locally(app, site, preview.session, result.message)
    return True


async def _finish_locally(app: HostwizApp, site: Site, session: SiteSession, said: str) -> None:
    """Every host's local work once the site's change went through, told with ``said``."""
    report = await app.blocking("Setting up this machine…", partial(site_after_confirmed, session))
    text = "\n".join(line for line in (said, *report.lines) if line)
    if text:
        app.notify(text, title=f"Site {site.name}", timeout=20,
                   severity="information" if report.ok else "warning")  # fmt: skip


async def site_rollback(app: HostwizApp, site: Site, transports: Mapping[str, Transport]) -> None:
    """The site's last change (each host's snapshot, the journal's story); on Enter, the plan
    that puts every host back, newest first; on confirmation, ``rollback --site``'s core."""
    plans = await app.blocking(
        f"Reading the snapshots of site {site.name}…",
        partial(site_rollback_plans, site.name, transports),
    )
    story = journal.explain(site.name)
    if not await app.push_screen_wait(SiteSnapshotsScreen(site.name, plans, story)):
        return
    empty = all(item.plan.empty for item in plans)
    go = await app.push_screen_wait(
        PreviewScreen(
            f"Put back site {site.name}: every host, newest first",
            render_rollback(site, plans),
            empty=empty,
            action="Roll back",
        )
    )
    if not go:
        return

    def progress(event: Event) -> None:
        app.call_from_thread(app.set_busy, event.message)

    back, stuck, notes = await app.blocking(
        f"Putting back site {site.name}…",
        partial(rollback_site, site.name, transports, plans, progress=progress,
                confirm_timeout=app.args.confirm_timeout),
    )  # fmt: skip
    if stuck:
        app.notify(f"Put back: {', '.join(back) or 'none'}. NOT put back: {', '.join(stuck)}. "
                   f"`{site.command('recover')}` tells the story.", title=f"Site {site.name}",
                   severity="error", timeout=30)  # fmt: skip
    else:
        said = f"Put back site {site.name}: {', '.join(back) or 'nothing differed'}."
        app.notify("\n".join([said, *notes]), title=f"Site {site.name}", timeout=20)
