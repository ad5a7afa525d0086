"""SSH hardening on practice hosts: real logins before and after."""

from __future__ import annotations

import os
import shutil
import subprocess

import paramiko
import pytest

from presets import apply_overrides, load_preset
from snapshots.rollback import rollback_plan
from wizard.errors import ApplyFailed, AuthenticationFailed, PlanConflict, PresetError
from wizard.plan import Changeset
from wizard.render import as_text, render_plan
from wizard.secrets import Secret
from wizard.session import Selection, apply, preview
from wizard.steps import STEPS
from wizard.steps.ssh.facts import parse_effective
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab


def ssh_only(*overrides: str) -> list[Selection]:
    preset = apply_overrides(load_preset("hardened"), list(overrides))
    return [Selection(STEPS["ssh"], preset.answers["ssh"])]


def password_login_works(host, password: str) -> bool:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a throwaway probe client
    try:
        client.connect(host.address, username="admin", password=password, look_for_keys=False,
                       allow_agent=False, timeout=5, auth_timeout=5, banner_timeout=5)  # fmt: skip
    except paramiko.AuthenticationException:
        return False
    finally:
        client.close()
    return True


@pytest.fixture
def host(make_lab_hosts):
    return make_lab_hosts(1, docker=False)[0]


def test_keys_only_then_rollback(host, lab_ssh_config):
    assert password_login_works(host, host.admin_password)
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        result = apply(ssh, ssh_only())
        assert result.confirmed
        assert not password_login_works(host, host.admin_password)
        effective = host.console().run("sshd -T").out
        assert "passwordauthentication no" in effective
        assert "hostkeyalgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256" in effective
        assert preview(ssh, ssh_only())[0].empty
        rollback = rollback_plan(ssh, result.snapshot_id)
        apply_changeset(ssh, Changeset(host.name, (rollback,)), reason="rollback")
    assert password_login_works(host, host.admin_password)
    assert not host.console().run("test -e /etc/ssh/sshd_config.d/00-hostwiz.conf").ok


def test_no_root_logins_applied_as_admin_through_sudo(host, lab_ssh_config):
    with SshTransport.connect(f"admin@{host.name}", ssh_config=lab_ssh_config,
                              sudo_password=Secret(host.admin_password)) as ssh:  # fmt: skip
        assert apply(ssh, ssh_only("ssh.permit_root_login=no")).confirmed
    with pytest.raises(AuthenticationFailed):
        SshTransport.connect(host.name, ssh_config=lab_ssh_config).close()
    # admin still gets in with a key
    SshTransport.connect(f"admin@{host.name}", ssh_config=lab_ssh_config,
                         sudo_password=Secret(host.admin_password)).close()  # fmt: skip


def test_a_lockout_is_refused_before_anything_changes(host, lab_ssh_config):
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        for overrides in (["ssh.permit_root_login=no"], ["ssh.allow_users=bob"]):
            with pytest.raises(PlanConflict, match="lock you out"):
                apply(ssh, ssh_only(*overrides))
    assert not host.console().run("test -e /etc/ssh/sshd_config.d/00-hostwiz.conf").ok
    assert not host.console().run("test -d /var/lib/hostwiz/snapshots").ok


# What `sshd -T` must show after the hardened preset on a practice host (Debian 12's OpenSSH
# 9.2: the modern lists as it supports them, hostwiz's own order).
HARDENED_SSHD_T = {
    "loglevel": "VERBOSE",
    "clientaliveinterval": "300",
    "clientalivecountmax": "2",
    "maxsessions": "10",
    "maxauthtries": "3",
    "logingracetime": "30",
    "allowagentforwarding": "no",
    "allowtcpforwarding": "no",
    "compression": "no",
    "tcpkeepalive": "no",
    "x11forwarding": "no",
    "kexalgorithms": "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,"
    "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512",
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
    "aes256-ctr,aes192-ctr,aes128-ctr",
    "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
    "banner": "/etc/ssh/hostwiz-banner",
}


def openssh(host, lab_ssh_config, *options: str) -> subprocess.CompletedProcess[str]:
    """This machine's ssh client to the practice host's address (lab config, key, known_hosts
    only), running ``true`` there; stdin closed, bounded."""
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    command = ["ssh", "-F", str(lab_ssh_config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
               *options, host.name, "true"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env, check=False)  # fmt: skip


def test_baseline_settings_reach_sshd_and_weak_clients_are_refused(host, lab_ssh_config):
    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client (apt-get install openssh-client)")
    tunnel = ("-W", "127.0.0.1:22")  # a forwarded TCP connection, to the host's own sshd
    # Weaker algorithms sshd 9.2 accepts by default (CBC ciphers it already refuses).
    nist_kex = ("-o", "KexAlgorithms=ecdh-sha2-nistp256")
    gex_kex = ("-o", "KexAlgorithms=diffie-hellman-group-exchange-sha256")  # 2048-bit moduli
    sha1_mac = ("-c", "aes128-ctr", "-m", "hmac-sha1")
    for weak in (nist_kex, gex_kex, sha1_mac):
        assert openssh(host, lab_ssh_config, *weak).returncode == 0
    forwarded = openssh(host, lab_ssh_config, *tunnel)
    assert forwarded.stdout.startswith("SSH-2.0-"), forwarded.stderr

    overrides = ("ssh.banner=true",)
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        assert apply(ssh, ssh_only(*overrides)).confirmed
        assert preview(ssh, ssh_only(*overrides))[0].empty
    effective = parse_effective(0, host.console().run("sshd -T").out)
    assert {key: effective.get(key) for key in HARDENED_SSHD_T} == HARDENED_SSHD_T

    refusals = {
        nist_kex: "no matching key exchange",
        gex_kex: "no matching key exchange",
        ("-o", "KexAlgorithms=diffie-hellman-group14-sha1"): "no matching key exchange",
        sha1_mac: "no matching MAC",
        ("-c", "aes128-cbc"): "no matching cipher",
    }
    for weak, message in refusals.items():
        result = openssh(host, lab_ssh_config, *weak)
        assert result.returncode == 255 and message in result.stderr, (weak, result.stderr)
    normal = openssh(host, lab_ssh_config)
    assert normal.returncode == 0, normal.stderr
    assert "Authorized access only. Connections are logged." in normal.stderr  # the banner
    refused = openssh(host, lab_ssh_config, *tunnel)
    assert not refused.stdout and "administratively prohibited" in refused.stderr


def test_a_drop_in_that_overrides_a_baseline_setting_fails_the_check_and_rolls_back(
    host, lab_ssh_config
):
    """sshd keeps the first value it reads: a drop-in sorting before hostwiz's turns TCP
    forwarding back on. The plan cannot see that; the sshd -T check after the reload does,
    and the change is undone."""
    console = host.console()
    first = "/etc/ssh/sshd_config.d/0-first.conf"
    assert console.run(f"printf 'AllowTcpForwarding yes\\n' > {first}").ok
    wrong = "allowtcpforwarding is 'yes' instead of 'no'"
    with (
        SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh,
        pytest.raises(ApplyFailed, match=wrong),
    ):
        apply(ssh, ssh_only())
    assert not console.run("test -e /etc/ssh/sshd_config.d/00-hostwiz.conf").ok
    assert "loglevel INFO" in console.run("sshd -T").out


def test_an_allow_users_entry_cannot_inject_a_match_block(host, lab_ssh_config):
    """A line break in an answer would add lines of its own to the drop-in: here a Match block
    turning password logins back on for admin while the step says "hardened"."""
    injection = "root, admin\nMatch User admin\n  PasswordAuthentication yes"
    drop_in = "cat /etc/ssh/sshd_config.d/00-hostwiz.conf"
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        assert apply(ssh, ssh_only()).confirmed
        hardened = host.console().run(drop_in).out
        assert not password_login_works(host, host.admin_password)
        with pytest.raises(PresetError) as caught:
            apply(ssh, ssh_only(f"ssh.allow_users={injection}"))
        assert "allow_users" in caught.value.message and "line break" in caught.value.message
        assert host.console().run(drop_in).out == hardened
        assert not password_login_works(host, host.admin_password)
        assert "passwordauthentication no" in host.console().run("sshd -T -C user=admin").out


def test_a_mistyped_allowed_user_is_named_in_the_preview(host, lab_ssh_config):
    with SshTransport.connect(host.name, ssh_config=lab_ssh_config) as ssh:
        changeset, _ = preview(ssh, ssh_only("ssh.allow_users=root,admn"))
    text = as_text(render_plan(changeset.plans[0]))
    assert "! admn is not a user on this host: did you mean admin?" in text
    assert "root is not a user" not in text
