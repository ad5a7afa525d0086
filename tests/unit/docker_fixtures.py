"""Fixture facts for the Docker engine step, as the host would print them."""

from __future__ import annotations

import base64
import json
from typing import Any

from wizard.facts import Facts
from wizard.steps.docker import DOCKER_ENGINE, DockerEngineAnswers
from wizard.steps.docker.rootless import service_paths


def file_output(content: bytes | None, meta: str = "644 root root") -> tuple[int, str]:
    if content is None:
        return 0, "MISSING\n"
    return 0, f"{meta}\n{base64.b64encode(content).decode()}"


def info_output(**overrides: Any) -> tuple[int, str]:
    data: dict[str, Any] = {
        "ServerVersion": "20.10.24", "Containers": 0, "Images": 0,
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Swarm": {"LocalNodeState": "inactive"},
    }  # fmt: skip
    data.update(overrides)
    return 0, json.dumps(data) + "\n"


def docker_facts(
    answers: DockerEngineAnswers,
    *,
    daemon_json: bytes | None = None,
    subuid: bytes = b"admin:100000:65536\n",
    subgid: bytes = b"admin:100000:65536\n",
    dockremap: bool = False,
    dockerd_args: tuple[str, ...] = ("/usr/sbin/dockerd", "-p", "/var/run/docker.pid"),
    nofile: int = 1048576,
    info: tuple[int, str] | None = None,
    manager: str = "sysv",
    rootless: str = "",
    system_engine: str = "installed\nenabled /etc/rc2.d/S01docker\n",
    extra: dict[str, tuple[int, str]] | None = None,
) -> Facts:
    dockerd = "pid 1\n" + "".join(f"arg {a}\n" for a in dockerd_args) + f"nofile {nofile}\n"
    raw: dict[str, tuple[int, str]] = {
        "file:/etc/docker/daemon.json": file_output(daemon_json),
        "file:/etc/subuid": file_output(subuid),
        "file:/etc/subgid": file_output(subgid),
        "dockerd": (0, dockerd),
        "docker_info": info or info_output(),
        "service_manager": (0, manager + "\n"),
        "docker_system_engine": (0, system_engine),
        "account:dockremap": (0, "dockremap:x:999:999::/nonexistent:/usr/sbin/nologin\ndockremap\n")
        if dockremap
        else (2, ""),
    }
    if rootless:
        user = answers.rootless_user
        raw[f"account:{user}"] = (0, f"{user}:x:1001:1001::/home/{user}:/bin/bash\n{user}\n")
        raw[f"rootless:{user}"] = (0, rootless)
        for path in service_paths(user):
            raw[f"file:{path}"] = (0, "MISSING\n")
    raw.update(extra or {})
    return Facts.from_raw(DOCKER_ENGINE.facts(answers), raw)


ROOTLESS_READY = """newuidmap yes
newgidmap yes
slirp4netns yes
rootlesskit yes
tun yes
tun_mode 666
script /usr/share/docker.io/contrib/dockerd-rootless.sh
idmap_privileged yes
sysctl user/max_user_namespaces 96362
update_rc yes
probe yes
tun_user yes
probe_userns yes
userns yes
"""
