"""The router's part when squid runs on another host of the site: policy routing of the
clients' web traffic to that host (seed 000's design, without its ``-s ! IP`` typo).

What the router gets, IPv4 and IPv6 alike::

    mangle HWPROXYRT-MARK      (first in PREROUTING) traffic to the router's own addresses:
                               RETURN; from a client interface, not from the proxy itself
                               (``! -s PROXY``: its own requests go out normally, no loop), to a
                               web port: MARK
    ip rule fwmark MARK lookup TABLE (pref 30000), and in TABLE: default via PROXY
    filter HWPROXYRT-FORWARD   (first in FORWARD, and in DOCKER-USER when Docker's chain is
                               there: its FORWARD policy is DROP) the marked packets, stateless
                               (the router sees only the client's half of the connection), and
                               the proxy's answers when it sits on another interface
    sysctl                     rp_filter 2 (loose) on the client interfaces and the proxy's:
                               the proxy answers with the web server's address, which strict
                               checking drops where the proxy is on another interface;
                               send_redirects 0, so the router does not tell the clients to
                               send to the proxy host directly (it forwards them there itself)

Only the marked web traffic changes its path: SSH, ping and everything else are routed as
before. The chains are ``HWPROXYRT-*``, apart from the ``HWPROXY-*`` chains of squid on the
router (whose script removes every ``HWPROXY-*`` chain).

One script, ``/usr/local/sbin/hostwiz-proxy-route start|stop``, is what both the apply and the
boot path run; it starts once the network is up (the route names a neighbour).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from wizard.facts import Fact, sections
from wizard.host.boot import BootPath, init_text, unit_text
from wizard.host.rules_shell import delete_jumps, first_jump_function
from wizard.steps.proxy import rules

MARK_CHAIN = "HWPROXYRT-MARK"
FORWARD_CHAIN = "HWPROXYRT-FORWARD"
RULE_PREF = 30000
"""The ip rule's priority: after rules an admin (or the lab) put first, before ``main``."""

RULES_DIR = "/etc/hostwiz/proxy-route"
RULES_V4 = f"{RULES_DIR}/rules.v4"
RULES_V6 = f"{RULES_DIR}/rules.v6"
ROUTING = f"{RULES_DIR}/routing"
SYSCTL = "/etc/sysctl.d/61-hostwiz-proxy-route.conf"
PROXY_SYSCTL = rules.PROXY_SYSCTL
"""On the proxy host: rp_filter loose on the interface the clients' traffic arrives on."""
SCRIPT = "/usr/local/sbin/hostwiz-proxy-route"
UNIT = "/etc/systemd/system/hostwiz-proxy-route.service"
UNIT_LINK = "/etc/systemd/system/multi-user.target.wants/hostwiz-proxy-route.service"
INIT_SCRIPT = "/etc/init.d/hostwiz-proxy-route"
FIREWALL_SYSCTL = "/etc/sysctl.d/60-hostwiz-forwarding.conf"
"""The firewall step's forwarding switch (read, never written)."""


# ---- facts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NetHost:
    """A host's addresses and the network sysctls the proxy cares about."""

    addresses: tuple[tuple[str, str], ...] = ()
    """(interface, address/prefix), loopback and link-local left out."""
    sysctl: dict[str, str] = field(default_factory=dict)
    """``ipv4/conf/lan/rp_filter`` (path under /proc/sys/net) -> value."""

    @property
    def interfaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.addresses))

    def networks(self, name: str) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_interface(a).network) for n, a in self.addresses if n == name)

    def interface_for(self, address: str) -> str:
        """The interface whose network holds ``address`` ("" when none does)."""
        ip = ipaddress.ip_address(address)
        for name, item in self.addresses:
            if ip in ipaddress.ip_interface(item).network:
                return name
        return ""

    def has_address(self, address: str) -> str:
        """The interface that has ``address`` itself ("" when none)."""
        ip = ipaddress.ip_address(address)
        return next((n for n, a in self.addresses if ipaddress.ip_interface(a).ip == ip), "")

    def forwards(self, version: int) -> bool:
        key = "ipv4/ip_forward" if version == 4 else "ipv6/conf/all/forwarding"
        return self.sysctl.get(key) == "1"


def parse_addresses(text: str) -> tuple[tuple[str, str], ...]:
    try:
        links = json.loads(text or "[]")
    except json.JSONDecodeError:
        return ()
    found = []
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname", "")
        if not name or "LOOPBACK" in link.get("flags", []):
            continue
        for info in link.get("addr_info", []):
            try:
                iface = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
            except (KeyError, ValueError):
                continue
            if not iface.ip.is_link_local:
                found.append((name, str(iface)))
    return tuple(found)


def parse_net_host(code: int, out: str) -> NetHost:
    parts = sections(out, ("addr", "sysctl"))
    values = {}
    for line in parts.get("sysctl", "").splitlines():
        path, _, value = line.partition(" ")
        if path.startswith("/proc/sys/net/") and value.strip():
            values[path.removeprefix("/proc/sys/net/")] = value.strip()
    return NetHost(parse_addresses(parts.get("addr", "")), values)


NET_HOST: Fact[NetHost] = Fact(
    "proxy_net_host",
    "echo @@addr; ip -j addr show 2>/dev/null\necho @@sysctl\n"
    "for f in /proc/sys/net/ipv4/conf/*/rp_filter /proc/sys/net/ipv4/conf/*/send_redirects "
    '/proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding; do\n  [ -r "$f" ] '
    '&& echo "$f $(cat "$f")"\ndone\ntrue',
    parse_net_host,
)


@dataclass(frozen=True)
class RouteHost:
    """The router's packet rules, policy rules and the proxy's routing table as the kernel
    holds them, and whether the script starts at boot."""

    rules_v4: str = ""
    rules_v6: str = ""
    rule_v4: str = ""
    """``ip -4 rule show``."""
    rule_v6: str = ""
    table_v4: str = ""
    """``ip -4 route show table TABLE``."""
    table_v6: str = ""
    boot: bool = False


_ROUTE_SECTIONS = ("rules4", "rules6", "rule4", "rule6", "table4", "table6", "boot")


def parse_route_host(code: int, out: str) -> RouteHost:
    parts = sections(out, _ROUTE_SECTIONS)
    return RouteHost(
        rules_v4=parts.get("rules4", ""),
        rules_v6=parts.get("rules6", ""),
        rule_v4=parts.get("rule4", ""),
        rule_v6=parts.get("rule6", ""),
        table_v4=parts.get("table4", ""),
        table_v6=parts.get("table6", ""),
        boot=parts.get("boot", "").strip() != "",
    )


def route_host_fact(table: int) -> Fact[RouteHost]:
    command = f"""echo @@rules4; iptables-save 2>/dev/null
echo @@rules6; ip6tables-save 2>/dev/null
echo @@rule4; ip -4 rule show 2>/dev/null
echo @@rule6; ip -6 rule show 2>/dev/null
echo @@table4; ip -4 route show table {table} 2>/dev/null
echo @@table6; ip -6 route show table {table} 2>/dev/null
echo @@boot
[ -e {UNIT_LINK} ] && echo systemd
ls /etc/rc[S2345].d/ 2>/dev/null | grep -q 'hostwiz-proxy-route$' && echo init
true"""
    return Fact(f"proxy_route:{table}", command, parse_route_host)


# ---- what the router holds -------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """The router's choices for one address family."""

    version: int
    proxy: str
    """The proxy host's address ("" : this family's web traffic is not sent to a proxy)."""
    device: str
    """The router's interface towards it."""
    clients: tuple[str, ...]
    ports: tuple[str, ...]
    mark: int
    table: int


def render_rules(route: Route) -> str:
    """The restore file of one family (hostwiz's HWPROXYRT-* chains only)."""
    mark = [f"-A {MARK_CHAIN} -m addrtype --dst-type LOCAL -j RETURN"]
    accept = []
    if route.proxy:
        host = ipaddress.ip_network(route.proxy)
        for name in route.clients:
            for port in route.ports:
                mark.append(
                    f"-A {MARK_CHAIN} ! -s {host} -i {name} -p tcp -m tcp --dport {port} "
                    f"-j MARK --set-xmark {route.mark:#x}/0xffffffff"
                )
            accept.append(
                f"-A {FORWARD_CHAIN} -i {name} -o {route.device} -p tcp "
                f"-m mark --mark {route.mark:#x} -j ACCEPT"
            )
            if name != route.device:  # the proxy's answers come back through the router
                accept += [
                    f"-A {FORWARD_CHAIN} -i {route.device} -o {name} -p tcp -m tcp "
                    f"--sport {port} -j ACCEPT"
                    for port in route.ports
                ]
    family = "iptables" if route.version == 4 else "ip6tables"
    lines = [
        f"# Written by hostwiz (web proxy on another host). Loaded with {family}-restore",
        f"# --noflush by {SCRIPT}: only the HWPROXYRT-* chains are replaced.",
        "*mangle", f":{MARK_CHAIN} - [0:0]", *mark, "COMMIT",
        "*filter", f":{FORWARD_CHAIN} - [0:0]", *accept, "COMMIT",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def render_routing(v4: Route, v6: Route) -> str:
    """The values the script reads (a shell file: it is sourced)."""
    return (
        "# Written by hostwiz (web proxy on another host): the mark of the clients' web\n"
        "# traffic, the routing table it is looked up in, and the proxy it is sent to.\n"
        f"MARK={v4.mark}\nTABLE={v4.table}\nPROXY4={v4.proxy}\nPROXY6={v6.proxy}\n"
    )


def sysctl_key(path: str) -> str:
    """``ipv4/conf/lan/rp_filter`` as sysctl names it (the slash form when the interface
    name has a dot, e.g. a VLAN ``eth0.10``)."""
    parts = path.split("/")
    if any("." in part for part in parts):
        return f"net/{path}"
    return "net." + ".".join(parts)


def router_sysctls(clients: tuple[str, ...], devices: tuple[str, ...]) -> dict[str, str]:
    """path -> value on the router: loose rp_filter where the web traffic and the proxy's
    answers pass, and no ICMP redirects to the clients."""
    wanted = {f"ipv4/conf/{name}/rp_filter": "2" for name in dict.fromkeys(clients + devices)}
    wanted["ipv4/conf/all/send_redirects"] = "0"
    wanted.update({f"ipv4/conf/{name}/send_redirects": "0" for name in clients})
    return wanted


def sysctl_text(values: dict[str, str], what: str) -> str:
    lines = [f"# Written by hostwiz ({what})."]
    lines += [f"{sysctl_key(path)} = {value}" for path, value in values.items()]
    return "\n".join(lines) + "\n"


def sysctl_now(values: dict[str, str]) -> str:
    """``sysctl -w`` of these values (one command)."""
    return "sysctl -q -w " + " ".join(f"{sysctl_key(p)}={v}" for p, v in values.items())


def sysctl_undo(values: dict[str, str], now: dict[str, str]) -> str:
    """Put back the values read before (those the host had)."""
    old = {path: now[path] for path in values if path in now}
    return f"{sysctl_now(old)} 2>/dev/null || true" if old else "true"


def _family_rules(text: str) -> dict[str, list[str]]:
    """``iptables-save`` output -> hostwiz's chains (and the built-ins) -> their rules."""
    chains: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            chains.setdefault(line.split()[1], []).append(line)
    return chains


def _tables(text: str) -> dict[str, dict[str, list[str]]]:
    result: dict[str, dict[str, list[str]]] = {}
    table = ""
    block: list[str] = []
    for line in [*text.splitlines(), "*"]:
        if line.startswith("*"):
            if table:
                result[table] = _family_rules("\n".join(block))
            table, block = line[1:], []
        else:
            block.append(line)
    return result


JUMPS = (
    ("mangle", "PREROUTING", MARK_CHAIN),
    ("filter", "FORWARD", FORWARD_CHAIN),
    ("filter", "DOCKER-USER", FORWARD_CHAIN),
)
"""(table, chain, hostwiz's chain it jumps to). The script puts each jump first; Docker,
restarted later, puts its own jumps in front again, which is harmless."""


def _drops(rule: str) -> bool:
    """Whether a rule may drop the traffic (its target is DROP, REJECT or a chain of hostwiz's
    firewall)."""
    target = rule.split(" -j ")[-1].split()[0] if " -j " in rule else ""
    return target in {"DROP", "REJECT"} or target.startswith("HOSTWIZ-")


def _jump_problem(rules: list[str], builtin: str, chain: str) -> str:
    """Why ``builtin``'s jump to ``chain`` does not take effect ("" when it does: it is there,
    with nothing before it that may drop the traffic). DOCKER-USER needs it only when that
    chain may drop (Docker made it alone: it only returns)."""
    jump = f"-A {builtin} -j {chain}"
    if jump not in rules:
        if builtin == "DOCKER-USER" and not any(map(_drops, rules)):
            return ""
        return f"{builtin} does not jump to {chain}"
    ahead = [rule for rule in rules[: rules.index(jump)] if _drops(rule)]
    return f"{builtin} has {ahead[0]!r} before its jump to {chain}" if ahead else ""


def rules_problems(wanted: str, live: str) -> list[str]:
    """How the kernel's HWPROXYRT chains differ from the file ([] when they match)."""
    want, have = _tables(wanted), _tables(live)
    problems = []
    for table, chain in (("mangle", MARK_CHAIN), ("filter", FORWARD_CHAIN)):
        loaded = have.get(table, {})
        if chain not in loaded:
            problems.append(f"chain {chain} ({table}) is not loaded")
        elif loaded[chain] != want.get(table, {}).get(chain, []):
            problems.append(f"chain {chain} ({table}) has other rules than the file")
    for table, builtin, chain in JUMPS:
        rules = have.get(table, {}).get(builtin)
        if rules is None:  # DOCKER-USER where Docker never ran
            continue
        problem = _jump_problem(rules, builtin, chain)
        if problem:
            problems.append(problem)
    return problems


def rule_line(route: Route) -> str:
    """How ``ip rule show`` prints hostwiz's rule."""
    return f"{RULE_PREF}:\tfrom all fwmark {route.mark:#x} lookup {route.table}"


def route_line(route: Route) -> str:
    """The start of how ``ip route show table T`` prints the default route to the proxy."""
    return f"default via {route.proxy} dev {route.device} "


def routing_problems(route: Route, rules: str, table: str) -> list[str]:
    """How the policy rule and the table differ from what is wanted ([] when they match)."""
    family = f"IPv{route.version}"
    ours = [line for line in rules.splitlines() if line.startswith(f"{RULE_PREF}:")]
    lines = [line for line in table.splitlines() if line.strip()]
    if not route.proxy:
        return [f"{family}: a proxy rule or route is left over"] if ours or lines else []
    problems = []
    if [line.rstrip() for line in ours] != [rule_line(route)]:
        problems.append(f"{family}: the rule 'fwmark {route.mark:#x} lookup {route.table}' is "
                        "not the only one at its priority")  # fmt: skip
    if len(lines) != 1 or not f"{lines[0]} ".startswith(route_line(route)):
        problems.append(f"{family}: table {route.table} does not hold only the default route "
                        f"via {route.proxy}")  # fmt: skip
    return problems


# ---- the script ------------------------------------------------------------------------

STOP_FUNCTIONS = (
    """hwpr_stop() {  # mark table: remove every rule, route and chain of it
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
"""
    + delete_jumps([":".join(jump) for jump in JUMPS], indent="    ")
    + rf"""    for spec in mangle:{MARK_CHAIN} filter:{FORWARD_CHAIN}; do
      "$cmd" -w -t "${{spec%%:*}}" -F "${{spec#*:}}" 2>/dev/null
      "$cmd" -w -t "${{spec%%:*}}" -X "${{spec#*:}}" 2>/dev/null
    done
  done
  for family in -4 -6; do
    for i in 1 2 3 4 5 6 7 8; do
      ip "$family" rule del fwmark "$1" table "$2" pref {RULE_PREF} 2>/dev/null || break
    done
    ip "$family" route flush table "$2" 2>/dev/null
  done
  return 0
}}
"""
)
"""Removes everything of the router's part (used by ``stop`` and by undo scripts, which must
work after the script itself is gone)."""

SCRIPT_TEXT = (
    rf"""#!/bin/sh
# hostwiz web proxy on another host: start marks the clients' web traffic and routes it to
# the proxy host, stop removes that. Written by hostwiz; run at boot once the network is up,
# and when hostwiz applies a change.
set -u
DIR={RULES_DIR}
"""
    + STOP_FUNCTIONS
    + first_jump_function("hwpr_first")
    + rf"""hwpr_family() {{  # cmd rules-file
  "$1-restore" -w --noflush < "$2" || {{ echo "hostwiz-proxy-route: $2 failed" >&2; return 1; }}
  hwpr_first "$1" mangle PREROUTING {MARK_CHAIN} || return 1
  hwpr_first "$1" filter FORWARD {FORWARD_CHAIN} || return 1
  if "$1" -w -n -L DOCKER-USER >/dev/null 2>&1; then  # Docker's chain: its FORWARD drops
    hwpr_first "$1" filter DOCKER-USER {FORWARD_CHAIN} || return 1
  fi
}}
hwpr_route() {{  # family proxy: the table's default route to the proxy, and the mark's rule
  while ip "$1" rule del fwmark "$MARK" table "$TABLE" pref {RULE_PREF} 2>/dev/null; do :; done
  ip "$1" route flush table "$TABLE" 2>/dev/null
  [ -n "$2" ] || return 0
  ip "$1" route replace default via "$2" table "$TABLE" || return 1
  ip "$1" rule add fwmark "$MARK" table "$TABLE" pref {RULE_PREF}
}}
[ -f "$DIR/routing" ] || {{ echo "hostwiz-proxy-route: $DIR/routing is missing" >&2; exit 1; }}
. "$DIR/routing"
case "${{1:-}}" in
  start)
    [ -f {SYSCTL} ] && sysctl -q -p {SYSCTL} >/dev/null
    hwpr_route -4 "$PROXY4" || exit 1
    hwpr_route -6 "$PROXY6" || exit 1
    hwpr_family iptables "$DIR/rules.v4" || exit 1
    hwpr_family ip6tables "$DIR/rules.v6" || exit 1 ;;
  stop)
    hwpr_stop "$MARK" "$TABLE" ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
"""
)

BOOT = BootPath(
    name="hostwiz-proxy-route",
    script=SCRIPT,
    comment="send the clients' web traffic to the proxy host, once the network is up.",
    description="hostwiz web proxy routing",
    short="hostwiz web proxy routing (to the proxy host)",
    status=f"ip -4 rule show pref {RULE_PREF} | grep -q fwmark ;;",
    after=("hostwiz-firewall.service", "docker.service"),
    should_start=("hostwiz-firewall",),
    network=True,
)
UNIT_TEXT = unit_text(BOOT)
INIT_TEXT = init_text(BOOT)


def stop_script(mark: int, table: int) -> str:
    """Remove the rules, routes and chains of ``mark`` and ``table`` (self-contained)."""
    stop = "".join(f"{line}\n" for line in STOP_FUNCTIONS.splitlines())
    return f"{stop}hwpr_stop {mark} {table}"


def undo_load_script(mark: int, table: int) -> str:
    """Undo of loading: remove what this change loaded (its mark and table), then load what
    was there before, if anything (the files are back by then)."""
    return (
        f"{stop_script(mark, table)}\n"
        f"if [ -x {SCRIPT} ] && [ -f {ROUTING} ]; then {SCRIPT} start; fi"
    )
