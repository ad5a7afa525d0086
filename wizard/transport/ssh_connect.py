"""Open an SSH connection (paramiko): resolve the target, check the host key, log in.

This is the connecting half of :class:`wizard.transport.ssh.SshTransport`, which then gets
root rights and runs scripts over the connection. How a connection is made, in order:

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

Root rights (sudo) come next, in :mod:`wizard.transport.ssh`.
"""

from __future__ import annotations

import base64
import difflib
import errno
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from wizard.errors import (
    UNKNOWN_NAME,
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyChanged,
    HostKeyUnknown,
)
from wizard.practice_hosts import practice_host_names
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
from wizard.transport.sshconfig import Endpoint, default_identity_files, parse_target, resolve

# paramiko logs handshake failures at ERROR level; without any handler configured, Python's
# last-resort handler would print them over the UI. We report those failures ourselves, so
# paramiko's records only go wherever the application sends its logs.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

#: ProxyJump chains longer than this are refused (guards against a config that loops).
MAX_JUMP_DEPTH = 8


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


@dataclass(frozen=True)
class ConnectSettings:
    """Everything :meth:`~wizard.transport.ssh.SshTransport.reconnect` needs to do the same
    again (no secrets)."""

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


class Connector:
    """Opens authenticated paramiko transports for endpoints, following ProxyJump."""

    def __init__(self, settings: ConnectSettings, config: paramiko.SSHConfig) -> None:
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
                self._unknown_name_hint(ep),
                kind=UNKNOWN_NAME,
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
            # As OpenSSH does: SSH writes small packets and waits for the answer, so Nagle's
            # algorithm meeting the host's delayed ACK stalls a write by ~40 ms (each login
            # paid it once, ~50 ms instead of ~10; so did commands with input).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise self._tcp_error(ep, failures)

    def _unknown_name_hint(self, ep: Endpoint) -> str:
        """Check the name; names the ssh config's (and the practice hosts') Host entries close
        to the one typed, which is most likely misspelt."""
        typed = _typed_name(ep)
        close = [
            name
            for name in difflib.get_close_matches(typed, self._known_names(), n=3, cutoff=0.6)
            if name != typed
        ]
        did_you_mean = (
            f"did you mean {' or '.join(repr(name) for name in close)} (an ssh config Host entry)? "
            if close
            else ""
        )
        return (
            f"Check the host name {typed!r}: {did_you_mean}No DNS server knows it, and it is no "
            "Host entry of the ssh config (or that entry's HostName does not resolve). Or use "
            "the VM's IP address (its console shows it with `ip -br addr`)."
        )

    def _known_names(self) -> list[str]:
        """Concrete Host names of the loaded ssh config and of the practice hosts."""
        names = [
            name for name in self._config.get_hostnames() if not any(char in name for char in "*?!")
        ]
        return list(dict.fromkeys([*sorted(names), *practice_host_names()]))

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
                kind="refused",
            )
        if isinstance(exc, TimeoutError):
            return ConnectionFailed(
                f"No answer from {tried}{ep.aka} within {self._timeout:g} s.",
                "Check that the VM is running, that the address is right, and that no "
                "firewall drops SSH on the way.",
                kind="no-answer",
            )
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return ConnectionFailed(
                f"There is no network route to {tried}{ep.aka}: {exc.strerror}.",
                "Check the address and that this machine is on the same network as the VM.",
                kind="no-route",
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


def _typed_name(ep: Endpoint) -> str:
    """The host part of the name the admin typed (``admin@web1:22`` -> ``web1``)."""
    try:
        return parse_target(ep.label).host
    except ConnectionFailed:
        return ep.label


def _public_blob(path: Path) -> bytes | None:
    """The key blob from ``path``.pub, to match agent keys without reading the private key."""
    try:
        fields = Path(f"{path}.pub").read_text(encoding="utf-8").split()
        return base64.b64decode(fields[1], validate=True)
    except (OSError, IndexError, ValueError):
        return None
