"""Which TCP ports the zones loaded on a host open, per zone (iptables or nftables).

Read from the live rules (``iptables-save``, ``nft list table inet hostwiz``), not from the
answers: with the firewall step off, the zones an earlier apply loaded stay as they were, and a
change that moves SSH must not walk into them.
"""

from __future__ import annotations

import re

from wizard.steps.firewall import iptables

_IPT_ZONE = re.compile(rf"^{re.escape(iptables.PREFIX)}IN-(\S+)$")
_IPT_PORT = {
    proto: re.compile(rf"-p {proto}\b.*--dport (\d+)(?::(\d+))?.* -j ACCEPT")
    for proto in ("tcp", "udp")
}
_NFT_CHAIN = re.compile(r"^\s*chain in_(\S+) \{")
_NFT_PORTS = {
    proto: re.compile(rf"\b{proto} dport (\{{[^}}]*\}}|\S+)(?:.*)\baccept\b")
    for proto in ("tcp", "udp")
}


def _span(first: int, last: int | None) -> set[int]:
    return set(range(first, (last if last is not None else first) + 1))


def iptables_zone_ports(save: str, protocol: str = "tcp") -> dict[str, set[int]]:
    """``iptables-save`` text -> zone -> the TCP (or UDP) ports its input chain accepts."""
    zones: dict[str, set[int]] = {}
    for chain, rules in iptables.parse_save(save).hostwiz().get("filter", {}).items():
        zone = _IPT_ZONE.match(chain)
        if zone is None or zone.group(1) == "docker":
            continue
        ports = zones.setdefault(zone.group(1), set())
        for rule in rules:
            found = _IPT_PORT[protocol].search(rule)
            if found:
                ports |= _span(int(found.group(1)), _int(found.group(2)))
    return zones


def nftables_zone_ports(table: str, protocol: str = "tcp") -> dict[str, set[int]]:
    """``nft list table inet hostwiz`` text -> zone -> the TCP (or UDP) ports its input chain
    accepts."""
    zones: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in table.splitlines():
        chain = _NFT_CHAIN.match(line)
        if chain is not None:
            current = (
                None if chain.group(1) == "docker" else zones.setdefault(chain.group(1), set())
            )
            continue
        if line.strip() == "}":
            current = None
            continue
        found = _NFT_PORTS[protocol].search(line)
        if current is not None and found:
            for item in found.group(1).strip("{} ").split(","):
                first, _, last = item.strip().partition("-")
                if first.isdigit():
                    current |= _span(int(first), _int(last))
    return zones


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def loaded_zone_ports(
    iptables_save: str, nft_table: str, protocol: str = "tcp"
) -> dict[str, set[int]]:
    """The zones loaded on the host (either backend) and the TCP (or UDP) ports each
    accepts; empty when hostwiz's zones are not loaded."""
    zones = iptables_zone_ports(iptables_save, protocol)
    for zone, ports in nftables_zone_ports(nft_table, protocol).items():
        zones.setdefault(zone, set()).update(ports)
    return zones


def loaded_zone_openings(iptables_save: str, nft_table: str) -> dict[str, set[tuple[str, int]]]:
    """zone -> the (protocol, port) pairs its input chain accepts, tcp and udp."""
    zones: dict[str, set[tuple[str, int]]] = {}
    for protocol in ("tcp", "udp"):
        for zone, ports in loaded_zone_ports(iptables_save, nft_table, protocol).items():
            zones.setdefault(zone, set()).update((protocol, port) for port in ports)
    return zones


def zones_closed_to(zones: dict[str, set[int]], old: tuple[int, ...], port: int) -> list[str]:
    """The zones that let SSH in on one of its ``old`` ports but not on ``port``: moving SSH
    there cuts whoever comes in through them."""
    return sorted(z for z, ports in zones.items() if ports & set(old) and port not in ports)


def describe_closed(zones: dict[str, set[int]], names: list[str], old: tuple[int, ...]) -> str:
    """``zone mgmt offers only 22/tcp`` (the SSH ports it does open)."""
    parts = []
    for name in names:
        ssh = sorted(zones[name] & set(old))
        parts.append(f"zone {name} offers only {', '.join(f'{p}/tcp' for p in ssh)}")
    return "; ".join(parts)
