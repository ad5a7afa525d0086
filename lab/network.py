"""The lab network: one bridge on the machine, one network namespace and veth pair per host.

The bridge ``hwlab0`` with the lab subnet's ``.1`` (and its connected route) is the only change
the lab makes to the machine's network. No forwarding, no NAT: hosts reach each other and the
machine over the bridge, nothing else.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from lab.paths import BRIDGE, LabNetwork
from wizard.errors import LabError

NETNS_DIR = Path("/run/netns")

# Fixed MAC addresses ("hw" = 68:77, locally administered). A bridge otherwise takes the
# lowest MAC of its ports and changes it as hosts come and go, and a reused host address
# would come with a new random MAC: neighbours that cached the old one (the machine, other
# hosts) would send into the void for seconds. With these, a cached entry stays right.
BRIDGE_MAC = "02:68:77:00:00:01"


def host_mac(number: int) -> str:
    return f"02:68:77:00:01:{number:02x}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(
            f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.returncode}",
        )
    return proc


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


def netns_names() -> set[str]:
    proc = ip("netns", "list", check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def bridge_ports() -> list[str]:
    proc = ip("-o", "link", "show", "master", BRIDGE, check=False)
    ports = []
    for line in proc.stdout.splitlines():
        # "7: hwlv10@if2: <...> ..."
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        ports.append(name)
    return ports


def ensure_bridge(net: LabNetwork) -> None:
    """Create ``hwlab0`` with the lab addresses unless it is there already."""
    if not link_exists(BRIDGE):
        ip("link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge")
    if f"link/ether {BRIDGE_MAC} " not in ip("-o", "link", "show", "dev", BRIDGE).stdout:
        ip("link", "set", "dev", BRIDGE, "address", BRIDGE_MAC)
    addrs = ip("-o", "addr", "show", "dev", BRIDGE).stdout
    if f" {net.bridge_address} " not in addrs:
        ip("addr", "add", net.bridge_address, "dev", BRIDGE)
    if f" {net.bridge_address6} " not in addrs:
        ip("addr", "add", net.bridge_address6, "dev", BRIDGE, "nodad")
    ip("link", "set", BRIDGE, "up")


def remove_bridge_if_unused() -> bool:
    """Delete the bridge when nothing is attached to it any more. True if it is gone."""
    if not link_exists(BRIDGE):
        return True
    if bridge_ports():
        return False
    ip("link", "del", BRIDGE, check=False)
    return not link_exists(BRIDGE)


def create_host_network(
    name: str, number: int, veth: str, net: LabNetwork, *, default_route: bool = True
) -> None:
    """Network namespace ``name`` with ``eth0`` (the inside end of ``veth``) on the bridge.

    The default route goes to the machine's end of the bridge (which forwards nothing);
    a topology host (``default_route=False``) gets its default route from the topology.
    """
    ip("netns", "add", name)
    ip(
        "link", "add", veth, "type", "veth",
        "peer", "name", "eth0", "address", host_mac(number), "netns", name,
    )  # fmt: skip
    ip("link", "set", veth, "master", BRIDGE, "up")
    batch = "\n".join(
        [
            "link set lo up",
            f"addr add {net.address(number)}/{net.subnet.prefixlen} dev eth0",
            f"addr add {net.address6(number)}/64 dev eth0 nodad",
            "link set eth0 up",
        ]
        + (
            [f"route add default via {net.gateway}", f"route add default via {net.gateway6}"]
            if default_route
            else []
        )
    )
    proc = subprocess.run(
        ["ip", "-n", name, "-batch", "-"],
        input=batch,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        raise LabError(f"Could not configure the network of {name}: {proc.stderr.strip()}")


def is_mount_point(path: Path) -> bool:
    """True if something is mounted on ``path`` (os.path.ismount misses same-fs bind mounts)."""
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4] == str(path) for line in fh)


def netns_dir_state() -> tuple[bool, bool]:
    """Whether /run/netns exists, and whether it is a mount point."""
    return NETNS_DIR.is_dir(), is_mount_point(NETNS_DIR)


def release_netns_dir(*, unmount: bool, remove: bool) -> None:
    """Undo what ``ip netns add`` did to an empty /run/netns (only what the lab caused)."""
    if not NETNS_DIR.is_dir() or any(NETNS_DIR.iterdir()):
        return  # someone else's namespaces live there now
    # iproute2 may have stacked more than one self bind mount; bounded.
    for _ in range(4):
        if not (unmount and is_mount_point(NETNS_DIR)):
            break
        subprocess.run(["umount", str(NETNS_DIR)], capture_output=True, check=False, timeout=30)
    if remove and not is_mount_point(NETNS_DIR):
        with contextlib.suppress(OSError):
            NETNS_DIR.rmdir()


def remove_host_network(name: str, veth: str) -> None:
    """Delete the host's veth pair and network namespace (each only if present)."""
    if veth and link_exists(veth):
        ip("link", "del", veth, check=False)
    if name in netns_names():
        ip("netns", "del", name, check=False)
