"""The registry of steps, in the order the wizard walks them."""

from __future__ import annotations

from typing import Any

from wizard.steps.base import Status, Step, StepStatus
from wizard.steps.docker import DOCKER_ENGINE
from wizard.steps.firewall import FIREWALL
from wizard.steps.proxy import PROXY
from wizard.steps.shares import SHARES
from wizard.steps.ssh import SSH_HARDENING
from wizard.steps.swarm import SWARM
from wizard.steps.tls import DOCKER_TLS

STEPS: dict[str, Step[Any]] = {
    step.name: step
    for step in (SSH_HARDENING, DOCKER_ENGINE, DOCKER_TLS, FIREWALL, SHARES, PROXY, SWARM)
}


def step_title(name: str) -> str:
    """The title of the step called ``name`` (as a snapshot records its steps), for a front
    end to show; a name that is no step's (a rollback's "rollback ID") as it is."""
    step = STEPS.get(name)
    return step.title if step is not None else name


__all__ = ["STEPS", "Status", "Step", "StepStatus", "step_title"]
