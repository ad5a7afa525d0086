"""A squid container image for practice hosts, built from this machine's squid (no registry is
reachable): the squid binary and the helpers it starts, the libraries they load, its data
files, busybox for the entrypoint, and the ``proxy`` user. Imported into a practice host's own
dockerd with ``docker import``, never into this machine's."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

from lab.model import LabHost, console
from lab.requirements import BUSYBOX, check_busybox
from wizard.errors import LabError
from wizard.transport.base import shell_quote

TAG = "hostwiz/squid:test"
SQUID = Path("/usr/sbin/squid")
HELPERS = ("log_file_daemon", "unlinkd", "pinger")
"""What squid starts for the configuration hostwiz writes (daemon: logging, a ufs cache, the
ICMP pinger)."""
DATA = (
    "/usr/share/squid/mime.conf",
    "/usr/share/squid/icons",
    "/usr/share/squid/errors",  # a link to the langpack's folder
    "/usr/share/squid-langpack/templates",
    "/usr/share/squid-langpack/en",
    "/etc/squid/errorpage.css",
    "/usr/share/zoneinfo/Etc/UTC",
    "/usr/share/zoneinfo/Europe/Copenhagen",
)
ENTRYPOINT = """#!/bin/sh
# squid in the foreground, as ubuntu/squid's entrypoint: the cache's folders first.
/usr/sbin/squid -z -N -f /etc/squid/squid.conf >/dev/null 2>&1
exec /usr/sbin/squid -N -f /etc/squid/squid.conf
"""
FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nproxy:x:13:13:proxy:/bin:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nproxy:x:13:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "usr/local/bin/squid-entrypoint": ENTRYPOINT,
}


def _libraries(binaries: list[Path]) -> list[Path]:
    """Every shared library the binaries load (ldd), and the loader."""
    found: set[Path] = set()
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                              check=False, timeout=30)  # fmt: skip
        for line in proc.stdout.splitlines():
            words = line.split()
            path = words[2] if "=>" in words and len(words) > 2 else words[0] if words else ""
            if path.startswith("/"):
                found.add(Path(path))
    return sorted(found)


def _directory(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
    tar.addfile(info)


def _text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def squid_rootfs() -> bytes:
    """The image's root file system as a tar."""
    check_busybox()
    if not SQUID.exists():
        raise LabError("squid is not installed on this machine.", "apt-get install squid")
    helpers = [Path("/usr/lib/squid") / name for name in HELPERS]
    binaries = [SQUID, *(h for h in helpers if h.exists())]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "etc", "run", "tmp", "usr/local/bin", "var/log/squid",
                     "var/spool/squid", "var/cache/squid"):  # fmt: skip
            _directory(tar, name, 0o1777 if name == "tmp" else 0o755)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in ("sh", "cat", "ls"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(link)
        for path in [*binaries, *_libraries(binaries)]:
            tar.add(str(path.resolve()), arcname=str(path).lstrip("/"))  # the link's name
        for data in DATA:
            tar.add(data, arcname=data.lstrip("/"))
        for name, text in FILES.items():
            _text(tar, name, text, 0o755 if name.startswith("usr/local/bin") else 0o644)
    return buf.getvalue()


def import_squid_image(host: LabHost, tag: str = TAG) -> str:
    """Load the squid image into the host's dockerd; return its id."""
    script = (
        "unset DOCKER_HOST DOCKER_CONTEXT DOCKER_CONFIG DOCKER_TLS_VERIFY DOCKER_CERT_PATH; "
        "docker import --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "
        "--change 'CMD [\"/usr/local/bin/squid-entrypoint\"]' "
        f"- {shell_quote(tag)}"
    )
    result = console(host).run(script, stdin=squid_rootfs(), timeout=300)
    if not result.ok:
        raise LabError(
            f"Could not import the squid image into {host.name}'s Docker: "
            f"{result.err.strip() or result.exit_code}",
            "Is dockerd running there? It is not with `lab up --no-docker`.",
        )
    return result.out.strip()
