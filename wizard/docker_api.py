"""The Docker API of a host, through the docker SDK, tunnelled over hostwiz's own transport.

The SDK's own ``ssh://`` support opens a second SSH connection with its own host-key and sudo
handling. Instead, each HTTP connection here is a ``docker system dial-stdio`` process started
through the transport we already trust (as root, or as the rootless user), so the health checks
see exactly the daemon the admin configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import urllib3
from docker.transport.basehttpadapter import BaseHTTPAdapter

from wizard.transport.base import Stream, Transport, shell_quote

TUNNEL_URL = "http://hostwiz-tunnel:2375"
"""A name only this client uses: every request to it goes through the tunnel adapter."""

API_VERSION = "1.41"
"""Docker 20.10's API; newer daemons still speak it, so no version probe is needed to start."""


class _TunnelConnection(urllib3.connection.HTTPConnection):
    def __init__(self, open_stream: Callable[[], Stream], timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._open_stream = open_stream

    def connect(self) -> None:
        self.sock = self._open_stream()


class _TunnelPool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, open_stream: Callable[[], Stream], timeout: float) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=4)
        self._open_stream = open_stream
        self._timeout = timeout

    def _new_conn(self) -> _TunnelConnection:
        return _TunnelConnection(self._open_stream, self._timeout)


class _TunnelAdapter(BaseHTTPAdapter):  # type: ignore[misc]
    def __init__(self, open_stream: Callable[[], Stream], timeout: float) -> None:
        super().__init__()
        self._pool = _TunnelPool(open_stream, timeout)

    def get_connection(self, url: str, proxies: Any = None) -> _TunnelPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()


def dial_script(socket_path: str, run_as: str | None = None) -> str:
    """The host-side command that joins our stream to the daemon's socket."""
    dial = f"exec docker -H unix://{socket_path} system dial-stdio"
    if run_as:
        return f"exec runuser -u {shell_quote(run_as)} -- /bin/sh -c {shell_quote(dial)}"
    return dial


def docker_client(
    transport: Transport,
    *,
    socket_path: str = "/var/run/docker.sock",
    run_as: str | None = None,
    timeout: float = 30.0,
) -> Any:
    """A ``docker.DockerClient`` speaking to the daemon at ``socket_path`` on the host."""
    script = dial_script(socket_path, run_as)
    client = docker.DockerClient(base_url=TUNNEL_URL, version=API_VERSION)
    adapter = _TunnelAdapter(lambda: transport.open_stream(script), timeout)
    client.api.mount(TUNNEL_URL, adapter)
    client.api.timeout = timeout
    return client
