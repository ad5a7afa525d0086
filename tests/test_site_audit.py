"""``hostwiz audit --site FILE`` (and repeated ``--host``): every host of a site audited at
once, one round trip each, reported grouped by host, as JSON for scripts and with an exit code
for CI gates; a host that cannot be reached is reported, and the others still are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

KEYS_ONLY = "/etc/ssh/sshd_config.d/00-audit-test.conf"


@pytest.mark.lab
def test_a_two_host_site_is_audited_grouped_by_host_with_an_exit_code_for_ci(
    make_lab_hosts: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hostwiz.cli import main

    first, second = make_lab_hosts(2, docker=False)
    # Only the first host logs in with keys alone: its report lacks what the second has.
    assert first.console().run(f"echo 'PasswordAuthentication no' > {KEYS_ONLY}").ok
    path = tmp_path / "pair.toml"
    path.write_text(
        f'name = "pair"\n[hosts.web]\ntarget = "{first.name}"\nroles = ["web"]\n'
        f'[hosts.db]\ntarget = "{second.name}"\n'
    )

    assert main(["audit", "--site", str(path), "--json"]) == 3  # no firewall: high, both
    report = json.loads(capsys.readouterr().out)
    assert report["site"] == "pair" and report["failed"] and report["unaudited"] == []
    web, db = report["hosts"]
    assert (web["name"], web["target"], web["roles"]) == ("web", first.name, ["web"])
    assert (db["name"], db["target"]) == ("db", second.name)
    ids = {host["name"]: {f["id"] for f in host["findings"]} for host in report["hosts"]}
    assert "ssh.password-login" in ids["db"] and "ssh.password-login" not in ids["web"]
    assert "firewall.none" in ids["web"] & ids["db"]
    assert report["counts"]["high"] == web["counts"]["high"] + db["counts"]["high"]

    assert main(["audit", "--site", str(path), "--fail-on", "critical"]) == 0
    text = capsys.readouterr().out
    assert text.index(f"=== web [web] ({first.name}) ===") < text.index(f"=== db ({second.name})")
    assert "SSH accepts passwords" in text.split("=== db")[1]
    assert "SSH accepts passwords" not in text.split("=== db")[0]

    # Repeated --host is a site too; a host nobody answers on is reported, the others still
    # are, and the audit fails (exit 1): a CI gate never passes on a host it did not see.
    away = "nobody@127.0.0.1:1"
    status = main(["audit", "--host", first.name, "--host", away, "--json", "--fail-on", "never"])
    assert status == 1
    report = json.loads(capsys.readouterr().out)
    assert report["unaudited"] == [away]
    assert report["hosts"][0]["findings"] and "refused" in report["hosts"][1]["error"]["message"]
