"""``hostwiz recover``: when the configured way in fails, try the others and say what worked.

The candidates come from what hostwiz knows (the configured port, the port it remembers, the
ports the local journal says SSH was at or moved to), then common SSH ports, other users and
other keys (see :func:`wizard.recovery.find_a_way_in`). A key on record for the host's
configured port vouches for the same key on another port; any other key is refused.
"""

from __future__ import annotations

import socket
from argparse import Namespace
from pathlib import Path

from hostwiz.connect import open_transport, ssh_config_for
from wizard.recovery import (
    Tried,
    WayIn,
    candidate_keys,
    candidate_ports,
    candidate_users,
    find_a_way_in,
    journal_ports,
)
from wizard.transport.base import Transport
from wizard.transport.ports import forget_port, remember_port, remembered_port
from wizard.transport.sshconfig import load_config, parse_target, resolve

PROBE_TIMEOUT = 4.0
"""Seconds per attempt: a port that drops packets costs this much, once."""


def _show(tried: Tried) -> None:
    mark = "ok" if tried.result == "works" else "--"
    print(f"  {mark} {tried.way.describe()}: {tried.message}", flush=True)


def _resolves(name: str) -> bool:
    try:
        socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True


def try_other_ways(args: Namespace) -> tuple[Transport | None, bool]:
    """Search for a way in, printing each try. Returns (open transport or None, found a login).

    A way that logs in but cannot get root rights (sudo needs a password nobody can type
    here) counts as found: the admin is told how to use it.
    """
    config = ssh_config_for(args)
    endpoint = resolve(args.host, load_config(config))
    name = parse_target(args.host).host
    known = journal_ports(args.host)
    remembered = remembered_port(args.host)
    if remembered is not None:
        known.insert(0, remembered)
    configured_keys = [Path(args.identity)] if args.identity else list(endpoint.identity_files)
    base = Namespace(**{**vars(args), "ssh_config": str(config) if config else None})

    def open_way(way: WayIn) -> Transport:
        target = Namespace(**{**vars(base), "host": f"{way.user}@{name}"})
        return open_transport(target, port=way.port, identity=way.key,
                              connect_timeout=PROBE_TIMEOUT)  # fmt: skip

    if not endpoint.proxy_jump and not _resolves(endpoint.hostname):
        return None, False  # the error said so already; other ports or users cannot help
    print("\nTrying other ways in:")
    search = find_a_way_in(
        open_way,
        ports=candidate_ports(endpoint.port, known),
        users=candidate_users(endpoint.user),
        keys=candidate_keys(Path.home(), configured_keys),
        configured_keys=configured_keys,
        say=_show,
    )
    way = search.found
    if way is None:
        print("None of them works.")
        return None, False
    print(f"\nWhat works: {way.describe()}.")
    if way.port != endpoint.port:
        remember_port(args.host, way.port)
        print(
            f"sshd answers on port {way.port}, not on the configured {endpoint.port}. hostwiz "
            f"uses port {way.port} for {name} from now on; for ssh itself: ssh -p {way.port} "
            f"..., or `Port {way.port}` under `Host {name}` in your ssh config."
        )
    elif remembered is not None:
        forget_port(args.host)
    options = []
    if way.user != endpoint.user:
        options += ["--host", f"{way.user}@{name}"]
    if way.key is not None and way.key not in configured_keys:
        options += ["-i", str(way.key)]
    if search.transport is None:
        print(
            f"{way.user} can log in, but hostwiz cannot get root rights that way here (sudo "
            "wants a password). From a terminal run: hostwiz recover "
            f"{' '.join(options) or '--host ' + args.host} (it asks for the sudo password)."
        )
        return None, True
    if options:
        print(f"Next time, connect with: hostwiz {' '.join(options)}")
    return search.transport, True
