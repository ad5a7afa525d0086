"""What the admin chooses for the web proxy: where squid runs, whose web traffic it takes,
what it blocks, and how it caches and logs.

Everything that needs no host is checked when the answers are built (a preset, ``--set`` or a
form field): ports, networks, domain names, the log folder. What depends on the host (the
client interfaces exist, squid is installed, the placement is supported) is checked by the
planner.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer

Placement = Literal["router", "proxy-host", "container"]
PLACEMENTS: tuple[str, ...] = ("router", "proxy-host", "container")
SUPPORTED_PLACEMENTS = ("router", "container")
"""What the one-host step does; "proxy-host" is a site's (wizard.steps.proxy.site)."""
Restart = Literal["unless-stopped", "always", "on-failure"]

FORWARD_PORT = 3128
"""squid's ordinary (forward-proxy) port, on 127.0.0.1 only: squid wants one, its error pages
fetch their icons through it, and the health check asks squid there. Never intercepted."""

DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?)+")
LOG_DIR = re.compile(r"/[A-Za-z0-9._/-]{1,200}")
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+/-]{0,63}")


def _on(label: str, help: str, **extra: Any) -> dict[str, object]:
    """Metadata for a question that only matters while the proxy is on."""
    result: dict[str, object] = describe(label, help, show_if=("enabled", True), **extra)
    return result


@dataclass(frozen=True)
class ProxyAnswers:
    enabled: bool = field(
        default=False,
        metadata=describe(
            "Web proxy (squid)",
            "Send the clients' web traffic (HTTP) through squid, which logs it, caches it "
            "and refuses blocked domains. Off: nothing changes.",
        ),
    )
    placement: Placement = field(
        default="router",
        metadata=_on(
            "Where squid runs",
            "router: squid runs on this host, the router the clients' traffic passes "
            "(a Debian package). container: squid in a container on this host (host "
            "network, so it sees the redirected traffic). proxy-host: squid on another host "
            "of the site, the router sending the web traffic there by policy routing (a site "
            "file's [steps.proxy], with a host of role router and one of role proxy).",
        ),
    )
    container_image: str = field(
        default="ubuntu/squid:latest",
        metadata=describe(
            "squid image",
            "The image of squid's container (placement container). It must be on this host "
            "already (docker pull or docker load it): hostwiz pulls nothing. It must start "
            "squid on /etc/squid/squid.conf (ubuntu/squid does).",
            show_if=("placement", "container"),
        ),
    )
    container_timezone: str = field(
        default="Etc/UTC",
        metadata=describe(
            "Container time zone (TZ)",
            "The time zone of squid's log times in the container, e.g. Europe/Copenhagen.",
            show_if=("placement", "container"),
        ),
    )
    container_restart: Restart = field(
        default="unless-stopped",
        metadata=describe(
            "Restart policy",
            "When Docker starts squid's container again: unless-stopped (after a crash and "
            "at boot, unless you stopped it), always, on-failure.",
            show_if=("placement", "container"),
        ),
    )
    container_cache_dir: str = field(
        default="/srv/docker/squid/cache",
        metadata=describe(
            "Cache folder on the host",
            "The host folder mounted as the container's cache (/var/spool/squid). The "
            "configuration (/etc/squid/squid.conf) and the log folder are mounted from the "
            "host at the same paths.",
            show_if=("placement", "container"),
        ),
    )
    client_interfaces: tuple[str, ...] = field(
        default=(),
        metadata=_on(
            "Client interfaces",
            "The interfaces the clients' traffic arrives on (e.g. lan). Only their web "
            "traffic goes to squid; everything else keeps its normal path.",
            item="interface",
        ),
    )
    client_networks: tuple[str, ...] = field(
        default=(),
        metadata=_on(
            "Client networks",
            "The networks whose web traffic squid takes and serves (e.g. 10.0.2.0/24, "
            "fd00:2::/64). Empty: the networks of the client interfaces.",
            item="network",
        ),
    )
    web_ports: tuple[str, ...] = field(
        default=("80",),
        metadata=_on(
            "Web ports",
            "Destination TCP ports whose traffic goes through squid (plain HTTP). HTTPS "
            "(443) is not intercepted: reading it would need a CA installed on every client.",
            item="word",
        ),
    )
    intercept_port: int = field(
        default=3129,
        metadata=_on(
            "Intercept port",
            "The port squid takes the redirected traffic on. Nothing may connect to it "
            "directly (hostwiz drops such connections: they would stall squid).",
            kind="port",
        ),
    )
    blocked_domains: tuple[str, ...] = field(
        default=(),
        metadata=_on(
            "Blocked domains",
            "Domains squid refuses with its deny page, subdomains included "
            "(e.g. example.com, ads.example.net).",
            item="word",
        ),
    )
    cache_size_mb: int = field(
        default=256,
        metadata=_on(
            "Disk cache (MB)",
            "How much disk squid may use for cached pages, in MB. 0: cache in memory only.",
        ),
    )
    log_dir: str = field(
        default="/var/log/squid",
        metadata=_on(
            "Log folder",
            "Where squid writes access.log (every request: time, client, URL, result) and "
            "cache.log. An absolute path; created (owned by squid's user) if missing.",
        ),
    )
    dns_nameservers: tuple[str, ...] = field(
        default=(),
        metadata=_on(
            "DNS servers for squid",
            "Addresses of the name servers squid asks (e.g. 10.0.2.1). Empty: those of "
            "/etc/resolv.conf.",
            item="network",
        ),
    )
    dns_timeout: int = field(
        default=5,
        metadata=_on(
            "DNS timeout (seconds)",
            "How long squid waits for a name server. Keep it short: with the default (30 s) "
            "an unreachable name server stalls every intercepted request for about 35 s.",
        ),
    )
    shutdown_lifetime: int = field(
        default=2,
        metadata=_on(
            "Shutdown wait (seconds)",
            "How long squid lets open requests finish when it stops or restarts (its "
            "default, 30 s, makes every restart slow).",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "proxy")
        for port in self.web_ports:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise InvalidAnswer(
                    f"proxy.web_ports: {port!r} is not a port number.",
                    "Give TCP port numbers from 1 to 65535, e.g. 80 or 8080.",
                )
        if str(self.intercept_port) in self.web_ports or self.intercept_port == FORWARD_PORT:
            raise InvalidAnswer(
                f"proxy.intercept_port: {self.intercept_port} is also a web port or squid's "
                f"local port {FORWARD_PORT}.",
                "Pick a port of its own for squid's intercepted traffic, e.g. 3129.",
            )
        for domain in self.blocked_domains:
            if not DOMAIN.fullmatch(domain.lstrip(".")):
                raise InvalidAnswer(
                    f"proxy.blocked_domains: {domain!r} is not a domain name.",
                    "Give domain names such as example.com (subdomains are blocked too).",
                )
        for address in self.dns_nameservers:
            if "/" in address:
                raise InvalidAnswer(
                    f"proxy.dns_nameservers: {address!r} is a network, not an address.",
                    "Give name server addresses such as 10.0.2.1.",
                )
        for name in ("log_dir", "container_cache_dir"):
            value = getattr(self, name)
            if not LOG_DIR.fullmatch(value) or "/../" in f"{value}/":
                raise InvalidAnswer(
                    f"proxy.{name}: {value!r} is not an absolute folder path.",
                    "Give an absolute path of letters, digits, . _ - and /, e.g. /var/log/squid.",
                )
        if not IMAGE.fullmatch(self.container_image):
            raise InvalidAnswer(
                f"proxy.container_image: {self.container_image!r} is not an image name.",
                "Give an image as docker names it, e.g. ubuntu/squid:latest.",
            )
        if not TIMEZONE.fullmatch(self.container_timezone) or ".." in self.container_timezone:
            raise InvalidAnswer(
                f"proxy.container_timezone: {self.container_timezone!r} is not a time zone.",
                "Give a zone name such as Europe/Copenhagen or Etc/UTC.",
            )
        if self.dns_timeout < 1 or self.shutdown_lifetime > 300 or self.dns_timeout > 120:
            raise InvalidAnswer(
                "proxy.dns_timeout must be 1 to 120 seconds, shutdown_lifetime 0 to 300.",
                "Short is good: dns_timeout = 5, shutdown_lifetime = 2.",
            )

    def networks(self, version: int) -> tuple[str, ...]:
        """The listed client networks of one address family."""
        nets = (ipaddress.ip_network(n, strict=False) for n in self.client_networks)
        return tuple(str(n) for n in nets if n.version == version)

    def blocklist(self) -> tuple[str, ...]:
        """The blocked domains as squid's dstdomain file wants them: ``.example.com`` (the
        domain and its subdomains), lower case, no duplicates, and no subdomain of a domain
        already listed (squid warns about those and keeps only one)."""
        names = sorted({d.strip(".").lower() for d in self.blocked_domains}, key=len)
        kept: list[str] = []
        for name in names:
            if not any(name == k or name.endswith(f".{k}") for k in kept):
                kept.append(name)
        return tuple(f".{name}" for name in sorted(kept))
