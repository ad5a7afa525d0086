"""The lab's SSH key, ``ssh_config`` and ``known_hosts`` (in the per-user data dir).

Each host gets a marked block in ``ssh_config`` and one line in ``known_hosts`` per host key
(read from inside the host right after it made them), so ``ssh -F <ssh_config> NAME`` works at
once with strict host key checking. ``lab down`` removes both again.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from lab.locking import file_lock
from lab.model import LabHost
from lab.paths import LabPaths
from wizard.errors import LabError

_BEGIN = "# >>> hostwiz lab host "
_END = "# <<< hostwiz lab host "
_HEADER = (
    "# Practice hosts made by `hostwiz lab up`; use with: ssh -F <this file> NAME\n"
    "# hostwiz adds and removes the marked blocks; edit outside them only.\n"
)


def ensure_key(paths: LabPaths) -> str:
    """Create the lab key (ed25519, no passphrase, 0600) once; return its public key line."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(paths.lock):
        if not paths.key.exists():
            proc = subprocess.run(
                [
                    "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostwiz-lab",
                    "-f", str(paths.key),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )  # fmt: skip
            if proc.returncode != 0:
                raise LabError(f"Could not create the lab SSH key: {proc.stderr.strip()}")
        os.chmod(paths.key, 0o600)
        return paths.public_key.read_text().strip()


def _quote(path: Path) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


def _config_block(host: LabHost, paths: LabPaths) -> str:
    return (
        f"{_BEGIN}{host.name}\n"
        f"Host {host.name}\n"
        f"    HostName {host.address}\n"
        "    User root\n"
        f"    IdentityFile {_quote(paths.key)}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {_quote(paths.known_hosts)}\n"
        "    StrictHostKeyChecking yes\n"
        f"{_END}{host.name}\n"
    )


def _without_blocks(text: str, names: set[str]) -> str:
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith(_BEGIN) and line[len(_BEGIN) :].strip() in names:
            skipping = True
            continue
        if skipping:
            if line.startswith(_END):
                skipping = False
            continue
        out.append(line)
    return "".join(out)


def _known_host_names(host: LabHost) -> set[str]:
    return {host.name, host.address, host.address6}


def _entry_host(pattern: str) -> str:
    """``[addr]:2222`` -> ``addr``: hostwiz records a host's key there after moving SSH."""
    if pattern.startswith("[") and "]:" in pattern:
        return pattern[1 : pattern.index("]:")]
    return pattern


def _without_known(text: str, patterns: set[str]) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        hosts = {_entry_host(pattern) for pattern in fields[0].split(",")} if fields else set()
        if fields and not line.startswith("#") and hosts & patterns:
            continue
        out.append(line)
    return "".join(out)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def add_host(paths: LabPaths, host: LabHost, host_keys: Sequence[str]) -> None:
    """Add ``host`` to ``ssh_config`` and its keys to ``known_hosts`` (replacing old entries)."""
    names = _known_host_names(host)
    key_lines = []
    for line in host_keys:
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
            key_lines.append(f"{','.join(sorted(names))} {fields[0]} {fields[1]}\n")
    if not key_lines:
        raise LabError(f"{host.name} reported no SSH host keys.")
    with file_lock(paths.lock):
        config = _without_blocks(_read(paths.ssh_config), {host.name}) or _HEADER
        if not config.endswith("\n"):
            config += "\n"
        _write(paths.ssh_config, config + _config_block(host, paths))
        known = _without_known(_read(paths.known_hosts), names)
        _write(paths.known_hosts, known + "".join(key_lines))


def remove_hosts(paths: LabPaths, names: Iterable[str]) -> None:
    """Drop the hosts' blocks from ``ssh_config`` and their lines from ``known_hosts``.

    Every known_hosts line the lab writes names the host, so matching the name is enough.
    """
    names = set(names)
    if not names or not paths.root.exists():
        return
    with file_lock(paths.lock):
        if paths.ssh_config.exists():
            _write(paths.ssh_config, _without_blocks(_read(paths.ssh_config), names))
        if paths.known_hosts.exists():
            _write(paths.known_hosts, _without_known(_read(paths.known_hosts), names))


def configured_names(paths: LabPaths) -> list[str]:
    """Hosts that have a block in ``ssh_config``."""
    return [
        line[len(_BEGIN) :].strip()
        for line in _read(paths.ssh_config).splitlines()
        if line.startswith(_BEGIN)
    ]
