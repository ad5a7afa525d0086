"""``hostwiz --plain --site FILE`` (or ``--plain --host A --host B``): a site, line by line.

A second thin front end over :mod:`wizard.site`, beside the wizard's (``screens/site.py``):
read every host, print the combination checker's findings on the site and every host's diff,
ask once for the whole site, apply, say what happened and do the local work (client bundles),
then offer to put the site's last change back. The answers are the site's (its file, or the
preset given with repeated ``--host``, and ``--set``): no step's question is asked, and no step
is named here. The CA passphrase is asked with plain mode's password prompts, once for the
site. With ``--yes`` nothing is asked: the site is applied as planned, for scripts.

The command line resolves the site and lends its way of connecting to every host at once
(``hostwiz/site_cli.py``; nothing outside ``hostwiz/`` imports it, see
``tests/unit/test_border.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from screens.plain import yes_no
from screens.plain_common import NO_CHANGES, PlainRun, passphrase_asker, progress, say
from wizard.errors import HostwizError

if TYPE_CHECKING:
    from wizard.facts import Facts
    from wizard.local import AskSecret
    from wizard.render import RenderedLine
    from wizard.site.model import Site
    from wizard.site.plan import SiteSession
    from wizard.transport.base import Transport

Connect = Callable[["Site"], AbstractContextManager[Mapping[str, "Transport"]]]
"""Opens one connection per host of the site (closed on the way out), by the site's host name."""


def run_plain_site(
    args: argparse.Namespace, site: Site, connect: Connect, **prompt_options: Any
) -> int:
    """Entry point used by ``hostwiz --plain`` with a site (see :func:`hostwiz.cli.cmd_wizard`);
    ``prompt_options`` go to every prompt (tests pass a pipe input and a dummy output)."""
    from wizard.confirm_timeout import check_confirm_timeout

    run = PlainRun(prompt_options=prompt_options)
    try:
        run.confirm_timeout = check_confirm_timeout(args.confirm_timeout)
        return _visit(args, site, connect, run)
    except KeyboardInterrupt:
        if run.applying:
            say(run, "\nInterrupted while changing the hosts. Unless its change was confirmed, "
                     f"each host puts everything back by itself within {run.confirm_timeout} "
                     f"seconds; `{site.command('recover')}` shows what happened.")  # fmt: skip
        else:
            say(run, f"\n{NO_CHANGES}")
        return 1
    except HostwizError as error:
        say(run, error.explain())
        say(run, f"`{site.command('recover')}` tells the story." if run.applying else NO_CHANGES)
        return 1


def _asker(args: argparse.Namespace, run: PlainRun) -> tuple[AskSecret, int]:
    """How a step's secret (the CA passphrase) is answered, and how many tries a refused one
    gets: with ``--yes``, only as given for scripts; else plain mode's password prompts, once
    for the whole site."""
    from wizard.local import answer_with, nobody_to_ask, remembering, scripted_secret

    if args.yes:
        given = scripted_secret(getattr(args, "passphrase_file", None))
        return (answer_with(given) if given is not None else nobody_to_ask), 1
    return remembering(passphrase_asker(run)), 3


def _visit(args: argparse.Namespace, site: Site, connect: Connect, run: PlainRun) -> int:
    """Connect, preview, apply on a yes; then (when asking) offer the site's rollback."""
    from wizard.site.plan import site_session

    session = site_session(site, getattr(args, "overrides", None) or [])
    ask, tries = _asker(args, run)
    hosts = ", ".join(f"{host.name} ({host.target})" for host in site.hosts)
    given = f"preset {args.preset or 'hardened'}" if site.source == "--host" else site.source
    say(run, f"Site {site.name} ({given}): {hosts}.")
    say(run, f"Connecting to {len(site.hosts)} hosts…")
    with connect(site) as transports:
        code = _preview_and_apply(args, run, site, session, transports, (ask, tries))
        if not args.yes:
            code = max(code, _offer_rollback(run, site, transports))
    return code


def _show(run: PlainRun, lines: list[RenderedLine]) -> None:
    from wizard.render import as_ansi, as_text

    run.out.write(as_ansi(lines) if run.out.isatty() else as_text(lines))
    run.out.flush()


def _show_conflicts(run: PlainRun, session: SiteSession) -> Callable[[dict[str, Facts]], None]:
    """What ``preview_prepared`` calls once the hosts are read: the combination checker's
    findings on the whole site, shown even when planning then refuses."""
    from wizard.checks import conflict_lines
    from wizard.site.check import site_conflicts

    def show(facts: dict[str, Facts]) -> None:
        for line in conflict_lines(site_conflicts(session, facts)):
            say(run, line)

    return show


def _preview_and_apply(
    args: argparse.Namespace,
    run: PlainRun,
    site: Site,
    session: SiteSession,
    transports: Mapping[str, Transport],
    asker: tuple[AskSecret, int],
) -> int:
    from wizard.site.apply import apply_site
    from wizard.site.local import preview_prepared
    from wizard.site.plan import render_site

    preview = preview_prepared(session, transports, asker[0], tries=asker[1],
                               on_read=_show_conflicts(run, session))  # fmt: skip
    for folder in preview.created:
        say(run, f"Created a new CA in {folder} (its key is encrypted with your passphrase). "
                 "Back the folder up.")  # fmt: skip
    say(run)
    _show(run, render_site(preview.plan, preview.session))
    if preview.plan.empty:
        say(run, f"Nothing to change: every host of site {site.name} already matches.")
        return _local_work_after(run, preview.session)  # the hosts are set; this machine may not
    changed = dict.fromkeys(c.host for c in preview.plan.changes if not c.changeset.empty)
    question = f"Apply on {len(changed)} hosts ({', '.join(changed)})?"
    if not args.yes and not yes_no(question, False, run.prompt_options):
        say(run, NO_CHANGES)
        return 0
    run.applying = True
    result = apply_site(preview.session, transports, expected=preview.plan,
                        progress=progress(run), confirm_timeout=run.confirm_timeout)  # fmt: skip
    run.applying = False
    say(run)
    say(run, result.message)
    return _local_work_after(run, preview.session)  # only now: nothing local on an undone change


def _local_work_after(run: PlainRun, session: SiteSession) -> int:
    """Every host's local work once the site's change went through (or the site needed
    nothing): a client bundle, a docker context."""
    from wizard.site.local import site_after_confirmed

    report = site_after_confirmed(session)
    for line in report.lines:
        say(run, line)
    return 0 if report.ok else 1


def _offer_rollback(run: PlainRun, site: Site, transports: Mapping[str, Transport]) -> int:
    """As ``s`` on the wizard's site preview: the site's last change (the journal's story and
    what putting it back does on each host, newest first), and on a yes, every host put back.
    Nothing is offered when no change is recorded or every host is as before it."""
    from wizard.site import journal
    from wizard.site.apply import render_rollback, rollback_site, site_rollback_plans

    plans = site_rollback_plans(site.name, transports)
    if all(item.plan.empty for item in plans):
        return 0
    if not yes_no(f"Look at putting back site {site.name}'s last change?", False,
                  run.prompt_options):  # fmt: skip
        return 0
    say(run)
    for line in journal.explain(site.name):
        say(run, line)
    _show(run, render_rollback(site, plans))
    order = ", ".join(item.host for item in plans if not item.plan.empty)
    if not yes_no(f"Put back site {site.name} ({order}, in this order)?", False,
                  run.prompt_options):  # fmt: skip
        say(run, NO_CHANGES)
        return 0
    run.applying = True
    back, stuck, notes = rollback_site(site.name, transports, plans, progress=progress(run),
                                       confirm_timeout=run.confirm_timeout)  # fmt: skip
    run.applying = False
    say(run, f"Put back: {', '.join(back) or 'none'}.")
    for line in notes:
        say(run, line)
    if stuck:
        say(run, f"NOT put back: {', '.join(stuck)}. `{site.command('recover')}` tells the "
                 "story.")  # fmt: skip
        return 1
    return 0
