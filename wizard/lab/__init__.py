"""Practice hosts: stand-ins for fresh cloud VMs, made of namespaces on this machine.

``lab_up()`` makes hosts reachable over SSH on the lab bridge (``ssh -F <ssh_config> NAME``),
each with its own network, mounts (overlays over /etc, /var, /srv, /home, /root), hostname,
PID 1 and, by default, a running dockerd. ``lab_down()`` removes them without a trace.
Needs root. See :mod:`wizard.lab.hosts` for how a host is built and taken down.
"""

from wizard.lab.hosts import host_running, lab_down, lab_list, lab_up
from wizard.lab.image import import_test_image
from wizard.lab.model import LabHost, console
from wizard.lab.paths import LabPaths, lab_paths
from wizard.lab.requirements import check_requirements

__all__ = [
    "LabHost",
    "LabPaths",
    "check_requirements",
    "console",
    "host_running",
    "import_test_image",
    "lab_down",
    "lab_list",
    "lab_paths",
    "lab_up",
]
