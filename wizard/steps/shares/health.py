"""After the apply: the share must be what the answers say, and an NFS server must listen."""

from __future__ import annotations

from typing import Any

from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts, gather
from wizard.steps.shares.answers import SharesAnswers
from wizard.steps.shares.facts import nfs_host_fact
from wizard.steps.shares.plan import plan
from wizard.transport.base import Transport


def problems(answers: SharesAnswers, facts: Facts) -> list[str]:
    """What still differs from the answers (empty: healthy), from facts read after apply."""
    if not answers.enabled:
        return []
    try:
        remaining = plan(answers, facts)
    except PlanConflict as error:
        return [error.message]
    found = [f"still to do: {action.describe()}" for action in remaining.actions]
    if not facts[nfs_host_fact(answers.path)].listening:
        found.append("no NFS server listens on TCP port 2049")
    return found


def health(transport: Transport, answers: SharesAnswers, needed: list[Fact[Any]]) -> list[str]:
    if not answers.enabled:
        return []
    return problems(answers, gather(transport, needed))
