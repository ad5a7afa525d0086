"""Bringing practice hosts up and down.

A host is started in three phases:

1. *reserve* (under the machine lock, milliseconds): pick a free name and host number, write
   the record, create the network namespace and veth pair on the bridge;
2. *boot*: ``launch.sh`` (which stays, holding the host's disk) and ``setup.sh`` (the host's
   PID 1) build the namespaces and mounts; on the first boot ``provision.sh`` does what
   cloud-init would (host keys, users, which services start); then PID 1 becomes systemd or,
   for ``init="sysv"`` hosts, tini starting sshd and dockerd through their init scripts;
3. *ready*: hostwiz waits until the boot is over, sshd answers and dockerd runs, and puts the
   host's keys into the lab's ``known_hosts``.

``lab reboot`` kills PID 1 (a power cut: the kernel ends every process of the host's PID
namespace); launch.sh resets the host's network namespace and boots it again from the same
disk. ``lab down`` ends launch.sh and PID 1, removes the host's cgroups, veth, network
namespace and record, and the bridge when no host is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab import network, procs, sshfiles, switch
from lab.inotify import inotify_hint
from lab.locking import machine_lock
from lab.model import LabHost, LabInterface, enter_command
from lab.paths import (
    FIRST_HOST_NUMBER,
    LAST_HOST_NUMBER,
    RUN_ROOT,
    LabNetwork,
    LabPaths,
    lab_network,
    lab_paths,
)
from lab.requirements import SEARCH_PATH, check_requirements, check_root
from lab.topology import Topology, TopologySpec, load_topology, parse_topology
from wizard.errors import LabError

SCRIPTS = Path(__file__).resolve().parent
TINI = "/usr/bin/tini"
SYSTEMD = os.path.realpath("/lib/systemd/systemd")
INIT_KINDS = ("systemd", "sysv")
DEFAULT_INIT = "systemd"
BOOT_TIMEOUT = 60.0
READY_TIMEOUT = 120.0
MAX_HOSTS_PER_CALL = 50
PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,23}")  # fullmatch only

# Environment for everything started inside a host: nothing of the caller's (virtualenvs,
# proxies, locale oddities) should leak into the practice host's daemons.
HOST_ENV = {"PATH": SEARCH_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}

# Launchers started by this process, so lab_down in the same process can reap them.
_launchers: dict[str, subprocess.Popen[bytes]] = {}


# --- records -------------------------------------------------------------------------------


def _record_path(name: str) -> Path:
    return RUN_ROOT / name / "host.json"


def _save(host: LabHost, *, ready: bool) -> None:
    data = host.to_json() | {"ready": ready}
    path = _record_path(host.name)
    tmp = path.with_name("host.json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def _records() -> list[tuple[LabHost, bool]]:
    """Every host on the machine with a readable record, and whether it finished booting."""
    found: list[tuple[LabHost, bool]] = []
    if not RUN_ROOT.is_dir():
        return found
    for path in sorted(RUN_ROOT.glob("*/host.json")):
        try:
            data = json.loads(path.read_text())
            found.append((LabHost.from_json(data), bool(data.get("ready"))))
        except (OSError, ValueError, LabError):
            continue
    return found


def _own_records(paths: LabPaths) -> dict[str, tuple[LabHost, bool]]:
    owner = str(paths.root)
    return {h.name: (h, ready) for h, ready in _records() if h.owner == owner}


def lab_list() -> list[LabHost]:
    """This lab's practice hosts (those made with this data dir), in creation order."""
    hosts = [_follow_reboot(h) for h, ready in _own_records(lab_paths()).values() if ready]
    return sorted(hosts, key=lambda h: (h.created, h.name))


def _follow_reboot(host: LabHost) -> LabHost:
    """``host`` with its current PID 1 recorded, after a reboot from inside (``systemctl
    reboot``, ``reboot``): the launcher booted it again without hostwiz."""
    if host_running(host) or not procs.is_same_process(host.launcher_pid, host.launcher_start):
        return host
    wanted = SYSTEMD if host.init == "systemd" else TINI
    for pid in _boot_inits(host.launcher_pid):
        started = procs.start_time(pid)
        if procs.executable(pid) == wanted and started is not None:
            host = replace(host, init_pid=pid, init_start=started)
            _save(host, ready=True)
            return host
    return host


def host_running(host: LabHost) -> bool:
    """True while the host's PID 1 is alive (it is the recorded process, not a reused pid)."""
    return procs.is_same_process(host.init_pid, host.init_start)


# --- lab up --------------------------------------------------------------------------------


def lab_up(
    count: int = 1,
    prefix: str = "hw",
    *,
    docker: bool = True,
    init: str = DEFAULT_INIT,
    ssh_socket: bool = False,
) -> list[LabHost]:
    """Create ``count`` practice hosts named ``prefix1``, ``prefix2``… (skipping used names).

    Each has SSH (root by the lab key, ``admin`` by key or password) and, unless
    ``docker=False``, a running dockerd. They outlive this call; end them with
    :func:`lab_down`. On failure every host this call started is removed again.

    ``init`` is ``systemd`` (systemd boots as the host's PID 1, as on the VMs users have) or
    ``sysv`` (services run through their init scripts). ``ssh_socket`` (systemd only) makes
    systemd listen for sshd through ``ssh.socket``, as Ubuntu does.

    The hosts share this machine's kernel: only ``net.*`` sysctls are per host, so the rest
    of /proc/sys is read-only inside (a hardening step or systemd cannot change the machine's
    kernel settings).
    """
    _check_init(init, ssh_socket)
    check_requirements(docker=docker)
    if not PREFIX_RE.fullmatch(prefix):
        raise LabError(
            f"{prefix!r} cannot start a host name.",
            "Use a lower-case letter followed by up to 23 letters, digits or dashes.",
        )
    if not 1 <= count <= MAX_HOSTS_PER_CALL:
        raise LabError(f"Cannot make {count} hosts at once (1 to {MAX_HOSTS_PER_CALL}).")
    paths = lab_paths()
    pubkey = sshfiles.ensure_key(paths)
    net = lab_network()
    reserved: list[LabHost] = []
    try:
        _reserve(count, prefix, docker, paths, net, reserved, init=init, ssh_socket=ssh_socket)
        return _start(reserved, paths, pubkey)
    except BaseException:
        with contextlib.suppress(Exception):
            _down([_reload(h) for h in reserved], paths)
        raise


def _check_init(init: str, ssh_socket: bool) -> None:
    if init not in INIT_KINDS:
        raise LabError(
            f"{init!r} is not a kind of init for practice hosts.",
            f"Use one of: {', '.join(INIT_KINDS)}.",
        )
    if ssh_socket and init != "systemd":
        raise LabError(
            "ssh.socket needs systemd: an init-script host has no socket activation.",
            "Use --init systemd with --ssh-socket, or leave out --ssh-socket.",
        )


def _start(reserved: list[LabHost], paths: LabPaths, pubkey: str) -> list[LabHost]:
    """Boot and provision reserved hosts; record them as ready once sshd answers."""
    for host in reserved:
        _write_firstboot(host, pubkey)
    launched = [_launch(host) for host in reserved]  # they all boot side by side
    booted = [
        _await_init(host, host.state_dir / "console.log", _launchers[host.name].poll)
        for host in launched
    ]
    with ThreadPoolExecutor(max_workers=len(booted)) as pool:
        host_keys = list(pool.map(_await_ready, booted))
    for host, keys in zip(booted, host_keys, strict=True):
        sshfiles.add_host(paths, host, keys)
        _wait_for_ssh(host)
        _save(host, ready=True)
    return booted


def _reload(host: LabHost) -> LabHost:
    try:
        return LabHost.load(_record_path(host.name))
    except LabError:
        return host


def _reserve(
    count: int,
    prefix: str,
    docker: bool,
    paths: LabPaths,
    net: LabNetwork,
    reserved: list[LabHost],
    *,
    init: str,
    ssh_socket: bool,
) -> None:
    """Pick names and numbers and build each host's network, under the machine lock."""
    with machine_lock():
        RUN_ROOT.mkdir(mode=0o755, exist_ok=True)
        records = _records()
        taken_names = {p.name for p in RUN_ROOT.iterdir() if p.is_dir()} | network.netns_names()
        taken_numbers = {h.number for h, _ in records}
        network.ensure_bridge(net)
        netns_before = network.netns_dir_state()
        suffix = 1
        number = FIRST_HOST_NUMBER
        for _ in range(count):
            while f"{prefix}{suffix}" in taken_names:
                suffix += 1
            number = _free_number(number, taken_numbers)
            name = f"{prefix}{suffix}"
            taken_names.add(name)
            taken_numbers.add(number)
            host = _new_host(name, number, docker, paths, net, init=init, ssh_socket=ssh_socket)
            _save(host, ready=False)
            reserved.append(host)
            network.create_host_network(name, number, host.veth, net)
            _note_netns_dir(netns_before)


def _new_host(
    name: str, number: int, docker: bool, paths: LabPaths, net: LabNetwork, **topology: Any
) -> LabHost:
    """The record of a host about to be made, with its state folder and "disk" created."""
    state_dir = RUN_ROOT / name
    state_dir.mkdir(mode=0o700)
    (state_dir / "disk").mkdir(mode=0o755)
    return LabHost(
        name=name,
        address=net.address(number),
        address6=net.address6(number),
        init_pid=0,
        state_dir=state_dir,
        admin_password=_new_password(),
        number=number,
        veth=f"hwlv{number}",
        docker=docker,
        init_start=0,
        launcher_pid=0,
        launcher_start=0,
        owner=str(paths.root),
        created=time.time(),
        creator_pid=os.getpid(),
        creator_start=procs.start_time(os.getpid()) or 0,
        **topology,
    )


def _free_number(number: int, taken_numbers: set[int]) -> int:
    """The lowest host number from ``number`` on that is neither recorded nor has a veth."""
    while number in taken_numbers or network.link_exists(f"hwlv{number}"):
        number += 1
        if number > LAST_HOST_NUMBER:
            raise LabError(
                "The lab subnet is full: every host address is in use.",
                "Remove some practice hosts first (hostwiz lab down NAME).",
            )
    return number


# Markers in RUN_ROOT: the lab's `ip netns add` created /run/netns (and its self bind mount,
# which iproute2 makes so that namespace mounts propagate); the last lab down undoes that.
_NETNS_DIR_MARK = ".created-netns-dir"
_NETNS_MOUNT_MARK = ".created-netns-mount"


def _note_netns_dir(before: tuple[bool, bool]) -> None:
    existed, mounted = before
    if not existed:
        (RUN_ROOT / _NETNS_DIR_MARK).touch()
    if not mounted and network.netns_dir_state()[1]:
        (RUN_ROOT / _NETNS_MOUNT_MARK).touch()


def _new_password() -> str:
    # Easy to type from `lab ls`: three groups of lower-case letters and digits.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def _write_firstboot(host: LabHost, pubkey: str) -> None:
    """What setup.sh hands provision.sh on the host's first boot (it deletes the file)."""
    lines = [pubkey.strip(), host.admin_password, "1" if host.docker else "0",
             "1" if host.ssh_socket else "0"]  # fmt: skip
    fd = os.open(host.state_dir / "firstboot", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def _launch(host: LabHost) -> LabHost:
    """Start the host's launcher (it boots the host); return the host with it recorded."""
    log_path = host.state_dir / "console.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                "nsenter", f"--net=/run/netns/{host.name}",
                "unshare", "--mount", "--propagation", "private",
                "/bin/sh", str(SCRIPTS / "launch.sh"), host.name, str(host.state_dir), host.init,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the host must outlive this command and its terminal
            env=HOST_ENV,
            cwd="/",
        )  # fmt: skip
    _launchers[host.name] = proc
    host = replace(host, launcher_pid=proc.pid, launcher_start=procs.start_time(proc.pid) or 0)
    _save(host, ready=False)
    return host


def _await_init(
    host: LabHost,
    log_path: Path,
    ended: Callable[[], int | None],
    old_init: int = 0,
    *,
    ready: bool = False,
) -> LabHost:
    """Wait until the launcher's boot has a PID 1 that is systemd or tini (the mounts are
    made and the first boot's provisioning is done); record it."""
    wanted = SYSTEMD if host.init == "systemd" else TINI
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        status = ended()
        if status is not None:
            raise LabError(
                f"{host.name} stopped while starting (exit status {status}).",
                inotify_hint(),
                details=_tail(log_path),
            )
        for pid in _boot_inits(host.launcher_pid):
            if pid != old_init and procs.executable(pid) == wanted:
                started = procs.start_time(pid)
                if started is not None:
                    host = replace(host, init_pid=pid, init_start=started)
                    _save(host, ready=ready)
                    return host
        time.sleep(0.02)
    raise LabError(
        f"{host.name} did not finish starting within {BOOT_TIMEOUT:.0f}s.",
        details=_tail(log_path),
    )


def _boot_inits(launcher: int) -> list[int]:
    """The PID 1 candidates of a launcher: the children of its `unshare --fork`."""
    return [pid for child in procs.children(launcher) for pid in procs.children(child)]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


_READY_SCRIPT = r"""
set -u
for f in /sys/fs/cgroup/*/cgroup.procs; do echo $$ >"$f" 2>/dev/null || true; done
init=$1 docker=$2 ssh_socket=$3 wait=$4 services=$5
if [ "$init" = sysv ] && [ "$services" = 0 ]; then
    # The boot is over once the init scripts ran and PID 1's shell became `sleep infinity`.
    tries=0
    until ps -o comm= --ppid 1 | grep -qx sleep; do
        tries=$((tries + 1))
        [ $tries -gt $((wait * 10)) ] && { echo "the init scripts did not finish" >&2; exit 1; }
        sleep 0.1
    done
elif [ "$init" = systemd ]; then
    tries=0
    until [ -S /run/systemd/private ] || [ $tries -gt $((wait * 10)) ]; do
        tries=$((tries + 1))
        sleep 0.1
    done
    timeout "$wait" systemctl is-system-running --wait >/dev/null 2>&1
    [ "$services" = 0 ] && { cat /etc/ssh/ssh_host_*_key.pub; exit 0; }
    ssh_unit=ssh.service
    [ "$ssh_socket" = 1 ] && ssh_unit=ssh.socket
    units=$ssh_unit
    [ "$docker" = 1 ] && units="$units docker.service"
    if ! systemctl is-active -q $units; then
        echo "not running: $(systemctl is-active $units | tr '
' ' ')" >&2
        systemctl --no-pager --failed >&2
        journalctl --no-pager -b -n 30 >&2
        exit 1
    fi
elif [ "$docker" = 1 ]; then
    tries=0
    until docker info >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ $tries -gt $((wait * 10)) ]; then
            echo "dockerd did not answer within $wait seconds; /var/log/docker.log:" >&2
            tail -n 20 /var/log/docker.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
fi
cat /etc/ssh/ssh_host_*_key.pub
"""


def _await_ready(host: LabHost, services: bool = True) -> list[str]:
    """Wait (inside the host) until its boot is over and, with ``services``, until sshd and
    dockerd run; return the host's SSH public host keys.

    After a reboot (``services=False``) what runs is what the host's configuration starts:
    an admin may have moved sshd or turned dockerd off."""
    env = [f"{key}={value}" for key, value in HOST_ENV.items()]
    argv = [
        *enter_command(host),
        "env", "-i", *env,
        "/bin/sh", "-c", _READY_SCRIPT, "ready",
        host.init, "1" if host.docker else "0", "1" if host.ssh_socket else "0",
        str(int(READY_TIMEOUT) - 10), "1" if services else "0",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=READY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{host.name} took longer than {READY_TIMEOUT:.0f}s to boot.") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise LabError(
            f"{host.name} did not come up (exit status {proc.returncode}): "
            f"{err.splitlines()[0] if err else 'no message'}",
            details=err + "\n" + _tail(host.state_dir / "console.log"),
        )
    return [line for line in proc.stdout.decode().splitlines() if line.strip()]


def _wait_for_ssh(host: LabHost, timeout: float = 15.0) -> None:
    """Wait until sshd answers with its banner on the host's address."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, 22), timeout=2) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise LabError(f"sshd on {host.name} ({host.address}) did not answer: {last}")


# --- topologies ----------------------------------------------------------------------------

_SWITCH_RECORD = "switch.json"
MAX_DEFAULT_PREFIXES = 50


def lab_up_topology(
    topology: str | Path | TopologySpec,
    prefix: str | None = None,
    *,
    docker: bool | None = None,
    init: str = DEFAULT_INIT,
) -> Topology:
    """Create the hosts of a topology (a shipped name, a .toml path or a parsed spec).

    Hosts are named ``PREFIX-ROLE``; without ``prefix`` the first free of ``hw``, ``hw2``…
    is used. ``docker`` overrides every host's ``docker`` setting when not None; ``init`` is
    every host's init (see :func:`lab_up`). The
    topology's networks live in the switch namespace ``hwsw-PREFIX`` (see
    :mod:`lab.switch`); :func:`lab_down` removes it with its last host. On failure
    everything this call made is removed again.
    """
    _check_init(init, False)
    spec = topology if isinstance(topology, TopologySpec) else load_topology(topology)
    wants_docker = spec.uses_docker if docker is None else docker
    check_requirements(docker=wants_docker)
    if prefix is not None:
        _check_topology_prefix(prefix)
    paths = lab_paths()
    pubkey = sshfiles.ensure_key(paths)
    net = lab_network()
    reserved: list[LabHost] = []
    try:
        instance = _reserve_topology(spec, prefix, docker, paths, net, reserved, init)
        booted = _start(reserved, paths, pubkey)
        return Topology(
            name=instance,
            spec=spec,
            switch=switch.switch_name(instance),
            hosts={h.role: h for h in booted},
        )
    except BaseException:
        with contextlib.suppress(Exception):
            # Also removes the switch, which no host record refers to any more.
            _down([_reload(h) for h in reserved], paths)
        raise


def _check_topology_prefix(prefix: str) -> None:
    if not PREFIX_RE.fullmatch(prefix) or prefix.endswith("-"):
        raise LabError(
            f"{prefix!r} cannot start a host name.",
            "Use a lower-case letter followed by up to 23 letters, digits or inner dashes "
            "(hosts are then called PREFIX-ROLE, e.g. t1-router).",
        )


def _reserve_topology(
    spec: TopologySpec,
    prefix: str | None,
    docker: bool | None,
    paths: LabPaths,
    net: LabNetwork,
    reserved: list[LabHost],
    init: str,
) -> str:
    """Under the machine lock: pick the prefix, create the switch, then each host's network
    (eth0 on the lab bridge without a default route, its topology interfaces, routes)."""
    with machine_lock():
        RUN_ROOT.mkdir(mode=0o755, exist_ok=True)
        records = _records()
        taken_names = {p.name for p in RUN_ROOT.iterdir() if p.is_dir()} | network.netns_names()
        taken_numbers = {h.number for h, _ in records}
        instance = _pick_prefix(spec, prefix, taken_names)
        switch_ns = switch.switch_name(instance)
        network.ensure_bridge(net)
        netns_before = network.netns_dir_state()
        switch_dir = RUN_ROOT / switch_ns
        switch_dir.mkdir(mode=0o700)
        _save_switch(switch_dir, instance, spec, paths)
        switch.create_switch(switch_ns, spec.networks)
        _note_netns_dir(netns_before)
        number = FIRST_HOST_NUMBER
        for role, host_spec in spec.hosts.items():
            number = _free_number(number, taken_numbers)
            taken_numbers.add(number)
            name = f"{instance}-{role}"
            interfaces = tuple(
                LabInterface(
                    name=iface.name,
                    network=iface.network,
                    address=str(iface.address),
                    prefixlen=spec.networks[iface.network].subnet.prefixlen,
                    address6=str(iface.address6),
                    prefixlen6=spec.networks[iface.network].subnet6.prefixlen,
                )
                for iface in host_spec.interfaces
            )
            host = _new_host(
                name,
                number,
                host_spec.docker if docker is None else docker,
                paths,
                net,
                topology=instance,
                role=role,
                interfaces=interfaces,
                gateway=str(host_spec.gateway or ""),
                init=init,
            )
            _save(host, ready=False)
            reserved.append(host)
            network.create_host_network(name, number, host.veth, net, default_route=False)
            switch.wire_host(switch_ns, name, number, interfaces)
            switch.configure_host(name, host_spec, interfaces, net)
        return instance


def _pick_prefix(spec: TopologySpec, prefix: str | None, taken: set[str]) -> str:
    def free(candidate: str) -> bool:
        names = {f"{candidate}-{role}" for role in spec.hosts}
        return not (names & taken) and switch.switch_name(candidate) not in taken

    if prefix is not None:
        if not free(prefix):
            raise LabError(
                f"Practice hosts or a topology named {prefix}-… exist already.",
                f"Choose another --name, or remove them first: hostwiz lab down {prefix}",
            )
        return prefix
    for number in range(1, MAX_DEFAULT_PREFIXES + 1):
        candidate = "hw" if number == 1 else f"hw{number}"
        if free(candidate):
            return candidate
    raise LabError("Too many topologies are running.", "Remove some: hostwiz lab down PREFIX")


def _save_switch(switch_dir: Path, instance: str, spec: TopologySpec, paths: LabPaths) -> None:
    data = {
        "instance": instance,
        "switch": switch_dir.name,
        "topology": spec.name,
        "source": spec.source,
        "text": spec.text,
        "owner": str(paths.root),
        "created": time.time(),
        "creator_pid": os.getpid(),
        "creator_start": procs.start_time(os.getpid()) or 0,
    }
    path = switch_dir / _SWITCH_RECORD
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)


def _switch_records() -> list[tuple[Path, dict[str, Any]]]:
    """Every topology switch on the machine: (its state dir, its record)."""
    found: list[tuple[Path, dict[str, Any]]] = []
    if not RUN_ROOT.is_dir():
        return found
    for path in sorted(RUN_ROOT.glob(f"{switch.SWITCH_PREFIX}*/{_SWITCH_RECORD}")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("instance"), str):
            found.append((path.parent, data))
    return found


def _own_switches(paths: LabPaths) -> dict[str, tuple[Path, dict[str, Any]]]:
    owner = str(paths.root)
    return {d["instance"]: (p, d) for p, d in _switch_records() if d.get("owner") == owner}


def lab_topologies() -> list[Topology]:
    """This lab's running topologies (their ready hosts), oldest first."""
    paths = lab_paths()
    hosts = lab_list()
    found = []
    for instance, (_, data) in _own_switches(paths).items():
        try:
            spec = parse_topology(str(data["text"]), str(data["source"]), str(data["topology"]))
        except (KeyError, LabError):
            continue
        members = {h.role: h for h in hosts if h.topology == instance}
        found.append(
            (
                float(data.get("created", 0)),
                Topology(instance, spec, switch.switch_name(instance), members),
            )
        )
    return [t for _, t in sorted(found, key=lambda item: (item[0], item[1].name))]


def lab_topology(name: str) -> Topology:
    """The running topology ``name`` (its host name prefix) of this lab."""
    for topo in lab_topologies():
        if topo.name == name:
            return topo
    raise LabError(f"No running topology named {name}.", "See them with: hostwiz lab ls")


def _remove_unused_switches(paths: LabPaths) -> list[str]:
    """Under the machine lock: delete this lab's switches that no host record refers to."""
    referenced = {h.topology for h, _ in _records() if h.topology}
    removed = []
    for instance, (state_dir, data) in _own_switches(paths).items():
        if instance in referenced:
            continue
        switch.remove_switch(str(data.get("switch", switch.switch_name(instance))))
        if state_dir.parent == RUN_ROOT:
            shutil.rmtree(state_dir)
        removed.append(instance)
    return removed


# --- lab reboot ----------------------------------------------------------------------------


def lab_reboot(names: Sequence[str]) -> list[LabHost]:
    """Reboot this lab's hosts ``names`` (a topology's name stands for its hosts); return them
    with their new PID 1, once each has finished booting (systemd's boot is over, or the init
    scripts ran).

    Like a power cut: every process of the host ends at once (nothing is shut down cleanly),
    the kernel forgets the host's firewall rules, the links it made and its forwarding, and
    the host boots again from the same disk (its overlays keep every file), through systemd
    or its init scripts. What comes back is what the host's boot configuration brings back.
    """
    check_root()
    paths = lab_paths()
    own = _own_records(paths)
    wanted = _expand_topologies(names, own, paths)
    missing = [n for n in wanted if n not in own or not own[n][1]]
    if missing:
        raise LabError(
            f"No practice host named {', '.join(missing)}.", "See the hosts with: hostwiz lab ls"
        )
    hosts = [own[n][0] for n in dict.fromkeys(wanted)]
    stopped = [h.name for h in hosts if not host_running(h)]
    if stopped:
        raise LabError(
            f"{', '.join(stopped)} is not running (its power supply is gone).",
            f"Remove it and make a new one: hostwiz lab down {' '.join(stopped)}",
        )
    for host in hosts:
        (host.state_dir / "reboot").touch()
        if not procs.kill_recorded(host.init_pid, host.init_start):
            raise LabError(f"PID {host.init_pid} (PID 1 of {host.name}) did not exit.")
    # The records stay "ready" all along: a host that fails to come back is still listed, and
    # taken down by whoever made it.
    rebooted = []
    for host in hosts:

        def ended(host: LabHost = host) -> int | None:
            return None if procs.is_same_process(host.launcher_pid, host.launcher_start) else -1

        rebooted.append(
            _await_init(
                host, host.state_dir / "console.log", ended, old_init=host.init_pid, ready=True
            )
        )
    with ThreadPoolExecutor(max_workers=len(rebooted)) as pool:
        list(pool.map(lambda h: _await_ready(h, services=False), rebooted))
    return rebooted


# --- lab down ------------------------------------------------------------------------------


def managed_elsewhere(host: LabHost) -> bool:
    """True while another running process (a test session, a benchmark) owns ``host``."""
    if host.creator_pid in (0, os.getpid()):
        return False
    return procs.is_same_process(host.creator_pid, host.creator_start)


def lab_down(names: Sequence[str] | None = None) -> list[str]:
    """Remove this lab's hosts (all of them, or those named); return the names removed.

    A name may also be that of a running topology (the prefix of its hosts' names): it
    stands for all its hosts. A topology's switch namespace goes with its last host.

    Only hosts recorded for this lab's data dir are touched. Without names, hosts whose
    creating process still runs (another engineer's test session, say) are left to it; name
    them to remove them anyway. Leaves nothing behind: no
    processes, network namespaces, veths, cgroups, records or ssh_config/known_hosts entries,
    and no bridge once no host on the machine needs it.
    """
    check_root()
    paths = lab_paths()
    own = _own_records(paths)
    if names is None:
        targets = [h for h, _ in own.values() if not managed_elsewhere(h)]
        # Entries whose host is long gone (for instance after a reboot cleared /run).
        recorded = {h.name for h, _ in _records()}
        stale = [n for n in sshfiles.configured_names(paths) if n not in recorded]
    else:
        names = _expand_topologies(names, own, paths)
        unknown = [n for n in names if n not in own]
        configured = set(sshfiles.configured_names(paths))
        recorded = {h.name for h, _ in _records()}
        foreign = [n for n in unknown if n in recorded]
        if foreign:
            raise LabError(
                f"{', '.join(foreign)} belong(s) to another lab (another user's data dir); "
                "not touching them.",
            )
        missing = [n for n in unknown if n not in configured]
        if missing:
            raise LabError(
                f"No practice host named {', '.join(missing)}.",
                "See the hosts with: hostwiz lab ls",
            )
        targets = [own[n][0] for n in dict.fromkeys(names) if n in own]
        stale = [n for n in names if n not in own]
    _down(targets, paths)
    sshfiles.remove_hosts(paths, stale)
    return [h.name for h in targets] + stale


def _expand_topologies(
    names: Sequence[str], own: dict[str, tuple[LabHost, bool]], paths: LabPaths
) -> list[str]:
    """Replace the name of a running topology (not also a host's) by its hosts' names."""
    topologies = _own_switches(paths)
    expanded: list[str] = []
    for name in names:
        if name in own or name not in topologies:
            expanded.append(name)
            continue
        expanded += sorted(h.name for h, _ in own.values() if h.topology == name)
    return expanded


def _down(hosts: Sequence[LabHost], paths: LabPaths) -> None:
    problems = []
    for host in hosts:
        try:
            _teardown(host)
        except LabError as exc:
            problems.append(f"{host.name}: {exc.message}")
    sshfiles.remove_hosts(paths, [h.name for h in hosts])
    with machine_lock():
        try:
            _remove_unused_switches(paths)
        except (LabError, OSError) as exc:
            problems.append(f"topology switch: {exc}")
        _remove_shared_if_unused()
    if problems:
        raise LabError(
            "Some practice hosts could not be removed completely: " + "; ".join(problems),
            "Run hostwiz lab down again; if it persists, look at `ip netns list` and "
            "/run/hostwiz-lab.",
        )


def _teardown(host: LabHost) -> None:
    """End one host's processes, then remove its cgroups, network and state dir."""
    with contextlib.suppress(FileNotFoundError):
        (host.state_dir / "reboot").unlink()
    if procs.is_same_process(host.launcher_pid, host.launcher_start):
        # The launcher first, so that it boots nothing more; then its `unshare --fork
        # --kill-child`, whose end takes the PID 1 it started (recorded or not) with it.
        booting = [(p, procs.start_time(p)) for p in procs.children(host.launcher_pid)]
        procs.kill_recorded(host.launcher_pid, host.launcher_start)
        for child, start in booting:
            if start is not None:
                procs.kill_recorded(child, start)
    if host.init_pid and not procs.kill_recorded(host.init_pid, host.init_start):
        raise LabError(f"PID {host.init_pid} (PID 1 of {host.name}) did not exit.")
    launcher = _launchers.pop(host.name, None)
    if launcher is not None:
        try:
            launcher.wait(timeout=10)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait(timeout=10)
    _wait_gone(host.launcher_pid, host.launcher_start)
    if (host.state_dir / "cgroups").exists():
        proc = subprocess.run(
            [
                "unshare", "--mount", "--propagation", "private",
                "/bin/sh", str(SCRIPTS / "cgclean.sh"), str(host.state_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=HOST_ENV,
        )  # fmt: skip
        if proc.returncode != 0:
            raise LabError(f"Could not remove the cgroups of {host.name}: {proc.stderr.strip()}")
    network.remove_host_network(host.name, host.veth)
    if host.name in network.netns_names():
        raise LabError(f"The network namespace {host.name} is still there.")
    _remove_state_dir(host.state_dir)


def _wait_gone(pid: int, started: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while procs.is_same_process(pid, started) and time.monotonic() < deadline:
        time.sleep(0.02)


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            target = line.split()[4].replace("\\040", " ")
            if target == str(path) or target.startswith(prefix):
                found.append(target)
    return found


def _remove_state_dir(state_dir: Path) -> None:
    if state_dir.parent != RUN_ROOT or not state_dir.is_dir():
        return
    mounted = _mounts_below(state_dir)
    if mounted:
        # Never delete through a mount; the host's disk is only ever mounted in its own
        # namespace, so this means something is badly wrong.
        raise LabError(f"{', '.join(mounted)} is mounted on the machine; not deleting it.")
    shutil.rmtree(state_dir)


def _remove_shared_if_unused() -> None:
    """With no host left on the machine: delete the bridge, the lock and the run dir, and
    /run/netns when the lab made it and nobody else has a namespace there."""
    if not RUN_ROOT.is_dir():
        network.remove_bridge_if_unused()
        return
    if any(p.is_dir() for p in RUN_ROOT.iterdir()):
        return
    if not network.remove_bridge_if_unused():
        return
    network.release_netns_dir(
        unmount=(RUN_ROOT / _NETNS_MOUNT_MARK).exists(),
        remove=(RUN_ROOT / _NETNS_DIR_MARK).exists(),
    )
    for leftover in RUN_ROOT.iterdir():
        leftover.unlink()
    RUN_ROOT.rmdir()
