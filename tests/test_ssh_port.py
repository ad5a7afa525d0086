"""Moving SSH to another port on practice hosts, and finding it again: all real logins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lab import lab_paths
from presets import apply_overrides, load_preset
from snapshots.local_journal import last_transaction
from snapshots.rollback import rollback_plan
from tests.probes import wait_for
from wizard.errors import ApplyFailed, ConnectionFailed, HostKeyChanged, PlanConflict
from wizard.plan import Changeset
from wizard.session import Selection, apply, apply_planned, preview
from wizard.steps import STEPS
from wizard.steps.firewall import FIREWALL
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.steps.ssh.port import parse_listeners
from wizard.transaction import apply_changeset
from wizard.transport.known_hosts import KnownHosts
from wizard.transport.local import LocalTransport
from wizard.transport.ports import remember_port, remembered_port
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]
JOURNAL = "/var/lib/hostwiz/snapshots/$(cat /var/lib/hostwiz/LAST)/journal"
SNAPSHOTS, LAST = "/var/lib/hostwiz/snapshots", "/var/lib/hostwiz/LAST"


def ssh_only(*overrides: str) -> list[Selection]:
    preset = apply_overrides(load_preset("hardened"), list(overrides))
    return [Selection(STEPS["ssh"], preset.answers["ssh"])]


def listeners(console: LocalTransport) -> dict[int, tuple[str, ...]]:
    return parse_listeners(0, console.run("ss -Hltnp").out)


def connect(host, config: Path, **options) -> SshTransport:
    return SshTransport.connect(host.name, ssh_config=config, connect_timeout=4, **options)


def recover(
    host, config: Path, *extra: str, home: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostwiz", "recover", "--host", host.name, "-F", str(config),
         *extra],
        cwd=ROOT, capture_output=True, text=True, input=stdin, timeout=180,
        env={**os.environ, "HOME": str(home)},  # no keys of this machine's own in the search
    )  # fmt: skip


@pytest.fixture
def host(make_lab_hosts):
    return make_lab_hosts(1, docker=False)[0]


def test_port_change_answers_on_the_new_port_only_and_rolls_back(host, lab_ssh_config):
    console = host.console()
    with connect(host, lab_ssh_config) as ssh:
        result = apply(ssh, ssh_only("ssh.port=2222"))
    assert result.confirmed and result.ssh_port == 2222
    assert f"-p 2222 {host.name}" in result.message
    ports = listeners(console)
    assert ports.get(2222) == ("sshd",) and 22 not in ports
    with pytest.raises(ConnectionFailed, match="refused"):
        SshTransport.connect(f"{host.name}:22", ssh_config=lab_ssh_config, connect_timeout=4)
    # known_hosts: the new port is on record with the very key trusted for port 22.
    known = KnownHosts([lab_paths().known_hosts])
    trusted = {key.blob for key in known.keys_for(host.address, 22)}
    moved = known.keys_for(host.address, 2222)
    assert moved and {key.blob for key in moved} <= trusted
    # hostwiz remembers the port: the lab's ssh_config (no Port) keeps working by name.
    assert remembered_port(host.name) == 2222
    with connect(host, lab_ssh_config) as again:
        assert again.port == 2222
        back = apply_changeset(
            again,
            Changeset(host.name, (rollback_plan(again, result.snapshot_id),)),
            reason="rollback",
        )
    assert back.confirmed and back.ssh_port == 22  # confirmed over the old port again
    assert remembered_port(host.name) is None
    assert 2222 not in listeners(console) and listeners(console).get(22) == ("sshd",)
    connect(host, lab_ssh_config).close()


def test_main_file_port_line_is_commented_out_so_sshd_listens_on_one_port(host, lab_ssh_config):
    console = host.console()
    assert console.run("sed -i 's/^#Port 22$/Port 22/' /etc/ssh/sshd_config").ok
    with connect(host, lab_ssh_config) as ssh:
        assert apply(ssh, ssh_only("ssh.port=2200")).confirmed
    assert "\n#Port 22  # hostwiz:" in console.run("cat /etc/ssh/sshd_config").out
    assert console.run("sshd -T | grep -i '^port '").out.split() == ["port", "2200"]
    assert 22 not in listeners(console)


def test_new_port_blocked_on_the_host_moves_ssh_back_by_itself(host, lab_ssh_config, tmp_path):
    console = host.console()
    # A firewall on the host that the admin forgot: new connections to 2222 are dropped.
    assert console.run("iptables -I INPUT -p tcp --dport 2222 -j DROP").ok
    with connect(host, lab_ssh_config) as ssh:
        result = apply(ssh, ssh_only("ssh.port=2222"), confirm_timeout=10)
        assert not result.confirmed
        assert "SSH was to move to port 2222" in result.message
        assert "No answer" in result.message
        # Named: not hostwiz's zones (none loaded), another firewall.
        assert "Likely cause: another firewall drops new connections to port 2222" in (
            result.message
        )
        assert "hostwiz's zones are not loaded" in result.message
        assert wait_for(console, f"grep -q 'reverted (timeout)' {JOURNAL}", 10 + 15)
    assert " confirmed" not in console.run(f"cat {JOURNAL}").out
    assert listeners(console).get(22) == ("sshd",) and 2222 not in listeners(console)
    # The local journal says why, with both ports for `recover`.
    last = last_transaction(host.name)[-1]
    assert last.event == "unconfirmed" and "new SSH port 2222" in last.detail
    assert (last.ssh_port_before, last.ssh_port_after) == (22, 2222)
    # Its deadline is the host's own (read back when the window started), not this machine's
    # time after the confirmation gave up (that was the connect timeout later).
    host_deadline = int(console.run(f"cat {SNAPSHOTS}/$(cat {LAST})/deadline").out)
    assert last.deadline is not None and abs(last.deadline - host_deadline) <= 1.5
    assert remembered_port(host.name) is None
    with connect(host, lab_ssh_config) as fresh:
        assert fresh.port == 22
    # recover, connected again, says what the host's journal says: undone when, why, port.
    out = recover(host, lab_ssh_config, home=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "The host undid it at " in out.stdout
    assert "because no new connection could confirm it" in out.stdout
    assert "SSH is on port 22 again" in out.stdout
    assert "puts the snapshot back by itself" not in out.stdout


SQUAT = (
    "setsid -f sh -c 'echo $$ > /root/squatter.pid; exec python3 -c \""
    "import socket, time; s = socket.socket(socket.AF_INET6); "
    's.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind((\\"::\\", 2222)); '
    "s.listen(); time.sleep(300)\"' </dev/null >/dev/null 2>&1"
)


def test_sshd_unable_to_bind_the_new_port_is_put_back_at_once(host, lab_ssh_config):
    console = host.console()
    selections = ssh_only("ssh.port=2222")
    with connect(host, lab_ssh_config) as ssh:
        changeset, facts = preview(ssh, selections)  # port 2222 is free now...
        assert console.run(SQUAT).ok  # ...and taken before the apply
        try:
            assert wait_for(console, "ss -Hltn 'sport = :2222' | grep -q .", 10)
            with pytest.raises(ApplyFailed, match="another program \\(python3\\)"):
                apply_planned(ssh, selections, changeset, facts, confirm_timeout=30)
        finally:
            console.run("kill $(cat /root/squatter.pid)")
    assert "reverted (health check failed)" in console.run(f"cat {JOURNAL}").out
    # sshd had exited (it could not bind): the undo started it again on the old port.
    assert wait_for(console, "ss -Hltnp 'sport = :22' | grep -q sshd", 10)
    connect(host, lab_ssh_config).close()


def test_recover_finds_ssh_moved_without_hostwiz_knowing(host, lab_ssh_config, tmp_path):
    console = host.console()
    moved = (
        "printf 'Port 2200\\n' > /etc/ssh/sshd_config.d/10-by-hand.conf && /etc/init.d/ssh reload"
    )
    assert console.run(moved).ok
    assert wait_for(console, "ss -Hltnp 'sport = :2200' | grep -q sshd", 10)
    assert remembered_port(host.name) is None
    out = recover(host, lab_ssh_config, home=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cannot get into" in out.stdout
    assert "-- port 22 as root:" in out.stdout and "refused" in out.stdout
    assert "ok port 2200 as root: that works" in out.stdout
    assert "hostwiz uses port 2200" in out.stdout
    assert "No interrupted change on the host" in out.stdout
    # Accepted under [addr]:2200 only because it is the key trusted for the host.
    known = KnownHosts([lab_paths().known_hosts])
    assert {k.blob for k in known.keys_for(host.address, 2200)} <= {
        k.blob for k in known.keys_for(host.address, 22)
    }
    with connect(host, lab_ssh_config) as ssh:
        assert ssh.port == 2200


def test_recover_tries_other_keys_and_other_users(host, lab_ssh_config, tmp_path):
    paths = lab_paths()
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(paths.key, home / ".ssh" / "id_ed25519")  # the working key, not configured
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {host.name}\n    HostName {host.address}\n    User root\n"
        f"    IdentityFile {wrong}\n    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {paths.known_hosts}\n"
    )
    out = recover(host, config, home=home)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"ok port 22 as root with the key {home}/.ssh/id_ed25519: that works" in out.stdout
    assert f"Next time, connect with: hostwiz -i {home}/.ssh/id_ed25519" in out.stdout

    # root may not log in at all now: admin may, with sudo and its password.
    console = host.console()
    no_root = "PermitRootLogin no"
    assert console.run(
        f"printf '{no_root}\\n' > /etc/ssh/sshd_config.d/000-no-root.conf && /etc/init.d/ssh reload"
    ).ok
    out = recover(host, lab_ssh_config, "--sudo-password-stdin", home=home,
                  stdin=host.admin_password + "\n")  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok port 22 as admin: that works" in out.stdout
    assert f"Next time, connect with: hostwiz --host admin@{host.name}" in out.stdout
    assert f"Connected to admin@{host.name}" in out.stdout


def test_only_the_key_trusted_for_the_host_is_accepted_on_another_port(host, lab_ssh_config):
    console = host.console()
    # A second sshd on the same host with a key of its own: not the host's trusted key.
    impostor = (
        "ssh-keygen -q -t ed25519 -N '' -f /root/other_key && "
        "/usr/sbin/sshd -p 2299 -h /root/other_key -o PidFile=/root/other_sshd.pid"
    )
    assert console.run(impostor).ok
    try:
        assert wait_for(console, "ss -Hltn 'sport = :2299' | grep -q .", 10)
        with pytest.raises(HostKeyChanged):
            connect(host, lab_ssh_config, port=2299, accept_new_host_key=True).close()
        known = KnownHosts([lab_paths().known_hosts])
        assert known.keys_for(host.address, 2299) == []  # nothing recorded for it
    finally:
        console.run("kill $(cat /root/other_sshd.pid)")


def test_a_remembered_port_that_no_longer_answers_is_forgotten(host, lab_ssh_config):
    remember_port(host.name, 2299)  # say SSH was moved back by hand since
    with connect(host, lab_ssh_config) as ssh:
        assert ssh.port == 22
    assert remembered_port(host.name) is None


ZONES = FirewallAnswers(
    enabled=True, mgmt_interfaces=("eth0",), lan_services=("ping",), wan_services=("ping",)
)
"""The admin comes in through eth0, in zone mgmt, which offers ssh (and ping)."""


def test_ssh_port_move_is_refused_when_loaded_zones_would_not_follow_and_follows_them(
    host, lab_ssh_config
):
    console = host.console()
    with connect(host, lab_ssh_config) as ssh:
        assert apply(ssh, [Selection(FIREWALL, ZONES)]).confirmed
        assert "--dport 22 " in console.run("iptables -S HOSTWIZ-IN-mgmt").out
        snapshots = console.run("ls /var/lib/hostwiz/snapshots").out
        # The firewall step off (its zones stay loaded from the apply above): refused up front.
        off = [*ssh_only("ssh.port=2222"), Selection(FIREWALL, replace(ZONES, enabled=False))]
        with pytest.raises(PlanConflict, match="zone mgmt offers only 22/tcp") as refused:
            apply(ssh, off)
        assert "Turn the firewall step on in the same change" in refused.value.hint
        # The SSH step alone (the wizard's step screen applies one step): the same check.
        with pytest.raises(PlanConflict, match="zone mgmt offers only 22/tcp"):
            apply(ssh, ssh_only("ssh.port=2222"))
        assert console.run("ls /var/lib/hostwiz/snapshots").out == snapshots  # nothing done
        assert listeners(console).get(22) == ("sshd",) and 2222 not in listeners(console)
        # On in the same change: the zones follow sshd to its new port (the preview says so).
        both = [*ssh_only("ssh.port=2222"), Selection(FIREWALL, ZONES)]
        changeset, _ = preview(ssh, both)
        notes = [note for plan in changeset.plans for note in plan.notes]
        assert any("ssh follows sshd in this change: port 2222" in note for note in notes)
        result = apply(ssh, both)
    assert result.confirmed and result.ssh_port == 2222, result.message
    assert "--dport 2222 " in console.run("iptables -S HOSTWIZ-IN-mgmt").out
    with connect(host, lab_ssh_config) as again:
        assert again.port == 2222


def test_fresh_check_follows_ssh_moved_by_another_apply_while_the_wizard_held_on(
    host, lab_ssh_config
):
    """The wizard's connection (port 22) stays open while hostwiz's own apply from another
    process moves SSH to 2222. The recovery's new-connection check must try the port the
    host's record of that change names, and say it answered there, not blame something
    else for port 22 refusing."""
    from wizard.recovery import fresh_connection
    from wizard.transport.ports import forget_port

    with connect(host, lab_ssh_config) as wizard:
        assert wizard.port == 22
        with connect(host, lab_ssh_config) as other:
            assert apply(other, ssh_only("ssh.port=2222")).confirmed
        forget_port(host.name)  # the host's own record must be enough
        fresh = fresh_connection(wizard)
        assert fresh.kind == "works", fresh
        assert fresh.port == 2222 and fresh.failed_on == 22
        assert "port 2222" in fresh.message and "refused" in fresh.message
        assert wizard.run("true").ok  # the open connection is left as it was


def test_cli_apply_yes_prints_its_outcome_once(host, lab_ssh_config, tmp_path):
    """`hostwiz apply --yes`: the outcome (what was applied, where SSH listens now) is said
    once, not once on stderr as progress and again on stdout."""
    preset = tmp_path / "ssh-only.toml"
    preset.write_text("[ssh]\nport = 2222\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "hostwiz", "apply", "--host", host.name, "-F",
         str(lab_ssh_config), "--preset", str(preset), "--yes", "--confirm-timeout", "30"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=os.environ.copy(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    said = out.stdout + out.stderr
    assert said.count("Applied 2 change(s). Undo with:") == 1, said
    assert said.count("SSH now listens on port 2222") == 1, said
    assert "Applied 2 change(s)" in out.stdout  # the outcome goes where the plan went
    assert listeners(host.console()).get(2222) == ("sshd",)
