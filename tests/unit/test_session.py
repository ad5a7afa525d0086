"""Plans of several steps compose: a later step plans on top of an earlier one's files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wizard.actions import RunCommand, WriteFile
from wizard.facts import Fact, Facts, file_fact
from wizard.plan import Plan
from wizard.session import Selection, plan_changeset
from wizard.steps.base import Status, StepStatus

CONFIG = "/etc/demo.json"


@dataclass(frozen=True)
class KeyAnswers:
    key: str
    value: int


class SetKeyStep:
    """A minimal step: set one key in a shared JSON file, then restart the service."""

    name = "setkey"
    title = "Set a key"
    explanation = ""
    answers_type = KeyAnswers

    def facts(self, answers: KeyAnswers) -> list[Fact[Any]]:
        return [file_fact(CONFIG)]

    def plan(self, answers: KeyAnswers, facts: Facts) -> Plan:
        state = facts[file_fact(CONFIG)]
        config = json.loads(state.content or b"{}")
        if config.get(answers.key) == answers.value:
            return Plan(self.name)
        config[answers.key] = answers.value
        return Plan(self.name, (WriteFile(CONFIG, json.dumps(config).encode()),
                                RunCommand("service demo restart", key="restart demo")))  # fmt: skip

    def health(self, transport: Any, answers: KeyAnswers, facts: Facts) -> list[str]:
        return []

    def status(self, answers: KeyAnswers, facts: Facts) -> StepStatus:
        return StepStatus(Status.UNKNOWN, "")


def test_later_steps_merge_into_earlier_writes_and_restart_once():
    step = SetKeyStep()
    facts = Facts.from_raw([file_fact(CONFIG)], {f"file:{CONFIG}": (0, "MISSING\n")})
    changeset = plan_changeset(
        "h", [Selection(step, KeyAnswers("a", 1)), Selection(step, KeyAnswers("b", 2))], facts
    )
    writes = [a for a in changeset.actions() if isinstance(a, WriteFile)]
    assert json.loads(writes[-1].content) == {"a": 1, "b": 2}
    restarts = [a for a in changeset.actions() if isinstance(a, RunCommand)]
    assert len(restarts) == 1
    assert list(changeset.actions())[-1] == restarts[0]


def test_the_session_fills_in_the_before_state_of_files_a_step_did_not_list():
    """SetKeyStep lists no before-state: the diff still starts from the file on the host."""
    facts = Facts.from_raw(
        [file_fact(CONFIG)], {f"file:{CONFIG}": (0, "600 root root 0 0\n" + "eyJhIjogMX0=")}
    )
    changeset = plan_changeset("h", [Selection(SetKeyStep(), KeyAnswers("b", 2))], facts)
    before = changeset.plans[0].before_of(CONFIG)
    assert before.exists and before.content == b'{"a": 1}' and before.mode == 0o600


class CommandStep(SetKeyStep):
    """A step that asks for one command (no files)."""

    name = "command"

    def __init__(self, command: RunCommand) -> None:
        self.command = command

    def facts(self, answers: KeyAnswers) -> list[Fact[Any]]:
        return []

    def plan(self, answers: KeyAnswers, facts: Facts) -> Plan:
        return Plan(self.name, (self.command,))


def test_commands_are_merged_by_their_key_not_by_their_text():
    same_key = [RunCommand("restart a", key="restart"), RunCommand("restart b", key="restart")]
    same_text = [RunCommand("echo hi"), RunCommand("echo hi")]
    facts = Facts({}, {})
    merged = plan_changeset(
        "h", [Selection(CommandStep(command), KeyAnswers("k", 0)) for command in same_key], facts
    )
    assert list(merged.actions()) == [same_key[1]]
    kept = plan_changeset(
        "h", [Selection(CommandStep(command), KeyAnswers("k", 0)) for command in same_text], facts
    )
    assert list(kept.actions()) == same_text
