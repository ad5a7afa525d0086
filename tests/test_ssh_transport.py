"""The SSH transport: known_hosts and ssh config handling, then real connections.

The first tests need no network. The ``lab`` tests connect to practice hosts (real sshd in
their own namespaces) and check outcomes from the host's console where it matters.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import paramiko
import pytest

from wizard.errors import ConnectionFailed
from wizard.transport.known_hosts import (
    KnownHosts,
    Verdict,
    atomic_append_line,
    fingerprint_sha256,
    hash_host,
    host_entry_name,
    preferred_host_key_algorithms,
)
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
