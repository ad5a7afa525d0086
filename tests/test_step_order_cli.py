"""The steps are planned in hostwiz's order whatever order the preset and --set give them in:
the firewall, planned after the SSH step, opens the port SSH moves to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[1]


def test_classic_with_firewall_and_a_port_move_plans_ssh_first(lab_host, lab_ssh_config):
    console = lab_host.console()
    before = console.run("md5sum /etc/ssh/sshd_config; iptables-save | grep -c HOSTWIZ").out
    out = subprocess.run(
        [sys.executable, "-m", "hostwiz", "plan", "--host", lab_host.name, "-F",
         str(lab_ssh_config), "--preset", "classic", "--set", "firewall.enabled=true",
         "--set", "ssh.port=2222", "--json"],
        cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=180,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    plans = {plan["step"]: plan for plan in json.loads(out.stdout)["plans"]}
    assert list(plans) == ["ssh", "docker", "firewall"]
    firewall = plans["firewall"]["text"]
    assert "--dport 2222 -j ACCEPT" in firewall
    assert "--dport 22 -j ACCEPT" not in firewall
    assert console.run("md5sum /etc/ssh/sshd_config; iptables-save | grep -c HOSTWIZ").out == before
