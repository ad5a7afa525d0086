"""The SSH ports hostwiz moved hosts to, remembered on the admin's machine.

When the SSH step moves sshd to another port and the change is confirmed over the new port,
hostwiz notes ``host -> port`` here (``~/.local/state/hostwiz/ssh_ports.json``), so that the
next ``hostwiz --host NAME`` reaches the host even though the ssh config (or the lab's
ssh_config) still names the old port. A port in the target (``NAME:2222``) always wins, and a
remembered port that no longer answers is tried once, then the configured one (see
:meth:`wizard.transport.ssh.SshTransport.connect`).

Hosts are remembered by the name the admin types, without user or port: ``admin@web1`` and
``web1`` are the same host.
"""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs

from wizard.errors import ConnectionFailed
from wizard.local_files import write_atomic
from wizard.transport.sshconfig import parse_target


def ports_file() -> Path:
    return Path(platformdirs.user_state_dir("hostwiz")) / "ssh_ports.json"


def host_key(target: str) -> str:
    """``admin@web1:22`` -> ``web1``: the name ports are remembered under."""
    try:
        return parse_target(target).host
    except ConnectionFailed:  # not a readable target: remember it as written
        return target


def _load() -> dict[str, int]:
    try:
        data = json.loads(ports_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and 0 < v < 65536}


def _save(ports: dict[str, int]) -> None:
    path = ports_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, (json.dumps(ports, indent=2, sort_keys=True) + "\n").encode(), 0o600)


def remembered_port(target: str) -> int | None:
    """The port hostwiz last moved ``target``'s SSH server to, if any."""
    return _load().get(host_key(target))


def remember_port(target: str, port: int) -> None:
    ports = _load()
    if ports.get(host_key(target)) != port:
        ports[host_key(target)] = port
        _save(ports)


def forget_port(target: str) -> None:
    ports = _load()
    if ports.pop(host_key(target), None) is not None:
        _save(ports)
