"""``hostwiz --plain``: prompts generated from FieldInfo, Ctrl-C, and --yes on a practice host.

Prompts are driven through a prompt_toolkit pipe input, as a person would type them.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from hostwiz.cli import main
from screens.app import default_args
from screens.plain import NO_CHANGES, ask_field, run_plain, yes_no
from screens.questions import confirm_keys, select_keys, text_keys
from wizard.answers import fields_of
from wizard.steps import STEPS
from wizard.steps.docker import DockerEngineAnswers

FIELDS = {info.name: info for info in fields_of(DockerEngineAnswers)}
DOWN = "\x1b[B"
KILL_LINE = "\x15"  # Ctrl-U


@pytest.fixture
def keys() -> Iterator[Any]:
    """Type into prompts: ``keys("text")`` queues input; returns the prompt options."""
    with create_pipe_input() as pipe:

        def send(text: str) -> dict[str, Any]:
            pipe.send_text(text)
            return {"input": pipe, "output": DummyOutput()}

        yield send


def test_text_field_is_checked_as_typed(keys: Any) -> None:
    options = keys(f"{KILL_LINE}10 megs\r{KILL_LINE}20m\r")
    assert ask_field(FIELDS["log_max_size"], "10m", options) == "20m"


def test_default_is_kept_on_enter_and_numbers_are_numbers(keys: Any) -> None:
    assert ask_field(FIELDS["log_max_file"], 5, keys("\r")) == 5
    assert ask_field(FIELDS["log_max_file"], 5, keys(f"{KILL_LINE}x\r{KILL_LINE}7\r")) == 7


def test_bool_is_a_confirm_and_choice_a_select(keys: Any) -> None:
    assert ask_field(FIELDS["icc"], False, keys("y\r")) is True
    assert ask_field(FIELDS["live_restore"], True, keys("n\r")) is False
    assert ask_field(FIELDS["mode"], "userns-remap", keys(f"{DOWN}\r")) == "rootless"
    assert ask_field(FIELDS["log_driver"], "json-file", keys("\r")) == "json-file"


def test_a_yes_no_question_waits_for_enter_so_the_enter_answers_nothing_else(keys: Any) -> None:
    """n, Enter: the Enter belongs to this question; the next one still waits for its own."""
    options = keys("n\ry\r")
    assert yes_no("Go through SSH hardening?", True, options) is False
    assert yes_no("Go through Docker engine?", False, options) is True
    # A key alone answers nothing yet: Backspace takes it back, Enter alone is the default.
    options = keys("y\x08\r")
    assert yes_no("Go through Docker engine?", False, options) is False


def test_help_is_wrapped_to_the_terminal_and_the_keys_are_said(keys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # the prompt fits: its keys are not said apart
    info = FIELDS["log_max_size"]
    said: list[str] = []
    ask_field(info, "10m", keys("\r"), say=said.append)
    text = "\n".join(said)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert " ".join(text.split()) == info.help  # all of it, only wrapped
    assert text_keys("10m") == "(Enter keeps the value shown; Ctrl-U clears it)"
    assert confirm_keys(True).endswith("Enter alone: yes)")
    assert select_keys("json-file").endswith("Enter alone keeps: json-file)")


def _step_run(keys: Any, typed: str) -> Any:
    from screens.plain_common import PlainRun

    out = io.StringIO()
    return PlainRun(prompt_options=keys(typed), out=out), out


def test_a_step_switched_off_asks_nothing_more(keys: Any) -> None:
    """TLS answered No: none of its other questions is asked (the input ends right there)."""
    from screens.plain import _ask_step
    from wizard.steps.tls.answers import DockerTlsAnswers

    run, out = _step_run(keys, "y\rn\r")
    assert _ask_step(run, STEPS["tls"], DockerTlsAnswers(enabled=True)) == DockerTlsAnswers()
    assert "Listen address" not in out.getvalue()


def test_a_typo_in_one_item_of_a_list_is_refused_as_typed(keys: Any) -> None:
    """The services of a zone are checked item by item before the next question."""
    from screens.plain import _ask_step
    from wizard.steps.firewall.answers import FirewallAnswers

    typed = ["y\r", "y\r"]  # go through it; zones on
    for info in fields_of(FirewallAnswers)[1:]:
        if info.name == "mgmt_services":
            typed += [f"{KILL_LINE}ssh, pnig\r", f"{KILL_LINE}ssh, ping, https\r"]
        else:
            typed.append("\r")
    run, _ = _step_run(keys, "".join(typed))
    answers = _ask_step(run, STEPS["firewall"], FirewallAnswers())
    assert answers.mgmt_services == ("ssh", "ping", "https")


def test_ctrl_c_at_the_first_question_changes_nothing(keys: Any, capsys: Any) -> None:
    code = run_plain(default_args(plain=True), **keys("\x03"))
    assert code == 1
    assert capsys.readouterr().out.strip().endswith(NO_CHANGES)


def test_unreachable_host_with_yes_is_explained_without_a_prompt(capsys: Any) -> None:
    """A real connection attempt to a closed loopback port, through the real CLI."""
    code = main(["--plain", "--yes", "--host", "nobody@127.0.0.1:1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "Cannot connect:" in out and "127.0.0.1" in out
    assert out.strip().endswith(NO_CHANGES)
    assert "Traceback" not in out


def test_a_bad_override_is_explained(capsys: Any) -> None:
    code = main(["--plain", "--yes", "--host", "x", "--set", "docker.log_max_size=huge"])
    out = capsys.readouterr().out
    assert code == 1
    assert "expected a size such as 10m" in " ".join(out.split()) and NO_CHANGES in out


# ---- what a newcomer reads at 80 columns (no host needed) ----------------------------------


def test_a_refused_answer_is_said_in_full_then_asked_again(keys: Any, monkeypatch: Any) -> None:
    """An SSH port out of range: the whole message and its hint are printed (a prompt's
    toolbar has one line, which cut the hint off at 80 columns), and the question is asked
    again."""
    from screens.plain import _ask_step
    from wizard.steps.ssh.answers import SshAnswers

    monkeypatch.setenv("COLUMNS", "80")
    typed = ["y\r"]
    for info in fields_of(SshAnswers):
        if info.show_if is not None:
            continue
        typed += [f"{KILL_LINE}70000\r", f"{KILL_LINE}2222\r"] if info.name == "port" else ["\r"]
    run, out = _step_run(keys, "".join(typed))
    assert _ask_step(run, STEPS["ssh"], SshAnswers()).port == 2222
    said = " ".join(out.getvalue().split())
    assert "Not accepted: SSH hardening: ssh.port: 70000 is not a port number." in said, said
    assert "Use a port from 1 to 65535 (for example 2222), or 0 to keep the current port." in said
    assert all(len(line) <= 80 for line in out.getvalue().splitlines())


def test_keys_that_would_make_a_prompt_wider_than_80_columns_are_said_above_it(
    keys: Any, monkeypatch: Any
) -> None:
    """ "Open files per container (Enter keeps the value shown; Ctrl-U clears it) 6400" and
    "0" on the next line: the keys go on a line of their own; a short prompt keeps them."""
    monkeypatch.setenv("COLUMNS", "80")
    said: list[str] = []
    assert ask_field(FIELDS["nofile_limit"], 64000, keys("\r"), say=said.append) == 64000
    assert said[-1] == "  (Enter keeps the value shown; Ctrl-U clears it)", said
    said.clear()
    ask_field(FIELDS["log_max_file"], 5, keys("\r"), say=said.append)
    assert not any("Enter keeps" in line for line in said), said
    said.clear()
    ask_field(FIELDS["icc"], False, keys("\r"), say=said.append)  # a long yes/no question
    assert said[-1] == "  (y or n, then Enter; Enter alone: no)", said


def test_help_and_progress_are_wrapped_at_spaces_only(monkeypatch: Any) -> None:
    """A hyphenated word (ssh-audit) and a command in backquotes stay whole; a progress line
    wider than the terminal is wrapped under its text, not cut in the middle of a word."""
    from screens.plain_common import PlainRun, progress, wrap
    from wizard.steps.ssh.answers import SshAnswers
    from wizard.transaction import Event

    monkeypatch.setenv("COLUMNS", "80")
    help_text = next(i.help for i in fields_of(SshAnswers) if i.name == "strong_algorithms")
    wrapped = wrap(help_text, "  ")
    assert "ssh-audit's" in wrapped.split(), wrapped
    out = io.StringIO()
    run = PlainRun(out=out)
    progress(run)(Event("action", "check the new configuration (sshd -t), then reload sshd; "
                                  "open sessions stay connected"))  # fmt: skip
    progress(run)(Event("warning", "Run `hostwiz recover --host a-rather-long-host-name "
                                   "-F /some/ssh/config` if you cannot get back in."))  # fmt: skip
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[1] == "       stay connected", lines
    assert any("`hostwiz recover --host a-rather-long-host-name -F /some/ssh/config`" in line
               for line in lines), lines  # fmt: skip


def test_the_outcome_of_an_apply_is_said_once(capsys: Any, monkeypatch: Any) -> None:
    """The progress's last line already says the outcome and how to undo it: the report
    after it does not repeat it."""
    monkeypatch.setenv("COLUMNS", "80")
    from types import SimpleNamespace

    from screens.plain import _report
    from screens.plain_common import PlainRun, progress
    from wizard.actions import WriteFile
    from wizard.plan import Changeset, Plan
    from wizard.transaction import ApplyResult, Event

    message = "Applied 2 change(s). Undo with: hostwiz rollback --host h1 20261204-000000-abc"
    run = PlainRun()
    progress(run)(Event("done", message))
    transport = SimpleNamespace(host_label="h1", cli_options=None)
    paths = ("/etc/hostwiz/firewall/rules.v4", "/etc/hostwiz/firewall/rules.v6",
             "/usr/local/sbin/hostwiz-firewall", "/etc/init.d/hostwiz-firewall")  # fmt: skip
    changeset = Changeset("h1", (Plan("firewall", tuple(WriteFile(p, b"") for p in paths)),))
    _report(run, ApplyResult("20261204-000000-abc", 2, message), transport, changeset)
    out = capsys.readouterr().out
    assert out.count("Applied 2 change(s)") == 1, out
    assert all(len(line) <= 80 for line in out.splitlines()), out  # the paths changed, too
    assert "To undo: hostwiz rollback --host h1 20261204-000000-abc" in out


def test_plain_mode_without_a_terminal_explains_instead_of_a_traceback(capsys: Any) -> None:
    """Standard input ends before the first answer (a pipe, cron, < /dev/null)."""
    with create_pipe_input() as pipe:
        pipe.close()
        code = run_plain(default_args(plain=True), input=pipe, output=DummyOutput())
    out = capsys.readouterr().out
    said = " ".join(out.split())
    assert code == 1
    assert "add --yes" in said and "hostwiz --plain --yes --host HOST --preset FILE" in said
    assert out.strip().endswith(NO_CHANGES)


def test_a_host_that_cannot_be_reached_points_to_recover(capsys: Any) -> None:
    """Locked out (nothing listens on the port): plain mode names the command that explains
    and finds another way in. A real connection attempt to a closed loopback port."""
    code = main(["--plain", "--host", "nobody@127.0.0.1:1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "refused the connection" in out
    assert "`hostwiz recover --host nobody@127.0.0.1:1`" in " ".join(out.split()), out
    assert out.strip().endswith(NO_CHANGES)


def test_ctrl_c_while_applying_names_recover_and_no_fixed_time(
    capsys: Any, monkeypatch: Any
) -> None:
    """The host's deadline moves out while a slow step runs (a restart: 3 min, not the 60 s
    window): a fixed "within 60 seconds" was wrong; hostwiz recover reads the real one."""
    import screens.plain as plain

    def interrupted_apply(args: Any, run: Any) -> int:
        run.applying = True
        run.recover_command = "hostwiz recover --host h1"
        raise KeyboardInterrupt

    monkeypatch.setattr(plain, "_interactive", interrupted_apply)
    assert run_plain(default_args(plain=True)) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert "within 60 seconds" not in said, said
    assert "60 s after the step it was running ends" in said, said
    assert "`hostwiz recover --host h1` says when" in said, said


# ---- against a practice host ---------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.docker
def test_plain_yes_applies_the_hardened_preset(docker_defaults: Any, capsys: Any) -> None:
    host = docker_defaults
    code = main(["--plain", "--yes", "--preset", "hardened", "--host", host.name])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[done]" in out or "[conf]" in out
    assert f"To undo: hostwiz rollback --host {host.name} " in out
    daemon_json = host.console().run("cat /etc/docker/daemon.json").out
    assert '"userns-remap": "default"' in daemon_json
    # A second run finds nothing to do and asks nothing.
    assert main(["--plain", "--yes", "--preset", "hardened", "--host", host.name]) == 0
    assert "Nothing to change" in capsys.readouterr().out


def _args(**values: Any) -> argparse.Namespace:
    return default_args(plain=True, **values)


@pytest.mark.lab
@pytest.mark.docker
def test_plain_interactive_answers_then_declines(
    docker_defaults: Any, keys: Any, capsys: Any, tmp_path: Any
) -> None:
    """Go through the step with one answer changed, see the plan, say no: nothing changes.
    The answers are saved, and the command printed to use them names the host."""
    host = docker_defaults
    saved = tmp_path / "mine.toml"
    # For each step in order: go through it? Only the Docker engine step (y), whose fields are
    # answered in order (Enter keeps the preset's value) except log_max_file = 3. Then:
    # apply? n; save a preset? y, in tmp_path.
    typed = []
    for name in STEPS:
        if name != "docker":
            typed.append("n\r")
            continue
        typed.append("y\r")
        for info in fields_of(DockerEngineAnswers):
            if info.show_if is not None:
                continue
            typed.append(f"{KILL_LINE}3\r" if info.name == "log_max_file" else "\r")
    typed += ["n\r", "y\r", f"{KILL_LINE}{saved}\r"]
    code = run_plain(_args(host=host.name), **keys("".join(typed)))
    out = capsys.readouterr().out
    assert code == 0, out
    assert '"max-file": "3"' in out  # the plan shown
    assert NO_CHANGES in out
    assert f"Saved. Use it with: hostwiz --plain --host {host.name} --preset {saved}" in out
    assert "log_max_file = 3" in saved.read_text()
    assert host.console().run("cat /etc/docker/daemon.json").exit_code != 0


@pytest.fixture
def practice_host(request: pytest.FixtureRequest) -> Any:
    """The shared practice host, for tests that change nothing on it."""
    try:
        return request.getfixturevalue("lab_host")
    except pytest.FixtureLookupError:
        pytest.skip("practice hosts are not available here (no lab_host fixture)")


@pytest.mark.lab
def test_plain_firewall_questions_name_the_hosts_interfaces(
    practice_host: Any, keys: Any, capsys: Any
) -> None:
    """The facts read for the step list say, before each zone question, which interfaces and
    addresses the host has and where hostwiz's SSH connection comes in; a firewall that is
    off asks nothing more. The plan is shown, declined, and nothing changes."""
    from wizard.steps.firewall.answers import FirewallAnswers

    host = practice_host
    console = host.console()
    address = console.run("ip -4 -o addr show dev eth0 | awk '{print $4}'").out.split()[0]
    rules_before = console.run("iptables-save | grep -v '^#'").out
    typed = []
    for name in STEPS:
        if name != "firewall":
            typed.append("n\r")
            continue
        typed.append("y\r")
        typed += ["y\r" if info.name == "enabled" else "\r" for info in fields_of(FirewallAnswers)]
    typed += ["n\r", "n\r"]  # apply? save a preset?
    code = run_plain(_args(host=host.name), **keys("".join(typed)))
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    hosts_lines = [line for line in lines if line.startswith("  This host has: ")]
    assert len(hosts_lines) == 3, out  # before mgmt, lan and wan interfaces
    assert all(f"eth0 {address}" in line for line in hosts_lines), hosts_lines
    # Where the SSH connection comes in: once, before the services of eth0's zone (wan: eth0
    # is in no list, and the hardened preset leaves interfaces not listed in wan).
    at = [n for n, line in enumerate(lines) if line.startswith("  Your SSH connection comes from")]
    assert len(at) == 1, out
    said = " ".join(line.strip() for line in lines[at[0] : at[0] + 3])
    assert "on eth0, which is in zone wan with these answers" in said, said
    assert "HOSTWIZ-INPUT" in out  # the plan shown
    assert NO_CHANGES in out
    assert console.run("iptables-save | grep -v '^#'").out == rules_before


class PlainTerminal:
    """``hostwiz --plain`` on a pseudo-terminal of its own, 80 columns wide, typed at like a
    person would (see tests/test_tls_frontends.py). What it shows is kept without the
    terminal's escape sequences."""

    ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "hostwiz", "--plain", *args]
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "80", "LINES": "24"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a new session whose controlling terminal is the pty
            os.execve(sys.executable, command, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.raw = ""
        self.position = 0

    @property
    def text(self) -> str:
        return self.ESCAPES.sub("", self.raw)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child has ended
            return False
        self.raw += chunk.decode("utf-8", "replace")
        if "\x1b[6n" in chunk.decode("utf-8", "replace"):
            os.write(self.fd, b"\x1b[1;1R")  # answer the cursor position request
        return bool(chunk)

    def wait_for(self, pattern: str, seconds: float = 120) -> str:
        """Wait until ``pattern`` shows after the last match; what showed before it."""
        deadline = time.monotonic() + seconds
        while True:
            found = re.compile(pattern).search(self.text, self.position)
            if found:
                before = self.text[self.position : found.start()]
                self.position = found.end()
                return before
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{pattern!r} did not show; the terminal:\n{self.text}")

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def exit_code(self, seconds: float = 120) -> int:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._read(0.5):
            pass
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"hostwiz did not end; the terminal:\n{self.text}")


@pytest.mark.lab
def test_plain_mode_on_a_terminal_waits_for_enter_says_the_keys_and_skips_a_step_turned_off(
    practice_host: Any, lab_ssh_config: Any
) -> None:
    """The real ``hostwiz --plain`` on a pseudo-terminal: n then Enter skips a step and the
    Enter does not answer the next question; each question says its keys and default; help
    is wrapped at 80 columns; TLS answered No asks none of its other questions."""
    host = practice_host
    terminal = PlainTerminal("--host", host.name, "-F", str(lab_ssh_config))
    terminal.wait_for(r"Go through SSH hardening\? \(y or n, then Enter; Enter alone: yes\)")
    terminal.type("n")
    time.sleep(0.5)  # a key alone answers nothing: the question is still open
    assert "Go through Docker engine" not in terminal.text
    terminal.type("\r")
    terminal.wait_for(r"Go through Docker engine\?")
    time.sleep(0.5)  # the Enter typed after n answered nothing here
    assert "Engine mode" not in terminal.text[terminal.position :]
    terminal.type("n\r")
    terminal.wait_for(r"Go through Docker API over TLS\?")
    terminal.type("y\r")
    help_text = terminal.wait_for(r"\? Docker API over TLS \(y or n, then Enter; Enter alone: no\)")
    help_lines = [line for line in help_text.splitlines() if line.startswith("  ")]
    said = " ".join(" ".join(help_lines).split())
    assert said.startswith("On: dockerd also listens"), help_text
    assert said.endswith("(reach it over SSH)."), help_text  # all of it: wrapped, not cut
    assert all(len(line) <= 80 for line in help_lines), help_lines
    terminal.type("n\r")
    skipped = terminal.wait_for(r"Go through Firewall zones\?")
    assert "Listen address" not in skipped and "Site" not in skipped, skipped
    terminal.type("n\r")
    for later in list(STEPS.values())[list(STEPS).index("firewall") + 1 :]:
        terminal.wait_for(rf"Go through {re.escape(later.title)}\?")
        terminal.type("n\r")
    terminal.wait_for(r"Nothing to change")  # TLS off, as the host is
    terminal.wait_for(
        r"Save these answers as a preset file\? \(y or n, then Enter; Enter alone: no\)"
    )
    terminal.type("n\r")
    assert terminal.exit_code() == 0, terminal.text


@pytest.mark.lab
def test_plain_a_plan_refused_for_the_answers_asks_again_with_them_kept(
    practice_host: Any, keys: Any, capsys: Any
) -> None:
    """ssh taken out of the services of the zone hostwiz's own connection arrives in: the
    plan refuses it only after every question. The run used to end there, every answer lost;
    now it says why and goes through the steps again, each answer given being the default,
    so only the wrong one is typed again. Declined at the end: nothing changes."""
    from wizard.steps.firewall.answers import FirewallAnswers

    host = practice_host
    console = host.console()
    rules_before = console.run("iptables-save | grep -v '^#'").out

    def steps(firewall: dict[str, str]) -> list[str]:
        typed = []
        for name in STEPS:
            if name != "firewall":
                typed.append("n\r")
                continue
            typed.append("y\r")
            typed += [firewall.get(info.name, "\r") for info in fields_of(FirewallAnswers)]
        return typed

    first = {"enabled": "y\r", "mgmt_interfaces": f"{KILL_LINE}eth0\r",
             "mgmt_services": f"{KILL_LINE}ping\r"}  # fmt: skip
    again = {"mgmt_services": f"{KILL_LINE}ssh, ping\r"}  # the rest: Enter keeps the answers
    typed = [*steps(first), "\r", *steps(again), "n\r", "n\r"]  # again? yes; apply? save? no
    code = run_plain(_args(host=host.name), **keys("".join(typed)))
    out = capsys.readouterr().out
    said = " ".join(out.split())
    assert code == 0, out
    assert "Cannot do this safely: this would lock you out" in said, out
    assert "Nothing was changed, and your answers are kept." in said
    assert "HOSTWIZ-INPUT" in out  # the second answers were planned and shown
    assert out.strip().endswith(NO_CHANGES)
    assert console.run("iptables-save | grep -v '^#'").out == rules_before
