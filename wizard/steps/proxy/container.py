"""squid in a container on the router (placement ``container``, seed 000's ``docker run``).

The container shares the host's network (``--network host``): the REDIRECT to the intercept
port then reaches squid as it would reach the package, and squid finds each connection's
original destination in the host's connection tracking (behind Docker's own port mapping it
could not: that is a second NAT in another namespace). The container has its own /dev/shm
(squid needs one per host), the volumes of seed 000 (configuration, log folder, cache), TZ
and a restart policy (which is also what starts it at boot).

One script, ``/etc/hostwiz/proxy/squid-container``, removes and creates the container: the
apply runs it, and so does the undo after the snapshot put the earlier script back (the
earlier container comes back, or none).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from wizard.facts import Fact, sections
from wizard.steps.proxy import squid
from wizard.steps.proxy.answers import ProxyAnswers
from wizard.transport.base import shell_quote

NAME = "hostwiz-squid"
LABEL = "org.hostwiz.proxy"
"""The container's label: a digest of how it was created (an older one is created again)."""
SCRIPT = "/etc/hostwiz/proxy/squid-container"
PROXY_UID = 13
"""The ``proxy`` user of Debian and Ubuntu (and of their squid images): the owner of the log
and cache folders, which squid writes as that user."""


@dataclass(frozen=True)
class Container:
    """Docker and squid's container as the host has them."""

    docker: bool = False
    rootless: bool = False
    image_id: str = ""
    """The named image's id ("": not on this host)."""
    exists: bool = False
    running: bool = False
    label: str = ""
    container_image_id: str = ""
    cache_dir_missing_from: str = ""
    """The topmost folder of the cache's path that does not exist ("": the cache folder
    exists): what removing the folders hostwiz created removes."""


def parse_container(code: int, out: str) -> Container:
    parts = sections(out, ("docker", "security", "image", "container", "cache"))
    try:
        data = json.loads(parts.get("container", "").strip() or "null")
    except json.JSONDecodeError:
        data = None
    info = data if isinstance(data, dict) else {}
    labels = (info.get("Config") or {}).get("Labels") or {}
    return Container(
        docker=bool(parts.get("docker", "").strip()),
        rootless="rootless" in parts.get("security", ""),
        image_id=parts.get("image", "").strip(),
        exists=bool(info),
        running=bool((info.get("State") or {}).get("Running")),
        label=str(labels.get(LABEL, "")),
        container_image_id=str(info.get("Image", "")),
        cache_dir_missing_from=parts.get("cache", "").strip(),
    )


def container_fact(answers: ProxyAnswers) -> Fact[Container]:
    image, cache = shell_quote(answers.container_image), shell_quote(answers.container_cache_dir)
    command = f"""echo @@docker; docker version --format '{{{{.Server.Version}}}}' 2>/dev/null
echo @@security; docker info --format '{{{{json .SecurityOptions}}}}' 2>/dev/null
echo @@image; docker image inspect --format '{{{{.Id}}}}' {image} 2>/dev/null
echo @@container; docker inspect --type container --format '{{{{json .}}}}' {NAME} 2>/dev/null
echo @@cache; d={cache}; top=; while [ ! -d "$d" ]; do top=$d; d=$(dirname "$d"); done
echo "$top"
true"""
    return Fact(f"proxy_container:{answers.container_image}:{answers.container_cache_dir}",
                command, parse_container)  # fmt: skip


def _run_arguments(answers: ProxyAnswers, blocklist: bool) -> list[str]:
    log = answers.log_dir.rstrip("/")
    volumes = [f"{squid.CONF}:{squid.CONF}:ro"]
    if blocklist:
        volumes.append(f"{squid.BLOCKLIST}:{squid.BLOCKLIST}:ro")
    volumes += [f"{log}:{log}", f"{answers.container_cache_dir.rstrip('/')}:{squid.SPOOL}"]
    return [
        "--network host",  # squid must see the host's connection tracking (ORIGINAL_DST)
        "--userns host",  # host network: not possible under userns-remap otherwise
        f"--restart {answers.container_restart}",
        f"-e TZ={answers.container_timezone}",
        *(f"-v {shell_quote(volume)}" for volume in volumes),
    ]


def digest(answers: ProxyAnswers, blocklist: bool) -> str:
    """What the container's label says when it was created from these answers."""
    text = "\n".join([answers.container_image, *_run_arguments(answers, blocklist)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def script_text(answers: ProxyAnswers, blocklist: bool) -> str:
    arguments = " \\\n  ".join(
        [
            f"--name {NAME}",
            *_run_arguments(answers, blocklist),
            f"--label {LABEL}={digest(answers, blocklist)}",
            shell_quote(answers.container_image),
        ]
    )
    return (
        "#!/bin/sh\n"
        "# Written by hostwiz (web proxy): creates squid's container again (hostwiz runs it\n"
        "# when applying, and its undo runs the earlier one). Change it with hostwiz.\n"
        "set -eu\n"
        f"docker rm -f {NAME} >/dev/null 2>&1 || true\n"
        f"docker run -d \\\n  {arguments} >/dev/null\n"
    )


def parse_check(answers: ProxyAnswers, blocklist: bool) -> str:
    """``squid -k parse`` of the written configuration, inside the image (its squid), with
    the ERROR lines counted (it exits 0 on some)."""
    volumes = f"-v {squid.CONF}:{squid.CONF}:ro"
    if blocklist:
        volumes += f" -v {squid.BLOCKLIST}:{squid.BLOCKLIST}:ro"
    run = (
        f"docker run --rm --network none --entrypoint squid {volumes} "
        f"{shell_quote(answers.container_image)} -k parse -f {squid.CONF}"
    )
    return squid.PARSE_SCRIPT.replace(f"squid -k parse -f {squid.CONF}", run, 1)


def undo_script() -> str:
    """Remove the container, then create the earlier one if there was one (its script is back
    from the snapshot by then)."""
    return f"docker rm -f {NAME} >/dev/null 2>&1; if [ -x {SCRIPT} ]; then {SCRIPT}; fi; true"
