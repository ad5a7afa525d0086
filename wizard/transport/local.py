"""Run scripts on this machine, optionally inside a practice host's namespaces.

``LocalTransport(enter=("nsenter", "-t", "1234", "-a"))`` is the practice host's console: the
same view a VM's serial console gives. Tests use it to check outcomes independently of SSH.
A bare ``LocalTransport()`` acts on this machine itself and is only for scripts that touch
temporary folders the caller owns.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence

from wizard.transport.base import CommandResult, Stream, Transport, TransportStats


class LocalTransport:
    def __init__(self, enter: Sequence[str] = (), label: str = "localhost") -> None:
        self._enter = tuple(enter)
        self._label = label
        self._stats = TransportStats(connections=1)

    @property
    def host_label(self) -> str:
        return self._label

    @property
    def stats(self) -> TransportStats:
        return self._stats

    def _argv(self, script: str) -> list[str]:
        return [*self._enter, "/bin/sh", "-c", script]

    def run(self, script: str, *, stdin: bytes = b"", timeout: float = 300.0) -> CommandResult:
        self._stats.round_trips += 1
        proc = subprocess.run(
            self._argv(script), input=stdin, capture_output=True, timeout=timeout, check=False
        )
        return CommandResult(script, proc.returncode, proc.stdout, proc.stderr)

    def open_stream(self, script: str) -> Stream:
        ours, theirs = socket.socketpair()
        subprocess.Popen(
            self._argv(script),
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=subprocess.DEVNULL,
        )
        theirs.close()
        return ours

    def reconnect(self, *, port: int | None = None) -> Transport:
        """A new console (it has no port: ``port`` changes nothing)."""
        clone = LocalTransport(self._enter, self._label)
        clone._stats = self._stats
        self._stats.connections += 1
        return clone

    def close(self) -> None:
        pass
