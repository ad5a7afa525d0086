"""Small modal dialogs: trust a host key, passwords, a step's secret (the CA passphrase), errors,
saving a preset."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from screens.errors import error_content, is_danger
from wizard.errors import HostwizError
from wizard.local import SecretAnswer

if TYPE_CHECKING:
    from wizard.local import SecretRequest
    from wizard.transport.ssh_connect import HostKeyInfo


class TrustKeyScreen(ModalScreen[bool]):
    """Asks whether to trust a host key seen for the first time."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Trust"),
        Binding("n,escape", "answer(False)", "Refuse"),
    ]

    def __init__(self, info: HostKeyInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        info = self.info
        with Vertical(classes="dialog"):
            yield Static("New host key", classes="title")
            yield Static(
                Content.assemble(
                    (info.host, "bold"),
                    f" ({info.hostname}:{info.port}) presents a ",
                    (info.key_type, "bold"),
                    " host key never seen before:\n\n  ",
                    (info.fingerprint, "bold $text-warning"),
                    "\n\nCompare it with the VM's console: ssh-keygen -lf "
                    "/etc/ssh/ssh_host_ed25519_key.pub. If it matches, trust it; it is added to ",
                    str(info.known_hosts),
                    ".",
                )
            )
            with Horizontal(classes="buttons"):
                yield Button("Refuse (n)", id="refuse")
                yield Button("Trust (y)", id="trust", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#refuse", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust")

    def action_answer(self, trust: bool) -> None:
        self.dismiss(trust)


class PasswordScreen(ModalScreen[str | None]):
    """Asks for the sudo password (never stored, never shown)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("sudo password", classes="title")
            yield Static(
                f"The login user on {self.host} needs its password for sudo. It is "
                "kept in memory only while connected."
            )
            yield Input(password=True, id="password")
            # No buttons and no footer under a dialog: say which keys answer it.
            yield Static("Enter: log in with it  ·  Escape: do not connect", classes="hint")

    @on(Input.Submitted, "#password")
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SecretScreen(ModalScreen[SecretAnswer | None]):
    """Asks for a secret a step needs (a :class:`~wizard.local.SecretRequest`; today the TLS
    step's CA passphrase): once to unlock what exists, twice (a confirm field) when it is
    chosen now. Returns the answer, or None (Escape) to go back.

    A new secret the request's ``check_new`` refuses (empty, short, typed differently twice)
    is refused right here; whether an existing one is right is only known once the step uses
    it, so the app shows this screen again with the error (``request.problem``).
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, request: SecretRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(classes="dialog", id="ca-passphrase"):
            # The explanation scrolls when the terminal is small (see fit_text): the fields,
            # the error under them and the buttons always stay on screen.
            with VerticalScroll(id="secret-text"):
                yield Static(request.title, classes="title")
                yield Static(request.explanation)
                yield Static(request.note, classes="hint")
            yield Input(password=True, placeholder="passphrase", id="passphrase", compact=True)
            if request.confirm:
                yield Input(
                    password=True,
                    placeholder="the same passphrase again",
                    id="confirmation",
                    compact=True,
                )
            problem = request.problem
            yield Static(
                f"{problem.message} {problem.hint}" if problem is not None else "",
                id="passphrase-error",
            )
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(
                    request.submit,
                    id="ok",
                    variant="primary",
                    compact=True,
                )

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()
        self.call_after_refresh(self.fit_text)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_text)

    def fit_text(self) -> None:
        """Give the explanation what height the dialog has left (at most 90% of the screen,
        like every dialog) after its fields, error line and buttons."""
        dialog = self.query_one("#ca-passphrase")
        text = self.query_one("#secret-text")
        error = self.query_one("#passphrase-error", Static)
        frame = dialog.styles.gutter.height  # border and padding
        rest = 0
        for child in dialog.children:
            if child is text or not child.display:
                continue
            height = child.region.height
            if child is error:  # laid out only later: count the lines its text wraps to
                width = max(10, dialog.content_region.width)
                height = max(1, len(textwrap.wrap(str(error.content), width)))
            rest += height + child.styles.margin.top + child.styles.margin.bottom
        text.styles.max_height = max(3, int(self.size.height * 0.9) - frame - rest)

    @on(Input.Submitted, "#passphrase")
    def first_typed(self) -> None:
        if self.request.confirm:
            self.query_one("#confirmation", Input).focus()
        else:
            self.submit()

    @on(Input.Submitted, "#confirmation")
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        from wizard.secrets import Secret

        passphrase = Secret(self.query_one("#passphrase", Input).value)
        if not self.request.confirm:
            self.dismiss(SecretAnswer(passphrase))
            return
        confirmation = Secret(self.query_one("#confirmation", Input).value)
        try:
            if self.request.check_new is not None:
                self.request.check_new(passphrase, confirmation)
        except HostwizError as error:  # empty, short, or the two differ: type both again
            self.show_error(f"{error.message} {error.hint}")
            for field in self.query(Input).results(Input):
                field.value = ""
            self.query_one("#passphrase", Input).focus()
            return
        self.dismiss(SecretAnswer(passphrase, confirmation))

    def show_error(self, text: str) -> None:
        self.query_one("#passphrase-error", Static).update(text)
        self.fit_text()

    @property
    def error_text(self) -> str:
        return str(self.query_one("#passphrase-error", Static).content)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorScreen(ModalScreen[None]):
    """A problem in plain words: what went wrong and what to do."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "close", "Close")]

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error danger" if is_danger(self.error) else "dialog error"):
            yield Static(error_content(self.error))
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary", compact=True)

    @on(Button.Pressed, "#ok")
    def action_close(self) -> None:
        self.dismiss(None)


class SavePresetScreen(ModalScreen[str | None]):
    """Asks where to save the answers as a preset file."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Save answers as a preset", classes="title")
            yield Static(
                "A TOML file you can reuse: hostwiz --preset FILE. If it exists, "
                "its comments are kept."
            )
            yield Input(self.default, id="path")
            yield Static(
                "Enter: save  ·  Escape: cancel. A name without a folder is saved in "
                f"{Path.cwd()}.",
                classes="hint",
            )

    @on(Input.Submitted, "#path")
    def submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if not path.endswith(".toml"):
            self.notify("A preset file name ends in .toml", severity="warning")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
