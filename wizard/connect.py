"""Opening a connection from command-line options, with prompts only where a person is present."""

from __future__ import annotations

import getpass
import importlib
import sys
import threading
from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path

from wizard.errors import HostwizError, SudoFailed
from wizard.practice_hosts import practice_host_names, practice_ssh_config
from wizard.secrets import Secret
from wizard.transport.ssh import SshTransport
from wizard.transport.ssh_connect import HostKeyInfo


def lab_ssh_config(target: str) -> Path | None:
    """The lab's ssh_config when ``target`` names a practice host (``hw1``, ``admin@hw1``)."""
    name = target.rsplit("@", 1)[-1].split(":", 1)[0]
    return practice_ssh_config() if name in practice_host_names() else None


_PROMPTS = threading.Lock()
"""One question on the terminal at a time: a site's hosts connect at the same time."""


def _ask_host_key(info: HostKeyInfo) -> bool:
    if not sys.stdin.isatty():
        return False
    with _PROMPTS:
        return _ask_host_key_now(info)


def _ask_host_key_now(info: HostKeyInfo) -> bool:
    print(
        f"\n{info.host} presents a {info.key_type} host key never seen before:\n"
        f"  {info.fingerprint}\n"
        "Compare it with the VM console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).",
        file=sys.stderr,
    )
    return input("Trust this key and continue? [y/N] ").strip().lower() in {"y", "yes"}


def _sudo_password_source(args: Namespace) -> Callable[[], Secret]:
    def ask() -> Secret:
        if getattr(args, "sudo_password_stdin", False):
            with _PROMPTS:
                return Secret(sys.stdin.readline().rstrip("\n"))
        if not sys.stdin.isatty():
            raise SudoFailed(
                "the login user needs a sudo password and nobody is here to type it.",
                "Run interactively, pass --sudo-password-stdin, or log in as root.",
            )
        with _PROMPTS:
            return Secret(getpass.getpass(f"sudo password on {args.host}: "))

    return ask


def ssh_config_for(args: Namespace) -> Path | None:
    """The ssh config to use: ``-F``, else the lab's for a practice host, else the default."""
    return Path(args.ssh_config) if args.ssh_config else lab_ssh_config(args.host)


def _import_meanwhile(modules: Sequence[str]) -> None:
    """Import ``modules`` in a thread, while this one waits for the host.

    Connecting is mostly waiting (TCP, the host's key exchange, its PAM session and shell),
    and planning then imports the steps, the session and the renderer (~85 modules): done
    meanwhile, they cost the plan nothing. An import that fails here is left for the real
    import to raise, where it is explained.
    """

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the command's own import raises it again, explained
                continue

    # Not a daemon: the interpreter waits for it at exit instead of stopping it mid-import.
    threading.Thread(target=load, name="hostwiz-imports").start()


def open_transport(
    args: Namespace,
    *,
    port: int | None = None,
    identity: Path | None = None,
    connect_timeout: float = 10,
    meanwhile: Sequence[str] = (),
) -> SshTransport:
    """Connect as the options say. ``port`` and ``identity`` override them (``recover`` tries
    other ports and keys); without ``port``, a port hostwiz moved SSH to is remembered.
    ``meanwhile``: modules the command needs next, imported while the connection opens."""
    if not args.host:
        raise HostwizError(
            "no host given.",
            "Add --host NAME (from your ssh config, a practice host, or user@host[:port]).",
        )
    if meanwhile:
        _import_meanwhile(meanwhile)
    accept = True if args.accept_new_host_key else _ask_host_key
    if identity is None and args.identity:
        identity = Path(args.identity)
    return SshTransport.connect(
        args.host,
        ssh_config=ssh_config_for(args),
        accept_new_host_key=accept,
        sudo_password=_sudo_password_source(args),
        identity_file=identity,
        port=port,
        connect_timeout=connect_timeout,
    )
