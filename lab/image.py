"""A tiny container image for practice hosts, since nothing may be pulled from a registry."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time

from lab.model import LabHost, console
from lab.requirements import BUSYBOX, check_busybox
from wizard.errors import LabError
from wizard.transport.base import shell_quote

DEFAULT_TAG = "hostwiz/busybox:latest"


def _applets() -> list[str]:
    proc = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=False, timeout=30
    )
    names = [n for n in proc.stdout.split() if n and "/" not in n and n != "busybox"]
    return names or ["sh", "echo", "cat", "ls", "sleep", "true"]


def busybox_rootfs() -> bytes:
    """A root file system tar: /bin/busybox (static) with a symlink per applet, and /tmp."""
    check_busybox()
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755)):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.mtime = now
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for name in _applets():
            link = tarfile.TarInfo(f"bin/{name}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            link.mtime = now
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        group = b"root:x:0:\nnogroup:x:65534:\n"
        for path, data in (("etc/passwd", passwd), ("etc/group", group)):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def import_test_image(host: LabHost, tag: str = DEFAULT_TAG) -> str:
    """Load a busybox image into the host's dockerd with ``docker import``; return its id.

    Default containers work with it (``docker run --rm hostwiz/busybox:latest echo hi``).
    """
    # The console inherits our environment; make sure the client talks to the host's dockerd.
    script = (
        "unset DOCKER_HOST DOCKER_CONTEXT DOCKER_CONFIG DOCKER_TLS_VERIFY DOCKER_CERT_PATH; "
        f"docker import --change 'CMD [\"/bin/sh\"]' - {shell_quote(tag)}"
    )
    result = console(host).run(script, stdin=busybox_rootfs(), timeout=120)
    if not result.ok:
        raise LabError(
            f"Could not import the test image into {host.name}'s Docker: "
            f"{result.err.strip() or result.exit_code}",
            "Is dockerd running there? It is not with `lab up --no-docker`.",
        )
    return result.out.strip()
