"""The one interface the core uses to touch a host.

Everything hostwiz does on a host is a POSIX ``sh`` script run as root (through sudo when the
login user is not root). Files are read and written by scripts too, so an SSH transport and a
local one behave the same and the core never needs SFTP or a second channel type.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


def shell_quote(value: str) -> str:
    """Quote one word for ``sh``."""
    return shlex.quote(value)


def hostwiz_command(transport: Transport, command: str, *words: str) -> str:
    """``hostwiz COMMAND --host NAME [-F FILE] [-i KEY] WORDS``, ready to paste: with the
    options that reach this host (an SSH transport's ``cli_options``), quoted for ``sh``."""
    options = getattr(transport, "cli_options", None) or ("--host", transport.host_label)
    return " ".join(shell_quote(word) for word in ("hostwiz", command, *options, *words))


@dataclass(frozen=True)
class CommandResult:
    """What a script did: its exit code and both output streams."""

    script: str
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@dataclass
class TransportStats:
    """Counters the benchmarks read: how many round trips a run needed."""

    round_trips: int = 0
    connections: int = 0
    history: list[str] = field(default_factory=list)


class Stream(Protocol):
    """The socket-like end of a running script's stdin/stdout (a socket or a paramiko Channel)."""

    def sendall(self, data: bytes) -> None: ...

    def recv(self, size: int) -> bytes: ...

    def settimeout(self, timeout: float | None) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """A connection to one host, with root rights there."""

    @property
    def host_label(self) -> str:
        """How the admin names this host (for messages)."""
        ...

    @property
    def stats(self) -> TransportStats: ...

    def run(self, script: str, *, stdin: bytes = b"", timeout: float = 300.0) -> CommandResult:
        """Run ``script`` with ``/bin/sh`` as root on the host; ``stdin`` is fed to it.

        Never raises for a non-zero exit: the caller decides. Raises
        :class:`wizard.errors.ConnectionFailed` when the host cannot be reached.
        """
        ...

    def open_stream(self, script: str) -> Stream:
        """Start ``script`` as root and return a socket joined to its stdin/stdout.

        Used to speak HTTP to the Docker API through ``docker system dial-stdio``.
        """
        ...

    def reconnect(self, *, port: int | None = None) -> Transport:
        """A fresh, independent connection (new TCP connection, new authentication).

        The commit-confirmed apply only trusts a confirmation that arrives this way. ``port``:
        the host's SSH server has just moved there (None: where this connection went).
        """
        ...

    def close(self) -> None: ...
