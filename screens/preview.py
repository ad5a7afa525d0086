"""The preview of a changeset: the files and commands, before anything is changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static

from screens.widgets import DiffView

if TYPE_CHECKING:
    from wizard.render import RenderedLine


class PreviewScreen(Screen[bool]):
    """The exact diff and commands; returns True to apply, False to go back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "apply", "Apply"),
    ]

    def __init__(
        self, title: str, lines: Sequence[RenderedLine], *, empty: bool, action: str = "Apply"
    ) -> None:
        super().__init__()
        self.sub_title = "preview"
        self.heading = title
        self.lines = list(lines)
        self.empty = empty
        self.action_word = action
        if action != "Apply":  # the footer names the key as the button does ("Roll back")
            self._bindings.key_to_bindings["a"] = [Binding("a", "apply", action)]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.heading, classes="title")
        warnings = [line.text for line in self.lines if line.kind == "warning"]
        if warnings:
            yield Static("\n".join(warnings), id="warnings", classes="warnings")
        if self.empty:
            yield Static(
                "Nothing to change: the host already matches these answers.", classes="note"
            )
        # Warnings are in the panel above; the diff keeps the rest, in order.
        yield DiffView([line for line in self.lines if line.kind != "warning"], id="diff")
        with Horizontal(classes="buttons"):
            yield Button("Back", id="back", compact=True)
            yield Button(
                f"{self.action_word} (a)",
                id="apply",
                variant="warning",
                disabled=self.empty,
                compact=True,
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DiffView).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply" and self.empty:
            return None
        return True

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        if not self.empty:
            self.dismiss(True)
