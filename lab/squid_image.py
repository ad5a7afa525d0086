"""A squid container image for practice hosts, built from this machine's squid (no registry is
reachable): the squid binary and the helpers it starts, the libraries they load, its data
files, busybox for the entrypoint, and the ``proxy`` user. Imported into a practice host's own
dockerd with ``docker import``, never into this machine's."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from lab.image import add_busybox, add_directory, add_text, docker_import
from lab.model import LabHost
from lab.requirements import check_busybox
from wizard.errors import LabError

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
            add_directory(tar, name, 0o1777 if name == "tmp" else 0o755)
        add_busybox(tar, ["sh", "cat", "ls"])
        for path in [*binaries, *_libraries(binaries)]:
            tar.add(str(path.resolve()), arcname=str(path).lstrip("/"))  # the link's name
        for data in DATA:
            tar.add(data, arcname=data.lstrip("/"))
        for name, text in FILES.items():
            add_text(tar, name, text, 0o755 if name.startswith("usr/local/bin") else 0o644)
    return buf.getvalue()


def import_squid_image(host: LabHost, tag: str = TAG) -> str:
    """Load the squid image into the host's dockerd; return its id."""
    changes = [
        "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["/usr/local/bin/squid-entrypoint"]',
    ]
    return docker_import(host, squid_rootfs(), tag, changes, what="the squid image", timeout=300)
