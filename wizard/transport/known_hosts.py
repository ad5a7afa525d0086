"""Reading and appending OpenSSH ``known_hosts`` files.

paramiko's ``HostKeys`` drops lines it cannot parse when it saves, ignores ``@revoked`` and
wildcard patterns, and only compares the first key of a type. We need exact OpenSSH semantics
for the one question that matters (is this key known, unknown, or different?) and we must never
rewrite lines we do not understand, so this small module does it itself: it reads every file,
and adds an entry by appending one line to the file's current text and replacing the file
atomically.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from wizard.local_files import write_atomic

DEFAULT_SSH_PORT = 22


def fingerprint_sha256(key_blob: bytes) -> str:
    """The OpenSSH ``SHA256:...`` fingerprint of a public key blob (base64 without padding)."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def host_entry_name(hostname: str, port: int) -> str:
    """The name OpenSSH records: ``host`` on port 22, ``[host]:port`` otherwise."""
    if port == DEFAULT_SSH_PORT:
        return hostname
    return f"[{hostname}]:{port}"


def hash_host(name: str, salt: bytes | None = None) -> str:
    """OpenSSH's hashed form ``|1|base64(salt)|base64(hmac-sha1(salt, name))``."""
    if salt is None:
        salt = os.urandom(20)
    digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _pattern_matches(pattern: str, name: str) -> bool:
    """OpenSSH wildcard match: ``*`` and ``?`` only, case-insensitive."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, name, flags=re.IGNORECASE) is not None


def _hashed_matches(entry: str, name: str) -> bool:
    parts = entry.split("|")
    # "|1|salt|hash" splits into ["", "1", salt, hash]
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        expected = base64.b64decode(parts[3], validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return False
    actual = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(actual, expected)


def _hosts_match(hosts_field: str, name: str) -> bool:
    """Whether a comma-separated host field matches ``name`` (negations veto)."""
    if hosts_field.startswith("|"):
        return _hashed_matches(hosts_field, name)
    matched = False
    for pattern in hosts_field.split(","):
        if not pattern:
            continue
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], name):
                return False
        elif _pattern_matches(pattern, name):
            matched = True
    return matched


@dataclass(frozen=True)
class KnownKey:
    """One key line that applies to a host."""

    key_type: str
    blob: bytes
    path: Path
    line: int
    revoked: bool = False


class Verdict(Enum):
    KNOWN = "known"
    UNKNOWN = "unknown"
    CHANGED = "changed"
    REVOKED = "revoked"
    MOVED = "moved"
    """No entry for this port, but the key is the one on record for the host at a port its
    SSH server moved from: safe to record under the new port."""


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    #: For CHANGED/REVOKED: the line that disagrees, to name in messages.
    conflicting: KnownKey | None = None


def _parse_line(line: str) -> tuple[str | None, str, str, bytes] | None:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker: str | None = None
    if fields[0].startswith("@"):
        marker = fields[0]
        fields = fields[1:]
    if len(fields) < 3:
        return None
    hosts, key_type, b64 = fields[0], fields[1], fields[2]
    try:
        blob = base64.b64decode(b64, validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return None
    return marker, hosts, key_type, blob


class KnownHosts:
    """The keys that the given known_hosts files record (missing files count as empty)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def keys_for(self, hostname: str, port: int) -> list[KnownKey]:
        """Every non-CA key line that applies to ``hostname``:``port``, in file order."""
        name = host_entry_name(hostname, port)
        found: list[KnownKey] = []
        for path in self.paths:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            for number, raw in enumerate(text.splitlines(), 1):
                parsed = _parse_line(raw.strip())
                if parsed is None:
                    continue
                marker, hosts, key_type, blob = parsed
                if marker == "@cert-authority":
                    continue  # certificates are not supported; CA lines are not host keys
                if marker not in (None, "@revoked"):
                    continue
                if _hosts_match(hosts, name):
                    found.append(
                        KnownKey(key_type, blob, path, number, revoked=marker == "@revoked")
                    )
        return found

    def known_types(self, hostname: str, port: int) -> list[str]:
        """Key types on record for the host, to ask the server for those first."""
        types: list[str] = []
        for key in self.keys_for(hostname, port):
            if not key.revoked and key.key_type not in types:
                types.append(key.key_type)
        return types

    def check(self, hostname: str, port: int, key_type: str, blob: bytes) -> Check:
        """Known, unknown, changed or revoked, like OpenSSH's StrictHostKeyChecking.

        A host with keys on record only of *other* types counts as CHANGED: we ask the server
        for the recorded types first, so a server that no longer offers any of them has
        replaced its keys, and that is never accepted silently.
        """
        keys = self.keys_for(hostname, port)
        for key in keys:
            if key.revoked and key.blob == blob:
                return Check(Verdict.REVOKED, key)
        for key in keys:
            if not key.revoked and key.key_type == key_type and key.blob == blob:
                return Check(Verdict.KNOWN)
        for key in keys:
            if not key.revoked:
                return Check(Verdict.CHANGED, key)
        return Check(Verdict.UNKNOWN)


def check_moved(
    known: KnownHosts,
    hostname: str,
    port: int,
    from_ports: Sequence[int],
    key_type: str,
    blob: bytes,
) -> Check:
    """:meth:`KnownHosts.check` for a host whose SSH server moved from one of ``from_ports``.

    An entry for ``[hostname]:port`` decides as usual. Without one, the key must be exactly a
    key on record for the host at a port it moved from (the host key belongs to the machine,
    not to the port): then the verdict is MOVED. A different key is CHANGED, never offered
    for acceptance, and with no key on record at those ports either, it stays UNKNOWN.
    """
    here = known.check(hostname, port, key_type, blob)
    if here.verdict is not Verdict.UNKNOWN:
        return here
    changed: Check | None = None
    for old_port in dict.fromkeys(p for p in from_ports if p != port):
        there = known.check(hostname, old_port, key_type, blob)
        if there.verdict is Verdict.KNOWN:
            return Check(Verdict.MOVED)
        if there.verdict is not Verdict.UNKNOWN and changed is None:
            changed = Check(Verdict.CHANGED, there.conflicting)
    return changed or here


def preferred_host_key_algorithms(known_types: Iterable[str], offered: Sequence[str]) -> list[str]:
    """``offered`` reordered so that algorithms for key types on record come first."""
    wanted: list[str] = []
    for key_type in known_types:
        if key_type == "ssh-rsa":
            wanted += [a for a in ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa") if a in offered]
        elif key_type in offered:
            wanted.append(key_type)
    return wanted + [a for a in offered if a not in wanted]


def atomic_append_line(path: Path, line: str) -> None:
    """Append ``line`` to ``path`` by writing a new file and renaming it over the old one.

    The temporary file lives in the same directory (so ``rename`` is atomic), is fsynced
    before the rename, and gets the old file's mode (0600 for a new file). A reader therefore
    sees either the old file or the new one, never half a line. A symlinked known_hosts is
    followed, so the link itself survives.
    """
    target = Path(os.path.realpath(path))
    directory = target.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    try:
        old = target.read_bytes()
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        old = b""
        mode = 0o600
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_atomic(target, old + line.rstrip("\n").encode("utf-8") + b"\n", mode)
