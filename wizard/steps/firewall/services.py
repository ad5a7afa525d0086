"""Services a zone can offer, written the way an admin says them.

An entry is a service name (``ssh``, ``docker-tls``, ``swarm``, ``nfs``, ``proxy``, ``ping``…)
or a port (``8080/tcp``, ``60000-61000/udp``, ``53`` meaning tcp and udp), optionally limited
to one source: ``ssh from 10.0.0.0/8``, ``2376/tcp from 192.168.1.20``.

Parsing is pure and strict: a typo is an error that names the closest known service, because a
firewall that silently ignores ``shh`` would lock the admin out.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass

from wizard.errors import InvalidAnswer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PORT_SPEC = re.compile(r"(?P<low>\d{1,5})(?:[-:](?P<high>\d{1,5}))?(?:/(?P<proto>tcp|udp))?")
"""Always used with ``fullmatch`` (``$`` would let a trailing line break through)."""


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}:{self.high}"


@dataclass(frozen=True)
class Opening:
    """Traffic one service needs to reach the host: a protocol and its ports."""

    protocol: str
    """tcp, udp, esp or icmp (echo requests; icmpv6 for IPv6)."""
    ports: tuple[PortRange, ...] = ()


def _tcp(*ports: int) -> Opening:
    return Opening("tcp", tuple(PortRange(p, p) for p in ports))


def _udp(*ports: int) -> Opening:
    return Opening("udp", tuple(PortRange(p, p) for p in ports))


SSH = "ssh"
"""The SSH service's ports are the ones sshd listens on (read from the host), not a constant."""

KNOWN_SERVICES: dict[str, tuple[str, tuple[Opening, ...]]] = {
    SSH: ("SSH logins (the ports sshd listens on)", ()),
    "ping": ("answer ping (ICMP echo)", (Opening("icmp"),)),
    "docker-tls": ("the Docker API over TLS (2376/tcp)", (_tcp(2376),)),
    "swarm": (
        "Docker swarm: management 2377/tcp, gossip 7946/tcp+udp, overlay 4789/udp, "
        "encrypted overlays (ESP)",
        (_tcp(2377, 7946), _udp(7946, 4789), Opening("esp")),
    ),
    "esp": ("encrypted swarm overlays (ESP, IP protocol 50)", (Opening("esp"),)),
    "nfs": (
        "NFS file shares (2049, rpcbind 111, mountd 20048)",
        (_tcp(2049, 111, 20048), _udp(2049, 111, 20048)),
    ),
    "proxy": ("the squid web proxy (3128/tcp)", (_tcp(3128),)),
    "http": ("web server (80/tcp)", (_tcp(80),)),
    "https": ("web server with TLS (443/tcp)", (_tcp(443),)),
    "dns": ("DNS server (53/tcp+udp)", (_tcp(53), _udp(53))),
    "dhcp": ("DHCP server (67/udp)", (_udp(67),)),
    "ntp": ("time server (123/udp)", (_udp(123),)),
}


@dataclass(frozen=True)
class ServiceSpec:
    """One parsed entry of a zone's service list."""

    text: str
    name: str
    """A known service name, or "" for a plain port entry."""
    openings: tuple[Opening, ...]
    source: Network | None = None

    @property
    def is_ssh(self) -> bool:
        return self.name == SSH


def parse_network(text: str, where: str) -> Network:
    if "%" in text:
        # ipaddress takes almost anything after the %, line breaks included.
        raise InvalidAnswer(
            f"{where}: {text!r} carries a scope id (the part from %), which firewall rules "
            "do not use.",
            "Write the address or network without %... (e.g. fe80::/64 or fe80::1).",
        )
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidAnswer(
            f"{where}: {text!r} is not a network or an address.",
            "Write a network such as 192.168.1.0/24 or fd00::/64, or one address such as 10.0.0.5.",
        ) from None


def _parse_ports(text: str, where: str) -> tuple[Opening, ...]:
    match = PORT_SPEC.fullmatch(text)
    ports, slash, protocol = text.partition("/")
    if not match and slash and PORT_SPEC.fullmatch(ports):
        raise InvalidAnswer(
            f"{where}: {text!r} names protocol {protocol!r}; hostwiz opens tcp or udp ports.",
            f"Write {ports}/tcp, {ports}/udp, or {ports} for both.",
        )
    if not match:
        raise InvalidAnswer(
            f"{where}: {text!r} is neither a known service nor a port.",
            _suggestion(text),
        )
    low = int(match["low"])
    high = int(match["high"] or low)
    if not 1 <= low <= high <= 65535:
        raise InvalidAnswer(
            f"{where}: {text!r} is not a port or port range from 1 to 65535.",
            "Write a port such as 8080/tcp or a range such as 60000-61000/udp.",
        )
    protocols = (match["proto"],) if match["proto"] else ("tcp", "udp")
    return tuple(Opening(proto, (PortRange(low, high),)) for proto in protocols)


def _suggestion(text: str) -> str:
    names = sorted(KNOWN_SERVICES)
    close = difflib.get_close_matches(text.lower(), names, n=1)
    known = ", ".join(names)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    return f"{hint}Known services: {known}; or a port such as 8080/tcp, 53 or 60000-61000/udp."


def parse_service(text: str, where: str) -> ServiceSpec:
    """``ssh``, ``8080/tcp``, ``dns from 10.0.0.0/8`` -> :class:`ServiceSpec`."""
    words = text.split()
    if not words:
        raise InvalidAnswer(f"{where}: an empty service entry.", _suggestion(""))
    source: Network | None = None
    if len(words) == 3 and words[1] == "from":
        source = parse_network(words[2], where)
    elif len(words) != 1:
        raise InvalidAnswer(
            f"{where}: {text!r} is not understood.",
            "Write one service or port, optionally followed by 'from NETWORK', e.g. "
            "'ssh from 10.0.0.0/8' (one network per entry; repeat the entry for more).",
        )
    name = words[0].lower()
    if name in KNOWN_SERVICES:
        return ServiceSpec(text, name, KNOWN_SERVICES[name][1], source)
    return ServiceSpec(text, "", _parse_ports(name, where), source)


def describe_service(spec: ServiceSpec, ssh_ports: tuple[int, ...]) -> str:
    if spec.is_ssh:
        what = f"ssh ({', '.join(f'{p}/tcp' for p in ssh_ports)})"
    elif spec.name:
        what = spec.name
    else:
        what = spec.text.split()[0]
    return f"{what} from {spec.source}" if spec.source else what


def ssh_opening(ports: tuple[int, ...]) -> Opening:
    return Opening("tcp", tuple(PortRange(p, p) for p in ports))
