"""Shared by the benches: run hostwiz with Python's bytecode cache, as an installed copy does."""

from __future__ import annotations

import compileall
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use_bytecode_cache() -> None:
    """Run hostwiz as an installed copy runs: with Python's bytecode cache, written now.

    A shell that sets PYTHONDONTWRITEBYTECODE (some CI and agent sandboxes do) would otherwise
    make every hostwiz process compile its ~150 modules again (~70 ms of CPU), which no
    ``pip install``ed hostwiz pays: pip writes the cache at install time."""
    os.environ["PYTHONDONTWRITEBYTECODE"] = ""  # the child processes write and read it
    for package in ("hostwiz", "wizard", "presets", "snapshots", "lab"):
        compileall.compile_dir(ROOT / package, quiet=1)
