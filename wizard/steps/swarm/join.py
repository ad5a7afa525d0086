"""Joining this host to a swarm another host manages: for the site step (:mod:`.site`).

The token comes from the manager (``docker swarm join-token -q worker`` in an earlier stage of
the site's plan) and travels as a :class:`wizard.secrets.Secret`: previews, progress and
errors show it masked, and ``docker swarm join`` prints nothing that is kept.
"""

from __future__ import annotations

import re
from typing import Literal

from wizard.actions import RunCommand
from wizard.errors import InvalidAnswer
from wizard.secrets import Secret

TOKEN = re.compile(r"SWMTKN-1-[a-z0-9]{20,80}-[a-z0-9]{20,40}")
TOKEN_COMMAND = "docker swarm join-token -q {role}"
"""Run on a manager (its output is the secret; read it with the transport, never log it)."""
DEMOTE_SELF = "docker node demote \"$(docker info --format '{{.Swarm.NodeID}}')\" >/dev/null 2>&1"
"""A manager that leaves demotes itself first: a manager gone without it still counts in the
managers' quorum, and two managers with one gone can no longer change the swarm."""


def join_action(
    token: Secret,
    manager: str,
    advertise: str,
    data_path: str,
    role: Literal["worker", "manager"] = "worker",
) -> RunCommand:
    """Join the manager at ``manager`` (address[:port]) as ``role``, advertising ``advertise``
    and sending overlay traffic from ``data_path`` (both the host's own addresses)."""
    if not TOKEN.fullmatch(token.reveal()):
        raise InvalidAnswer(
            "the swarm join token does not look like one (SWMTKN-...).",
            f"Read it on the manager: {TOKEN_COMMAND.format(role=role)}.",
        )
    target = manager if ":" in manager else f"{manager}:2377"
    leave = "docker swarm leave --force >/dev/null 2>&1 || true"
    return RunCommand(
        f"docker swarm join --advertise-addr {advertise} --data-path-addr {data_path} "
        f"--token {token.reveal()} {target} >/dev/null",
        why=f"join the swarm of {target} as a {role} (token {token})",
        undo=leave if role == "worker" else f"{DEMOTE_SELF}; {leave}",
        undo_why="leave the swarm again"
        + ("" if role == "worker" else ", demoted first (the other managers keep their quorum)"),
        secrets=(token,),
        timeout=120,
    )
