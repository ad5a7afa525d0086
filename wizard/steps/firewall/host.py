"""Facts the firewall step reads: interfaces and addresses, the admin's own SSH path, sshd's
ports, the live rules, forwarding, and other firewalls that would fight hostwiz's rules.

Each is a command plus a pure parser; the step gathers them with its files in one round trip.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from wizard.facts import Fact, text_fact
from wizard.host.sshd import EFFECTIVE_COMMAND

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class Interface:
    name: str
    addresses: tuple[Address, ...]
    up: bool

    def networks(self, version: int) -> tuple[str, ...]:
        return tuple(
            str(a.network) for a in self.addresses
            if a.version == version and not a.ip.is_link_local
        )  # fmt: skip

    def describe(self) -> str:
        shown = [str(a) for a in self.addresses if not a.ip.is_link_local]
        state = "" if self.up else " (down)"
        return f"{self.name} {', '.join(shown) or 'no address'}{state}"


def parse_interfaces(code: int, out: str) -> dict[str, Interface]:
    """``ip -j addr show`` -> name -> :class:`Interface` (loopback left out)."""
    try:
        links = json.loads(out or "[]")
    except json.JSONDecodeError:
        return {}
    result = {}
    for link in links:
        name = link.get("ifname", "")
        if not name or "LOOPBACK" in link.get("flags", []):
            continue
        addresses: list[Address] = []
        for info in link.get("addr_info", []):
            try:
                addresses.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}"))
            except (KeyError, ValueError):
                continue
        result[name] = Interface(name, tuple(addresses), "UP" in link.get("flags", []))
    return result


INTERFACES = Fact("net_interfaces", "ip -j addr show 2>/dev/null", parse_interfaces)


@dataclass(frozen=True)
class SshPath:
    """The SSH connection hostwiz itself uses: where it comes from and which interface it
    arrives on. Unknown (empty) when hostwiz is not connected over SSH."""

    client: str = ""
    server_port: int = 0
    interface: str = ""

    @property
    def known(self) -> bool:
        return bool(self.client and self.interface)


def parse_ssh_path(code: int, out: str) -> SshPath:
    client, port, interface = "", 0, ""
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        words = rest.split()
        if key == "connection" and len(words) == 4:
            client, port = words[0], int(words[3]) if words[3].isdigit() else 0
        elif key == "route" and "dev" in words[:-1]:
            interface = words[words.index("dev") + 1]
    return SshPath(client, port, interface)


SSH_PATH = Fact(
    "ssh_path",
    # SSH_CONNECTION is in the environment of the login shell: this shell's own when root
    # logged in (no program run for it), else a few parents above this (sudo) shell: walk up
    # at most 12 parents to find it.
    """p=$$; c=${SSH_CONNECTION:-}
[ -n "$c" ] || for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
  c=$(tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p' | head -1)
  [ -n "$c" ] && break
  p=$(awk '/^PPid:/{print $2}' /proc/$p/status 2>/dev/null)
  if [ -z "$p" ] || [ "$p" -le 1 ]; then break; fi
done
echo "connection $c"
set -- $c
[ -n "$1" ] && echo "route $(ip -o route get "$1" 2>/dev/null)"
true""",
    parse_ssh_path,
)


def parse_ports(code: int, out: str) -> tuple[int, ...]:
    """The ``port`` lines of ``sshd -T``."""
    ports = set()
    for line in out.splitlines():
        key, _, value = line.strip().partition(" ")
        if key.lower() == "port" and value.strip().isdigit():
            ports.add(int(value))
    return tuple(sorted(ports))


SSHD_PORTS = Fact("sshd_ports", EFFECTIVE_COMMAND, parse_ports)


@dataclass(frozen=True)
class Tools:
    """What runs or is installed on the host that matters to the firewall."""

    present: frozenset[str]

    def has(self, name: str) -> bool:
        return name in self.present


def parse_tools(code: int, out: str) -> Tools:
    return Tools(frozenset(out.split()))


TOOLS = Fact(
    "firewall_tools",
    """for t in iptables-restore ip6tables-restore iptables-save nft update-rc.d; do
  command -v "$t" >/dev/null 2>&1 && echo "$t"
done
pidof dockerd >/dev/null 2>&1 && echo dockerd
pidof firewalld >/dev/null 2>&1 && echo firewalld
grep -qsi '^ENABLED=yes' /etc/ufw/ufw.conf && echo ufw
true""",
    parse_tools,
)


IPTABLES_V4 = text_fact("iptables_v4", "iptables-save 2>/dev/null")
IPTABLES_V6 = text_fact("iptables_v6", "ip6tables-save 2>/dev/null")
NFT_TABLE = text_fact("nft_hostwiz", "nft list table inet hostwiz 2>/dev/null")


@dataclass(frozen=True)
class Forwarding:
    ipv4: bool
    ipv6: bool


def parse_forwarding(code: int, out: str) -> Forwarding:
    values = out.split()
    return Forwarding(values[:1] == ["1"], values[1:2] == ["1"])


FORWARDING = Fact(
    "ip_forwarding",
    "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null",
    parse_forwarding,
)
