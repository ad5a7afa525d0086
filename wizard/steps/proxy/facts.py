"""What the proxy step reads from the host, in one fact (one command, one pure parser): is
squid installed and running, its listeners, hostwiz's proxy rules as the kernel holds them,
the host's interfaces and networks, and whether squid and the rules start at boot.

The files it writes are read with :func:`wizard.facts.file_fact`, gathered in the same round
trip.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from wizard.facts import Fact, sections
from wizard.transport.base import shell_quote

SECTIONS = ("squid", "running", "listen", "rules4", "rules6", "addr", "boot", "logdir")


@dataclass(frozen=True)
class Listener:
    port: int
    queued: int
    """Connections waiting to be accepted (Recv-Q): more than 0 for long means squid stopped
    accepting (squid 5 in intercept mode after a direct connection)."""


@dataclass(frozen=True)
class ProxyHost:
    squid_version: str = ""
    """"" when squid is not installed."""
    running: bool = False
    listeners: tuple[Listener, ...] = ()
    rules_v4: str = ""
    """``iptables-save`` output (mangle, nat, filter)."""
    rules_v6: str = ""
    networks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """interface -> its networks (both families, link-local left out)."""
    boot: tuple[str, ...] = ()
    """What starts at boot: "rules" (hostwiz-proxy), "squid"."""
    log_dir_exists: bool = False

    def listens(self, port: int) -> Listener | None:
        return next((item for item in self.listeners if item.port == port), None)


def parse_listeners(text: str) -> tuple[Listener, ...]:
    """``ss -Hltn`` lines -> the TCP ports listened on, with their accept queues."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or not words[1].isdigit():
            continue
        port = words[3].rpartition(":")[2]
        if port.isdigit():
            found.append(Listener(int(port), int(words[1])))
    return tuple(found)


def parse_networks(text: str) -> dict[str, tuple[str, ...]]:
    """``ip -j addr show`` -> interface -> networks (loopback and link-local left out)."""
    try:
        links = json.loads(text or "[]")
    except json.JSONDecodeError:
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname", "")
        if not name or "LOOPBACK" in link.get("flags", []):
            continue
        nets = []
        for info in link.get("addr_info", []):
            try:
                iface = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
            except (KeyError, ValueError):
                continue
            if not iface.ip.is_link_local:
                nets.append(str(iface.network))
        result[name] = tuple(nets)
    return result


def parse_proxy_host(code: int, out: str) -> ProxyHost:
    parts = sections(out, SECTIONS)
    version = parts.get("squid", "").strip()
    return ProxyHost(
        squid_version=version.removeprefix("Squid Cache: Version ").strip(),
        running=parts.get("running", "").strip() == "yes",
        listeners=parse_listeners(parts.get("listen", "")),
        rules_v4=parts.get("rules4", ""),
        rules_v6=parts.get("rules6", ""),
        networks=parse_networks(parts.get("addr", "")),
        boot=tuple(parts.get("boot", "").split()),
        log_dir_exists=parts.get("logdir", "").strip() == "yes",
    )


def proxy_host_fact(log_dir: str) -> Fact[ProxyHost]:
    quoted = shell_quote(log_dir)
    command = f"""echo @@squid; command -v squid >/dev/null && squid -v 2>/dev/null | head -n 1
echo @@running; [ -n "$(pidof squid 2>/dev/null)" ] && echo yes
echo @@listen; ss -Hltn 2>/dev/null
echo @@rules4; iptables-save 2>/dev/null
echo @@rules6; ip6tables-save 2>/dev/null
echo @@addr; ip -j addr show 2>/dev/null
echo @@boot
[ -e /etc/systemd/system/multi-user.target.wants/hostwiz-proxy.service ] && echo rules
ls /etc/rc[S2345].d/ 2>/dev/null | grep -q 'hostwiz-proxy$' && echo rules
if [ -d /run/systemd/system ]; then systemctl is-enabled squid >/dev/null 2>&1 && echo squid
else ls /etc/rc[2345].d/ 2>/dev/null | grep -q '^S[0-9]*squid$' && echo squid; fi
echo @@logdir; [ -d {quoted} ] && echo yes
true"""
    return Fact(f"proxy_host:{log_dir}", command, parse_proxy_host)
