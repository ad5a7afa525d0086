"""One long-lived root shell per SSH connection, and the framing spoken with it.

Opening an exec channel costs a fork of sshd, a PAM session and a login shell on the host
(about 140 ms on a practice host). :class:`PersistentShell` pays that once per connection:
it opens one exec channel running ``/bin/sh`` as root and then writes every script to that
shell's stdin, framed so that the shell runs it in a subshell and sends back its stdout,
stderr and exit status separately.

Starting the shell
    The channel's command is ``[sudo ...] /bin/sh -c BOOT`` where :func:`boot_script` reads at
    most two lines and ``exec``\\ s a plain ``/bin/sh`` once it has read a random start token.
    With password sudo the password line is written first (sudo reads exactly that line); if
    sudo did not read it after all (a NOPASSWD rule added meanwhile), BOOT reads and drops it
    instead of the shell executing it as a command. The password never reaches the shell.
    The shell then makes a private directory (``mktemp -d``: mode 0700, owned by root) that an
    EXIT trap removes, and answers with a ready line. HUP, INT, PIPE and TERM exit through
    that trap too; subshells get the default actions back, so scripts see the usual signals.

One script
    ``__hw_s='SCRIPT'`` (single-quoted, parsed by the shell itself, so no argv and no
    MAX_ARG_STRLEN limit), stdin written to ``$D/i`` by the ``printf`` builtin with octal
    escapes (binary-exact, no fork), then::

        printf 'M:S\\n'
        ( unset ...; eval "unset __hw_s; $__hw_s" ) <$D/i >$D/o 2>$D/e; __hw_r=$?
        cat $D/o; printf 'M:O\\n'; cat $D/e; printf 'M:E %s\\n' "$__hw_r"
        rm -f $D/i $D/o $D/e

    ``M`` is a per-run marker containing 96 random bits that never appear anywhere a script can
    read them (not in argv or the environment), so no output can fake one. Outputs go to
    files, so megabytes on both streams cannot block each other, and a background process a
    script leaves behind holds a file (deleted after the run) rather than the channel: it
    cannot delay this run or leak into the next. The subshell gives each script its own
    variables, functions, traps, options and working directory; ``exit`` and ``exec`` end only
    the subshell. ``$$`` is the persistent shell's pid and ``$PPID`` sshd's (or sudo's), as
    ``$PPID`` was for ``/bin/sh -c``.

The ``M:S`` line tells a script that never started (the shell was gone: safe to retry on a
fresh shell) from one that ran and took the shell with it (``kill $$``).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import select
import time
from collections.abc import Callable, Sequence

import paramiko

from wizard.transport.base import shell_quote

#: Bytes per ``send``/``recv`` call on a channel.
CHUNK = 32768
#: How much of the shell's own stderr (not a script's) is kept for messages.
DIAGNOSTICS_LIMIT = 16384
#: Seconds sudo gets after printing something (a refused password) before its stdin closes.
SUDO_GRACE = 1.0

#: What ``mktemp -d`` may answer: only such a path is ever used (and removed when stale).
_DIRECTORY_RE = re.compile(r"(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)*/hostwiz\.[A-Za-z0-9]{10}")


def boot_script(token: str) -> str:
    """The ``/bin/sh -c`` argument that starts the persistent shell once ``token`` is read.

    It first says ``TOKEN boot`` (sudo has let it run). Then it reads at most two lines: the
    start token, and before it a sudo password line that sudo left unread (dropped). Anything
    else exits with 97 without running anything.
    """
    return (
        f"echo {token} boot; "
        'n=0; while [ "$n" -lt 2 ] && IFS= read -r l; do '
        f'[ "$l" = {token} ] && exec /bin/sh; n=$((n+1)); done; exit 97'
    )


def printf_format(data: bytes) -> bytes:
    """``data`` as a single-quoted ``printf`` format that prints exactly ``data`` (NULs too)."""
    escaped = data.replace(b"\\", b"\\\\").replace(b"%", b"%%").replace(b"\0", b"\\000")
    if escaped.startswith(b"-"):
        # printf would take a leading "-" (every PEM file: -----BEGIN) for an option.
        escaped = b"\\055" + escaped[1:]
    return single_quoted(escaped)


def single_quoted(data: bytes) -> bytes:
    """``data`` as one single-quoted shell word (any bytes but NUL survive unchanged)."""
    return b"'" + data.replace(b"'", b"'\\''") + b"'"


class ShellProtocol:
    """What is written to the persistent shell and how its answers are read (no I/O here)."""

    def __init__(self) -> None:
        #: Read by BOOT; appears in the boot command line (argv), so it is not the marker key.
        self.token = f"hw{secrets.token_hex(12)}"
        self._key = f"__hw{secrets.token_hex(12)}"
        self._seq = 0

    def boot_command(self) -> str:
        """``/bin/sh -c BOOT`` (the caller puts sudo in front where needed)."""
        return f"/bin/sh -c {shell_quote(boot_script(self.token))}"

    def boot_reader(self) -> LineReader:
        """Reads the line BOOT prints when it runs (so sudo accepted the password)."""
        return LineReader(self.token.encode())

    def hello(self, stale_directories: Sequence[str] = ()) -> tuple[bytes, LineReader]:
        """The start token and set-up lines, and the reader for the shell's ready line.

        ``stale_directories`` are the private directories of earlier shells of the same
        connection that may have ended without their EXIT trap (``kill -9``, or abandoned
        after a timeout); they are removed.
        """
        marker = f"{self._key}_R"
        stale = [shell_quote(d) for d in stale_directories if _DIRECTORY_RE.fullmatch(d)]
        cleanup = f"rm -rf -- {' '.join(stale)}\n" if stale else ""
        text = (
            f"{self.token}\n"
            f"{cleanup}"
            '__hw_d=$(mktemp -d "${TMPDIR:-/tmp}/hostwiz.XXXXXXXXXX") && [ -d "$__hw_d" ] '
            "|| exit 96\n"
            "trap 'rm -rf \"$__hw_d\"' EXIT\n"
            "trap 'exit 129' HUP\ntrap 'exit 130' INT\ntrap 'exit 141' PIPE\n"
            "trap 'exit 143' TERM\n"
            f"printf '%s %s\\n' '{marker}' \"$__hw_d\"\n"
        )
        return text.encode(), LineReader(marker.encode())

    def request(self, script: str, stdin: bytes) -> tuple[bytes, ReplyReader]:
        """The bytes that run ``script`` once with ``stdin``, and the reader for its reply."""
        self._seq += 1
        marker = f"{self._key}_{self._seq}"
        parts = [b"__hw_s=", single_quoted(script.encode()), b"\n"]
        if stdin:
            parts += [b"printf ", printf_format(stdin), b' > "$__hw_d/i"\n']
            source = b'"$__hw_d/i"'
        else:
            source = b"/dev/null"
        parts.append(
            f"printf '%s\\n' '{marker}:S'\n"
            '( unset __hw_d __hw_r; eval "unset __hw_s; $__hw_s" ) '
            f"< {source.decode()} "
            '> "$__hw_d/o" 2> "$__hw_d/e"; __hw_r=$?; unset __hw_s\n'
            '[ -s "$__hw_d/o" ] && cat "$__hw_d/o"; '
            f"printf '%s\\n' '{marker}:O'\n"
            '[ -s "$__hw_d/e" ] && cat "$__hw_d/e"; '
            f"printf '%s %s\\n' '{marker}:E' \"$__hw_r\"\n"
            'rm -f "$__hw_d/i" "$__hw_d/o" "$__hw_d/e"\n'.encode()
        )
        return b"".join(parts), ReplyReader(marker.encode())


class LineReader:
    """Waits for a line ``MARKER VALUE`` (BOOT's first line, the shell's ready line)."""

    def __init__(self, marker: bytes) -> None:
        self._marker = marker + b" "
        self._buffer = bytearray()
        self.value: str | None = None

    @property
    def done(self) -> bool:
        return self.value is not None

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self._buffer += data
        start = self._buffer.find(self._marker)
        if start < 0:
            del self._buffer[: -len(self._marker)]
            return
        end = self._buffer.find(b"\n", start)
        if end >= 0:
            self.value = self._buffer[start + len(self._marker) : end].decode("utf-8", "replace")
            self._buffer.clear()


class ReplyReader:
    """Parses one script's reply: ``M:S``, stdout, ``M:O``, stderr, ``M:E CODE``."""

    def __init__(self, marker: bytes) -> None:
        self._started = marker + b":S\n"
        self._out_end = marker + b":O\n"
        self._err_end = marker + b":E "
        self._buffer = bytearray()
        #: Where the next search for the awaited marker starts (no rescans of megabytes).
        self._scan = 0
        self.started = False
        self.stdout: bytes | None = None
        self.stderr: bytes | None = None
        self.exit_code: int | None = None

    @property
    def done(self) -> bool:
        return self.exit_code is not None

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while not self.done and self._step():
            pass

    def _find(self, marker: bytes) -> int:
        at = self._buffer.find(marker, self._scan)
        self._scan = max(0, len(self._buffer) - len(marker) + 1) if at < 0 else 0
        return at

    def _step(self) -> bool:
        """Consume one marker if it is complete; whether anything was consumed."""
        if not self.started:
            at = self._find(self._started)
            if at < 0:
                return False
            del self._buffer[: at + len(self._started)]
            self.started = True
            return True
        if self.stdout is None:
            at = self._find(self._out_end)
            if at < 0:
                return False
            self.stdout = bytes(self._buffer[:at])
            del self._buffer[: at + len(self._out_end)]
            return True
        at = self._find(self._err_end)
        if at < 0:
            return False
        end = self._buffer.find(b"\n", at)
        if end < 0:
            self._scan = at
            return False
        code = self._buffer[at + len(self._err_end) : end].decode("ascii", "replace").strip()
        self.stderr = bytes(self._buffer[:at])
        self.exit_code = int(code) if code.isdigit() else -1
        del self._buffer[: end + 1]
        return True


class ShellGone(Exception):
    """The shell's channel ended before the reply was complete."""

    def __init__(self, started: bool, diagnostics: bytes) -> None:
        super().__init__("the persistent shell ended")
        #: Whether the script had started (else it certainly never ran).
        self.started = started
        #: The shell's own stderr (sudo and sh messages), for explanations.
        self.diagnostics = diagnostics


class SudoRefused(Exception):
    """sudo ended without starting the shell (wrong or changed password, no rights...)."""

    def __init__(self, exit_status: int, diagnostics: bytes) -> None:
        super().__init__("sudo did not start the shell")
        self.exit_status = exit_status
        self.diagnostics = diagnostics


class ShellTimeout(Exception):
    """The deadline passed first."""


class ConnectionGone(Exception):
    """The SSH connection itself stopped."""


Alive = Callable[[], bool]


class PersistentShell:
    """A started shell on its own channel. One caller at a time (the transport locks)."""

    def __init__(self, channel: paramiko.Channel, protocol: ShellProtocol, directory: str) -> None:
        self._channel = channel
        self._protocol = protocol
        #: The private directory on the host (removed by the shell's EXIT trap).
        self.directory = directory

    @classmethod
    def start(
        cls,
        transport: paramiko.Transport,
        command_prefix: str,
        preamble: bytes,
        *,
        stale_directories: Sequence[str],
        deadline: float,
        alive: Alive,
    ) -> PersistentShell:
        """Open the channel, start the shell, wait until it is ready.

        ``command_prefix`` is put before ``/bin/sh -c BOOT`` (``""``, ``sudo -n --``...);
        ``preamble`` is written before anything else (the sudo password line, or nothing).
        With a preamble nothing more is written until BOOT runs: if sudo asks again (wrong
        password), it gets EOF instead of further lines to try as passwords, so one start
        costs at most one failed attempt, like one script did.

        Raises :class:`SudoRefused` when sudo ended without running BOOT, :class:`ShellGone`
        (with ``started=False``) when the shell did not come up otherwise,
        :class:`ShellTimeout` and :class:`ConnectionGone`; channel errors propagate as
        paramiko/OS errors.
        """
        protocol = ShellProtocol()
        command = f"{command_prefix} {protocol.boot_command()}".strip()
        channel = transport.open_session(timeout=max(0.1, min(deadline - time.monotonic(), 60)))
        boot = protocol.boot_reader()
        hello, ready = protocol.hello(stale_directories)
        stderr = _Stderr()

        def feed(data: bytes) -> None:
            boot.feed(data)
            ready.feed(data)

        try:
            channel.exec_command(command)
            try:
                if preamble:
                    _send(channel, preamble, deadline)
                    nudge = _SudoNudge(channel, stderr)
                    _pump(channel, feed, lambda: boot.done, stderr, deadline, alive, nudge)
                _send(channel, hello, deadline)
            except (OSError, EOFError, paramiko.SSHException):
                pass  # sudo or the shell ended: _pump sees the closed channel
            _pump(channel, feed, lambda: ready.done, stderr, deadline, alive)
        except ShellGone as gone:
            if command_prefix.startswith("sudo") and not boot.done:
                # sshd may send sudo's exit status just after the end of its output: wait for
                # it (bounded) before closing, or a refusal would look like a killed shell.
                channel.status_event.wait(max(0.0, min(2.0, deadline - time.monotonic())))
                status = channel.exit_status if channel.exit_status_ready() else -1
                channel.close()
                raise SudoRefused(status, gone.diagnostics) from None
            channel.close()
            raise
        except BaseException:
            channel.close()
            raise
        directory = ready.value or ""
        if not _DIRECTORY_RE.fullmatch(directory):
            channel.close()
            raise ShellGone(False, b"unexpected temporary directory name: " + directory.encode())
        return cls(channel, protocol, directory)

    @property
    def usable(self) -> bool:
        """Whether the shell still looks alive (it may still die before the next run)."""
        channel = self._channel
        return not (channel.closed or channel.eof_received or channel.exit_status_ready())

    def run(
        self, script: str, stdin: bytes, deadline: float, alive: Alive
    ) -> tuple[int, bytes, bytes]:
        """Run ``script``; ``(exit code, stdout, stderr)``.

        Raises :class:`ShellGone` if the shell ended first (``started`` tells whether the
        script had begun), :class:`ShellTimeout` or :class:`ConnectionGone`. After any of
        them the shell must not be used again.
        """
        data, reader = self._protocol.request(script, stdin)
        # If the shell is gone, _pump sees the closed channel and says whether it started.
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            _send(self._channel, data, deadline)
        _pump(
            self._channel,
            reader.feed,
            lambda: reader.done,
            _Stderr(),
            deadline,
            alive,
            started=lambda: reader.started,
        )
        return reader.exit_code or 0, reader.stdout or b"", reader.stderr or b""

    def close(self) -> None:
        """End the shell: its stdin reaches EOF, it exits and its EXIT trap cleans up."""
        self._channel.close()


def _send(channel: paramiko.Channel, data: bytes, deadline: float) -> None:
    """Write ``data`` to the channel's stdin, giving up at ``deadline``."""
    offset = 0
    try:
        while offset < len(data):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ShellTimeout
            channel.settimeout(remaining)
            try:
                sent = channel.send(data[offset : offset + CHUNK])
            except TimeoutError:
                raise ShellTimeout from None
            if sent <= 0:
                raise EOFError("channel closed")
            offset += sent
    finally:
        channel.settimeout(None)


class _Stderr:
    """The shell's own stderr (sudo's and sh's messages, not a script's): the last part."""

    def __init__(self) -> None:
        self.data = bytearray()
        #: When the last bytes came (None: nothing yet).
        self.last: float | None = None

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        del self.data[:-DIAGNOSTICS_LIMIT]
        self.last = time.monotonic()


class _SudoNudge:
    """While waiting for BOOT after the password line: once sudo has said something on stderr
    and BOOT still has not run :data:`SUDO_GRACE` seconds later, close the shell's stdin.

    A refused password is followed by "Sorry, try again." and another read, which then gets
    EOF rather than hanging until the deadline. Warnings sudo prints before reading the
    password (``unable to resolve host``) are harmless: the password line was already sent,
    so at worst BOOT runs, reads EOF and the transport falls back to a channel per script.
    """

    def __init__(self, channel: paramiko.Channel, stderr: _Stderr) -> None:
        self._channel = channel
        self._stderr = stderr
        self._closed = False

    def __call__(self) -> float:
        """Seconds until it wants to be asked again."""
        if self._closed or self._stderr.last is None:
            return 1.0
        left = self._stderr.last + SUDO_GRACE - time.monotonic()
        if left > 0:
            return left
        self._closed = True
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            self._channel.shutdown_write()
        return 1.0


def _pump(
    channel: paramiko.Channel,
    feed: Callable[[bytes], object],
    done: Callable[[], bool],
    stderr: _Stderr,
    deadline: float,
    alive: Alive,
    nudge: Callable[[], float] | None = None,
    *,
    started: Callable[[], bool] = lambda: False,
) -> None:
    """Read the channel into ``feed`` until ``done()``; its stderr goes to ``stderr``.

    Both streams are read as they come, so the shared SSH window never stalls on either.
    ``nudge`` is called while waiting and says how soon to call it again.
    """
    while True:
        while channel.recv_ready():
            feed(channel.recv(CHUNK))
        while channel.recv_stderr_ready():
            stderr.add(channel.recv_stderr(CHUNK))
        if done():
            return
        if channel.eof_received or channel.closed:
            if channel.recv_ready() or channel.recv_stderr_ready():
                continue
            raise ShellGone(started(), bytes(stderr.data))
        if not alive():
            raise ConnectionGone
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ShellTimeout
        wait = min(remaining, 1.0)
        if nudge is not None:
            wait = max(0.0, min(wait, nudge()))
        select.select([channel], [], [], wait)
