"""A tiny container image for practice hosts, since nothing may be pulled from a registry."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from collections.abc import Sequence

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


def add_directory(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    """A folder in an image's root file system tar."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
    tar.addfile(info)


def add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    """A file with ``text`` in an image's root file system tar."""
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def add_busybox(tar: tarfile.TarFile, applets: list[str]) -> None:
    """/bin/busybox (static, from this machine) and a link to it in /bin per applet."""
    tar.add(str(BUSYBOX), arcname="bin/busybox")
    for name in applets:
        link = tarfile.TarInfo(f"bin/{name}")
        link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
        link.mtime = int(time.time())
        tar.addfile(link)


def busybox_rootfs() -> bytes:
    """A root file system tar: /bin/busybox (static) with a symlink per applet, and /tmp."""
    check_busybox()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755)):
            add_directory(tar, directory, mode)
        add_busybox(tar, _applets())
        passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        add_text(tar, "etc/passwd", passwd)
        add_text(tar, "etc/group", "root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def docker_import(
    host: LabHost, rootfs: bytes, tag: str, changes: Sequence[str], *, what: str, timeout: float
) -> str:
    """Load a root file system tar into the host's own dockerd with ``docker import``; return
    the image's id. ``changes`` are Dockerfile instructions for the image (``CMD [...]``);
    ``what`` names the image in the error ("the test image")."""
    # The console inherits our environment; make sure the client talks to the host's dockerd.
    options = "".join(f"--change {shell_quote(change)} " for change in changes)
    script = (
        "unset DOCKER_HOST DOCKER_CONTEXT DOCKER_CONFIG DOCKER_TLS_VERIFY DOCKER_CERT_PATH; "
        f"docker import {options}- {shell_quote(tag)}"
    )
    result = console(host).run(script, stdin=rootfs, timeout=timeout)
    if not result.ok:
        raise LabError(
            f"Could not import {what} into {host.name}'s Docker: "
            f"{result.err.strip() or result.exit_code}",
            "Is dockerd running there? It is not with `lab up --no-docker`.",
        )
    return result.out.strip()


def import_test_image(host: LabHost, tag: str = DEFAULT_TAG) -> str:
    """Load a busybox image into the host's dockerd with ``docker import``; return its id.

    Default containers work with it (``docker run --rm hostwiz/busybox:latest echo hi``).
    """
    return docker_import(
        host, busybox_rootfs(), tag, ['CMD ["/bin/sh"]'], what="the test image", timeout=120
    )
