"""Step: the Docker engine's mode and a hardened daemon.json.

Modes:

* ``userns-remap`` (rootful, recommended for servers): root in a container maps to an unprivileged
  range of ``dockremap`` on the host, so a container escape does not give host root.
* ``rootless``: dockerd itself runs as an ordinary user; nothing Docker does runs as host root.
* ``rootful``: the classic mode; containers' root is host root (hardened settings still apply).
"""

from __future__ import annotations

from typing import Any

from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact
from wizard.host.docker import DAEMON_JSON, DOCKER_INFO, DOCKERD
from wizard.host.subids import SUBGID, SUBUID
from wizard.plan import Plan
from wizard.steps.base import StepStatus, status_from_plan
from wizard.steps.docker import health
from wizard.steps.docker.answers import REMAP_USER, DockerEngineAnswers
from wizard.steps.docker.facts import SYSTEM_ENGINE, account_fact, rootless_fact
from wizard.steps.docker.plan import plan_rootful
from wizard.steps.docker.rootless import plan_rootless, service_paths
from wizard.transport.base import Transport


class DockerEngineStep:
    name = "docker"
    title = "Docker engine"
    explanation = (
        "Chooses how the Docker engine isolates containers from the host and writes a hardened "
        "/etc/docker/daemon.json. By default a process that breaks out of a container is root on "
        "the host; user-namespace remapping or rootless mode removes that. The hardened settings "
        "stop containers on the default bridge from talking to each other, rotate logs so a noisy "
        "container cannot fill the disk, forbid privilege gain through setuid binaries, and keep "
        "containers running across daemon restarts. Skipping this leaves Docker's defaults, "
        "which favour convenience over safety."
    )
    answers_type = DockerEngineAnswers

    def facts(self, answers: DockerEngineAnswers) -> list[Fact[Any]]:
        facts: list[Fact[Any]] = [
            DAEMON_JSON, DOCKERD, DOCKER_INFO, SERVICE_MANAGER, SUBUID, SUBGID,
            account_fact(REMAP_USER), SYSTEM_ENGINE,
        ]  # fmt: skip
        if answers.mode == "rootless" and answers.rootless_user:
            user = answers.rootless_user
            facts += [account_fact(user), rootless_fact(user)]
            facts += [file_fact(path) for path in service_paths(user)]
        return facts

    def plan(self, answers: DockerEngineAnswers, facts: Facts) -> Plan:
        if answers.mode == "rootless":
            return plan_rootless(self.name, answers, facts)
        return plan_rootful(self.name, answers, facts)

    def health(self, transport: Transport, answers: DockerEngineAnswers, facts: Facts) -> list[str]:
        return health.health(transport, answers, facts)

    def status(self, answers: DockerEngineAnswers, facts: Facts) -> StepStatus:
        untouched = not facts[DAEMON_JSON].exists and not facts[DOCKER_INFO].userns
        return status_from_plan(
            lambda: self.plan(answers, facts),
            done=f"{answers.mode}, hardened daemon.json in place",
            untouched="Docker runs with its defaults" if untouched else None,
        )


DOCKER_ENGINE = DockerEngineStep()
