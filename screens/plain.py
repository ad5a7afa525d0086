"""``hostwiz --plain``: the same steps as the full-screen wizard, asked line by line.

Questions are generated from the same :func:`~wizard.answers.fields_of` data as the Textual
form (confirm for bool, select for choice, text checked with
:func:`~wizard.answers.check_value` and against the other answers otherwise), and only those
that matter with the answers so far (``show_if``, a step's ``enabled`` switch). Each prints
its help wrapped to the terminal and says its default and keys; a yes/no answer takes Enter
too, so that Enter never falls through to the next question. With ``--yes`` the preset is
applied without any question, for scripts. Ctrl-C at any point before the change starts ends with
"No changes were made."
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from screens.plain_common import (
    NO_CHANGES,
    PlainRun,
    passphrase_asker,
    progress,
    say,
    wrap,
)
from screens.questions import (
    confirm_keys,
    field_named_in,
    is_asked,
    select_keys,
    text_keys,
)
from wizard.errors import HostwizError

if TYPE_CHECKING:
    from wizard.answers import FieldInfo
    from wizard.local import AskSecret
    from wizard.plan import Changeset
    from wizard.session import Selection
    from wizard.steps.base import Step
    from wizard.transaction import ApplyResult
    from wizard.transport.base import Transport


def run_plain(args: argparse.Namespace, **prompt_options: Any) -> int:
    """Entry point used by ``hostwiz --plain`` (see :func:`hostwiz.cli.cmd_wizard`)."""
    from wizard.confirm_timeout import check_confirm_timeout

    run = PlainRun(prompt_options=prompt_options)
    try:
        run.confirm_timeout = check_confirm_timeout(args.confirm_timeout)
        if args.yes:
            return _unattended(args, run)
        return _interactive(args, run)
    except KeyboardInterrupt:
        if run.applying:
            say(
                run,
                "\nInterrupted while applying. Unless the change was confirmed, the host "
                f"puts everything back by itself within {run.confirm_timeout} seconds; "
                f"`{run.snapshots_command}` shows what happened.",
            )
        else:
            say(run, f"\n{NO_CHANGES}")
        return 1
    except HostwizError as error:
        say(run, error.explain())
        if not run.applying:
            say(run, NO_CHANGES)
        return 1


# ---- shared -----------------------------------------------------------------------------


def _preset_answers(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from presets import apply_overrides, load_preset

    preset = apply_overrides(load_preset(args.preset or "hardened"), args.overrides or [])
    return preset.source, dict(preset.answers)


def _show_plan(run: PlainRun, changeset: Changeset, selections: Sequence[Selection] = ()) -> None:
    from wizard.checks import conflict_lines, conflicts_for
    from wizard.render import as_ansi, as_text, render_changeset

    for line in conflict_lines(conflicts_for(selections)):  # the combination checker
        run.out.write(line + "\n")
    lines = render_changeset(changeset)
    run.out.write(as_ansi(lines) if run.out.isatty() else as_text(lines))
    run.out.flush()


def _plan(
    run: PlainRun,
    transport: Transport,
    selections: list[Selection],
    ask: AskSecret,
    *,
    tries: int = 3,
    session: Sequence[Selection] = (),
) -> tuple[list[Selection], Changeset]:
    """Read the host, do the steps' local work (the CA passphrase when a step needs it),
    plan (with the needs of the ``session``'s steps, as the statuses shown were:
    :func:`wizard.session.session_needs`)."""
    from wizard.local import local_context
    from wizard.session import plan_changeset, prepare_local, read_facts, session_needs

    facts = read_facts(transport, selections, session=session)
    prepared = prepare_local(selections, facts, local_context(transport, ask, tries=tries))
    for folder in prepared.created:
        say(run, f"Created a new CA in {folder} (its key is encrypted with your passphrase). "
                 "Back the folder up.")  # fmt: skip
    needs = session_needs(selections, session, facts)
    changeset = plan_changeset(transport.host_label, prepared.selections, facts, needs)
    return prepared.selections, changeset


def _apply(
    run: PlainRun,
    transport: Transport,
    selections: list[Selection],
    changeset: Changeset,
    session: Sequence[Selection] = (),
) -> int:
    from wizard.session import apply
    from wizard.transport.base import hostwiz_command

    run.applying = True
    run.snapshots_command = hostwiz_command(transport, "snapshots")
    result = apply(
        transport,
        selections,
        expected=changeset,
        progress=progress(run),
        confirm_timeout=run.confirm_timeout,
        session=session,
    )
    _report(run, result, transport, changeset)
    if not result.confirmed:
        return 1
    return _local_work_after(run, selections)


def _local_work_after(run: PlainRun, selections: list[Selection]) -> int:
    """The steps' local work after an apply, such as a client bundle and docker context (after
    a confirmed apply, or when the host needed nothing): never before, so nothing local points
    at an undone change."""
    from wizard.session import after_confirmed

    report = after_confirmed(selections)
    for line in report.lines:
        say(run, line)
    return 0 if report.ok else 1


def _report(run: PlainRun, result: ApplyResult, transport: Transport, changeset: Changeset) -> None:
    from wizard.transport.base import hostwiz_command

    say(run)
    say(run, result.message)
    if result.snapshot_id:
        say(run, f"Changed: {', '.join(changeset.touched_paths())}")
        say(run, f"Snapshot: {result.snapshot_id}")
        say(run, f"To undo: {hostwiz_command(transport, 'rollback', result.snapshot_id)}")


# ---- --yes --------------------------------------------------------------------------------


def _unattended(args: argparse.Namespace, run: PlainRun) -> int:
    """Apply the preset as it is: no question at all, for scripts."""
    from wizard.connect import open_transport
    from wizard.local import answer_with, nobody_to_ask, scripted_secret
    from wizard.session import selections_for

    source, answers = _preset_answers(args)
    selections = selections_for(answers)  # in hostwiz's step order, not the preset's
    given = scripted_secret(getattr(args, "passphrase_file", None))
    ask = answer_with(given) if given is not None else nobody_to_ask
    say(run, f"Answers from {source}.")
    with open_transport(args) as transport:
        selections, changeset = _plan(run, transport, selections, ask, tries=1)
        _show_plan(run, changeset, selections)
        if changeset.empty:
            say(run, f"Nothing to change: {transport.host_label} already matches {source}.")
            return _local_work_after(run, selections)
        return _apply(run, transport, selections, changeset)


# ---- interactive --------------------------------------------------------------------------


def _interactive(args: argparse.Namespace, run: PlainRun) -> int:
    import questionary

    from wizard.connect import open_transport
    from wizard.session import Selection, read_facts, selections_for, step_statuses
    from wizard.steps import STEPS
    from wizard.steps.base import question_context
    from wizard.transport.base import hostwiz_command

    source, preset = _preset_answers(args)
    answers = {name: preset.get(name) or step.answers_type() for name, step in STEPS.items()}
    if not args.host:
        host = questionary.text(
            "Host (a name from ~/.ssh/config, a practice host, or user@host[:port]):",
            validate=lambda text: bool(text.strip()) or "type a host",
            **run.prompt_options,
        ).unsafe_ask()
        args = argparse.Namespace(**{**vars(args), "host": host.strip()})
    say(run, f"Connecting to {args.host}…")
    with open_transport(args) as transport:
        everything = selections_for(answers)
        facts = read_facts(transport, everything)
        say(run, f"\n{transport.host_label}, answers from {source}:")
        for step, status in step_statuses(everything, facts, transport):
            say(run, f"  {step.title}: {status.status.value} ({status.summary})")
        chosen: list[Selection] = []
        for name, step in STEPS.items():
            context = partial(question_context, step, facts=facts)
            new = _ask_step(run, step, answers[name], context)
            if new is not None:
                answers[name] = new
                chosen.append(Selection(step, new))
        if not chosen:
            say(run, NO_CHANGES)
            return 0
        session = selections_for(answers)  # every step, as the statuses shown above
        chosen, changeset = _plan(run, transport, chosen, passphrase_asker(run), session=session)
        say(run)
        _show_plan(run, changeset, chosen)
        if changeset.empty:
            say(run, f"Nothing to change: {transport.host_label} already matches these answers.")
            code = _local_work_after(run, chosen)
        elif yes_no(f"Apply these changes to {transport.host_label}?", False, run.prompt_options):
            code = _apply(run, transport, chosen, changeset, session)
        else:
            say(run, NO_CHANGES)
            code = 0
        again = hostwiz_command(transport, "--plain")
    _offer_save(run, answers, again)
    return code


def _ask_step(
    run: PlainRun,
    step: Step[Any],
    current: Any,
    context: Callable[[Any], Mapping[str, str]] | Mapping[str, str] | None = None,
) -> Any:
    """The step's questions, or None when the admin skips the step.

    Only the questions that matter with the answers so far are asked (``show_if``, and none
    but the switch while a step's ``enabled`` switch is off). What the host says about a
    question (``context``: the host's interfaces next to a zone question) is printed just
    before it; given as a function of the answers, it follows the answers typed so far.
    Each answer is also checked against the others (a typo in a list item, one interface in
    two zones) before the next question."""
    from wizard.answers import as_mapping, build, fields_of
    from wizard.errors import InvalidAnswer

    say(run, f"\n== {step.title} ==")
    say(run, wrap(step.explanation))
    if not yes_no(f"Go through {step.title}?", True, run.prompt_options):
        return None
    fields = fields_of(step.answers_type)
    values = as_mapping(current)

    def answers_with(name: str, value: Any) -> Any:
        return build(step.answers_type, {**values, name: value}, base=current, where=step.title)

    def with_the_others(info: FieldInfo) -> Callable[[Any], str]:
        def check(value: Any) -> str:
            try:
                answers_with(info.name, value)
            except InvalidAnswer as error:
                if field_named_in(fields, error.message, error.hint) in {info.name, None}:
                    return f"{error.message} {error.hint}".strip()
            return ""

        return check

    for info in fields:
        if not is_asked(info, values, fields):
            continue
        so_far = partial(answers_with, info.name, values[info.name])
        line = _context_line(context, info.name, so_far)
        if line:
            say(run, context_text(line))
        values[info.name] = ask_field(
            info,
            values[info.name],
            run.prompt_options,
            say=lambda text: say(run, text),
            whole=with_the_others(info),
        )
    return build(step.answers_type, values, base=current, where=step.title)


def _context_line(
    context: Callable[[Any], Mapping[str, str]] | Mapping[str, str] | None,
    name: str,
    answers: Callable[[], Any],
) -> str:
    """The host's line for one question, as of the answers so far."""
    from wizard.errors import InvalidAnswer

    if context is None:
        return ""
    if not callable(context):
        return context.get(name, "")
    try:
        return context(answers()).get(name, "")
    except InvalidAnswer:
        return ""


def context_text(line: str) -> str:
    """A context line as printed before its question: indented and wrapped, without a
    symbol a screen reader would read out (the line says itself that it is about the host)."""
    return wrap(line, "  ")


def yes_no(question: str, default: bool, prompt_options: Mapping[str, Any]) -> bool:
    """A yes/no question answered with y or n *and Enter*: a key alone never answers it, so
    the Enter typed after it cannot answer the next question."""
    import questionary

    options = {"instruction": confirm_keys(default), **prompt_options}
    answer = questionary.confirm(question, default=default, auto_enter=False, **options)
    return bool(answer.unsafe_ask())


def ask_field(
    info: FieldInfo,
    current: Any,
    prompt_options: Mapping[str, Any],
    *,
    say: Callable[[str], None] | None = None,
    whole: Callable[[Any], str] | None = None,
) -> Any:
    """One question generated from a FieldInfo; returns the checked value.

    The help is printed first (``say``, else standard output), wrapped to the terminal; the
    prompt says its default and which keys answer it. ``whole`` checks a value against the
    other answers (a message, or "" when fine)."""
    import questionary

    from wizard.answers import check_value

    show = say or print
    if info.help:
        show(wrap(info.help, "  "))
    if info.kind == "bool":
        return yes_no(info.label, bool(current), prompt_options)
    options = dict(prompt_options)
    if info.kind == "choice":
        default = current if current in info.choices else info.choices[0]
        options.setdefault("instruction", select_keys(default))
        choice = questionary.select(
            info.label, choices=list(info.choices), default=default, **options
        ).unsafe_ask()
        return check_value(info, choice)

    def validate(raw: str) -> bool | str:
        try:
            value = check_value(info, raw)
        except ValueError as error:
            return str(error)
        return (whole(value) if whole is not None else "") or True

    shown = ", ".join(current) if isinstance(current, list | tuple) else str(current)
    options.setdefault("instruction", text_keys(shown))
    raw = questionary.text(info.label, default=shown, validate=validate, **options).unsafe_ask()
    return check_value(info, raw)


def _offer_save(run: PlainRun, answers: dict[str, Any], again: str = "hostwiz --plain") -> None:
    """Offer to save the answers; ``again`` is the command that runs plain mode on the same
    host (the saved file's ``--preset`` is added to it)."""
    import questionary

    from presets import save_preset

    if not yes_no("Save these answers as a preset file?", False, run.prompt_options):
        return
    path = questionary.text(
        "Preset file:",
        default="hostwiz.toml",
        validate=lambda text: text.strip().endswith(".toml") or "the name must end in .toml",
        **run.prompt_options,
    ).unsafe_ask()
    try:
        save_preset(Path(path.strip()), answers)
    except OSError as error:
        say(run, f"Could not write {path}: {error.strerror}.")
        return
    from wizard.transport.base import shell_quote

    say(run, f"Saved. Use it with: {again} --preset {shell_quote(path.strip())}")
