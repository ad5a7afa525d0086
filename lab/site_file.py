"""The site file of a running topology: ``hostwiz lab up --topology NAME`` writes it, so that
``hostwiz plan --site FILE`` reaches the topology's hosts by their roles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from lab.paths import lab_paths
from lab.topology import Topology
from wizard.local_files import write_atomic


def site_text(name: str, description: str, hosts: Mapping[str, str]) -> str:
    """A site file naming each topology host (role -> practice host name) with its role."""
    lines = [
        f"# hostwiz site for the practice topology {name}: {description}".rstrip(": "),
        "# Written by `hostwiz lab up --topology`. Each host's role is its part in the",
        "# topology; add the roles site steps use (nfs-server, swarm-manager...), a preset,",
        "# and [steps.NAME] tables, then: hostwiz plan --site THIS_FILE",
        f"name = {json.dumps(name)}",
    ]
    for role, host in hosts.items():
        lines += ["", f"[hosts.{role}]", f"target = {json.dumps(host)}",
                  f"roles = [{json.dumps(role)}]"]  # fmt: skip
    return "\n".join(lines) + "\n"


def site_file(instance: str) -> Path:
    return lab_paths().root / "sites" / f"{instance}.toml"


def write_topology_site(topology: Topology) -> Path:
    """Write the site file of ``topology`` (replacing an older one of the same name)."""
    path = site_file(topology.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    hosts = {role: host.name for role, host in topology.hosts.items()}
    text = site_text(topology.name, topology.spec.description, hosts)
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
