"""Turning a target (``NAME`` or ``user@host[:port]``) into connection settings.

Settings come from an OpenSSH client config file read with :class:`paramiko.SSHConfig`
(``~/.ssh/config`` unless another file is given). Only the options hostwiz acts on are kept:
HostName, User, Port, IdentityFile, IdentitiesOnly, IdentityAgent (``none`` only),
UserKnownHostsFile, GlobalKnownHostsFile, HashKnownHosts, HostKeyAlias and ProxyJump.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from wizard.errors import ConnectionFailed
from wizard.transport.known_hosts import DEFAULT_SSH_PORT

DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


@dataclass(frozen=True)
class Endpoint:
    """Everything needed to reach and log in to one host (a target or a jump host)."""

    #: The name as the admin wrote it (``web1``, ``admin@10.0.0.5:2222``).
    label: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[Path, ...]
    #: True when IdentityFile was given in the config (so defaults are not added).
    identity_files_configured: bool
    identities_only: bool
    use_agent: bool
    known_hosts_files: tuple[Path, ...]
    global_known_hosts_files: tuple[Path, ...]
    hash_known_hosts: bool
    host_key_alias: str | None
    #: ProxyJump hops in order, as written (``[user@]host[:port]`` or ``ssh://...``).
    proxy_jump: tuple[str, ...] = field(default=())

    @property
    def aka(self) -> str:
        """`` (label)`` when the admin's name for the host differs from its address, else ``""``.

        Lets messages say ``10.0.0.5:22 (web1)`` without repeating ``10.0.0.5`` twice.
        """
        try:
            host = parse_target(self.label).host
        except ConnectionFailed:
            host = self.label
        return "" if host == self.hostname else f" ({self.label})"

    @property
    def address(self) -> str:
        """``host:port`` for messages (IPv6 in brackets)."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ParsedTarget:
    user: str | None
    host: str
    port: int | None


def parse_target(target: str) -> ParsedTarget:
    """Split ``[user@]host[:port]`` (``host`` may be ``[v6addr]``) or ``ssh://`` URLs."""
    text = target.strip()
    if text.startswith("ssh://"):
        text = text[len("ssh://") :].rstrip("/")
    if not text:
        raise ConnectionFailed(
            "No host was given.", "Give a host name from your ssh config, or user@host[:port]."
        )
    user: str | None = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        user = user or None
    port: int | None = None
    host = text
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise ConnectionFailed(
                f"Cannot read the host in {target!r}.", "Write it as [addr]:port."
            )
        host = text[1:close]
        rest = text[close + 1 :]
        if rest.startswith(":"):
            port = _parse_port(rest[1:], target)
        elif rest:
            raise ConnectionFailed(
                f"Cannot read the host in {target!r}.", "Write it as [addr]:port."
            )
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _parse_port(port_text, target)
    if not host:
        raise ConnectionFailed(f"No host name in {target!r}.", "Write it as user@host[:port].")
    return ParsedTarget(user, host, port)


def _parse_port(text: str, target: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise ConnectionFailed(
        f"{text!r} in {target!r} is not a port number.", "Use a number from 1 to 65535."
    )


def load_config(path: Path | None) -> paramiko.SSHConfig:
    """The given ssh config file, or ``~/.ssh/config`` if it exists, or an empty config."""
    if path is None:
        default = Path("~/.ssh/config").expanduser()
        if not default.is_file():
            return paramiko.SSHConfig()
        path = default
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except FileNotFoundError:
        raise ConnectionFailed(
            f"The ssh config file {path} does not exist.", "Check the path, or leave it out."
        ) from None
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise ConnectionFailed(
            f"Cannot read the ssh config file {path}: {exc}", "Fix the file and run again."
        ) from None


def _expand(value: str, *, hostname: str, port: int, user: str, alias: str) -> str:
    """OpenSSH-style ``~`` and ``%`` tokens for file options paramiko leaves alone."""
    local_user = getpass.getuser()
    tokens = {
        "%%": "%",
        "%d": os.path.expanduser("~"),
        "%h": hostname,
        "%p": str(port),
        "%r": user,
        "%u": local_user,
        "%n": alias,
    }
    out = []
    i = 0
    while i < len(value):
        pair = value[i : i + 2]
        if pair in tokens:
            out.append(tokens[pair])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return os.path.expanduser("".join(out))


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true")


def resolve(target: str, config: paramiko.SSHConfig) -> Endpoint:
    """Apply ``config`` to ``target``; explicit user/port in the target win over the config."""
    parsed = parse_target(target)
    options = config.lookup(parsed.host)
    hostname = str(options.get("hostname", parsed.host))
    port_text = options.get("port")
    port = parsed.port
    if port is None:
        port = _parse_port(str(port_text), target) if port_text else DEFAULT_SSH_PORT
    user = parsed.user or str(options.get("user") or getpass.getuser())

    def expand(value: str) -> str:
        return _expand(value, hostname=hostname, port=port, user=user, alias=parsed.host)

    configured = options.get("identityfile")
    identity_values: list[str] = list(configured) if isinstance(configured, list) else []
    identity_files = tuple(Path(expand(value)) for value in identity_values)

    def file_list(key: str, default: tuple[str, ...]) -> tuple[Path, ...]:
        raw = options.get(key)
        values = str(raw).split() if raw else list(default)
        return tuple(Path(expand(v)) for v in values if v.lower() != "none")

    jump_raw = str(options.get("proxyjump") or "").strip()
    hops: tuple[str, ...] = ()
    if jump_raw and jump_raw.lower() != "none":
        hops = tuple(h.strip() for h in jump_raw.split(",") if h.strip())

    agent = str(options.get("identityagent") or "").strip().lower()
    alias = options.get("hostkeyalias")
    return Endpoint(
        label=target,
        hostname=hostname,
        port=port,
        user=user,
        identity_files=identity_files,
        identity_files_configured=bool(identity_values),
        identities_only=_yes(options.get("identitiesonly")),
        use_agent=agent != "none",
        known_hosts_files=file_list("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS),
        global_known_hosts_files=file_list("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS),
        hash_known_hosts=_yes(options.get("hashknownhosts")),
        host_key_alias=str(alias) if alias else None,
        proxy_jump=hops,
    )


def default_identity_files() -> tuple[Path, ...]:
    return tuple(Path(p).expanduser() for p in DEFAULT_IDENTITIES)
