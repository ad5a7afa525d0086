"""After an apply: does dockerd answer, in the chosen mode?"""

from __future__ import annotations

from wizard.facts import Facts
from wizard.host.docker import ROOT_SOCKET
from wizard.steps.docker.answers import DockerEngineAnswers
from wizard.steps.docker.rootless import rootless_health
from wizard.transport.base import Transport


def health(transport: Transport, answers: DockerEngineAnswers, facts: Facts) -> list[str]:
    if answers.mode == "rootless":
                return rootless_health(transport, answers)
    from wizard.docker_api import docker_client  # the SDK is only needed after an apply

    try:
        client = docker_client(transport, socket_path=ROOT_SOCKET)
        info = client.info()
        client.close()
    except Exception as error:  # the SDK raises many kinds; all mean "not answering"
        return [f"dockerd does not answer through its API: {error}"]
    options = info.get("SecurityOptions") or []
    has_userns = any(str(opt).startswith("name=userns") for opt in options)
    if answers.mode == "userns-remap" and not has_userns:
        return ["dockerd runs, but without user-namespace remapping"]
    if answers.mode == "rootful" and has_userns:
        return ["dockerd still remaps user namespaces"]
    return []
