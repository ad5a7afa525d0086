"""SSH hardening on practice hosts: real logins before and after."""

from __future__ import annotations

import paramiko
import pytest

from presets import apply_overrides, load_preset
from snapshots.rollback import rollback_plan
from wizard.errors import AuthenticationFailed, PlanConflict, PresetError
from wizard.plan import Changeset
from wizard.render import as_text, render_plan
from wizard.secrets import Secret
from wizard.session import Selection, apply, preview
from wizard.steps import STEPS
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
