"""Practice hosts: real outcomes, checked from the machine, over SSH and on the console."""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from lab import (
    LabHost,
    console,
    host_running,
    hosts,
    import_test_image,
    lab_down,
    lab_list,
    lab_paths,
    lab_up,
    procs,
    requirements,
    sshfiles,
)
from lab.cli import add_lab_parser, run_lab
from lab.hosts import managed_elsewhere
from lab.network import host_mac
from lab.paths import BRIDGE, RUN_ROOT, LabPaths
from wizard.errors import LabError

MakeLabHosts = Callable[..., list[LabHost]]


# --- helpers -------------------------------------------------------------------------------


def ssh(
    host: LabHost, command: str, *, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on ``host`` exactly as a person would: ssh -F <lab ssh_config> NAME."""
    target = f"{user}@{host.name}" if user else host.name
    return subprocess.run(
        [
            "ssh", "-F", str(lab_paths().ssh_config),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
            target, command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def sh(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` on the machine itself."""
    return subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def on_console(host: LabHost, script: str) -> str:
    result = console(host).run(script, timeout=120)
    assert result.ok, f"{script!r} failed on {host.name}: {result.err}"
    return result.out


def link_exists(name: str) -> bool:
    return sh(f"ip link show dev {name}").returncode == 0


def netns_list() -> list[str]:
    return [line.split()[0] for line in sh("ip netns list").stdout.splitlines() if line]


def pids_in_pid_namespace(init_pid: int) -> list[int]:
    """Every process (seen from the machine) in the PID namespace of ``init_pid``."""
    try:
        target = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(f"/proc/{entry.name}/ns/pid").st_ino == target:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def cgroup_dirs(host: LabHost) -> list[Path]:
    """The host's cgroups as the machine sees them (every hierarchy is mounted here)."""
    mounted = {"name=systemd": "systemd", "cgroup2": "unified"}
    dirs = []
    for line in (host.state_dir / "cgroups").read_text().splitlines():
        controllers, rel = line.split()
        dirs.append(
            Path("/sys/fs/cgroup") / mounted.get(controllers, controllers) / rel.lstrip("/")
        )
    return dirs


# --- whole life cycle ----------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.docker
def test_lab_down_leaves_nothing(make_lab_hosts: MakeLabHosts) -> None:
    (host,) = make_lab_hosts(1, docker=True)
    paths = lab_paths()
    # Give dockerd something to leave behind: a container's cgroups and a network.
    import_test_image(host)
    on_console(host, "docker run -d --name keep hostwiz/busybox:latest sleep 600")

    pids = {pid: procs.start_time(pid) for pid in pids_in_pid_namespace(host.init_pid)}
    cgroups = cgroup_dirs(host)
    assert host.name in netns_list()
    assert link_exists(host.veth) and link_exists(BRIDGE)
    assert len(pids) >= 4  # tini, sleep, sshd, dockerd, containerd, the container...
    assert all(d.is_dir() for d in cgroups)
    assert any((d / "docker").is_dir() for d in cgroups)
    assert host.name in sshfiles.configured_names(paths)
    assert host.name in paths.known_hosts.read_text()

    assert lab_down([host.name]) == [host.name]

    assert host.name not in netns_list()
    assert not link_exists(host.veth)
    survivors = [p for p, started in pids.items() if procs.start_time(p) == started]
    assert not survivors, "host processes survived"
    assert not host_running(host)
    assert not host.state_dir.exists()
    assert not any(d.exists() for d in cgroups), "cgroups left behind"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(host.state_dir) not in mounts
    assert host.name not in sshfiles.configured_names(paths)
    assert host.name not in paths.ssh_config.read_text()
    known = paths.known_hosts.read_text()
    assert host.name not in known and f"{host.address}," not in known
    assert host.name not in [h.name for h in lab_list()]
    if not RUN_ROOT.exists():  # no host of anyone's left: the bridge must be gone too
        assert not link_exists(BRIDGE)


@pytest.mark.lab
def test_lab_up_skips_used_names_and_addresses(make_lab_hosts: MakeLabHosts) -> None:
    first = make_lab_hosts(1, docker=False)
    second = make_lab_hosts(2, docker=False)
    names = [h.name for h in first + second]
    prefix = names[0][:-1]
    assert names == [f"{prefix}1", f"{prefix}2", f"{prefix}3"]
    assert len({h.address for h in first + second}) == 3
    assert len({h.address6 for h in first + second}) == 3
    assert all(h.address.startswith("10.213.0.") for h in first + second)


@pytest.mark.lab
def test_a_host_that_fails_to_boot_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for script in hosts.SCRIPTS.glob("*.sh"):
        shutil.copy(script, tmp_path / script.name)
    (tmp_path / "setup.sh").write_text("echo 'no disk for you' >&2\nexit 3\n")
    monkeypatch.setattr(hosts, "SCRIPTS", tmp_path)
    prefix = f"t{secrets.token_hex(2)}-"
    with pytest.raises(LabError, match="stopped while starting") as info:
        lab_up(1, prefix, docker=False)
    assert "no disk for you" in info.value.details
    name = f"{prefix}1"
    assert name not in netns_list()
    assert not (RUN_ROOT / name).exists()
    assert not list(Path("/sys/fs/cgroup/cpu").glob(f"**/hostwiz-lab-{name}"))
    assert name not in sshfiles.configured_names(lab_paths())


@pytest.mark.lab
def test_lab_down_without_names_leaves_hosts_of_running_sessions() -> None:
    """Another engineer's `lab down` must not pull hosts from under a running test session."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    prefix = f"t{secrets.token_hex(2)}-"
    name = f"{prefix}1"
    session = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys; from lab import lab_up; "
            f"lab_up(1, {prefix!r}, docker=False, init='sysv'); print('up', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    try:
        assert session.stdout is not None
        assert session.stdout.readline().strip() == "up"
        (host,) = [h for h in lab_list() if h.name == name]
        assert managed_elsewhere(host)  # so `lab down` without names leaves it alone
        session.communicate(timeout=60)  # the session ends (without taking its host down)
        assert not managed_elsewhere(host)
        assert lab_down([name]) == [name]
    finally:
        if session.poll() is None:
            session.kill()
            session.wait(timeout=60)
        if name in {h.name for h in lab_list()}:
            lab_down([name])


# --- what a person logging in sees ---------------------------------------------------------


@pytest.mark.lab
def test_ssh_with_lab_config_reaches_the_host(lab_host: LabHost) -> None:
    result = ssh(lab_host, "hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == lab_host.name


@pytest.mark.lab
def test_admin_can_sudo_with_its_password(lab_host: LabHost) -> None:
    result = ssh(
        lab_host,
        f"id -nG; printf '%s\\n' '{lab_host.admin_password}' | sudo -S -p '' id -u",
        user="admin",
    )
    assert result.returncode == 0, result.stderr
    groups, uid = result.stdout.split("\n")[:2]
    assert "sudo" in groups.split()
    assert uid == "0"
    assert "unable to resolve host" not in result.stderr

    wrong = ssh(lab_host, "sudo -k; echo wrong-password | sudo -S -p '' id -u", user="admin")
    assert wrong.returncode != 0


@pytest.mark.lab
def test_host_has_its_own_identity(lab_host: LabHost) -> None:
    assert on_console(lab_host, "hostname").strip() == lab_host.name
    assert on_console(lab_host, "cat /proc/1/comm").strip() == "tini"
    interfaces = set(on_console(lab_host, "ls /sys/class/net").split())
    assert {"lo", "eth0"} <= interfaces
    assert BRIDGE not in interfaces
    # Fixed MACs, so neighbours' caches stay right when addresses are reused.
    assert host_mac(lab_host.number) in on_console(lab_host, "cat /sys/class/net/eth0/address")
    addresses = on_console(lab_host, "ip -o addr show dev eth0")
    assert f"{lab_host.address}/24" in addresses and f"{lab_host.address6}/64" in addresses
    # Fresh host keys, not copies of the machine's.
    inside = on_console(lab_host, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
    machine = sh("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
    assert inside.startswith("SHA256:")
    assert not machine or inside != machine[1]


@pytest.mark.lab
def test_root_logs_in_to_a_fresh_debian_shell(lab_host: LabHost) -> None:
    """Root's start-up files are Debian's own, not the machine's (seen through the /root
    overlay): an SSH session runs none of the machine's tools, and python3 is Debian's."""
    for name in ("bashrc", "profile"):
        same = ssh(lab_host, f"cmp /usr/share/base-files/dot.{name} /root/.{name}")
        assert same.returncode == 0, same.stdout + same.stderr
    session = ssh(lab_host, 'echo "$PATH"; command -v python3')
    assert session.stdout.split() == [
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/usr/bin/python3"
    ]  # fmt: skip


@pytest.mark.lab
def test_writes_inside_stay_inside(lab_host: LabHost) -> None:
    marker = f"hostwiz-lab-test-{secrets.token_hex(4)}"
    for directory in ("/etc", "/var", "/srv", "/home", "/root", "/tmp", "/usr/local/sbin"):
        on_console(lab_host, f"echo inside > {directory}/{marker}")
        assert on_console(lab_host, f"cat {directory}/{marker}").strip() == "inside"
        assert not Path(directory, marker).exists(), f"{directory} write reached the machine"
    # What provisioning changed exists only inside.
    assert "admin:" in on_console(lab_host, "grep ^admin: /etc/passwd")
    assert sh("grep -q ^admin: /etc/passwd").returncode != 0
    machine_init = Path("/etc/init.d/docker").read_text()
    assert "ulimit -n" in machine_init, "the machine's docker init script was changed"
    assert "ulimit -n" not in on_console(lab_host, "cat /etc/init.d/docker")


@pytest.mark.lab
def test_user_namespaces_can_mount_proc(any_lab_host: LabHost) -> None:
    """What rootless Docker and userns-remap need: the kernel lets a user namespace mount proc
    though /proc/sys is read-only (a fully visible proc instance stays mounted, out of sight)."""
    out = on_console(
        any_lab_host, "su - admin -c 'unshare -Urmpf --mount-proc cat /proc/self/stat'"
    )
    assert out.split()[0] == "1"


@pytest.mark.lab
def test_proc_sys_is_read_only_except_net(any_lab_host: LabHost) -> None:
    # Each write puts back the current value: nothing changes even if protection failed.
    for name in ("kernel/dmesg_restrict", "vm/swappiness", "fs/file-max"):
        kernel = console(any_lab_host).run(f"cat /proc/sys/{name} > /proc/sys/{name}")
        assert not kernel.ok and "Read-only" in kernel.err, name
    net = console(any_lab_host).run(
        "cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward"
    )
    assert net.ok, net.err
    # What rootless Docker and userns-remap read.
    assert on_console(any_lab_host, "cat /proc/sys/user/max_user_namespaces").strip().isdigit()


# --- Docker --------------------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.docker
def test_dockerd_answers_and_test_image_runs(lab_host: LabHost) -> None:
    info = on_console(lab_host, "docker info --format '{{.ServerVersion}} {{.Driver}}'")
    assert info.split()[1] == "overlay2"
    import_test_image(lab_host)
    out = on_console(lab_host, "docker run --rm hostwiz/busybox:latest echo hi")
    assert out.strip() == "hi"
    # Over SSH too, as the wizard will use it.
    result = ssh(lab_host, "docker run --rm hostwiz/busybox:latest hostname")
    assert result.returncode == 0, result.stderr


@pytest.mark.lab
def test_no_docker_host_has_docker_installed_but_stopped(make_lab_hosts: MakeLabHosts) -> None:
    (host,) = make_lab_hosts(1, docker=False)
    assert console(host).run("docker info").exit_code != 0
    assert on_console(host, "command -v dockerd").strip()


# --- the lab network -----------------------------------------------------------------------


@pytest.mark.lab
def test_two_hosts_reach_each_other(make_lab_hosts: MakeLabHosts) -> None:
    a, b = make_lab_hosts(2, docker=False)
    for address in (b.address, b.address6):
        banner = on_console(a, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/22; head -c 8 <&3'")
        assert banner.startswith("SSH-2.0"), address
    banner = on_console(b, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{a.address}/22; head -c 8 <&3'")
    assert banner.startswith("SSH-2.0")


# --- listing and the command line ----------------------------------------------------------


def _cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="hostwiz")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    with redirect_stdout(out):
        status = run_lab(parser.parse_args(list(argv)))
    return status, out.getvalue()


@pytest.mark.lab
def test_lab_ls_shows_ssh_command_and_password(lab_host: LabHost) -> None:
    assert lab_host.name in [h.name for h in lab_list()]
    status, out = _cli("lab", "ls", "--json")
    assert status == 0
    entry = next(e for e in json.loads(out) if e["name"] == lab_host.name)
    assert entry["address"] == lab_host.address
    assert entry["admin_password"] == lab_host.admin_password
    assert entry["ssh"] == f"ssh -F {lab_paths().ssh_config} {lab_host.name}"
    assert entry["running"] is True
    status, out = _cli("lab", "ls")
    assert status == 0 and lab_host.name in out and lab_host.admin_password in out


@pytest.mark.lab
def test_lab_shell_execs_a_login_shell_in_the_host(
    lab_host: LabHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda prog, argv: calls.append(list(argv)))
    status, _ = _cli("lab", "shell", lab_host.name)
    assert status == 0
    (argv,) = calls
    assert argv[:4] == ["nsenter", "-t", str(lab_host.init_pid), "-a"]
    assert argv[4:8] == ["setpriv", "--bounding-set", "-sys_time,-wake_alarm,-sys_module", "--"]
    assert argv[-1].endswith("exec /bin/bash -l")


@pytest.mark.lab
def test_lab_shell_runs_a_command_inside_the_host(lab_host: LabHost) -> None:
    def shell(*command: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "hostwiz", "lab", "shell", lab_host.name, "--", *command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    inside = shell("sh", "-c", 'echo "$(hostname) $(id -un)"')
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split() == [lab_host.name, "root"]
    assert shell("false").returncode == 1  # the command's own status


_CAP_SYS_MODULE, _CAP_SYS_TIME, _CAP_WAKE_ALARM = 16, 25, 35


@pytest.mark.lab
def test_the_console_cannot_set_the_machines_clock_or_load_modules(lab_host: LabHost) -> None:
    """nsenter alone keeps this machine's bounding set: a `date -s` typed at a practice host's
    console would set the machine's clock. The console drops what the host's PID 1 dropped."""
    argv = [sys.executable, "-m", "hostwiz", "lab", "shell", lab_host.name, "--",
            "grep", "^CapBnd", "/proc/self/status"]  # fmt: skip
    shown = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    shell_set = int(shown.stdout.split()[1], 16)
    result = console(lab_host).run("grep ^CapBnd /proc/self/status")
    transport_set = int(result.stdout.decode().split()[1], 16)
    for bounding in (shell_set, transport_set):
        for capability in (_CAP_SYS_MODULE, _CAP_SYS_TIME, _CAP_WAKE_ALARM):
            assert not bounding & (1 << capability), hex(bounding)
        assert bounding & (1 << 21)  # CAP_SYS_ADMIN stays: the console is still root's


@pytest.mark.lab
def test_lab_down_refuses_unknown_names() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with pytest.raises(LabError, match="No practice host named"):
        lab_down([f"nohost-{secrets.token_hex(3)}"])


# --- without root or packages (no practice host needed) ------------------------------------


def test_lab_up_without_root_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="root") as info:
        lab_up(1, "nobody")
    assert "sudo" in info.value.hint


def test_missing_program_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real = requirements._present
    monkeypatch.setattr(requirements, "_present", lambda p: p != "/usr/bin/tini" and real(p))
    with pytest.raises(LabError) as info:
        requirements.check_requirements(docker=False)
    assert "tini (package tini)" in info.value.message
    assert info.value.hint == "Install them with: apt-get install tini"


def test_docker_packages_only_needed_with_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    real = requirements._present
    monkeypatch.setattr(requirements, "_present", lambda p: p != "dockerd" and real(p))
    assert "dockerd" not in requirements.missing(docker=False)
    assert requirements.missing(docker=True).get("dockerd") == "docker.io"


def test_ssh_files_add_and_remove_entries(tmp_path: Path) -> None:
    paths = LabPaths(
        root=tmp_path,
        key=tmp_path / "id_ed25519",
        public_key=tmp_path / "id_ed25519.pub",
        ssh_config=tmp_path / "ssh_config",
        known_hosts=tmp_path / "known_hosts",
        lock=tmp_path / ".lock",
    )

    def host(name: str, number: int) -> LabHost:
        return LabHost(
            name=name,
            address=f"10.213.0.{number}",
            address6=f"fd00:213::{number}",
            init_pid=1,
            state_dir=tmp_path / name,
            admin_password="pw",
            number=number,
            veth=f"hwlv{number}",
            docker=False,
            init_start=1,
            launcher_pid=1,
            launcher_start=1,
            owner=str(tmp_path),
            created=0.0,
        )

    keys = ["ssh-ed25519 AAAAkey1 root@x", "ecdsa-sha2-nistp256 AAAAkey2 root@x"]
    sshfiles.add_host(paths, host("a1", 10), keys)
    sshfiles.add_host(paths, host("a2", 11), keys)
    paths.known_hosts.write_text(paths.known_hosts.read_text() + "other.example ssh-rsa AAAA\n")
    config = paths.ssh_config.read_text()
    assert "Host a1\n    HostName 10.213.0.10\n    User root\n" in config
    assert f"IdentityFile {paths.key}" in config and "IdentitiesOnly yes" in config
    assert f"UserKnownHostsFile {paths.known_hosts}" in config
    assert "10.213.0.10,a1,fd00:213::10 ssh-ed25519 AAAAkey1\n" in paths.known_hosts.read_text()
    assert sshfiles.configured_names(paths) == ["a1", "a2"]

    sshfiles.remove_hosts(paths, ["a1"])
    assert sshfiles.configured_names(paths) == ["a2"]
    known = paths.known_hosts.read_text()
    assert "a1" not in known and "a2" in known and "other.example" in known
    assert (paths.ssh_config.stat().st_mode & 0o777) == 0o600


@pytest.mark.lab
def test_writes_outside_the_hosts_own_trees_never_reach_the_machine(lab_host: LabHost) -> None:
    """A step's mount point (/mnt/share), a folder at the top, a file in /usr: the first lands
    in the host's own overlay, the others fail inside the host; none shows on the machine."""
    tag = secrets.token_hex(4)
    inside = console(lab_host).run(
        f"mkdir -p /mnt/hw-{tag} /opt/hw-{tag} /media/hw-{tag} && echo made; "
        f"mkdir /hw-{tag} 2>&1; touch /usr/bin/hw-{tag} 2>&1; true"
    )
    said = inside.stdout.decode()
    assert said.startswith("made"), said
    assert said.count("Read-only file system") == 2, said
    for path in (f"/mnt/hw-{tag}", f"/opt/hw-{tag}", f"/media/hw-{tag}", f"/hw-{tag}",
                 f"/usr/bin/hw-{tag}"):  # fmt: skip
        assert not os.path.exists(path), f"{path} reached the machine"
