"""Probes for tests on practice hosts: run as root on a host's console, send real traffic.

Everything runs inside the practice hosts' namespaces (through their consoles), so probes only
ever reach lab addresses.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab import LabHost, console
from wizard.transport.base import Transport

BUSYBOX = "/bin/busybox"
NFS_PROBE = Path(__file__).with_name("nfs_probe.py")


def require_busybox() -> None:
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("busybox (apt-get install busybox-static) gives the hosts ping and httpd")


def on_console(host: LabHost, script: str, timeout: float = 60) -> str:
    result = console(host).run(script, timeout=timeout)
    assert result.ok, f"{script!r} failed on {host.name}: {result.err}"
    return result.out


def nfs_practice_hosts(make_lab_hosts: Callable[..., list[LabHost]], count: int) -> list[LabHost]:
    """``count`` practice hosts (no dockerd) for NFS tests: the first is the server, its /srv on
    tmpfs (Ganesha cannot export from the practice host's overlay); every host gets
    ``tests/nfs_probe.py`` as /root/nfs_probe.py. Skips when NFS-Ganesha is not installed."""
    made: list[LabHost] = list(make_lab_hosts(count, docker=False))
    server = made[0]
    if "ganesha.nfsd" not in on_console(server, "command -v ganesha.nfsd; true"):
        pytest.skip("NFS-Ganesha is not installed (apt install nfs-ganesha nfs-ganesha-vfs)")
    on_console(server, "mount -t tmpfs srv /srv")
    probe = NFS_PROBE.read_bytes()
    for host in made:
        console(host).run("cat > /root/nfs_probe.py", stdin=probe)
    return made


def pings(host: LabHost, address: str) -> bool:
    """One ICMP echo from ``host`` to ``address`` (a lab address), answered within 2 s."""
    return console(host).run(f"{BUSYBOX} ping -c 1 -W 2 {address}", timeout=30).ok


def ssh_banner(host: LabHost, address: str, port: int = 22) -> str:
    """The first bytes sshd at ``address`` sends, connecting from ``host`` ("" if none)."""
    target = f"/dev/tcp/{address}/{port}"
    script = f"timeout 3 bash -c {shlex.quote(f'exec 3<>{target}; head -c 8 <&3')}"
    result = console(host).run(script, timeout=30)
    return result.out if result.ok else ""


def http_get(host: LabHost, address: str, port: int, path: str = "/") -> str:
    """The response to GET ``path`` from http://address:port within 3 s ("" if none), sent
    with bash's /dev/tcp (busybox wget cannot resolve in a static build)."""
    request = f"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
    script = f"timeout 3 bash -c {shlex.quote(f'exec 3<>/dev/tcp/{address}/{port}; {request}')}"
    result = console(host).run(script, timeout=30)
    return result.out if result.ok else ""


def serve_http(host: LabHost, port: int, body: str) -> None:
    """Start busybox httpd on ``host`` (all addresses) serving ``body`` at /; it lives as long
    as the host (its PID namespace ends with it)."""
    folder = f"/tmp/www-{port}"
    on_console(
        host,
        f"mkdir -p {folder} && printf %s {shlex.quote(body)} > {folder}/index.html && "
        f"{BUSYBOX} httpd -p {port} -h {folder}",
    )


def web(host: LabHost, address: str, name: str = "") -> str:
    """The response to GET / from http://address:80, sent from ``host`` with a Host header
    (``name``, default the address); "" if none within 8 s."""
    target = f"[{address}]" if ":" in address and not name else address
    request = f"printf 'GET / HTTP/1.0\\r\\nHost: {name or target}\\r\\n\\r\\n' >&3; cat <&3"
    script = f"timeout 8 bash -c {shlex.quote(f'exec 3<>/dev/tcp/{address}/80; {request}')}"
    result = console(host).run(script, timeout=30)
    return result.out if result.ok else ""


def connect_only(host: LabHost, address: str, port: int) -> str:
    """Connect to address:port directly, send a request and give up after 2 s: what came
    back ("" when the connection was dropped)."""
    script = f"exec 3<>/dev/tcp/{address}/{port}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
    result = console(host).run(f"timeout 2 bash -c {shlex.quote(script)}", timeout=30)
    return result.out


def wait_until(check: Callable[[], bool], seconds: float, every: float = 0.25) -> bool:
    """Poll ``check`` until it is true, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def wait_for(host_console: Transport, condition: str, seconds: float) -> bool:
    """Poll a shell condition on a host's console, for at most ``seconds``."""
    return wait_until(lambda: host_console.run(condition).ok, seconds)
