"""The help screen (its text is help.md next to this file)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

HERE = Path(__file__).parent


CLOSE_HELP = "Escape, q or F1 closes this help; ↑/↓ and Page Up/Down scroll it."


class HelpScreen(ModalScreen[None]):
    """Keys and concepts; the text is kept as Markdown in screens/help.md."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it and pygments: only when asked for

        text = (HERE / "help.md").read_text(encoding="utf-8")
        with VerticalScroll(classes="dialog help"):
            yield Static(CLOSE_HELP, id="help-close", classes="hint")
            yield Markdown(text)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
