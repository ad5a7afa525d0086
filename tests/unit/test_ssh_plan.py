"""SSH hardening planner tables, including the lockout guard."""

from __future__ import annotations

import base64

import pytest

from wizard.actions import RunCommand
from wizard.errors import PlanConflict
from wizard.facts import Facts
from wizard.plan import Changeset, Plan, PortMove
from wizard.steps.ssh_hardening import DROP_IN, SSH_HARDENING, SshAnswers, drop_in_text
from wizard.steps.ssh_port import SOCKET_DROP_IN, listen_problems, parse_listen, parse_listeners

DEBIAN_MAIN = b"Include /etc/ssh/sshd_config.d/*.conf\n#Port 22\nKbdInteractiveAuthentication no\n"


SS_DEBIAN = (
    'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=87,fd=3))\n'
    'LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=87,fd=4))\n'
)


def facts(*, user="admin", groups="admin sudo", keys=True, main=DEBIAN_MAIN, drop=None,
          manager="sysv", listen="port 22\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22\n",
          others=(), ss=SS_DEBIAN, socket=False, socket_drop=None) -> Facts:  # fmt: skip
    def file(content):
        if content is None:
            return (0, "MISSING\n")
        return (0, f"644 root root\n{base64.b64encode(content).decode()}")

    port_files = "".join(
        f"FILE {path} 644 root root {base64.b64encode(content).decode()}\n"
        for path, content in others
    )
    raw = {
        "file:/etc/ssh/sshd_config": file(main),
        f"file:{DROP_IN}": file(drop),
        "sshd_effective": (0, "passwordauthentication yes\npermitrootlogin without-password\n"),
        "ssh_login": (0, f"user {user}\ngroups {groups}\nkeys {'yes' if keys else 'no'}\n"),
        "service_manager": (0, manager),
        "sshd_listen": (0, listen),
        "sshd_port_files": (0, port_files),
        "tcp_listeners": (0, ss),
        "ssh_socket_activated": (0, "active\n") if socket else (3, "inactive\n"),
        f"file:{SOCKET_DROP_IN}": file(socket_drop),
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


# ---- moving SSH to another port --------------------------------------------------------------


def written(plan, path):
    return next(a for a in plan.actions if getattr(a, "path", None) == path).content.decode()


def test_keeping_the_port_touches_no_port_line_and_moves_nothing():
    plan = SSH_HARDENING.plan(SshAnswers(), facts(main=DEBIAN_MAIN + b"Port 22\n"))
    assert plan.ssh_port is None
    assert "Port" not in written(plan, DROP_IN).replace("PermitRootLogin", "")
    assert all(getattr(a, "path", "") != "/etc/ssh/sshd_config" for a in plan.actions)


def test_moving_comments_out_every_other_port_line_and_says_where_ssh_goes():
    main = b"Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n  port=2200\nListenAddress 10.0.0.5\n"
    plan = SSH_HARDENING.plan(SshAnswers(port=2222), facts(main=main))
    assert plan.ssh_port == PortMove(22, 2222)
    assert "\nPort 2222\n" in written(plan, DROP_IN)
    text = written(plan, "/etc/ssh/sshd_config")
    assert "\n#Port 22  # hostwiz: sshd listens on port 2222 only" in text
    assert "\n  #port=2200  # hostwiz" in text
    assert "\nListenAddress 10.0.0.5\n" in text  # no port of its own: follows Port
    assert any("2222" in w for w in plan.warnings)  # open the firewall first
    assert any("ssh -p 2222" in n for n in plan.notes)


def test_listen_addresses_with_their_own_port_move_too_in_other_drop_ins():
    other = b"ListenAddress 0.0.0.0:22\nListenAddress [::1]:22\nListenAddress fe80::1\nPort 22\n"
    plan = SSH_HARDENING.plan(
        SshAnswers(port=2222), facts(others=[("/etc/ssh/sshd_config.d/50-cloud.conf", other)])
    )
    text = written(plan, "/etc/ssh/sshd_config.d/50-cloud.conf")
    assert text.startswith("ListenAddress 0.0.0.0:2222\nListenAddress [::1]:2222\n")
    assert "ListenAddress fe80::1\n#Port 22" in text
    assert plan.before_of("/etc/ssh/sshd_config.d/50-cloud.conf").content == other


def test_a_moved_host_plans_nothing_more_and_keep_keeps_the_port_it_is_on():
    moved = dict(
        main=b"Include /etc/ssh/sshd_config.d/*.conf\n#Port 22  # hostwiz: sshd listens on port "
        b"2222 only, set in /etc/ssh/sshd_config.d/00-hostwiz.conf\n",
        drop=drop_in_text(SshAnswers(port=2222), 2222).encode(),
        listen="port 2222\nlistenaddress 0.0.0.0:2222\n",
    )
    assert SSH_HARDENING.plan(SshAnswers(port=2222), facts(**moved)).empty
    # port = 0 (keep) must not silently drop the drop-in's Port line (back to 22).
    keep = SSH_HARDENING.plan(SshAnswers(port=0, max_auth_tries=4), facts(**moved))
    assert "\nPort 2222\n" in written(keep, DROP_IN)
    assert keep.ssh_port is None


def test_a_port_in_use_by_another_program_is_refused():
    ss = SS_DEBIAN + 'LISTEN 0 5 0.0.0.0:8080 0.0.0.0:* users:(("python3",pid=9,fd=3))\n'
    with pytest.raises(PlanConflict, match="8080 is already in use on the host \\(by python3\\)"):
        SSH_HARDENING.plan(SshAnswers(port=8080), facts(ss=ss))
    with pytest.raises(PlanConflict, match="not a port number"):
        SSH_HARDENING.plan(SshAnswers(port=70000), facts())


def test_socket_activated_sshd_moves_its_socket_and_undo_starts_a_dead_sshd():
    plan = SSH_HARDENING.plan(SshAnswers(port=2222), facts(manager="systemd", socket=True))
    assert "systemctl daemon-reload && systemctl stop ssh.service && systemctl restart ssh.socket" \
        in plan.actions[-1].script  # fmt: skip
    # Debian's ssh.socket has ListenStream=22 written in (no generator reads sshd_config):
    # a drop-in moves the socket itself, before the reload.
    (drop_in,) = [a for a in plan.actions if getattr(a, "path", "") == SOCKET_DROP_IN]
    assert "ListenStream=\nListenStream=0.0.0.0:2222\nListenStream=[::]:2222\n" in drop_in.content.decode()
    assert plan.actions.index(drop_in) < len(plan.actions) - 1
    done = facts(manager="systemd", socket=True, socket_drop=drop_in.content)
    assert SOCKET_DROP_IN not in [getattr(a, "path", "") for a in
                                  SSH_HARDENING.plan(SshAnswers(port=2222), done).actions]  # fmt: skip
    sysv = SSH_HARDENING.plan(SshAnswers(), facts())
    assert "/etc/init.d/ssh start" in sysv.actions[-1].undo


def test_changeset_says_where_ssh_ends_up():
    moves = [Plan("a", (RunCommand("x"),), ssh_port=PortMove(22, 2222)),
             Plan("b", (RunCommand("y"),), ssh_port=PortMove(2222, 2200))]  # fmt: skip
    assert Changeset("h", tuple(moves)).ssh_port == PortMove(22, 2200)
    back = [moves[0], Plan("b", (RunCommand("y"),), ssh_port=PortMove(2222, 22))]
    assert Changeset("h", tuple(back)).ssh_port is None
    assert Changeset("h", (Plan("a", (), ssh_port=PortMove(22, 2222)),)).ssh_port is None


def test_listen_problems_name_what_is_wrong():
    right = parse_listen(0, "port 2222\nlistenaddress 0.0.0.0:2222\n")
    sshd = parse_listeners(0, 'LISTEN 0 128 0.0.0.0:2222 0.0.0.0:* users:(("sshd",pid=8,fd=3))')
    assert listen_problems(2222, right, sshd) == []
    both = parse_listen(0, "port 2222\nport 22\n")
    assert "port(s) 2222, 22" in listen_problems(2222, both, sshd)[0]
    assert "nothing listens on port 2222" in listen_problems(2222, right, {})[0]
    squatter = parse_listeners(0, 'LISTEN 0 5 [::]:2222 [::]:* users:(("nc",pid=9,fd=3))')
    assert "another program (nc)" in listen_problems(2222, right, squatter)[0]
