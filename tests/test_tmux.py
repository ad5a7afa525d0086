"""The real ``hostwiz`` in a real terminal: tmux at 80×24, typed at like a person would.

One run from start to an applied change on a practice host of the test's own: the wizard opens
on the host, the Docker engine step is opened from the command palette, previewed, applied, and
the snapshot id the screen shows is the one the host recorded. Every wait polls the screen
with a deadline; the tmux server is private to the test (its socket is in the test's temporary
folder) and its session is killed by name at the end, whatever happened.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.lab, pytest.mark.docker]


class Terminal:
    """A tmux session on a private server: type keys, read the screen."""

    def __init__(self, socket: Path, session: str) -> None:
        self.socket = socket
        self.session = session

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def text(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def exit_status(self, status_file: Path, seconds: float) -> int:
        """The program's exit status, written by the ``sh`` that runs it (see ``_reaped_by_sh``).

        Not tmux's ``#{pane_dead}``: tmux 3.3a runs ``utempter del`` when the pane's terminal
        closes, with SIGCHLD set to SIG_DFL while it waits for that helper. A program whose
        exit lands in that window (its last threads end a moment after its terminal closes)
        loses its SIGCHLD: tmux never reaps it and the pane never dies, although the program
        ended with 0 (strace of the tmux server showed exactly that; a manual SIGCHLD reaps it).
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if status_file.exists() and status_file.read_text().strip():
                return int(status_file.read_text().split()[-1])
            time.sleep(0.25)
        raise AssertionError(f"the program still runs after {seconds} s:\n{self.screen()}")

    def wait_for(self, pattern: str, seconds: float) -> re.Match[str]:
        """Poll the screen until ``pattern`` (a regex) shows, for at most ``seconds``."""
        deadline = time.monotonic() + seconds
        shown = ""
        while time.monotonic() < deadline:
            shown = self.screen()
            found = re.search(pattern, shown)
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"{pattern!r} did not show within {seconds} s; the screen:\n{shown}")


def _reaped_by_sh(command: list[str], status_file: Path) -> list[str]:
    """Run ``command`` under ``sh``, which waits for it (a blocking wait, no signal to lose)
    and writes its exit status to ``status_file``."""
    return ["sh", "-c", '"$@"; echo "exit $?" > "$0"', str(status_file), *command]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (scripts/setup installs it)")
    name = f"hostwiz-test-{secrets.token_hex(4)}"
    term = Terminal(tmp_path / "tmux.sock", name)
    try:
        yield term
    finally:
        term.tmux("kill-session", "-t", name, check=False)
        # The private server ends with its last session; make sure ours is gone.
        term.tmux("kill-server", check=False)


def test_wizard_in_a_real_terminal_applies_the_docker_step(
    terminal: Terminal, make_lab_hosts: Any, lab_ssh_config: Path, tmp_path: Path
) -> None:
    host = make_lab_hosts(1)[0]
    state = tmp_path / "state"
    env = {
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "XDG_STATE_HOME": str(state),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        "env",
        *(f"{key}={value}" for key, value in env.items()),
        sys.executable,
        "-m",
        "hostwiz",
        "--host",
        host.name,
        "-F",
        str(lab_ssh_config),
    ]
    status_file = tmp_path / "exit-status"
    command = _reaped_by_sh(command, status_file)
    config = tmp_path / "tmux.conf"
    config.write_text("set -g remain-on-exit on\nset -g history-limit 100\n")
    terminal.tmux(
        "-f", str(config), "new-session", "-d", "-s", terminal.session,
        "-x", "80", "-y", "24", "-c", str(ROOT), *command,
    )  # fmt: skip

    # The step list of the host (practice hosts start with Docker's defaults).
    terminal.wait_for(r"Docker engine\s+not done", 90)
    # Open the step from the command palette, then preview with the preset's answers.
    terminal.keys("C-p")
    terminal.wait_for(r"Search for commands", 10)
    terminal.text("Step: Docker engine")
    terminal.wait_for(r"Step: Docker engine", 10)
    terminal.keys("Enter")
    terminal.wait_for(r"Preview changes", 30)
    terminal.keys("C-n")
    terminal.wait_for(r"Apply \(a\)", 90)
    assert "what would change on" in terminal.screen()
    terminal.keys("a")
    # While it runs, the safety window counts down on screen.
    terminal.wait_for(r"⏱ Safety timer: |✓ Confirmed over a new connection", 60)
    shown = terminal.wait_for(r"Snapshot: (\d{8}-\d{6}-[0-9a-f]+)", 300)
    snapshot_id = shown.group(1)
    screen = terminal.screen()
    assert "Confirmed over a new connection in" in screen, screen
    assert "Press Enter to go back to the steps" in screen

    console = host.console()
    daemon_json = console.run("cat /etc/docker/daemon.json")
    assert daemon_json.ok, daemon_json.err
    assert '"userns-remap": "default"' in daemon_json.out
    assert console.run("cat /var/lib/hostwiz/LAST").out.strip() == snapshot_id
    journal = console.run(f"cat /var/lib/hostwiz/snapshots/{snapshot_id}/journal").out
    assert journal.rstrip().endswith("confirmed"), journal

    terminal.keys("Enter")
    terminal.wait_for(r"Docker engine\s+done", 60)
    terminal.keys("Escape")
    assert terminal.exit_status(status_file, 30) == 0
    # The local copy went to the child's own state folder, not the admin's.
    assert list(state.glob(f"hostwiz/snapshots/*/{snapshot_id}"))
    assert os.environ.get("XDG_STATE_HOME") != str(state)
