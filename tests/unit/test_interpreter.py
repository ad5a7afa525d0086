"""The tests run on the Python a newcomer gets: Debian 12's own ``/usr/bin/python3``.

Root's PATH on a development machine may start with a newer interpreter; one such hid a crash
of every apply (``tarfile``'s ``filter=`` arrived in 3.11.4, Debian 12 ships 3.11.2).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def test_setup_builds_the_venv_from_debians_python() -> None:
    setup = (REPO / "scripts" / "setup").read_text()
    assert "SYSTEM_PYTHON=/usr/bin/python3" in setup
    assert '"$SYSTEM_PYTHON" -m venv .venv' in setup
    assert "\n  python3 -m venv" not in setup


def test_the_repos_venv_runs_on_debians_python() -> None:
    venv = REPO / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("not running from the repository's .venv (scripts/test makes one)")
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 on this machine")
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    assert base == os.path.realpath(SYSTEM_PYTHON), (
        f".venv was built with {base}, not Debian's {SYSTEM_PYTHON}: rerun scripts/setup"
    )
