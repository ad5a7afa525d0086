"""Deterministic data for the screen tests: real planner output over fixture fact tables."""

from __future__ import annotations

import base64
import json
from typing import Any

from wizard.facts import Facts
from wizard.host.docker import WAIT_FOR_DOCKER
from wizard.plan import Changeset
from wizard.steps import STEPS
from wizard.steps.docker import DockerEngineAnswers

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
        "docker_system_engine": (
            0,
            "installed\nenabled docker.service\nactive docker.service\n"
            "enabled docker.socket\nactive docker.socket\n",
        ),
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


def _link(name: str, *addresses: str, up: bool = True) -> dict[str, Any]:
    """One link as ``ip -j addr show`` prints it."""
    infos = []
    for text in addresses:
        local, _, prefix = text.partition("/")
        infos.append({"family": "inet6" if ":" in local else "inet", "local": local,
                      "prefixlen": int(prefix)})  # fmt: skip
    flags = ["BROADCAST", "MULTICAST", *(["UP", "LOWER_UP"] if up else [])]
    return {"ifname": name, "flags": flags, "addr_info": infos}


def firewall_raw() -> dict[str, tuple[int, str]]:
    """A small router: eth0 (management, where the admin's SSH comes in), lan, wan, docker0."""
    links = [
        {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": []},
        _link("eth0", "192.0.2.10/24", "2001:db8::10/64"),
        _link("lan", "10.0.0.1/24"),
        _link("wan", "198.51.100.7/24"),
        _link("docker0", "172.17.0.1/16", up=False),
    ]
    return {
        "net_interfaces": (0, json.dumps(links) + "\n"),
        "ssh_path": (
            0,
            "connection 192.0.2.50 51234 192.0.2.10 22\n"
            "route 192.0.2.50 dev eth0 src 192.0.2.10 uid 0 \\    cache \n",
        ),
    }


def firewall_facts() -> Facts:
    """Only the facts the firewall step's question context reads."""
    from wizard.steps.firewall.host import INTERFACES, SSH_PATH

    return Facts.from_raw([INTERFACES, SSH_PATH], firewall_raw())


def firewall_context(answers: Any) -> dict[str, str]:
    from wizard.steps.base import question_context

    return question_context(STEPS["firewall"], answers, firewall_facts())


def firewall_context_for() -> Any:
    """The firewall step's context as a function of the answers (as the app passes it)."""
    from functools import partial

    from wizard.steps.base import question_context

    return partial(question_context, STEPS["firewall"], facts=firewall_facts())
