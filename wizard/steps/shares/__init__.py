"""Step: folders shared over NFS, with the sticky bit (issue #14, the server side).

The package follows the step layout of docs/architecture.md: ``answers`` (the questions),
``facts`` (commands + pure parsers), ``plan`` (the pure planner), ``health`` (checks after the
apply), ``help`` (the words), plus ``exports`` (rendering /etc/exports.d and ganesha.conf).
It imports no other step.
"""

from __future__ import annotations

from typing import Any

from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts
from wizard.plan import Plan
from wizard.steps.base import Need, Status, StepStatus
from wizard.steps.shares import health as _health
from wizard.steps.shares import help
from wizard.steps.shares.answers import SharesAnswers
from wizard.steps.shares.facts import (
    ACCOUNTS,
    EXPORTS,
    GANESHA,
    NFS_VERSIONS,
    folder_fact,
    nfs_host_fact,
)
from wizard.steps.shares.plan import folder_paths, plan
from wizard.transport.base import Transport


class SharesStep:
    name = "shares"
    title = "NFS shares"
    explanation = help.EXPLANATION
    answers_type = SharesAnswers

    def facts(self, answers: SharesAnswers) -> list[Fact[Any]]:
        if not answers.enabled:
            return []  # off plans nothing and its status needs nothing: no read for it
        return [
            ACCOUNTS, EXPORTS, GANESHA, NFS_VERSIONS, SERVICE_MANAGER, nfs_host_fact(answers.path),
            *(folder_fact(path) for path in folder_paths(answers)),
        ]  # fmt: skip

    def plan(self, answers: SharesAnswers, facts: Facts) -> Plan:
        return plan(answers, facts)

    def needs(self, answers: SharesAnswers, facts: Facts) -> tuple[Need, ...]:
        """nfs from the networks that may mount (the firewall offers it to their zone)."""
        if not answers.enabled or not answers.networks:
            return ()
        return (Need("nfs", answers.networks, f"the shares step exports {answers.path} to it"),)

    def health(self, transport: Transport, answers: SharesAnswers, facts: Facts) -> list[str]:
        return _health.health(transport, answers, self.facts(answers))

    def status(self, answers: SharesAnswers, facts: Facts) -> StepStatus:
        if not answers.enabled:
            return StepStatus(Status.OFF, "not chosen: no shares")
        try:
            remaining = plan(answers, facts)
        except PlanConflict as error:
            return StepStatus(Status.UNKNOWN, error.message)
        if remaining.empty:
            return StepStatus(Status.DONE, f"{answers.path} shared over NFSv4")
        return StepStatus(Status.NOT_DONE, f"{len(remaining.actions)} change(s) to make")


SHARES = SharesStep()

__all__ = ["SHARES", "SharesAnswers", "SharesStep"]
