"""``hostwiz lab …``: practice hosts from the command line.

The main CLI adds the parser with :func:`add_lab_parser` and hands the parsed arguments to
:func:`run_lab`, which returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from typing import Any, TextIO

from lab.hosts import (
    DEFAULT_INIT,
    HOST_ENV,
    INIT_KINDS,
    host_running,
    lab_down,
    lab_list,
    lab_reboot,
    lab_up,
    lab_up_topology,
    managed_elsewhere,
)
from lab.model import LabHost, enter_command
from lab.paths import lab_paths
from lab.requirements import check_root
from lab.topology import shipped_topologies
from wizard.errors import HostwizError, LabError

# Inside the host, join its own cgroups first (nsenter leaves us in the machine's), then
# become a login shell.
_SHELL = (
    'for f in /sys/fs/cgroup/*/cgroup.procs; do echo $$ >"$f"; done 2>/dev/null; exec /bin/bash -l'
)


def add_lab_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``lab`` with its sub-commands ``up``, ``ls``, ``shell``, ``reboot`` and ``down``."""
    lab = subparsers.add_parser(
        "lab",
        help="practice hosts: throwaway stand-ins for a fresh VM, on this machine",
        description=(
            "Practice hosts are stand-ins for fresh cloud VMs, made of namespaces on this "
            "machine (needs root). Each has its own network address on the lab bridge, SSH, "
            "an `admin` user with sudo, and Docker."
        ),
    )
    sub = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    up = sub.add_parser(
        "up",
        help="create practice hosts",
        description=(
            "Create practice hosts: N lone hosts, or the hosts and networks of a topology "
            f"(shipped: {', '.join(shipped_topologies()) or 'none'}; or a .toml file)."
        ),
    )
    up.add_argument("--hosts", type=int, default=None, metavar="N", help="how many (default 1)")
    up.add_argument(
        "--topology",
        metavar="NAME|FILE",
        help="hosts wired by lab networks, e.g. router (router, client, outside)",
    )
    up.add_argument(
        "--name",
        default=None,
        metavar="PREFIX",
        help="name prefix: PREFIX1, PREFIX2… (hw); with --topology PREFIX-ROLE (hw, hw2…)",
    )
    up.add_argument(
        "--no-docker",
        action="store_true",
        help="do not start dockerd (it stays installed); with --topology: on no host",
    )
    up.add_argument(
        "--init",
        choices=INIT_KINDS,
        default=DEFAULT_INIT,
        help="the hosts' PID 1: systemd (default, like most VMs) or sysv (init scripts)",
    )
    up.add_argument(
        "--ssh-socket",
        action="store_true",
        help="systemd listens for sshd through ssh.socket, as on Ubuntu (lone hosts only)",
    )
    ls = sub.add_parser("ls", help="list practice hosts")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    shell = sub.add_parser("shell", help="open a root shell inside a host (like its console)")
    shell.add_argument("name")
    shell.add_argument(
        "run", nargs=argparse.REMAINDER, metavar="-- COMMAND",
        help="run this (after --) instead of an interactive shell, e.g. -- iptables -S",
    )  # fmt: skip
    reboot = sub.add_parser(
        "reboot",
        help="reboot practice hosts (like a power cut: files stay, processes and rules go)",
        description=(
            "Reboot practice hosts: every process ends at once, the kernel forgets the "
            "host's firewall rules, and the host boots again from the same files. NAME may "
            "be a topology, for all its hosts."
        ),
    )
    reboot.add_argument("names", nargs="+", metavar="NAME")
    down = sub.add_parser(
        "down",
        help="remove practice hosts (all of this lab's by default)",
        description=(
            "Remove practice hosts. NAME is a host, or a topology (its hosts' prefix) "
            "standing for all its hosts; a topology's networks go with its last host."
        ),
    )
    down.add_argument("names", nargs="*", metavar="NAME")
    return lab


def run_lab(args: argparse.Namespace) -> int:
    """Run a parsed ``lab`` command; return the exit status."""
    out = sys.stdout
    try:
        command = args.lab_command
        if command == "up":
            if args.topology is not None:
                if args.hosts is not None:
                    raise LabError(
                        "--hosts does not go with --topology: the topology says which hosts.",
                        "Leave out --hosts.",
                    )
                if args.ssh_socket:
                    raise LabError(
                        "--ssh-socket is for lone hosts, not for --topology.",
                        "Leave out --ssh-socket, or make lone hosts: hostwiz lab up --ssh-socket",
                    )
                return _up_topology(
                    args.topology,
                    args.name,
                    docker=False if args.no_docker else None,
                    init=args.init,
                    out=out,
                )
            return _up(
                1 if args.hosts is None else args.hosts,
                "hw" if args.name is None else args.name,
                docker=not args.no_docker,
                init=args.init,
                ssh_socket=args.ssh_socket,
                out=out,
            )
        if command == "reboot":
            started = time.monotonic()
            rebooted = lab_reboot(args.names)
            print(
                f"Rebooted {', '.join(h.name for h in rebooted)} "
                f"in {time.monotonic() - started:.1f}s.",
                file=out,
            )
            return 0
        if command == "ls":
            return _ls(as_json=args.json, out=out)
        if command == "shell":
            return _shell(args.name, args.run)
        if command == "down":
            removed = lab_down(args.names or None)
            from lab.site_file import remove_stale_sites

            remove_stale_sites({h.topology for h in lab_list() if h.topology})
            if removed:
                print(f"Removed: {', '.join(removed)}", file=out)
            else:
                print("No practice hosts to remove.", file=out)
            kept = [h for h in lab_list() if managed_elsewhere(h)] if not args.names else []
            if kept:
                print(
                    "Left alone (their creating process, e.g. a test session, still runs; "
                    f"name them to remove anyway): {', '.join(h.name for h in kept)}",
                    file=out,
                )
            return 0
        raise LabError(f"Unknown lab command {command!r}.")
    except HostwizError as exc:
        print(exc.explain(), file=sys.stderr)
        if exc.details:
            print(exc.details, file=sys.stderr)
        return 1


def ssh_command(host: LabHost) -> str:
    return f"ssh -F {shlex.quote(str(lab_paths().ssh_config))} {host.name}"


def _describe(host: LabHost) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "address6": host.address6,
        "running": host_running(host),
        "ssh": ssh_command(host),
        "admin_user": "admin",
        "admin_password": host.admin_password,
        "docker": host.docker,
        "init": host.init,
        "ssh_socket": host.ssh_socket,
        "init_pid": host.init_pid,
        "console": shlex.join(enter_command(host)),
        "topology": host.topology or None,
        "role": host.role or None,
        "interfaces": [asdict(i) for i in host.all_interfaces],
        "gateway": host.gateway or None,
    }


def _table(hosts: list[LabHost], out: TextIO) -> None:
    rows = [("NAME", "ADDRESS", "STATE", "SSH", "ADMIN PASSWORD")]
    for host in hosts:
        state = "running" if host_running(host) else "stopped"
        rows.append((host.name, host.address, state, ssh_command(host), host.admin_password))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    owners: list[LabHost | None] = [None, *hosts]
    for row, owner in zip(rows, owners, strict=True):
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        print(line.rstrip(), file=out)
        if owner is not None and owner.topology:
            for detail in _interface_lines(owner):
                print(f"    {detail}", file=out)


def _interface_lines(host: LabHost) -> list[str]:
    """A topology host's interfaces and default route, for the lines under its row."""
    rows = [
        (
            f"{i.name} ({i.network})" if i.name != i.network else i.name,
            f"{i.address}/{i.prefixlen}",
            f"{i.address6}/{i.prefixlen6}",
        )
        for i in host.all_interfaces
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{host.role} in topology {host.topology}"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.append(f"default via {host.gateway}" if host.gateway else "no default route")
    return lines


def _up(count: int, prefix: str, *, docker: bool, init: str, ssh_socket: bool, out: TextIO) -> int:
    started = time.monotonic()
    hosts = lab_up(count, prefix, docker=docker, init=init, ssh_socket=ssh_socket)
    elapsed = time.monotonic() - started
    noun = "host" if len(hosts) == 1 else "hosts"
    print(f"{len(hosts)} practice {noun} ready in {elapsed:.1f}s.\n", file=out)
    _table(hosts, out)
    print(
        "\nLog in as root with the ssh command above, or as admin (sudo with the password): "
        f"ssh -F {shlex.quote(str(lab_paths().ssh_config))} admin@{hosts[0].name}",
        file=out,
    )
    return 0


def _up_topology(
    topology: str, prefix: str | None, *, docker: bool | None, init: str, out: TextIO
) -> int:
    started = time.monotonic()
    topo = lab_up_topology(topology, prefix, docker=docker, init=init)
    elapsed = time.monotonic() - started
    networks = ", ".join(f"{n.name} {n.subnet} {n.subnet6}" for n in topo.networks.values())
    print(
        f"Topology {topo.spec.name} ({topo.name}) ready in {elapsed:.1f}s: "
        f"{len(topo.hosts)} practice hosts; networks {networks or 'none'}.\n",
        file=out,
    )
    hosts = list(topo.hosts.values())
    _table(hosts, out)
    from lab.site_file import write_topology_site

    site = write_topology_site(topo)
    print(f"\nSite file (its hosts and roles): {site}\n  hostwiz plan --site {site}", file=out)
    print(
        "\nEvery host has eth0 on the lab's management network (mgmt), for SSH from here. "
        "Log in as root with the ssh commands above, or as admin (sudo with the password). "
        f"Remove them all with: hostwiz lab down {topo.name}",
        file=out,
    )
    return 0


def _ls(*, as_json: bool, out: TextIO) -> int:
    check_root()
    hosts = lab_list()
    if as_json:
        json.dump([_describe(h) for h in hosts], out, indent=2)
        print(file=out)
    elif hosts:
        _table(hosts, out)
    else:
        print("No practice hosts. Make one with: hostwiz lab up", file=out)
    return 0


def _shell(name: str, command: list[str] | None = None) -> int:
    check_root()
    host = next((h for h in lab_list() if h.name == name), None)
    if host is None:
        raise LabError(f"No practice host named {name}.", "See the hosts with: hostwiz lab ls")
    if not host_running(host):
        raise LabError(f"{name} is not running.", f"Remove it with: hostwiz lab down {name}")
    env = dict(HOST_ENV, TERM=os.environ.get("TERM", "xterm"))
    argv = [
        *enter_command(host),
        "env", "-i", *(f"{k}={v}" for k, v in env.items()),
        "/bin/sh", "-c", _SHELL,
    ]  # fmt: skip
    words = (command or [])[1:] if (command or [])[:1] == ["--"] else (command or [])
    if words:  # a login shell that runs the command: the console, scripted
        argv[-1] = _SHELL.replace("exec /bin/bash -l", 'exec /bin/bash -lc "$1"')
        argv += ["sh", shlex.join(words)]
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached
