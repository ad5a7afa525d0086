"""Reading ``iptables-save`` output: what the firewall and the proxy steps both compare their
restore files with."""

from __future__ import annotations


def parse_save(text: str) -> dict[str, dict[str, list[str]]]:
    """``iptables-save`` output or a restore file -> table -> chain -> rules (``-A ...`` lines;
    a declared chain without rules has none)."""
    tables: dict[str, dict[str, list[str]]] = {}
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            table.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            table.setdefault(line.split()[1], []).append(line)
    return tables
