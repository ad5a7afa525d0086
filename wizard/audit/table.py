"""Seed 003's least-privilege table: one row per running container, each cell marked risky or
not, for the CLI and the audit screen (the findings explain the risky cells in plain words)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wizard.audit.facts import Container
from wizard.audit.rules import DANGEROUS_CAPS, SENSITIVE_MOUNTS, SOCKET_PATHS
from wizard.audit.view import HostView


@dataclass(frozen=True)
class Cell:
    column: str
    value: str
    risky: bool = False


def _sensitive(source: str) -> bool:
    source = source.rstrip("/") or "/"
    return source in SOCKET_PATHS or source in {p.rstrip("/") or "/" for p in SENSITIVE_MOUNTS}


def container_row(container: Container, view: HostView) -> tuple[Cell, ...]:
    c = container
    nnp = c.no_new_privileges or view.config("no-new-privileges") is True
    if c.process_no_new_privs is not None:
        nnp = c.process_no_new_privs
    seccomp = c.option("seccomp") or (
        "default"
        if any(o.startswith("name=seccomp") for o in view.info.security_options)
        else "none"
    )
    if c.process_seccomp == 0:
        seccomp = "off"
    apparmor = c.option("apparmor") or c.apparmor_profile or "none"
    mounts = []
    for m in c.binds:
        flag = " (!)" if _sensitive(m.source) else ""
        mounts.append(f"{m.source}:{m.destination}{'' if m.writable else ':ro'}{flag}")
    ports = [p.describe() for p in c.ports]
    return (
        Cell("user", c.user or "root (image default)", c.runs_as_root),
        Cell(
            "cap add", " ".join(c.cap_add) or "-", any(cap in DANGEROUS_CAPS for cap in c.cap_add)
        ),
        Cell("cap drop", " ".join(c.cap_drop) or "-", "ALL" not in c.cap_drop),
        Cell("no-new-privileges", "yes" if nnp else "no", not nnp),
        Cell("seccomp", seccomp, seccomp in {"unconfined", "none", "off"}),
        Cell("apparmor", apparmor, apparmor == "unconfined"),
        Cell("privileged", "yes" if c.privileged else "no", c.privileged),
        Cell("host namespaces", " ".join(c.shared_namespaces) or "-", bool(c.shared_namespaces)),
        Cell("bind mounts", ", ".join(mounts) or "-", any(_sensitive(m.source) for m in c.binds)),
        Cell(
            "ports",
            ", ".join(ports) or "-",
            any(p.all_addresses for p in c.ports) and not _ports_filtered(view),
        ),
    )


def _ports_filtered(view: HostView) -> bool:
    """A rootless engine's ports are the host's own (INPUT); the system engine's skip INPUT."""
    if view.engine is not None and view.rootless:
        return view.firewall.filters_input
    return view.firewall.filters_containers


def container_table(view: HostView) -> list[tuple[Container, tuple[Cell, ...]]]:
    """Every engine's running containers (:attr:`Container.engine` says which), each judged
    with its own engine's settings."""
    return [
        (c, container_row(c, engine_view))
        for engine_view in view.engine_views()
        for c in engine_view.containers or ()
    ]


def table_as_json(view: HostView) -> list[dict[str, Any]]:
    rows = []
    for container, cells in container_table(view):
        rows.append(
            {
                "name": container.name,
                "image": container.image,
                "engine": container.engine,
                "cells": {
                    cell.column: {"value": cell.value, "risky": cell.risky} for cell in cells
                },
            }
        )
    return rows
