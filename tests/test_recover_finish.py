"""``hostwiz recover --finish`` says "Kept" only when the host really marked the change confirmed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.probes import wait_for

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]
SNAP = "/var/lib/hostwiz/snapshots/$(cat /var/lib/hostwiz/LAST)"

# hostwiz is killed mid-change; the undo of the interrupted action is slow, so the host's
# safety timer is caught in the middle of putting the snapshot back. The plan calls itself the
# TLS step, so that the snapshot records that step (its local side is what a rollback names).
KILLED_APPLY = """
import sys
SLOW_UNDO = "if [ -e /tmp/slow-undo ]; then sleep 300; fi"
from pathlib import Path
from wizard.actions import RunCommand, WriteFile
from wizard.plan import Changeset, Plan
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport
ssh = SshTransport.connect(sys.argv[1], ssh_config=Path(sys.argv[2]))
plan = Plan("tls", (WriteFile("/etc/hostwiz-finish", b"x\\n"),
                     RunCommand("sleep 60", why="a slow action", timeout=6, undo=SLOW_UNDO)))
apply_changeset(ssh, Changeset(sys.argv[1], (plan,)), confirm_timeout=10)
"""


@pytest.fixture
def host(make_lab_hosts):
    return make_lab_hosts(1, docker=False)[0]


def cut_off_mid_restore(host, lab_ssh_config) -> None:
    """An apply killed mid-change, then the host's safety timer killed while it puts the
    snapshot back: an interrupted change that no timer will finish."""
    console = host.console()
    assert console.run("touch /tmp/slow-undo").ok  # the practice host's own /tmp
    proc = subprocess.Popen([sys.executable, "-c", KILLED_APPLY, host.name, str(lab_ssh_config)],
                            cwd=ROOT, env=os.environ.copy())  # fmt: skip
    try:
        assert wait_for(console, f"grep -q ' start 1$' {SNAP}/journal 2>/dev/null", 30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The deadline (action limit + window) passes: the host starts putting the snapshot back,
    # and is cut off in the middle (as by a power loss): the timer and its restore are killed.
    assert wait_for(console, f"grep -q ' reverting' {SNAP}/journal", 6 + 10 + 15)
    pid = console.run(f"cat {SNAP}/watchdog.pid").out.strip()
    assert pid.isdigit(), pid
    assert console.run(f"/bin/kill -KILL -- -{pid} || pkill -KILL -g {pid}").ok  # its group
    assert wait_for(console, f"! pgrep -g {pid} >/dev/null", 10)


def test_finish_of_a_change_the_host_was_putting_back_is_not_reported_as_kept(host, lab_ssh_config):
    console = host.console()
    cut_off_mid_restore(host, lab_ssh_config)
    out = subprocess.run(
        [sys.executable, "-m", "hostwiz", "recover", "--host", host.name, "-F",
         str(lab_ssh_config), "--finish"],
        cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=120,
    )  # fmt: skip
    snapshot = console.run("cat /var/lib/hostwiz/LAST").out.strip()
    assert f"Interrupted: snapshot {snapshot}" in out.stdout
    assert "Kept" not in out.stdout
    assert f"NOT kept: snapshot {snapshot} is not marked confirmed" in out.stdout
    assert f"hostwiz recover --host {host.name} --rollback" in out.stdout
    assert out.returncode == 1, out.stderr
    assert " confirmed" not in console.run(f"cat {SNAP}/journal").out


def test_recover_rollback_names_what_the_rolled_back_steps_left_on_this_machine(
    host, lab_ssh_config, tmp_path
):
    """The recovery's rollback reads the interrupted snapshot's steps from the host: a TLS
    change put back leaves this machine's docker context pointing at a closed port."""
    console = host.console()
    cut_off_mid_restore(host, lab_ssh_config)
    assert console.run("rm /tmp/slow-undo").ok  # the recovery's own undo is quick
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    made = subprocess.run(["docker", "context", "create", host.name, "--docker",
                           "host=tcp://192.0.2.1:2376"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    out = subprocess.run(
        [sys.executable, "-m", "hostwiz", "recover", "--host", host.name, "-F",
         str(lab_ssh_config), "--rollback"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert not console.run("test -e /etc/hostwiz-finish").ok  # really put back
    assert f"your docker context {host.name!r} still points" in out.stdout
    assert f"`docker context rm {host.name}`" in out.stdout
