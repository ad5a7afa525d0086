"""``hostwiz``: the wizard by default; subcommands for scripted and repeatable use.

Exit codes: 0 done or nothing to change; 1 error (explained on stderr); 2 changes pending
(``plan`` only: the host differs from the preset); 3 findings at or above ``--fail-on``
(``audit`` only).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hostwiz.progress import print_progress
from hostwiz.site_cli import HostAction, add_site_option, say_created, site_of
from wizard.errors import HostwizError

if TYPE_CHECKING:
    from wizard.audit.view import HostView
    from wizard.facts import Facts
    from wizard.local import AskSecret, SecretAnswer, SecretRequest
    from wizard.plan import Changeset
    from wizard.session import Selection
    from wizard.transport.base import Transport

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES_PENDING = 2
EXIT_FINDINGS = 3

PLANNING_MODULES = ("wizard.session", "wizard.checks", "wizard.render", "presets")
"""What plan and apply import once connected: imported while the connection opens."""


def _connection_options(parser: argparse.ArgumentParser, *, sub: bool = True) -> None:
    """Connection options, accepted before or after the command.

    On subcommands they default to SUPPRESS, so that a value given before the command is not
    overwritten by the subcommand's default.
    """
    group = parser.add_argument_group("connection")
    if sub:
        group.argument_default = argparse.SUPPRESS
    group.add_argument(
        "--host",
        action=HostAction,
        help="ssh config name, practice host, or user@host[:port]; repeat it for several "
        "hosts at once (plan, apply, rollback, recover, audit, check, --plain)",
    )
    group.add_argument("-F", "--ssh-config", help="ssh config file (default: ~/.ssh/config)")
    group.add_argument("-i", "--identity", help="private key file to log in with")
    group.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="trust a host key seen for the first time (a changed key is always refused)",
    )
    group.add_argument(
        "--sudo-password-stdin",
        action="store_true",
        help="read the sudo password from the first line of standard input",
    )


def _answer_options(parser: argparse.ArgumentParser, *, sub: bool = True) -> None:
    parser.add_argument("--preset", default=argparse.SUPPRESS if sub else "hardened",
                        help="shipped preset name or .toml file (default: hardened)")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append",
                        default=argparse.SUPPRESS if sub else [],
                        metavar="STEP.KEY=VALUE", help="override one answer")  # fmt: skip


def _passphrase_option(parser: argparse.ArgumentParser, *, sub: bool = True) -> None:
    parser.add_argument(
        "--passphrase-file",
        default=argparse.SUPPRESS if sub else None,
        metavar="FILE",
        help="for scripts: the CA passphrase of the tls step is the first line of FILE (or set "
        "HOSTWIZ_CA_PASSPHRASE); otherwise it is asked",
    )


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostwiz",
        description="Take a fresh Linux VM to a hardened Docker host, one reviewed, reversible "
        "step at a time. Without a command, opens the wizard.",
    )
    _connection_options(parser, sub=False)
    _answer_options(parser, sub=False)
    _passphrase_option(parser, sub=False)
    parser.add_argument(
        "--plain",
        action="store_true",
        help="ask questions line by line instead of the full-screen wizard",
    )
    parser.add_argument("--yes", action="store_true",
                        help="with --plain: apply the preset without asking")  # fmt: skip
    add_site_option(parser)  # with --plain (the wizard's start screen takes a site file)
    parser.add_argument(
        "--confirm-timeout",
        type=int,
        default=60,
        help="seconds before the host undoes an unconfirmed change: 10 to 3600 (default 60)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    facts = commands.add_parser("facts", help="show what hostwiz reads from the host")
    _connection_options(facts)
    _answer_options(facts)
    facts.add_argument("--json", action="store_true")

    plan = commands.add_parser("plan", help="show the diff and commands, change nothing")
    _connection_options(plan)
    _answer_options(plan)
    _passphrase_option(plan)
    add_site_option(plan)
    plan.add_argument("--json", action="store_true")

    apply = commands.add_parser("apply", help="show the plan, then apply it")
    _connection_options(apply)
    _answer_options(apply)
    _passphrase_option(apply)
    add_site_option(apply)
    apply.add_argument(
        "--yes", action="store_true", default=argparse.SUPPRESS, help="do not ask before applying"
    )
    apply.add_argument("--confirm-timeout", type=int, default=argparse.SUPPRESS)
    apply.add_argument(
        "--audit",
        action="store_true",
        help="audit the host before and after, and say which findings the change fixed",
    )

    snaps = commands.add_parser("snapshots", help="list the host's snapshots")
    _connection_options(snaps)
    snaps.add_argument("--json", action="store_true")

    rollback = commands.add_parser("rollback", help="put back a snapshot (shown as a plan first)")
    _connection_options(rollback)
    add_site_option(rollback)
    rollback.add_argument("snapshot", nargs="?", help="snapshot id (default: the latest)")
    rollback.add_argument(
        "--yes",
        action="store_true",
        default=argparse.SUPPRESS,
        help="do not ask before rolling back",
    )
    rollback.add_argument("--confirm-timeout", type=int, default=argparse.SUPPRESS)

    recover = commands.add_parser(
        "recover", help="cannot get in, or a change was interrupted: explain and fix"
    )
    _connection_options(recover)
    add_site_option(recover)
    recover.add_argument(
        "--rollback", action="store_true", help="roll back an interrupted change without asking"
    )
    recover.add_argument(
        "--finish",
        action="store_true",
        help="keep an interrupted change (confirm it) without asking",
    )

    _audit_parser(commands)

    check = commands.add_parser(
        "check",
        help="check the combined answers and the host for known conflicts; exit 1 on one",
        description="Check the answers of every step together, with the host's facts, for "
        "known conflicts (live-restore with swarm, an encrypted overlay without ESP, 4789/udp "
        "open to wan...), each explained. Changes nothing. With --site FILE (or several "
        "--host): every host of the site, with the site steps' answers on their roles, and "
        "rules across hosts (a swarm subnet another host routes to...).",
    )
    _connection_options(check)
    _answer_options(check)
    add_site_option(check)
    check.add_argument("--json", action="store_true")

    words = list(sys.argv[1:] if argv is None else argv)
    if "lab" in words or "-h" in words or "--help" in words:
        from lab.cli import add_lab_parser  # practice hosts: only loaded when asked for

        add_lab_parser(commands)
    else:
        commands.add_parser("lab", help="practice hosts (see hostwiz lab --help)")
    return parser


def _selections(args: argparse.Namespace) -> list[Any]:
    from presets import apply_overrides, load_preset
    from wizard.session import selections_for

    preset = apply_overrides(load_preset(args.preset), args.overrides)
    return selections_for(preset.answers)  # in hostwiz's step order, not the preset's


def _print_plan(changeset: Any) -> None:
    from wizard.render import as_ansi, as_text, render_changeset

    lines = render_changeset(changeset)
    sys.stdout.write(as_ansi(lines) if sys.stdout.isatty() else as_text(lines))


def plan_as_json(changeset: Any) -> dict[str, Any]:
    from wizard.actions import RunCommand
    from wizard.render import action_lines, as_text, render_plan

    plans = []
    for plan in changeset.plans:
        actions = []
        for action in plan.actions:
            entry: dict[str, Any] = {
                "kind": type(action).__name__,
                "describe": as_text(action_lines(plan, action)),
            }
            if isinstance(action, RunCommand):
                entry["irreversible"] = action.irreversible
            else:
                entry["path"] = action.path
            actions.append(entry)
        plans.append({
            "step": plan.step, "empty": plan.empty, "warnings": list(plan.warnings),
            "notes": list(plan.notes), "actions": actions, "text": as_text(render_plan(plan)),
        })  # fmt: skip
    return {"host": changeset.host, "changes_pending": not changeset.empty, "plans": plans}


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def cmd_facts(args: argparse.Namespace) -> int:
    from wizard.connect import open_transport
    from wizard.session import read_facts, step_statuses

    selections = _selections(args)
    with open_transport(args) as transport:
        facts = read_facts(transport, selections)
        found = step_statuses(selections, facts, transport)
    if args.json:
        print(json.dumps({name: facts.get(name) for name in facts.names()}, default=_jsonable,
                         indent=2))  # fmt: skip
        return EXIT_OK
    for name in facts.names():
        print(f"{name}: {_jsonable(facts.get(name))}")
    for step, status in found:
        print(f"\n{step.title}: {status.status.value} ({status.summary})")
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = dataclasses.asdict(value)
        return {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
                for k, v in data.items()}  # fmt: skip
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)  # addresses, networks, enums: their usual text


def _ask_on_terminal(request: SecretRequest) -> SecretAnswer:
    """A secret a step needs (the CA passphrase) from the person at the terminal (getpass:
    not echoed); typed twice when it is chosen now."""
    import getpass
    import textwrap

    from wizard.local import SecretAnswer
    from wizard.secrets import Secret

    if request.problem is not None:
        print(f"{request.problem.message} {request.problem.hint}", file=sys.stderr)
    else:
        print(textwrap.fill(f"{request.explanation} {request.note}", 78), file=sys.stderr)
    first = Secret(getpass.getpass(f"{request.prompt}: "))
    if not request.confirm:
        return SecretAnswer(first)
    return SecretAnswer(first, Secret(getpass.getpass("The same passphrase again: ")))


def local_asker(args: argparse.Namespace) -> tuple[AskSecret, int]:
    """How the command line answers a step's secret (the CA passphrase), and how many tries a
    refused one gets: --passphrase-file or HOSTWIZ_CA_PASSPHRASE (scripts), else the terminal;
    never the command line. Without either and without a terminal, nobody can answer."""
    from wizard.local import answer_with, nobody_to_ask, readable_by_others, scripted_secret

    passphrase_file = getattr(args, "passphrase_file", None)
    given = scripted_secret(passphrase_file)
    if passphrase_file and readable_by_others(passphrase_file):
        print(f"! {passphrase_file} can be read by other users: chmod 600 it.", file=sys.stderr)
    if given is not None:
        return answer_with(given), 1
    if sys.stdin.isatty():
        return _ask_on_terminal, 3
    return nobody_to_ask, 1


def _prepared_plan(
    transport: Transport, args: argparse.Namespace
) -> tuple[list[Selection], Changeset, Facts]:
    """Facts, then the steps' local work (the CA passphrase when a step needs it, asked as
    :func:`local_asker` says), then the plan. Returns (selections, changeset, facts).
    """
    from wizard.checks import HOST_FACTS
    from wizard.facts import gather
    from wizard.local import local_context
    from wizard.session import facts_needed, plan_changeset, prepare_local

    selections = _selections(args)
    facts = gather(transport, [*facts_needed(selections, planning=True), *HOST_FACTS])
    ask, tries = local_asker(args)
    prepared = prepare_local(selections, facts, local_context(transport, ask, tries=tries))
    say_created(prepared.created)
    changeset = plan_changeset(transport.host_label, prepared.selections, facts)
    return prepared.selections, changeset, facts


def _print_conflicts(selections: list[Any], facts: Any) -> list[Any]:
    """The combination checker's findings, on stderr, before the plan is shown."""
    from wizard.checks import conflict_lines, conflicts_for

    found = conflicts_for(selections, facts)
    for line in conflict_lines(found):
        print(line, file=sys.stderr)
    return found


def cmd_check(args: argparse.Namespace) -> int:
    """Read-only: the combination checker alone. Exit 1 when a conflict is found."""
    from wizard.checks import HOST_FACTS, conflict_lines, conflicts_for, conflicts_json
    from wizard.connect import open_transport
    from wizard.facts import gather
    from wizard.session import facts_needed

    site = site_of(args)
    if site is not None:  # several hosts: a site
        from hostwiz.site_cli import cmd_check_site

        return cmd_check_site(args, site)
    selections = _selections(args)
    with open_transport(args) as transport:
        facts = gather(transport, [*facts_needed(selections, planning=True), *HOST_FACTS])
    found = conflicts_for(selections, facts)
    if args.json:
        print(json.dumps(conflicts_json(found), indent=2))
    else:
        print("\n".join(conflict_lines(found)) or "No known conflicts.")
    return EXIT_ERROR if found else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """Read-only on the host. Locally, the one possible change is a brand-new CA: a plan of the
    TLS step is made of certificates from it, and the apply that follows uses the same CA."""
    site = site_of(args)
    if site is not None:  # several hosts: a site
        from hostwiz.site_cli import cmd_plan_site

        return cmd_plan_site(args, site, plan_as_json, local_asker(args))
    from wizard.connect import open_transport

    with open_transport(args, meanwhile=PLANNING_MODULES) as transport:
        selections, changeset, facts = _prepared_plan(transport, args)
    _print_conflicts(selections, facts)
    if args.json:
        print(json.dumps(plan_as_json(changeset), indent=2))
    else:
        _print_plan(changeset)
    return EXIT_OK if changeset.empty else EXIT_CHANGES_PENDING


def cmd_apply(args: argparse.Namespace) -> int:
    site = site_of(args)
    if site is not None:  # several hosts: a site
        from hostwiz.site_cli import cmd_apply_site

        return cmd_apply_site(args, site, local_asker(args))
    from wizard.connect import open_transport

    with open_transport(args, meanwhile=PLANNING_MODULES) as transport:
        from wizard.session import after_confirmed, apply, apply_planned

        selections, changeset, facts = _prepared_plan(transport, args)
        _print_conflicts(selections, facts)
        _print_plan(changeset)
        if changeset.empty:
            # The host is as it should be; the client side may still be missing here (another
            # machine, a deleted bundle), and installing it changes nothing on the host.
            report = after_confirmed(selections)
            for line in report.lines:
                print(line)
            return EXIT_OK if report.ok else EXIT_ERROR
        before = _audit_view(transport) if getattr(args, "audit", False) else None
        if args.yes:
            # Applied straight after it was read and shown: nothing to re-check.
            result = apply_planned(
                transport,
                selections,
                changeset,
                facts,
                progress=print_progress,
                confirm_timeout=args.confirm_timeout,
            )
        elif _confirm("Apply these changes?"):
            # Time passed while the admin read the plan: re-read the host, refuse if it changed.
            result = apply(transport, selections, expected=changeset, progress=print_progress,
                           confirm_timeout=args.confirm_timeout, planning=True)  # fmt: skip
        else:
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_ERROR
        after = _audit_again(transport, before) if before is not None and result.confirmed else None
    print(result.message)
    if before is not None and after is not None:
        _print_audit_change(before, after)
    if not result.confirmed:
        return EXIT_ERROR
    report = after_confirmed(selections)  # only now: nothing local points at an undone change
    for line in report.lines:
        print(line)
    return EXIT_OK if report.ok else EXIT_ERROR


def cmd_snapshots(args: argparse.Namespace) -> int:
    from snapshots.layout import snapshot_dir
    from snapshots.store import list_snapshots, shown_states, state_words
    from wizard.connect import open_transport
    from wizard.steps import step_title

    with open_transport(args) as transport:
        found = list_snapshots(transport)
    if args.json:
        print(json.dumps([_jsonable(info) for info in found], indent=2))
        return EXIT_OK
    if not found:
        print("No snapshots on this host yet.")
    states = shown_states(found)
    for info in found:
        created = info.created or "?"
        titles = ", ".join(step_title(name) for name in info.steps)
        state = state_words(states[info.id], info.actions)
        print(f"{info.id}  {created}  {titles or '-'}  [{state}]")
        if info.damaged:
            print(f"    DAMAGED: {info.damaged}. hostwiz cannot roll back from it; look at "
                  f"{snapshot_dir(info.id)} on the host.")  # fmt: skip
        for path in info.paths:
            print(f"    {path}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    site = site_of(args)
    if site is not None:  # several hosts: a site
        from hostwiz.site_cli import cmd_rollback_site

        return cmd_rollback_site(args, site)
    from snapshots.rollback import rollback_plan
    from snapshots.store import SnapshotDamaged, list_snapshots
    from wizard.connect import open_transport
    from wizard.local import client_host
    from wizard.plan import Changeset
    from wizard.session import with_rollback_notes
    from wizard.transaction import apply_changeset

    with open_transport(args) as transport:
        snapshot_id = args.snapshot
        listed = list_snapshots(transport)
        if not snapshot_id:
            # A damaged snapshot may be the latest change: never skip it for an older one.
            found = [i for i in listed if i.reason == "apply" or i.damaged]
            if not found:
                print("No snapshots on this host: nothing to roll back.")
                return EXIT_OK
            if found[-1].damaged:
                raise SnapshotDamaged(
                    f"the latest snapshot on {transport.host_label}, {found[-1].id}, is damaged: "
                    f"{found[-1].damaged}. Nothing was changed.",
                    "Name the snapshot to roll back (hostwiz rollback --host HOST ID; hostwiz "
                    "snapshots lists them), knowing that the damaged one may be a later change.",
                )
            snapshot_id = found[-1].id
        steps = next((info.steps for info in listed if info.id == snapshot_id), ())
        plan = rollback_plan(transport, snapshot_id)
        changeset = Changeset(transport.host_label, (plan,))
        _print_plan(changeset)
        if plan.empty:
            return EXIT_OK
        if not args.yes and not _confirm(f"Roll back to before {snapshot_id}?"):
            print("Nothing was changed.", file=sys.stderr)
            return EXIT_ERROR
        result = apply_changeset(
            transport,
            changeset,
            progress=print_progress,
            confirm_timeout=args.confirm_timeout,
            reason="rollback",
        )
        result = with_rollback_notes(result, steps, client_host(transport))
    print(result.message)
    return EXIT_OK if result.confirmed else EXIT_ERROR


def _audit_parser(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="where the host stands: findings with severity, meaning and the step that fixes "
        "them (read-only)",
        description="Audit one host (--host), or every host of a site at once (--site FILE, "
        "or --host repeated), grouped by host. Read-only. Exit code 0: no finding at or above "
        "--fail-on; 3: at least one (on any host); 1: the audit could not run (on any host: "
        "the others are still reported).",
    )
    _connection_options(audit)
    add_site_option(audit)
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.add_argument(
        "--fail-on",
        default="high",
        choices=["critical", "high", "medium", "low", "info", "never"],
        help="exit with 3 when a finding is at least this severe (default: high)",
    )


def cmd_audit(args: argparse.Namespace) -> int:
    site = site_of(args)
    if site is not None:  # several hosts: a site
        from hostwiz.site_cli import cmd_audit_site

        return cmd_audit_site(args, site)
    from wizard.audit import Severity, failing, findings_in, host_view, read_audit_facts
    from wizard.audit.report import as_json, as_text
    from wizard.connect import open_transport

    threshold = None if args.fail_on == "never" else Severity.named(args.fail_on)
    with open_transport(args) as transport:
        facts = read_audit_facts(transport)
        host = transport.host_label
    view = host_view(facts)
    found = findings_in(view)
    if args.json:
        print(json.dumps(as_json(host, view, found, threshold), indent=2))
    else:
        sys.stdout.write(as_text(host, view, found))
    if threshold is not None and failing(found, threshold):
        return EXIT_FINDINGS
    return EXIT_OK


def _audit_view(transport: Transport) -> HostView:
    from wizard.audit import host_view, read_audit_facts

    return host_view(read_audit_facts(transport))


def _audit_again(transport: Transport, before: HostView) -> HostView:
    """The audit after the change (waits, bounded, for containers dockerd restarts itself)."""
    from wizard.audit import audit_again

    return audit_again(transport, before)


def _print_audit_change(before: HostView, after: HostView) -> None:
    """``apply --audit``: which findings the change fixed (and any it brought, and those it
    could not check again because their container was not running)."""
    from wizard.audit import change

    print("Audit, before -> after:")
    for line in change(before, after).lines():
        print(f"  {line}")


def cmd_wizard(args: argparse.Namespace) -> int:
    if args.plain:
        site = site_of(args)
        if site is not None:  # several hosts: a site, line by line
            from functools import partial

            from hostwiz.site_cli import connected
            from screens.plain_site import run_plain_site

            return run_plain_site(args, site, partial(connected, args))
        from screens.plain import run_plain

        return run_plain(args)
    from screens.app import run_app

    return run_app(args)


def cmd_recover(args: argparse.Namespace) -> int:
    site = site_of(args)
    if site is not None:  # several hosts: a site
        from hostwiz.site_cli import cmd_recover_site

        return cmd_recover_site(args, site)
    from wizard.connect import lab_ssh_config, open_transport
    from wizard.recovery import (
        console_instructions,
        explain_last_change,
        failure_kind,
        finish_interrupted,
        interrupted_transactions,
        judge_lockout,
        progress_words,
        read_host_change,
        roll_back_interrupted,
        step_titles,
        undo_time_line,
    )
    from wizard.transport.base import hostwiz_command
    from wizard.ways_in import PROBE_TIMEOUT, configured_port

    try:
        transport: Any = open_transport(args, connect_timeout=PROBE_TIMEOUT)
    except HostwizError as error:
        from wizard.errors import recovery_can_help
        from wizard.ways_in import try_other_ways

        if not recovery_can_help(error):  # a typo: no host's change, no other way in
            print(f"hostwiz cannot find {args.host}: {error.message}")
            print(f"  What to do: {error.hint}")
            return EXIT_ERROR
        print(f"hostwiz cannot get into {args.host}: {error.message}")
        for line in explain_last_change(args.host):
            print(line)
        # Other ports, users, keys (all ports at once): says what worked.
        transport, found = try_other_ways(args, error)
        if found and transport is None:
            return EXIT_ERROR
        if transport is None:
            lockout = judge_lockout(args.host, failure_kind(error), configured_port(args))
            if lockout.lines:
                print("\nWhat that means:")
                for line in lockout.lines:
                    print(f"  {line}")
            name = args.host.split("@", 1)[-1]
            practice = lab_ssh_config(name) is not None
            print()
            advice = console_instructions(
                name, practice, not_ours=lockout.not_ours, kind=lockout.kind
            )
            for line in advice:
                print(line)
            return EXIT_ERROR

    failed = False
    with transport:
        print(f"Connected to {transport.host_label}.")
        # What the host's own journal says: what really happened, and when.
        for line in explain_last_change(args.host, on_host=read_host_change(transport)):
            print(line)
        pending = interrupted_transactions(transport)
        if not pending:
            print("No interrupted change on the host: every change was confirmed or undone.")
            return EXIT_OK
        for item in pending:
            info = item.snapshot
            print(f"\nInterrupted: snapshot {info.id} ({step_titles(info.steps) or 'steps unknown'}"
                  f"): {progress_words(info.state, info.actions)}.")  # fmt: skip
            if info.damaged:
                print(f"It is damaged: {info.damaged}.")
            if item.timer_running:
                print(undo_time_line(item, hostwiz_command(transport, "recover")))
                continue
            choice = "rollback" if args.rollback else "finish" if args.finish else ""
            if not choice and sys.stdin.isatty():
                for line in INTERRUPTED_CHOICES:
                    print(line)
                answer = input("Roll it back (r), keep it (k), or leave it (Enter)? ").strip()
                choice = {"r": "rollback", "k": "finish"}.get(answer.lower()[:1], "")
            if choice == "rollback":
                print(roll_back_interrupted(transport, info.id))
            elif choice == "finish":
                if finish_interrupted(transport, info.id):
                    print(f"Kept: snapshot {info.id} is marked confirmed.")
                else:
                    failed = True
                    for line in _not_kept(args.host, info):
                        print(line)
            else:
                later = hostwiz_command(transport, "recover", "--rollback")
                print(f"Left as it is. Later: {later}")
    return EXIT_ERROR if failed else EXIT_OK


INTERRUPTED_CHOICES = (
    "  r: put back the state from before the change (the safe choice: a change that stopped "
    "half-way leaves the host in a state nobody chose).",
    "  k: keep the host as it is now and mark the change confirmed: only the steps that ran "
    "are kept, the others never run.",
    "  Enter: leave it for now (nothing is changed; run this again later).",
)
"""What each answer to an interrupted change does, said before the question."""


def _not_kept(host: str, info: Any) -> list[str]:
    """What to say when the host refused to mark an interrupted change confirmed."""
    from snapshots.layout import RESTORE_COMMAND

    rollback = (
        f"hostwiz recover --host {host} --rollback (or at the VM console: "
        f"{RESTORE_COMMAND} {info.id})"
    )
    if "revert" in info.state:
        return [
            f"NOT kept: snapshot {info.id} is not marked confirmed: the host had already "
            "started putting it back, and a change that is being undone cannot be confirmed.",
            f"  The host may be half put back. Finish putting it back: {rollback}; then apply "
            "the change again if you still want it.",
        ]
    return [
        f"NOT kept: snapshot {info.id} is not marked confirmed: the host could not record the "
        "confirmation in the snapshot's journal.",
        f"  Check that /var/lib/hostwiz is writable (df -h /var/lib), then run this again; or "
        f"put the host back: {rollback}.",
    ]


COMMANDS = {
    "facts": cmd_facts,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "snapshots": cmd_snapshots,
    "rollback": cmd_rollback,
    "recover": cmd_recover,
    "audit": cmd_audit,
    "check": cmd_check,
}


SITE_COMMANDS = ("plan", "apply", "rollback", "recover", "check", "audit")
"""The commands that take a site (``--site FILE`` or several ``--host``)."""


def _refuse_a_site_where_one_host_goes(args: argparse.Namespace) -> None:
    """Several ``--host`` (or ``--site``) go with the site commands and ``--plain`` only."""
    hosts = getattr(args, "hosts", None)  # `lab up --hosts N` is a count, not targets
    several = (isinstance(hosts, list) and len(hosts) > 1) or bool(getattr(args, "site", None))
    if not several or args.command in SITE_COMMANDS or (args.command is None and args.plain):
        return
    if args.command is None:
        raise HostwizError(
            "the full-screen wizard takes one --host (and no --site).",
            "Mark several hosts on its start screen (Space) or type a site file's path there; "
            "or use hostwiz --plain --site FILE (or --plain with several --host).",
        )
    raise HostwizError(
        f"{args.command} takes one --host.",
        f"Several hosts go with: {', '.join(SITE_COMMANDS)}, --plain (or --site FILE).",
    )


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the hostwiz program (not a test calling main): it ends after this
        # The interpreter's last garbage collection walks every object of every module
        # (~35 ms of a 0.6 s plan); frozen, they are left to the exit (bench/bench_plan.py).
        atexit.register(gc.freeze)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "confirm_timeout", None) is not None:
            from wizard.confirm_timeout import check_confirm_timeout

            check_confirm_timeout(args.confirm_timeout)  # before any connection is opened
        _refuse_a_site_where_one_host_goes(args)
        if args.command == "lab":
            from lab.cli import run_lab

            return run_lab(args)
        handler = COMMANDS.get(args.command or "", cmd_wizard)
        return handler(args)
    except HostwizError as error:
        print(error.explain(), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_ERROR
