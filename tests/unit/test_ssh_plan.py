"""SSH hardening planner tables, including the lockout guard."""

from __future__ import annotations

import base64
import tomllib
from importlib import resources

import pytest

from presets import load_preset
from wizard.actions import RunCommand
from wizard.answers import build, fields_of
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.host.sshd import with_privsep_dir
from wizard.plan import Changeset, Plan, PortMove
from wizard.steps.ssh import SSH_HARDENING
from wizard.steps.ssh import crypto as ssh_crypto
from wizard.steps.ssh.answers import BANNER_FILE, DROP_IN, SshAnswers
from wizard.steps.ssh.crypto import Algorithms, parse_supported, strong_subset, with_fallback
from wizard.steps.ssh.facts import parse_effective
from wizard.steps.ssh.plan import drop_in_text, effective_differences
from wizard.steps.ssh.port import SOCKET_DROP_IN, listen_problems, parse_listen, parse_listeners

DEBIAN_MAIN = b"Include /etc/ssh/sshd_config.d/*.conf\n#Port 22\nKbdInteractiveAuthentication no\n"


# `ssh -Q kex|cipher|mac` on Debian 12 (OpenSSH 9.2p1), as the SUPPORTED fact prints it.
DEBIAN_12_Q = """[kex]
diffie-hellman-group1-sha1
diffie-hellman-group14-sha1
diffie-hellman-group14-sha256
diffie-hellman-group16-sha512
diffie-hellman-group18-sha512
diffie-hellman-group-exchange-sha1
diffie-hellman-group-exchange-sha256
ecdh-sha2-nistp256
ecdh-sha2-nistp384
ecdh-sha2-nistp521
curve25519-sha256
curve25519-sha256@libssh.org
sntrup761x25519-sha512
sntrup761x25519-sha512@openssh.com
[cipher]
3des-cbc
aes128-cbc
aes192-cbc
aes256-cbc
aes128-ctr
aes192-ctr
aes256-ctr
aes128-gcm@openssh.com
aes256-gcm@openssh.com
chacha20-poly1305@openssh.com
[mac]
hmac-sha1
hmac-sha1-96
hmac-sha2-256
hmac-sha2-512
hmac-md5
hmac-md5-96
umac-64@openssh.com
umac-128@openssh.com
hmac-sha1-etm@openssh.com
hmac-sha1-96-etm@openssh.com
hmac-sha2-256-etm@openssh.com
hmac-sha2-512-etm@openssh.com
hmac-md5-etm@openssh.com
hmac-md5-96-etm@openssh.com
umac-64-etm@openssh.com
umac-128-etm@openssh.com
"""
DEBIAN_12_STRONG = strong_subset(parse_supported(0, DEBIAN_12_Q))

SS_DEBIAN = (
    'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=87,fd=3))\n'
    'LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=87,fd=4))\n'
)


def facts(*, user="admin", groups="admin sudo", keys=True, main=DEBIAN_MAIN, drop=None,
          manager="sysv", listen="port 22\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22\n",
          others=(), ss=SS_DEBIAN, socket=False, algorithms=DEBIAN_12_Q, banner=None,
          effective="passwordauthentication yes\npermitrootlogin without-password\n",
          users="root daemon admin bob", groups_known="root sudo admin bob", socket_drop=None,
          ) -> Facts:  # fmt: skip
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
        "sshd_effective": (0, effective),
        "ssh_login": (0, f"user {user}\ngroups {groups}\nkeys {'yes' if keys else 'no'}\n"),
        "service_manager": (0, manager),
        "sshd_listen": (0, listen),
        "sshd_port_files": (0, port_files),
        "tcp_listeners": (0, ss),
        "ssh_socket_activated": (0, "active\n") if socket else (3, "inactive\n"),
        "ssh_algorithms": (0, algorithms),
        f"file:{BANNER_FILE}": file(banner),
        "ssh_accounts": (
            0,
            "\n".join(users.split()) + "\n--groups--\n" + "\n".join(groups_known.split()) + "\n",
        ),
        f"file:{SOCKET_DROP_IN}": file(socket_drop),
    }
    return Facts.from_raw(SSH_HARDENING.facts(SshAnswers()), raw)


def test_fresh_debian_host_gets_the_drop_in_and_a_checked_reload():
    plan = SSH_HARDENING.plan(SshAnswers(), facts())
    assert [type(a).__name__ for a in plan.actions] == ["WriteFile", "RunCommand"]
    text = plan.actions[0].content.decode()
    assert "PasswordAuthentication no" in text and "PermitRootLogin prohibit-password" in text
    assert "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256" in text
    assert plan.actions[1].script == with_privsep_dir("sshd -t") + " && /etc/init.d/ssh reload"
    # What a rollback of it says (and the preview's "undo:"), in words, not a shell line.
    assert plan.actions[1].undo_why == (
        "reload sshd on the configuration put back (or start it, if it stopped)"
    )


def test_done_host_plans_nothing():
    done = drop_in_text(SshAnswers(), strong=DEBIAN_12_STRONG).encode()
    assert SSH_HARDENING.plan(SshAnswers(), facts(drop=done)).empty


def test_main_config_without_include_gets_one_at_the_top():
    plan = SSH_HARDENING.plan(SshAnswers(), facts(main=b"Port 22\nPasswordAuthentication yes\n"))
    assert plan.actions[0].path == "/etc/ssh/sshd_config"
    assert plan.actions[0].content.startswith(b"Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n")


def test_systemd_hosts_reload_through_systemctl():
    plan = SSH_HARDENING.plan(SshAnswers(), facts(manager="systemd"))
    assert plan.actions[-1].script == with_privsep_dir("sshd -t") + " && systemctl reload ssh"


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
        drop=drop_in_text(SshAnswers(port=2222), 2222, DEBIAN_12_STRONG).encode(),
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
    # A port out of range never gets as far as the plan: the answers refuse it.
    with pytest.raises(InvalidAnswer, match="not a port number"):
        SshAnswers(port=70000)


def test_socket_activated_sshd_moves_its_socket_and_undo_starts_a_dead_sshd():
    plan = SSH_HARDENING.plan(SshAnswers(port=2222), facts(manager="systemd", socket=True))
    assert "systemctl daemon-reload && systemctl stop ssh.service && systemctl restart ssh.socket" \
        in plan.actions[-1].script  # fmt: skip
    # Debian's ssh.socket has ListenStream=22 written in (no generator reads sshd_config):
    # a drop-in moves the socket itself, before the reload.
    (drop_in,) = [a for a in plan.actions if getattr(a, "path", "") == SOCKET_DROP_IN]
    assert (
        "ListenStream=\nListenStream=0.0.0.0:2222\nListenStream=[::]:2222\n"
        in drop_in.content.decode()
    )
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


# ---- the baseline settings (dev-sec ssh-baseline, Mozilla, CIS 5.2) -------------------------

# An older host's `ssh -Q` (shortened, in OpenSSH's order): no sntrup, no group16/18, no umac,
# and the strong names come out in hostwiz's order, not the host's.
OPENSSH_74_Q = """[kex]
diffie-hellman-group14-sha1
diffie-hellman-group-exchange-sha256
ecdh-sha2-nistp256
curve25519-sha256@libssh.org
[cipher]
aes128-cbc
aes128-ctr
aes256-ctr
aes128-gcm@openssh.com
[mac]
hmac-sha1
hmac-sha2-256
hmac-sha2-256-etm@openssh.com
"""


def test_hardened_defaults_render_every_baseline_line():
    plan = SSH_HARDENING.plan(SshAnswers(), facts())
    text = written(plan, DROP_IN)
    for line in ("LogLevel VERBOSE", "ClientAliveInterval 300", "ClientAliveCountMax 2",
                 "MaxSessions 10", "MaxAuthTries 3", "AllowAgentForwarding no",
                 "AllowTcpForwarding no", "Compression no", "TCPKeepAlive no",
                 "X11Forwarding no"):  # fmt: skip
        assert f"\n{line}\n" in text
    assert "Banner" not in text
    assert not any(getattr(a, "path", "") == BANNER_FILE for a in plan.actions)


@pytest.mark.parametrize(
    ("answers", "line"),
    [
        (SshAnswers(allow_agent_forwarding=True), "AllowAgentForwarding yes"),
        (SshAnswers(allow_tcp_forwarding=True), "AllowTcpForwarding yes"),
        (SshAnswers(compression=True), "Compression yes"),
        (SshAnswers(tcp_keep_alive=True), "TCPKeepAlive yes"),
        (SshAnswers(log_level="INFO"), "LogLevel INFO"),
        (SshAnswers(client_alive_interval=0), "ClientAliveInterval 0"),
        (SshAnswers(max_sessions=4), "MaxSessions 4"),
    ],
)
def test_each_answer_reaches_its_line(answers, line):
    assert f"\n{line}\n" in written(SSH_HARDENING.plan(answers, facts()), DROP_IN)


@pytest.mark.parametrize(
    ("host", "kex", "ciphers", "macs"),
    [
        (
            DEBIAN_12_Q,
            "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
            "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
            "diffie-hellman-group18-sha512",
            "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
            "aes256-ctr,aes192-ctr,aes128-ctr",
            "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
        ),
        (
            OPENSSH_74_Q,
            "curve25519-sha256@libssh.org",
            "aes128-gcm@openssh.com,aes256-ctr,aes128-ctr",
            "hmac-sha2-256-etm@openssh.com",
        ),
    ],
    ids=["debian12", "openssh74"],
)
def test_strong_lists_are_the_modern_ones_the_host_supports(host, kex, ciphers, macs):
    text = written(SSH_HARDENING.plan(SshAnswers(), facts(algorithms=host)), DROP_IN)
    assert f"\nKexAlgorithms {kex}\n" in text
    assert f"\nCiphers {ciphers}\n" in text
    assert f"\nMACs {macs}\n" in text
    supported = parse_supported(0, host)
    for kind, keyword in (("kex", "KexAlgorithms"), ("cipher", "Ciphers"), ("mac", "MACs")):
        listed = text.split(f"\n{keyword} ", 1)[1].split("\n", 1)[0].split(",")
        assert listed and set(listed) <= set(supported.of(kind))  # never an unknown name


def test_without_ssh_the_lists_sshd_prints_now_stand_in():
    effective = (
        "passwordauthentication yes\nkexalgorithms curve25519-sha256,"
        "curve25519-sha256@libssh.org,diffie-hellman-group14-sha1\n"
        "ciphers aes128-cbc,aes256-gcm@openssh.com\nmacs hmac-sha1,hmac-sha2-512-etm@openssh.com\n"
    )
    text = written(
        SSH_HARDENING.plan(SshAnswers(), facts(algorithms="[kex]\n[cipher]\n[mac]\n",
                                                effective=effective)),
        DROP_IN,
    )  # fmt: skip
    assert "\nKexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n" in text
    assert "\nCiphers aes256-gcm@openssh.com\n" in text
    assert "\nMACs hmac-sha2-512-etm@openssh.com\n" in text


def test_lists_nobody_could_read_are_explained_not_written_empty():
    with pytest.raises(PlanConflict, match="could not read which MAC algorithms") as caught:
        SSH_HARDENING.plan(SshAnswers(), facts(algorithms=DEBIAN_12_Q.split("[mac]")[0]))
    assert "sshd -T" in caught.value.hint


def test_a_host_without_any_strong_mac_is_refused_not_given_an_empty_list():
    weak = DEBIAN_12_Q.split("[mac]")[0] + "[mac]\nhmac-sha1\nhmac-sha2-256\n"
    with pytest.raises(PlanConflict) as caught:
        SSH_HARDENING.plan(SshAnswers(), facts(algorithms=weak))
    assert "none of the strong MAC algorithms" in caught.value.message
    assert "strong_algorithms = false" in caught.value.hint
    # Off, sshd keeps its own lists: no algorithm line at all.
    text = written(SSH_HARDENING.plan(SshAnswers(strong_algorithms=False),
                                      facts(algorithms=weak)), DROP_IN)  # fmt: skip
    assert "KexAlgorithms" not in text and "Ciphers" not in text and "MACs" not in text


def test_lists_hostwiz_own_client_cannot_speak_are_refused():
    """paramiko has no chacha20-poly1305: a host whose only strong cipher it is would leave
    hostwiz unable to connect, so the plan refuses (real paramiko, nothing mocked)."""
    chacha_only = DEBIAN_12_Q.replace(
        DEBIAN_12_Q[DEBIAN_12_Q.index("[cipher]") : DEBIAN_12_Q.index("[mac]")],
        "[cipher]\naes128-cbc\nchacha20-poly1305@openssh.com\n",
    )
    assert "chacha20-poly1305@openssh.com" not in ssh_crypto.paramiko_algorithms().cipher
    with pytest.raises(PlanConflict) as caught:
        SSH_HARDENING.plan(SshAnswers(), facts(algorithms=chacha_only))
    assert "lock hostwiz out" in caught.value.message
    assert "cipher" in caught.value.message and "chacha20-poly1305" in caught.value.message


def test_hostwiz_own_client_shares_each_kind_with_the_debian_12_lists():
    client = ssh_crypto.paramiko_algorithms()
    assert ssh_crypto.client_problem(DEBIAN_12_STRONG, client) == ""
    assert ssh_crypto.client_problem(DEBIAN_12_STRONG, Algorithms(client.kex, ("3des-cbc",),
                                                                  client.mac))  # fmt: skip


def test_fallback_keeps_what_ssh_q_listed():
    supported = parse_supported(0, "[kex]\ncurve25519-sha256\n[cipher]\n[mac]\n")
    merged = with_fallback(supported, {"ciphers": "aes128-ctr", "kexalgorithms": "x"})
    assert merged == Algorithms(("curve25519-sha256",), ("aes128-ctr",), ())


# ---- the login banner ----------------------------------------------------------------------


def test_banner_is_written_and_pointed_at_then_plans_nothing_more():
    answers = SshAnswers(banner=True, banner_text="Authorized use only.\nLogged.")
    plan = SSH_HARDENING.plan(answers, facts())
    assert written(plan, BANNER_FILE) == "Authorized use only.\nLogged.\n"
    assert f"\nBanner {BANNER_FILE}\n" in written(plan, DROP_IN)
    done = facts(drop=written(plan, DROP_IN).encode(), banner=written(plan, BANNER_FILE).encode())
    assert SSH_HARDENING.plan(answers, done).empty


def test_turning_the_banner_off_removes_hostwiz_banner_file():
    plan = SSH_HARDENING.plan(SshAnswers(), facts(banner=b"old\n"))
    assert [a.path for a in plan.actions if type(a).__name__ == "RemoveFile"] == [BANNER_FILE]
    assert "Banner" not in written(plan, DROP_IN)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"banner": True, "banner_text": "bell\x07"}, "control character \\(U\\+0007\\)"),
        ({"banner": True, "banner_text": "tab\there"}, "a tab"),
        ({"banner": True, "banner_text": "   "}, "empty"),
        ({"banner": True, "banner_text": "x" * 2001}, "at most 2000"),
        ({"max_sessions": 1}, "at least 2 sessions"),
    ],
)
def test_bad_baseline_answers_are_explained_with_the_preset_place(overrides, expected):
    with pytest.raises(InvalidAnswer, match=expected) as caught:
        build(SshAnswers, overrides, where="site.toml [ssh]")
    assert caught.value.message.startswith("site.toml [ssh]")
    assert caught.value.hint


def test_banner_text_takes_new_lines_but_never_control_characters_even_while_off():
    """Every text answer is checked as typed (a stray control character is a mistake whether
    or not the banner is on); the banner's length and emptiness only matter when it is on."""
    with pytest.raises(InvalidAnswer, match="U\\+0007"):
        build(SshAnswers, {"banner_text": "bell\x07"})
    assert build(SshAnswers, {"banner_text": "   "}).banner is False
    assert build(SshAnswers, {"banner": True, "banner_text": "a\r\nb"}).banner


# ---- the health check against sshd -T ------------------------------------------------------


def test_effective_differences_name_each_setting_sshd_does_not_show():
    answers = SshAnswers(banner=True)
    wanted = drop_in_text(answers, strong=DEBIAN_12_STRONG)
    sshd_t = "\n".join(
        line.split(" ", 1)[0].lower() + " " + line.split(" ", 1)[1]
        for line in wanted.splitlines()
        if line and not line.startswith("#")
    )
    effective = parse_effective(0, sshd_t)
    assert effective_differences(effective, answers, DEBIAN_12_STRONG) == []
    effective.update(allowtcpforwarding="yes", ciphers="aes128-cbc")
    effective.pop("loglevel")
    problems = effective_differences(effective, answers, DEBIAN_12_STRONG)
    assert "allowtcpforwarding is 'yes' instead of 'no'" in problems
    assert "loglevel is None instead of 'VERBOSE'" in problems
    assert any(p.startswith("ciphers is 'aes128-cbc' instead of 'chacha20") for p in problems)
    assert len(problems) == 3


def test_hardened_preset_sets_every_ssh_answer_to_the_hardened_default():
    text = (resources.files("presets") / "hardened.toml").read_text(encoding="utf-8")
    assert set(tomllib.loads(text)["ssh"]) == {info.name for info in fields_of(SshAnswers)}
    assert load_preset("hardened").answers["ssh"] == SshAnswers()


# ---- names the host does not know ---------------------------------------------------------


def test_a_mistyped_allowed_user_is_warned_about_with_a_guess():
    answers = SshAnswers(allow_users=("root", "admn"))
    plan = SSH_HARDENING.plan(answers, facts(user="root"))
    assert not plan.empty
    assert any("admn is not a user on this host: did you mean admin?" in w for w in plan.warnings)
    assert not any("root is not" in w for w in plan.warnings)


def test_unknown_groups_are_warned_about_and_wildcards_and_known_names_are_not():
    answers = SshAnswers(allow_users=("admin", "ops-*", "bob@10.0.0.0/8"),
                         allow_groups=("sudo", "sshusers"))  # fmt: skip
    plan = SSH_HARDENING.plan(answers, facts())
    assert len(plan.warnings) == 1 and "sshusers is not a group on this host" in plan.warnings[0]


def test_the_warning_shows_even_when_nothing_changes():
    answers = SshAnswers(allow_users=("admin", "carol"))
    done = drop_in_text(answers, strong=DEBIAN_12_STRONG).encode()
    plan = SSH_HARDENING.plan(answers, facts(drop=done))
    assert plan.empty and any("carol is not a user" in w for w in plan.warnings)


def test_a_list_that_locks_out_the_login_user_is_still_refused():
    with pytest.raises(PlanConflict, match="lock you out"):
        SSH_HARDENING.plan(SshAnswers(allow_users=("admn",)), facts())
