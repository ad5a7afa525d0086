"""What the step list and the snapshots list say about a step's history: "drifted" only for a
step hostwiz applied, and a rolled-back change shown as rolled back."""

from __future__ import annotations

import base64

from snapshots.store import SnapshotInfo, applied_steps, shown_states, state_words
from wizard.facts import Facts
from wizard.steps.base import APPLIED_STEPS, Status, StepStatus, settled_status


def snapshot(snapshot_id: str, steps: tuple[str, ...], state: str = "confirmed") -> SnapshotInfo:
    reason = "rollback" if steps and steps[0].startswith("rollback ") else "apply"
    return SnapshotInfo(snapshot_id, "", steps, (), (), state, reason)


APPLIED = snapshot("20240501-100000-aa11", ("ssh", "docker"))
ROLLED_BACK = snapshot("20240502-100000-bb22", ("rollback 20240501-100000-aa11",))
UNDONE_ROLLBACK = snapshot("20240503-100000-cc33", ("rollback 20240502-100000-bb22",))


def test_a_change_a_confirmed_rollback_put_back_shows_as_rolled_back() -> None:
    states = shown_states([APPLIED, ROLLED_BACK])
    assert states[APPLIED.id] == "rolled back"
    assert states[ROLLED_BACK.id] == "confirmed"
    # A rollback that did not go through (its own journal says reverted) put nothing back.
    failed = snapshot(ROLLED_BACK.id, ROLLED_BACK.steps, "reverted (confirm timeout)")
    assert shown_states([APPLIED, failed])[APPLIED.id] == "confirmed"
    # A rollback that was itself rolled back: the first change is back in place.
    states = shown_states([APPLIED, ROLLED_BACK, UNDONE_ROLLBACK])
    assert states[ROLLED_BACK.id] == "rolled back"
    assert states[APPLIED.id] == "confirmed"


def test_applied_steps_are_those_of_confirmed_changes_not_rolled_back() -> None:
    assert applied_steps([APPLIED]) == {"ssh", "docker"}
    assert applied_steps([APPLIED, ROLLED_BACK]) == frozenset()
    assert applied_steps([snapshot(APPLIED.id, ("ssh",), "done 2")]) == frozenset()


def facts_with(applied: frozenset[str]) -> Facts:
    return Facts({APPLIED_STEPS.name: applied}, {})


def test_drifted_needs_the_step_applied_by_hostwiz() -> None:
    drifted = StepStatus(Status.DRIFTED, "2 change(s) from the chosen settings")
    never = settled_status("ssh", drifted, facts_with(frozenset()))
    assert never == StepStatus(
        Status.NOT_DONE, "never applied by hostwiz: 2 change(s) from the chosen settings"
    )
    assert settled_status("ssh", drifted, facts_with(frozenset({"ssh"}))) == drifted
    done = StepStatus(Status.DONE, "keys only, hardened")
    assert settled_status("ssh", done, facts_with(frozenset())) == done
    assert settled_status("ssh", drifted, Facts({}, {})) == drifted  # not read: as it was


def test_the_applied_steps_fact_parses_the_listing() -> None:
    meta = base64.b64encode(
        b'{"id": "20240501-100000-aa11", "steps": ["ssh"], "reason": "apply"}'
    ).decode()
    journal = "MTcxNDU1ODUwMCBjb25maXJtZWQK"  # "1714558500 confirmed\n"
    line = f"snapshot {meta} {journal} 20240501-100000-aa11"
    assert APPLIED_STEPS.parse(0, line + "\n") == {"ssh"}
    assert APPLIED_STEPS.parse(0, "") == frozenset()


def test_a_snapshots_state_is_said_in_words_not_journal_words() -> None:
    assert state_words("done 1") == "interrupted after step 2"
    assert state_words("done 0", ("write a", "reload b")) == "interrupted after step 1 of 2"
    assert state_words("start 0") == "interrupted in step 1"
    assert state_words("armed 60s") == "interrupted before its first step"
    assert state_words("reverted (timeout)") == "put back (timeout)"
    assert state_words("reverting (timeout)") == "being put back (timeout), not finished"
    assert state_words("confirmed") == "confirmed"
    assert state_words("rolled back") == "rolled back"
