"""Benchmark: how long ``hostwiz`` takes to show its first screen, and where the time goes.

Prints, measured in this one run (no thresholds are asserted; the goal is printed next to the
numbers):

* time to the start screen of the real ``python -m hostwiz`` in a real terminal (tmux, 80×24):
  from starting the process until the start screen's text is on the terminal (goal <= 0.3 s,
  issue #17);
* the same without a terminal: a fresh process running the app with Textual's ``run_test``,
  from starting the process until the start screen is mounted;
* ``python -X importtime`` for ``import screens.app``: its cumulative time, the part that is
  Textual, and the slowest of the rest (work that could still be deferred).

Each timing is taken from several fresh processes; the median and the best are printed. Nothing
connects anywhere: no host is given, and the start screen is where the timing stops.

Run: ``.venv/bin/python bench/bench_startup.py [RUNS]``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.3
START_TEXT = "Which machine should become"
"""The first words of the start screen."""

HEADLESS = """
import asyncio, sys, time
from screens.app import HostwizApp, default_args
from screens.start import StartScreen

async def main() -> None:
    app = HostwizApp(default_args())
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(5000):  # at most 10 s
            if isinstance(app.screen, StartScreen) and app.screen.is_mounted:
                break
            await asyncio.sleep(0.002)
        shown = time.time()
        await pilot.press("escape")
    print(f"{shown!r}")

asyncio.run(main())
"""


def child_env(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "XDG_STATE_HOME": str(state),
            "TERM": "xterm-256color",
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "",
        }
    )
    return env


def headless_once(state: Path) -> float:
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", HEADLESS],
        cwd=ROOT,
        env=child_env(state),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1]) - started


def tmux_once(state: Path, folder: Path) -> float | None:
    """Seconds until the start screen shows in tmux, or None if it never did (10 s)."""
    socket = folder / f"bench-{secrets.token_hex(3)}.sock"
    session = f"hostwiz-bench-{secrets.token_hex(3)}"
    tmux = ["tmux", "-S", str(socket)]
    command = [
        "env",
        f"XDG_STATE_HOME={state}",
        "TERM=xterm-256color",
        f"PYTHONPATH={ROOT}",
        sys.executable,
        "-m",
        "hostwiz",
    ]
    try:
        started = time.monotonic()
        subprocess.run(
            [*tmux, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
             "-c", str(ROOT), *command],
            check=True,
            timeout=10,
        )  # fmt: skip
        deadline = started + 10
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", session],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            if START_TEXT in screen:
                return time.monotonic() - started
            time.sleep(0.005)
        return None
    finally:
        subprocess.run([*tmux, "send-keys", "-t", session, "Escape"], check=False, timeout=10)
        time.sleep(0.2)
        subprocess.run(
            [*tmux, "kill-session", "-t", session], check=False, timeout=10, capture_output=True
        )
        subprocess.run([*tmux, "kill-server"], check=False, timeout=10, capture_output=True)
        socket.unlink(missing_ok=True)


IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_times(state: Path) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, depth, module) for ``import screens.app`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import screens.app"],
        cwd=ROOT,
        env=child_env(state),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        found = IMPORT_LINE.match(line)
        if found:
            own, total, indent, name = found.groups()
            rows.append((int(own), int(total), len(indent), name))
    return rows


def summary(values: list[float]) -> str:
    median = statistics.median(values)
    return f"median {median:.3f} s, best {min(values):.3f} s ({len(values)} runs)"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="hostwiz-bench-") as temp:
        folder = Path(temp)
        state = folder / "state"
        # One run first, so that every measured run finds the .pyc files written.
        headless_once(state)

        print(f"hostwiz startup (goal: start screen within {GOAL} s)")
        if shutil.which("tmux"):
            shown = [t for t in (tmux_once(state, folder) for _ in range(runs)) if t is not None]
            if shown:
                print(f"  real terminal (tmux 80x24), start -> start screen: {summary(shown)}")
            else:
                print("  real terminal (tmux): the start screen never showed within 10 s")
        else:
            print("  real terminal: tmux is not installed; skipped")
        headless = [headless_once(state) for _ in range(runs)]
        print(f"  headless (run_test), process start -> start screen mounted: {summary(headless)}")

        rows = import_times(state)
        total = {name: cumulative for _, cumulative, _, name in rows}
        app = total.get("screens.app", 0)
        textual = total.get("textual", 0)
        print("python -X importtime, import screens.app:")
        print(f"  screens.app cumulative: {app / 1000:.1f} ms")
        print(f"  of which textual (package import): {textual / 1000:.1f} ms")
        print(f"  all imports in the process (sum of self times): "
              f"{sum(own for own, _, _, _ in rows) / 1000:.1f} ms")  # fmt: skip
        ours = sorted(
            (row for row in rows if not row[3].startswith(("textual", "rich", "_", "encodings"))),
            key=lambda row: row[0],
            reverse=True,
        )[:8]
        print("  slowest other modules (self time):")
        for own, cumulative, _, name in ours:
            print(f"    {own / 1000:7.1f} ms  (cumulative {cumulative / 1000:6.1f} ms)  {name}")


if __name__ == "__main__":
    main()
