"""Run scripts as root on a remote host over SSH (paramiko), through sudo when needed.

Connecting (resolving the target with the ssh config, ProxyJump, the host key check and
public key login) is :mod:`wizard.transport.ssh_connect`. Then:

4. Root rights: a root login runs scripts with ``/bin/sh``. Any other user goes through sudo,
   probed once with ``sudo -k -n true``. (The probe runs as the first script of a persistent
   shell started without sudo, which is kept for a root login: one channel, not two, as sshd
   forks a session with PAM for each; if no such shell starts, it gets a channel of its own.)
   If that works, the shell is started with ``sudo -n --``. Otherwise the sudo password is
   required; it is checked once with ``sudo -k -S -p '' true`` and then every shell is
   started with ``sudo -k -S -p '' --`` and the password as the first line of its stdin
   (``sudo -S`` reads exactly one line). The password is only ever written to a channel's
   stdin.

Counting: ``stats.round_trips`` counts :meth:`SshTransport.run` and
:meth:`SshTransport.open_stream` calls (the one or two sudo checks made while connecting, and
starting the persistent shell, are not counted); ``stats.connections`` counts connects, and is
shared with the transports :meth:`SshTransport.reconnect` returns.

Scripts: :meth:`SshTransport.run` does not open a channel per script. The first run starts one
persistent root shell on its own exec channel (the same ``sudo`` prefix and password line as
above, then ``/bin/sh``), and every script is written to that shell's stdin and run in a
subshell of it, with its own stdin and its stdout, stderr and exit status sent back separately
(see :mod:`wizard.transport.persistent`). That saves sshd's fork, PAM session and login shell
per script (about 140 ms each). A shell that a script ended (``kill $$``) or that timed out is
replaced on the next run; if no shell can be started at all, or another thread is using it,
scripts run the old way, each on its own channel as ``[sudo ...] /bin/sh -c SCRIPT``.
``persistent=False`` always does that (for benchmarks). :meth:`SshTransport.open_stream` always
uses a channel of its own.

Timeouts: :meth:`SshTransport.run` raises :class:`CommandTimedOut` (a
:class:`ConnectionFailed`) when the script does not finish in time; it never returns a made-up
exit code. A script whose shell is killed (``kill -9 $$``; no exit status) returns
``exit_code == -1``; a script killed by a signal otherwise returns 128 + the signal number, as
``sh`` reports it (on its own channel, without the persistent shell, it is -1 as well).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from pathlib import Path
from types import TracebackType

import paramiko

from wizard.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
    SudoFailed,
)
from wizard.secrets import MASK, Secret, mask
from wizard.transport.base import CommandResult, Stream, TransportStats, shell_quote
from wizard.transport.known_hosts import DEFAULT_SSH_PORT
from wizard.transport.persistent import (
    ConnectionGone,
    PersistentShell,
    ShellGone,
    ShellTimeout,
    SudoRefused,
)
from wizard.transport.ports import forget_port, remembered_port
from wizard.transport.ssh_connect import AcceptNewHostKey, Connector, ConnectSettings
from wizard.transport.sshconfig import Endpoint, load_config, parse_target, resolve

_log = logging.getLogger(__name__)

#: Bytes per ``sendall``/``recv`` call on a channel.
CHUNK = 32768


class CommandTimedOut(ConnectionFailed):
    """A script ran longer than its timeout; its channel was closed."""

    title = "The host did not finish in time"


SudoPassword = Secret | Callable[[], Secret] | None


class SudoMode(Enum):
    ROOT = "root login"
    NOPASSWD = "sudo without password"
    PASSWORD = "sudo with password"


def _first_line(script: str, limit: int = 60) -> str:
    line = script.strip().splitlines()[0] if script.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class SshTransport:
    """A :class:`~wizard.transport.base.Transport` over one SSH connection.

    Create it with :meth:`connect`. :meth:`run` may be called from several threads: one at a
    time uses the persistent shell, the others meanwhile get a channel of their own.
    """

    def __init__(
        self,
        *,
        settings: ConnectSettings,
        endpoint: Endpoint,
        transport: paramiko.Transport,
        jumps: list[paramiko.Transport],
        mode: SudoMode,
        password: Secret | None,
        stats: TransportStats,
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._transport = transport
        self._jumps = jumps
        self._mode = mode
        self._password = password
        self._stats = stats
        #: Held while a script runs in the persistent shell (or the shell is being started).
        self._shell_lock = threading.Lock()
        self._shell: PersistentShell | None = None
        #: Private directories of shells that ended without cleaning up (``kill -9``): the next
        #: shell removes them.
        self._stale_directories: list[str] = []
        #: Why no persistent shell could be started on this connection (then scripts get a
        #: channel each); None while it works or was not tried yet.
        self.shell_unavailable: str | None = None
        self._configured_port = endpoint.port

    # ----------------------------------------------------------------- construction

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        ssh_config: Path | None = None,
        known_hosts: Path | None = None,
        accept_new_host_key: AcceptNewHostKey = False,
        sudo_password: SudoPassword = None,
        identity_file: Path | None = None,
        connect_timeout: float = 10,
        persistent: bool = True,
        port: int | None = None,
        use_remembered_port: bool = True,
    ) -> SshTransport:
        """Connect, check the host key, log in and make sure root rights are available.

        ``target`` is a name from the ssh config or ``user@host[:port]``. ``known_hosts``
        replaces the config's UserKnownHostsFile (and the global files) when given.
        ``accept_new_host_key`` trusts a key seen for the first time (True, or a callback
        asked with a :class:`~.ssh_connect.HostKeyInfo`); a *changed* key is refused regardless.
        ``sudo_password`` is only used (and a callback only called, once) when the login user
        is not root and sudo asks for a password. ``persistent=False`` runs every script on
        a channel of its own instead of in the connection's persistent shell (benchmarks).

        The port: one in ``target`` (``web1:2222``) or ``port`` wins; otherwise the port
        hostwiz moved the host's SSH server to (remembered after a confirmed port change),
        falling back to the configured one (then forgotten) if that port does not answer;
        otherwise the ssh config's. On a port other than the configured one, the host key
        recorded for the configured port vouches for the same key (see
        :func:`~wizard.transport.known_hosts.check_moved`).
        """
        settings = ConnectSettings(
            target=target,
            ssh_config=ssh_config,
            known_hosts=known_hosts,
            accept_new_host_key=accept_new_host_key,
            identity_file=identity_file,
            connect_timeout=connect_timeout,
            persistent=persistent,
            port=port,
            remembered_port=use_remembered_port and port is None,
        )
        return cls._open(settings, sudo_password, TransportStats(connections=1))

    @classmethod
    def _open(
        cls,
        settings: ConnectSettings,
        sudo_password: SudoPassword,
        stats: TransportStats,
        known_mode: SudoMode | None = None,
    ) -> SshTransport:
        config = load_config(settings.ssh_config)
        configured = resolve(settings.target, config)
        remembered = cls._remembered(settings, configured)
        if remembered is None:
            port = configured.port if settings.port is None else settings.port
            return cls._open_at(
                settings, config, configured, port, sudo_password, stats, known_mode
            )
        try:
            return cls._open_at(
                settings, config, configured, remembered, sudo_password, stats, known_mode
            )
        except (AuthenticationFailed, HostKeyChanged, HostKeyUnknown):
            raise  # sshd answers there: the port is right
        except ConnectionFailed as not_there:
            # Moved back by hand, or the host was rebuilt: try where the config points.
            try:
                fresh = cls._open_at(
                    settings, config, configured, configured.port, sudo_password, stats,
                    known_mode,
                )  # fmt: skip
            except (AuthenticationFailed, HostKeyChanged, HostKeyUnknown):
                raise
            except ConnectionFailed:
                raise not_there from None
            _log.info("%s answers on its configured port again", settings.target)
            forget_port(settings.target)
            return fresh

    @staticmethod
    def _remembered(settings: ConnectSettings, configured: Endpoint) -> int | None:
        if settings.port is not None or not settings.remembered_port:
            return None
        if parse_target(settings.target).port is not None:
            return None
        port = remembered_port(settings.target)
        return None if port in (None, configured.port) else port

    @classmethod
    def _open_at(
        cls,
        settings: ConnectSettings,
        config: paramiko.SSHConfig,
        configured: Endpoint,
        port: int,
        sudo_password: SudoPassword,
        stats: TransportStats,
        known_mode: SudoMode | None = None,
    ) -> SshTransport:
        """Connect to ``port``; the returned transport's reconnects go to the same port.

        ``known_mode``: how this login gets root, known from an earlier connection with the
        same settings (a reconnect): then it is not probed again (see :meth:`reconnect`).
        """
        moved_from = settings.moved_from
        if port != configured.port:
            moved_from = (*moved_from, configured.port)
        settings = replace(settings, port=port, moved_from=moved_from, remembered_port=False)
        endpoint = replace(configured, port=port)
        connector = Connector(settings, config)
        transport, jumps = connector.open(endpoint, depth=0)
        self = cls(
            settings=settings,
            endpoint=endpoint,
            transport=transport,
            jumps=jumps,
            mode=SudoMode.ROOT,
            password=None,
            stats=stats,
        )
        self._configured_port = configured.port
        if known_mode is not None:
            self._mode = known_mode
            if known_mode is SudoMode.PASSWORD:
                password = sudo_password() if callable(sudo_password) else sudo_password
                if password is None:  # cannot happen: PASSWORD mode is only set with one
                    self.close()
                    raise SudoFailed("No sudo password is known for this connection.")
                self._password = password
            return self
        try:
            self._setup_root_rights(sudo_password)
        except BaseException:
            self.close()
            raise
        return self

    # ----------------------------------------------------------------- Transport protocol

    @property
    def host_label(self) -> str:
        return self._settings.target

    @property
    def stats(self) -> TransportStats:
        return self._stats

    @property
    def login_user(self) -> str:
        return self._endpoint.user

    @property
    def hostname(self) -> str:
        """The name or address the connection goes to (HostName from the ssh config)."""
        return self._endpoint.hostname

    @property
    def port(self) -> int:
        """The port this connection went to."""
        return self._endpoint.port

    @property
    def configured_port(self) -> int:
        """The port the target or the ssh config names (``port`` may be a remembered one)."""
        return self._configured_port

    @property
    def sudo_mode(self) -> SudoMode:
        return self._mode

    def ssh_command(self, port: int | None = None) -> str:
        """The OpenSSH command for the same login (to ``port`` instead of this one's)."""
        parsed = parse_target(self._settings.target)
        words = ["ssh"]
        if self._settings.ssh_config is not None:
            words += ["-F", shell_quote(str(self._settings.ssh_config))]
        if self._settings.identity_file is not None:
            words += ["-i", shell_quote(str(self._settings.identity_file))]
        wanted = self._endpoint.port if port is None else port
        if wanted != DEFAULT_SSH_PORT:
            words += ["-p", str(wanted)]
        words.append(f"{parsed.user}@{parsed.host}" if parsed.user else parsed.host)
        return " ".join(words)

    @property
    def cli_options(self) -> tuple[str, ...]:
        """``--host TARGET`` plus what a pasted ``hostwiz`` command needs to reach the host the
        same way: ``-F`` for an ssh config other than the usual one (a practice host's is
        found by itself), ``-i`` for a key given by hand."""
        from wizard.practice_hosts import practice_ssh_config

        words = ["--host", self._settings.target]
        config = self._settings.ssh_config
        usual = {Path.home() / ".ssh" / "config", practice_ssh_config()}
        if config is not None and config.expanduser().absolute() not in usual:
            words += ["-F", str(config)]
        if self._settings.identity_file is not None:
            words += ["-i", str(self._settings.identity_file)]
        return tuple(words)

    def run(self, script: str, *, stdin: bytes = b"", timeout: float = 300.0) -> CommandResult:
        """Run ``script`` as root with ``/bin/sh``; stdout and stderr are collected fully.

        Raises :class:`CommandTimedOut` after ``timeout`` seconds and :class:`ConnectionFailed`
        when the connection is lost. A non-zero exit is returned, not raised.
        """
        self._stats.round_trips += 1
        deadline = time.monotonic() + timeout
        if self._settings.persistent and self._shell_lock.acquire(blocking=False):
            try:
                result = self._run_in_shell(script, stdin, deadline, timeout)
            finally:
                self._shell_lock.release()
            if result is not None:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out(script, timeout)
        command, prefix = self._wrap(script)
        code, out, err = self._exec(command, prefix + stdin, remaining, script)
        return CommandResult(script, code, out, err)

    def open_stream(self, script: str) -> Stream:
        """Start ``script`` as root and return its channel as a socket-like stream.

        With password sudo, the password line is sent before the channel is returned, so
        everything the caller sends goes to the script. stderr is left unread (it is meant
        for quiet programs like ``docker system dial-stdio``).
        """
        self._stats.round_trips += 1
        command, prefix = self._wrap(script)
        channel = self._start(command, script, timeout=self._settings.connect_timeout)
        if prefix:
            try:
                channel.sendall(prefix)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                channel.close()
                raise self._lost(script, exc) from None
        return channel

    def reconnect(self, *, port: int | None = None) -> SshTransport:
        """A new connection with the same settings (new TCP, new login, same sudo password).

        It goes to the same port as this one, or to ``port`` when the host's SSH server moved
        there: then the host key must be the one trusted on this connection's port. The new
        transport shares :attr:`stats` with this one.

        How the login gets root is known from this connection, so it is not probed again: the
        first script goes straight to a root shell (through sudo as before, where needed),
        on one channel. A probe costs a round trip for a root login, and a whole channel
        (sshd's fork and PAM session, ~0.2 s) for a sudo login, on the confirmation's path. If
        the change broke that way to root, that first script fails (sudo refuses it), which
        is no confirmation either.
        """
        settings = self._settings
        if port is not None and port != self._endpoint.port:
            moved_from = (*settings.moved_from, self._endpoint.port)
            settings = replace(settings, port=port, moved_from=moved_from)
        fresh = self._open(settings, self._password, self._stats, self._mode)
        self._stats.connections += 1
        return fresh

    def close(self) -> None:
        shell = self._shell
        if shell is not None:
            shell.close()  # EOF: the shell exits and removes its private directory
        self._transport.close()
        for jump in reversed(self._jumps):
            jump.close()

    def __enter__(self) -> SshTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SshTransport({self._settings.target!r}, user={self._endpoint.user!r}, "
            f"address={self._endpoint.address!r}, mode={self._mode.value!r})"
        )

    # ----------------------------------------------------------------- persistent shell

    def _run_in_shell(
        self, script: str, stdin: bytes, deadline: float, timeout: float
    ) -> CommandResult | None:
        """Run ``script`` in the persistent shell (started if needed); None: use a channel.

        Called with the shell lock held.
        """
        for _ in range(2):
            shell = self._shell
            if shell is not None and not shell.usable:
                self._discard_shell()
                shell = None
            if shell is None:
                try:
                    shell = self._start_shell(script, deadline, timeout)
                except SudoRefused as refused:
                    # What running the script on its own channel would have returned too.
                    if self._connection_died():
                        raise self._lost(script, None) from None
                    err = self._masked(refused.diagnostics)
                    return CommandResult(script, refused.exit_status, b"", err)
                if shell is None:
                    return None
            try:
                code, out, err = shell.run(script, stdin, deadline, self._transport.is_active)
            except ShellTimeout:
                self._discard_shell()
                raise self._timed_out(script, timeout) from None
            except ConnectionGone:
                self._discard_shell()
                raise self._lost(script, None) from None
            except ShellGone as gone:
                self._discard_shell()
                if self._connection_died():
                    raise self._lost(script, None) from None
                if gone.started:
                    # The script ended its own shell (kill $$): killed, like a signal.
                    return CommandResult(script, -1, b"", self._masked(gone.diagnostics))
                continue  # the shell was gone before the script started: a fresh one
            return CommandResult(script, code, out, err)
        # Two fresh shells in a row ended before running anything: stop using them.
        self.shell_unavailable = "the shell ended before running a script, twice"
        return None

    def _start_shell(self, script: str, deadline: float, timeout: float) -> PersistentShell | None:
        """A new persistent shell, or None (and :attr:`shell_unavailable` set) if none starts.

        Raises :class:`SudoRefused` when sudo refused to start it (not a reason to stop trying:
        the script itself would have been refused the same way).
        """
        if self.shell_unavailable is not None:
            return None
        prefix, preamble = self._sudo_prefix()
        try:
            shell = PersistentShell.start(
                self._transport,
                prefix,
                preamble,
                stale_directories=tuple(self._stale_directories),
                deadline=deadline,
                alive=self._transport.is_active,
            )
        except ShellTimeout:
            raise self._timed_out(script, timeout) from None
        except ConnectionGone:
            raise self._lost(script, None) from None
        except ShellGone as gone:
            if self._connection_died():
                raise self._lost(script, None) from None
            reason = self._masked(gone.diagnostics).decode("utf-8", "replace").strip()
            self.shell_unavailable = reason or "the shell ended while starting"
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if not self._transport.is_active():
                raise self._lost(script, exc) from None
            self.shell_unavailable = str(exc) or type(exc).__name__
        else:
            self._stale_directories.clear()
            self._shell = shell
            return shell
        _log.info(
            "No persistent shell on %s (%s): one channel per script.",
            self.host_label,
            self.shell_unavailable,
        )
        return None

    def _discard_shell(self) -> None:
        """Close the current shell after a failure; the next one removes its files.

        Its EXIT trap may never run (``kill -9``), or only once an abandoned script ends.
        """
        shell, self._shell = self._shell, None
        if shell is None:
            return
        shell.close()
        self._stale_directories = [*self._stale_directories[-7:], shell.directory]

    def _masked(self, data: bytes) -> bytes:
        """``data`` without the sudo password in it."""
        if self._password is None or not self._password.reveal():
            return data
        return data.replace(self._password.reveal().encode(), MASK.encode())

    # ----------------------------------------------------------------- sudo

    def _sudo_prefix(self) -> tuple[str, bytes]:
        """What goes before ``/bin/sh`` on the command line, and the bytes to send first."""
        if self._mode is SudoMode.ROOT:
            return "", b""
        if self._mode is SudoMode.NOPASSWD:
            return "sudo -n --", b""
        if self._password is None:  # cannot happen: PASSWORD mode is only set with one
            raise SudoFailed("No sudo password is known for this connection.")
        return "sudo -k -S -p '' --", self._password.reveal().encode() + b"\n"

    def _wrap(self, script: str) -> tuple[str, bytes]:
        """The remote command line for ``script`` and the bytes to send before stdin."""
        prefix, preamble = self._sudo_prefix()
        return f"{prefix} /bin/sh -c {shell_quote(script)}".strip(), preamble

    _PROBE = (
        'if [ "$(id -u)" = 0 ]; then echo root; '
        "elif ! command -v sudo >/dev/null 2>&1; then echo no-sudo; "
        "elif LC_ALL=C sudo -k -n true >/dev/null 2>&1; then echo nopasswd; "
        "else echo password; fi"
    )

    def _probe_in_shell(self) -> tuple[int, bytes, bytes] | None:
        """Run the probe as the first script of a persistent shell started without sudo.

        The shell is kept when the login is root: connecting then costs one channel (sshd's
        fork and PAM session) instead of two, which a no-change plan and the confirmation's
        new connection both feel. Otherwise it is closed at once (a sudo shell replaces it
        on the first run). None when no shell could run the probe: then it gets a channel.
        """
        if not self._settings.persistent:
            return None
        deadline = time.monotonic() + 60
        alive = self._transport.is_active
        try:
            shell = PersistentShell.start(
                self._transport, "", b"", stale_directories=(), deadline=deadline, alive=alive
            )
        except (ShellTimeout, ConnectionGone, ShellGone, OSError, EOFError, paramiko.SSHException):
            return None
        try:
            code, out, err = shell.run(self._PROBE, b"", deadline, alive)
        except (ShellTimeout, ConnectionGone, ShellGone, OSError, EOFError, paramiko.SSHException):
            shell.close()
            return None
        if out.strip().splitlines()[-1:] == [b"root"]:
            self._shell = shell
        else:
            shell.close()
        return code, out, err

    def _setup_root_rights(self, sudo_password: SudoPassword) -> None:
        ep = self._endpoint
        probed = self._probe_in_shell()
        if probed is None:
            probed = self._exec(f"/bin/sh -c {shell_quote(self._PROBE)}", b"", 60, "probe")
        code, out, err = probed
        answer = out.decode("utf-8", "replace").strip().splitlines()
        verdict = answer[-1] if answer else ""
        if verdict == "root":
            self._mode = SudoMode.ROOT
            return
        if verdict == "nopasswd":
            self._mode = SudoMode.NOPASSWD
            return
        if verdict == "no-sudo":
            raise SudoFailed(
                f"{ep.user} is not root on {self.host_label}, and sudo is not installed there.",
                f"Log in as root, or on the VM console as root run: apt-get install sudo && "
                f"usermod -aG sudo {ep.user} (then connect again).",
            )
        if verdict != "password":
            raise SudoFailed(
                f"Could not find out whether {ep.user} may use sudo on {self.host_label} "
                f"(the check exited with status {code}).",
                "Check that the login shell works (try ssh and `sudo -v` by hand).",
                details=err.decode("utf-8", "replace"),
            )
        password = sudo_password() if callable(sudo_password) else sudo_password
        if password is None or not password.reveal():
            raise SudoFailed(
                f"{ep.user} on {self.host_label} needs a password for sudo, and none was given.",
                "Give the sudo password of this user, or log in as root.",
            )
        if "\n" in password.reveal() or "\r" in password.reveal():
            raise SudoFailed(
                "The sudo password contains a line break, which sudo cannot read.",
                "Check the password you entered.",
            )
        code, out, err = self._exec(
            "env LC_ALL=C sudo -k -S -p '' true",
            password.reveal().encode() + b"\n",
            60,
            "sudo check",
        )
        if code == 0:
            self._mode = SudoMode.PASSWORD
            self._password = password
            return
        text = mask(err.decode("utf-8", "replace"), [password])
        if "not in the sudoers" in text or "may not run sudo" in text or "not allowed" in text:
            raise SudoFailed(
                f"{ep.user} is not allowed to use sudo on {self.host_label}.",
                f"On the VM console, as root, add the user to the sudo group: usermod -aG sudo "
                f"{ep.user} (wheel on Fedora/RHEL), then connect again.",
                details=text,
            )
        if "must have a tty" in text or "requiretty" in text:
            raise SudoFailed(
                f"sudo on {self.host_label} only works from a terminal (Defaults requiretty).",
                "On the VM console, as root, remove `Defaults requiretty` with visudo, then "
                "connect again.",
                details=text,
            )
        if "incorrect password" in text or "try again" in text or "no password" in text:
            raise SudoFailed(
                f"The sudo password for {ep.user} on {self.host_label} is wrong.",
                "Enter the password again (it is the user's own login password).",
                details=text,
            )
        raise SudoFailed(
            f"sudo refused {ep.user} on {self.host_label} (status {code}).",
            "Check `sudo -v` for this user on the VM console.",
            details=text,
        )

    # ----------------------------------------------------------------- channels

    def _lost(self, script: str, exc: BaseException | None) -> ConnectionFailed:
        reason = f" ({exc})" if exc and str(exc) else ""
        return ConnectionFailed(
            f"The connection to {self.host_label} was lost while running "
            f"`{_first_line(script)}`{reason}.",
            "Check that the host is up and reachable, then run again. The command may or may "
            "not have finished.",
        )

    def _start(self, command: str, script: str, timeout: float) -> paramiko.Channel:
        if not self._transport.is_active():
            raise self._lost(script, None)
        try:
            channel = self._transport.open_session(timeout=timeout)
            channel.exec_command(command)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._lost(script, exc) from None
        return channel

    def _exec(
        self, command: str, stdin: bytes, timeout: float, script: str
    ) -> tuple[int, bytes, bytes]:
        """Run ``command`` on a fresh channel; feed ``stdin`` while draining both outputs.

        stdin is written by a helper thread and both outputs are read here, so neither side
        can fill a window while the other waits: megabytes in both directions are fine.
        """
        deadline = time.monotonic() + timeout
        channel = self._start(command, script, timeout=min(timeout, 60))
        writer = threading.Thread(target=_feed, args=(channel, stdin), daemon=True)
        writer.start()
        out = bytearray()
        err = bytearray()
        try:
            while True:
                while channel.recv_ready():
                    out += channel.recv(CHUNK)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(CHUNK)
                if channel.eof_received or channel.closed:
                    if not channel.recv_ready() and not channel.recv_stderr_ready():
                        break
                    continue
                if not self._transport.is_active():
                    raise self._lost(script, None)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timed_out(script, timeout)
                select.select([channel], [], [], min(remaining, 1.0))
            while not channel.status_event.wait(min(max(deadline - time.monotonic(), 0), 1.0)):
                if not self._transport.is_active():
                    raise self._lost(script, None)
                if time.monotonic() >= deadline:
                    raise self._timed_out(script, timeout)
            code = channel.exit_status
            if code == -1 and self._connection_died():
                # paramiko closes every channel (status -1) before marking the transport
                # inactive, so a -1 alone does not tell a dead connection from a signal.
                raise self._lost(script, None)
        finally:
            channel.close()
            writer.join(timeout=5)
        return code, bytes(out), bytes(err)

    def _connection_died(self, settle: float = 0.5) -> bool:
        """Whether the transport is dead, giving its thread ``settle`` seconds to say so."""
        end = time.monotonic() + settle
        while time.monotonic() < end:
            if not self._transport.is_active():
                return True
            time.sleep(0.02)
        return not self._transport.is_active()

    def _timed_out(self, script: str, timeout: float) -> CommandTimedOut:
        return CommandTimedOut(
            f"`{_first_line(script)}` did not finish within {timeout:g} s on {self.host_label}.",
            "The host may be busy or stuck: look at it from the console. The command was "
            "abandoned (its channel closed), which may or may not have stopped it.",
        )


def _feed(channel: paramiko.Channel, data: bytes) -> None:
    """Write ``data`` to the channel's stdin, then send EOF. Runs in its own thread.

    Errors are swallowed: they mean the command ended or the connection died, and the reader
    reports both.
    """
    try:
        for offset in range(0, len(data), CHUNK):
            channel.sendall(data[offset : offset + CHUNK])
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass
