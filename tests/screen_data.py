"""Deterministic data for the screen tests: real planner output over fixture fact tables."""

from __future__ import annotations

import base64
import json
from typing import Any

from wizard.facts import Facts
from wizard.plan import Changeset
from wizard.steps import STEPS
from wizard.steps.docker_engine import WAIT_FOR_DOCKER, DockerEngineAnswers

HOST = "web1"


def _file(content: bytes, meta: str = "644 root root") -> tuple[int, str]:
    return 0, f"{meta}\n{base64.b64encode(content).decode()}"


def docker_raw(**changes: tuple[int, str]) -> dict[str, tuple[int, str]]:
    """What a Debian VM with docker.io freshly installed (2 containers, 3 images) answers."""
    info = {
        "ServerVersion": "24.0.7",
        "Containers": 2,
        "Images": 3,
        "SecurityOptions": ["name=apparmor", "name=seccomp,profile=builtin"],
        "Swarm": {"LocalNodeState": "inactive"},
    }
    raw = {
        "file:/etc/docker/daemon.json": (0, "MISSING\n"),
        "dockerd": (0, "pid 812\narg /usr/sbin/dockerd\narg -H\narg fd://\nnofile 1048576\n"),
        "docker_info": (0, json.dumps(info) + "\n"),
        "service_manager": (0, "systemd\n"),
        "file:/etc/subuid": _file(b"admin:100000:65536\n"),
        "file:/etc/subgid": _file(b"admin:100000:65536\n"),
        "account:dockremap": (2, ""),
    }
    raw.update(changes)
    return raw


def docker_facts(answers: Any = None, **changes: tuple[int, str]) -> Facts:
    step = STEPS["docker"]
    answers = answers or DockerEngineAnswers()
    return Facts.from_raw(step.facts(answers), docker_raw(**changes))


def docker_changeset(answers: Any = None) -> Changeset:
    step = STEPS["docker"]
    answers = answers or DockerEngineAnswers()
    return Changeset(HOST, (step.plan(answers, docker_facts(answers)),))


RESET_DOCKER = (
    "rm -f /etc/docker/daemon.json; userdel dockremap 2>/dev/null; groupdel dockremap "
    "2>/dev/null; sed -i '/^dockremap:/d' /etc/subuid /etc/subgid; "
    "/etc/init.d/docker restart >/dev/null 2>&1\n" + WAIT_FOR_DOCKER
)
"""Puts a practice host back to Docker's defaults (other tests on the shared host expect them)."""
