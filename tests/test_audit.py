"""The audit on a practice host with real containers and a real dockerd, through the real CLI
and the wizard's audit screen (driven with Pilot, offline with fixed findings and for real).

Uses the shared practice host with Docker's defaults (``docker_defaults``): the containers
started here are removed and daemon.json is put back after each test, even when it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from probes import http_get, on_console
from test_screens import Harness, run_async, until, until_done, wait_for
from textual.widgets import DataTable, Static

from lab import LabHost
from lab.image import import_test_image
from presets import apply_overrides, load_preset
from screens.app import HostwizApp, default_args
from screens.apply import ApplyScreen
from screens.audit import AuditScreen
from screens.preview import PreviewScreen
from screens.step_form import StepScreen
from screens.step_list import StepListScreen
from snapshots.rollback import rollback_plan
from wizard.audit import Finding, Severity, worst_first
from wizard.host.docker import WAIT_FOR_DOCKER
from wizard.plan import Changeset
from wizard.session import Selection, apply
from wizard.steps import STEPS
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport


def on_practice_host(test: Any) -> Any:
    return pytest.mark.lab(pytest.mark.docker(test))


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
REMOVE_STOPPED = "docker rm -f audit-stopped >/dev/null 2>&1; true"
OPEN_2375 = (
    "mkdir -p /etc/docker && printf '%s\\n' "
    '\'{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}\' '
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


@on_practice_host
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


@on_practice_host
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


@on_practice_host
def test_apply_with_audit_says_what_the_change_fixed(docker_defaults: LabHost) -> None:
    """``hostwiz apply --audit``: audit, apply the classic preset (the Docker engine step) for
    real, audit again; the output names the findings the change fixed and nothing new."""
    host = docker_defaults
    import_test_image(host)
    on_console(host, f"{REMOVE}\ndocker run -d --restart always --name audit-old {IMAGE} sleep 600")
    try:
        applied_with_audit(host)
    finally:
        on_console(host, "docker rm -f audit-old >/dev/null 2>&1; true")


def applied_with_audit(docker_defaults: LabHost) -> None:
    command = [sys.executable, "-m", "hostwiz", "apply", "--host", docker_defaults.name,
               "--preset", "classic", "--yes", "--audit"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    after = result.stdout.split("Audit, before -> after:", 1)[1]
    fixed = {line.split("] ", 1)[1] for line in after.splitlines() if "fixed: [" in line}
    assert {
        "Containers may gain privileges by default",
        "Containers on the default bridge can all talk to each other",
        "Containers stop whenever dockerd restarts",
        "Container logs grow without limit",
        "The userland proxy is on",
    } == fixed, after
    assert "new:" not in after
    assert '"no-new-privileges": true' in on_console(docker_defaults, "cat /etc/docker/daemon.json")
    # The daemon's new default applies to containers created from now on; the kernel says the
    # older container's process still may gain privileges, and the audit still says so.
    pid = on_console(docker_defaults, "docker inspect -f '{{.State.Pid}}' audit-old").strip()
    status = on_console(docker_defaults, f"cat /proc/{pid}/status")
    assert "NoNewPrivs:\t0" in status
    report = json.loads(hostwiz_audit(docker_defaults, "--json").stdout)
    assert "container.no-new-privileges" in by_subject(report, "audit-old")


@on_practice_host
def test_apply_with_audit_does_not_call_a_stopped_containers_findings_fixed(
    docker_defaults: LabHost,
) -> None:
    """The Docker engine step restarts dockerd, which (live-restore still off) stops the
    containers as it shuts down: this one at once (stop signal KILL; ``sleep`` as PID 1 would
    ignore TERM until dockerd itself is killed), and without a restart policy it stays
    stopped. The audit after the change does not see it: its findings were not checked again,
    so they are shown as "not running now", not as fixed (they used to be listed as fixed)."""
    host = docker_defaults
    import_test_image(host)
    run = f"docker run -d --stop-signal KILL --name audit-stopped {IMAGE} sleep 600 >/dev/null"
    on_console(host, f"{REMOVE_STOPPED}\n{run}")
    try:
        command = [sys.executable, "-m", "hostwiz", "apply", "--host", host.name,
                   "--preset", "classic", "--yes", "--audit"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        after = result.stdout.split("Audit, before -> after:", 1)[1]
        shown = {
            (kind, line.split("] ", 1)[1])
            for line in after.splitlines()
            for kind in ("fixed", "not running now")
            if f"{kind}: [" in line
        }
        assert {
            ("not running now", "Container runs as root (audit-stopped)"),
            ("not running now", "Container keeps Docker's default capabilities (audit-stopped)"),
            ("not running now", "Container may gain privileges through setuid (audit-stopped)"),
        } == {(kind, label) for kind, label in shown if "audit-stopped" in label}, after
        assert "audit-stopped did not run when the host was audited again" in after
        # It really is stopped (by dockerd's restart), not changed: nothing fixed its findings.
        status = "docker inspect -f '{{.State.Status}}' audit-stopped"
        assert on_console(host, status).strip() == "exited"
    finally:
        on_console(host, REMOVE_STOPPED)


ADMIN_ENGINE = "admin's rootless engine"


@on_practice_host
def test_rootless_mode_is_audited_as_the_engine_that_runs(
    docker_defaults: LabHost, lab_ssh_config: Any
) -> None:
    """The docker step's rootless mode for admin (the system engine stopped and disabled),
    then ``hostwiz audit``: the rootless engine is the one audited, the stopped system engine
    is not "Docker could not be asked", and nothing asks for userns-remap. (No container can
    start under a rootless engine in this lab: runc cannot mount cgroup v1 "systemd" into it;
    the container rules on a rootless engine are unit tested.)"""
    host = docker_defaults
    console = host.console()
    preset = apply_overrides(
        load_preset("hardened"), ["docker.mode=rootless", "docker.rootless_user=admin"]
    )
    uid = console.run("id -u admin").out.strip()
    transport = SshTransport.connect(host.name, ssh_config=lab_ssh_config)
    try:
        result = apply(transport, [Selection(STEPS["docker"], preset.answers["docker"])])
        try:
            assert result.confirmed
            report = json.loads(hostwiz_audit(host, "--json", "--fail-on", "never").stdout)
            found = {f["id"] for f in report["findings"]}
            assert "daemon.not-running" not in found, report["findings"]
            assert "daemon.no-userns" not in found
            (engine,) = [f for f in report["findings"] if f["id"] == "daemon.rootless"]
            assert engine["subject"] == ADMIN_ENGINE and engine["engine"] == ADMIN_ENGINE
            assert engine["severity"] == "info"
            assert f"/run/user/{uid}/docker.sock" in engine["evidence"]
            assert "/etc/docker/rootless-admin.json" in engine["evidence"]
            assert "the system (root) engine is off and disabled" in engine["evidence"]
            # the step hardened the engine's own settings: nothing else to say about it
            assert by_subject(report, ADMIN_ENGINE) == {"daemon.rootless"}
            system, admin = report["engines"]
            assert not system["answers"] and not system["running"]
            assert system["enabled_at_boot"] == []
            assert admin["rootless"] and admin["user"] == "admin" and admin["containers"] == 0
            # its settings are read from the file its dockerd really runs with
            config = "/etc/docker/rootless-admin.json"
            saved = console.run(f"base64 -w0 {config}").out.strip()
            assert console.run(f'sed -i \'s/"icc": false/"icc": true/\' {config}').ok
            try:
                again = json.loads(hostwiz_audit(host, "--json", "--fail-on", "never").stdout)
            finally:
                assert console.run(f"echo {saved} | base64 -d > {config}").ok
            (icc,) = [f for f in again["findings"] if f["id"] == "daemon.icc"]
            assert icc["subject"] == ADMIN_ENGINE
            assert icc["evidence"].startswith(f"{config}: icc: true")
        finally:
            rollback = rollback_plan(transport, result.snapshot_id)
            apply_changeset(transport, Changeset(transport.host_label, (rollback,)),
                            reason="rollback")  # fmt: skip
    finally:
        transport.close()
    assert not console.run(f"test -S /run/user/{uid}/docker.sock").ok
    after = json.loads(hostwiz_audit(host, "--json", "--fail-on", "never").stdout)
    assert "daemon.rootless" not in {f["id"] for f in after["findings"]}
    assert [e["name"] for e in after["engines"]] == ["system"]


# ---- the audit screen ----------------------------------------------------------------------


def sample_findings() -> list[Finding]:
    return worst_first([
        Finding("ssh.password-login", Severity.MEDIUM, "SSH accepts passwords",
                "Passwords can be guessed.", "sshd -T: passwordauthentication yes", "ssh"),
        Finding("container.docker-socket", Severity.CRITICAL, "Container holds the Docker socket",
                "Root on the host.", "/var/run/docker.sock -> /var/run/docker.sock (rw)",
                manual="Recreate it without the socket.", subject="risky"),
        Finding("host.forwarding", Severity.INFO, "IP forwarding is on", "Docker needs it.",
                "net.ipv4.ip_forward = 1"),
    ])  # fmt: skip


def audit_screen() -> AuditScreen:
    return AuditScreen("web1", sample_findings(), titles={"ssh": "SSH hardening"})


def cursor_to(screen: AuditScreen, rule: str, subject: str = "") -> None:
    table = screen.query_one("#finding-table", DataTable)
    table.move_cursor(row=table.get_row_index(f"{rule}|{subject}"))


@run_async
async def test_audit_screen_explains_groups_and_opens_the_fixing_step() -> None:
    app = Harness(audit_screen)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        table = screen.query_one("#finding-table", DataTable)
        severities = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert severities == ["critical", "medium", "info"]  # grouped, worst first
        detail = str(screen.query_one("#finding-detail", Static).content)
        assert "Found: /var/run/docker.sock" in detail and "Why it matters: Root" in detail
        assert "No hostwiz step fixes this. By hand: Recreate it" in detail
        await pilot.press("enter")  # no step fixes it: the screen stays and says so
        await pilot.pause()
        assert app.screen is screen and app.results == []
        cursor_to(screen, "ssh.password-login")
        await pilot.pause()
        detail = str(screen.query_one("#finding-detail", Static).content)
        assert "Enter opens the SSH hardening step" in detail
        assert str(table.get_row_at(1)[1]) == "SSH hardening"
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == ["step:ssh"]


@run_async
async def test_audit_screen_escape_and_no_findings() -> None:
    app = Harness(lambda: AuditScreen("web1", []))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        detail = str(app.screen.query_one("#finding-detail", Static).content)
        assert "No findings" in detail
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


@on_practice_host
@run_async
async def test_wizard_audit_opens_the_step_and_shows_what_it_fixed(
    docker_defaults: LabHost,
) -> None:
    """Step list → a → audit → Enter on "Container root is host root" → the Docker engine
    step → preview → apply → back on the step list, which says what the change fixed."""
    app = HostwizApp(default_args(host=docker_defaults.name))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, StepListScreen)
        await pilot.press("a")
        screen = await wait_for(pilot, AuditScreen)
        assert "daemon.no-userns" in {f.id for f in screen.findings}
        # The table is filled once the screen is mounted: wait for the row, not only the data.
        table = screen.query_one("#finding-table", DataTable)
        await until(pilot, lambda: "daemon.no-userns|" in table.rows)
        cursor_to(screen, "daemon.no-userns")
        await pilot.pause()
        await pilot.press("enter")
        step = await wait_for(pilot, StepScreen)
        assert step.step.name == "docker"
        await pilot.press("ctrl+n")
        await wait_for(pilot, PreviewScreen)
        await pilot.press("a")
        applying = await wait_for(pilot, ApplyScreen)
        await until_done(pilot, applying)
        assert applying.result is not None and applying.result.confirmed, applying.result
        await pilot.press("enter")
        steps = await wait_for(pilot, StepListScreen)
        assert "fixed: [medium] Container root is host root" in steps.note
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0
