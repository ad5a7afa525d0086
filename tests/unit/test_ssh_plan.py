"""SSH hardening planner tables, including the lockout guard."""

from __future__ import annotations

import base64

import pytest

from wizard.errors import PlanConflict
from wizard.facts import Facts
from wizard.steps.ssh_hardening import DROP_IN, SSH_HARDENING, SshAnswers, drop_in_text

DEBIAN_MAIN = b"Include /etc/ssh/sshd_config.d/*.conf\n#Port 22\nKbdInteractiveAuthentication no\n"


def facts(*, user="admin", groups="admin sudo", keys=True, main=DEBIAN_MAIN, drop=None,
          manager="sysv") -> Facts:  # fmt: skip
    def file(content):
        if content is None:
            return (0, "MISSING\n")
        return (0, f"644 root root\n{base64.b64encode(content).decode()}")

    raw = {
        "file:/etc/ssh/sshd_config": file(main),
        f"file:{DROP_IN}": file(drop),
        "sshd_effective": (0, "passwordauthentication yes\npermitrootlogin without-password\n"),
        "ssh_login": (0, f"user {user}\ngroups {groups}\nkeys {'yes' if keys else 'no'}\n"),
        "service_manager": (0, manager),
    }
    return Facts.from_raw(SSH_HARDENING.facts(SshAnswers()), raw)


def test_fresh_debian_host_gets_the_drop_in_and_a_checked_reload():
    plan = SSH_HARDENING.plan(SshAnswers(), facts())
    assert [type(a).__name__ for a in plan.actions] == ["WriteFile", "RunCommand"]
    text = plan.actions[0].content.decode()
    assert "PasswordAuthentication no" in text and "PermitRootLogin prohibit-password" in text
    assert "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256" in text
    assert plan.actions[1].script == "sshd -t && /etc/init.d/ssh reload"


def test_done_host_plans_nothing():
    assert SSH_HARDENING.plan(SshAnswers(), facts(drop=drop_in_text(SshAnswers()).encode())).empty


def test_main_config_without_include_gets_one_at_the_top():
    plan = SSH_HARDENING.plan(SshAnswers(), facts(main=b"Port 22\nPasswordAuthentication yes\n"))
    assert plan.actions[0].path == "/etc/ssh/sshd_config"
    assert plan.actions[0].content.startswith(b"Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n")


def test_systemd_hosts_reload_through_systemctl():
    plan = SSH_HARDENING.plan(SshAnswers(), facts(manager="systemd"))
    assert plan.actions[-1].script == "sshd -t && systemctl reload ssh"


@pytest.mark.parametrize(
    ("answers", "login", "reason"),
    [
        (SshAnswers(permit_root_login="no"), {"user": "root", "groups": "root"}, "forbids root"),
        (SshAnswers(allow_users=("bob",)), {}, "not in AllowUsers"),
        (SshAnswers(allow_groups=("wheel",)), {}, "none of the allowed groups"),
        (SshAnswers(), {"keys": False}, "no SSH key installed"),
    ],
)
def test_changes_that_would_lock_the_admin_out_are_refused(answers, login, reason):
    with pytest.raises(PlanConflict) as caught:
        SSH_HARDENING.plan(answers, facts(**login))
    assert "lock you out" in caught.value.message and reason in caught.value.message


def test_allowed_by_wildcard_or_group_is_fine():
    assert not SSH_HARDENING.plan(SshAnswers(allow_users=("adm*",)), facts()).empty
    assert not SSH_HARDENING.plan(SshAnswers(allow_groups=("sudo",)), facts()).empty


def test_unknown_host_key_type_is_explained():
    with pytest.raises(PlanConflict, match="dsa"):
        SSH_HARDENING.plan(SshAnswers(host_key_types=("dsa",)), facts())
