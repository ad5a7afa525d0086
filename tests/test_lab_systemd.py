"""Practice hosts that boot systemd, and hostwiz on them: systemd's own paths (systemctl
reload ssh, ssh.socket, docker.service, the systemd-run watchdog, the firewall unit's boot
order) tested for real; the machine untouched by a booting systemd; `lab reboot`."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lab import (
    LabHost,
    console,
    host_running,
    hosts,
    lab_down,
    lab_list,
    lab_reboot,
    lab_up,
    procs,
)
from lab.cli import add_lab_parser, run_lab
from lab.image import DEFAULT_TAG as IMAGE
from lab.image import busybox_rootfs
from lab.paths import RUN_ROOT
from presets import apply_overrides, load_preset
from snapshots.rollback import rollback_plan
from tests.probes import wait_for, wait_until
from wizard.actions import RunCommand, WriteFile
from wizard.errors import LabError
from wizard.host.sshd import DROP_IN_PATH as SSHD_DROP_IN
from wizard.plan import Changeset, Plan
from wizard.render import as_text, render_changeset
from wizard.session import Selection, apply, preview
from wizard.steps import STEPS
from wizard.steps.ssh.port import SOCKET_DROP_IN, parse_listeners
from wizard.transaction import apply_changeset, watchdog_marker
from wizard.transport.base import shell_quote
from wizard.transport.local import LocalTransport
from wizard.transport.ports import forget_port
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab
MakeLabHosts = Callable[..., list[LabHost]]
JOURNAL = "/var/lib/hostwiz/snapshots/$(cat /var/lib/hostwiz/LAST)/journal"


def on_console(host: LabHost, script: str, timeout: float = 120) -> str:
    result = console(host).run(script, timeout=timeout)
    assert result.ok, f"{script!r} failed on {host.name}: {result.err}"
    return result.out


def run_as_admin(host: LabHost, script: str, stdin: bytes = b"") -> str:
    """``script`` in a login shell of admin (its DOCKER_HOST points at a rootless engine)."""
    result = console(host).run(f"su - admin -c {shell_quote(script)}", stdin=stdin, timeout=120)
    assert result.ok, f"{script!r} as admin on {host.name}: {result.err}"
    return result.out


def connect(host: LabHost, config: Path) -> SshTransport:
    return SshTransport.connect(host.name, ssh_config=config, connect_timeout=4)


def hardened(step: str, *overrides: str) -> Selection:
    preset = apply_overrides(load_preset("hardened"), list(overrides))
    return Selection(STEPS[step], preset.answers[step])


def listeners(cons: LocalTransport) -> dict[int, tuple[str, ...]]:
    return parse_listeners(0, cons.run("ss -Hltnp").out)


def monotonic_of(host: LabHost, unit: str, prop: str) -> int:
    out = on_console(host, f"systemctl show -p {prop} --value {unit}").strip()
    assert out.isdigit() and int(out) > 0, f"{unit} {prop}: {out!r}"
    return int(out)


# --- the host itself -------------------------------------------------------------------------


@pytest.mark.docker
def test_systemd_host_runs_ssh_and_docker_at_their_defaults(systemd_host: LabHost) -> None:
    host = systemd_host
    assert on_console(host, "cat /proc/1/comm").strip() == "systemd"
    assert on_console(host, "systemctl is-active ssh docker").split() == ["active", "active"]
    state = console(host).run("systemctl is-system-running").out.strip()
    assert state in ("running", "degraded"), state
    assert not console(host).run("test -e /etc/docker/daemon.json").ok  # dockerd's defaults
    assert on_console(host, "docker info --format '{{.CgroupDriver}}'").strip() == "cgroupfs"
    # dockerd and its containers are accounted below the host's own cgroup on the machine.
    dockerd = int(on_console(host, "systemctl show -p MainPID --value docker").strip())
    assert dockerd > 1
    # Units that would touch the machine never ran.
    for unit in ("systemd-sysctl", "systemd-modules-load", "systemd-timesyncd", "systemd-udevd",
                 "systemd-binfmt", "systemd-remount-fs", "getty@tty1"):  # fmt: skip
        assert console(host).run(f"systemctl is-active -q {unit}").exit_code != 0, unit


def test_what_a_booting_systemd_touches_is_the_hosts_own(systemd_host: LabHost) -> None:
    host = systemd_host
    # Every tmpfiles.d rule that systemd-tmpfiles --boot applies is on a path of the host's
    # own (an overlay, or a tmpfs of its own): none on the machine's /, /usr, /sys...
    private = ("/etc", "/var", "/srv", "/home", "/root", "/usr/local", "/run", "/tmp", "/dev")
    rules = on_console(host, "systemd-tmpfiles --cat-config")
    paths = [
        line.split()[1]
        for line in rules.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and len(line.split()) > 1
    ]
    assert "/tmp" in paths  # D /tmp: the reason /tmp must be the host's own
    outside = [p for p in paths if not any(p == d or p.startswith(d + "/") for d in private)]
    assert not outside, f"tmpfiles.d rules outside the host's own paths: {outside}"
    mounts = on_console(host, "findmnt -rn -o TARGET,FSTYPE,OPTIONS")
    own = {line.split()[0]: line.split()[1:] for line in mounts.splitlines()}
    for target in ("/tmp", "/run", "/dev"):
        assert own[target][0] == "tmpfs", target
    assert "ro" in own["/proc/sys"][1].split(",") and "rw" in own["/proc/sys/net"][1].split(",")
    assert "ro" in own["/sys"][1].split(",")
    # journald's /dev/log is in the host's /dev, not the machine's.
    assert on_console(host, "readlink /dev/log").strip() == "/run/systemd/journal/dev-log"
    assert not (Path("/dev/log").is_symlink() and "systemd" in os.readlink("/dev/log"))
    # The clock and the kernel's modules are out of reach of every process of the host: the
    # capabilities are gone from PID 1's bounding set, so from everything it starts.
    for pid in ("1", "$(systemctl show -p MainPID --value ssh)"):
        status = on_console(host, f"cat /proc/{pid}/status")
        bounding = int(
            next(line for line in status.splitlines() if line.startswith("CapBnd:")).split()[1], 16
        )
        for cap in (16, 25, 35):  # CAP_SYS_MODULE, CAP_SYS_TIME, CAP_WAKE_ALARM
            assert not bounding & (1 << cap), (pid, cap)


# --- the machine stays as it was ---------------------------------------------------------------

VOLATILE = ("random/", "ns_last_pid", "file-nr", "inode-nr", "inode-state", "dentry-state",
            "aio-nr", "stat_refresh", "tainted", "nr_hugepages", "overcommit", "pty/nr",
            "fs/quota", "hung_task", "perf_event_max", "sched_", "numa_", "dquot")  # fmt: skip


def machine_sysctls() -> dict[str, str]:
    """The machine's kernel.*, vm.* and fs.* settings that a host could change."""
    found = {}
    for top in ("kernel", "vm", "fs"):
        for path in Path("/proc/sys", top).rglob("*"):
            name = str(path.relative_to("/proc/sys"))
            if any(v in name for v in VOLATILE) or not path.is_file():
                continue
            try:
                found[name] = path.read_text()
            except OSError:
                continue
    return found


def machine_cgroups() -> set[str]:
    """The first level of each of the machine's cgroup hierarchies, without hosts' own."""
    return {
        str(d)
        for hierarchy in Path("/sys/fs/cgroup").iterdir()
        if hierarchy.is_dir() and not hierarchy.is_symlink()
        for d in hierarchy.iterdir()
        if d.is_dir() and not d.name.startswith("hostwiz-lab-")
    }


def clock_offset() -> float:
    """Wall clock minus monotonic clock: changes only when someone sets the clock."""
    return time.clock_gettime(time.CLOCK_REALTIME) - time.clock_gettime(time.CLOCK_MONOTONIC)


@pytest.mark.docker
def test_the_machine_is_unchanged_by_lab_up_reboot_and_down(
    make_lab_hosts: MakeLabHosts, init_kind: str
) -> None:
    canary = Path("/tmp") / f"hostwiz-canary-{secrets.token_hex(4)}"
    canary.write_text("still here\n")
    try:
        sysctls, cgroups, offset = machine_sysctls(), machine_cgroups(), clock_offset()
        hostname = Path("/proc/sys/kernel/hostname").read_text()
        (host,) = make_lab_hosts(1, docker=True, init=init_kind)
        assert canary.exists(), "lab up emptied the machine's /tmp"
        # What the host writes to its /tmp stays there.
        on_console(host, f"echo inside > /tmp/{canary.name}-inside")
        assert not Path(f"/tmp/{canary.name}-inside").exists()

        (host,) = lab_reboot([host.name])
        assert canary.read_text() == "still here\n", "lab reboot emptied the machine's /tmp"
        init = "systemd" if init_kind == "systemd" else "tini"
        assert on_console(host, "cat /proc/1/comm").strip() == init

        pids = [p for p in procs.children(host.launcher_pid)]
        cgroup_file = (host.state_dir / "cgroups").read_text()
        assert lab_down([host.name]) == [host.name]
        assert canary.read_text() == "still here\n", "lab down emptied the machine's /tmp"

        assert machine_sysctls() == sysctls
        assert machine_cgroups() == cgroups
        assert abs(clock_offset() - offset) < 1.0
        assert Path("/proc/sys/kernel/hostname").read_text() == hostname
        # Nothing of the host is left: processes, mounts, network namespace, cgroups.
        assert not procs.is_same_process(host.launcher_pid, host.launcher_start)
        assert not any(procs.start_time(p) for p in pids)
        assert str(host.state_dir) not in Path("/proc/self/mountinfo").read_text()
        assert not (RUN_ROOT / host.name).exists()
        assert host.name not in os.listdir("/run/netns") if Path("/run/netns").is_dir() else True
        assert f"hostwiz-lab-{host.name}" not in str(list(Path("/sys/fs/cgroup").rglob("*/")))
        assert f"hostwiz-lab-{host.name}" in cgroup_file
    finally:
        canary.unlink()


# --- hostwiz on a systemd host -------------------------------------------------------------------


@pytest.fixture
def systemd_only(make_lab_hosts: MakeLabHosts) -> LabHost:
    """A systemd host without dockerd (faster), for the SSH tests."""
    return make_lab_hosts(1, docker=False, init="systemd")[0]


def test_ssh_hardening_applies_and_confirms_through_systemd(
    systemd_only: LabHost, lab_ssh_config: Path
) -> None:
    host = systemd_only
    cons = host.console()
    with connect(host, lab_ssh_config) as ssh:
        result = apply(ssh, [hardened("ssh")])
    assert result.confirmed
    assert "passwordauthentication no" in cons.run("sshd -T").out
    # systemd reloaded sshd (systemctl reload ssh), and the watchdog was a transient unit.
    journal = on_console(host, "journalctl --no-pager -o cat")
    assert "Reloaded ssh.service" in journal or "Reloaded OpenBSD Secure Shell server" in journal
    marker = watchdog_marker(result.snapshot_id or "")
    assert f"{marker}.service" in journal
    assert on_console(host, "systemctl is-active ssh").strip() == "active"
    # The confirmation stopped the timer by its pid (no systemctl stop): its unit ended with it.
    assert on_console(host, f"systemctl is-active {marker}.service || true").strip() != "active"
    assert not cons.run(f"pgrep -f '[{marker[0]}]{marker[1:]}'").ok
    connect(host, lab_ssh_config).close()


def test_a_lockout_is_undone_by_the_systemd_run_watchdog(
    systemd_only: LabHost, lab_ssh_config: Path
) -> None:
    host = systemd_only
    cons = host.console()
    ssh = connect(host, lab_ssh_config)
    rule = "INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j DROP"
    plan = Plan("demo", (RunCommand(f"iptables -I {rule}", why="blackhole new SSH connections",
                                    undo=f"iptables -D {rule}"),))  # fmt: skip
    result = apply_changeset(ssh, Changeset(host.name, (plan,)), confirm_timeout=10)
    assert not result.confirmed
    assert wait_for(cons, f"grep -q 'reverted (timeout)' {JOURNAL}", 10 + 15)
    assert "DROP" not in cons.run("iptables -S INPUT").out
    # It was systemd's transient unit (outside the SSH session) that put the change back.
    marker = watchdog_marker(result.snapshot_id or "")
    assert f"Started {marker}.service" in on_console(host, "journalctl --no-pager -o cat")
    connect(host, lab_ssh_config).close()
    ssh.close()


def test_ssh_port_moves_with_a_socket_activated_sshd(
    make_lab_hosts: MakeLabHosts, lab_ssh_config: Path
) -> None:
    """Ubuntu-like: ssh.socket listens; Port in sshd_config alone would not move it."""
    (host,) = make_lab_hosts(1, docker=False, init="systemd", ssh_socket=True)
    cons = host.console()
    assert on_console(host, "systemctl is-active ssh.socket").strip() == "active"
    # systemd holds the socket (sshd, once started by a connection, shares it).
    assert "systemd" in listeners(cons).get(22, ())
    try:
        with connect(host, lab_ssh_config) as ssh:
            result = apply(ssh, [hardened("ssh", "ssh.port=2222")])
        assert result.confirmed and result.ssh_port == 2222
        ports = listeners(cons)
        assert 22 not in ports and "systemd" in ports.get(2222, ())
        assert "ListenStream=0.0.0.0:2222" in on_console(host, f"cat {SOCKET_DROP_IN}")
        with connect(host, lab_ssh_config) as again:
            assert again.port == 2222
            back = apply_changeset(
                again,
                Changeset(host.name, (rollback_plan(again, result.snapshot_id or ""),)),
                reason="rollback",
            )
        assert back.confirmed
        assert 2222 not in listeners(cons) and "systemd" in listeners(cons).get(22, ())
        assert not cons.run(f"test -e {SOCKET_DROP_IN}").ok
    finally:
        forget_port(host.name)


def test_ssh_hardening_applies_while_a_socket_activated_sshd_is_stopped(
    make_lab_hosts: MakeLabHosts, lab_ssh_config: Path
) -> None:
    """Where ssh.socket starts sshd, ssh.service may be stopped between connections (and the
    port move stops it itself): systemd then removed /run/sshd, its RuntimeDirectory, and
    ``sshd -t`` and ``sshd -T`` fail with "Missing privilege separation directory" until a
    connection starts sshd again. The clean-clone run caught the health check reading nothing
    there before the confirming connection had started sshd."""
    (host,) = make_lab_hosts(1, docker=False, init="systemd", ssh_socket=True)
    cons = host.console()
    with connect(host, lab_ssh_config) as ssh:
        on_console(host, "systemctl stop ssh.service")  # KillMode=process: this session stays
        assert not cons.run("test -e /run/sshd").ok
        result = apply(ssh, [hardened("ssh")])
    assert result.confirmed
    assert "PasswordAuthentication no" in on_console(host, f"cat {SSHD_DROP_IN}")
    assert on_console(host, "systemctl is-active ssh.socket").strip() == "active"


@pytest.mark.docker
def test_docker_engine_through_docker_service_apply_rollback_apply(
    systemd_host: LabHost, lab_ssh_config: Path
) -> None:
    """Four starts of docker.service within a minute (boot, apply, rollback, apply): Debian's
    unit allows three, unless hostwiz resets its failure state before each restart."""
    host = systemd_host
    cons = host.console()
    assert not cons.run("test -e /etc/docker/daemon.json").ok, "not in its default state"
    snapshot = ""
    try:
        with connect(host, lab_ssh_config) as ssh:
            for attempt in range(2):
                started = monotonic_of(host, "docker", "ExecMainStartTimestampMonotonic")
                result = apply(ssh, [hardened("docker")])
                assert result.confirmed, (attempt, result.message)
                snapshot = result.snapshot_id or ""
                assert "userns" in on_console(host, "docker info --format '{{.SecurityOptions}}'")
                assert monotonic_of(host, "docker", "ExecMainStartTimestampMonotonic") > started
                if attempt == 0:
                    back = apply_changeset(
                        ssh, Changeset(host.name, (rollback_plan(ssh, snapshot),)),
                        reason="rollback",
                    )  # fmt: skip
                    assert back.confirmed
                    assert not cons.run("test -e /etc/docker/daemon.json").ok
            apply_changeset(
                ssh, Changeset(host.name, (rollback_plan(ssh, snapshot),)), reason="rollback"
            )
    finally:
        cons.run(
            "rm -f /etc/docker/daemon.json; userdel dockremap 2>/dev/null; "
            "systemctl reset-failed docker; systemctl restart docker"
        )
    assert on_console(host, "systemctl is-active docker").strip() == "active"


# --- lab reboot ---------------------------------------------------------------------------------


@pytest.mark.docker
def test_reboot_brings_back_zones_ssh_port_and_hardened_docker(
    make_lab_hosts: MakeLabHosts, lab_ssh_config: Path, init_kind: str
) -> None:
    (host,) = make_lab_hosts(1, docker=True, init=init_kind)
    firewall = hardened("firewall", "firewall.enabled=true")
    firewall = Selection(firewall.step, replace(firewall.answers, mgmt_interfaces=("eth0",)))
    try:
        with connect(host, lab_ssh_config) as ssh:
            result = apply(ssh, [hardened("ssh", "ssh.port=2222"), hardened("docker"), firewall])
        assert result.confirmed, result.message
        assert "HOSTWIZ-INPUT" in on_console(host, "iptables -S")

        (host,) = lab_reboot([host.name])
        cons = host.console()  # the new PID 1's

        # The firewall zones are back, and were loaded before dockerd started.
        assert "-A INPUT -j HOSTWIZ-INPUT" in on_console(host, "iptables -S INPUT")
        assert "-j HOSTWIZ-FORWARD" in on_console(host, "iptables -S DOCKER-USER")
        if init_kind == "systemd":
            loaded = monotonic_of(host, "hostwiz-firewall", "ExecMainExitTimestampMonotonic")
            assert loaded <= monotonic_of(host, "docker", "ExecMainStartTimestampMonotonic")
        # sshd answers on the moved port only.
        assert wait_for(cons, "ss -Hltn | grep -q ':2222 '", 30)
        assert 22 not in listeners(cons)
        with connect(host, lab_ssh_config) as again:
            assert again.port == 2222 and again.run("true").ok
        # dockerd came back with the hardened daemon.json.
        assert wait_for(cons, "docker info --format '{{.SecurityOptions}}' | grep -q userns", 60)
        assert '"icc": false' in on_console(host, "cat /etc/docker/daemon.json")
    finally:
        forget_port(host.name)


def test_an_unconfirmed_change_is_still_undone_after_a_reboot_in_its_window(
    make_lab_hosts: MakeLabHosts, lab_ssh_config: Path, init_kind: str
) -> None:
    """A reboot ends the safety timer's process; the boot-time re-arm starts it again, so the
    change a reboot caught unconfirmed is still put back at its deadline."""
    (host,) = make_lab_hosts(1, docker=False, init=init_kind)
    canary = "/etc/hostwiz-reboot-canary"
    rule = "INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j DROP"
    plan = Plan("demo", (
        WriteFile(canary, b"written by an unconfirmed change\n", 0o644, why="a file to undo"),
        RunCommand(f"iptables -I {rule}", why="blackhole new SSH connections",
                   undo=f"iptables -D {rule} || true"),
    ))  # fmt: skip
    ssh = connect(host, lab_ssh_config)
    result = apply_changeset(ssh, Changeset(host.name, (plan,)), confirm_timeout=45)
    assert not result.confirmed
    journal = f"/var/lib/hostwiz/snapshots/{result.snapshot_id}/journal"
    assert "reverted" not in on_console(host, f"cat {journal}")  # still inside the window

    (host,) = lab_reboot([host.name])  # the timer's process ends with every other one
    cons = host.console()
    assert cons.run(f"test -f {canary}").ok  # the disk kept the change
    assert wait_for(cons, f"grep -q 're-armed after a reboot' {journal}", 30)
    assert wait_for(cons, f"grep -q 'reverted (timeout)' {journal}", 45 + 15)
    assert not cons.run(f"test -e {canary}").ok
    assert " confirmed" not in on_console(host, f"cat {journal}")


# --- topologies and the command line -----------------------------------------------------------


def test_a_topology_of_systemd_hosts_reboots_by_its_name(make_topology: Callable[..., Any]) -> None:
    topo = make_topology("router", docker=False, init="systemd")
    router = topo.hosts["router"]
    # The lab's wiring (addresses, routes), without the link-local addresses' passing
    # "tentative" state (duplicate address detection still running when it is read).
    wiring = "ip -o addr show | sed 's/ tentative / /'; ip route show"
    before = on_console(router, wiring)
    (rebooted,) = [h for h in lab_reboot([topo.name]) if h.role == "router"]
    assert rebooted.init_pid != router.init_pid
    assert on_console(rebooted, "cat /proc/1/comm").strip() == "systemd"
    # The wiring is what a power cycle keeps.
    assert on_console(rebooted, wiring) == before
    client = next(h for h in lab_reboot([topo.hosts["client"].name]))
    lan = topo.address("router", "lan")
    banner = on_console(client, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{lan}/22; head -c 8 <&3'")
    assert banner.startswith("SSH-2.0")


def test_init_kinds_are_checked_before_anything_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(LabError, match="not a kind of init") as info:
        lab_up(1, "nobody", init="upstart")
    assert "systemd, sysv" in info.value.hint
    with pytest.raises(LabError, match=r"ssh\.socket needs systemd"):
        lab_up(1, "nobody", init="sysv", ssh_socket=True)


@pytest.mark.docker
def test_rootless_docker_runs_under_systemd_with_read_only_sysctls(
    make_lab_hosts: MakeLabHosts, lab_ssh_config: Path
) -> None:
    """Rootless Docker reads the user namespace sysctls and mounts proc in its namespace:
    both still work though /proc/sys is read-only; its engine is admin's systemd user unit.
    The system engine is stopped and disabled (docker.service and docker.socket, as Docker's
    rootless guide says), and a rollback enables and starts it again."""
    (host,) = make_lab_hosts(1, docker=True, init="systemd")
    cons = host.console()
    system_units = (
        "systemctl is-active docker.service; systemctl is-enabled docker.service docker.socket"
    )
    assert on_console(host, system_units).split() == ["active", "enabled", "enabled"]
    chosen = hardened("docker", "docker.mode=rootless", "docker.rootless_user=admin")
    with connect(host, lab_ssh_config) as ssh:
        result = apply(ssh, [chosen])
        assert result.confirmed, result.message
        assert preview(ssh, [chosen])[0].empty
    assert on_console(host, system_units + "; true").split() == ["inactive", "disabled", "disabled"]
    uid = on_console(host, "id -u admin").strip()
    status = on_console(host, "systemctl --user -M admin@ is-active docker-rootless-admin")
    assert status.strip() == "active"
    info = cons.run(
        f"su - admin -c 'DOCKER_HOST=unix:///run/user/{uid}/docker.sock docker info "
        "--format {{.SecurityOptions}}'"
    )
    assert info.ok and "rootless" in info.out, info.err
    with connect(host, lab_ssh_config) as ssh:
        rollback = rollback_plan(ssh, result.snapshot_id)
        apply_changeset(ssh, Changeset(ssh.host_label, (rollback,)), reason="rollback")
    assert on_console(host, system_units).split() == ["active", "enabled", "enabled"]
    assert cons.run("docker -H unix:///var/run/docker.sock version").ok


@pytest.mark.docker
def test_back_to_userns_remap_removes_admins_rootless_unit_and_rollback_restores_it(
    make_lab_hosts: MakeLabHosts, lab_ssh_config: Path
) -> None:
    """Choosing a rootful mode after rootless stops admin's rootless engine and removes its
    user unit and DOCKER_HOST snippet; the system engine is on again, now and at boot. The
    lingering hostwiz turned on for the engine is off again (a rollback turns it on).
    A real container under the rootless engine: the audit lists it under that engine with the
    container rules, and the preview of the rootful mode says it stops."""
    (host,) = make_lab_hosts(1, docker=True, init="systemd")
    user_unit = "systemctl --user -M admin@ is-active docker-rootless-admin; true"
    lingers = "test -e /var/lib/systemd/linger/admin"
    files = ("/etc/systemd/user/docker-rootless-admin.service",
             "/etc/profile.d/hostwiz-docker-rootless-admin.sh")  # fmt: skip
    assert not console(host).run(lingers).ok, "admin lingers already"
    with connect(host, lab_ssh_config) as ssh:
        rootless = apply(ssh, [hardened("docker", "docker.mode=rootless",
                                        "docker.rootless_user=admin")])  # fmt: skip
        assert rootless.confirmed, rootless.message
        assert console(host).run(lingers).ok
        run_as_admin(host, f"docker import --change 'CMD [\"/bin/sh\"]' - {IMAGE}",
                     stdin=busybox_rootfs())  # fmt: skip
        run_as_admin(host, f"docker run -d --name rootless-box {IMAGE} sleep 600")
        audit = subprocess.run([sys.executable, "-m", "hostwiz", "audit", "--host", host.name,
                                "--json"], capture_output=True, text=True, timeout=180,
                               check=False)  # fmt: skip
        report = json.loads(audit.stdout)
        (row,) = [row for row in report["containers"] if row["name"] == "rootless-box"]
        assert row["engine"] == "admin's rootless engine", row
        assert row["cells"]["user"] == {"value": "root (image default)", "risky": True}
        (engine,) = [e for e in report["engines"] if e["rootless"]]
        assert (engine["user"], engine["running"], engine["containers"]) == ("admin", True, 1)
        box = "rootless-box (admin's rootless engine)"  # how findings name it
        rules = {f["id"]: f for f in report["findings"] if f["subject"] == box}
        assert {"container.root-user", "container.capabilities-kept"} <= set(rules), rules
        assert {f["engine"] for f in rules.values()} == {"admin's rootless engine"}
        assert "root in a container is admin on the host" in rules["container.root-user"]["meaning"]
        shown = as_text(render_changeset(preview(ssh, [hardened("docker")])[0]))
        assert "hostwiz also turns off the lingering it turned on for that engine" in shown
        assert "the 1 container(s) running under it stop" in shown
        back = apply(ssh, [hardened("docker")])
        assert back.confirmed, back.message
        assert on_console(host, user_unit).strip() != "active"
        assert not console(host).run(lingers).ok
        for path in files:
            assert not console(host).run(f"test -e {path}").ok, path
        units = "systemctl is-active docker.service; systemctl is-enabled docker.service"
        assert on_console(host, units).split() == ["active", "enabled"]
        assert preview(ssh, [hardened("docker")])[0].empty

        apply_changeset(ssh, Changeset(ssh.host_label, (rollback_plan(ssh, back.snapshot_id),)),
                        reason="rollback")  # fmt: skip
        assert on_console(host, user_unit).strip() == "active"
        assert console(host).run(lingers).ok
        for path in files:
            assert console(host).run(f"test -e {path}").ok, path


def test_cli_refuses_ssh_socket_for_a_topology(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="hostwiz")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", "up", "--topology", "router", "--ssh-socket"])
    assert args.init == "systemd"  # like the VMs users have
    assert run_lab(args) == 1
    assert "--ssh-socket is for lone hosts" in capsys.readouterr().err


def test_a_reboot_from_inside_boots_the_host_again(make_lab_hosts: MakeLabHosts) -> None:
    (host,) = make_lab_hosts(1, docker=False, init="systemd")
    console(host).run("systemctl reboot")

    def current() -> LabHost:
        return next(h for h in lab_list() if h.name == host.name)

    # `lab ls` (lab_list) follows the host to its new PID 1.
    assert wait_until(lambda: current().init_pid != host.init_pid and host_running(current()), 60)
    again = current()
    assert on_console(again, "cat /proc/1/comm").strip() == "systemd"
    assert wait_for(again.console(), "systemctl is-active -q ssh", 60)


def test_a_host_that_fails_to_come_back_stays_listed_for_lab_down(
    make_lab_hosts: MakeLabHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    (host,) = make_lab_hosts(1, docker=False, init="sysv")
    monkeypatch.setattr(hosts, "BOOT_TIMEOUT", 0.0)  # no boot is quick enough
    with pytest.raises(LabError, match="did not finish starting"):
        lab_reboot([host.name])
    # Listed still, so whoever made it (here the fixture) finds it and takes it down.
    assert host.name in [h.name for h in lab_list()]
