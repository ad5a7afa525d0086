"""The small core helpers every step uses: ensure_file and the status derived from a plan."""

from __future__ import annotations

from wizard.actions import FileState, WriteFile, ensure_file
from wizard.errors import PlanConflict
from wizard.plan import Plan
from wizard.steps.base import Status, StepStatus, status_from_plan

PATH = "/etc/demo.conf"


def test_ensure_file_writes_only_what_differs_and_keeps_the_files_own_mode_and_owner():
    absent = FileState(PATH, exists=False)
    assert ensure_file(absent, b"x\n", why="demo") == WriteFile(PATH, b"x\n", 0o644, why="demo")
    mine = FileState(PATH, True, b"x\n", 0o600, "admin", "staff")
    assert ensure_file(mine, b"x\n") is None  # already so: no write
    assert ensure_file(mine, b"y\n") == WriteFile(PATH, b"y\n", 0o600, "admin", "staff")
    assert ensure_file(mine, b"x\n", mode=0o644) == WriteFile(PATH, b"x\n", 0o644, "admin", "staff")


def _refused() -> Plan:
    raise PlanConflict("the host says no", "fix it")


def test_status_from_plan_walks_the_usual_ladder():
    empty, one = Plan("demo"), Plan("demo", (WriteFile(PATH, b""),))
    assert status_from_plan(_refused, done="ok") == StepStatus(Status.UNKNOWN, "the host says no")
    assert status_from_plan(lambda: empty, done="ok", untouched="never") == StepStatus(
        Status.DONE, "ok"
    )
    assert status_from_plan(lambda: one, done="ok", untouched="never") == StepStatus(
        Status.NOT_DONE, "never"
    )
    assert status_from_plan(lambda: one, done="ok", chosen="zones") == StepStatus(
        Status.DRIFTED, "1 change(s) from the chosen zones"
    )
