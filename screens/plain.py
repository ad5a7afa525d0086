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
    fit,
    passphrase_asker,
    progress,
    say,
    terminal_width,
    wrap,
)
from screens.questions import (
    confirm_keys,
    field_named_in,
    is_asked,
    select_keys,
    text_keys,
)
from wizard.errors import (
    ConnectionFailed,
    HostwizError,
    InvalidAnswer,
    PlanConflict,
    recovery_can_help,
)

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
        say(run, f"\n{interrupted_words(run)}")
        return 1
    except EOFError:  # standard input ended (or is no terminal) before a question's answer
        say(run, fit(NO_TERMINAL))
        say(run, NO_CHANGES)
        return 1
    except HostwizError as error:
        say(run, fit(error.explain()))
        if isinstance(error, ConnectionFailed) and args.host and recovery_can_help(error):
            say(run, fit(recover_words(recover_command(args))))
        if not run.applying:
            say(run, NO_CHANGES)
        return 1


NO_TERMINAL = (
    "Plain mode asks its questions on a terminal, and none was there to answer (standard "
    "input ended). To apply the answers of a preset without any question, add --yes: "
    "hostwiz --plain --yes --host HOST --preset FILE"
)


def interrupted_words(run: PlainRun) -> str:
    """What Ctrl-C means at the point it came. During an apply the host's safety timer is
    armed; its deadline moves out while a slow step (a restart) runs, so no fixed number of
    seconds is promised: ``hostwiz recover`` reads the host's own deadline."""
    if run.applied:
        return "Interrupted after the apply had ended (its outcome is above)."
    if not run.applying:
        return NO_CHANGES
    return (
        "Interrupted while applying: the change is not confirmed, so the host puts everything "
        "back by itself when its safety timer runs out, "
        f"{run.confirm_timeout} s after the step it was running ends (a slow step such as a "
        f"restart first gets its own time limit). `{run.recover_command}` says when, and "
        "what happened."
    )


def recover_command(args: argparse.Namespace) -> str:
    """``hostwiz recover`` for the host plain mode could not get into, with the options
    given to reach it."""
    from wizard.transport.base import shell_quote

    words = ["hostwiz", "recover", "--host", str(args.host)]
    if getattr(args, "ssh_config", None):
        words += ["-F", str(args.ssh_config)]
    if getattr(args, "identity", None):
        words += ["-i", str(args.identity)]
    return " ".join(shell_quote(word) for word in words)


def recover_words(command: str) -> str:
    return (
        "If you changed this host with hostwiz and cannot get back in, run "
        f"`{command}`: it says what the last change did, tries the other ways in, and tells "
        "you what to type at the VM console."
    )


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
    run.recover_command = hostwiz_command(transport, "recover")
    result = apply(
        transport,
        selections,
        expected=changeset,
        progress=progress(run),
        confirm_timeout=run.confirm_timeout,
        session=session,
    )
    run.applied = True
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
    if result.message != run.said_done:  # the progress has said it already
        say(run, fit(result.message))
    if result.snapshot_id:
        say(run, fit(f"Changed: {', '.join(changeset.touched_paths())}"))
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
        while True:
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
            try:
                chosen, changeset = _plan(
                    run, transport, chosen, passphrase_asker(run), session=session
                )
                break
            except (InvalidAnswer, PlanConflict) as error:  # the answers: ask them again
                if not _ask_again(run, error):
                    _offer_save(run, answers, hostwiz_command(transport, "--plain"))
                    return 1
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


def _ask_again(run: PlainRun, error: HostwizError) -> bool:
    """Say why the answers cannot be planned, and whether to go through them again (each
    answer given so far is the new default, so only the wrong one needs typing)."""
    say(run, fit(error.explain()))
    say(run, "Nothing was changed, and your answers are kept.")
    return yes_no(
        "Go through the steps again, with your answers as the defaults?",
        True,
        run.prompt_options,
        say=lambda text: say(run, text),
    )


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
    if not yes_no(
        f"Go through {step.title}?", True, run.prompt_options, say=lambda text: say(run, text)
    ):
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


def yes_no(
    question: str,
    default: bool,
    prompt_options: Mapping[str, Any],
    *,
    say: Callable[[str], None] | None = None,
) -> bool:
    """A yes/no question answered with y or n *and Enter*: a key alone never answers it, so
    the Enter typed after it cannot answer the next question."""
    import questionary

    keys = confirm_keys(default)
    keys = instruction_for(f"? {question} {keys}{'Yes' if default else 'No'}", keys, say)
    options = {"instruction": keys, **prompt_options}
    answer = questionary.confirm(question, default=default, auto_enter=False, **options)
    return bool(answer.unsafe_ask())


def keys_apart(line: str, columns: int) -> bool:
    """Whether a prompt's keys go on a line of their own: the prompt line with them and its
    answer (as questionary draws it) is wider than the terminal, which would cut it in the
    middle of a word."""
    return len(line) > columns


def instruction_for(
    line: str, keys: str, say: Callable[[str], None] | None, blank: str = ""
) -> str:
    """The keys to show in the prompt (``line``: the prompt with them and its answer); when
    they would make it wider than the terminal, they are said on the line before it instead
    (``blank`` is then the prompt's instruction)."""
    if not keys_apart(line, terminal_width() + 2):
        return keys
    (say or print)(wrap(keys, "  "))
    return blank


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
    other answers (a message, or "" when fine). An answer that does not check is refused with
    the whole message and its hint printed (wrapped, not cut to the one line a prompt's
    toolbar has), and asked again with the text typed as the default."""
    import questionary

    from wizard.answers import check_value

    show = say or print
    if info.help:
        show(wrap(info.help, "  "))
    if info.kind == "bool":
        return yes_no(info.label, bool(current), prompt_options, say=show)
    options = dict(prompt_options)
    if info.kind == "choice":
        default = current if current in info.choices else info.choices[0]
        keys = select_keys(default)
        keys = instruction_for(f"? {info.label} {keys}", keys, show, blank=" ")
        options.setdefault("instruction", keys)
        choice = questionary.select(
            info.label, choices=list(info.choices), default=default, **options
        ).unsafe_ask()
        return check_value(info, choice)

    def problem_with(raw: str) -> str:
        try:
            value = check_value(info, raw)
        except ValueError as error:
            return str(error)
        return whole(value) if whole is not None else ""

    shown = ", ".join(current) if isinstance(current, list | tuple) else str(current)
    while True:  # until an answer checks, or Ctrl-C
        keys = text_keys(shown)
        keys = instruction_for(f"? {info.label}  {keys} {shown} ", keys, show)
        asked = {"instruction": keys, **options}
        raw = questionary.text(info.label, default=shown, **asked).unsafe_ask()
        problem = problem_with(raw)
        if not problem:
            return check_value(info, raw)
        show(wrap(f"Not accepted: {problem}", "  "))
        shown = raw


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
