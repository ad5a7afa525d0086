"""``hostwiz plan/apply/rollback/recover --site FILE`` (or repeated ``--host``): a site.

Thin: everything between reading and applying is :mod:`wizard.site`; this opens one
connection per host, prints every host's diff grouped per host, asks once for the whole site,
and says what happened. No step is named here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from wizard.errors import HostwizError

if TYPE_CHECKING:  # imported where used: the CLI starts fast (tests/unit/test_import_cost.py)
    from wizard.site.model import Site
    from wizard.transport.base import Transport
    from wizard.transport.ssh import SshTransport

EXIT_OK, EXIT_ERROR, EXIT_CHANGES_PENDING = 0, 1, 2


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
def connected(args: argparse.Namespace, site: Site) -> Iterator[dict[str, Transport]]:
    """One connection per host of the site (closed on the way out), as ``--host`` would.

    The hosts are connected at the same time (each connect mostly waits for its host; one
    after the other, ten hosts took ten times as long). On a failure every connection that
    did open is closed, and the first failing host's error (in the site's order) is raised.
    """
    from wizard.site.apply import close_all
    from wizard.site.plan import in_parallel

    def one(host: Any) -> Transport | BaseException:
        options = argparse.Namespace(**{**vars(args), "host": host.target})
        try:
            return open_transport(options)
        except Exception as error:  # raised below, once every connect ended
            return error

    outcomes = in_parallel({host.name: host for host in site.hosts}, one)
    opened = {name: got for name, got in outcomes.items() if not isinstance(got, BaseException)}
    try:
        failed = [got for got in outcomes.values() if isinstance(got, BaseException)]
        if failed:
            raise failed[0]
        yield opened
    finally:
        close_all(opened)


def open_transport(args: argparse.Namespace) -> SshTransport:
    from wizard.connect import open_transport as connect

    return connect(args)


def _print(lines: Any) -> None:
    from wizard.render import as_ansi, as_text

    sys.stdout.write(as_ansi(lines) if sys.stdout.isatty() else as_text(lines))


def _progress(event: Any) -> None:
    marks = {"action": "  ..", "action-done": "  ok", "action-failed": "  !!", "warning": "  !"}
    print(f"{marks.get(event.kind, '--')} {event.message}", file=sys.stderr)
    if event.kind == "action-failed" and event.output:
        print("     " + event.output.replace("\n", "\n     "), file=sys.stderr)


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
        hosts.append({"host": host.name, "target": host.target, "roles": list(host.roles),
                      "stage": change.stage, "provisional": list(change.provisional),
                      **as_json(change.changeset)})  # fmt: skip
    return {"site": plan.site, "stages": plan.stages, "changes_pending": not plan.empty,
            "hosts": hosts}  # fmt: skip


def cmd_plan_site(args: argparse.Namespace, site: Site, as_json: Any) -> int:
    from wizard.site.apply import preview_site
    from wizard.site.plan import render_site

    session = _session(args, site)
    with connected(args, site) as transports:
        plan, _ = preview_site(session, transports)
    if getattr(args, "json", False):
        print(json.dumps(plan_as_json(plan, session, as_json), indent=2))
    else:
        _print(render_site(plan, session))
    return EXIT_OK if plan.empty else EXIT_CHANGES_PENDING


def cmd_apply_site(args: argparse.Namespace, site: Site) -> int:
    from wizard.site.apply import apply_site, apply_site_planned, preview_site
    from wizard.site.plan import render_site

    session = _session(args, site)
    with connected(args, site) as transports:
        plan, facts = preview_site(session, transports)
        _print(render_site(plan, session))
        if plan.empty:
            print("Nothing to do: every host is already as asked.")
            return EXIT_OK
        hosts = len({change.host for change in plan.changes if not change.changeset.empty})
        if args.yes:
            result = apply_site_planned(session, transports, plan, facts, progress=_progress,
                                        confirm_timeout=args.confirm_timeout)  # fmt: skip
        elif _confirm(f"Apply these changes on {hosts} host(s) of site {site.name}?"):
            result = apply_site(session, transports, expected=plan, progress=_progress,
                                confirm_timeout=args.confirm_timeout)  # fmt: skip
        else:
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_ERROR
    print(result.message)
    return EXIT_OK


def cmd_rollback_site(args: argparse.Namespace, site: Site) -> int:
    from wizard.plan import Changeset
    from wizard.render import RenderedLine, render_changeset
    from wizard.site.apply import rollback_site, site_rollback_plans
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
        lines: list[Any] = []
        for item in plans:
            target = site.host(item.host).target
            lines.append(RenderedLine("header", f"=== {item.host} ({target}): put back "
                                      f"snapshot {item.snapshot_id} ==="))  # fmt: skip
            lines.extend(render_changeset(Changeset(target, (item.plan,))))
        _print(lines)
        if all(item.plan.empty for item in plans):
            print("Nothing to roll back: every host is as before the site change.")
            return EXIT_OK
        order = ", ".join(item.host for item in plans if not item.plan.empty)
        if not args.yes and not _confirm(f"Put back site {site.name} ({order}, in this order)?"):
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_ERROR
        back, stuck = rollback_site(site.name, transports, plans, progress=_progress,
                                    confirm_timeout=args.confirm_timeout)  # fmt: skip
    print(f"Put back: {', '.join(back) or 'none'}.")
    if stuck:
        print(f"NOT put back: {', '.join(stuck)}. `{site.command('recover')}` "
              "tells the story.")  # fmt: skip
        return EXIT_ERROR
    return EXIT_OK


def cmd_recover_site(args: argparse.Namespace, site: Site) -> int:
    """The site journal's story, then what each host's own journal says."""
    from wizard.recovery import explain_last_change, interrupted_transactions, read_host_change
    from wizard.site import journal

    for line in journal.explain(site.name):
        print(line)
    unreachable = []
    for host in site.hosts:
        print(f"\n{host.name} ({host.target}):")
        options = argparse.Namespace(**{**vars(args), "host": host.target})
        try:
            transport = open_transport(options)
        except HostwizError as error:
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
    return EXIT_ERROR if unreachable else EXIT_OK
