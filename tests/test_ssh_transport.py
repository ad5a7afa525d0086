"""The SSH transport: known_hosts and ssh config handling, then real connections.

The first tests need no network. The ``lab`` tests connect to practice hosts (real sshd in
their own namespaces) and check outcomes from the host's console where it matters.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from lab import LabHost, lab_paths
from wizard.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
    SudoFailed,
)
from wizard.secrets import Secret
from wizard.transport.base import Transport, shell_quote
from wizard.transport.known_hosts import (
    KnownHosts,
    Verdict,
    atomic_append_line,
    fingerprint_sha256,
    hash_host,
    host_entry_name,
    preferred_host_key_algorithms,
)
from wizard.transport.persistent import (
    ReplyReader,
    ShellProtocol,
    boot_script,
    printf_format,
)
from wizard.transport.ssh import CommandTimedOut, SshTransport, SudoMode
from wizard.transport.ssh_connect import HostKeyInfo
from wizard.transport.sshconfig import load_config, parse_target, resolve


def _key(seed: int) -> tuple[str, bytes]:
    """A real ed25519 public key (type, blob) made from a seed, without touching the disk."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    raw = private.public_key().public_bytes_raw()
    message = paramiko.Message()
    message.add_string("ssh-ed25519")
    message.add_string(raw)
    return "ssh-ed25519", message.asbytes()


def _line(hosts: str, seed: int, marker: str = "") -> str:
    key_type, blob = _key(seed)
    prefix = f"{marker} " if marker else ""
    return f"{prefix}{hosts} {key_type} {base64.b64encode(blob).decode()} comment\n"


# --------------------------------------------------------------------------- known_hosts


def test_fingerprint_matches_openssh_format() -> None:
    _, blob = _key(1)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert fingerprint_sha256(blob) == f"SHA256:{digest}"
    assert "=" not in fingerprint_sha256(blob)


def test_entry_name_uses_brackets_for_other_ports() -> None:
    assert host_entry_name("10.0.0.5", 22) == "10.0.0.5"
    assert host_entry_name("10.0.0.5", 2222) == "[10.0.0.5]:2222"


def test_plain_hashed_and_port_entries(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(
        "# comment\n\n"
        + _line("web1,10.0.0.5", 1)
        + _line(hash_host("[10.0.0.6]:2222"), 2)
        + _line("[10.0.0.7]:2200", 3)
        + "garbage line\n"
    )
    known = KnownHosts([path, tmp_path / "missing"])
    assert known.check("10.0.0.5", 22, *_key(1)).verdict is Verdict.KNOWN
    assert known.check("web1", 22, *_key(1)).verdict is Verdict.KNOWN
    assert known.check("10.0.0.6", 2222, *_key(2)).verdict is Verdict.KNOWN
    assert known.check("10.0.0.6", 22, *_key(2)).verdict is Verdict.UNKNOWN
    assert known.check("10.0.0.7", 2200, *_key(3)).verdict is Verdict.KNOWN
    assert known.check("10.0.0.7", 22, *_key(3)).verdict is Verdict.UNKNOWN
    changed = known.check("10.0.0.6", 2222, *_key(9))
    assert changed.verdict is Verdict.CHANGED
    assert changed.conflicting is not None and changed.conflicting.line == 4


def test_wildcards_negation_and_revoked(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(
        _line("*.lab,!bad.lab", 1)
        + _line("10.0.0.?", 2)
        + _line("*", 3, marker="@revoked")
        + _line("*", 4, marker="@cert-authority")
    )
    known = KnownHosts([path])
    assert known.check("a.lab", 22, *_key(1)).verdict is Verdict.KNOWN
    assert known.check("A.LAB", 22, *_key(1)).verdict is Verdict.KNOWN
    assert known.check("bad.lab", 22, *_key(1)).verdict is Verdict.UNKNOWN
    assert known.check("10.0.0.9", 22, *_key(2)).verdict is Verdict.KNOWN
    assert known.check("10.0.0.19", 22, *_key(2)).verdict is Verdict.UNKNOWN
    assert known.check("anything", 22, *_key(3)).verdict is Verdict.REVOKED
    # a CA line is not a host key: the host stays unknown
    assert known.check("anything", 22, *_key(4)).verdict is Verdict.UNKNOWN


def test_other_key_type_on_record_counts_as_changed(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("host ssh-rsa " + base64.b64encode(b"not-really-rsa").decode() + "\n")
    known = KnownHosts([path])
    assert known.check("host", 22, *_key(1)).verdict is Verdict.CHANGED
    assert known.known_types("host", 22) == ["ssh-rsa"]


def test_preferred_algorithms_put_known_types_first() -> None:
    offered = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"]
    assert preferred_host_key_algorithms(["ssh-rsa"], offered) == [
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
    ]
    assert preferred_host_key_algorithms([], offered) == offered


def test_atomic_append_keeps_lines_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("# mine, keep me\nweird-line-paramiko-would-drop")
    path.chmod(0o644)
    atomic_append_line(path, "new ssh-ed25519 AAAA")
    assert (
        path.read_text()
        == "# mine, keep me\nweird-line-paramiko-would-drop\nnew ssh-ed25519 AAAA\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["known_hosts"]  # no temp file left


def test_atomic_append_creates_private_file_and_follows_symlink(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "known_hosts"
    atomic_append_line(fresh, "a ssh-ed25519 AAAA")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(fresh)
    atomic_append_line(link, "b ssh-ed25519 BBBB")
    assert link.is_symlink()
    assert fresh.read_text().splitlines() == ["a ssh-ed25519 AAAA", "b ssh-ed25519 BBBB"]


# --------------------------------------------------------------------------- targets & config


@pytest.mark.parametrize(
    ("target", "user", "host", "port"),
    [
        ("web1", None, "web1", None),
        ("admin@10.0.0.5", "admin", "10.0.0.5", None),
        ("admin@10.0.0.5:2222", "admin", "10.0.0.5", 2222),
        ("10.0.0.5:2222", None, "10.0.0.5", 2222),
        ("root@[fe80::1]:2200", "root", "fe80::1", 2200),
        ("fe80::1", None, "fe80::1", None),
        ("ssh://me@host:23/", "me", "host", 23),
    ],
)
def test_parse_target(target: str, user: str | None, host: str, port: int | None) -> None:
    parsed = parse_target(target)
    assert (parsed.user, parsed.host, parsed.port) == (user, host, port)


@pytest.mark.parametrize("target", ["", "host:0", "host:99999", "host:ssh", "[::1"])
def test_parse_target_refuses_nonsense(target: str) -> None:
    with pytest.raises(ConnectionFailed):
        parse_target(target)


def test_resolve_applies_config(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        f"""
Host web1
  HostName 10.0.0.5
  User admin
  Port 2222
  IdentityFile {tmp_path}/id_web
  IdentitiesOnly yes
  UserKnownHostsFile {tmp_path}/kh1 {tmp_path}/kh2
  ProxyJump bastion,root@10.0.0.1:2200
  HashKnownHosts yes
Host *
  IdentityAgent none
"""
    )
    cfg = load_config(config)
    ep = resolve("web1", cfg)
    assert (ep.hostname, ep.user, ep.port) == ("10.0.0.5", "admin", 2222)
    assert ep.identity_files == (tmp_path / "id_web",)
    assert ep.identities_only and ep.hash_known_hosts and not ep.use_agent
    assert ep.known_hosts_files == (tmp_path / "kh1", tmp_path / "kh2")
    assert ep.proxy_jump == ("bastion", "root@10.0.0.1:2200")
    # the target's own user and port win over the config
    ep = resolve("root@web1:22", cfg)
    assert (ep.hostname, ep.user, ep.port) == ("10.0.0.5", "root", 22)
    other = resolve("somewhere", cfg)
    assert other.hostname == "somewhere" and other.port == 22
    assert other.known_hosts_files[0] == Path("~/.ssh/known_hosts").expanduser()
    assert not other.identity_files_configured


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailed, match="does not exist"):
        load_config(tmp_path / "nope")


def test_no_user_config_means_empty_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("host", load_config(None)).hostname == "host"


# --------------------------------------------------------------------------- practice hosts


MakeLabHosts = Callable[..., list[LabHost]]


@dataclass(frozen=True)
class SshLab:
    """What the SSH tests need from a practice host."""

    ssh_config: Path
    #: ssh config name that logs in as root with the lab key
    root_target: str
    #: ``admin@...`` target: a sudoer that needs its password
    admin_target: str
    admin_password: str
    key: Path
    hostname: str
    port: int
    #: the host's console, to look at outcomes independently of SSH
    console: Transport
    known_hosts: Path
    #: where the host keeps its ed25519 public host key
    host_key_pub: str = "/etc/ssh/ssh_host_ed25519_key.pub"


def _as_ssh_lab(host: LabHost, known_hosts: Path) -> SshLab:
    """``host`` as the tests see it, with its keys in a known_hosts file of the test's own.

    The lab's shared known_hosts is rewritten by every ``lab_up``/``lab_down`` on this
    machine (other people's test runs included), so the tests do not depend on it.
    """
    console = host.console()
    keys = console.run("cat /etc/ssh/ssh_host_*_key.pub")
    assert keys.ok, keys.err
    known_hosts.write_text(
        "".join(f"{host.name},{host.address} {line}\n" for line in keys.out.splitlines())
    )
    known_hosts.chmod(0o600)
    paths = lab_paths()
    return SshLab(
        ssh_config=Path(paths.ssh_config),
        root_target=host.ssh_target,
        admin_target=f"admin@{host.ssh_target}",
        admin_password=host.admin_password,
        key=Path(paths.key),
        hostname=host.address,
        port=22,
        console=console,
        known_hosts=known_hosts,
    )


@pytest.fixture
def ssh_lab(lab_host: LabHost, tmp_path: Path) -> SshLab:
    """The session's shared practice host, for tests that change nothing on it."""
    return _as_ssh_lab(lab_host, tmp_path / "lab_known_hosts")


@pytest.fixture
def fresh_ssh_lab(make_lab_hosts: MakeLabHosts, tmp_path: Path) -> SshLab:
    """A practice host of this test's own (no dockerd), for tests that add users or kill."""
    return _as_ssh_lab(make_lab_hosts(1, docker=False)[0], tmp_path / "lab_known_hosts")


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ssh-agent must not change which keys the tests offer."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def _connect(lab: SshLab, target: str | None = None, **kwargs: Any) -> SshTransport:
    kwargs.setdefault("ssh_config", lab.ssh_config)
    kwargs.setdefault("known_hosts", lab.known_hosts)
    kwargs.setdefault("identity_file", lab.key)
    return SshTransport.connect(target or lab.root_target, **kwargs)


def _connect_without_config(lab: SshLab, tmp_path: Path, key: Path) -> SshTransport:
    """Log in as root with only ``key`` (no IdentityFile from the lab's ssh config)."""
    empty = tmp_path / "empty_ssh_config"
    empty.write_text("")
    return _connect(lab, f"root@{lab.hostname}:{lab.port}", ssh_config=empty, identity_file=key)


def _host_key_line(lab: SshLab) -> tuple[str, str]:
    """The host's ed25519 public key, read from its console."""
    result = lab.console.run(f"cat {lab.host_key_pub}")
    assert result.ok, result.err
    key_type, b64 = result.out.split()[:2]
    return key_type, b64


@pytest.mark.lab
def test_root_login_runs_scripts_as_root(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        assert isinstance(ssh, Transport)
        assert ssh.sudo_mode is SudoMode.ROOT
        result = ssh.run("id -u; echo to-stderr >&2")
        assert (result.exit_code, result.out, result.err) == (0, "0\n", "to-stderr\n")
        assert ssh.run("exit 7").exit_code == 7
        assert ssh.run("kill -9 $$").exit_code == -1
        assert ssh.stats.round_trips == 3
        assert ssh.stats.connections == 1


@pytest.mark.lab
def test_root_login_costs_one_session_channel(
    ssh_lab: SshLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root-rights probe runs in the persistent shell that later scripts use: connecting
    and running scripts as root opens one session (sshd's fork and PAM session), not two."""
    opened: list[str] = []
    real = paramiko.Transport.open_session

    def counting(self: paramiko.Transport, *args: Any, **kwargs: Any) -> paramiko.Channel:
        opened.append("session")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(paramiko.Transport, "open_session", counting)
    with _connect(ssh_lab) as ssh:
        assert ssh.sudo_mode is SudoMode.ROOT
        shell = _shell_pid(ssh)
        assert ssh.run("id -u").out == "0\n"
        assert _shell_pid(ssh) == shell
        assert len(opened) == 1
    with _connect(ssh_lab, persistent=False) as ssh:  # no shell: the probe gets a channel
        opened.clear()
        assert ssh.run("id -u").out == "0\n"
        assert len(opened) == 1


@pytest.mark.lab
def test_large_stdin_and_output_round_trip(ssh_lab: SshLab) -> None:
    data = os.urandom(5 * 1024 * 1024)
    with _connect(ssh_lab) as ssh:
        result = ssh.run("cat; head -c 3000000 /dev/zero >&2", stdin=data, timeout=120)
        assert result.ok
        assert result.stdout == data
        assert result.stderr == b"\0" * 3_000_000
        # a script that ignores its stdin must not hang the writer
        assert ssh.run("exit 3", stdin=data).exit_code == 3


@pytest.mark.lab
def test_admin_with_sudo_password_runs_as_root(ssh_lab: SshLab) -> None:
    asked: list[int] = []

    def password() -> Secret:
        asked.append(1)
        return Secret(ssh_lab.admin_password)

    with _connect(ssh_lab, ssh_lab.admin_target, sudo_password=password) as ssh:
        assert ssh.sudo_mode is SudoMode.PASSWORD
        data = os.urandom(2 * 1024 * 1024)
        result = ssh.run("id -u; cat", stdin=b"first line\n" + data)
        assert result.ok, result.err
        assert result.stdout == b"0\nfirst line\n" + data
        texts = [result.script, repr(ssh), repr(result), str(ssh.stats)]
        fresh = ssh.reconnect()
        with fresh:
            assert fresh.run("id -u").out == "0\n"
            texts += [repr(fresh)]
        assert asked == [1]  # the reconnect reused the password from memory
        assert not any(ssh_lab.admin_password in text for text in texts)


@pytest.mark.lab
def test_a_reconnect_gets_root_on_one_channel(ssh_lab: SshLab) -> None:
    """The confirmation's new connection does not probe for root rights again: the first
    script goes straight to a sudo root shell, on the connection's only channel (the probe and
    the password check took two more, each a fork and PAM session of sshd)."""
    password = Secret(ssh_lab.admin_password)
    with _connect(ssh_lab, ssh_lab.admin_target, sudo_password=password) as ssh:
        opened_by_connect = ssh._transport._channel_counter  # probe, sudo check: 2 channels
        with ssh.reconnect() as fresh:
            assert fresh.sudo_mode is SudoMode.PASSWORD
            assert fresh._transport._channel_counter == 0  # nothing run yet
            assert fresh.run("id -u").out == "0\n"
            assert fresh.run("id -u").out == "0\n"
            assert fresh._transport._channel_counter == 1, opened_by_connect
        assert ssh.run("id -u").out == "0\n"  # the old connection is independent


@pytest.mark.lab
def test_wrong_sudo_password_is_refused_and_nothing_runs(ssh_lab: SshLab) -> None:
    wrong = "not-the-password-" + os.urandom(4).hex()
    with pytest.raises(SudoFailed) as caught:
        _connect(ssh_lab, ssh_lab.admin_target, sudo_password=Secret(wrong))
    error = caught.value
    assert "wrong" in error.message
    for text in (error.message, error.hint, error.details, error.explain(), repr(error)):
        assert wrong not in text


@pytest.mark.lab
def test_sudo_password_missing_is_a_clear_error(ssh_lab: SshLab) -> None:
    with pytest.raises(SudoFailed, match="needs a password"):
        _connect(ssh_lab, ssh_lab.admin_target)


@pytest.mark.lab
def test_open_stream_behind_sudo_is_a_socket(ssh_lab: SshLab) -> None:
    with _connect(
        ssh_lab, ssh_lab.admin_target, sudo_password=Secret(ssh_lab.admin_password)
    ) as ssh:
        stream = ssh.open_stream("id -u; exec cat")
        stream.settimeout(10)
        stream.sendall(b"ping\n")
        received = b""
        for _ in range(100):
            if received.endswith(b"ping\n"):
                break
            received += stream.recv(4096)
        stream.close()
        assert received == b"0\nping\n"


@pytest.mark.lab
def test_unknown_host_key_needs_acceptance(ssh_lab: SshLab, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    key_type, b64 = _host_key_line(ssh_lab)
    expected = fingerprint_sha256(base64.b64decode(b64))
    with pytest.raises(HostKeyUnknown) as caught:
        _connect(ssh_lab, known_hosts=known)
    assert caught.value.fingerprint == expected
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", expected)
    assert not known.exists()

    declined: list[HostKeyInfo] = []

    def decline(info: HostKeyInfo) -> bool:
        declined.append(info)
        return False

    with pytest.raises(HostKeyUnknown):
        _connect(ssh_lab, known_hosts=known, accept_new_host_key=decline)
    assert declined[0].fingerprint == expected and not known.exists()

    with _connect(ssh_lab, known_hosts=known, accept_new_host_key=True) as ssh:
        assert ssh.run("true").ok
    entry = host_entry_name(ssh_lab.hostname, ssh_lab.port)
    assert known.read_text() == f"{entry} {key_type} {b64}\n"
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    # now known: no acceptance needed
    with _connect(ssh_lab, known_hosts=known) as ssh:
        assert ssh.run("true").ok


@pytest.mark.lab
def test_changed_host_key_is_refused_even_when_accepting(ssh_lab: SshLab, tmp_path: Path) -> None:
    key_type, _ = _host_key_line(ssh_lab)
    _, other = _key(7)
    tampered = tmp_path / "known_hosts"
    entry = host_entry_name(ssh_lab.hostname, ssh_lab.port)
    tampered.write_text(f"{entry} {key_type} {base64.b64encode(other).decode()}\n")
    before = tampered.read_text()
    for accept in (False, True, lambda info: True):
        with pytest.raises(HostKeyChanged) as caught:
            _connect(ssh_lab, known_hosts=tampered, accept_new_host_key=accept)
        assert str(tampered) in caught.value.message
    assert tampered.read_text() == before


@pytest.mark.lab
def test_unreachable_port_fails_fast_and_says_where(ssh_lab: SshLab) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        _connect(ssh_lab, f"root@{ssh_lab.hostname}:1", connect_timeout=5)
    assert time.monotonic() - started < 5
    assert f"{ssh_lab.hostname}:1" in caught.value.message
    assert "refused" in caught.value.message
    with pytest.raises(ConnectionFailed, match="could not be resolved"):
        _connect(ssh_lab, "root@no-such-host.invalid", connect_timeout=5)


@pytest.mark.lab
def test_refused_key_names_the_key_and_the_fix(ssh_lab: SshLab, tmp_path: Path) -> None:
    stranger = tmp_path / "id_stranger"
    _keygen(stranger)
    with pytest.raises(AuthenticationFailed) as caught:
        _connect_without_config(ssh_lab, tmp_path, stranger)
    assert str(stranger) in caught.value.message
    assert "ssh-copy-id" in caught.value.hint


@pytest.mark.lab
def test_encrypted_key_without_passphrase(ssh_lab: SshLab, tmp_path: Path) -> None:
    locked = tmp_path / "id_locked"
    _keygen(locked, passphrase="secret words")
    with pytest.raises(AuthenticationFailed) as caught:
        _connect_without_config(ssh_lab, tmp_path, locked)
    assert "passphrase" in caught.value.message
    assert "ssh-add" in caught.value.hint


@pytest.mark.lab
def test_reconnect_makes_a_new_connection(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as first:
        port_before = first.run("echo $SSH_CLIENT").out.split()[1]
        with first.reconnect() as second:
            port_after = second.run("echo $SSH_CLIENT").out.split()[1]
            assert second.stats is first.stats
        assert port_before != port_after
        assert first.stats.connections == 2
        assert first.run("true").ok  # the old connection is independent


@pytest.mark.lab
def test_connections_send_without_waiting_for_acks(ssh_lab: SshLab) -> None:
    """TCP_NODELAY, as OpenSSH sets it: with Nagle's algorithm, a login's signature waited for
    the host's delayed ACK (~40 ms per connection)."""

    def nodelay(transport: SshTransport) -> int:
        sock = transport._transport.sock
        assert isinstance(sock, socket.socket)
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    with _connect(ssh_lab) as first, first.reconnect() as second:
        assert nodelay(first) and nodelay(second)


@pytest.mark.lab
def test_timeout_and_lost_connection(fresh_ssh_lab: SshLab) -> None:
    with _connect(fresh_ssh_lab) as ssh:
        started = time.monotonic()
        with pytest.raises(CommandTimedOut):
            ssh.run("sleep 30", timeout=1)
        assert time.monotonic() - started < 5
        assert ssh.run("true").ok
        session = ssh.run("echo $PPID").out.strip()
        killer = threading.Timer(1.0, lambda: fresh_ssh_lab.console.run(f"kill -9 {session}"))
        killer.start()
        try:
            with pytest.raises(ConnectionFailed, match="lost"):
                ssh.run("sleep 30", timeout=20)
        finally:
            killer.join()
        with pytest.raises(ConnectionFailed):
            ssh.run("true")


def _keygen(path: Path, passphrase: str = "", kind: str = "ed25519") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _add_user(lab: SshLab, user: str, sudoers_line: str = "") -> None:
    """Create ``user`` on the practice host with the lab key and the admin's password."""
    public_key = Path(f"{lab.key}.pub").read_text().strip()
    script = f"""set -e
if ! id {user} >/dev/null 2>&1; then
    useradd -m -s /bin/sh {user}
    printf '%s:%s\\n' {user} "$(cat)" | chpasswd
    install -d -m 700 -o {user} -g {user} /home/{user}/.ssh
    printf '%s\\n' {shell_quote(public_key)} >/home/{user}/.ssh/authorized_keys
    chown {user}:{user} /home/{user}/.ssh/authorized_keys
    if [ -n {shell_quote(sudoers_line)} ]; then
        printf '%s\\n' {shell_quote(sudoers_line)} >/etc/sudoers.d/{user}
        chmod 440 /etc/sudoers.d/{user}
    fi
fi
"""
    result = lab.console.run(script, stdin=lab.admin_password.encode())
    assert result.ok, result.err


@pytest.mark.lab
def test_user_without_sudo_rights_is_told_the_fix(fresh_ssh_lab: SshLab) -> None:
    _add_user(fresh_ssh_lab, "nosudo")
    with pytest.raises(SudoFailed) as caught:
        _connect(
            fresh_ssh_lab,
            f"nosudo@{fresh_ssh_lab.root_target}",
            sudo_password=Secret(fresh_ssh_lab.admin_password),
        )
    assert "not allowed to use sudo" in caught.value.message
    assert "usermod -aG sudo nosudo" in caught.value.hint
    assert fresh_ssh_lab.admin_password not in caught.value.explain() + caught.value.details


@pytest.mark.lab
def test_passwordless_sudo_needs_no_password(fresh_ssh_lab: SshLab) -> None:
    _add_user(fresh_ssh_lab, "nopw", "nopw ALL=(ALL) NOPASSWD: ALL")

    def never() -> Secret:
        raise AssertionError("asked for a sudo password that is not needed")

    with _connect(fresh_ssh_lab, f"nopw@{fresh_ssh_lab.root_target}", sudo_password=never) as ssh:
        assert ssh.sudo_mode is SudoMode.NOPASSWD
        assert ssh.run("id -u; cat", stdin=b"in").out == "0\nin"


@pytest.mark.lab
def test_proxyjump_goes_through_the_jump_host(make_lab_hosts: MakeLabHosts, tmp_path: Path) -> None:
    """Reach a fresh host through another, as ``ProxyJump`` in an ssh config says. The jump
    host is a fresh one too: the shared host may be SSH-hardened by an earlier test, and the
    hardened preset turns TCP forwarding (what ProxyJump needs) off."""
    lab_host, target = make_lab_hosts(2, docker=False)
    paths = lab_paths()
    # both hosts' keys, read from their consoles (see _as_ssh_lab)
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(
            _as_ssh_lab(host, tmp_path / host.name).known_hosts.read_text()
            for host in (lab_host, target)
        )
    )
    config = tmp_path / "ssh_config"
    common = (
        "  User root\n"
        f"  IdentityFile {paths.key}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n"
    )
    config.write_text(
        f"Host jump\n  HostName {lab_host.address}\n{common}"
        f"Host behind\n  HostName {target.address}\n  ProxyJump jump\n{common}"
    )
    with SshTransport.connect("behind", ssh_config=config) as ssh:
        seen_from = ssh.run("echo $SSH_CLIENT").out.split()[0]
        hostname = ssh.run("hostname").out.strip()
    assert seen_from == lab_host.address
    assert hostname == target.name


@pytest.mark.lab
def test_ecdsa_rsa_and_agent_keys(
    fresh_ssh_lab: SshLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key type logs in; a passphrase-protected key works once it is in ssh-agent."""
    lab = fresh_ssh_lab
    keys = {kind: tmp_path / f"id_{kind}" for kind in ("ecdsa", "rsa")}
    for kind, path in keys.items():
        _keygen(path, kind=kind)
    locked = tmp_path / "id_locked"
    _keygen(locked, passphrase="open sesame")
    public = "".join(Path(f"{p}.pub").read_text() for p in [*keys.values(), locked])
    assert lab.console.run("cat >>/root/.ssh/authorized_keys", stdin=public.encode()).ok

    for kind, path in keys.items():
        with _connect_without_config(lab, tmp_path, path) as ssh:
            assert ssh.run("id -u").out == "0\n", kind

    with pytest.raises(AuthenticationFailed, match="passphrase"):
        _connect_without_config(lab, tmp_path, locked)

    sock = tmp_path / "agent.sock"
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho 'open sesame'\n")
    askpass.chmod(0o700)
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        env = {
            **os.environ,
            "SSH_AUTH_SOCK": str(sock),
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0",
        }
        added = subprocess.run(
            ["ssh-add", str(locked)], env=env, capture_output=True, stdin=subprocess.DEVNULL
        )
        assert added.returncode == 0, added.stderr
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with _connect_without_config(lab, tmp_path, locked) as ssh:
            assert ssh.run("id -u").out == "0\n"
    finally:
        agent.kill()
        agent.wait(timeout=10)


# --------------------------------------------------------------------------- persistent shell


class _LocalShell:
    """The persistent shell's protocol spoken with a local ``/bin/sh`` (no SSH, no root).

    Replies are fed to the readers in small pieces, as a channel may deliver them.
    """

    def __init__(self, tmp_path: Path, password_line: bytes = b"") -> None:
        self.protocol = ShellProtocol()
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", boot_script(self.protocol.token)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        hello, ready = self.protocol.hello()
        self.proc.stdin.write(password_line + hello)
        self.proc.stdin.flush()
        while not ready.done:
            piece = os.read(self.proc.stdout.fileno(), 4096)
            assert piece, self.proc.stderr.read() if self.proc.stderr else b""
            ready.feed(piece)
        assert ready.value is not None
        self.directory = Path(ready.value)

    def run(self, script: str, stdin: bytes = b"") -> tuple[int, bytes, bytes] | None:
        """(exit code, stdout, stderr), or None when the shell ended."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        data, reply = self.protocol.request(script, stdin)
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        while not reply.done:
            piece = os.read(self.proc.stdout.fileno(), 7)
            if not piece:
                return None
            reply.feed(piece)
        assert reply.exit_code is not None and reply.stdout is not None
        return reply.exit_code, reply.stdout, reply.stderr or b""

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def local_shell(tmp_path: Path) -> Iterator[_LocalShell]:
    shell = _LocalShell(tmp_path)
    try:
        yield shell
    finally:
        shell.close()


def test_printf_format_is_byte_exact(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4 + b"%s %d %% \\n \\000 \\\\ ' '\\'' \0" + "ā‘’".encode()
    out = tmp_path / "out"
    script = b"printf " + printf_format(data) + b" > " + str(out).encode() + b"\n"
    subprocess.run(["/bin/sh"], input=script, check=True)
    assert out.read_bytes() == data


def test_local_shell_framing(local_shell: _LocalShell, tmp_path: Path) -> None:
    directory = local_shell.directory
    assert directory.parent == tmp_path and stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert local_shell.run("echo out; echo err >&2; exit 7") == (7, b"out\n", b"err\n")
    assert local_shell.run("printf 'no newline'") == (0, b"no newline", b"")
    # stdin with every byte value, and text that looks like shell syntax or printf formats
    data = bytes(range(256)) * 3 + b"%s\\n'\"$x`id`\n"
    assert local_shell.run("cat", data) == (0, data, b"")
    quoted = "echo 'it'\"'\"'s' \"$((1+2))\" \\$HOME %s %% ā"
    assert local_shell.run(quoted) == (0, "it's 3 $HOME %s %% ā\n".encode(), b"")
    # syntax errors end the subshell only
    for broken in ("if true; then", "echo 'unterminated", ")", "case x in"):
        code, out, err = local_shell.run(broken) or (None, b"", b"")
        assert (code, out) == (2, b""), broken
        assert b"syntax error" in err.lower(), err
    assert local_shell.run("echo still here") == (0, b"still here\n", b"")
    # no internal variables are visible to scripts
    assert local_shell.run("set | grep -c __hw || true") == (0, b"0\n", b"")
    # the per-run files are removed right after each reply; only the directory stays
    for _ in range(100):
        if not list(directory.iterdir()):
            break
        time.sleep(0.02)
    assert list(directory.iterdir()) == []


def test_local_shell_ends_cleanly(tmp_path: Path) -> None:
    shell = _LocalShell(tmp_path, password_line=b"a sudo password sudo did not read\n")
    assert shell.run("echo ok") == (0, b"ok\n", b"")
    shell.close()
    assert shell.proc.returncode == 0
    assert list(tmp_path.iterdir()) == []  # the EXIT trap removed the private directory
    assert shell.proc.stderr is not None
    assert b"password" not in shell.proc.stderr.read()


def test_local_shell_boot_refuses_other_input(tmp_path: Path) -> None:
    protocol = ShellProtocol()
    proc = subprocess.run(
        ["/bin/sh", "-c", boot_script(protocol.token)],
        input=b"touch pwned\nanother line\n" + protocol.hello()[0],
        capture_output=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 97 and proc.stderr == b""
    assert proc.stdout == f"{protocol.token} boot\n".encode()  # and nothing else ran
    assert list(tmp_path.iterdir()) == []


def test_reply_reader_finds_markers_split_anywhere() -> None:
    marker = b"__hw0123456789abcdef01234567_1"
    stream = (
        b"junk before\n" + marker + b":S\n" + b"out" * 1000 + marker + b":O\n"
        b"err" + marker + b":E 42\n"
    )
    for size in (1, 3, 4096):
        reader = ReplyReader(marker)
        for offset in range(0, len(stream), size):
            assert not reader.done
            reader.feed(stream[offset : offset + size])
        assert reader.started
        assert (reader.exit_code, reader.stdout, reader.stderr) == (42, b"out" * 1000, b"err")


def _shell_pid(ssh: SshTransport) -> str:
    """The pid of the shell scripts run under (``$$`` in a subshell is the shell's own)."""
    return ssh.run("echo $$").out.strip()


def _shell_directory(ssh: SshTransport) -> str:
    """The persistent shell's private directory (where a script's stdout goes)."""
    return os.path.dirname(ssh.run("readlink /proc/self/fd/1").out.strip())


def _until(check: Callable[[], bool], seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.mark.lab
def test_one_shell_runs_exit_exec_and_stdin_readers(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        shell = _shell_pid(ssh)
        assert ssh.run("exit 7").exit_code == 7
        assert ssh.run("exec true").exit_code == 0
        result = ssh.run("echo x; exec sh -c 'echo y >&2; exit 4'")
        assert (result.exit_code, result.out, result.err) == (4, "x\n", "y\n")
        data = os.urandom(300_000) + b"\0"
        result = ssh.run("cat; echo done >&2", stdin=data)
        assert (result.exit_code, result.stdout, result.err) == (0, data, "done\n")
        result = ssh.run('read -r first; echo "$first"; wc -c', stdin=b"one\ntwo\n")
        assert result.out.split() == ["one", "4"]
        started = time.monotonic()
        assert ssh.run("cat").out == ""  # no stdin: EOF at once
        assert time.monotonic() - started < 5
        result = ssh.run("id -u; pwd; echo $PATH")
        uid, cwd, path = result.out.splitlines()
        assert (uid, cwd) == ("0", "/root")
        assert {"/usr/sbin", "/sbin"} <= set(path.split(":"))
        assert _shell_pid(ssh) == shell  # every script ran in the same shell
        assert ssh.stats.round_trips == 9
        assert ssh.stats.connections == 1


@pytest.mark.lab
def test_scripts_do_not_share_shell_state(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        result = ssh.run(
            "cd /tmp; x=set; export Y=set; f() { :; }; set -e; umask 077; alias ll=ls\n"
            "trap 'echo bye' EXIT; pwd"
        )
        assert result.out == "/tmp\nbye\n"
        result = ssh.run(
            'pwd; echo "${x-unset} ${Y-unset}"; command -v f || echo no-f; umask\n'
            "case $- in *e*) echo errexit;; esac; trap; alias"
        )
        assert result.out == "/root\nunset unset\nno-f\n0022\n"
        assert ssh.run("set | grep -c __hw || true").out == "0\n"


@pytest.mark.lab
def test_megabytes_on_both_streams_interleaved(ssh_lab: SshLab) -> None:
    script = (
        "i=0; while [ $i -lt 50 ]; do\n"
        "  head -c 100000 /dev/zero | tr '\\0' o\n"
        "  head -c 60000 /dev/zero | tr '\\0' e >&2\n"
        "  i=$((i+1))\n"
        "done"
    )
    with _connect(ssh_lab) as ssh:
        result = ssh.run(script, timeout=120)
        assert result.ok
        assert result.stdout == b"o" * 5_000_000
        assert result.stderr == b"e" * 3_000_000
        assert ssh.run("echo small").out == "small\n"


@pytest.mark.lab
def test_background_processes_neither_block_nor_leak(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        started = time.monotonic()
        result = ssh.run("sleep 30 & echo $!; (sleep 0.5; echo late; echo late >&2) & echo now")
        assert time.monotonic() - started < 5
        sleeper, now = result.out.split()
        assert now == "now"
        time.sleep(1)
        result = ssh.run("echo next")
        assert (result.out, result.err) == ("next\n", "")
        assert ssh.run(f"kill {sleeper}").ok


@pytest.mark.lab
def test_timeout_then_a_fresh_shell(ssh_lab: SshLab) -> None:
    pidfile = f"/tmp/pt-timeout-{os.urandom(4).hex()}"
    with _connect(ssh_lab) as ssh:
        shell, directory = _shell_pid(ssh), _shell_directory(ssh)
        started = time.monotonic()
        with pytest.raises(CommandTimedOut, match="did not finish within 1 s"):
            ssh.run(f"sh -c 'echo $$ > {pidfile}; exec sleep 30'", timeout=1)
        assert time.monotonic() - started < 5
        result = ssh.run("echo ok")
        assert (result.exit_code, result.out) == (0, "ok\n")
        assert _shell_pid(ssh) != shell
        # the abandoned shell's files were removed by the new one; end the sleep
        assert ssh.run(f"[ -e {directory} ] || echo gone").out == "gone\n"
        assert ssh.run(f'kill "$(cat {pidfile})"; rm -f {pidfile}').ok
        # once its script ends, the abandoned shell sees its channel closed and exits
        assert _until(lambda: not ssh.run(f"kill -0 {shell} 2>/dev/null").ok)


@pytest.mark.lab
def test_a_script_that_ends_the_shell(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        shell, directory = _shell_pid(ssh), _shell_directory(ssh)
        result = ssh.run("echo before; kill -9 $$; sleep 0.2")
        assert result.exit_code == -1
        result = ssh.run("echo $$")
        assert result.ok and result.out.strip() != shell
        # SIGKILL skipped the EXIT trap: the new shell removed the old one's directory
        assert ssh.run(f"[ -e {directory} ] || echo gone").out == "gone\n"
        # a shell that dies between runs is replaced without the caller noticing
        shell = _shell_pid(ssh)
        assert ssh.run("(sleep 0.3; kill -9 $$) >/dev/null 2>&1 &").ok
        time.sleep(1)
        result = ssh.run("echo fine")
        assert (result.exit_code, result.out) == (0, "fine\n")
        assert _shell_pid(ssh) != shell
        # TERM: the shell leaves through its EXIT trap; the next run has a new one
        shell, directory = _shell_pid(ssh), _shell_directory(ssh)
        ssh.run("kill $$")
        assert ssh.run("echo again").out == "again\n"
        assert ssh.run(f"[ -e {directory} ] || echo gone").out == "gone\n"
        assert ssh.stats.connections == 1


@pytest.mark.lab
def test_scripts_that_look_like_the_framing(ssh_lab: SshLab) -> None:
    fake = "__hw0123456789abcdef01234567_1:O\n__hw0123456789abcdef01234567_9:E 0\n__hw_s='\n"
    script = (
        f"printf '%s' {shell_quote(fake)}\n"
        f"printf '%s' {shell_quote(fake)} >&2\n"
        '__hw_s=x; __hw_d=/nonexistent; __hw_r=5; echo "$__hw_d"\n'
        "cat <<'EOF'\n__hw_R /tmp\nEOF\n"
        "printf '%s|%s|%s\\n' \"it's\" '%s %% \\n' \"ā\"\n"
        "cat >&2\n"
        "exit 3\n"
    )
    with _connect(ssh_lab) as ssh:
        result = ssh.run(script, stdin=fake.encode() + b"\0%s\\")
        assert result.exit_code == 3
        assert result.out == fake + "/nonexistent\n__hw_R /tmp\nit's|%s %% \\n|ā\n"
        assert result.stderr == fake.encode() * 2 + b"\0%s\\"
        assert ssh.run("echo $__hw_d; echo ok").out == "\nok\n"


@pytest.mark.lab
def test_script_bigger_than_the_argv_limit(ssh_lab: SshLab) -> None:
    lines = [f"echo line-{i}" for i in range(20_000)]
    big_word = "a" * (200 * 1024)  # one word longer than MAX_ARG_STRLEN (128 KiB)
    script = "\n".join(lines) + f"\nx='{big_word}'; echo ${{#x}}\n"
    assert len(script.encode()) > 400 * 1024
    with _connect(ssh_lab) as ssh:
        result = ssh.run(script)
        assert result.ok, result.err
        out = result.out.splitlines()
        assert len(out) == 20_001
        assert out[0] == "line-0" and out[-2] == "line-19999" and out[-1] == str(200 * 1024)


@pytest.mark.lab
def test_sudo_password_through_the_persistent_shell(ssh_lab: SshLab) -> None:
    password = ssh_lab.admin_password
    with _connect(ssh_lab, ssh_lab.admin_target, sudo_password=Secret(password)) as ssh:
        assert ssh.sudo_mode is SudoMode.PASSWORD
        shell = _shell_pid(ssh)
        texts: list[str] = []
        for script in (
            "id -u",
            "ps -eo args",
            "tr '\\0' ' ' < /proc/$$/cmdline; tr '\\0' '\\n' < /proc/$$/environ",
            "ps -o args= -p $PPID",
            "env; set",
            "cat /proc/$PPID/cmdline",
        ):
            result = ssh.run(script)
            assert result.ok, (script, result.err)
            texts += [result.out, result.err, repr(result)]
        assert texts[0] == "0\n"
        assert "sudo -k -S -p  -- /bin/sh -c" in texts[9]  # the shell's parent: sudo, no password
        result = ssh.run("cat; id -u", stdin=b"data\n")
        assert result.out == "data\n0\n"
        assert _shell_pid(ssh) == shell  # one sudo for all of them
        killed = ssh.run("kill -9 $$")
        assert killed.exit_code == -1
        again = ssh.run("id -u")  # a new shell: sudo asked for the password again
        assert again.out == "0\n" and _shell_pid(ssh) != shell
        texts += [killed.err, again.err, repr(ssh), str(ssh.stats), str(ssh.shell_unavailable)]
        assert ssh.shell_unavailable is None
    assert not any(password in text for text in texts)


@pytest.mark.lab
def test_password_line_is_never_run_when_sudo_stops_asking(fresh_ssh_lab: SshLab) -> None:
    lab = fresh_ssh_lab
    password = lab.admin_password
    with _connect(lab, lab.admin_target, sudo_password=Secret(password)) as ssh:
        assert ssh.sudo_mode is SudoMode.PASSWORD
        assert ssh.run("id -u").out == "0\n"
        # sudo stops asking (as a hardening step might arrange); the next shell's sudo leaves
        # the password line unread, and the start-up script must drop it, not run it
        rule = "admin ALL=(ALL) NOPASSWD: ALL"
        setup = f"printf '%s\\n' {shell_quote(rule)} > /etc/sudoers.d/zz-admin; chmod 440 /etc/sudoers.d/zz-admin"
        assert lab.console.run(setup).ok
        assert ssh.run("kill -9 $$").exit_code == -1
        result = ssh.run("id -u; cat", stdin=b"in\n")
        assert (result.exit_code, result.out, result.err) == (0, "0\nin\n", "")
        assert ssh.shell_unavailable is None
        log = lab.console.run("cat /var/log/auth.log /root/.sh_history 2>/dev/null; true").out
        assert password not in log


@pytest.mark.lab
def test_changed_sudo_password_costs_one_attempt(fresh_ssh_lab: SshLab) -> None:
    lab = fresh_ssh_lab
    password = lab.admin_password
    with _connect(lab, lab.admin_target, sudo_password=Secret(password)) as ssh:
        assert ssh.run("id -u").out == "0\n"
        # the password changes behind hostwiz's back; the next shell's sudo refuses it
        changed = "changed-" + os.urandom(4).hex()
        assert lab.console.run("chpasswd", stdin=f"admin:{changed}\n".encode()).ok
        assert ssh.run("kill -9 $$").exit_code == -1
        started = time.monotonic()
        result = ssh.run("id -u", stdin=b"line one\nline two\n")
        assert time.monotonic() - started < 15
        assert result.exit_code == 1 and result.out == ""
        # sudo read the one password line, then EOF: not our other lines as more guesses
        assert "1 incorrect password attempt" in result.err, result.err
        assert password not in result.err and changed not in result.err
        assert ssh.shell_unavailable is None  # nothing wrong with the shell itself


@pytest.mark.lab
def test_one_channel_per_script_when_asked(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab, persistent=False) as ssh:
        assert len({_shell_pid(ssh) for _ in range(3)}) == 3
        with ssh.reconnect() as fresh:
            assert len({_shell_pid(fresh) for _ in range(2)}) == 2
        result = ssh.run("cat; exit 5", stdin=b"x")
        assert (result.exit_code, result.out) == (5, "x")


@pytest.mark.lab
def test_threads_share_the_transport(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        failures: list[str] = []

        def work(n: int) -> None:
            for i in range(10):
                result = ssh.run(f"echo {n}-{i}", stdin=f"{n}".encode())
                if result.out != f"{n}-{i}\n":
                    failures.append(f"{n}-{i}: {result!r}")

        workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert failures == []
        assert ssh.stats.round_trips == 40
        # a long script in the shell does not hold up another thread's short one
        slow = threading.Thread(target=ssh.run, args=("sleep 2",))
        slow.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert ssh.run("echo quick").out == "quick\n"
        assert time.monotonic() - started < 1.5
        slow.join(timeout=10)


@pytest.mark.lab
def test_private_directory_is_removed_with_the_shell(ssh_lab: SshLab) -> None:
    with _connect(ssh_lab) as ssh:
        shell, directory = _shell_pid(ssh), _shell_directory(ssh)
        assert directory.startswith("/tmp/hostwiz.")
        owner = ssh_lab.console.run(f"stat -c '%a %U' {directory}").out
        assert owner == "700 root\n"
    # closing the connection ends the shell (EOF), and its EXIT trap removes the directory
    console = ssh_lab.console
    assert _until(lambda: not console.run(f"kill -0 {shell} 2>/dev/null").ok)
    assert not console.run(f"[ -e {directory} ]").ok


@pytest.mark.parametrize(
    "data", [b"-----BEGIN CERTIFICATE-----\nAAA\n", b"-", b"--help", b"-n x", b"%s\\n\0-"]
)
def test_printf_format_survives_leading_dashes_in_a_real_shell(data: bytes) -> None:
    import subprocess

    from wizard.transport.persistent import printf_format

    script = b"printf " + printf_format(data)
    out = subprocess.run(["/bin/sh", "-c", script.decode("latin-1")], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == data
