"""After an apply: does dockerd answer, in the chosen mode?"""

from __future__ import annotations

from wizard.facts import Facts
from wizard.host.docker import DOCKER_INFO
from wizard.steps.docker.answers import DockerEngineAnswers
from wizard.steps.docker.rootless import rootless_health
from wizard.transport.base import Transport


def health(transport: Transport, answers: DockerEngineAnswers, facts: Facts) -> list[str]:
    """Ask the root dockerd through its API (``docker info`` on its socket) whether it runs in
    the chosen mode.

    The docker CLI on the host, in the connection's shell: the Python SDK would cost an
    import (~0.15 s) and an SSH channel of its own (a fork and PAM session of sshd) while the
    confirmation's new connection is being opened, on the apply's critical path.
    """
    if answers.mode == "rootless":
        return rootless_health(transport, answers)
    result = transport.run(DOCKER_INFO.command, timeout=30)
    info = DOCKER_INFO.parse(result.exit_code, result.out)
    if not info.reachable:
        said = (result.err or result.out).strip().splitlines()[-1:] or [
            f"docker info exited with status {result.exit_code}"
        ]
        return [f"dockerd does not answer through its API: {said[0]}"]
    if answers.mode == "userns-remap" and not info.userns:
        return ["dockerd runs, but without user-namespace remapping"]
    if answers.mode == "rootful" and info.userns:
        return ["dockerd still remaps user namespaces"]
    return []
