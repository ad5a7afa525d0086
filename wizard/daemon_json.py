"""Knowledge of dockerd's /etc/docker/daemon.json: which keys exist, their types, and conflicts.

dockerd refuses to start on an unknown key, a wrong type, or a setting given both as a flag on
its command line and in the file. Checking those here, before anything goes live, turns a dead
daemon into a sentence the admin can act on.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Keys dockerd 20.10+ accepts, with the JSON type each must have.
KNOWN_KEYS: dict[str, type | tuple[type, ...]] = {
    "allow-nondistributable-artifacts": list,
    "api-cors-header": str,
    "authorization-plugins": list,
    "bip": str,
    "bridge": str,
    "builder": dict,
    "cgroup-parent": str,
    "cluster-advertise": str,
    "cluster-store": str,
    "cluster-store-opts": dict,
    "containerd": str,
    "containerd-namespace": str,
    "containerd-plugins-namespace": str,
    "cpu-rt-period": int,
    "cpu-rt-runtime": int,
    "data-root": str,
    "debug": bool,
    "default-address-pools": list,
    "default-cgroupns-mode": str,
    "default-gateway": str,
    "default-gateway-v6": str,
    "default-ipc-mode": str,
    "default-runtime": str,
    "default-shm-size": str,
    "default-ulimits": dict,
    "dns": list,
    "dns-opts": list,
    "dns-search": list,
    "exec-opts": list,
    "exec-root": str,
    "experimental": bool,
    "features": dict,
    "fixed-cidr": str,
    "fixed-cidr-v6": str,
    "group": str,
    "host-gateway-ip": str,
    "hosts": list,
    "icc": bool,
    "init": bool,
    "init-path": str,
    "insecure-registries": list,
    "ip": str,
    "ip-forward": bool,
    "ip-masq": bool,
    "ip6tables": bool,
    "iptables": bool,
    "ipv6": bool,
    "labels": list,
    "live-restore": bool,
    "log-driver": str,
    "log-level": str,
    "log-opts": dict,
    "max-concurrent-downloads": int,
    "max-concurrent-uploads": int,
    "max-download-attempts": int,
    "metrics-addr": str,
    "mtu": int,
    "no-new-privileges": bool,
    "node-generic-resources": list,
    "oom-score-adjust": int,
    "pidfile": str,
    "raw-logs": bool,
    "registry-mirrors": list,
    "runtimes": dict,
    "seccomp-profile": str,
    "selinux-enabled": bool,
    "shutdown-timeout": int,
    "storage-driver": str,
    "storage-opts": list,
    "swarm-default-advertise-addr": str,
    "tls": bool,
    "tlscacert": str,
    "tlscert": str,
    "tlskey": str,
    "tlsverify": bool,
    "userland-proxy": bool,
    "userland-proxy-path": str,
    "userns-remap": str,
}

# Command-line flags that set the same thing as a daemon.json key (besides --KEY itself).
FLAG_ALIASES: dict[str, tuple[str, ...]] = {
    "hosts": ("-H", "--host"),
    "debug": ("-D",),
    "log-level": ("-l",),
    "pidfile": ("-p",),
    "group": ("-G",),
    "data-root": ("-g", "--graph"),
    "labels": ("--label",),
    "insecure-registries": ("--insecure-registry",),
    "registry-mirrors": ("--registry-mirror",),
    "storage-opts": ("--storage-opt",),
    "log-opts": ("--log-opt",),
    "exec-opts": ("--exec-opt",),
    "dns-opts": ("--dns-opt",),
    "default-ulimits": ("--default-ulimit",),
    "authorization-plugins": ("--authorization-plugin",),
    "runtimes": ("--add-runtime",),
    "storage-driver": ("-s",),
}


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str


def parse(text: str) -> tuple[dict[str, Any] | None, str]:
    """Parse daemon.json text: ``(mapping, "")`` or ``(None, reason)``. Empty text is ``{}``."""
    if not text.strip():
        return {}, ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"line {error.lineno}, column {error.colno}: {error.msg}"
    if not isinstance(value, dict):
        return None, "the top level must be a JSON object ({ ... })"
    return value, ""


def check_types(config: Mapping[str, Any]) -> list[ConfigProblem]:
    problems = []
    for key, value in config.items():
        expected = KNOWN_KEYS.get(key)
        if expected is None:
            problems.append(ConfigProblem(key, f"{key!r} is not a setting dockerd knows"))
            continue
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            names = expected.__name__ if isinstance(expected, type) else "value"
            wanted = {"bool": "true/false", "str": "a string", "int": "a number"}.get(names, names)
            problems.append(ConfigProblem(key, f"{key!r} must be {wanted}, not {value!r}"))
    log_opts = config.get("log-opts")
    if isinstance(log_opts, dict):
        for opt, value in log_opts.items():
            if not isinstance(value, str):
                problems.append(
                    ConfigProblem("log-opts", f'log-opts "{opt}" must be a string, e.g. "{value}"')
                )
    return problems


def command_line_flags(args: Iterable[str]) -> set[str]:
    """The option names (``--host``, ``-H``...) present on a dockerd command line."""
    flags = set()
    for arg in args:
        if arg.startswith("-"):
            flags.add(arg.split("=", 1)[0])
    return flags


def flag_conflicts(config: Mapping[str, Any], flags: set[str]) -> list[ConfigProblem]:
    problems = []
    for key in config:
        names = {f"--{key}", *FLAG_ALIASES.get(key, ())}
        clash = sorted(names & flags)
        if clash:
            problems.append(
                ConfigProblem(
                    key,
                    f"{key!r} is set in daemon.json and as {clash[0]} on dockerd's command line; "
                    "dockerd refuses to start when both are given",
                )
            )
    return problems


def split_command_line(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def dumps(config: Mapping[str, Any]) -> bytes:
    """The file as hostwiz writes it: sorted keys, two-space indent, final newline."""
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
