"""Practice hosts: stand-ins for fresh cloud VMs, made of namespaces on this machine.

``lab_up()`` makes hosts reachable over SSH on the lab bridge (``ssh -F <ssh_config> NAME``),
each with its own network, mounts (overlays over /etc, /var, /srv, /home, /root), hostname,
PID 1 and, by default, a running dockerd. ``lab_down()`` removes them without a trace.
Needs root. See :mod:`lab.hosts` for how a host is built and taken down.

``lab_up_topology("router", "t1")`` makes several hosts wired by lab networks, described in
a small TOML file (:mod:`lab.topology`; shipped ones in ``lab/topologies``),
and returns a :class:`Topology` with the hosts by role. ``lab_down(["t1"])`` removes them and
their networks.
"""

from lab.hosts import (
    host_running,
    lab_down,
    lab_list,
    lab_reboot,
    lab_topologies,
    lab_topology,
    lab_up,
    lab_up_topology,
)
from lab.image import import_test_image
from lab.model import LabHost, LabInterface, console
from lab.paths import LabPaths, lab_paths
from lab.requirements import check_requirements
from lab.topology import (
    Topology,
    TopologySpec,
    load_topology,
    parse_topology,
    shipped_topologies,
)

__all__ = [
    "LabHost",
    "LabInterface",
    "LabPaths",
    "Topology",
    "TopologySpec",
    "check_requirements",
    "console",
    "host_running",
    "import_test_image",
    "lab_down",
    "lab_list",
    "lab_paths",
    "lab_reboot",
    "lab_topologies",
    "lab_topology",
    "lab_up",
    "lab_up_topology",
    "load_topology",
    "parse_topology",
    "shipped_topologies",
]
