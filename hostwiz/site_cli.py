"""``hostwiz plan/apply/rollback/recover/check/audit --site FILE`` (or repeated ``--host``): a site.

Thin: everything between reading and applying is :mod:`wizard.site`; this opens one
connection per host, prints every host's diff grouped per host, asks once for the whole site,
and says what happened. No step is named here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from hostwiz.progress import print_progress
from wizard.errors import HostwizError

if TYPE_CHECKING:  # imported where used: the CLI starts fast (tests/unit/test_import_cost.py)
    from wizard.local import AskSecret
    from wizard.site.model import Site
    from wizard.transport.base import Transport
    from wizard.transport.ssh import SshTransport

EXIT_OK, EXIT_ERROR, EXIT_CHANGES_PENDING, EXIT_FINDINGS = 0, 1, 2, 3


class HostAction(argparse.Action):
    """``--host`` that may be repeated: the last one stays ``args.host`` (one host, as
    always), all of them are ``args.hosts`` (several: a site without a file)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        namespace.host = values
        namespace.hosts = [*(getattr(namespace, "hosts", None) or []), values]


def add_site_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="several hosts with roles, from a site file (hostwiz lab up --topology writes one)",
    )


def site_of(args: argparse.Namespace) -> Site | None:
    """The site the options name: ``--site FILE``, or several ``--host``; None for one host."""
    path = getattr(args, "site", None)
    hosts = getattr(args, "hosts", None) or []
    if not path and len(hosts) <= 1:
        return None  # one host: the site code is not even imported (it is not needed)
    from wizard.site.model import SiteError, load_site, site_from_hosts

    if path and hosts:
        raise SiteError("--site and --host do not go together: the site file names the hosts.",
                        "Leave out --host (or put the host in the site file).")  # fmt: skip
    if path:
        return load_site(path)
    if len(hosts) > 1:
        return site_from_hosts(hosts, getattr(args, "preset", "hardened"))
    return None


def _session(args: argparse.Namespace, site: Site) -> Any:
    from wizard.site.plan import site_session

    return site_session(site, getattr(args, "overrides", None) or [])


@contextmanager
def connected(
    args: argparse.Namespace, site: Site, meanwhile: Callable[[], None] | None = None
) -> Iterator[dict[str, Transport]]:
    """One connection per host of the site (closed on the way out), as ``--host`` would.

    The hosts are connected at the same time (each connect mostly waits for its host; one
    after the other, ten hosts took ten times as long). On a failure every connection that
    did open is closed, and the first failing host's error (in the site's order) is raised.

    ``meanwhile`` runs on this thread while the hosts connect (the site's session: its
    presets and the planning code, ~0.1 s of imports that used to come before the first
    connect); what it raises is raised once every connect ended, the connections closed.
    Nothing is imported before the connects start but what connecting needs.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(host: Any) -> Transport | BaseException:
        options = argparse.Namespace(**{**vars(args), "host": host.target})
        try:
            return open_transport(options)
        except Exception as error:  # raised below, once every connect ended
            return error

    hosts = list(site.hosts)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_CONNECTS, len(hosts))),
                            thread_name_prefix="hostwiz-connect") as pool:  # fmt: skip
        futures = {host.name: pool.submit(one, host) for host in hosts}
        problem: BaseException | None = None
        try:
            if meanwhile is not None:
                meanwhile()
        except BaseException as error:  # raised below, once every connect ended
            problem = error
    outcomes = {name: future.result() for name, future in futures.items()}
    opened = {name: got for name, got in outcomes.items() if not isinstance(got, BaseException)}
    try:
        if problem is not None:
            raise problem
        failed = [got for got in outcomes.values() if isinstance(got, BaseException)]
        if failed:
            raise failed[0]
        yield opened
    finally:
        for transport in opened.values():
            with suppress(Exception):
                transport.close()


MAX_CONNECTS = 16
"""Hosts connected at the same time (as :data:`wizard.site.plan.MAX_PARALLEL`)."""


def open_transport(args: argparse.Namespace) -> SshTransport:
    from wizard.connect import open_transport as connect

    return connect(args)


def _print(lines: Any) -> None:
    from wizard.render import as_ansi, as_text

    sys.stdout.write(as_ansi(lines) if sys.stdout.isatty() else as_text(lines))


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def plan_as_json(plan: Any, session: Any, as_json: Any) -> dict[str, Any]:
    hosts = []
    for change in plan.changes:
        if change.changeset.empty and change.stage > 1:
            continue
        host = session.site.host(change.host)
        # The changeset's own "host" is its connection label: the site's name wins.
        hosts.append({**as_json(change.changeset), "host": host.name, "target": host.target,
                      "roles": list(host.roles), "stage": change.stage,
                      "provisional": list(change.provisional)})  # fmt: skip
    return {"site": plan.site, "stages": plan.stages, "changes_pending": not plan.empty,
            "hosts": hosts}  # fmt: skip


def say_created(folders: Any) -> None:
    """Local folders a step's preparation made (a new CA): the admin should back them up."""
    for folder in folders:
        print(f"Created a new CA in {folder} (on this machine; its key is encrypted with your "
              "passphrase). Back the folder up.", file=sys.stderr)  # fmt: skip


def _show_conflicts(session: Any) -> Any:
    """What ``preview_prepared`` calls once the hosts are read: the combination checker's
    findings on the whole site (stderr), shown even when planning then refuses."""
    from wizard.checks import conflict_lines
    from wizard.site.check import site_conflicts

    def show(facts: Any) -> None:
        for line in conflict_lines(site_conflicts(session, facts)):
            print(line, file=sys.stderr)

    return show


def cmd_check_site(args: argparse.Namespace, site: Site) -> int:
    """Read-only: the combination checker on every host of the site (read at the same time).
    Exit 1 when a conflict is found."""
    from wizard.checks import conflict_lines, conflicts_json
    from wizard.site.check import read_check_facts, site_conflicts

    session = _session(args, site)
    with connected(args, site) as transports:
        facts = read_check_facts(transports)
    found = site_conflicts(session, facts)
    if getattr(args, "json", False):
        print(json.dumps(conflicts_json(found), indent=2))
    else:
        hosts = ", ".join(host.name for host in site.hosts)
        print("\n".join(conflict_lines(found)) or f"No known conflicts on {hosts}.")
    return EXIT_ERROR if found else EXIT_OK


def cmd_plan_site(args: argparse.Namespace, site: Site, as_json: Any,
                  asker: tuple[AskSecret, int]) -> int:  # fmt: skip
    """Read-only on the hosts; locally, at most a new CA (as for one host)."""
    sessions: list[Any] = []
    with connected(args, site, lambda: sessions.append(_session(args, site))) as transports:
        from wizard.site.local import preview_prepared

        session = sessions[0]
        preview = preview_prepared(session, transports, asker[0], tries=asker[1],
                                   on_read=_show_conflicts(session))  # fmt: skip
    say_created(preview.created)
    from wizard.site.plan import render_site

    plan, session = preview.plan, preview.session
    if getattr(args, "json", False):
        print(json.dumps(plan_as_json(plan, session, as_json), indent=2))
    else:
        _print(render_site(plan, session))
    return EXIT_OK if plan.empty else EXIT_CHANGES_PENDING


def _finish_locally(session: Any) -> int:
    """Every host's local work once the site's change went through (a client bundle)."""
    from wizard.site.local import site_after_confirmed

    report = site_after_confirmed(session)
    for line in report.lines:
        print(line)
    return EXIT_OK if report.ok else EXIT_ERROR


def cmd_apply_site(args: argparse.Namespace, site: Site, asker: tuple[AskSecret, int]) -> int:
    from wizard.site.apply import apply_site, apply_site_planned
    from wizard.site.local import preview_prepared
    from wizard.site.plan import render_site

    with connected(args, site) as transports:
        session = _session(args, site)
        preview = preview_prepared(session, transports, asker[0], tries=asker[1],
                                   on_read=_show_conflicts(session))  # fmt: skip
        say_created(preview.created)
        plan, session = preview.plan, preview.session
        _print(render_site(plan, session))
        if plan.empty:
            print("Nothing to do: every host is already as asked.")
            return _finish_locally(session)  # the hosts are set; this machine may not be
        hosts = len({change.host for change in plan.changes if not change.changeset.empty})
        if args.yes:
            result = apply_site_planned(session, transports, plan, preview.facts,
                                        progress=print_progress,
                                        confirm_timeout=args.confirm_timeout)  # fmt: skip
        elif _confirm(f"Apply these changes on {hosts} host(s) of site {site.name}?"):
            result = apply_site(session, transports, expected=plan, progress=print_progress,
                                confirm_timeout=args.confirm_timeout)  # fmt: skip
        else:
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_ERROR
    print(result.message)
    return _finish_locally(session)  # only now: nothing local points at an undone change


def cmd_rollback_site(args: argparse.Namespace, site: Site) -> int:
    from wizard.site.apply import render_rollback, rollback_site, site_rollback_plans
    from wizard.site.model import SiteError

    if getattr(args, "snapshot", None):
        raise SiteError("rollback --site puts back the site's last change on every host; it "
                        "takes no snapshot id.",
                        "Roll back one host's snapshot with --host HOST ID.")  # fmt: skip
    with connected(args, site) as transports:
        plans = site_rollback_plans(site.name, transports)
        if not plans:
            print(f"No site change of {site.name} to roll back (none recorded on this machine, "
                  "or it was put back already).")  # fmt: skip
            return EXIT_OK
        _print(render_rollback(site, plans))
        if all(item.plan.empty for item in plans):
            print("Nothing to roll back: every host is as before the site change.")
            return EXIT_OK
        order = ", ".join(item.host for item in plans if not item.plan.empty)
        if not args.yes and not _confirm(f"Put back site {site.name} ({order}, in this order)?"):
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_ERROR
        back, stuck, notes = rollback_site(site.name, transports, plans,
                                           progress=print_progress,
                                           confirm_timeout=args.confirm_timeout)  # fmt: skip
    print(f"Put back: {', '.join(back) or 'none'}.")
    for line in notes:
        print(line)
    if stuck:
        print(f"NOT put back: {', '.join(stuck)}. `{site.command('recover')}` "
              "tells the story.")  # fmt: skip
        return EXIT_ERROR
    return EXIT_OK


def cmd_recover_site(args: argparse.Namespace, site: Site) -> int:
    """The site journal's story, then what each host's own journal says."""
    from wizard.errors import recovery_can_help
    from wizard.recovery import explain_last_change, interrupted_transactions, read_host_change
    from wizard.site import journal

    for line in journal.explain(site.name):
        print(line)
    unreachable = []
    failed = False
    for host in site.hosts:
        print(f"\n{host.name} ({host.target}):")
        options = argparse.Namespace(**{**vars(args), "host": host.target})
        try:
            transport = open_transport(options)
        except HostwizError as error:
            if not recovery_can_help(error):  # a typo: recovery cannot help
                print(f"  cannot find it: {error.message}\n  What to do: {error.hint}")
                failed = True
                continue
            unreachable.append(host.target)
            print(f"  cannot get in: {error.message}")
            for line in explain_last_change(host.target):
                print(f"  {line}")
            continue
        with transport:
            for line in explain_last_change(host.target, on_host=read_host_change(transport)):
                print(f"  {line}")
            pending = interrupted_transactions(transport)
        for item in pending:
            print(f"  Interrupted: snapshot {item.snapshot.id}, last state {item.snapshot.state}.")
    for target in unreachable:
        print(f"\nFor {target}: hostwiz recover --host {target}")
    return EXIT_ERROR if unreachable or failed else EXIT_OK


def cmd_audit_site(args: argparse.Namespace, site: Site) -> int:
    """Every host audited at once (one round trip each), reported grouped by host. Exit 1 when
    a host could not be audited, else 3 when a finding on any host reaches ``--fail-on``."""
    from wizard.audit import Severity
    from wizard.audit.report import site_as_json, site_as_text
    from wizard.audit.site import audit_hosts, failing_hosts, unaudited

    threshold = None if args.fail_on == "never" else Severity.named(args.fail_on)

    def connect(host: Any) -> Transport:
        return open_transport(argparse.Namespace(**{**vars(args), "host": host.target}))

    audits = audit_hosts(site, connect)
    if getattr(args, "json", False):
        print(json.dumps(site_as_json(site, audits, threshold), indent=2))
    else:
        sys.stdout.write(site_as_text(site, audits))
    if unaudited(audits):
        return EXIT_ERROR
    if threshold is not None and failing_hosts(audits, threshold):
        return EXIT_FINDINGS
    return EXIT_OK
