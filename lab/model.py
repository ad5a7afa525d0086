"""A practice host as the rest of hostwiz sees it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wizard.errors import LabError
from wizard.transport.local import LocalTransport

MGMT_NETWORK = "mgmt"
MGMT_INTERFACE = "eth0"


@dataclass(frozen=True)
class LabInterface:
    """A network interface of a practice host, as named inside the host."""

    name: str
    network: str
    address: str
    prefixlen: int
    address6: str
    prefixlen6: int = 64

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabInterface:
        return cls(
            name=str(data["name"]),
            network=str(data["network"]),
            address=str(data["address"]),
            prefixlen=int(data["prefixlen"]),
            address6=str(data["address6"]),
            prefixlen6=int(data.get("prefixlen6", 64)),
        )


@dataclass(frozen=True)
class LabHost:
    """One practice host: a stand-in for a fresh cloud VM, living in namespaces on this machine.

    ``init_pid`` is the host's PID 1 (systemd, or tini where ``init`` is ``sysv`` and the
    services run through their init scripts) as seen from the machine; killing it ends every
    process of the host. A reboot gives the host a new PID 1 (the record is updated).
    ``init_start`` is its start time (clock ticks after boot) so a recycled pid is never
    mistaken for the host. ``launcher_pid`` is the process that holds the host's disk and
    boots it (launch.sh: it exits when the host is off for good). ``ssh_socket``: systemd
    listens for sshd (``ssh.socket``, as on Ubuntu). ``owner`` is the lab data dir that made
    the host: only that lab lists it and takes it down. ``creator_pid`` is the process that
    called ``lab_up``: while it runs (a test session, say), ``lab down`` without
    names leaves the host to it.
    """

    name: str
    address: str
    address6: str
    init_pid: int
    state_dir: Path
    admin_password: str
    number: int
    veth: str
    docker: bool
    init_start: int
    launcher_pid: int
    launcher_start: int
    owner: str
    created: float
    creator_pid: int = 0
    creator_start: int = 0
    topology: str = ""
    role: str = ""
    interfaces: tuple[LabInterface, ...] = ()
    gateway: str = ""
    init: str = "sysv"
    ssh_socket: bool = False

    @property
    def mgmt_interface(self) -> LabInterface:
        """``eth0`` on the lab bridge: how this machine reaches the host (SSH)."""
        return LabInterface(MGMT_INTERFACE, MGMT_NETWORK, self.address, 24, self.address6, 64)

    @property
    def all_interfaces(self) -> tuple[LabInterface, ...]:
        return (self.mgmt_interface, *self.interfaces)

    def interface(self, network: str) -> LabInterface:
        """The host's interface on ``network`` (``mgmt`` for eth0)."""
        for iface in self.all_interfaces:
            if iface.network == network:
                return iface
        raise LabError(f"{self.name} has no interface on network {network!r}.")

    @property
    def ssh_target(self) -> str:
        """What to give ``ssh -F <ssh_config>``: the host's name."""
        return self.name

    def console(self) -> LocalTransport:
        """A root shell's view of the host, like a VM's console (no SSH involved)."""
        return console(self)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabHost:
        try:
            return cls(
                name=str(data["name"]),
                address=str(data["address"]),
                address6=str(data["address6"]),
                init_pid=int(data["init_pid"]),
                state_dir=Path(data["state_dir"]),
                admin_password=str(data["admin_password"]),
                number=int(data["number"]),
                veth=str(data["veth"]),
                docker=bool(data["docker"]),
                init_start=int(data["init_start"]),
                launcher_pid=int(data["launcher_pid"]),
                launcher_start=int(data["launcher_start"]),
                owner=str(data["owner"]),
                created=float(data["created"]),
                creator_pid=int(data.get("creator_pid", 0)),
                creator_start=int(data.get("creator_start", 0)),
                topology=str(data.get("topology", "")),
                role=str(data.get("role", "")),
                interfaces=tuple(LabInterface.from_json(i) for i in data.get("interfaces", ())),
                gateway=str(data.get("gateway", "")),
                init=str(data.get("init", "sysv")),
                ssh_socket=bool(data.get("ssh_socket", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LabError(f"A practice host record is damaged ({exc}).") from exc

    @classmethod
    def load(cls, path: Path) -> LabHost:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LabError(f"Cannot read practice host record {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise LabError(f"Practice host record {path} is not a JSON object.")
        return cls.from_json(data)


CAPABILITIES_KEPT_OUT = "-sys_time,-wake_alarm,-sys_module"
"""What no process of a practice host may do, its console included: set the machine's clock or
load kernel modules (namespaces do not stop either; see lab/setup.sh, which drops the same)."""


def enter_command(host: LabHost) -> tuple[str, ...]:
    """The command prefix that runs a command inside ``host``: nsenter into all its
    namespaces, without the capabilities a practice host must not have.

    nsenter alone would keep this machine's full bounding set, so a command typed at the
    console (``date -s``, ``modprobe``) could reach the machine itself."""
    return (
        "nsenter", "-t", str(host.init_pid), "-a",
        "setpriv", "--bounding-set", CAPABILITIES_KEPT_OUT, "--",
    )  # fmt: skip


def console(host: LabHost) -> LocalTransport:
    """A root shell's view of ``host`` (inside all its namespaces), like a VM console."""
    return LocalTransport(enter=enter_command(host), label=host.name)
