"""Site step: squid on another host of the site, the router sending the clients' web traffic
to it by policy routing (issue #15, the "proxy host" placement of seed 000).

Stage 1, on the host with the role ``proxy``: squid exactly as the one-host step installs it
on a router (its configuration, REDIRECT of the web ports to the intercept port, the drop of
direct connections to that port in mangle, the boot path), taking the traffic that arrives on
its interface towards the router from the router's client networks; rp_filter loose there.
Stage 2, on the host with the role ``router``, once squid takes traffic: the mark, the
``ip rule`` and the routing table to the proxy, IPv4 and IPv6 (:mod:`.route`).

Rollback (the site's, newest stage first): the router stops sending traffic to the proxy, then
the proxy host is put back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wizard.actions import Action, FileState, RemoveFile, RunCommand, WriteFile
from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact, gather
from wizard.plan import Plan
from wizard.site.answers import one_host_answers, same_field
from wizard.site.step import HostFacts, SiteFacts
from wizard.steps.proxy import route
from wizard.steps.proxy import rules as proxy_rules
from wizard.steps.proxy.answers import Placement, ProxyAnswers
from wizard.steps.proxy.health import health_problems, path_problems
from wizard.steps.proxy.plan import facts_for, plan_proxy
from wizard.transport.base import Transport

ROUTER, PROXY = "router", "proxy"
FILES = {
    path: file_fact(path)
    for path in (route.RULES_V4, route.RULES_V6, route.ROUTING, route.SYSCTL, route.SCRIPT,
                 route.UNIT, route.INIT_SCRIPT, route.FIREWALL_SYSCTL, route.PROXY_SYSCTL)
}  # fmt: skip


@dataclass(frozen=True)
class ProxySiteAnswers:
    """A site file's ``[steps.proxy]``: the one-host step's questions that mean something here
    (``client_interfaces`` are the router's; not the container settings: squid runs from the
    proxy host's package), and how the router reaches the proxy host."""

    not_asked: ClassVar[dict[str, str]] = {
        name: "a setting of squid in a container on one host (the one-host proxy step's "
        "placement container); the site runs squid from the proxy host's package"
        for name in ("container_image", "container_timezone", "container_restart",
                     "container_cache_dir")
    }  # fmt: skip
    """Read by :func:`wizard.answers.build`: why a one-host setting is no site setting."""

    enabled: bool = field(
        default=True,
        metadata=describe(
            "Web proxy on another host",
            "Send the web traffic (HTTP) of the router's clients to squid on the host with "
            "the role proxy. Off: the site step changes nothing.",
        ),
    )
    placement: Placement = field(
        default="proxy-host",
        metadata=describe("Where squid runs", "proxy-host: on the host with the role proxy."),
    )
    client_interfaces: tuple[str, ...] = same_field(
        ProxyAnswers, "client_interfaces",
        help="The router's interfaces the clients' traffic arrives on (e.g. lan). Only their "
        "web traffic goes to the proxy host; everything else keeps its normal path.",
    )  # fmt: skip
    client_networks: tuple[str, ...] = same_field(ProxyAnswers, "client_networks")
    web_ports: tuple[str, ...] = same_field(ProxyAnswers, "web_ports")
    intercept_port: int = same_field(ProxyAnswers, "intercept_port")
    blocked_domains: tuple[str, ...] = same_field(ProxyAnswers, "blocked_domains")
    cache_size_mb: int = same_field(ProxyAnswers, "cache_size_mb")
    log_dir: str = same_field(ProxyAnswers, "log_dir")
    dns_nameservers: tuple[str, ...] = same_field(ProxyAnswers, "dns_nameservers")
    dns_timeout: int = same_field(ProxyAnswers, "dns_timeout")
    shutdown_lifetime: int = same_field(ProxyAnswers, "shutdown_lifetime")
    proxy_address: str = field(
        default="",
        metadata=describe(
            "Proxy address (IPv4)",
            "The proxy host's address the router sends the web traffic to; it must be on a "
            "network of the router's. Empty: its address on such a network (on a client "
            "interface's network first).",
        ),
    )
    proxy_address6: str = field(
        default="",
        metadata=describe(
            "Proxy address (IPv6)",
            "The same for IPv6. Empty: found the same way; none found: the clients' IPv6 web "
            "traffic is not sent to the proxy.",
        ),
    )
    route_mark: int = field(
        default=2,
        metadata=describe("Packet mark", "The firewall mark of the web traffic (seed 000: 2)."),
    )
    route_table: int = field(
        default=2,
        metadata=describe(
            "Routing table",
            "The routing table (1 to 252) whose default route is the proxy; it must be free.",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "proxy")
        self.on_proxy_host((), ())  # the one-host answers' own checks (ports, domains, paths)
        if self.placement != "proxy-host":
            raise InvalidAnswer(
                f"proxy.placement: {self.placement!r} in a site: the site step places squid "
                "on the host with the role proxy.",
                "Leave placement out. For squid on the router itself use the one-host proxy "
                "step (a preset's [proxy] table).",
            )
        for name, version in (("proxy_address", 4), ("proxy_address6", 6)):
            value = getattr(self, name)
            try:
                ok = not value or ipaddress.ip_address(value).version == version
            except ValueError:
                ok = False
            if not ok:
                raise InvalidAnswer(
                    f"proxy.{name}: {value!r} is not an IPv{version} address.",
                    "Give the proxy host's address, e.g. 10.0.2.3 (or fd00:2::3), or leave it out.",
                )
        if not 1 <= self.route_mark <= 0x7FFFFFFF or not 1 <= self.route_table <= 252:
            raise InvalidAnswer(
                "proxy.route_mark must be 1 to 2147483647 and proxy.route_table 1 to 252.",
                "The defaults (2 and 2) suit a router that uses neither yet.",
            )

    def on_proxy_host(self, interfaces: tuple[str, ...], networks: tuple[str, ...]) -> ProxyAnswers:
        """The one-host answers for squid on the proxy host: the clients' traffic arrives
        there on ``interfaces``, from ``networks``."""
        return one_host_answers(ProxyAnswers, self, enabled=True, placement="router",
                                client_interfaces=interfaces, client_networks=networks)  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """Where the web traffic goes, worked out from both hosts' addresses."""

    v4: route.Route
    v6: route.Route
    proxy_interfaces: tuple[str, ...]
    """The proxy host's interfaces that hold the addresses the router sends to."""
    networks: tuple[str, ...]
    """The client networks (both families)."""


def _proxy_address(
    answers: ProxySiteAnswers, version: int, router: route.NetHost, proxy: HostFacts
) -> str:
    """The proxy host's address of one family on a network of the router's ("" if none)."""
    net = proxy.facts[route.NET_HOST]
    given = answers.proxy_address if version == 4 else answers.proxy_address6
    if given:
        if not net.has_address(given):
            raise PlanConflict(
                f"{proxy.name} (the proxy) has no address {given}.",
                f"Give one of its addresses: {', '.join(a for _, a in net.addresses) or 'none'}"
                ", or leave proxy_address out.",
            )
        return given
    mine = [ipaddress.ip_interface(a).ip for _, a in net.addresses]
    mine = [ip for ip in mine if ip.version == version]
    nearby = [n for name in answers.client_interfaces for n in router.networks(name)]
    for networks in (nearby, [n for name in router.interfaces for n in router.networks(name)]):
        for ip in mine:
            if any(ip in ipaddress.ip_network(n) for n in networks):
                return str(ip)
    return ""


def layout(answers: ProxySiteAnswers, router: HostFacts, proxy: HostFacts) -> Layout:
    """The routes and the proxy's interfaces (refused, naming the host, when they cannot be)."""
    net = router.facts[route.NET_HOST]
    if router.name == proxy.name:
        raise PlanConflict(
            f"{router.name} has both roles, router and proxy.",
            "For squid on the router itself use the one-host proxy step (placement router); "
            "the site step is for squid on another host.",
        )
    if not answers.client_interfaces:
        raise PlanConflict(
            "proxy.client_interfaces is empty: whose web traffic should the router send?",
            f"Name {router.name}'s client interfaces (it has: {', '.join(net.interfaces)}).",
        )
    missing = [name for name in answers.client_interfaces if name not in net.interfaces]
    if missing:
        raise PlanConflict(
            f"{router.name} has no interface {', '.join(missing)} (or it has no address).",
            f"Use its interfaces: {', '.join(net.interfaces) or 'none found'}.",
        )
    routes = []
    for version in (4, 6):
        address = _proxy_address(answers, version, net, proxy)
        device = net.interface_for(address) if address else ""
        if address and not device:
            raise PlanConflict(
                f"{address} ({proxy.name}) is on none of {router.name}'s networks: the router "
                "can only send the traffic to a neighbour.",
                f"Give an address of {proxy.name} on a network of {router.name}'s.",
            )
        if version == 4 and not address:
            raise PlanConflict(
                f"{proxy.name} (the proxy) has no IPv4 address on a network of {router.name}'s.",
                "Connect the proxy host to a network of the router's (the client network is "
                "the usual place), or name its address in proxy_address.",
            )
        routes.append(
            route.Route(
                version,
                address,
                device,
                answers.client_interfaces,
                answers.web_ports,
                answers.route_mark,
                answers.route_table,
            )
        )
    v4, v6 = routes
    proxy_net = proxy.facts[route.NET_HOST]
    interfaces = tuple(dict.fromkeys(proxy_net.has_address(r.proxy) for r in routes if r.proxy))
    if answers.client_networks:
        networks = answers.client_networks
    else:
        networks = tuple(n for name in answers.client_interfaces for n in net.networks(name))
    return Layout(v4, v6, interfaces, tuple(dict.fromkeys(networks)))


def _file(facts: Facts, path: str, content: str, mode: int, why: str) -> list[Action]:
    state: FileState = facts[FILES[path]]
    data = content.encode()
    if state.exists and state.content == data and state.mode == mode:
        return []
    return [WriteFile(path, data, mode, why=why)]


def _sysctl_actions(facts: Facts, path: str, wanted: dict[str, str], what: str) -> list[Action]:
    """The sysctl file and, where the kernel differs, setting the values now."""
    actions = _file(facts, path, route.sysctl_text(wanted, what), 0o644, what)
    live = facts[route.NET_HOST].sysctl
    if actions or any(live.get(key) != value for key, value in wanted.items()):
        actions.append(RunCommand(
            route.sysctl_now(wanted), why=f"set now: {what}",
            undo=route.sysctl_undo(wanted, live), undo_why="put the earlier values back",
        ))  # fmt: skip
    return actions


# ---- the proxy host (stage 1) ----------------------------------------------------------


def proxy_plan(answers: ProxySiteAnswers, where: Layout, proxy: HostFacts, name: str) -> Plan:
    one_host = answers.on_proxy_host(where.proxy_interfaces, where.networks)
    try:
        squid = plan_proxy(one_host, proxy.facts)
    except PlanConflict as error:
        raise PlanConflict(f"{proxy.name}: {error.message}", error.hint or "") from None
    wanted = {f"ipv4/conf/{n}/rp_filter": "2" for n in where.proxy_interfaces}
    what = "rp_filter loose where the clients' traffic arrives (it is addressed to others)"
    actions = [*_sysctl_actions(proxy.facts, route.PROXY_SYSCTL, wanted, what), *squid.actions]
    before = tuple(proxy.facts[FILES[a.path]] for a in actions
                   if isinstance(a, WriteFile) and a.path in FILES)  # fmt: skip
    notes = (
        f"squid on {proxy.name} takes the web traffic (TCP {', '.join(answers.web_ports)}) the "
        f"router sends it from {', '.join(where.networks)}: arriving on "
        f"{', '.join(where.proxy_interfaces)}, it is redirected to the intercept port "
        f"{answers.intercept_port}. Direct connections to that port are dropped (squid 5 would "
        "stop accepting after one).",
        f"squid logs every request to {answers.log_dir}/access.log on {proxy.name}, with the "
        "client's address.",
        "HTTPS is not intercepted: squid could only read it with peek-and-splice, which needs "
        "a certificate authority of this proxy installed and trusted on every client.",
    )
    return Plan(name, tuple(actions), before=(*squid.before, *before),
                notes=notes if actions else ())  # fmt: skip


# ---- the router (stage 2) --------------------------------------------------------------


def _forwarding_problem(router: HostFacts, version: int) -> str:
    net = router.facts[route.NET_HOST]
    switch: FileState = router.facts[FILES[route.FIREWALL_SYSCTL]]
    key = "net.ipv4.ip_forward = 1" if version == 4 else "net.ipv6.conf.all.forwarding = 1"
    if net.forwards(version) or (switch.exists and key in switch.text.splitlines()):
        return ""
    return f"IPv{version}"


def check_router(answers: ProxySiteAnswers, where: Layout, router: HostFacts) -> None:
    live = router.facts[route.route_host_fact(answers.route_table)]
    if proxy_rules.loaded(live.rules_v4) or proxy_rules.loaded(live.rules_v6):
        raise PlanConflict(
            f"{router.name} runs squid itself (the one-host proxy step's HWPROXY rules are "
            "loaded): the router would send the traffic both ways.",
            f"Roll back that change on {router.name} first (hostwiz rollback), or keep squid "
            "on the router and leave the site step out.",
        )
    off = [_forwarding_problem(router, r.version) for r in (where.v4, where.v6) if r.proxy]
    off = [family for family in off if family]
    if off:
        raise PlanConflict(
            f"{router.name} does not forward {' and '.join(off)} packets: it could not pass "
            "the clients' traffic to the proxy (or anywhere).",
            'Let the router route: its firewall step with forward = ["lan>wan"] turns '
            "forwarding on (give the router that preset in the site file).",
        )
    old = _old_values(router.facts[FILES[route.ROUTING]])
    ours = old is not None and old[1] == answers.route_table
    for table in (live.table_v4, live.table_v6):
        lines = [line.strip() for line in table.splitlines() if line.strip()]
        if lines and not ours:
            raise PlanConflict(
                f"routing table {answers.route_table} on {router.name} is in use ({lines[0]}).",
                "Pick a free table with proxy.route_table (ip route show table N prints "
                "nothing for a free one).",
            )


def _old_values(state: FileState) -> tuple[int, int] | None:
    """MARK and TABLE of a routing file written before (None: none, or unreadable)."""
    if not state.exists:
        return None
    values = dict(line.partition("=")[::2] for line in state.text.splitlines() if "=" in line)
    mark, table = values.get("MARK", ""), values.get("TABLE", "")
    return (int(mark), int(table)) if mark.isdigit() and table.isdigit() else None


def router_problems(answers: ProxySiteAnswers, where: Layout, router: HostFacts) -> list[str]:
    """How the router's kernel differs from what the files say ([] when it holds them)."""
    live = router.facts[route.route_host_fact(answers.route_table)]
    problems = route.rules_problems(route.render_rules(where.v4), live.rules_v4)
    problems += route.rules_problems(route.render_rules(where.v6), live.rules_v6)
    problems += route.routing_problems(where.v4, live.rule_v4, live.table_v4)
    problems += route.routing_problems(where.v6, live.rule_v6, live.table_v6)
    return problems


def router_plan(answers: ProxySiteAnswers, where: Layout, router: HostFacts, name: str) -> Plan:
    check_router(answers, where, router)
    facts = router.facts
    devices = tuple(r.device for r in (where.v4, where.v6) if r.device)
    sysctls = route.router_sysctls(answers.client_interfaces, devices)
    files = _file(
        facts,
        route.RULES_V4,
        route.render_rules(where.v4),
        0o644,
        "mark the clients' web traffic, accept it in FORWARD (IPv4)",
    )
    files += _file(facts, route.RULES_V6, route.render_rules(where.v6), 0o644, "the same for IPv6")
    files += _file(
        facts,
        route.ROUTING,
        route.render_routing(where.v4, where.v6),
        0o644,
        "the mark, the routing table and the proxy's addresses",
    )
    files += _file(
        facts,
        route.SYSCTL,
        route.sysctl_text(sysctls, "web proxy routing"),
        0o644,
        "rp_filter loose (the proxy's answers), no ICMP redirects to the clients",
    )
    files += _file(facts, route.SCRIPT, route.SCRIPT_TEXT, 0o755, "loads all of it")
    actions: list[Action] = list(files)
    live = facts[route.NET_HOST].sysctl
    drift = router_problems(answers, where, router)
    drift += [k for k, v in sysctls.items() if live.get(k) != v]
    if files or drift:
        old = _old_values(facts[FILES[route.ROUTING]])
        stale = (f"{route.stop_script(*old)}\n"
                 if old and old != (answers.route_mark, answers.route_table) else "")  # fmt: skip
        actions.append(RunCommand(
            f"{stale}{route.SCRIPT} start",
            why=f"route the marked web traffic to {where.v4.proxy} (table "
            f"{answers.route_table}), load the marks and the FORWARD accepts, set rp_filter",
            undo=f"{route.undo_load_script(answers.route_mark, answers.route_table)}\n"
            f"{route.sysctl_undo(sysctls, live)}",
            undo_why="remove the proxy's rules, routes and table entries (loading the earlier "
            "ones, if any), and put rp_filter and send_redirects back",
            timeout=60,
        ))  # fmt: skip
    actions += _boot(facts, router.facts[route.route_host_fact(answers.route_table)].boot)
    before = tuple(facts[FILES[a.path]] for a in actions if isinstance(a, WriteFile | RemoveFile))
    return Plan(name, tuple(actions), before=before,
                notes=_router_notes(answers, where, router.name) if actions else ())  # fmt: skip


def _boot(facts: Facts, registered: bool) -> list[Action]:
    if facts[SERVICE_MANAGER] == "systemd":
        actions = _file(facts, route.UNIT, route.UNIT_TEXT, 0o644, "loads the routing at boot")
        enable = RunCommand(
            "systemctl daemon-reload && systemctl enable hostwiz-proxy-route.service",
            why="send the web traffic to the proxy after every boot",
            undo=f"rm -f {route.UNIT_LINK}; systemctl daemon-reload",
        )
    else:
        actions = _file(facts, route.INIT_SCRIPT, route.INIT_TEXT, 0o755,
                        "loads the routing at boot")  # fmt: skip
        enable = RunCommand(
            "update-rc.d hostwiz-proxy-route defaults",
            why="send the web traffic to the proxy after every boot (init script)",
            undo="update-rc.d -f hostwiz-proxy-route remove >/dev/null 2>&1 || true",
        )
    return [*actions, *([] if registered else [enable])]


def _router_notes(answers: ProxySiteAnswers, where: Layout, router: str) -> tuple[str, ...]:
    ports = ", ".join(answers.web_ports)
    clients = ", ".join(answers.client_interfaces)
    sent = " and ".join(r.proxy for r in (where.v4, where.v6) if r.proxy)
    loose = ", ".join(dict.fromkeys((*answers.client_interfaces, where.v4.device)))
    notes = [
        f"Web traffic (TCP {ports}) arriving on {clients}, except the proxy's own requests, "
        f"is marked {answers.route_mark:#x} and routed by table {answers.route_table} to the "
        f"proxy host ({sent}). SSH, ping and all other traffic keep their normal path; "
        f"{router}'s own web traffic too.",
        f"rp_filter is loose (2) on {loose} and ICMP redirects are off: the router forwards "
        "the clients' web traffic to a neighbour on purpose.",
        f"To check the path, {router} then sends one web request the clients' way (from its "
        "own address on their network, to the documentation address 192.0.2.1): squid on the "
        "proxy host must answer it. squid refuses it itself (TCP_DENIED/403 in its log) and "
        "connects nowhere.",
    ]
    if not where.v6.proxy:
        notes.append("The proxy host has no IPv6 address on a network of the router's: the "
                     "clients' IPv6 web traffic goes out directly.")  # fmt: skip
    return tuple(notes)


# ---- the step --------------------------------------------------------------------------


class ProxySiteStep:
    name = "proxy"
    title = "Web proxy on another host (squid)"
    explanation = (
        "Runs squid on the host with the role proxy and has the router send its clients' web "
        "traffic (HTTP) there by policy routing: every request is logged with the client's "
        "address, pages are cached, blocked domains get squid's deny page. SSH, ping and "
        "everything else keep their normal path. HTTPS is not intercepted."
    )
    answers_type = ProxySiteAnswers
    roles: tuple[str, ...] = (ROUTER, PROXY)
    stages = 2

    def facts(self, answers: ProxySiteAnswers, role: str) -> list[Fact[Any]]:
        if role == PROXY:
            return [*facts_for(answers.on_proxy_host((), ())), route.NET_HOST,
                    FILES[route.PROXY_SYSCTL]]  # fmt: skip
        wanted = (route.RULES_V4, route.RULES_V6, route.ROUTING, route.SYSCTL, route.SCRIPT,
                  route.UNIT, route.INIT_SCRIPT, route.FIREWALL_SYSCTL)  # fmt: skip
        return [route.NET_HOST, route.route_host_fact(answers.route_table), SERVICE_MANAGER,
                *(FILES[path] for path in wanted)]  # fmt: skip

    def produces(self, answers: ProxySiteAnswers, stage: int, role: str) -> list[Fact[Any]]:
        return []

    def plan(self, answers: ProxySiteAnswers, stage: int, site: SiteFacts) -> Mapping[str, Plan]:
        if not answers.enabled:
            return {}
        router, proxy = site.one(ROUTER), site.one(PROXY)
        where = layout(answers, router, proxy)
        if stage == 1:
            return {proxy.name: proxy_plan(answers, where, proxy, self.name)}
        return {router.name: router_plan(answers, where, router, self.name)}

    def health(
        self, transport: Transport, answers: ProxySiteAnswers, stage: int, host: str,
        site: SiteFacts,
    ) -> list[str]:  # fmt: skip
        where = layout(answers, site.one(ROUTER), site.one(PROXY))
        if stage == 1:
            one_host = answers.on_proxy_host(where.proxy_interfaces, where.networks)
            return health_problems(transport, one_host)
        facts = gather(transport, self.facts(answers, ROUTER))
        problems = router_problems(answers, where, HostFacts(host, (ROUTER,), facts))
        if problems:
            return problems
        net = facts[route.NET_HOST]
        for way in (where.v4, where.v6):
            source = _client_address(net, answers.client_interfaces, way.version)
            if way.proxy and source:
                problems += path_problems(transport, way.version, source, way.proxy,
                                          answers.web_ports[0], answers.route_mark)  # fmt: skip
        return problems


def _client_address(net: route.NetHost, clients: tuple[str, ...], version: int) -> str:
    """The router's own address of one family on a client network ("" when none): the
    router's test request comes from there, as a client's would."""
    for name, address in net.addresses:
        ip = ipaddress.ip_interface(address).ip
        if name in clients and ip.version == version:
            return str(ip)
    return ""


PROXY_SITE = ProxySiteStep()
