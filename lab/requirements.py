"""What this machine needs before it can run practice hosts, and what to install if not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from wizard.errors import LabError

SEARCH_PATH = os.pathsep.join(
    ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)

# program (or absolute path) -> Debian package that provides it
BASE_NEEDS: dict[str, str] = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "mount": "mount",
    "/usr/bin/tini": "tini",
    "sshd": "openssh-server",
    "/etc/init.d/ssh": "openssh-server",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "useradd": "passwd",
    "chpasswd": "passwd",
    "start-stop-daemon": "dpkg",
    "sudo": "sudo",
}
DOCKER_NEEDS: dict[str, str] = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "/etc/init.d/docker": "docker.io",
}
BUSYBOX = Path("/bin/busybox")


def _present(program: str) -> bool:
    if program.startswith("/"):
        return os.access(program, os.X_OK)
    return shutil.which(program, path=SEARCH_PATH) is not None


def missing(*, docker: bool = True) -> dict[str, str]:
    needs = dict(BASE_NEEDS)
    if docker:
        needs.update(DOCKER_NEEDS)
    return {prog: pkg for prog, pkg in needs.items() if not _present(prog)}


def check_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "Practice hosts can only be made by root: each one is a set of network, mount "
            "and PID namespaces on this machine.",
            "Run the command as root, for example: sudo hostwiz lab up",
        )


def check_requirements(*, docker: bool = True) -> None:
    """Raise :class:`LabError` naming the Debian packages to install if anything is missing."""
    check_root()
    gone = missing(docker=docker)
    if gone:
        packages = sorted(set(gone.values()))
        programs = ", ".join(f"{prog} (package {pkg})" for prog, pkg in sorted(gone.items()))
        raise LabError(
            f"Practice hosts need programs this machine does not have: {programs}.",
            f"Install them with: apt-get install {' '.join(packages)}",
        )


def check_busybox() -> None:
    if not os.access(BUSYBOX, os.X_OK):
        raise LabError(
            f"The test image is built from {BUSYBOX}, which is missing.",
            "Install it with: apt-get install busybox-static",
        )
