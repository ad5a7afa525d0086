"""The Docker engine step's answers: the mode and the hardened settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wizard.answers import check_fields, describe

Mode = Literal["userns-remap", "rootless", "rootful"]
REMAP_USER = "dockremap"


@dataclass(frozen=True)
class DockerEngineAnswers:
    mode: Mode = field(
        default="userns-remap",
        metadata=describe(
            "Engine mode",
            "userns-remap: root in containers is an unprivileged user on the host (recommended). "
            "rootless: the whole engine runs as one ordinary user. "
            "rootful: classic Docker, container root is host root.",
        ),
    )
    rootless_user: str = field(
        default="",
        metadata=describe(
            "Rootless user",
            "The existing Linux user who will own and run the rootless engine.",
            kind="user",
            show_if=("mode", "rootless"),
        ),
    )
    stop_system_engine: bool = field(
        default=False,
        metadata=describe(
            "Stop containers of the system engine",
            "Rootless mode stops and disables the system (root) Docker engine, as Docker's own "
            "guide says, so that only the rootless engine runs. If containers are running under "
            "the system engine, hostwiz refuses and lists how many, rather than silently "
            "stopping them: stop or move them first, or turn this on to let them stop with the "
            "engine (they come back if you roll back).",
            show_if=("mode", "rootless"),
        ),
    )
    icc: bool = field(
        default=False,
        metadata=describe(
            "Inter-container traffic on the default bridge",
            "Off: containers on Docker's default network (the docker0 bridge, where "
            "docker run puts them unless you name a network) cannot reach each other, so one "
            "broken-into container cannot attack its neighbours. Containers on networks you "
            "create (docker network create, Compose projects) still talk to each other.",
        ),
    )
    log_driver: Literal["json-file", "local", "journald", "syslog"] = field(
        default="json-file",
        metadata=describe(
            "Log driver",
            "Where container logs go. json-file: files on disk that docker logs reads "
            "(rotated with the two settings below). local: Docker's own compact files. "
            "journald or syslog: the host's log system (journalctl, /var/log).",
        ),
    )
    log_max_size: str = field(
        default="10m",
        metadata=describe("Log file size", "Rotate a container's log at this size.", kind="size"),
    )
    log_max_file: int = field(
        default=5, metadata=describe("Log files kept", "How many rotated log files to keep.")
    )
    userland_proxy: bool = field(
        default=False,
        metadata=describe(
            "Userland proxy",
            "On (Docker's default): a docker-proxy process per published port relays the "
            "connections. Off: the kernel (iptables) forwards them itself: faster, and one "
            "process fewer per port.",
        ),
    )
    no_new_privileges: bool = field(
        default=True,
        metadata=describe(
            "No new privileges",
            "Containers cannot gain privileges through setuid binaries such as sudo.",
        ),
    )
    live_restore: bool = field(
        default=True,
        metadata=describe(
            "Live restore",
            "Containers keep running while dockerd restarts or upgrades. Not possible in a swarm.",
        ),
    )
    nofile_limit: int = field(
        default=64000,
        metadata=describe(
            "Open files per container",
            "How many files (and sockets) each container process may have open at once "
            "(daemon.json's default-ulimits nofile); busy databases and web servers need "
            "many. 0 keeps Docker's default. Capped at what dockerd itself may grant.",
        ),
    )
    replace_invalid_config: bool = field(
        default=False,
        metadata=describe(
            "Replace an unreadable daemon.json",
            "If the host's daemon.json is not valid JSON, replace it (the old one is kept in the "
            "snapshot). Off: stop and explain instead.",
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "docker")  # answers made in code are checked like typed ones
