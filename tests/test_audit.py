"""The audit on a practice host with real containers and a real dockerd, through the real CLI.

Uses the shared practice host with Docker's defaults (``docker_defaults``): the containers
started here are removed and daemon.json is put back after each test, even when it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probes import http_get, on_console

from wizard.audit import audit, compare
from wizard.lab import LabHost
from wizard.lab.image import import_test_image
from wizard.session import Selection, apply
from wizard.steps import STEPS
from wizard.steps.docker_engine import WAIT_FOR_DOCKER, DockerEngineAnswers
from wizard.transport.ssh import SshTransport

pytestmark = [pytest.mark.lab, pytest.mark.docker]

IMAGE = "hostwiz/busybox:latest"
RISKY = (
    "docker run -d --name audit-risky -v /var/run/docker.sock:/var/run/docker.sock "
    f"--cap-add NET_ADMIN --pid host -p 0.0.0.0:8080:80 {IMAGE} sleep 600"
)
HARDENED = (
    "docker run -d --name audit-hard --user 1000 --cap-drop ALL "
    f"--security-opt no-new-privileges --read-only {IMAGE} sleep 600"
)
REMOVE = "docker rm -f audit-risky audit-hard >/dev/null 2>&1; true"
OPEN_2375 = (
    "mkdir -p /etc/docker && printf '%s\\n' "
    "'{\"hosts\": [\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2375\"]}' "
    "> /etc/docker/daemon.json && /etc/init.d/docker restart >/dev/null 2>&1\n" + WAIT_FOR_DOCKER
)


def hostwiz_audit(host: LabHost, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hostwiz", "audit", "--host", host.name, *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def with_containers(docker_defaults: LabHost) -> Iterator[LabHost]:
    """The shared host running one risky and one hardened container (removed afterwards)."""
    host = docker_defaults
    import_test_image(host)
    try:
        on_console(host, f"{REMOVE}\n{RISKY} >/dev/null && {HARDENED} >/dev/null")
        yield host
    finally:
        on_console(host, REMOVE)


def by_subject(report: dict[str, Any], subject: str) -> set[str]:
    return {f["id"] for f in report["findings"] if f["subject"] == subject}


def test_real_containers_through_the_cli_json_and_exit_code(with_containers: LabHost) -> None:
    result = hostwiz_audit(with_containers, "--json")
    assert result.returncode == 3, result.stderr  # critical and high findings, --fail-on high
    report = json.loads(result.stdout)
    assert report["failed"] and report["fail_on"] == "high"
    assert {
        "container.docker-socket", "container.dangerous-capability", "container.host-pid",
        "container.port-open", "container.root-user",
    } <= by_subject(report, "audit-risky")  # fmt: skip
    assert by_subject(report, "audit-hard") == set()
    rows = {row["name"]: row["cells"] for row in report["containers"]}
    assert rows["audit-hard"]["user"] == {"value": "1000", "risky": False}
    assert rows["audit-hard"]["cap drop"]["value"] == "ALL"
    assert rows["audit-risky"]["ports"] == {"value": "0.0.0.0:8080 -> 80/tcp", "risky": True}
    assert "/var/run/docker.sock" in rows["audit-risky"]["bind mounts"]["value"]
    socket = next(f for f in report["findings"] if f["id"] == "container.docker-socket")
    assert socket["severity"] == "critical" and "root on the host" in socket["meaning"]
    # The same audit gates nothing when asked to fail only on what is not there.
    assert hostwiz_audit(with_containers, "--fail-on", "never").returncode == 0
    text = hostwiz_audit(with_containers, "--fail-on", "critical")
    assert text.returncode == 3
    assert "Container holds the Docker socket  [audit-risky]" in text.stdout


def test_unauthenticated_2375_is_the_critical_finding(docker_defaults: LabHost) -> None:
    host = docker_defaults
    on_console(host, OPEN_2375, timeout=120)
    # The finding is real: the API answers anyone on the network, no certificate asked.
    assert '"ApiVersion"' in http_get(host, host.address, 2375, "/version")
    result = hostwiz_audit(host, "--json", "--fail-on", "critical")
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    (finding,) = [f for f in report["findings"] if f["id"] == "daemon.tcp-no-tls"]
    assert finding["severity"] == "critical" and finding["fix"] == "tls"
    assert "tcp://0.0.0.0:2375" in finding["evidence"]
    assert report["findings"][0]["id"] == "daemon.tcp-no-tls"  # the worst comes first


def test_before_and_after_the_docker_step(docker_defaults: LabHost, lab_ssh_config: Path) -> None:
    """Audit, apply the Docker engine step for real, audit again: the diff names the fixes."""
    with SshTransport.connect(docker_defaults.name, ssh_config=lab_ssh_config) as ssh:
        before = audit(ssh)
        selection = Selection(STEPS["docker"], DockerEngineAnswers())
        result = apply(ssh, [selection], confirm_timeout=60)
        assert result.confirmed, result.message
        after = audit(ssh)
    diff = compare(before, after)
    fixed = {f.id for f in diff.fixed}
    assert {"daemon.no-userns", "daemon.no-new-privileges", "daemon.icc", "daemon.live-restore",
            "daemon.log-limits", "daemon.userland-proxy"} <= fixed  # fmt: skip
    assert not diff.new, diff.new
    assert "daemon.no-userns" not in {f.id for f in after}
