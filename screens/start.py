"""The start screen: pick a practice host, an ssh config entry or ``user@host[:port]``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from screens.errors import error_content, is_danger
from wizard.errors import recovery_can_help
from wizard.practice_hosts import practice_host_names, practice_ssh_config, ssh_config_hosts


@dataclass(frozen=True)
class HostChoice:
    """A host the admin can pick on the start screen."""

    target: str
    """What is passed to the SSH transport: an ssh config name or ``user@host[:port]``."""
    detail: str = ""
    ssh_config: str | None = None
    """The ssh_config file that defines ``target`` (practice hosts have their own)."""


@dataclass(frozen=True)
class RecoverChoice:
    """From the start screen: open the recovery screen for ``host`` instead of connecting."""

    host: HostChoice
    problem: BaseException | None = None
    """Why connecting to it failed, when it did."""


@dataclass(frozen=True)
class SiteChoice:
    """From the start screen: several hosts at once (a site), or a site file."""

    hosts: tuple[HostChoice, ...] = ()
    file: str | None = None
    cursor: HostChoice | None = None
    """The host the cursor was on at Enter: back from the site, the start screen's cursor is
    there again (a typed site file is back in the input)."""

    @property
    def left(self) -> HostChoice | None:
        """Where the start screen's cursor goes back to after the site (its ``current``)."""
        return HostChoice(self.file, "site file") if self.file is not None else self.cursor


def host_name(target: str) -> str:
    """The host part of ``user@host[:port]`` (``admin@hw1`` is practice host ``hw1``)."""
    host = target.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0] if host.count(":") == 1 else host


class StartScreen(Screen[HostChoice | RecoverChoice | SiteChoice | None]):
    """Pick a practice host or an ssh config entry, or type ``user@host[:port]``.

    Space marks several hosts; Enter then opens them together as one site
    (:class:`SiteChoice`), as does typing the path of a site file (``.toml``).

    After a failed connection (``problem``, for the host ``failed``) it says why, and Ctrl+R
    asks for the recovery screen of that host (:class:`RecoverChoice`).

    Back from a host ("Other host", ``current``) or a site, the cursor is where the admin left
    it: on that host in the list, or, for a typed one (or a site file), in the input with its
    text.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "quit_wizard", "Quit"),
        Binding("ctrl+l", "focus_target", "Type a host", show=True),
        Binding("ctrl+r", "recover", "Recovery"),
        Binding("space", "mark", "Mark several"),  # "Mark for a site" ran under ^p at 80 columns
    ]

    def __init__(
        self,
        candidates: Sequence[HostChoice] | None = None,
        *,
        problem: BaseException | None = None,
        failed: HostChoice | None = None,
        initial: str = "",
        ssh_config: str | None = None,
        current: HostChoice | None = None,
    ) -> None:
        super().__init__()
        self.sub_title = "choose a host"
        self.candidates = list(candidates) if candidates is not None else None
        self.problem = problem
        self.failed = failed
        self.current = current
        """The host the admin just left ("Other host"): the cursor comes back to it."""
        self.initial = initial
        self.ssh_config = ssh_config
        self.marked: list[int] = []
        """Candidates marked with Space, in the order marked (a site of several hosts)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="start"):
            yield Static(
                "Which machine should become a hardened Docker host? Pick one (↑/↓, Enter) or "
                "type its address below; Space marks several to change together as one site. "
                "Nothing is changed before you have seen and confirmed a preview.",
                classes="intro",
            )
            if self.problem is not None:
                danger = is_danger(self.problem)
                recovery = (
                    "\nCtrl+R: recovery (what the last change did, how to get back in)."
                    if recovery_can_help(self.problem)
                    else "\nFix the name below (or pick the host from the list), then Enter."
                )
                yield Static(
                    Content.assemble(
                        error_content(self.problem),
                        Content.styled("" if danger else recovery, "$text-muted"),
                    ),
                    id="problem",
                    classes="problem danger" if danger else "problem",
                )
            yield OptionList(id="hosts")
            yield Label("Or type user@host[:port], an ssh config Host, or a site file (.toml):")
            yield Input(self.initial, placeholder="admin@192.0.2.10:22", id="target")
        yield Footer()

    def on_mount(self) -> None:
        if self.candidates is None:
            self.query_one("#hosts", OptionList).loading = True
            self.call_after_refresh(self.load_candidates)  # after the first paint
        else:
            self.show_candidates(self.candidates)

    @work(thread=True, exit_on_error=False)
    def load_candidates(self) -> None:
        found = find_hosts(self.ssh_config)
        self.app.call_from_thread(self.show_candidates, found)

    def show_candidates(self, found: Sequence[HostChoice]) -> None:
        self.candidates = list(found)
        hosts = self.query_one("#hosts", OptionList)
        hosts.loading = False
        hosts.clear_options()
        for index, choice in enumerate(self.candidates):
            text = Content.assemble((choice.target, "bold"), "  ", (choice.detail, "$text-muted"))
            hosts.add_option(Option(text, id=str(index)))
        failed = self.failed.target if self.failed is not None else None
        left = self.current.target if self.current is not None else None
        listed = [choice.target for choice in self.candidates]
        target = self.query_one("#target", Input)
        if not self.candidates:
            hosts.add_option(
                Option("(no practice hosts or ssh config entries found)", disabled=True)
            )
            self._focus(target)
        elif failed is not None and failed not in listed and self.initial == failed:
            # A typed host failed: its text is back in the input, ready to be corrected.
            hosts.highlighted = 0
            self._focus(target)
            target.cursor_position = len(target.value)
        elif failed is None and left is not None and left not in listed:
            # A typed host was left: its text is back in the input, to change for the next.
            hosts.highlighted = 0
            target.value = left
            self._focus(target)
            target.cursor_position = len(target.value)
        else:
            # On the host that failed, else the one just left (not back to the first).
            wanted = failed if failed is not None else left
            hosts.highlighted = listed.index(wanted) if wanted in listed else 0
            self._focus(hosts)

    def _focus(self, widget: Widget) -> None:
        """Focus and bring into view without an animation: a scroll animation still pending
        when the wizard quits would never finish (and Pilot tests would wait for it)."""
        widget.focus(scroll_visible=False)
        widget.scroll_visible(animate=False)

    @on(OptionList.OptionSelected, "#hosts")
    def picked(self, event: OptionList.OptionSelected) -> None:
        assert self.candidates is not None and event.option.id is not None
        index = int(event.option.id)
        if self.marked:
            chosen = [*self.marked, *([] if index in self.marked else [index])]
            hosts = tuple(self.candidates[i] for i in chosen)
            self.dismiss(SiteChoice(hosts, cursor=self.candidates[index]))
            return
        self.dismiss(self.candidates[index])

    def action_mark(self) -> None:
        """Mark (or unmark) the highlighted host for a site of several hosts."""
        hosts = self.query_one("#hosts", OptionList)
        option = hosts.highlighted_option
        if not hosts.has_focus or option is None or option.id is None or not self.candidates:
            return
        index = int(option.id)
        if index in self.marked:
            self.marked.remove(index)
        else:
            self.marked.append(index)
        choice = self.candidates[index]
        mark = "[x] " if index in self.marked else ""
        hosts.replace_option_prompt(
            option.id,
            Content.assemble(mark, (choice.target, "bold"), "  ", (choice.detail, "$text-muted")),
        )

    @on(Input.Submitted, "#target")
    def typed(self, event: Input.Submitted) -> None:
        target = event.value.strip()
        if not target or " " in target:
            self.notify(
                "Type a host such as admin@192.0.2.10 or a name from ~/.ssh/config.",
                severity="warning",
            )
            return
        if target.endswith(".toml"):
            self.dismiss(SiteChoice(file=target))
            return
        self.dismiss(HostChoice(target, "typed", None))

    def action_focus_target(self) -> None:
        self._focus(self.query_one("#target", Input))

    def action_recover(self) -> None:
        """Recovery for the host that failed, else the typed or highlighted one."""
        target = self.query_one("#target", Input)
        typed = target.value.strip()
        hosts = self.query_one("#hosts", OptionList)
        highlighted = hosts.highlighted_option
        if self.failed is not None and not (target.has_focus and typed != self.failed.target):
            if not recovery_can_help(self.problem):
                self.notify(
                    f"{self.failed.target} is not a name this machine can find: recovery "
                    "cannot help. Fix the name first.",
                    severity="warning",
                )
                return
            self.dismiss(RecoverChoice(self.failed, self.problem))
        elif typed and (target.has_focus or highlighted is None):
            self.dismiss(RecoverChoice(HostChoice(typed, "typed", None)))
        elif highlighted is not None and highlighted.id is not None and self.candidates:
            self.dismiss(RecoverChoice(self.candidates[int(highlighted.id)]))
        else:
            self.notify("Pick or type the host to recover first.", severity="warning")

    def action_quit_wizard(self) -> None:
        self.dismiss(None)


def find_hosts(ssh_config: str | None = None) -> list[HostChoice]:
    """Practice hosts (when the lab is available) and the entries of the ssh config."""
    lab_config = str(practice_ssh_config())
    found = [HostChoice(name, "practice host", lab_config) for name in practice_host_names()]
    config = Path(ssh_config) if ssh_config else Path.home() / ".ssh" / "config"
    for name in ssh_config_hosts(config):
        if all(choice.target != name for choice in found):
            found.append(HostChoice(name, f"from {config}", ssh_config))
    return found
