"""One step's questions, and the modal that asks what to do with unsaved answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Static

from screens.errors import error_content
from screens.widgets import FieldRow, QuestionForm
from wizard.errors import HostwizError

if TYPE_CHECKING:
    from wizard.steps.base import Step


@dataclass(frozen=True)
class KeptAnswers:
    """From a step: keep these answers (Escape, then Save) without previewing them now."""

    answers: Any


class StepScreen(Screen[Any]):
    """A step's explanation and its questions; returns the new answers (to preview),
    :class:`KeptAnswers` (kept, back to the steps) or None (back, nothing kept).

    ``context`` is what the host says about some questions (field name -> line, from
    :func:`wizard.steps.base.question_context` over the facts the step list read);
    ``context_for`` (answers -> such lines) keeps it up to date while the answers change.
    ``focus`` names the question to start on (the one an error was about). Escape with edited
    answers asks whether to keep editing, discard them or save them (:class:`UnsavedScreen`).
    ``saved`` is what the session holds when it differs from ``answers`` (the questions came
    back after a preview the admin went back from, or a plan the host refused): the answers
    shown then count as edited, so Escape asks too instead of keeping them silently.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "preview", "Preview changes"),
    ]

    def __init__(
        self,
        step: Step[Any],
        answers: Any,
        context: Mapping[str, str] | None = None,
        *,
        context_for: Callable[[Any], Mapping[str, str]] | None = None,
        focus: str | None = None,
        reason: str = "",
        saved: Any = None,
    ) -> None:
        super().__init__()
        self.sub_title = step.title
        self.reason = reason
        """Why this step was opened, when not from the step list (an audit finding)."""
        self.step = step
        self.answers = answers
        self.context = dict(context or {})
        self.context_for = context_for
        self.focus_field = focus
        self.saved = saved

    def compose(self) -> ComposeResult:
        from wizard.answers import as_mapping, fields_of

        yield Header()
        with VerticalScroll(id="step-body"):
            yield Static(self.step.title, classes="title")
            if self.reason:
                yield Static(self.reason, id="reason", classes="note")
            yield Static(self.step.explanation, classes="explanation")
            yield QuestionForm(
                fields_of(self.step.answers_type),
                as_mapping(self.answers),
                context=self.context,
                build=self._build,
                context_for=self.context_for,
                unedited=None if self.saved is None else as_mapping(self.saved),
                id="form",
            )
        yield Static("", id="form-status")
        with Horizontal(classes="buttons"):
            yield Button("Back", id="back", compact=True)
            yield Button("Preview changes", id="preview", variant="primary", compact=True)
        yield Footer()

    def _build(self, values: dict[str, Any]) -> Any:
        from wizard.answers import build

        return build(self.step.answers_type, values, base=self.answers)

    def on_mount(self) -> None:
        form = self.query_one(QuestionForm)
        self.show_validity(form)
        wanted = self.focus_field
        if wanted and self.query(f"#field-{wanted}") and form.row(wanted).display:
            self.focus_on(wanted)
            return
        first = self.query(".field-row Input, .field-row Switch, .field-row Select").first()
        first.focus()

    def focus_on(self, name: str) -> None:
        """Focus a question and bring it into view (without an animation)."""
        control = self.query_one(f"#field-{name}")
        control.focus(scroll_visible=False)
        self.call_after_refresh(
            lambda: self.query_one(QuestionForm).row(name).scroll_visible(animate=False)
        )

    def show_validity(self, form: QuestionForm) -> None:
        errors = form.errors()
        valid = not errors and not form.problem
        status = self.query_one("#form-status", Static)
        if form.problem:
            status.update(Content.styled(form.problem, "$text-error"))
        elif errors:
            labels = [row.info.label for row in form.rows() if row.info.name in errors]
            more = f" (and {len(labels) - 1} more)" if len(labels) > 1 else ""
            status.update(f"To fix first: {labels[0]}{more}; the red line under it says why.")
        else:
            status.update("")
        self.query_one("#preview", Button).disabled = not valid

    @on(QuestionForm.Changed)
    def form_changed(self, event: QuestionForm.Changed) -> None:
        self.show_validity(event.form)
        self.call_after_refresh(self.show_focused_error)

    def show_focused_error(self) -> None:
        """Scroll the red line under the question being typed in into view: it sits below the
        help and the host's lines, often past the bottom of a small terminal."""
        focused = self.app.focused
        row = (
            next((node for node in focused.ancestors if isinstance(node, FieldRow)), None)
            if (focused is not None)
            else None
        )
        if row is not None and row.has_class("invalid"):
            row.query_one(".field-error").scroll_visible(animate=False)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        form = self.query_one(QuestionForm)
        if not form.edited:
            self.dismiss(None)
            return
        valid = not form.errors() and not form.problem
        screen = UnsavedScreen(self.step.title, can_save=valid, changed=form.changed_labels())
        self.app.push_screen(screen, self._unsaved)

    def _unsaved(self, choice: str | None) -> None:
        if choice == "discard":
            self.dismiss(None)
        elif choice == "save":
            answers = self.checked_answers()
            if answers is not None:
                self.dismiss(KeptAnswers(answers))

    def checked_answers(self) -> Any | None:
        """The form's answers, or None after focusing the first question in error."""
        form = self.query_one(QuestionForm)
        form.check_across()
        errors = form.errors()
        if errors:
            name = next(iter(errors))
            self.focus_on(name)
            self.notify(f"{name.replace('_', ' ')}: {errors[name]}", severity="error")
            return None
        try:
            return self._build(form.values())
        except HostwizError as error:
            self.query_one("#form-status", Static).update(error_content(error))
            return None

    @on(Button.Pressed, "#preview")
    def action_preview(self) -> None:
        answers = self.checked_answers()
        if answers is not None:
            self.dismiss(answers)


class UnsavedScreen(ModalScreen[str]):
    """Escape on a step whose answers were edited: keep editing, discard or save them.
    Returns ``keep``, ``discard`` or ``save``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('keep')", "Keep editing"),
        Binding("d", "choose('discard')", "Discard"),
        Binding("s", "choose('save')", "Save"),
    ]

    def __init__(self, title: str, *, can_save: bool = True, changed: Sequence[str] = ()) -> None:
        super().__init__()
        self.step_title = title
        self.can_save = can_save
        self.changed = list(changed)
        """The labels of the questions whose answers were changed."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="unsaved"):
            yield Static("Unsaved answers", classes="title")
            what = f" ({', '.join(self.changed)})" if self.changed else ""
            yield Static(
                f"You changed answers of {self.step_title}{what}. Save keeps them for this session "
                "(nothing is applied until you preview and apply); Discard drops them."
                + ("" if self.can_save else " Some answers need fixing before they can be saved.")
            )
            with Horizontal(classes="buttons"):
                yield Button("Keep editing (Esc)", id="keep", compact=True)
                yield Button("Discard (d)", id="discard", variant="warning", compact=True)
                yield Button(
                    "Save (s)",
                    id="save",
                    variant="primary",
                    disabled=not self.can_save,
                    compact=True,
                )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters == ("save",) and not self.can_save:
            return None
        return True

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id or "keep")

    def action_choose(self, choice: str) -> None:
        if choice == "save" and not self.can_save:
            return
        self.dismiss(choice)
