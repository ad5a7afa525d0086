"""Turn a plan into what the admin reviews: a unified diff per file plus the exact commands.

Secrets never reach the output: secret files show only that they change, and every command's
text goes through :func:`wizard.secrets.mask` with the secrets the action carries.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from wizard.actions import Action, FileState, RemoveFile, RunCommand, WriteFile
from wizard.plan import Changeset, Plan
from wizard.secrets import MASK, mask

LineKind = Literal["header", "add", "remove", "context", "hunk", "command", "note", "warning"]


@dataclass(frozen=True)
class RenderedLine:
    kind: LineKind
    text: str


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data


def _meta(state: FileState) -> str:
    return f"mode {state.mode:04o}, {state.owner}:{state.group}"


def diff_lines(before: FileState, action: WriteFile | RemoveFile) -> list[RenderedLine]:
    """The unified diff of one file action against the file's before-state."""
    path = before.path
    old = before.content if before.exists else b""
    new = action.content if isinstance(action, WriteFile) else b""
    lines: list[RenderedLine] = []
    if isinstance(action, WriteFile):
        label = "new file" if not before.exists else "changed"
        after = FileState(path, True, new, action.mode, action.owner, action.group)
        meta = _meta(after)
        if before.exists and _meta(before) != meta:
            meta = f"{_meta(before)} -> {meta}"
        # A rollback's write says what it is for: the file as it was before the change.
        header = f"{action.describe()} ({meta})" if action.restores else f"{label}: {path} ({meta})"
        lines.append(RenderedLine("header", header))
        if action.secret:
            lines.append(RenderedLine("note", f"  (secret content, not shown: {MASK})"))
            return lines
    else:
        lines.append(
            RenderedLine("header", action.describe() if action.restores else f"remove: {path}")
        )
    if not (_is_text(old) and _is_text(new)):
        lines.append(RenderedLine("note", f"  (binary content, {len(old)} -> {len(new)} bytes)"))
        return lines
    diff = difflib.unified_diff(
        old.decode().splitlines(keepends=False),
        new.decode().splitlines(keepends=False),
        fromfile=f"a{path}" if before.exists else "/dev/null",
        tofile=f"b{path}" if isinstance(action, WriteFile) else "/dev/null",
        lineterm="",
    )
    for text in diff:
        if text.startswith(("---", "+++")):
            lines.append(RenderedLine("header", text))
        elif text.startswith("@@"):
            lines.append(RenderedLine("hunk", text))
        elif text.startswith("+"):
            lines.append(RenderedLine("add", text))
        elif text.startswith("-"):
            lines.append(RenderedLine("remove", text))
        else:
            lines.append(RenderedLine("context", text))
    return lines


def command_lines(action: RunCommand) -> list[RenderedLine]:
    flag = "  [IRREVERSIBLE]" if action.irreversible else ""
    lines = [RenderedLine("header", f"run: {mask(action.why or 'command', action.secrets)}{flag}")]
    for text in mask(action.script, action.secrets).splitlines():
        lines.append(RenderedLine("command", f"  $ {text}"))
    if action.undo and action.undo_why:
        lines.append(RenderedLine("note", f"  undo: {action.undo_why}"))
    elif action.undo:
        undo = mask(action.undo, action.secrets).splitlines()
        lines.append(RenderedLine("note", f"  undo: {undo[0]}"))
        lines.extend(RenderedLine("note", f"        {text}") for text in undo[1:])
    elif not action.irreversible and action.touches:
        lines.append(RenderedLine("note", f"  undo: restore {', '.join(action.touches)}"))
    return lines


def action_lines(plan: Plan, action: Action) -> list[RenderedLine]:
    if isinstance(action, RunCommand):
        return command_lines(action)
    return diff_lines(plan.before_of(action.path), action)


def render_plan(plan: Plan) -> list[RenderedLine]:
    lines: list[RenderedLine] = []
    for warning in plan.warnings:
        lines.append(RenderedLine("warning", f"! {warning}"))
    for note in plan.notes:
        lines.append(RenderedLine("note", note))
    if plan.empty:
        done = "off, nothing to do." if plan.off else "nothing to do, the host is already set."
        lines.append(RenderedLine("note", f"{plan.step}: {done}"))
        return lines
    for number, action in enumerate(plan.actions, 1):
        action_view = action_lines(plan, action)
        first = action_view[0]
        action_view[0] = RenderedLine(first.kind, f"[{plan.step} {number}] {first.text}")
        lines.extend(action_view)
    return lines


def render_changeset(changeset: Changeset) -> list[RenderedLine]:
    lines: list[RenderedLine] = []
    for plan in changeset.plans:
        lines.extend(render_plan(plan))
    return lines


def as_text(lines: list[RenderedLine]) -> str:
    return "\n".join(line.text for line in lines) + "\n"


ANSI = {
    "header": "\x1b[1m",
    "add": "\x1b[32m",
    "remove": "\x1b[31m",
    "hunk": "\x1b[36m",
    "command": "\x1b[33m",
    "warning": "\x1b[1;31m",
}


def as_ansi(lines: list[RenderedLine]) -> str:
    out = []
    for line in lines:
        colour = ANSI.get(line.kind)
        out.append(f"{colour}{line.text}\x1b[0m" if colour else line.text)
    return "\n".join(out) + "\n"
