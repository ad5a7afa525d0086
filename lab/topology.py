"""Topologies: several practice hosts wired together by lab networks, from a small TOML file.

A topology names its networks and its hosts (by *role*: ``router``, ``client``…)::

    description = "A router between a LAN and a stand-in for the internet"

    [networks.wan]
    subnet = "10.214.1.0/24"          # optional: allocated when left out
    [networks.lan]
    subnet = "10.214.2.0/24"

    [hosts.router]
    docker = true                     # start dockerd (default false)
    networks = { wan = "10.214.1.1", lan = "10.214.2.1" }
    gateway = "outside"               # default route: a role, or an IPv4 address
    forwarding = false                # net.ipv4.ip_forward at start (default false)

    [hosts.client]
    networks = { lan = "auto" }       # or networks = ["lan"]: the lowest free address
    gateway = "router"

    [hosts.outside]
    networks = { wan = "10.214.1.100" }
    routes = { lan = "router" }       # extra routes: network name or CIDR -> role or address

What a running topology looks like (see :mod:`lab.switch` for the plumbing):

* Every host keeps ``eth0`` on the lab bridge ``hwlab0`` (the *mgmt* network), which is how
  hostwiz on this machine reaches it over SSH. A topology host has no default route there.
* Each network is a bridge inside the topology's own *switch* network namespace
  (``hwsw-PREFIX``), never on this machine; each host has a veth into it.
* Inside a host the interface is called after its network (``wan``, ``lan``, ``cluster``):
  that is what a first-time admin reads in the firewall step's zone list, where ``eth1`` would
  say nothing. A network called ``eth1`` gives the classic name where one is wanted.
* Addresses: IPv4 from the file or allocated (``10.214.N.0/24`` for the N-th network left
  without a subnet); IPv6 from ``subnet6`` or derived, ``10.214.2.0/24`` -> ``fd00:214:2::/64``,
  and a host's IPv6 address mirrors its IPv4 one: ``10.214.2.10`` -> ``fd00:214:2::10``.
* ``gateway`` sets the default route (IPv4 and IPv6); without it a host has none (the
  ``outside`` host *is* the internet). ``routes`` adds more, e.g. the "ISP" routing the LAN
  back to the router so that forwarding works without NAT.
* Forwarding is off unless ``forwarding = true``. A dockerd started on a host turns it on
  itself, as on a real VM (and sets the iptables FORWARD policy to DROP).

Errors name the file and line and raise :class:`~wizard.errors.LabError`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from lab.model import MGMT_INTERFACE, MGMT_NETWORK, LabHost
from lab.paths import SUBNET6_PREFIX, lab_network
from wizard.errors import LabError

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address
Net4 = ipaddress.IPv4Network
Net6 = ipaddress.IPv6Network

MGMT_SUBNET6 = Net6(f"{SUBNET6_PREFIX}/64")
ALLOCATION_BASE = Net4("10.214.0.0/16")
MAX_TOPOLOGY_HOSTS = 20
MAX_NETWORKS = 8

NETWORK_RE = re.compile(r"[a-z][a-z0-9]{0,9}")  # fullmatch only
ROLE_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?")  # fullmatch only
_RESERVED_NETWORKS = {"lo", MGMT_INTERFACE, MGMT_NETWORK}
_RESERVED_NETWORK_PREFIXES = ("docker", "veth", "br", "hwl", "tun", "tap")
_PRIVATE4 = (Net4("10.0.0.0/8"), Net4("172.16.0.0/12"), Net4("192.168.0.0/16"))
_ULA = Net6("fc00::/7")

_TOP_KEYS = ("description", "networks", "hosts", "site_steps")
_NETWORK_KEYS = ("subnet", "subnet6")
_HOST_KEYS = ("docker", "networks", "gateway", "routes", "forwarding", "site_roles")
SITE_ROLE_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?")  # fullmatch; as site files'


@dataclass(frozen=True)
class NetworkSpec:
    """One lab network: a bridge in the switch namespace, with an IPv4 and an IPv6 subnet."""

    name: str
    subnet: Net4
    subnet6: Net6

    def address6(self, address: IPv4) -> IPv6:
        """The IPv6 twin of an IPv4 address: its offset in the subnet, digits read as hex."""
        offset = int(address) - int(self.subnet.network_address)
        return self.subnet6.network_address + int(str(offset), 16)


@dataclass(frozen=True)
class InterfaceSpec:
    """A host's interface on a network; inside the host it is called like the network."""

    network: str
    address: IPv4
    address6: IPv6

    @property
    def name(self) -> str:
        return self.network


@dataclass(frozen=True)
class RouteSpec:
    destination: Net4 | Net6
    via: IPv4 | IPv6


@dataclass(frozen=True)
class HostSpec:
    role: str
    docker: bool
    interfaces: tuple[InterfaceSpec, ...]
    gateway: IPv4 | None
    gateway6: IPv6 | None
    routes: tuple[RouteSpec, ...]
    forwarding: bool
    site_roles: tuple[str, ...] = ()
    """The host's roles in the topology's site file (empty: its topology role)."""

    def interface(self, network: str) -> InterfaceSpec:
        for iface in self.interfaces:
            if iface.network == network:
                return iface
        raise LabError(f"{self.role} has no interface on network {network!r}.")


@dataclass(frozen=True)
class TopologySpec:
    """A parsed, validated topology file: every address resolved."""

    name: str
    source: str
    text: str
    description: str
    networks: Mapping[str, NetworkSpec]
    hosts: Mapping[str, HostSpec]
    site_steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Site steps' answers for the topology's site file (``[steps.NAME]`` there)."""

    @property
    def uses_docker(self) -> bool:
        return any(h.docker for h in self.hosts.values())


# --- finding files -------------------------------------------------------------------------


def _shipped_dir() -> Traversable:
    return resources.files("lab") / "topologies"


def shipped_topologies() -> list[str]:
    """Names of the topologies that come with hostwiz (``router``, ``swarm``…)."""
    folder = _shipped_dir()
    if not folder.is_dir():
        return []
    return sorted(
        e.name.removesuffix(".toml") for e in folder.iterdir() if e.name.endswith(".toml")
    )


def load_topology(name_or_path: str | Path) -> TopologySpec:
    """A shipped topology by name (``router``), or a ``.toml`` file by path."""
    text_name = str(name_or_path)
    path = Path(name_or_path)
    if isinstance(name_or_path, Path) or path.suffix == ".toml" or "/" in text_name:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LabError(
                f"Cannot read the topology file {text_name}: {exc.strerror or exc}.",
                f"Check the path, or use a shipped topology: {', '.join(shipped_topologies())}.",
            ) from exc
        return parse_topology(text, str(path), name=path.stem)
    resource = _shipped_dir() / f"{text_name}.toml"
    if not resource.is_file():
        raise LabError(
            f"There is no topology called {text_name!r}.",
            f"Shipped topologies: {', '.join(shipped_topologies()) or 'none'}; "
            "or give the path of a .toml file.",
        )
    return parse_topology(resource.read_text(encoding="utf-8"), f"{text_name}.toml", text_name)


# --- line numbers --------------------------------------------------------------------------

_KEY_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*')


def _key_path(text: str) -> tuple[str, ...] | None:
    """``a."b c".d`` -> ("a", "b c", "d"); None if ``text`` is not a plain key."""
    parts: list[str] = []
    pos = 0
    while True:
        match = _KEY_TOKEN.match(text, pos)
        if not match:
            return None
        parts.append(match.group(1).strip("\"'"))
        pos = match.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Where each table header and ``key =`` line is: key path -> first line number."""
    index: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            header = _key_path(stripped[1:].split("]", 1)[0])
            if header is not None:
                table = header
                index.setdefault(table, number)
            continue
        key_text, sep, _ = stripped.partition("=")
        if not sep or stripped.startswith("#"):
            continue
        key = _key_path(key_text)
        if key is not None:
            for depth in range(1, len(key) + 1):
                index.setdefault(table + key[:depth], number)
    return index


class _Reader:
    """Builds errors that name the file, the line and the table."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = _line_index(text)

    def where(self, path: tuple[str, ...]) -> str:
        for depth in range(len(path), 0, -1):
            line = self.lines.get(path[:depth])
            if line is not None:
                return f"{self.source}, line {line}"
        return self.source

    def fail(self, path: tuple[str, ...], message: str, hint: str = "") -> LabError:
        return LabError(f"{self.where(path)}: {message}", hint)

    def table(self, value: Any, path: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, Any]:
        shown = "[" + ".".join(path) + "]" if path else "the top level"
        if not isinstance(value, dict):
            raise self.fail(path, f"{'.'.join(path)} must be a table.")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key),
                    f"unknown key {key!r} in {shown}.",
                    f"Known keys there: {', '.join(allowed)}.",
                )
        return value

    def boolean(self, table: dict[str, Any], path: tuple[str, ...], key: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail((*path, key), f"{key} must be true or false, not {value!r}.")
        return value

    def string(self, value: Any, path: tuple[str, ...], what: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"{what} must be a string in quotes, not {value!r}.")
        return value


# --- parsing -------------------------------------------------------------------------------


def parse_topology(text: str, source: str = "topology", name: str = "") -> TopologySpec:
    """Parse and validate a topology; raise LabError naming the file and line of a mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{source} is not valid TOML: {exc}.", "Fix the line named.") from None
    reader = _Reader(source, text)
    reader.table(data, (), _TOP_KEYS)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise reader.fail(("description",), "description must be a string.")
    networks = _parse_networks(reader, data.get("networks", {}))
    hosts = _parse_hosts(reader, data.get("hosts"), networks)
    return TopologySpec(
        name=name or Path(source).stem,
        source=source,
        text=text,
        description=description,
        networks=networks,
        hosts=hosts,
        site_steps=_parse_site_steps(reader, data.get("site_steps", {})),
    )


def _parse_site_steps(reader: _Reader, raw: Any) -> dict[str, dict[str, Any]]:
    """``[site_steps.NAME]`` tables of plain values (strings, booleans, numbers, lists of
    strings), written as ``[steps.NAME]`` into the site file, where they are checked."""
    if not isinstance(raw, dict):
        raise reader.fail(("site_steps",), "site_steps must be tables: [site_steps.NAME].")
    steps: dict[str, dict[str, Any]] = {}
    for step, table in raw.items():
        path = ("site_steps", step)
        if not isinstance(table, dict):
            raise reader.fail(path, f"site_steps.{step} must be a table.")
        for key, value in table.items():
            plain = isinstance(value, (str, bool, int)) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            )
            if not plain:
                raise reader.fail((*path, key), f"{key} must be a string, true/false, a number "
                                  "or a list of strings.")  # fmt: skip
        steps[step] = dict(table)
    return steps


def _site_roles(reader: _Reader, path: tuple[str, ...], value: Any) -> tuple[str, ...]:
    spath = (*path, "site_roles")
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise reader.fail(spath, "site_roles must be a list of role names.",
                          'For example: site_roles = ["swarm-manager"]')  # fmt: skip
    for role in value:
        if not SITE_ROLE_RE.fullmatch(role):
            raise reader.fail(spath, f"{role!r} is not a role name.",
                              "Lower-case letters, digits and '-': nfs-client.")  # fmt: skip
    return tuple(dict.fromkeys(value))


def _parse_networks(reader: _Reader, raw: Any) -> dict[str, NetworkSpec]:
    if not isinstance(raw, dict):
        raise reader.fail(("networks",), "networks must be tables: [networks.NAME].")
    if len(raw) > MAX_NETWORKS:
        raise reader.fail(("networks",), f"at most {MAX_NETWORKS} networks, not {len(raw)}.")
    mgmt4 = lab_network().subnet
    explicit: dict[str, Net4] = {}
    explicit6: dict[str, Net6] = {}
    for name, table in raw.items():
        path = ("networks", name)
        _check_network_name(reader, path, name)
        table = reader.table(table, path, _NETWORK_KEYS)
        if "subnet" in table:
            subnet = _subnet4(reader, (*path, "subnet"), table["subnet"])
            clash = _overlap(subnet, explicit, mgmt4)
            if clash:
                raise reader.fail((*path, "subnet"), f"{subnet} overlaps {clash}.")
            explicit[name] = subnet
        if "subnet6" in table:
            subnet6 = _subnet6(reader, (*path, "subnet6"), table["subnet6"])
            clash = _overlap(subnet6, explicit6, MGMT_SUBNET6)
            if clash:
                raise reader.fail((*path, "subnet6"), f"{subnet6} overlaps {clash}.")
            explicit6[name] = subnet6
    networks: dict[str, NetworkSpec] = {}
    taken4 = list(explicit.values())
    taken6 = dict(explicit6)
    for name in raw:
        path = ("networks", name)
        subnet = explicit.get(name) or _allocate_subnet(reader, path, taken4, mgmt4)
        if name not in explicit:
            taken4.append(subnet)
        subnet6 = explicit6.get(name) or _derived_subnet6(subnet)
        if name not in explicit6:
            clash = _overlap(subnet6, taken6, MGMT_SUBNET6)
            if clash:
                raise reader.fail(
                    path,
                    f"the IPv6 subnet derived from {subnet}, {subnet6}, overlaps {clash}.",
                    'Give this network its own subnet6, e.g. subnet6 = "fd00:214:99::/64".',
                )
            taken6[name] = subnet6
        networks[name] = NetworkSpec(name, subnet, subnet6)
    return networks


def _check_network_name(reader: _Reader, path: tuple[str, ...], name: str) -> None:
    if not NETWORK_RE.fullmatch(name):
        raise reader.fail(
            path,
            f"network name {name!r} cannot be an interface name.",
            "Use a lower-case letter and up to 9 more letters or digits (wan, lan, dmz, eth1).",
        )
    if name in _RESERVED_NETWORKS or name.startswith(_RESERVED_NETWORK_PREFIXES):
        raise reader.fail(
            path,
            f"network name {name!r} is reserved (eth0 is the management interface on "
            "mgmt; docker*, veth*, br* and the like are names Docker and the lab use).",
            "Pick another name, such as wan, lan, dmz or cluster.",
        )


def _overlap(net: Net4 | Net6, others: Mapping[str, Net4 | Net6], mgmt: Net4 | Net6) -> str:
    """What ``net`` overlaps: the management network or another network (or "")."""
    if net.version == mgmt.version and net.overlaps(mgmt):
        return f"the lab's management network ({mgmt})"
    for other_name, other in others.items():
        if net.version == other.version and net.overlaps(other):
            return f"network {other_name} ({other})"
    return ""


def _subnet4(reader: _Reader, path: tuple[str, ...], value: Any) -> Net4:
    text = reader.string(value, path, "subnet")
    try:
        subnet = Net4(text)
    except ValueError as exc:
        raise reader.fail(
            path,
            f"subnet {text!r} is not an IPv4 network ({exc}).",
            'Write it like "10.214.2.0/24" (host bits zero).',
        ) from None
    if not any(subnet.subnet_of(p) for p in _PRIVATE4):
        raise reader.fail(
            path,
            f"subnet {subnet} is not a private range.",
            "Use part of 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. 10.214.2.0/24.",
        )
    if not 16 <= subnet.prefixlen <= 29:
        raise reader.fail(path, f"subnet {subnet} must be between a /16 and a /29.")
    return subnet


def _subnet6(reader: _Reader, path: tuple[str, ...], value: Any) -> Net6:
    text = reader.string(value, path, "subnet6")
    try:
        subnet = Net6(text)
    except ValueError as exc:
        raise reader.fail(
            path, f"subnet6 {text!r} is not an IPv6 network ({exc}).", 'e.g. "fd00:214:2::/64".'
        ) from None
    if not subnet.subnet_of(_ULA) or subnet.prefixlen != 64:
        raise reader.fail(
            path,
            f"subnet6 {subnet} must be a unique local /64 (inside fc00::/7).",
            'e.g. "fd00:214:2::/64".',
        )
    return subnet


def _allocate_subnet(reader: _Reader, path: tuple[str, ...], taken: list[Net4], mgmt: Net4) -> Net4:
    for candidate in list(ALLOCATION_BASE.subnets(new_prefix=24))[1:]:
        if not candidate.overlaps(mgmt) and not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise reader.fail(path, "no free /24 left in 10.214.0.0/16 for this network.")


def _derived_subnet6(subnet: Net4) -> Net6:
    """10.214.2.0/24 -> fd00:214:2::/64 (the decimal octets written as the groups)."""
    octets = subnet.network_address.packed
    return Net6(f"fd00:{octets[1]}:{octets[2]}::/64")


def _parse_hosts(
    reader: _Reader, raw: Any, networks: dict[str, NetworkSpec]
) -> dict[str, HostSpec]:
    if raw is None or (isinstance(raw, dict) and not raw):
        raise reader.fail((), "a topology needs at least one host: [hosts.ROLE].")
    if not isinstance(raw, dict):
        raise reader.fail(("hosts",), "hosts must be tables: [hosts.ROLE].")
    if len(raw) > MAX_TOPOLOGY_HOSTS:
        raise reader.fail(("hosts",), f"at most {MAX_TOPOLOGY_HOSTS} hosts, not {len(raw)}.")
    tables: dict[str, dict[str, Any]] = {}
    wanted: dict[str, dict[str, str]] = {}  # role -> network -> "auto" or address text
    for role, table in raw.items():
        path = ("hosts", role)
        if not ROLE_RE.fullmatch(role):
            raise reader.fail(
                path,
                f"host role {role!r} cannot be part of a host name.",
                "Use a lower-case letter and up to 23 more letters, digits or inner dashes.",
            )
        tables[role] = reader.table(table, path, _HOST_KEYS)
        wanted[role] = _host_networks(reader, path, tables[role].get("networks", {}), networks)
    addresses = _assign_addresses(reader, wanted, networks)
    hosts: dict[str, HostSpec] = {}
    for role, table in tables.items():
        path = ("hosts", role)
        interfaces = tuple(
            InterfaceSpec(net, addr, networks[net].address6(addr))
            for net, addr in addresses[role].items()
        )
        resolve = _resolver(reader, role, addresses, networks)
        gateway: IPv4 | None = None
        gateway6: IPv6 | None = None
        if "gateway" in table:
            gpath = (*path, "gateway")
            text = reader.string(table["gateway"], gpath, "gateway")
            network, gateway = resolve(gpath, text)
            gateway6 = networks[network].address6(gateway)
        routes = _host_routes(reader, path, table.get("routes", {}), resolve, networks, role,
                              addresses[role])  # fmt: skip
        hosts[role] = HostSpec(
            role=role,
            docker=reader.boolean(table, path, "docker"),
            interfaces=interfaces,
            gateway=gateway,
            gateway6=gateway6,
            routes=routes,
            forwarding=reader.boolean(table, path, "forwarding"),
            site_roles=_site_roles(reader, path, table.get("site_roles", [])),
        )
    return hosts


def _host_networks(
    reader: _Reader, path: tuple[str, ...], value: Any, networks: dict[str, NetworkSpec]
) -> dict[str, str]:
    npath = (*path, "networks")
    if isinstance(value, list):
        items: dict[str, Any] = {}
        for entry in value:
            name = reader.string(entry, npath, "each entry of networks")
            if name in items:
                raise reader.fail(npath, f"network {name} is listed twice.")
            items[name] = "auto"
    elif isinstance(value, dict):
        items = value
    else:
        raise reader.fail(
            npath,
            "networks must be a table of network = address, or a list of network names.",
            'e.g. networks = { lan = "10.214.2.10" } or networks = ["lan"]',
        )
    for name, address in items.items():
        if name not in networks:
            known = ", ".join(networks) or "none defined"
            raise reader.fail(
                (*npath, name),
                f"unknown network {name!r} (networks: {known}).",
                f"Define it with [networks.{name}], or fix the name.",
            )
        reader.string(address, (*npath, name), f"the address on {name}")
    return dict(items)


def _assign_addresses(
    reader: _Reader, wanted: dict[str, dict[str, str]], networks: dict[str, NetworkSpec]
) -> dict[str, dict[str, IPv4]]:
    """Explicit addresses first (checked), then "auto" ones: lowest free, in file order."""
    result: dict[str, dict[str, IPv4]] = {role: {} for role in wanted}
    owners: dict[tuple[str, IPv4], str] = {}
    for role, items in wanted.items():
        for net, text in items.items():
            if text == "auto":
                continue
            path = ("hosts", role, "networks", net)
            subnet = networks[net].subnet
            try:
                address = IPv4(text)
            except ValueError:
                raise reader.fail(
                    path,
                    f"{text!r} is not an IPv4 address (for {role} on {net}).",
                    f'Write an address in {subnet}, or "auto".',
                ) from None
            if address not in subnet:
                raise reader.fail(
                    path,
                    f"{address} ({role} on {net}) is outside {net}'s subnet {subnet}.",
                    f'Use an address in {subnet}, or "auto" for the lowest free one.',
                )
            if address in (subnet.network_address, subnet.broadcast_address):
                raise reader.fail(
                    path, f"{address} is the network or broadcast address of {subnet}."
                )
            other = owners.get((net, address))
            if other is not None:
                raise reader.fail(path, f"{address} on {net} is given to both {other} and {role}.")
            owners[(net, address)] = role
            result[role][net] = address
    for role, items in wanted.items():
        for net, text in items.items():
            if text != "auto":
                continue
            subnet = networks[net].subnet
            free = next((a for a in subnet.hosts() if (net, a) not in owners), None)
            if free is None:
                raise reader.fail(("hosts", role, "networks", net), f"{subnet} is full.")
            owners[(net, free)] = role
            result[role][net] = free
    # Keep the file's order of interfaces.
    return {role: {net: result[role][net] for net in wanted[role]} for role in wanted}


Resolver = Callable[[tuple[str, ...], str], tuple[str, IPv4]]


def _resolver(
    reader: _Reader,
    role: str,
    addresses: dict[str, dict[str, IPv4]],
    networks: dict[str, NetworkSpec],
) -> Resolver:
    """Turn a next hop (a role or an IPv4 address) into (network, address) for ``role``."""
    own = addresses[role]

    def resolve(path: tuple[str, ...], text: str) -> tuple[str, IPv4]:
        if not own:
            raise reader.fail(path, f"{role} has no lab network to reach {text!r} through.")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        if address is not None:
            if not isinstance(address, IPv4):
                raise reader.fail(
                    path, f"give the next hop as an IPv4 address or a role, not {text}.",
                    "The IPv6 next hop is derived from it.",
                )  # fmt: skip
            for net, mine in own.items():
                if address in networks[net].subnet:
                    if address == mine:
                        raise reader.fail(path, f"{address} is {role}'s own address.")
                    return net, address
            raise reader.fail(
                path,
                f"{address} is not on any network of {role} "
                f"({', '.join(f'{n} {networks[n].subnet}' for n in own)}).",
            )
        if text == role:
            raise reader.fail(path, f"{role} cannot be its own next hop.")
        if text not in addresses:
            raise reader.fail(
                path,
                f"{text!r} is neither an IPv4 address nor a host of this topology.",
                f"Hosts: {', '.join(addresses)}.",
            )
        shared = [net for net in own if net in addresses[text]]
        if len(shared) != 1:
            problem = "shares no network with" if not shared else "shares several networks with"
            raise reader.fail(
                path,
                f"{role} {problem} {text}.",
                "Give the next hop's IPv4 address instead." if shared else "",
            )
        return shared[0], addresses[text][shared[0]]

    return resolve


def _host_routes(
    reader: _Reader,
    path: tuple[str, ...],
    value: Any,
    resolve: Resolver,
    networks: dict[str, NetworkSpec],
    role: str,
    own: dict[str, IPv4],
) -> tuple[RouteSpec, ...]:
    rpath = (*path, "routes")
    if not isinstance(value, dict):
        raise reader.fail(rpath, 'routes must be a table: routes = { lan = "router" }.')
    mgmt4 = lab_network().subnet
    routes: list[RouteSpec] = []
    for dest_text, via_text in value.items():
        dpath = (*rpath, dest_text)
        net, via = resolve(dpath, reader.string(via_text, dpath, "a route's next hop"))
        via6 = networks[net].address6(via)
        if dest_text in networks:
            if dest_text in own:
                raise reader.fail(dpath, f"{role} is on {dest_text} already; no route needed.")
            target = networks[dest_text]
            routes += [RouteSpec(target.subnet, via), RouteSpec(target.subnet6, via6)]
            continue
        try:
            dest = ipaddress.ip_network(dest_text)
        except ValueError:
            raise reader.fail(
                dpath,
                f"route destination {dest_text!r} is neither a network of this topology "
                "nor a CIDR network.",
                f'Networks: {", ".join(networks)}; or e.g. "10.214.9.0/24" = "router".',
            ) from None
        mgmt: Net4 | Net6 = mgmt4 if dest.version == 4 else MGMT_SUBNET6
        if dest.overlaps(mgmt):
            raise reader.fail(dpath, f"{dest} overlaps the lab's management network.")
        routes.append(RouteSpec(dest, via if dest.version == 4 else via6))
    return tuple(routes)


# --- a running topology --------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """A running topology: its hosts by role, wired to its networks through ``switch``.

    ``name`` is the instance name, which prefixes its hosts' names (``t1`` -> ``t1-router``).
    """

    name: str
    spec: TopologySpec
    switch: str
    hosts: Mapping[str, LabHost]

    def __getitem__(self, role: str) -> LabHost:
        try:
            return self.hosts[role]
        except KeyError:
            raise LabError(
                f"Topology {self.name} has no host {role!r} (roles: {', '.join(self.hosts)})."
            ) from None

    @property
    def networks(self) -> Mapping[str, NetworkSpec]:
        return self.spec.networks

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts.values()]

    def address(self, role: str, network: str, *, ipv6: bool = False) -> str:
        """The address of ``role`` on ``network`` (``mgmt`` for its eth0)."""
        iface = self[role].interface(network)
        return iface.address6 if ipv6 else iface.address
