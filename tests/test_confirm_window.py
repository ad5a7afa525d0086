"""A confirmation window outside 10 to 3600 s is refused before the host is touched.

With 0 s the host's safety timer fired before the first action, the actions then applied, and
nothing ever undid them, while hostwiz said "the host undoes this within 0 s".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.actions import WriteFile
from wizard.errors import InvalidAnswer
from wizard.plan import Changeset, Plan
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def host(make_lab_hosts):
    return make_lab_hosts(1, docker=False)[0]


def test_a_zero_window_changes_nothing_on_the_host(host, lab_ssh_config):
    console = host.console()
    plan = Plan("demo", (WriteFile("/etc/hostwiz-window", b"applied\n"),))
    with (
        SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh,
        pytest.raises(InvalidAnswer, match="outside 10 to 3600 s"),
    ):
        apply_changeset(ssh, Changeset(host.name, (plan,)), confirm_timeout=0)
    assert not console.run("test -e /etc/hostwiz-window").ok
    assert not console.run("test -e /var/lib/hostwiz/snapshots").ok  # no snapshot, no timer
    assert not console.run("pgrep -f 'hostwiz-watchdo[g]'").ok


def test_the_cli_refuses_a_negative_window_and_the_host_keeps_its_sshd_config(host, lab_ssh_config):
    console = host.console()
    before = console.run("cat /etc/ssh/sshd_config.d/*.conf 2>/dev/null; md5sum /etc/ssh/*").out
    out = subprocess.run(
        [sys.executable, "-m", "hostwiz", "apply", "--host", host.name, "-F",
         str(lab_ssh_config), "--preset", "hardened", "--yes", "--confirm-timeout=-5"],
        cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    assert "--confirm-timeout = -5 s is outside 10 to 3600 s" in out.stderr
    assert "Traceback" not in out.stderr
    assert console.run("cat /etc/ssh/sshd_config.d/*.conf 2>/dev/null; md5sum /etc/ssh/*").out == (
        before
    )
    assert not console.run("test -e /var/lib/hostwiz/snapshots").ok
