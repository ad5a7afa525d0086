"""``hostwiz recover``: when the configured way in fails, try the others and say what worked.

The candidates come from what hostwiz knows (the configured port, the port it remembers, the
ports the local journal says SSH was at or moved to), then common SSH ports, other users and
other keys (see :func:`wizard.recovery.find_a_way_in`). A key on record for the host's
configured port vouches for the same key on another port; any other key is refused.

:func:`look_for_ways_in` is the search with its consequences (the port remembered, the options
for next time) and no output of its own: the CLI (:func:`try_other_ways`) prints each try, the
wizard's recovery screen lists them.
"""

from __future__ import annotations

import socket
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wizard.connect import open_transport, ssh_config_for
from wizard.errors import HostwizError
from wizard.recovery import (
    Search,
    Tried,
    WayIn,
    candidate_keys,
    candidate_ports,
    candidate_users,
    failure_kind,
    find_a_way_in,
    journal_ports,
)
from wizard.transport.base import Transport
from wizard.transport.ports import forget_port, remember_port, remembered_port
from wizard.transport.sshconfig import load_config, parse_target, resolve

PROBE_TIMEOUT = 4.0
"""Seconds per attempt: a port that drops packets costs this much, once."""

OpenAt = Callable[[str, int, Path | None], Transport]
"""Open a transport to ``user@name`` on a port with a key (None: the keys the config names)."""


@dataclass(frozen=True)
class WaysIn:
    """What :func:`look_for_ways_in` tried and found, and what to tell the admin about it."""

    target: str
    """The host as the admin named it (``web1``, ``admin@web1``)."""
    name: str
    """The host part of the target: what ``user@`` is put in front of."""
    configured_port: int
    search: Search
    options: tuple[str, ...] = ()
    """The hostwiz options that reach the host the way found (other user, other key)."""
    port_remembered: bool = False
    """hostwiz now remembers the port found for the host (it differs from the configured)."""

    @property
    def way(self) -> WayIn | None:
        return self.search.found

    @property
    def transport(self) -> Transport | None:
        """Open when the way found also gives root rights."""
        return self.search.transport

    def port_note(self) -> str:
        """Where sshd answers, when that is not the configured port ('' otherwise)."""
        way = self.way
        if way is None or not self.port_remembered:
            return ""
        return (
            f"sshd answers on port {way.port}, not on the configured {self.configured_port}. "
            f"hostwiz uses port {way.port} for {self.name} from now on; for ssh itself: "
            f"ssh -p {way.port} ..., or `Port {way.port}` under `Host {self.name}` in your "
            "ssh config."
        )

    def next_time(self) -> str:
        """``hostwiz OPTIONS`` that connect the way found ('' when the usual way does)."""
        return f"hostwiz {' '.join(self.options)}" if self.options else ""


def _resolves(name: str) -> bool:
    try:
        socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True


def look_for_ways_in(
    target: str,
    open_at: OpenAt,
    *,
    ssh_config: Path | None = None,
    identity: Path | None = None,
    say: Callable[[Tried], None] | None = None,
    stop: Callable[[], bool] | None = None,
    first_failure: HostwizError | None = None,
) -> WaysIn | None:
    """Search for a way into ``target``, telling ``say`` each try as it ends (``stop``: see
    :func:`~wizard.recovery.find_a_way_in`).

    None when the host's name does not resolve (other ports or users cannot help then). A
    way found on another port than the configured one is remembered for the host (a
    remembered port that turns out wrong is forgotten). A way that logs in but cannot get
    root rights (sudo wants a password nobody typed) counts as found, with no transport.
    """
    endpoint = resolve(target, load_config(ssh_config))
    name = parse_target(target).host
    if not endpoint.proxy_jump and not _resolves(endpoint.hostname):
        return None
    # The journal is kept per target as given (web1, root@web1): either may hold the move.
    known = list(dict.fromkeys([*journal_ports(target), *journal_ports(name)]))
    remembered = remembered_port(target)
    if remembered is not None:
        known.insert(0, remembered)
    configured_keys = [identity] if identity else list(endpoint.identity_files)
    ports = candidate_ports(endpoint.port, known)
    likely = [port for port in ports if port == endpoint.port or port in known]
    first = WayIn(endpoint.port if remembered is None else remembered, endpoint.user)
    already = (
        [Tried(first, failure_kind(first_failure), first_failure.message)]
        if first_failure is not None
        else []
    )
    search = find_a_way_in(
        lambda way: open_at(f"{way.user}@{name}", way.port, way.key),
        ports=ports,
        users=candidate_users(endpoint.user),
        keys=candidate_keys(Path.home(), configured_keys),
        configured_keys=configured_keys,
        say=say,
        stop=stop,
        tried_already=already,
        likely=likely,
    )
    way = search.found
    if way is None:
        return WaysIn(target, name, endpoint.port, search)
    moved = way.port != endpoint.port
    if moved:
        remember_port(target, way.port)
    elif remembered is not None:
        forget_port(target)
    options: list[str] = []
    if way.user != endpoint.user:
        options += ["--host", f"{way.user}@{name}"]
    if way.key is not None and way.key not in configured_keys:
        options += ["-i", str(way.key)]
    return WaysIn(target, name, endpoint.port, search, tuple(options), port_remembered=moved)


def configured_port(args: Namespace) -> int:
    """The port hostwiz connects to first: the one it remembers, else the configured one."""
    remembered = remembered_port(args.host)
    if remembered is not None:
        return remembered
    config = ssh_config_for(args)
    return resolve(args.host, load_config(config)).port


def _show(tried: Tried) -> None:
    mark = "ok" if tried.result == "works" else "--"
    print(f"  {mark} {tried.way.describe()}: {tried.message}", flush=True)


def try_other_ways(
    args: Namespace, first_failure: HostwizError | None = None
) -> tuple[Transport | None, bool]:
    """Search for a way in, printing each try. Returns (open transport or None, found a login).
    ``first_failure``: how the usual way (the first port) just failed; not tried again.

    A way that logs in but cannot get root rights (sudo needs a password nobody can type
    here) counts as found: the admin is told how to use it.
    """
    config = ssh_config_for(args)
    base = Namespace(**{**vars(args), "ssh_config": str(config) if config else None})
    started = False

    def open_at(target: str, port: int, key: Path | None) -> Transport:
        return open_transport(Namespace(**{**vars(base), "host": target}), port=port,
                              identity=key, connect_timeout=PROBE_TIMEOUT)  # fmt: skip

    def show(tried: Tried) -> None:
        nonlocal started
        if not started:
            print("\nTrying other ways in:")
            started = True
        _show(tried)

    identity = Path(args.identity) if args.identity else None
    found = look_for_ways_in(args.host, open_at, ssh_config=config, identity=identity, say=show,
                             first_failure=first_failure)  # fmt: skip
    if found is None:
        return None, False  # the error said so already; other ports or users cannot help
    way = found.way
    if way is None:
        print("None of them works.")
        return None, False
    print(f"\nWhat works: {way.describe()}.")
    if found.port_note():
        print(found.port_note())
    if found.transport is None:
        print(
            f"{way.user} can log in, but hostwiz cannot get root rights that way here (sudo "
            "wants a password). From a terminal run: hostwiz recover "
            f"{' '.join(found.options) or '--host ' + args.host} (it asks for the sudo password)."
        )
        return None, True
    if found.options:
        print(f"Next time, connect with: {found.next_time()}")
    return found.transport, True
