"""What plain mode's two front ends share: ``hostwiz --plain`` on one host
(:mod:`screens.plain`) and on a site (:mod:`screens.plain_site`).

The run's state (to say the right thing when interrupted), its output, progress lines for an
apply, the passphrase prompt, and text wrapped to the terminal.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from wizard.local import AskSecret, SecretAnswer, SecretRequest
    from wizard.transaction import Event

NO_CHANGES = "No changes were made."


@dataclass
class PlainRun:
    """What has happened so far, to say the right thing when interrupted."""

    applying: bool = False
    recover_command: str = ""
    """``hostwiz recover --host NAME ...`` for the host being changed (once applying): it reads
    the host's own safety timer, so it can say when an interrupted change is undone."""
    applied: bool = False
    """The apply has ended (its outcome was said): Ctrl-C after it interrupts nothing."""
    said_done: str = ""
    """The last ``done`` event's message, so that the outcome is not said twice."""
    confirm_timeout: int = 60
    prompt_options: dict[str, Any] = field(default_factory=dict)
    """Extra options for every prompt (tests pass a pipe input and a dummy output)."""
    out: TextIO = field(default_factory=lambda: sys.stdout)


def say(run: PlainRun, text: str = "") -> None:
    """One line (or several) on the run's output, flushed at once."""
    print(text, file=run.out, flush=True)


MARKS = {
    "snapshot": "snap",
    "armed": "safe",
    "action": " .. ",
    "action-done": " ok ",
    "action-failed": "FAIL",
    "health": "chk ",
    "undo": "undo",
    "confirm": "conf",
    "done": "done",
    "warning": " !! ",
}


def progress(run: PlainRun) -> Callable[[Event], None]:
    """Print each event of an apply or rollback as one marked line (a failure's output
    indented below it)."""

    def show(event: Event) -> None:
        if event.kind == "done":
            run.said_done = event.message
        say(run, fit(f"[{MARKS.get(event.kind, ' -- ')}] {event.message}", "       "))
        if event.output and event.kind in {"action-failed", "warning", "undo"}:
            say(run, textwrap.indent(event.output.rstrip(), "       "))

    return show


def passphrase_asker(run: PlainRun) -> AskSecret:
    """Ask for a secret a step needs (the CA passphrase) with password prompts (twice when it
    is chosen now)."""

    def ask(request: SecretRequest) -> SecretAnswer:
        import questionary

        from wizard.local import SecretAnswer
        from wizard.secrets import Secret

        if request.problem is not None:
            say(run, f"{request.problem.message} {request.problem.hint}")
        else:
            say(run, f"\n{wrap(request.explanation)}")
            say(run, wrap(request.note))

        def long_enough(text: str) -> bool | str:
            if len(text) >= request.min_length:
                return True
            return f"at least {request.min_length} characters (a few unrelated words work well)"

        first = questionary.password(
            f"{request.prompt}:",
            validate=long_enough if request.confirm else None,
            **run.prompt_options,
        ).unsafe_ask()
        if not request.confirm:
            return SecretAnswer(Secret(first))
        again = questionary.password(
            "The same passphrase again:", **run.prompt_options
        ).unsafe_ask()
        return SecretAnswer(Secret(first), Secret(again))

    return ask


def terminal_width() -> int:
    """Where printed text is wrapped: the terminal's width, at most 100 columns."""
    return max(40, min(shutil.get_terminal_size((80, 24)).columns, 100) - 2)


QUOTED = re.compile(r"`[^`\n]*`")
KEEP_TOGETHER = "\0"
"""Stands for a space inside a `quoted command` while text is wrapped: a command to paste is
never split over two lines."""


def _fill(line: str, width: int, first: str, rest: str) -> str:
    """One line wrapped at spaces only: never inside a word with a hyphen (``ssh-audit``,
    ``--preset``), a long path or address, or a `quoted command`."""
    kept = QUOTED.sub(lambda found: found.group().replace(" ", KEEP_TOGETHER), line)
    filled = textwrap.fill(kept, width=width, initial_indent=first, subsequent_indent=rest,
                           break_long_words=False, break_on_hyphens=False)  # fmt: skip
    return filled.replace(KEEP_TOGETHER, " ")


def wrap(text: str, indent: str = "") -> str:
    """Help and explanations wrapped to the terminal (never cut at its edge)."""
    width = terminal_width()
    paragraphs = text.splitlines() or [""]
    return "\n".join(_fill(line, width, indent, indent) for line in paragraphs)


def fit(text: str, more: str = "  ") -> str:
    """Lines wider than the terminal wrapped, each continued under its own indentation plus
    ``more`` (an error's "What to do", a progress line's text); narrower ones kept as
    they are."""
    width = terminal_width()
    lines = []
    for line in text.splitlines() or [""]:
        if len(line) <= width:
            lines.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        lines.append(_fill(line.strip(), width, lead, lead + more))
    return "\n".join(lines)
