"""What the admin chooses for Docker swarm mode on one host (issue #16, seed 000): the custom
docker_gwbridge made before ``docker swarm init``, the manager's addresses, one overlay network
and an optional demo stack.

What needs no host is checked here (networks, addresses, names, the MTU's range); what depends
on the host (its interfaces and routes, the kernel's IPVS and ESP, the image) is checked by the
planner.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")


def _on(label: str, help: str, **extra: Any) -> dict[str, object]:
    result: dict[str, object] = describe(label, help, show_if=("enabled", True), **extra)
    return result


@dataclass(frozen=True)
class SwarmAnswers:
    enabled: bool = field(
        default=False,
        metadata=describe(
            "Docker swarm (manager)",
            "Make this host a swarm manager: a custom docker_gwbridge first, then docker swarm "
            "init, an overlay network and optionally a demo stack. Off: nothing changes.",
        ),
    )
    advertise_address: str = field(
        default="",
        metadata=_on(
            "Advertise address",
            "The address (or interface name) the other nodes reach this manager on "
            "(--advertise-addr). Must be one of the host's own addresses. Empty: the host's "
            "only address besides loopback (refused when it has several).",
        ),
    )
    data_path_address: str = field(
        default="",
        metadata=_on(
            "Data path address",
            "The address (or interface) overlay traffic (VXLAN, 4789/udp) uses "
            "(--data-path-addr), to keep it off the management network. Empty: the advertise "
            "address.",
        ),
    )
    gwbridge_subnet: str = field(
        default="10.81.10.0/24",
        metadata=_on(
            "docker_gwbridge subnet",
            "The network of docker_gwbridge, the bridge that connects overlay containers to "
            "this host. Created before swarm init: afterwards Docker has made its own.",
            kind="cidr",
        ),
    )
    gwbridge_icc: bool = field(
        default=False,
        metadata=_on(
            "Containers talk over docker_gwbridge",
            "Off: containers cannot reach each other through docker_gwbridge (they still do "
            "over their overlay networks).",
        ),
    )
    gwbridge_masquerade: bool = field(
        default=False,
        metadata=_on(
            "Masquerade docker_gwbridge",
            "On: overlay containers reach outside networks with the host's address. Off "
            "(the seed's choice): they reach only what is routed to their subnet.",
        ),
    )
    gwbridge_host_binding: str = field(
        default="",
        metadata=_on(
            "Address published ports bind to",
            "The host address ports published in host mode listen on (host_binding_ipv4). "
            "Empty: every address (0.0.0.0).",
        ),
    )
    overlay_name: str = field(
        default="hostwiz-overlay",
        metadata=_on("Overlay network name", "The overlay network hostwiz creates."),
    )
    overlay_subnet: str = field(
        default="10.81.30.0/24",
        metadata=_on(
            "Overlay subnet",
            "Must not overlap the host's routes or Docker's other networks.",
            kind="cidr",
        ),
    )
    overlay_gateway: str = field(
        default="",
        metadata=_on("Overlay gateway", "An address in the overlay subnet. Empty: Docker's."),
    )
    overlay_mtu: int = field(
        default=1450,
        metadata=_on(
            "Overlay MTU",
            "VXLAN adds 50 bytes: at most the data path interface's MTU minus 50 (1450 on a "
            "1500 network), or large packets are lost.",
        ),
    )
    overlay_encrypted: bool = field(
        default=True,
        metadata=_on(
            "Encrypt the overlay",
            "IPsec (ESP, AES-GCM) between nodes. Needs the kernel's ESP and GCM, and ESP "
            "(IP protocol 50) let through between the nodes. Without kernel support the "
            "network is created but carries nothing: hostwiz refuses it then.",
        ),
    )
    endpoint_mode: Literal["vip", "dnsrr"] = field(
        default="vip",
        metadata=_on(
            "Service endpoint mode",
            "vip: one virtual address per service, load balanced by the kernel's IPVS. dnsrr: "
            "the service name resolves to every task (works without IPVS).",
        ),
    )
    publish_mode: Literal["ingress", "host"] = field(
        default="ingress",
        metadata=_on(
            "Publish mode",
            "ingress: the routing mesh, every node answers on the port (needs IPVS). host: the "
            "port is published on the nodes that run a task (one task per node).",
        ),
    )
    stack: bool = field(
        default=False,
        metadata=_on("Demo stack", "Deploy a small stack on the overlay, to see it work."),
    )
    stack_name: str = field(default="demo", metadata=_on("Stack name", "docker stack name."))
    stack_image: str = field(
        default="",
        metadata=_on(
            "Stack image",
            "An image that already exists on the host, e.g. nginx:alpine (hostwiz pulls "
            "nothing; dockerd tries a pull before each task and uses its own copy when that "
            "fails).",
        ),
    )
    stack_command: str = field(
        default="",
        metadata=_on("Stack command", "The command of the service. Empty: the image's own."),
    )
    stack_replicas: int = field(
        default=2,
        metadata=_on("Replicas", "Tasks of the service (publish mode ingress only)."),
    )
    stack_port: int = field(
        default=8080,
        metadata=_on("Published port", "The port the service answers on.", kind="port"),
    )
    stack_target_port: int = field(
        default=80,
        metadata=_on("Container port", "The port the service listens on inside.", kind="port"),
    )

    def __post_init__(self) -> None:
        check_fields(self, "swarm")
        for label, value in (("advertise_address", self.advertise_address),
                             ("data_path_address", self.data_path_address),
                             ("gwbridge_host_binding", self.gwbridge_host_binding)):  # fmt: skip
            if value and not _address_or_interface(value):
                raise InvalidAnswer(
                    f"swarm.{label}: {value!r} is neither an address nor an interface name.",
                    "Give one of the host's addresses (10.214.3.11) or interfaces (eth1).",
                )
        if self.gwbridge_host_binding and not _is_address(self.gwbridge_host_binding):
            raise InvalidAnswer(
                f"swarm.gwbridge_host_binding: {self.gwbridge_host_binding!r} is no IPv4 address.",
                "Give one of the host's IPv4 addresses, or leave it empty.",
            )
        if ipaddress.ip_network(self.overlay_subnet, strict=False).overlaps(
            ipaddress.ip_network(self.gwbridge_subnet, strict=False)
        ):
            raise InvalidAnswer(
                "swarm.overlay_subnet overlaps swarm.gwbridge_subnet.",
                "Give each its own network, e.g. 10.81.10.0/24 and 10.81.30.0/24.",
            )
        if self.overlay_gateway and not (
            _is_address(self.overlay_gateway)
            and ipaddress.ip_address(self.overlay_gateway) in self.overlay_network
        ):
            raise InvalidAnswer(
                f"swarm.overlay_gateway: {self.overlay_gateway!r} is not in {self.overlay_subnet}.",
                "Give an address of the overlay subnet, or leave it empty.",
            )
        if not 576 <= self.overlay_mtu <= 9000:
            raise InvalidAnswer(
                f"swarm.overlay_mtu: {self.overlay_mtu} is out of range.",
                "Give 576 to 9000; 1450 suits a 1500-byte network.",
            )
        for label, value, pattern in (("overlay_name", self.overlay_name, NAME),
                                      ("stack_name", self.stack_name, NAME)):  # fmt: skip
            if not pattern.fullmatch(value):
                raise InvalidAnswer(
                    f"swarm.{label}: {value!r} is not a valid name.",
                    "Use letters, digits, _ . and -, starting with a letter or digit.",
                )
        if self.stack_image and not IMAGE.fullmatch(self.stack_image):
            raise InvalidAnswer(
                f"swarm.stack_image: {self.stack_image!r} is not an image reference.",
                "Give a name such as nginx:alpine or registry.example:5000/web:1.",
            )
        if self.stack and not self.stack_image:
            raise InvalidAnswer(
                "swarm.stack is on but swarm.stack_image is empty.",
                "Name an image the host already has (docker image ls), e.g. nginx:alpine.",
            )
        if self.endpoint_mode == "dnsrr" and self.publish_mode == "ingress":
            raise InvalidAnswer(
                "swarm.endpoint_mode dnsrr cannot publish through the ingress routing mesh.",
                "Use --set swarm.publish_mode=host with dnsrr (Docker refuses the other).",
            )
        if not 1 <= self.stack_replicas <= 100:
            raise InvalidAnswer("swarm.stack_replicas must be 1 to 100.", "For a demo, 2.")

    @property
    def overlay_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.overlay_subnet, strict=False)

    @property
    def gwbridge_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.gwbridge_subnet, strict=False)


def _is_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _address_or_interface(text: str) -> bool:
    return _is_address(text) or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}", text) is not None
