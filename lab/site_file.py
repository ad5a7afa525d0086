"""The site file of a running topology: ``hostwiz lab up --topology NAME`` writes it, so that
``hostwiz plan --site FILE`` reaches the topology's hosts by their roles."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.paths import lab_paths
from lab.topology import Topology
from wizard.local_files import write_atomic


def site_text(
    name: str,
    description: str,
    hosts: Mapping[str, str],
    roles: Mapping[str, Sequence[str]] | None = None,
    steps: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """A site file naming each topology host (topology role -> practice host name) with its
    site roles (``roles``; its topology role where none are given), and the site steps'
    answers the topology ships (``steps``)."""
    lines = [
        f"# hostwiz site for the practice topology {name}: {description}".rstrip(": "),
        "# Written by `hostwiz lab up --topology`. Each host has the roles the topology gives",
        "# it (its part in the topology otherwise); add a preset, roles and [steps.NAME]",
        "# tables as you like, then: hostwiz plan --site THIS_FILE",
        f"name = {json.dumps(name)}",
    ]
    for role, host in hosts.items():
        listed = ", ".join(json.dumps(r) for r in ((roles or {}).get(role) or (role,)))
        lines += ["", f"[hosts.{role}]", f"target = {json.dumps(host)}", f"roles = [{listed}]"]
    for step, answers in (steps or {}).items():
        lines += ["", f"[steps.{step}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in answers.items()]
    return "\n".join(lines) + "\n"


def site_file(instance: str) -> Path:
    return lab_paths().root / "sites" / f"{instance}.toml"


def write_topology_site(topology: Topology) -> Path:
    """Write the site file of ``topology`` (replacing an older one of the same name)."""
    path = site_file(topology.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    hosts = {role: host.name for role, host in topology.hosts.items()}
    roles = {role: spec.site_roles for role, spec in topology.spec.hosts.items()}
    text = site_text(topology.name, topology.spec.description, hosts, roles,
                     topology.spec.site_steps)  # fmt: skip
    write_atomic(path, text.encode("utf-8"), 0o644)
    return path


def remove_stale_sites(running: set[str]) -> list[Path]:
    """Remove the site files of topologies that no longer run (after ``lab down``)."""
    folder = site_file("x").parent
    if not folder.is_dir():
        return []
    stale = [path for path in folder.glob("*.toml") if path.stem not in running]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
