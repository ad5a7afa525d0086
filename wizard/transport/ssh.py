"""Run scripts as root on a remote host over SSH (paramiko), through sudo when needed.

How a connection is made, in order:

1. ``target`` is resolved with the ssh config (``~/.ssh/config`` or the given file):
   HostName, User, Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile, HostKeyAlias,
   HashKnownHosts and ProxyJump (each hop reached through a ``direct-tcpip`` channel of the
   previous one, like ``ssh -J``).
2. TCP connect and SSH key exchange. The host key is checked against known_hosts *before* any
   credential is sent: a known key passes, an unknown key raises :class:`HostKeyUnknown` unless
   the caller accepts it (then it is appended to known_hosts atomically), and a different key
   raises :class:`HostKeyChanged` whatever the caller says. paramiko's host key policies are
   not used at all.
3. Public key login: ssh-agent keys, then key files (``identity_file``, IdentityFile, or the
   default ``~/.ssh/id_{ed25519,ecdsa,rsa}``). Key passphrases are never asked for: a
   protected key must be in the agent.
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

import base64
import errno
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from wizard.transport.known_hosts import (
    DEFAULT_SSH_PORT,
    KnownHosts,
    Verdict,
    atomic_append_line,
    check_moved,
    fingerprint_sha256,
    hash_host,
    host_entry_name,
    preferred_host_key_algorithms,
)
from wizard.transport.persistent import (
    ConnectionGone,
    PersistentShell,
    ShellGone,
    ShellTimeout,
    SudoRefused,
)
from wizard.transport.ports import forget_port, remembered_port
from wizard.transport.sshconfig import (
    Endpoint,
    default_identity_files,
    load_config,
    parse_target,
    resolve,
)

# paramiko logs handshake failures at ERROR level; without any handler configured, Python's
# last-resort handler would print them over the UI. We report those failures ourselves, so
# paramiko's records only go wherever the application sends its logs.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
_log = logging.getLogger(__name__)

#: ProxyJump chains longer than this are refused (guards against a config that loops).
MAX_JUMP_DEPTH = 8
#: Bytes per ``sendall``/``recv`` call on a channel.
CHUNK = 32768


class CommandTimedOut(ConnectionFailed):
    """A script ran longer than its timeout; its channel was closed."""

    title = "The host did not finish in time"


@dataclass(frozen=True)
class HostKeyInfo:
    """What the admin needs to decide whether to trust a host key seen for the first time."""

    #: The name as written (target or jump host), e.g. ``web1`` or ``admin@10.0.0.5``.
    host: str
    hostname: str
    port: int
    #: ``ssh-ed25519``, ``ecdsa-sha2-nistp256``, ``ssh-rsa``...
    key_type: str
    #: OpenSSH format: ``SHA256:`` + base64 without padding.
    fingerprint: str
    #: The known_hosts file the key will be added to if accepted.
    known_hosts: Path


AcceptNewHostKey = bool | Callable[[HostKeyInfo], bool]
SudoPassword = Secret | Callable[[], Secret] | None


class SudoMode(Enum):
    ROOT = "root login"
    NOPASSWD = "sudo without password"
    PASSWORD = "sudo with password"


@dataclass(frozen=True)
class _Settings:
    """Everything :meth:`SshTransport.reconnect` needs to do the same again (no secrets)."""

    target: str
    ssh_config: Path | None
    known_hosts: Path | None
    accept_new_host_key: AcceptNewHostKey
    identity_file: Path | None
    connect_timeout: float
    #: Scripts go through one persistent shell (False: one exec channel per script).
    persistent: bool = True
    #: Connect to this port instead of the configured one (None: as configured).
    port: int | None = None
    #: Ports the host's SSH server moved from: a key on record for the host at one of them
    #: is accepted (and recorded) for the new port, any other key is refused.
    moved_from: tuple[int, ...] = ()
    #: Use the port hostwiz remembers for the host (:mod:`wizard.transport.ports`).
    remembered_port: bool = True


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
        settings: _Settings,
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
        asked with a :class:`HostKeyInfo`); a *changed* key is refused regardless.
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
        settings = _Settings(
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
        cls, settings: _Settings, sudo_password: SudoPassword, stats: TransportStats
    ) -> SshTransport:
        config = load_config(settings.ssh_config)
        configured = resolve(settings.target, config)
        remembered = cls._remembered(settings, configured)
        if remembered is None:
            port = configured.port if settings.port is None else settings.port
            return cls._open_at(settings, config, configured, port, sudo_password, stats)
        try:
            return cls._open_at(settings, config, configured, remembered, sudo_password, stats)
        except (AuthenticationFailed, HostKeyChanged, HostKeyUnknown):
            raise  # sshd answers there: the port is right
        except ConnectionFailed as not_there:
            # Moved back by hand, or the host was rebuilt: try where the config points.
            try:
                fresh = cls._open_at(
                    settings, config, configured, configured.port, sudo_password, stats
                )
            except (AuthenticationFailed, HostKeyChanged, HostKeyUnknown):
                raise
            except ConnectionFailed:
                raise not_there from None
            _log.info("%s answers on its configured port again", settings.target)
            forget_port(settings.target)
            return fresh

    @staticmethod
    def _remembered(settings: _Settings, configured: Endpoint) -> int | None:
        if settings.port is not None or not settings.remembered_port:
            return None
        if parse_target(settings.target).port is not None:
            return None
        port = remembered_port(settings.target)
        return None if port in (None, configured.port) else port

    @classmethod
    def _open_at(
        cls,
        settings: _Settings,
        config: paramiko.SSHConfig,
        configured: Endpoint,
        port: int,
        sudo_password: SudoPassword,
        stats: TransportStats,
    ) -> SshTransport:
        """Connect to ``port``; the returned transport's reconnects go to the same port."""
        moved_from = settings.moved_from
        if port != configured.port:
            moved_from = (*moved_from, configured.port)
        settings = replace(settings, port=port, moved_from=moved_from, remembered_port=False)
        endpoint = replace(configured, port=port)
        connector = _Connector(settings, config)
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
        """
        settings = self._settings
        if port is not None and port != self._endpoint.port:
            moved_from = (*settings.moved_from, self._endpoint.port)
            settings = replace(settings, port=port, moved_from=moved_from)
        fresh = self._open(settings, self._password, self._stats)
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


class _Connector:
    """Opens authenticated paramiko transports for endpoints, following ProxyJump."""

    def __init__(self, settings: _Settings, config: paramiko.SSHConfig) -> None:
        self._settings = settings
        self._config = config

    @property
    def _timeout(self) -> float:
        return self._settings.connect_timeout

    def open(
        self, endpoint: Endpoint, depth: int
    ) -> tuple[paramiko.Transport, list[paramiko.Transport]]:
        """The transport to ``endpoint`` and the jump transports it rides on (outermost first).

        Like ``ssh -J a,b target``: ``a`` is reached with its own config (including its own
        ProxyJump), ``b`` through ``a``, and the target through ``b``.
        """
        if depth > MAX_JUMP_DEPTH:
            raise ConnectionFailed(
                f"ProxyJump for {endpoint.label} goes more than {MAX_JUMP_DEPTH} hops deep.",
                "Check your ssh config for a ProxyJump loop.",
            )
        chain: list[paramiko.Transport] = []
        try:
            via: tuple[paramiko.Transport, Endpoint] | None = None
            if endpoint.proxy_jump:
                first = resolve(endpoint.proxy_jump[0], self._config)
                transport, sub = self.open(first, depth + 1)
                chain += [*sub, transport]
                via = (transport, first)
                for hop in endpoint.proxy_jump[1:]:
                    hop_endpoint = replace(resolve(hop, self._config), proxy_jump=())
                    transport = self._establish(hop_endpoint, via)
                    chain.append(transport)
                    via = (transport, hop_endpoint)
            moved_from = self._settings.moved_from if depth == 0 else ()
            return self._establish(endpoint, via, moved_from), chain
        except BaseException:
            for transport in reversed(chain):
                transport.close()
            raise

    # ----------------------------------------------------------------- one hop

    def _establish(
        self,
        ep: Endpoint,
        via: tuple[paramiko.Transport, Endpoint] | None,
        moved_from: tuple[int, ...] = (),
    ) -> paramiko.Transport:
        sock: socket.socket | paramiko.Channel = (
            self._tcp(ep) if via is None else self._tunnel(ep, *via)
        )
        try:
            transport = paramiko.Transport(sock)
        except BaseException:
            sock.close()
            raise
        try:
            transport.banner_timeout = self._timeout
            transport.handshake_timeout = self._timeout
            transport.auth_timeout = max(self._timeout, 30.0)
            known, write_to = self._known_hosts(ep)
            key_name, key_port = self._key_name(ep)
            options = transport.get_security_options()
            known_types = known.known_types(key_name, key_port)
            for old_port in moved_from:  # ask for the key type trusted where SSH was
                known_types += known.known_types(key_name, old_port)
            options.key_types = preferred_host_key_algorithms(known_types, list(options.key_types))
            server_key = self._handshake(transport, ep)
            self._check_host_key(ep, server_key, known, write_to, moved_from)
            self._authenticate(transport, ep)
            transport.set_keepalive(30)
        except BaseException:
            transport.close()
            raise
        return transport

    def _handshake(self, transport: paramiko.Transport, ep: Endpoint) -> paramiko.PKey:
        """Key exchange; returns the server's host key (nothing is sent to it yet)."""
        hint = (
            "Check that this port is the host's SSH server (sshd) and not another service, "
            "and that sshd is healthy (journalctl -u ssh on the VM console)."
        )
        try:
            # start_client returns without error when its timeout passes, hence the checks
            transport.start_client(timeout=self._timeout)
            return transport.get_remote_server_key()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            if not transport.is_active() and transport.get_exception() is None:
                reason = "the connection was closed"
            if transport.is_active() or reason == "No existing session":
                reason = f"no complete answer within {self._timeout:g} s"
            raise ConnectionFailed(
                f"{ep.address}{ep.aka} accepted the connection, but the SSH handshake "
                f"failed: {reason}.",
                hint,
            ) from None

    def _tcp(self, ep: Endpoint) -> socket.socket:
        try:
            infos = socket.getaddrinfo(ep.hostname, ep.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectionFailed(
                f"The host name {ep.hostname!r}{ep.aka} could not be resolved: {exc.strerror}.",
                "Check the spelling and your DNS, or use the VM's IP address (its console "
                "shows it with `ip -br addr`).",
            ) from None
        failures: list[tuple[str, OSError]] = []
        for family, kind, proto, _, addr in infos:
            host = str(addr[0])
            shown = f"[{host}]:{ep.port}" if family == socket.AF_INET6 else f"{host}:{ep.port}"
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self._timeout)
            try:
                sock.connect(addr)
            except OSError as exc:
                sock.close()
                failures.append((shown, exc))
                continue
            sock.settimeout(None)
            return sock
        raise self._tcp_error(ep, failures)

    def _tcp_error(self, ep: Endpoint, failures: list[tuple[str, OSError]]) -> ConnectionFailed:
        if not failures:
            return ConnectionFailed(
                f"{ep.hostname!r} has no usable address.", "Use the VM's IP address instead."
            )
        exc = failures[-1][1]
        tried = ", ".join(s for s, _ in failures)
        if isinstance(exc, ConnectionRefusedError):
            return ConnectionFailed(
                f"{tried}{ep.aka} refused the connection: nothing listens on port {ep.port} there.",
                "Check the port, and that the SSH server runs on the host "
                "(systemctl status ssh on the VM console).",
            )
        if isinstance(exc, TimeoutError):
            return ConnectionFailed(
                f"No answer from {tried}{ep.aka} within {self._timeout:g} s.",
                "Check that the VM is running, that the address is right, and that no "
                "firewall drops SSH on the way.",
            )
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return ConnectionFailed(
                f"There is no network route to {tried}{ep.aka}: {exc.strerror}.",
                "Check the address and that this machine is on the same network as the VM.",
            )
        return ConnectionFailed(
            f"Could not connect to {tried}{ep.aka}: {exc.strerror or exc}.",
            "Check the address and port, and that the VM is up.",
        )

    def _tunnel(self, ep: Endpoint, via: paramiko.Transport, via_ep: Endpoint) -> paramiko.Channel:
        try:
            return via.open_channel(
                "direct-tcpip",
                dest_addr=(ep.hostname, ep.port),
                src_addr=("127.0.0.1", 0),
                timeout=self._timeout,
            )
        except paramiko.ChannelException as exc:
            hint = (
                "Allow TCP forwarding on the jump host (AllowTcpForwarding in its sshd_config)."
                if exc.code == 1
                else "Check the address and port as seen from the jump host."
            )
            raise ConnectionFailed(
                f"The jump host {via_ep.label} could not open a connection to "
                f"{ep.address}{ep.aka}: {exc.text}.",
                hint,
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectionFailed(
                f"The jump host {via_ep.label} did not open a connection to {ep.address}{ep.aka}: "
                f"{exc or type(exc).__name__}.",
                "Check that the jump host can reach the target, then run again.",
            ) from None

    # ----------------------------------------------------------------- host keys

    def _known_hosts(self, ep: Endpoint) -> tuple[KnownHosts, Path]:
        """The files to read and the one to write an accepted key to."""
        if self._settings.known_hosts is not None:
            return KnownHosts([self._settings.known_hosts]), self._settings.known_hosts
        user_files = list(ep.known_hosts_files)
        write_to = user_files[0] if user_files else Path("~/.ssh/known_hosts").expanduser()
        return KnownHosts([*user_files, *ep.global_known_hosts_files]), write_to

    @staticmethod
    def _key_name(ep: Endpoint) -> tuple[str, int]:
        """Name and port under which the key is recorded (HostKeyAlias drops the port)."""
        if ep.host_key_alias:
            return ep.host_key_alias, DEFAULT_SSH_PORT
        return ep.hostname, ep.port

    def _check_host_key(
        self,
        ep: Endpoint,
        key: paramiko.PKey,
        known: KnownHosts,
        write_to: Path,
        moved_from: tuple[int, ...] = (),
    ) -> None:
        name, port = self._key_name(ep)
        blob = key.asbytes()
        fingerprint = fingerprint_sha256(blob)
        if moved_from and port == ep.port:  # (a HostKeyAlias does not depend on the port)
            check = check_moved(known, name, port, moved_from, key.get_name(), blob)
        else:
            check = known.check(name, port, key.get_name(), blob)
        if check.verdict is Verdict.KNOWN:
            return
        if check.verdict in (Verdict.CHANGED, Verdict.REVOKED):
            recorded = check.conflicting.path if check.conflicting else write_to
            raise HostKeyChanged(host_entry_name(name, port), fingerprint, str(recorded))
        if check.verdict is Verdict.MOVED:
            # The very key trusted for this host where its SSH server was: same machine.
            self._record_key(ep, key, name, port, write_to)
            return
        info = HostKeyInfo(
            host=ep.label,
            hostname=ep.hostname,
            port=ep.port,
            key_type=key.get_name(),
            fingerprint=fingerprint,
            known_hosts=write_to,
        )
        policy = self._settings.accept_new_host_key
        accepted = policy if isinstance(policy, bool) else bool(policy(info))
        if not accepted:
            raise HostKeyUnknown(f"{ep.address}{ep.aka}", fingerprint, key.get_name())
        self._record_key(ep, key, name, port, write_to)

    @staticmethod
    def _record_key(ep: Endpoint, key: paramiko.PKey, name: str, port: int, write_to: Path) -> None:
        entry = host_entry_name(name, port)
        if ep.hash_known_hosts:
            entry = hash_host(entry)
        try:
            atomic_append_line(write_to, f"{entry} {key.get_name()} {key.get_base64()}")
        except OSError as exc:
            raise ConnectionFailed(
                f"Could not record the host key of {ep.label} in {write_to}: {exc.strerror}.",
                "Check that the file and its folder are writable.",
            ) from None

    # ----------------------------------------------------------------- login

    def _identity_files(self, ep: Endpoint) -> tuple[list[Path], bool]:
        """Key files to try, and whether they were named explicitly (missing = a problem)."""
        files: list[Path] = []
        if self._settings.identity_file is not None:
            files.append(self._settings.identity_file.expanduser())
        files += [p for p in ep.identity_files if p not in files]
        if files:
            return files, True
        return list(default_identity_files()), False

    def _authenticate(self, transport: paramiko.Transport, ep: Endpoint) -> None:
        files, explicit = self._identity_files(ep)
        tried: list[str] = []
        #: (what went wrong, what to do) for keys that could not even be offered
        problems: list[tuple[str, str]] = []
        tried_blobs: set[bytes] = set()
        attempt = _Attempt(transport, ep)

        def offer(label: str, key: paramiko.PKey) -> bool:
            if key.asbytes() in tried_blobs:
                return False
            tried_blobs.add(key.asbytes())
            if attempt.offer(key):
                return True
            if not attempt.disconnected:
                tried.append(label)
            return False

        def agent_label(key: paramiko.PKey) -> str:
            return f"{key.get_name()} key from ssh-agent ({fingerprint_sha256(key.asbytes())})"

        agent = paramiko.Agent() if ep.use_agent and os.environ.get("SSH_AUTH_SOCK") else None
        try:
            agent_keys: list[paramiko.PKey] = []
            if agent is not None:
                try:
                    agent_keys = list(agent.get_keys())
                except (paramiko.SSHException, OSError) as exc:
                    problems.append(
                        (f"ssh-agent could not be used ({exc})", "Check that ssh-agent runs.")
                    )
            # Named keys first, so unrelated agent keys cannot use up sshd's MaxAuthTries
            # before the key the admin pointed at is offered.
            named = {_public_blob(p) for p in files} - {None}
            for agent_key in agent_keys:
                if agent_key.asbytes() in named and offer(agent_label(agent_key), agent_key):
                    return
            for path in files:
                key = self._load_key(path, explicit, problems)
                if key is not None and offer(f"{path} ({key.get_name()})", key):
                    return
            if not ep.identities_only:
                for agent_key in agent_keys:
                    if offer(agent_label(agent_key), agent_key):
                        return
        finally:
            if agent is not None:
                agent.close()

        where = f"{ep.user}@{ep.address}"
        pub = f"{files[0]}.pub" if files else "~/.ssh/id_ed25519.pub"
        port_opt = f"-p {ep.port} " if ep.port != DEFAULT_SSH_PORT else ""
        install = (
            f"Install your public key for {ep.user}: ssh-copy-id -i {pub} {port_opt}"
            f"{ep.user}@{ep.hostname}, or on the VM console append the contents of {pub} to "
            f"~{ep.user}/.ssh/authorized_keys. Then connect again."
        )
        if attempt.refused_method is not None:
            raise AuthenticationFailed(
                f"{where}{ep.aka} does not accept SSH keys; it only offers: "
                f"{', '.join(attempt.refused_method) or 'nothing'}.",
                "Enable public key login in the host's sshd_config (PubkeyAuthentication yes) "
                "from the console, then " + install[0].lower() + install[1:],
            )
        if attempt.disconnected:
            raise AuthenticationFailed(
                f"{where}{ep.aka} closed the connection after {len(tried)} key(s) were "
                f"refused ({'; '.join(tried)}).",
                "Too many keys were offered (sshd's MaxAuthTries): set IdentitiesOnly yes and "
                "IdentityFile for this host, or pass the right key file. " + install,
            )
        lines = []
        if tried:
            lines.append(f"{where}{ep.aka} refused every key offered: {'; '.join(tried)}.")
        else:
            lines.append(f"There was no SSH key to log in to {where}{ep.aka} with.")
        lines += [text[0].upper() + text[1:] + "." for text, _ in problems]
        fixes = [fix for _, fix in problems]
        if not tried and not problems:
            agent_state = (
                "ssh-agent offered no keys"
                if ep.use_agent and os.environ.get("SSH_AUTH_SOCK")
                else "no ssh-agent is available"
            )
            lines.append(
                f"{agent_state[0].upper()}{agent_state[1:]}, and none of "
                + ", ".join(str(p) for p in files)
                + " exist."
            )
            fixes.append(
                "Create a key with ssh-keygen -t ed25519, then " + install[0].lower() + install[1:]
            )
        elif tried:
            fixes.append(install)
        hint = " ".join(dict.fromkeys(fixes))
        raise AuthenticationFailed(" ".join(lines), hint)

    @staticmethod
    def _load_key(
        path: Path, explicit: bool, problems: list[tuple[str, str]]
    ) -> paramiko.PKey | None:
        """The private key in ``path``, or None with the reason added to ``problems``."""
        try:
            return paramiko.PKey.from_path(path)
        except FileNotFoundError:
            if explicit:
                problems.append((f"{path} does not exist", "Check the key file's path."))
        except (TypeError, paramiko.PasswordRequiredException):
            # cryptography raises TypeError for an encrypted key without a password
            problems.append(
                (
                    f"{path} is protected by a passphrase, and hostwiz does not ask for "
                    "key passphrases",
                    f"Load the key into ssh-agent first (eval $(ssh-agent) && ssh-add {path}) "
                    "and run hostwiz from the same shell.",
                )
            )
        except (OSError, ValueError, paramiko.SSHException) as exc:
            problems.append(
                (
                    f"{path} could not be read as a private key ({exc})",
                    "Give the private key file (not the .pub), in OpenSSH or PEM format.",
                )
            )
        return None


class _Attempt:
    """Offers keys one at a time and remembers why login stopped."""

    def __init__(self, transport: paramiko.Transport, ep: Endpoint) -> None:
        self._transport = transport
        self._ep = ep
        self.refused_method: list[str] | None = None
        self.disconnected = False

    def offer(self, key: paramiko.PKey) -> bool:
        if self.refused_method is not None or self.disconnected:
            return False
        try:
            self._transport.auth_publickey(self._ep.user, key)
        except paramiko.BadAuthenticationType as exc:
            self.refused_method = list(exc.allowed_types)
            return False
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, EOFError, OSError):
            self.disconnected = True
            return False
        return self._transport.is_authenticated()


def _public_blob(path: Path) -> bytes | None:
    """The key blob from ``path``.pub, to match agent keys without reading the private key."""
    try:
        fields = Path(f"{path}.pub").read_text(encoding="utf-8").split()
        return base64.b64decode(fields[1], validate=True)
    except (OSError, IndexError, ValueError):
        return None
