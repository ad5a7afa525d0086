"""What the swarm step reads from the host, in one fact (one command, one pure parser): the
swarm state, Docker's networks (docker_gwbridge's options and creation time among them), the
host's addresses and routes, the images, the services, and what the kernel offers for
overlays (IPVS, ESP with AES-GCM, xfrm).

How the kernel is read (what really tells, on this kernel and on a Debian one):

* IPVS: ``/proc/net/ip_vs`` exists once ip_vs is loaded; ``/sys/module/ip_vs`` when loaded or
  built in; ``modprobe -n ip_vs`` when it can be loaded (Debian: a module, loaded by dockerd
  on demand). The kernel's own config (``/proc/config.gz``, ``/boot/config-*``) saying
  ``# CONFIG_IP_VS is not set`` is a definite no.
* ESP and GCM: ``/proc/crypto`` lists ``gcm(aes)`` only once loaded, so it is one sign among
  several: ``/sys/module/esp4`` and ``/sys/module/gcm``, ``modprobe -n esp4 gcm``, and the
  config's ``CONFIG_INET_ESP`` and ``CONFIG_CRYPTO_GCM``. ``ip xfrm state`` working says the
  xfrm netlink interface is there (it is on kernels without ESP too: not enough alone).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.facts import Fact, sections

Support = Literal["yes", "no", "unknown"]
SECTIONS = ("info", "nets", "addr", "route", "images", "services", "kernel", "config", "crypto")


@dataclass(frozen=True)
class DockerNetwork:
    name: str
    driver: str
    created: str
    subnets: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    containers: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Kernel:
    ipvs: Support = "unknown"
    esp: Support = "unknown"
    gcm: Support = "unknown"
    xfrm: bool = False

    @property
    def encryption(self) -> Support:
        """Can an encrypted overlay carry traffic: ESP and AES-GCM both, over xfrm."""
        if "no" in (self.esp, self.gcm) or not self.xfrm:
            return "no"
        return "yes" if (self.esp, self.gcm) == ("yes", "yes") else "unknown"


@dataclass(frozen=True)
class SwarmHost:
    docker: bool = False
    """dockerd answers (without it, ``docker info`` still prints its JSON, with the server's
    fields empty)."""
    state: str = ""
    """inactive, pending, active, locked, error ("" without docker)."""
    manager: bool = False
    node_id: str = ""
    node_created: str = ""
    live_restore: bool = False
    rootless: bool = False
    networks: dict[str, DockerNetwork] = field(default_factory=dict)
    interfaces: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """interface -> its IPv4 addresses with prefix (10.0.0.5/24)."""
    mtus: dict[str, int] = field(default_factory=dict)
    routes: tuple[str, ...] = ()
    """IPv4 destinations of the main routing table (default left out)."""
    images: tuple[str, ...] = ()
    services: dict[str, str] = field(default_factory=dict)
    """service name -> replicas (``1/1``)."""
    kernel: Kernel = field(default_factory=Kernel)

    def interface_of(self, address: str) -> str:
        for name, addrs in self.interfaces.items():
            if any(a.split("/")[0] == address for a in addrs):
                return name
        return ""


def _json(text: str) -> Any:
    try:
        return json.loads(text or "null")
    except json.JSONDecodeError:
        return None


def parse_networks(text: str) -> dict[str, DockerNetwork]:
    """``docker network inspect`` of every network (a JSON array)."""
    found: dict[str, DockerNetwork] = {}
    data = _json(text)
    for item in data if isinstance(data, list) else []:
        ipam = (item.get("IPAM") or {}).get("Config") or []
        found[item.get("Name", "")] = DockerNetwork(
            name=item.get("Name", ""),
            driver=item.get("Driver", ""),
            created=item.get("Created", ""),
            subnets=tuple(c["Subnet"] for c in ipam if c.get("Subnet")),
            gateways=tuple(c["Gateway"] for c in ipam if c.get("Gateway")),
            options=dict(item.get("Options") or {}),
            containers=len(item.get("Containers") or {}),
            labels=dict(item.get("Labels") or {}),
        )
    return found


def parse_interfaces(text: str) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """``ip -j addr show`` -> (interface -> IPv4 addresses with prefix, interface -> MTU)."""
    links = _json(text)
    addrs: dict[str, tuple[str, ...]] = {}
    mtus: dict[str, int] = {}
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname", "")
        if not name or "LOOPBACK" in link.get("flags", []):
            continue
        mtus[name] = int(link.get("mtu", 1500))
        addrs[name] = tuple(
            f"{info['local']}/{info['prefixlen']}"
            for info in link.get("addr_info", [])
            if info.get("family") == "inet" and "local" in info
        )
    return addrs, mtus


def parse_routes(text: str) -> tuple[str, ...]:
    routes = _json(text)
    result = []
    for route in routes if isinstance(routes, list) else []:
        dst = route.get("dst", "")
        if not dst or dst == "default":
            continue
        try:
            result.append(str(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32")))
        except ValueError:
            continue
    return tuple(result)


def _support(loaded: bool, loadable: bool, config: str, modprobe: bool) -> Support:
    """Loaded, built in or loadable: yes; the config says not set, or a module that modprobe
    cannot find: no; nothing known (a module, and no modprobe here to ask): unknown."""
    if loaded or loadable or config == "y":
        return "yes"
    if config == "n" or (config == "m" and modprobe):
        return "no"
    return "unknown"


def parse_config(text: str) -> dict[str, str]:
    """Kernel config lines -> option -> y, m or n (``# CONFIG_X is not set``)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# CONFIG_") and line.endswith(" is not set"):
            found[line[2:].split()[0]] = "n"
        elif line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            found[key] = value
    return found


def parse_kernel(kernel: str, config: str, crypto: str) -> Kernel:
    signs = set(kernel.split())
    options = parse_config(config)
    has_gcm = "gcm(aes)" in crypto
    modprobe = "modprobe" in signs
    return Kernel(
        ipvs=_support("ipvs-loaded" in signs, "ipvs-loadable" in signs,
                      options.get("CONFIG_IP_VS", ""), modprobe),
        esp=_support("esp-loaded" in signs, "esp-loadable" in signs,
                     options.get("CONFIG_INET_ESP", ""), modprobe),
        gcm=_support(has_gcm or "gcm-loaded" in signs, "gcm-loadable" in signs,
                     options.get("CONFIG_CRYPTO_GCM", ""), modprobe),
        xfrm="xfrm" in signs,
    )  # fmt: skip


def parse_swarm_host(code: int, out: str) -> SwarmHost:
    parts = sections(out, SECTIONS)
    info = _json(parts.get("info", ""))
    info = info if isinstance(info, dict) else {}
    swarm = info.get("Swarm") or {}
    interfaces, mtus = parse_interfaces(parts.get("addr", ""))
    services = {}
    for line in parts.get("services", "").splitlines():
        name, _, replicas = line.partition(" ")
        if name:
            services[name] = replicas.strip()
    return SwarmHost(
        docker=bool(info.get("ServerVersion") or info.get("ID")),
        state=str(swarm.get("LocalNodeState", "")),
        manager=bool(swarm.get("ControlAvailable", False)),
        node_id=str(swarm.get("NodeID", "")),
        node_created=_node_created(out),
        live_restore=bool(info.get("LiveRestoreEnabled", False)),
        rootless=any("rootless" in str(o) for o in info.get("SecurityOptions") or []),
        networks=parse_networks(parts.get("nets", "")),
        interfaces=interfaces,
        mtus=mtus,
        routes=parse_routes(parts.get("route", "")),
        images=tuple(i for i in parts.get("images", "").split() if "<none>" not in i),
        services=services,
        kernel=parse_kernel(parts.get("kernel", ""), parts.get("config", ""),
                            parts.get("crypto", "")),
    )  # fmt: skip


def _node_created(out: str) -> str:
    for line in out.splitlines():
        if line.startswith("node-created "):
            return line.removeprefix("node-created ").strip()
    return ""


COMMAND = r"""echo @@info; docker info --format '{{json .}}' 2>/dev/null
echo @@nets; docker network inspect $(docker network ls -q 2>/dev/null) 2>/dev/null
echo @@addr; ip -j addr show 2>/dev/null
echo @@route; ip -j -4 route show table main 2>/dev/null
echo @@images; docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null
echo @@services; docker service ls --format '{{.Name}} {{.Replicas}}' 2>/dev/null
echo @@kernel
[ -e /proc/net/ip_vs ] || [ -d /sys/module/ip_vs ] && echo ipvs-loaded
[ -d /sys/module/esp4 ] && echo esp-loaded
[ -d /sys/module/gcm ] && echo gcm-loaded
if command -v modprobe >/dev/null 2>&1; then
  echo modprobe
  modprobe -n -q ip_vs 2>/dev/null && echo ipvs-loadable
  modprobe -n -q esp4 2>/dev/null && echo esp-loadable
  modprobe -n -q gcm 2>/dev/null && echo gcm-loadable
fi
ip xfrm state >/dev/null 2>&1 && echo xfrm
created=$(docker node inspect self --format '{{.CreatedAt}}' 2>/dev/null)
[ -n "$created" ] && echo "node-created $created"
echo @@config
{ zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null; } \
  | grep -E '^(# )?CONFIG_(IP_VS|INET_ESP|CRYPTO_GCM)[ =]'
echo @@crypto; grep -E '^name +: .*gcm' /proc/crypto 2>/dev/null
true"""

SWARM_HOST = Fact("swarm_host", COMMAND, parse_swarm_host)
