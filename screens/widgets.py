"""Reusable widgets: a form generated from FieldInfo data, a coloured diff view, a progress log.

Nothing here imports the SSH or Docker libraries: the widgets only get plain data
(:class:`~wizard.answers.FieldInfo`, :class:`~wizard.render.RenderedLine`,
:class:`~wizard.transaction.Event`), so the app starts fast and the widgets are testable alone.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from screens.questions import field_named_in, is_asked, normalized, on_off
from wizard.answers import FieldInfo, check_value
from wizard.errors import InvalidAnswer

if TYPE_CHECKING:
    from wizard.render import RenderedLine
    from wizard.transaction import Event

# Theme variables, so that the colours follow the dark and light themes.
LINE_STYLES: dict[str, str] = {
    "header": "bold $text",
    "add": "$text-success",
    "remove": "$text-error",
    "context": "$text-muted",
    "hunk": "$text-accent",
    "command": "$text-warning",
    "note": "italic $text-secondary",
    "warning": "bold $text-error",
}


def _raw_text(info: FieldInfo, value: Any) -> str:
    """How a current value is shown in a text input (lists as comma-separated text)."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def _control_value(info: FieldInfo, value: Any) -> Any:
    """What a question's control holds for an answer (a switch's bool, a choice, a text)."""
    if info.kind == "bool":
        return bool(value)
    if info.kind == "choice":
        return value if value in info.choices else info.choices[0]
    return _raw_text(info, value)


class FieldRow(Vertical):
    """One question: label, input, help text, what the host says about it (``context``, from
    the step's ``question_context``) and the validation message under it."""

    def __init__(self, info: FieldInfo, value: Any, context: str = "") -> None:
        super().__init__(id=f"row-{info.name}", classes="field-row")
        self.info = info
        self.initial = value
        self.context = context

    def compose(self) -> ComposeResult:
        info = self.info
        yield Label(info.label, classes="field-label")
        control_id = f"field-{info.name}"
        value = _control_value(info, self.initial)
        if info.kind == "bool":
            with Horizontal(classes="switch-row"):
                yield Switch(value=value, id=control_id)
                yield Label(on_off(value), classes="switch-state")
        elif info.kind == "choice":
            options = [(choice, choice) for choice in info.choices]
            yield Select(options, value=value, allow_blank=False, id=control_id, compact=True)
        else:
            restrict = r"[0-9]*" if info.kind in {"int", "port"} else None
            yield Input(
                value,
                placeholder=_placeholder(info),
                restrict=restrict,
                id=control_id,
                compact=True,
            )
        if info.help:
            yield Static(info.help, classes="field-help")
        context = Static(context_line(self.context), classes="field-context")
        context.display = bool(self.context)
        yield context
        yield Static("", classes="field-error")

    def show_context(self, text: str) -> None:
        """What the host says about this question, as of the current answers ("" hides it)."""
        if text == self.context:
            return
        self.context = text
        line = self.query_one(".field-context", Static)
        line.update(context_line(text))
        line.display = bool(text)

    def raw_value(self) -> Any:
        control = self.query_one(f"#field-{self.info.name}")
        if isinstance(control, Switch):
            return control.value
        if isinstance(control, Select):
            return control.value
        assert isinstance(control, Input)
        return control.value

    def check(self, across: str = "") -> str:
        """Validate the current input; show and return the message ("" when fine).
        ``across``: what a check across fields says about this one (when the value alone is
        fine)."""
        try:
            check_value(self.info, self.raw_value())
        except ValueError as error:
            message = str(error)
        else:
            message = across
        if self.info.kind == "bool":
            self.query_one(".switch-state", Label).update(on_off(bool(self.raw_value())))
        error_line = self.query_one(".field-error", Static)
        error_line.update(message)
        error_line.display = bool(message)
        self.set_class(bool(message), "invalid")
        return message


def context_line(text: str) -> Content:
    """What the host says about a question, marked so it is not taken for the help text."""
    return Content.assemble(("▸ ", "bold"), text)


def _placeholder(info: FieldInfo) -> str:
    return {
        "size": "for example 10m",
        "ip": "for example 192.168.1.10",
        "cidr": "for example 192.168.1.0/24",
        "port": "1-65535",
        "list": "comma-separated",
        "user": "a Linux user name",
    }.get(info.kind, "")


class QuestionForm(Vertical):
    """A form built from a step's :func:`~wizard.answers.fields_of` data.

    Every field is checked with :func:`~wizard.answers.check_value` as it is typed and, given
    ``build`` (values -> the step's answers, raising :class:`InvalidAnswer`), against the other
    fields too: a typo in one item of a list, one interface in two zones. Such a message is
    shown under the field it names (else in :attr:`problem`). Questions that do not matter
    with the current answers (``show_if``, or a step's ``enabled`` switch off) are hidden and
    keep their answer. ``context`` maps field names to what the host says about them (the
    host's interfaces next to a zone question), shown under the help; ``context_for``
    (answers -> such a mapping) keeps it up to date as the answers change. The form does not
    scroll by itself, so a screen can put the step's explanation above it in one scroll.
    """

    DEFAULT_CLASSES = "question-form"

    class Changed(Message):
        """Some value changed (``valid`` says whether the whole form is usable now)."""

        def __init__(self, form: QuestionForm, valid: bool) -> None:
            super().__init__()
            self.form = form
            self.valid = valid

    def __init__(
        self,
        fields: Sequence[FieldInfo],
        values: Mapping[str, Any] | None = None,
        *,
        context: Mapping[str, str] | None = None,
        build: Callable[[dict[str, Any]], Any] | None = None,
        context_for: Callable[[Any], Mapping[str, str]] | None = None,
        unedited: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fields = tuple(fields)
        self.initial = dict(values or {})
        self.unedited = None if unedited is None else dict(unedited)
        """The answers that count as not edited, when not the ones shown (the session's,
        when the form shows answers the admin sent to a preview and then went back from)."""
        self.context = dict(context or {})
        self.build = build
        self.context_for = context_for
        self.across: dict[str, str] = {}
        """What the check across fields says, by the field it names."""
        self.problem = ""
        """What the check across fields says when it names no field shown."""
        self._start: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        for info in self.fields:
            value = self.initial.get(info.name, info.default)
            yield FieldRow(info, value, self.context.get(info.name, ""))

    def on_mount(self) -> None:
        self._update_visibility()
        self.check_across()
        for row in self.rows():
            row.check(self.across.get(row.info.name, ""))
        if self.unedited is None:
            self._start = self.normalized_values()
        else:
            unedited = self.unedited
            self._start = {
                info.name: normalized(
                    info, _control_value(info, unedited.get(info.name, info.default))
                )
                for info in self.fields
            }

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))

    def row(self, name: str) -> FieldRow:
        return self.query_one(f"#row-{name}", FieldRow)

    def raw_values(self) -> dict[str, Any]:
        return {row.info.name: row.raw_value() for row in self.rows()}

    def normalized_values(self) -> dict[str, Any]:
        raw = self.raw_values()
        return {info.name: normalized(info, raw[info.name]) for info in self.fields}

    @property
    def edited(self) -> bool:
        """Whether any answer differs from what the form opened with, or from ``unedited``
        when given (``a,b`` and ``a, b`` are the same answer)."""
        return bool(self._start) and self.normalized_values() != self._start

    def changed_labels(self) -> list[str]:
        """The questions whose answers differ from what the form opened with, by label."""
        now = self.normalized_values()
        return [info.label for info in self.fields if now[info.name] != self._start.get(info.name)]

    def shown(self, info: FieldInfo, raw: Mapping[str, Any] | None = None) -> bool:
        return is_asked(info, self.raw_values() if raw is None else raw, self.fields)

    def values(self) -> dict[str, Any]:
        """Checked values of the visible fields (hidden ones keep their current answer)."""
        raw = self.raw_values()
        return {
            info.name: check_value(info, raw[info.name])
            for info in self.fields
            if self.shown(info, raw)
        }

    def check_across(self) -> None:
        """Build the whole answers from the form (when each field is fine alone): what the
        answers' own checks say goes under the field they name; the host's lines follow."""
        self.across, self.problem = {}, ""
        if self.build is None:
            return
        try:
            values = self.values()
        except ValueError:
            return  # shown under that field already
        try:
            answers = self.build(values)
        except InvalidAnswer as error:
            raw = self.raw_values()
            shown = [info for info in self.fields if self.shown(info, raw)]
            name = field_named_in(shown, error.message, error.hint)
            if name is None:
                self.problem = f"{error.message} {error.hint}".strip()
            else:
                message = re.sub(rf"^(\w+\.)?{re.escape(name)}: ", "", error.message)
                self.across[name] = f"{message} {error.hint}".strip()
            return
        if self.context_for is not None:
            context = self.context_for(answers)
            for row in self.rows():
                row.show_context(context.get(row.info.name, ""))

    def errors(self) -> dict[str, str]:
        """Validation messages of the visible fields, by field name (as of the last
        :meth:`check_across`)."""
        found = {}
        raw = self.raw_values()
        for row in self.rows():
            if self.shown(row.info, raw):
                message = row.check(self.across.get(row.info.name, ""))
                if message:
                    found[row.info.name] = message
        return found

    def _update_visibility(self) -> None:
        raw = self.raw_values()
        for row in self.rows():
            row.display = self.shown(row.info, raw)

    def _changed(self, control_id: str | None) -> None:
        self.check_across()
        self._update_visibility()
        errors = self.errors()
        self.post_message(self.Changed(self, not errors and not self.problem))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed(event.input.id)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self._changed(event.switch.id)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._changed(event.select.id)


DIFF_KINDS = frozenset({"add", "remove", "context"})
CONTINUED = "↳ "
"""After a diff line's mark on the rows a long line wraps onto: "+↳ rest of the line"."""


def wrap_line(line: RenderedLine, width: int) -> list[str]:
    """``line`` as the rows it takes at ``width`` columns. A diff line that wraps keeps its
    mark (+, - or the context's space) on every row, with a continuation arrow, so the rest
    reads as part of the same change; other lines wrap under their own indent, two further in.
    """
    text = line.text.expandtabs()
    if width < 12 or cell_len(text) <= width:
        return [text]
    diff = line.kind in DIFF_KINDS
    if diff:
        mark, body = text[:1], text[1:]
        first, later = mark, mark + CONTINUED
    else:
        body = text
        first, later = "", " " * (len(text) - len(text.lstrip(" ")) + 2)
    # A file's line keeps every space; a sentence drops the one it breaks at (it would push
    # the next row one further in than its indent).
    return textwrap.wrap(body, width, initial_indent=first, subsequent_indent=later,
                         drop_whitespace=not diff, break_on_hyphens=False) or [text]  # fmt: skip


def styled_lines(lines: Iterable[RenderedLine], width: int = 0) -> Content:
    """Rendered plan lines as one piece of themed text (wrapped at ``width`` columns by
    :func:`wrap_line` when given)."""
    parts: list[Content] = []
    for line in lines:
        style = LINE_STYLES.get(line.kind, "")
        rows = wrap_line(line, width) if width else [line.text]
        parts.extend(Content.styled(row, style) for row in rows)
    return Content("\n").join(parts)


class DiffText(Widget):
    """The lines of a :class:`DiffView`, wrapped by :func:`wrap_line` at the width it gets."""

    DEFAULT_CSS = "DiffText { height: auto; }"

    def __init__(self, lines: Sequence[RenderedLine], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines = list(lines)

    def show(self, lines: Sequence[RenderedLine]) -> None:
        self.lines = list(lines)
        self.refresh(layout=True)

    def rows(self, width: int) -> int:
        return sum(len(wrap_line(line, width)) for line in self.lines)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.rows(width)

    def render(self) -> Content:
        return styled_lines(self.lines, self.size.width)


class DiffView(VerticalScroll):
    """A plan's diff and commands, coloured by line kind; warnings are also listed on top."""

    DEFAULT_CLASSES = "diff-view"

    def __init__(self, lines: Sequence[RenderedLine], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines = list(lines)
        self.can_focus = True

    def compose(self) -> ComposeResult:
        yield DiffText(self.lines, classes="diff-text")

    def show(self, lines: Sequence[RenderedLine]) -> None:
        self.lines = list(lines)
        self.query_one(".diff-text", DiffText).show(self.lines)


EVENT_MARKS: dict[str, tuple[str, str]] = {
    "snapshot": ("snap", "$text-accent"),
    "armed": ("safe", "$text-accent"),
    "action": (" .. ", "$text"),
    "action-done": (" ok ", "$text-success"),
    "action-failed": ("FAIL", "bold $text-error"),
    "health": ("chk ", "$text-accent"),
    "undo": ("undo", "$text-warning"),
    "confirm": ("conf", "$text-accent"),
    "done": ("done", "bold $text-success"),
    "warning": (" !! ", "bold $text-warning"),
}


def event_line(event: Event) -> Content:
    mark, style = EVENT_MARKS.get(event.kind, (" -- ", ""))
    return Content.assemble((f"[{mark}] ", style), event.message)


class ProgressLog(Vertical):
    """One line per transaction event, and the output of the current (or failed) command."""

    DEFAULT_CLASSES = "progress-log"

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="events")
        yield Static("", id="command-output")

    def on_mount(self) -> None:
        self.query_one("#command-output", Static).display = False

    def add_event(self, event: Event) -> None:
        events = self.query_one("#events", VerticalScroll)
        events.mount(Static(event_line(event), classes=f"event event-{event.kind}"))
        events.scroll_end(animate=False)
        output = self.query_one("#command-output", Static)
        if event.output:
            output.update(Content(event.output.rstrip()[-2000:]))
            output.display = True
        elif event.kind == "action":
            output.update("")
            output.display = False

    def show_last(self) -> None:
        """Bring the newest line back into view once the log got shorter (the apply screen's
        result panel takes its room at the end)."""
        events = self.query_one("#events", VerticalScroll)
        self.call_after_refresh(events.scroll_end, animate=False)

    @property
    def lines(self) -> list[str]:
        """The event lines as plain text (for tests and the plain front end)."""
        return [str(line.content) for line in self.query(".event").results(Static)]
