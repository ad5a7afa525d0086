"""Where the lab keeps things.

Two places, on purpose:

* the machine-wide runtime dir :data:`RUN_ROOT` (``/run/hostwiz-lab``): one directory per
  running practice host with its record (``host.json``), its console log and the empty mount
  point of its disk. Address allocation and the shared bridge are decided from here, under
  one lock, because every lab on the machine shares the bridge and the subnet. It lives on
  ``/run`` because the hosts themselves do not survive a reboot either.
* the per-user data dir from :func:`lab_paths`: the lab's SSH key, and the ``ssh_config`` and
  ``known_hosts`` that make ``ssh -F <ssh_config> NAME`` work. A host belongs to the data dir
  that created it; ``lab ls`` and ``lab down`` only ever see their own hosts.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from wizard.errors import LabError
from wizard.practice_hosts import practice_dir

RUN_ROOT = Path("/run/hostwiz-lab")
BRIDGE = "hwlab0"
DEFAULT_SUBNET = "10.213.0.0/24"
SUBNET6_PREFIX = "fd00:213::"
FIRST_HOST_NUMBER = 10
LAST_HOST_NUMBER = 250


@dataclass(frozen=True)
class LabPaths:
    """Files in the lab's data dir."""

    root: Path
    key: Path
    public_key: Path
    ssh_config: Path
    known_hosts: Path
    lock: Path


def lab_paths() -> LabPaths:
    root = practice_dir()  # the core reads the ssh_config there (wizard.practice_hosts)
    return LabPaths(
        root=root,
        key=root / "id_ed25519",
        public_key=root / "id_ed25519.pub",
        ssh_config=root / "ssh_config",
        known_hosts=root / "known_hosts",
        lock=root / ".lock",
    )


@dataclass(frozen=True)
class LabNetwork:
    """The lab subnet: the bridge takes ``.1``, host number ``n`` gets ``.n``."""

    subnet: ipaddress.IPv4Network

    @property
    def bridge_address(self) -> str:
        return f"{self.subnet.network_address + 1}/{self.subnet.prefixlen}"

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def bridge_address6(self) -> str:
        return f"{SUBNET6_PREFIX}1/64"

    @property
    def gateway6(self) -> str:
        return f"{SUBNET6_PREFIX}1"

    def address(self, number: int) -> str:
        return str(self.subnet.network_address + number)

    def address6(self, number: int) -> str:
        return f"{SUBNET6_PREFIX}{number}"


def lab_network() -> LabNetwork:
    """The lab subnet: ``HOSTWIZ_LAB_SUBNET`` (an IPv4 /24) or 10.213.0.0/24."""
    text = os.environ.get("HOSTWIZ_LAB_SUBNET", DEFAULT_SUBNET)
    try:
        subnet = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise LabError(
            f"HOSTWIZ_LAB_SUBNET={text!r} is not an IPv4 network ({exc}).",
            "Use a private /24 such as 10.213.0.0/24, or unset it.",
        ) from exc
    if subnet.prefixlen != 24 or not subnet.is_private:
        raise LabError(
            f"HOSTWIZ_LAB_SUBNET={text} must be a private /24.",
            "Use a private /24 such as 10.213.0.0/24, or unset it.",
        )
    return LabNetwork(subnet)
