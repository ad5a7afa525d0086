"""The Docker engine step and the apply transaction on real practice hosts with real dockerd."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from lab.image import DEFAULT_TAG as IMAGE
from lab.image import busybox_rootfs
from presets import apply_overrides, load_preset
from snapshots.rollback import rollback_plan
from snapshots.store import list_snapshots
from wizard.actions import RunCommand, WriteFile
from wizard.audit import audit
from wizard.docker_api import docker_client
from wizard.errors import ApplyFailed, PlanConflict
from wizard.facts import gather
from wizard.host.docker import WAIT_FOR_DOCKER, restart_dockerd
from wizard.plan import Changeset, Plan
from wizard.render import as_text, render_plan
from wizard.session import Selection, apply, preview
from wizard.steps import STEPS
from wizard.steps.base import Status
from wizard.steps.docker import DOCKER_ENGINE
from wizard.transaction import HealthCheck, apply_changeset
from wizard.transport.base import CommandResult, shell_quote
from wizard.transport.local import LocalTransport
from wizard.transport.ssh import SshTransport

pytestmark = [pytest.mark.lab, pytest.mark.docker]


def selections(*overrides: str) -> list[Selection]:
    """The docker step of the hardened preset (the shared host's sshd is left alone)."""
    preset = apply_overrides(load_preset("hardened"), list(overrides))
    return [Selection(STEPS["docker"], preset.answers["docker"])]


def security_options(
    console: LocalTransport, socket: str = "/var/run/docker.sock", user: str | None = None
) -> list[str]:
    client = docker_client(console, socket_path=socket, run_as=user)
    try:
        return [str(option) for option in client.info()["SecurityOptions"]]
    finally:
        client.close()


def as_admin(console: LocalTransport, script: str, stdin: bytes = b"") -> CommandResult:
    """``script`` in a login shell of admin (DOCKER_HOST from hostwiz's profile snippet)."""
    return console.run(f"su - admin -c {shell_quote(script)}", stdin=stdin, timeout=120)


def read(console: LocalTransport, path: str) -> bytes:
    result = console.run(f"cat {path}")
    assert result.ok, result.err
    return result.stdout


def stat(console: LocalTransport, path: str) -> str:
    return console.run(f"stat -c '%a %U %G' {path}").out.strip()


@pytest.fixture
def ssh(lab_host, lab_ssh_config) -> Iterator[SshTransport]:
    transport = SshTransport.connect(lab_host.name, ssh_config=lab_ssh_config)
    yield transport
    transport.close()


@pytest.fixture
def console(lab_host) -> LocalTransport:
    return lab_host.console()


@pytest.fixture
def pristine(console) -> Iterator[None]:
    """Every test here starts from Docker's defaults and leaves them behind."""
    before = console.run("cat /etc/docker/daemon.json 2>/dev/null; getent passwd dockremap").out
    assert before == "", "the practice host is not in its default Docker state"
    yield
    console.run(
        "rm -f /etc/docker/daemon.json; userdel dockremap 2>/dev/null; groupdel dockremap "
        "2>/dev/null; sed -i '/^dockremap:/d' /etc/subuid /etc/subgid; "
        "/etc/init.d/docker restart >/dev/null 2>&1\n" + WAIT_FOR_DOCKER
    )


def test_userns_remap_goes_live_and_a_second_apply_plans_nothing(ssh, console, pristine):
    assert not any(o.startswith("name=userns") for o in security_options(console))
    result = apply(ssh, selections())
    assert result.confirmed and result.snapshot_id

    assert any(o.startswith("name=userns") for o in security_options(console))
    config = json.loads(read(console, "/etc/docker/daemon.json"))
    assert config["userns-remap"] == "default" and config["icc"] is False
    assert b"dockremap:" in read(console, "/etc/subuid")
    journal = read(console, f"/var/lib/hostwiz/snapshots/{result.snapshot_id}/journal").decode()
    assert journal.rstrip().endswith("confirmed")
    assert "armed" in journal

    changeset, _ = preview(ssh, selections())
    assert changeset.empty

    # Roll back: the file is gone, the remap user too, and the engine runs without remapping.
    plan = rollback_plan(ssh, result.snapshot_id)
    assert not plan.empty
    apply_changeset(ssh, Changeset(ssh.host_label, (plan,)), reason="rollback")
    assert not console.run("test -e /etc/docker/daemon.json").ok
    assert not console.run("getent passwd dockremap").ok
    assert not any(o.startswith("name=userns") for o in security_options(console))
    assert rollback_plan(ssh, result.snapshot_id).empty  # rolling back twice is harmless


def test_the_shared_dockerd_restart_starts_a_stopped_dockerd_on_an_init_script_host(console):
    """Debian's /etc/init.d/docker restart ends early when dockerd is stopped (set -e and a
    missing pid file); the restart every step shares starts it, as systemctl restart would."""
    stopped = console.run("/etc/init.d/docker stop >/dev/null 2>&1; docker info >/dev/null 2>&1")
    try:
        assert not stopped.ok, "dockerd still answers after its init script stopped it"
        restarted = console.run(restart_dockerd("sysv").script, timeout=120)
        assert restarted.ok, restarted.out + restarted.err
        assert console.run("docker info >/dev/null 2>&1").ok
    finally:
        console.run("/etc/init.d/docker start >/dev/null 2>&1\n" + WAIT_FOR_DOCKER, timeout=120)


def test_a_daemon_json_dockerd_rejects_never_stays_live(ssh, console, pristine):
    good = b'{\n  "log-level": "info"\n}\n'
    console.run("mkdir -p /etc/docker && cat > /etc/docker/daemon.json && chmod 640 "
                "/etc/docker/daemon.json && /etc/init.d/docker restart >/dev/null\n"
                + WAIT_FOR_DOCKER, stdin=good)  # fmt: skip
    # "bip" has the right type, so only dockerd itself can tell it is nonsense: a planner
    # gap of exactly this kind is what the transaction has to survive.
    bad = WriteFile("/etc/docker/daemon.json", b'{"bip": "not-a-network"}\n', 0o644)
    restart = restart_dockerd("sysv")
    plan = Plan("docker", (bad, restart))
    answers = selections()[0].answers
    facts_for_check = preview(ssh, selections())[1]
    with pytest.raises(ApplyFailed) as caught:
        apply_changeset(ssh, Changeset(ssh.host_label, (plan,)),
                        [HealthCheck(DOCKER_ENGINE, answers, facts_for_check)])  # fmt: skip
    assert "undone" in caught.value.message
    assert read(console, "/etc/docker/daemon.json") == good
    assert stat(console, "/etc/docker/daemon.json") == "640 root root"
    assert console.run("timeout 10 docker -H unix:///var/run/docker.sock info >/dev/null").ok
    snapshot = list_snapshots(ssh)[-1]
    assert snapshot.reverted


def test_the_health_check_asks_dockerd_over_the_connections_own_shell(
    ssh, console, pristine, monkeypatch
):
    """No SSH channel of its own (the SDK's ``docker system dial-stdio``): after an apply that
    would be a second sshd session (a fork, PAM, a login shell) competing with the
    confirmation's new login. The check still tells each wrong state."""

    def no_channel(script: str) -> object:
        raise AssertionError(f"the health check opened a channel for {script!r}")

    monkeypatch.setattr(ssh, "open_stream", no_channel)
    remap = selections()[0].answers
    rootful = replace(remap, mode="rootful")
    facts = preview(ssh, selections())[1]
    assert DOCKER_ENGINE.health(ssh, remap, facts) == [
        "dockerd runs, but without user-namespace remapping"
    ]
    assert DOCKER_ENGINE.health(ssh, rootful, facts) == []
    assert console.run("/etc/init.d/docker stop >/dev/null 2>&1; true").ok
    try:
        problems = DOCKER_ENGINE.health(ssh, rootful, facts)
    finally:
        console.run("/etc/init.d/docker start >/dev/null 2>&1\n" + WAIT_FOR_DOCKER)
    assert len(problems) == 1 and problems[0].startswith("dockerd does not answer through its API")


def test_a_failing_action_halfway_undoes_the_ones_before(ssh, console):
    console.run("printf 'keep\\n' > /etc/hostwiz-half; chmod 600 /etc/hostwiz-half")
    plan = Plan("demo", (
        WriteFile("/etc/hostwiz-half", b"changed\n", 0o644),
        WriteFile("/srv/hostwiz-new/file", b"new\n"),
        RunCommand("touch /tmp/hostwiz-ran", undo="rm -f /tmp/hostwiz-ran"),
        RunCommand("echo nope >&2; exit 3", why="a step that fails"),
        WriteFile("/etc/hostwiz-never", b"never\n"),
    ))  # fmt: skip
    with pytest.raises(ApplyFailed) as caught:
        apply_changeset(ssh, Changeset(ssh.host_label, (plan,)))
    assert "a step that fails failed with exit status 3: nope" in caught.value.message
    assert read(console, "/etc/hostwiz-half") == b"keep\n"
    assert stat(console, "/etc/hostwiz-half") == "600 root root"
    assert not console.run("test -e /srv/hostwiz-new").ok
    assert not console.run("test -e /tmp/hostwiz-ran").ok
    assert not console.run("test -e /etc/hostwiz-never").ok
    console.run("rm -f /etc/hostwiz-half")


def test_rollback_restores_bytes_mode_and_owner(ssh, console):
    original = bytes(range(256)) + b"\nend\n"
    console.run("cat > /etc/hostwiz-sample && chown admin:adm /etc/hostwiz-sample && "
                "chmod 0640 /etc/hostwiz-sample", stdin=original)  # fmt: skip
    plan = Plan("demo", (WriteFile("/etc/hostwiz-sample", b"replaced\n", 0o600, "root", "root"),))
    result = apply_changeset(ssh, Changeset(ssh.host_label, (plan,)))
    assert read(console, "/etc/hostwiz-sample") == b"replaced\n"
    rollback = rollback_plan(ssh, result.snapshot_id)
    apply_changeset(ssh, Changeset(ssh.host_label, (rollback,)), reason="rollback")
    assert read(console, "/etc/hostwiz-sample") == original
    assert stat(console, "/etc/hostwiz-sample") == "640 admin adm"
    console.run("rm -f /etc/hostwiz-sample")


def test_a_private_key_put_back_is_never_shown(ssh, console):
    key = b"-----BEGIN PRIVATE KEY-----\nMIIsecretmaterial\n-----END PRIVATE KEY-----\n"
    console.run("cat > /etc/hostwiz-key.pem && chmod 0600 /etc/hostwiz-key.pem", stdin=key)
    plan = Plan("demo", (WriteFile("/etc/hostwiz-key.pem", b"new\n", 0o600, secret=True),))
    result = apply_changeset(ssh, Changeset(ssh.host_label, (plan,)))
    rollback = rollback_plan(ssh, result.snapshot_id)
    text = as_text(render_plan(rollback))
    assert "/etc/hostwiz-key.pem" in text and b"secretmaterial".decode() not in text
    apply_changeset(ssh, Changeset(ssh.host_label, (rollback,)), reason="rollback")
    assert read(console, "/etc/hostwiz-key.pem") == key
    console.run("rm -f /etc/hostwiz-key.pem")


def test_the_console_restore_script_works_without_hostwiz(ssh, console):
    plan = Plan("demo", (WriteFile("/etc/hostwiz-console", b"x\n"),))
    result = apply_changeset(ssh, Changeset(ssh.host_label, (plan,)))
    out = console.run("/var/lib/hostwiz/restore LAST")
    assert out.ok, out.err
    assert f"restored snapshot {result.snapshot_id}" in out.out
    assert not console.run("test -e /etc/hostwiz-console").ok
    assert result.snapshot_id in console.run("/var/lib/hostwiz/restore").out


def test_a_read_only_disk_changes_nothing(ssh, console):
    console.run("mkdir -p /srv/ro && printf 'before\\n' > /srv/ro/file && "
                "mount --bind /srv/ro /srv/ro && mount -o remount,bind,ro /srv/ro")  # fmt: skip
    try:
        plan = Plan("demo", (WriteFile("/etc/hostwiz-ro-first", b"1\n"),
                             WriteFile("/srv/ro/file", b"after\n")))  # fmt: skip
        with pytest.raises(ApplyFailed) as caught:
            apply_changeset(ssh, Changeset(ssh.host_label, (plan,)))
        assert "Read-only file system" in caught.value.message
        assert read(console, "/srv/ro/file") == b"before\n"
        assert console.run("ls -A /srv/ro").out.split() == ["file"]  # no temp file left
        assert not console.run("test -e /etc/hostwiz-ro-first").ok
    finally:
        console.run("umount /srv/ro; rm -rf /srv/ro /etc/hostwiz-ro-first")


def test_a_full_disk_changes_nothing(ssh, console):
    console.run("mkdir -p /srv/full && mount -t tmpfs -o size=64k tmpfs /srv/full && "
                "printf 'small\\n' > /srv/full/file")  # fmt: skip
    try:
        plan = Plan("demo", (WriteFile("/srv/full/file", b"x" * 200_000),))
        with pytest.raises(ApplyFailed) as caught:
            apply_changeset(ssh, Changeset(ssh.host_label, (plan,)))
        assert "No space left" in caught.value.message
        assert read(console, "/srv/full/file") == b"small\n"
        assert console.run("ls -A /srv/full").out.split() == ["file"]
    finally:
        console.run("umount /srv/full; rmdir /srv/full")


def test_an_invalid_daemon_json_is_explained_and_kept(ssh, console, pristine):
    console.run("mkdir -p /etc/docker && printf '{ \"icc\": false,, }' > /etc/docker/daemon.json")
    try:
        with pytest.raises(PlanConflict) as caught:
            preview(ssh, selections())
        assert "not valid JSON" in caught.value.message and "line 1" in caught.value.message
        assert "replace_invalid_config" in caught.value.hint
        assert read(console, "/etc/docker/daemon.json") == b'{ "icc": false,, }'
        changeset, _ = preview(ssh, selections("docker.replace_invalid_config=true"))
        assert any("not valid JSON" in w for w in changeset.plans[0].warnings)
    finally:
        console.run("rm -f /etc/docker/daemon.json")


def test_rootless_mode_for_admin(ssh, console):
    chosen = selections("docker.mode=rootless", "docker.rootless_user=admin")
    result = apply(ssh, chosen)
    try:
        assert result.confirmed
        uid = console.run("id -u admin").out.strip()
        options = security_options(console, f"/run/user/{uid}/docker.sock", user="admin")
        assert any(o.startswith("name=rootless") for o in options)
        env = console.run("su - admin -c 'echo $DOCKER_HOST'").out.strip()
        assert env == f"unix:///run/user/{uid}/docker.sock"
        assert preview(ssh, chosen)[0].empty
        # A real container under it: root in it is admin on the host. (runc used to fail
        # here on the lab's sysv hosts, on the machine's stale name=systemd mount.)
        imported = as_admin(console, f"docker import --change 'CMD [\"/bin/sh\"]' - {IMAGE}",
                            stdin=busybox_rootfs())  # fmt: skip
        assert imported.ok, imported.err
        ran = as_admin(console, f"docker run --rm {IMAGE} cat /proc/self/uid_map")
        assert ran.ok, ran.err
        assert ran.out.split()[:3] == ["0", uid, "1"]
        assert as_admin(console, f"docker rmi {IMAGE}").ok
    finally:
        apply_changeset(ssh, Changeset(ssh.host_label, (rollback_plan(ssh, result.snapshot_id),)),
                        reason="rollback")  # fmt: skip
    assert not console.run("test -e /etc/init.d/docker-rootless-admin").ok
    assert not console.run(f"test -S /run/user/{uid}/docker.sock").ok


ETC_LISTING = (
    "find /etc/docker /etc/systemd/system -xdev \\( -type f -o -type d \\) "
    "-printf '%p %u %g %m\\n' 2>/dev/null | sort; "
    "find /etc/docker /etc/systemd/system -xdev -type f -exec md5sum {} + 2>/dev/null | sort"
)


def test_rootless_never_writes_through_links_the_user_planted(ssh, console):
    """admin points ~/.config/docker at /etc/docker and ~/.config/systemd/user at
    /etc/systemd/system: root's configuration stays root's. The first link would keep the
    engine from starting (it keeps its key there), so it is refused before any change; the
    second does not matter without systemd, and the engine starts without going through it."""
    plant = ("rm -rf ~/.config ~/.local/share/docker && mkdir -p ~/.config/systemd && "
             "ln -s /etc/docker ~/.config/docker && "
             "ln -s /etc/systemd/system ~/.config/systemd/user")  # fmt: skip
    assert console.run("mkdir -p /etc/docker /etc/systemd/system").ok
    assert console.run(f"su admin -c '{plant}'").ok
    assert console.run("test -L /home/admin/.config/docker").ok
    before = console.run(ETC_LISTING).out
    snapshots = "ls /var/lib/hostwiz/snapshots 2>/dev/null"
    taken = console.run(snapshots).out
    chosen = selections("docker.mode=rootless", "docker.rootless_user=admin")
    result = None
    try:
        with pytest.raises(PlanConflict) as caught:
            apply(ssh, chosen)
        assert "admin cannot write ~/.config/docker, which leads to /etc/docker" in (
            caught.value.message
        )
        assert "rm ~/.config/docker" in caught.value.hint
        assert console.run(ETC_LISTING).out == before
        assert console.run(snapshots).out == taken

        assert console.run("rm /home/admin/.config/docker").ok  # as the hint says
        result = apply(ssh, chosen)
        assert result.confirmed
        uid = console.run("id -u admin").out.strip()
        options = security_options(console, f"/run/user/{uid}/docker.sock", user="admin")
        assert any(o.startswith("name=rootless") for o in options)
        config = "/etc/docker/rootless-admin.json"
        assert stat(console, config) == "644 root root"
        after = console.run(ETC_LISTING).out
        assert [line for line in after.splitlines() if config not in line] == before.splitlines()
        assert console.run("test -L /home/admin/.config/systemd/user").ok  # left as it was
    finally:
        if result is not None:
            rollback = rollback_plan(ssh, result.snapshot_id)
            apply_changeset(ssh, Changeset(ssh.host_label, (rollback,)), reason="rollback")
        console.run("rm -rf /home/admin/.config /home/admin/.local/share/docker")
    assert console.run(ETC_LISTING).out == before


def _private_tun(console: LocalTransport) -> bool:
    """True when the host's /dev/net/tun is its own node, so a chmod there cannot reach the
    machine's device: a node made on the host's own /dev tmpfs (``hwlab-dev``, see
    lab/setup.sh), or one bind-mounted from its disk, never a bind of the machine's."""
    mounts = console.run("cat /proc/self/mountinfo").out.splitlines()
    tun = [line for line in mounts if " /dev/net/tun " in line]
    if tun:
        return all("hwlab-disk" in line for line in tun)
    return any(" /dev " in line and " hwlab-dev " in line for line in mounts)


def test_rootless_explains_an_unusable_tun_before_changing_anything(ssh, console):
    if not _private_tun(console):
        pytest.skip("the practice host shares /dev/net/tun with the machine: not changing it")
    snapshots = "ls /var/lib/hostwiz/snapshots 2>/dev/null"
    before = console.run(snapshots).out
    assert console.run("chmod 0600 /dev/net/tun").ok
    try:
        with pytest.raises(PlanConflict) as caught:
            apply(ssh, selections("docker.mode=rootless", "docker.rootless_user=admin"))
        assert "admin cannot open /dev/net/tun (mode 600)" in caught.value.message
        assert "chmod 0666 /dev/net/tun" in caught.value.hint
        assert console.run(snapshots).out == before
        assert not console.run("test -e /etc/docker/rootless-admin.json").ok
        assert not console.run("test -e /etc/init.d/docker-rootless-admin").ok
    finally:
        console.run("chmod 0666 /dev/net/tun")


ROOT_DOCKERD = (
    'for p in $(pidof dockerd); do [ "$(stat -c %u /proc/$p)" = 0 ] && echo "$p"; done; true'
)
BOOT_LINKS = "ls /etc/rc2.d | grep -x 'S[0-9][0-9]docker' || true"


def test_rootless_stops_the_system_engine_and_a_rollback_starts_it_again(ssh, console):
    """Docker's rootless guide: stop and disable the system dockerd. Left running, it keeps
    Docker's defaults (container root is host root) while the step would say "done"."""
    assert console.run(ROOT_DOCKERD).out.strip(), "the practice host's dockerd is not running"
    assert console.run(BOOT_LINKS).out.strip()
    chosen = selections("docker.mode=rootless", "docker.rootless_user=admin")
    plan = preview(ssh, chosen)[0].plans[0]
    assert "stop and disable the system (root) Docker engine" in as_text(render_plan(plan))
    result = apply(ssh, chosen)
    try:
        assert result.confirmed
        assert console.run(ROOT_DOCKERD).out.strip() == ""
        assert console.run(BOOT_LINKS).out.strip() == ""  # not back at the next boot
        assert not console.run("docker -H unix:///var/run/docker.sock version").ok
        uid = console.run("id -u admin").out.strip()
        options = security_options(console, f"/run/user/{uid}/docker.sock", user="admin")
        assert any(o.startswith("name=rootless") for o in options)
        assert preview(ssh, chosen)[0].empty
        facts = gather(ssh, DOCKER_ENGINE.facts(chosen[0].answers))
        assert DOCKER_ENGINE.status(chosen[0].answers, facts).status is Status.DONE
        # the audit agrees: nothing left for this step (it read the root engine's defaults
        # while it ran: "Container root is host root" and the daemon.json settings)
        assert [f.title for f in audit(ssh) if f.fix == "docker"] == []
    finally:
        apply_changeset(ssh, Changeset(ssh.host_label, (rollback_plan(ssh, result.snapshot_id),)),
                        reason="rollback")  # fmt: skip
    assert console.run(ROOT_DOCKERD).out.strip()
    assert console.run(BOOT_LINKS).out.strip()
    assert console.run("docker -H unix:///var/run/docker.sock version").ok
    assert not console.run("test -e /etc/init.d/docker-rootless-admin").ok


def test_going_back_to_userns_remap_removes_the_rootless_engine(ssh, console, pristine):
    """A first-time admin choosing a rootful mode expects one engine answering docker: the
    rootless one hostwiz made is stopped and its files removed (its images stay); a rollback
    brings it back."""
    rootless = apply(ssh, selections("docker.mode=rootless", "docker.rootless_user=admin"))
    assert rootless.confirmed
    uid = console.run("id -u admin").out.strip()
    files = ("/etc/init.d/docker-rootless-admin", "/etc/docker/rootless-admin.json",
             "/etc/profile.d/hostwiz-docker-rootless-admin.sh")  # fmt: skip
    back = None
    try:
        chosen = selections()
        plan = preview(ssh, chosen)[0].plans[0]
        shown = as_text(render_plan(plan))
        assert "admin's rootless Docker engine (made by hostwiz earlier) is stopped" in shown
        assert "no container runs under it now" in shown  # asked over admin's own socket
        back = apply(ssh, chosen)
        assert back.confirmed
        assert not console.run(f"test -S /run/user/{uid}/docker.sock").ok
        for path in files:
            assert not console.run(f"test -e {path}").ok, path
        assert console.run("su - admin -c 'echo $DOCKER_HOST'").out.strip() == ""
        assert any(o.startswith("name=userns") for o in security_options(console))
        assert console.run(BOOT_LINKS).out.strip()
        assert preview(ssh, chosen)[0].empty

        apply_changeset(ssh, Changeset(ssh.host_label, (rollback_plan(ssh, back.snapshot_id),)),
                        reason="rollback")  # fmt: skip
        back = None
        for path in files:
            assert console.run(f"test -e {path}").ok, path
        options = security_options(console, f"/run/user/{uid}/docker.sock", user="admin")
        assert any(o.startswith("name=rootless") for o in options)
    finally:
        if back is not None:
            apply_changeset(ssh, Changeset(ssh.host_label,
                                           (rollback_plan(ssh, back.snapshot_id),)),
                            reason="rollback")  # fmt: skip
        apply_changeset(ssh, Changeset(ssh.host_label,
                                       (rollback_plan(ssh, rootless.snapshot_id),)),
                        reason="rollback")  # fmt: skip
    assert console.run(ROOT_DOCKERD).out.strip()
    assert not console.run(f"test -S /run/user/{uid}/docker.sock").ok
