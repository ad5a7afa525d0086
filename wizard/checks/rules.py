"""The combination checker's rules: known conflicts between the answers of several steps and
the facts of the host, each explained.

A rule is data: a name, what it is about, and a test that reads a :class:`Combined` and says
what conflicts (or nothing). Answers are read by step name and field name, never through the
steps' modules, so renaming or splitting a step's module breaks no rule; a step or field that
is missing reads as its default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Combined:
    """The answers of every selected step (step -> field -> value) and plain host facts."""

    answers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    host: Mapping[str, Any] = field(default_factory=dict)
    """Keys (all optional): ip_forward ("0"/"1"), dockerd_running, dockerd_cmdline_hosts,
    daemon_hosts, swarm_state, gwbridge_custom, kernel_esp/kernel_gcm ("yes"/"no"/"unknown"),
    nfs_mounts, routes (IPv4 networks), addresses (IPv4 addresses with prefix)."""

    def on(self, step: str) -> bool:
        """The step is selected and not switched off (steps without ``enabled`` are on)."""
        return step in self.answers and bool(self.answers[step].get("enabled", True))

    def get(self, step: str, name: str, default: Any = None) -> Any:
        return self.answers.get(step, {}).get(name, default)


@dataclass(frozen=True)
class Conflict:
    rule: str
    message: str
    hint: str
    host: str = ""
    """The site host it was found on ("" when one host is checked)."""


@dataclass(frozen=True)
class Rule:
    name: str
    about: str
    test: Callable[[Combined], tuple[str, str] | None]
    """(message, hint) when the combination conflicts, else None."""


ZONES = ("mgmt", "lan", "wan")


def _services(c: Combined, zone: str) -> list[str]:
    return [str(s).split()[0] for s in c.get("firewall", f"{zone}_services", ()) or ()]


def _offers(c: Combined, zone: str, *names: str) -> bool:
    return any(s in names for s in _services(c, zone))


def _swarm(c: Combined) -> bool:
    return c.on("swarm") or c.host.get("swarm_state") == "active"


def _live_restore(c: Combined) -> tuple[str, str] | None:
    if c.on("docker") and c.get("docker", "live_restore") and _swarm(c):
        return ("docker.live_restore is on with swarm mode: dockerd refuses swarm init (and a "
                "swarm node) while live-restore is set.",
                "Set docker.live_restore=false on swarm hosts.")  # fmt: skip
    return None


def _overlay(c: Combined) -> bool:
    """The swarm makes an overlay (the site step's ``overlay`` answer; always on one host)."""
    return c.on("swarm") and bool(c.get("swarm", "overlay", True))


def _encrypted(c: Combined) -> bool:
    return _overlay(c) and bool(c.get("swarm", "overlay_encrypted", True))


def _esp_kernel(c: Combined) -> tuple[str, str] | None:
    missing = [n for n in ("esp", "gcm") if c.host.get(f"kernel_{n}") == "no"]
    if not (_encrypted(c) and missing):
        return None
    return (
        f"the overlay is encrypted but this kernel lacks {' and '.join(missing)}: the "
        "network is created but carries nothing between hosts.",
        "Use swarm.overlay_encrypted=false on a trusted network (with endpoint_mode=dnsrr "
        "and publish_mode=host where IPVS is missing), or a kernel with esp4 and gcm.",
    )


def _vxlan_wan(c: Combined) -> tuple[str, str] | None:
    if not c.on("firewall"):
        return None
    wan = [str(s) for s in c.get("firewall", "wan_services", ()) or ()]
    open_wide = [s for s in wan if s.split()[0] in {"swarm", "4789/udp", "4789"}]
    if not open_wide:
        return None
    return (
        f"4789/udp (VXLAN) is reachable from wan ({', '.join(open_wide)}): anyone there "
        "can inject packets into the overlay networks (VXLAN has no authentication).",
        'Remove "swarm" from firewall.wan_services; offer it on the nodes\' zone only.',
    )


def _gwbridge_after_init(c: Combined) -> tuple[str, str] | None:
    if (
        c.on("swarm")
        and c.host.get("swarm_state") == "active"
        and not c.host.get("gwbridge_custom", False)
    ):
        return ("this host is already in a swarm with Docker's default docker_gwbridge: the "
                "bridge's options can only be set before swarm init.",
                "Leave the swarm (drain first), remove docker_gwbridge, then apply the swarm "
                "step: it creates the bridge, then inits.")  # fmt: skip
    return None


def _ip_forward(c: Combined) -> tuple[str, str] | None:
    if c.host.get("ip_forward") != "0":
        return None
    router = c.on("firewall") and bool(c.get("firewall", "forward", ()))
    docker = c.on("docker") or bool(c.host.get("dockerd_running"))
    if not (router or docker):
        return None
    return ("net.ipv4.ip_forward is 0 on a "
            f"{'router' if router else 'Docker'} host: containers cannot reach other networks "
            "and nothing is routed.",
            "Let Docker set it (do not start dockerd with --ip-forward=false) or set "
            "net.ipv4.ip_forward=1 in /etc/sysctl.d.")  # fmt: skip


def _hosts_twice(c: Combined) -> tuple[str, str] | None:
    in_json = bool(c.host.get("daemon_hosts")) or c.on("tls")
    if in_json and c.host.get("dockerd_cmdline_hosts"):
        return ('dockerd gets -H on its command line and "hosts" in daemon.json: it refuses to '
                "start (a directive given both as a flag and in the configuration file).",
                "Remove -H from dockerd's command line (DOCKER_OPTS, or the unit's ExecStart "
                'with an override) and list the sockets under "hosts" in daemon.json.')  # fmt: skip
    return None


def _userns_nfs(c: Combined) -> tuple[str, str] | None:
    remap = c.on("docker") and c.get("docker", "mode") == "userns-remap"
    if remap and (c.on("shares") or c.host.get("nfs_mounts")):
        return ("userns-remap with bind mounts of an NFS share: root in a container is a "
                "subordinate uid on the host, so the share's files show as nobody and writes "
                "are refused (root_squash does not map those uids).",
                "Run those containers with --userns=host, or mount the share with matching "
                "uids; or use docker.mode=rootful on a file server.")  # fmt: skip
    return None


def _networks(c: Combined) -> list[tuple[str, str]]:
    """(where, network) pairs the overlays must not overlap: host routes and LAN networks."""
    found = [("a host route", str(r)) for r in c.host.get("routes", ()) or ()]
    for step, name in (("shares", "networks"), ("proxy", "client_networks"),
                       ("firewall", "swarm_peers")):  # fmt: skip
        if c.on(step):
            found += [(f"{step}.{name}", str(n)) for n in c.get(step, name, ()) or ()]
    return found


def _overlap(c: Combined) -> tuple[str, str] | None:
    if not c.on("swarm"):
        return None
    names = ("overlay_subnet", "gwbridge_subnet") if _overlay(c) else ("gwbridge_subnet",)
    ours = [(f"swarm.{n}", c.get("swarm", n)) for n in names]
    for label, subnet in ours:
        if not subnet:
            continue
        net = ipaddress.ip_network(str(subnet), strict=False)
        for where, other in _networks(c):
            try:
                theirs = ipaddress.ip_network(other.split()[-1], strict=False)
            except ValueError:
                continue
            if where == "a host route" and theirs == net:
                continue  # the route Docker made for this very network (applied before)
            if theirs.version == net.version and net.overlaps(theirs) and theirs.prefixlen:
                return (f"{label} {net} overlaps {where} {theirs}: traffic for one would go "
                        "to the other.",
                        f"Choose another {label} (a private range nothing here uses).")  # fmt: skip
    return None


def _rootless_swarm(c: Combined) -> tuple[str, str] | None:
    if c.on("docker") and c.get("docker", "mode") == "rootless" and _swarm(c):
        return ("rootless Docker with swarm mode: the rootless engine cannot run swarm "
                "(overlay networks need the host's network stack).",
                "Use docker.mode=userns-remap (or rootful) on swarm hosts.")  # fmt: skip
    return None


def _rootless_tls(c: Combined) -> tuple[str, str] | None:
    """The TLS step serves the system engine's API (its daemon.json, its restart); rootless
    mode stops and disables that engine, and the restart would start it again."""
    if c.on("docker") and c.get("docker", "mode") == "rootless" and c.on("tls"):
        return ("rootless Docker with the Docker API over TLS: TLS is set up on the system "
                "engine, which rootless mode stops and disables (and restarting it for TLS "
                "would bring it back next to the rootless one).",
                "Turn tls off and reach the rootless engine over SSH "
                "(DOCKER_HOST=ssh://USER@HOST), or use docker.mode=userns-remap.")  # fmt: skip
    return None


def _tls_wan(c: Combined) -> tuple[str, str] | None:
    if not (c.on("tls") and c.on("firewall")):
        return None
    port = str(c.get("tls", "port", 2376))
    wan = [str(s).split()[0] for s in c.get("firewall", "wan_services", ()) or ()]
    if "docker-tls" in wan or f"{port}/tcp" in wan or port in wan:
        return (f"the Docker API's TLS port {port} is open to wan: anyone may try it (a stolen "
                "client certificate is root on this host).",
                "Offer docker-tls on the mgmt zone only (firewall.mgmt_services).")  # fmt: skip
    return None


RULES: tuple[Rule, ...] = (
    Rule("live-restore-swarm", "live-restore with swarm mode", _live_restore),
    Rule("esp-kernel", "an encrypted overlay without kernel support", _esp_kernel),
    Rule("vxlan-wan", "4789/udp reachable from wan", _vxlan_wan),
    Rule("gwbridge-after-init", "docker_gwbridge created after swarm init", _gwbridge_after_init),
    Rule("ip-forward-off", "ip_forward off on a Docker or router host", _ip_forward),
    Rule("hosts-twice", "hosts in daemon.json with -H on dockerd's command line", _hosts_twice),
    Rule("userns-nfs", "userns-remap with bind mounts of an NFS share", _userns_nfs),
    Rule("subnet-overlap", "overlay subnets overlapping host routes or LAN networks", _overlap),
    Rule("rootless-swarm", "rootless mode with swarm", _rootless_swarm),
    Rule("rootless-tls", "rootless mode with the Docker API over TLS", _rootless_tls),
    Rule("tls-wan", "the TLS port open to wan", _tls_wan),
)


def check_combination(combined: Combined, rules: Iterable[Rule] = RULES) -> list[Conflict]:
    """Every conflict the rules find, in rule order."""
    found = []
    for rule in rules:
        result = rule.test(combined)
        if result is not None:
            found.append(Conflict(rule.name, *result))
    return found
