"""The audit's view of one host: the gathered facts, typed and combined where several facts
answer one question (is the Docker API on TCP, is there a firewall). Pure; rules read this."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from wizard.audit.facts import (
    CERTIFICATES,
    CONTAINERS,
    FIREWALL_FILES,
    LISTENERS,
    NFT_TABLES,
    NOW,
    PATHS,
    ROOTLESS_ENGINES,
    SOCKET_GROUP,
    SYSTEM_ENABLED,
    Container,
    HostCertificate,
    Listener,
    PathInfo,
    RootlessEngine,
    SocketGroup,
    containers_waiting_for,
)
from wizard.daemon_json import parse as parse_daemon_json
from wizard.facts import SERVICE_MANAGER, Fact, Facts
from wizard.host.docker import (
    DAEMON_JSON,
    DAEMON_JSON_PATH,
    DOCKER_INFO,
    DOCKERD,
    DockerdProcess,
    DockerInfo,
)
from wizard.steps.firewall import BOOT_REGISTERED
from wizard.steps.firewall.host import (
    FORWARDING,
    IPTABLES_V4,
    IPTABLES_V6,
    TOOLS,
    Forwarding,
    Tools,
)
from wizard.steps.ssh.facts import EFFECTIVE as SSHD_EFFECTIVE

AUDIT_FACTS: tuple[Fact[Any], ...] = (
    DAEMON_JSON,
    DOCKERD,
    DOCKER_INFO,
    CONTAINERS,
    LISTENERS,
    PATHS,
    CERTIFICATES,
    SOCKET_GROUP,
    NOW,
    SSHD_EFFECTIVE,
    IPTABLES_V4,
    IPTABLES_V6,
    NFT_TABLES,
    TOOLS,
    BOOT_REGISTERED,
    FIREWALL_FILES,
    FORWARDING,
    SERVICE_MANAGER,
    ROOTLESS_ENGINES,
    SYSTEM_ENABLED,
)
"""Everything an audit reads, in one round trip (:func:`wizard.facts.gather`)."""


def audit_facts(waiting_for: Iterable[str] = ()) -> tuple[Fact[Any], ...]:
    """:data:`AUDIT_FACTS`, whose container list is read once the containers named in
    ``waiting_for`` run again (bounded, see :func:`containers_waiting_for`)."""
    containers = containers_waiting_for(waiting_for)
    return tuple(containers if fact is CONTAINERS else fact for fact in AUDIT_FACTS)


IPTABLES_NAMES = {"filter", "nat", "mangle", "raw", "security"}
"""Tables iptables-nft creates: seeing them in ``nft list tables`` is not a firewall."""


@dataclass(frozen=True)
class TcpEndpoint:
    """Where dockerd serves its API over TCP (configured, or seen listening)."""

    address: str
    port: int

    @property
    def loopback(self) -> bool:
        return self.address.startswith("127.") or self.address in {"localhost", "::1"}

    def describe(self) -> str:
        return f"tcp://{self.address or '0.0.0.0'}:{self.port}"


def _tcp_endpoint(host: str) -> TcpEndpoint | None:
    if not host.startswith("tcp://"):
        return None
    rest = host.removeprefix("tcp://").split("/", 1)[0]
    address, sep, port = rest.rpartition(":")
    if not sep:
        address, port = rest, ""
    return TcpEndpoint(address.strip("[]"), int(port) if port.isdigit() else 2375)


def _flag_values(args: tuple[str, ...], names: tuple[str, ...]) -> list[str]:
    """Values of ``-H X``, ``--host X``, ``--host=X`` on a command line."""
    values = []
    for index, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if name in names:
            if sep:
                values.append(value)
            elif index + 1 < len(args):
                values.append(args[index + 1])
    return values


def _flag_bool(args: tuple[str, ...], name: str) -> bool | None:
    for arg in args:
        key, sep, value = arg.partition("=")
        if key == name:
            return value.lower() != "false" if sep else True
    return None


@dataclass(frozen=True)
class Firewall:
    """What the live rules say (IPv4 ``iptables-save``, native nftables tables)."""

    input_policy: str = ""
    forward_policy: str = ""
    forward_policy_v6: str = ""
    input_rules: tuple[str, ...] = ()
    forward_rules: tuple[str, ...] = ()
    docker_user_rules: tuple[str, ...] = ()
    native_nft_tables: tuple[str, ...] = ()
    ufw: bool = False
    firewalld: bool = False
    hostwiz_chains: bool = False

    @property
    def filters_input(self) -> bool:
        blocking = any(
            " -j DROP" in r or " -j REJECT" in r or " -j HOSTWIZ-" in r or " -j ufw" in r
            for r in self.input_rules
        )
        return (
            self.input_policy == "DROP"
            or blocking
            or bool(self.native_nft_tables)
            or self.ufw
            or self.firewalld
        )

    @property
    def filters_containers(self) -> bool:
        """Something filters traffic to published container ports (DOCKER-USER, hostwiz)."""
        return bool(self.docker_user_rules) or "inet hostwiz" in self.native_nft_tables


def _filter_table(text: str) -> tuple[dict[str, str], list[str]]:
    policies: dict[str, str] = {}
    rules: list[str] = []
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "filter" and line.startswith(":"):
            name, _, rest = line[1:].partition(" ")
            policies[name] = rest.split(" ", 1)[0]
        elif table == "filter" and line.startswith("-A "):
            rules.append(line.strip())
    return policies, rules


def firewall_from(v4: str, v6: str, nft_tables: str, tools: Tools) -> Firewall:
    policies, rules = _filter_table(v4)
    policies_v6, _ = _filter_table(v6)
    native = []
    for line in nft_tables.splitlines():
        words = line.split()
        iptables_table = len(words) == 3 and words[1] != "inet" and words[2] in IPTABLES_NAMES
        if len(words) == 3 and words[0] == "table" and not iptables_table:
            native.append(f"{words[1]} {words[2]}")
    return Firewall(
        input_policy=policies.get("INPUT", ""),
        forward_policy=policies.get("FORWARD", ""),
        forward_policy_v6=policies_v6.get("FORWARD", ""),
        input_rules=tuple(r for r in rules if r.startswith("-A INPUT ")),
        forward_rules=tuple(r for r in rules if r.startswith("-A FORWARD ")),
        docker_user_rules=tuple(
            r for r in rules if r.startswith("-A DOCKER-USER ") and r != "-A DOCKER-USER -j RETURN"
        ),
        native_nft_tables=tuple(native),
        ufw=tools.has("ufw"),
        firewalld=tools.has("firewalld"),
        hostwiz_chains=any(name.startswith("HOSTWIZ-") for name in policies)
        or "inet hostwiz" in native,
    )


@dataclass(frozen=True)
class HostView:
    """Everything the rules look at, typed."""

    daemon_config: dict[str, Any] | None
    """daemon.json as a mapping ({} when absent); None when it cannot be parsed."""
    daemon_error: str
    dockerd: DockerdProcess
    info: DockerInfo
    containers: tuple[Container, ...] | None
    """None when Docker could not be asked (not running, not installed)."""
    listeners: tuple[Listener, ...]
    paths: dict[str, PathInfo]
    certificates: tuple[HostCertificate, ...]
    socket_group: SocketGroup
    now: datetime | None
    sshd: dict[str, str]
    firewall: Firewall
    forwarding: Forwarding
    boot_registered: str
    firewall_files: tuple[str, ...]
    service_manager: str = "none"
    tcp_endpoints: tuple[TcpEndpoint, ...] = field(default=())
    tls: bool = False
    tlsverify: bool = False
    rootless_engines: tuple[RootlessEngine, ...] = ()
    """The rootless engines answering on /run/user/UID/docker.sock."""
    system_enabled: tuple[str, ...] = ()
    """What starts the system engine at boot (read only when a rootless engine answers)."""
    engine: RootlessEngine | None = None
    """None for the host's view (the system engine's settings and containers); the rootless
    engine whose settings and containers this view holds otherwise (:meth:`engine_views`)."""

    def config(self, key: str, default: Any = None) -> Any:
        return (self.daemon_config or {}).get(key, default)

    @property
    def userns(self) -> bool:
        if self.info.reachable:
            return self.info.userns
        return bool(self.config("userns-remap"))

    @property
    def rootless(self) -> bool:
        return any(opt.startswith("name=rootless") for opt in self.info.security_options)

    @property
    def engine_name(self) -> str:
        """ "" for the system engine's view, else ``admin's rootless engine``."""
        return self.engine.name if self.engine else ""

    @property
    def config_file(self) -> str:
        """The daemon.json of this view's engine ("" when it is not known)."""
        return self.engine.config_path if self.engine else DAEMON_JSON_PATH

    @property
    def system_off(self) -> bool:
        """The system engine neither runs nor answers, and a rootless engine does: rootless
        mode (which stops the system engine), not Docker being down."""
        return bool(self.rootless_engines) and not self.info.reachable and not self.dockerd.running

    @property
    def system_off_on_purpose(self) -> bool:
        """:attr:`system_off`, and nothing starts it at boot: what the docker step's rootless
        mode leaves. Its settings are then not judged (it does not run them)."""
        return self.system_off and not self.system_enabled

    def engine_view(self, engine: RootlessEngine) -> HostView:
        """The view of one rootless engine: its settings, ``docker info`` and containers in
        place of the system engine's (the host's firewall, files and sshd stay)."""
        text = engine.config_text
        config, error = (None, "") if text is None else parse_daemon_json(text)
        return replace(
            self,
            daemon_config=config,
            daemon_error=error,
            info=engine.info,
            containers=engine.containers,
            rootless_engines=(),
            engine=engine,
        )

    def engine_views(self) -> tuple[HostView, ...]:
        """This view (the system engine's), then each rootless engine's."""
        return (self, *(self.engine_view(engine) for engine in self.rootless_engines))

    @property
    def all_containers(self) -> tuple[Container, ...] | None:
        """The running containers of every engine that answers; None when none could be
        asked."""
        lists = [view.containers for view in self.engine_views() if view.containers is not None]
        if not lists:
            return None
        return tuple(c for found in lists for c in found)

    @property
    def running(self) -> frozenset[str] | None:
        """The running containers (as findings name them, :attr:`Container.label`) of every
        engine; None when no engine could be asked."""
        found = self.all_containers
        return None if found is None else frozenset(c.label for c in found)

    @property
    def restarted_with_dockerd(self) -> tuple[str, ...]:
        """The running containers Docker starts again by itself after dockerd restarts."""
        return tuple(c.name for c in self.containers or () if c.restarted_with_dockerd)


def _endpoints(
    view_config: dict[str, Any], dockerd: DockerdProcess, listeners: tuple[Listener, ...]
) -> tuple[TcpEndpoint, ...]:
    hosts = view_config.get("hosts")
    configured = [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []
    configured += _flag_values(dockerd.effective_args, ("-H", "--host"))
    found: dict[tuple[str, int], TcpEndpoint] = {}
    for host in configured:
        endpoint = _tcp_endpoint(host)
        if endpoint is not None:
            found[(endpoint.address, endpoint.port)] = endpoint
    ports = {endpoint.port for endpoint in found.values()}
    for listener in listeners:
        if listener.process == "dockerd" and listener.port not in ports:
            found[(listener.address, listener.port)] = TcpEndpoint(listener.address, listener.port)
    return tuple(found.values())


def host_view(facts: Facts) -> HostView:
    """The typed view of an audit's facts."""
    state = facts[DAEMON_JSON]
    config, error = parse_daemon_json(state.text if state.exists else "")
    dockerd = facts[DOCKERD]
    listeners = facts[LISTENERS]
    args = dockerd.effective_args
    settings = config or {}
    tlsverify = bool(settings.get("tlsverify")) or bool(_flag_bool(args, "--tlsverify"))
    tls = tlsverify or bool(settings.get("tls")) or bool(_flag_bool(args, "--tls"))
    return HostView(
        daemon_config=config,
        daemon_error=error,
        dockerd=dockerd,
        info=facts[DOCKER_INFO],
        containers=facts[CONTAINERS],
        listeners=listeners,
        paths={info.path: info for info in facts[PATHS]},
        certificates=facts[CERTIFICATES],
        socket_group=facts[SOCKET_GROUP],
        now=facts[NOW],
        sshd=facts[SSHD_EFFECTIVE],
        firewall=firewall_from(
            facts[IPTABLES_V4], facts[IPTABLES_V6], facts[NFT_TABLES], facts[TOOLS]
        ),
        forwarding=facts[FORWARDING],
        boot_registered=facts[BOOT_REGISTERED],
        firewall_files=tuple(facts[FIREWALL_FILES].split()),
        service_manager=facts[SERVICE_MANAGER],
        tcp_endpoints=_endpoints(settings, dockerd, listeners),
        tls=tls,
        tlsverify=tlsverify,
        rootless_engines=facts[ROOTLESS_ENGINES],
        system_enabled=facts[SYSTEM_ENABLED],
    )
