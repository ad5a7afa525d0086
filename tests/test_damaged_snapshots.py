"""A damaged snapshot on the host is reported as damaged, never as a traceback, and the others
are still listed and can still be rolled back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.actions import WriteFile
from wizard.plan import Changeset, Plan
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def host(make_lab_hosts):
    return make_lab_hosts(1, docker=False)[0]


def snap(snapshot_id: str) -> str:
    return f"/var/lib/hostwiz/snapshots/{snapshot_id}"


def hostwiz(host, config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostwiz", *args, "--host", host.name, "-F", str(config)],
        cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_damaged_snapshots_are_named_and_the_others_still_work(host, lab_ssh_config):
    console = host.console()
    assert console.run("echo before > /etc/hostwiz-demo-4").ok  # its snapshot keeps a copy
    ids = []
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        for number in range(5):
            plan = Plan("demo", (WriteFile(f"/etc/hostwiz-demo-{number}", b"changed\n"),))
            result = apply_changeset(ssh, Changeset(host.name, (plan,)), confirm_timeout=10)
            assert result.confirmed and result.snapshot_id
            ids.append(result.snapshot_id)
    good, bad_json, not_object, bad_journal, bad_file_meta = ids
    for damage in (
        f"printf '{{\"id\": ' > {snap(bad_json)}/meta.json",
        f"echo '[]' > {snap(not_object)}/meta.json",
        f"printf '\\377\\376 confirmed\\n' >> {snap(bad_journal)}/journal",
        f"echo 'rw-r--r-- root' > {snap(bad_file_meta)}/files/0.meta",
    ):
        assert console.run(damage).ok, damage

    listed = hostwiz(host, lab_ssh_config, "snapshots")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    for snapshot_id in ids:
        assert snapshot_id in listed.stdout
    assert "DAMAGED: meta.json is not valid JSON" in listed.stdout
    assert "DAMAGED: meta.json is not a JSON object" in listed.stdout
    assert "DAMAGED: its journal is not UTF-8 text" in listed.stdout
    as_json = hostwiz(host, lab_ssh_config, "snapshots", "--json")
    damaged = {item["id"]: item["damaged"] for item in json.loads(as_json.stdout)}
    assert damaged[good] == "" and damaged[bad_json].startswith("meta.json is not valid JSON")

    for snapshot_id, what in (
        (bad_json, "meta.json is not valid JSON"),
        (not_object, "meta.json is not a JSON object"),
        (bad_journal, "its journal is not UTF-8 text"),
        (bad_file_meta, "files/0.meta (about /etc/hostwiz-demo-4) is unreadable"),
    ):
        refused = hostwiz(host, lab_ssh_config, "rollback", "--yes", snapshot_id)
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert f"Damaged snapshot: snapshot {snapshot_id} on" in refused.stderr
        assert what in refused.stderr
        assert f"/var/lib/hostwiz/restore {snapshot_id}" in refused.stderr
    # The latest apply is the one with the damaged files/0.meta: no default past it either.
    latest = hostwiz(host, lab_ssh_config, "rollback", "--yes")
    assert latest.returncode == 1 and "files/0.meta" in latest.stderr
    for number in range(5):  # nothing was put back by any of those
        assert console.run(f"cat /etc/hostwiz-demo-{number}").out == "changed\n"

    recovered = hostwiz(host, lab_ssh_config, "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert "Traceback" not in recovered.stderr
    assert "No interrupted change on the host" in recovered.stdout

    rolled = hostwiz(host, lab_ssh_config, "rollback", "--yes", good)
    assert rolled.returncode == 0, rolled.stderr
    assert not console.run("test -e /etc/hostwiz-demo-0").ok


def test_the_snapshot_list_names_steps_by_their_titles(host, lab_ssh_config):
    """`hostwiz snapshots` shows what the admin saw in the wizard ("SSH hardening"), not the
    step's key ("ssh"); --json keeps the keys for scripts."""
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        plan = Plan("ssh", (WriteFile("/etc/hostwiz-demo-title", b"changed\n"),))
        result = apply_changeset(ssh, Changeset(host.name, (plan,)), confirm_timeout=10)
    assert result.confirmed and result.snapshot_id
    listed = hostwiz(host, lab_ssh_config, "snapshots")
    line = next(line for line in listed.stdout.splitlines() if result.snapshot_id in line)
    assert "SSH hardening" in line, listed.stdout
    as_json = hostwiz(host, lab_ssh_config, "snapshots", "--json")
    steps = {item["id"]: item["steps"] for item in json.loads(as_json.stdout)}
    assert steps[result.snapshot_id] == ["ssh"]
