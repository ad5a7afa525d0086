"""Faults of the apply transaction on real practice hosts: Debian 12's Python, symlinked
configuration files, the confirmation racing the safety timer, a restore killed halfway, two
applies at once, owners without a name, and the console's snapshot list."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from presets import apply_overrides, load_preset
from snapshots.layout import journal_path, snapshot_dir
from snapshots.local_journal import last_transaction
from snapshots.record import new_snapshot_id, record_script
from snapshots.rollback import rollback_plan
from tests.probes import wait_for
from wizard.actions import RunCommand, WriteFile
from wizard.errors import ApplyFailed
from wizard.facts import file_fact, gather
from wizard.plan import Changeset, Plan
from wizard.session import Selection, apply
from wizard.steps import STEPS
from wizard.transaction import (
    ApplyResult,
    action_script,
    apply_changeset,
    arm_script,
    disarm_script,
    journaled,
    set_deadline,
)
from wizard.transport.base import CommandResult, Transport
from wizard.transport.base import shell_quote as quote
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab

LONG = 600
"""A deadline no test reaches: the tests move it to "now" themselves when the timer must fire."""


def pause_until(go: str, started: str = "") -> str:
    """Shell that waits (bounded, 2 min) until the file ``go`` exists; touches ``started`` first."""
    first = f"touch {started}; " if started else ""
    return f"{first}i=0; while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"


@pytest.fixture
def host(make_lab_hosts):
    return make_lab_hosts(1, docker=False)[0]


@pytest.fixture
def ssh(host, lab_ssh_config) -> Iterator[SshTransport]:
    transport = SshTransport.connect(host.name, ssh_config=lab_ssh_config, connect_timeout=4)
    yield transport
    transport.close()


def demo(*actions: WriteFile | RunCommand, host: str = "demo") -> Changeset:
    return Changeset(host, (Plan("demo", tuple(actions)),))


def armed(console: Transport, changeset: Changeset, seconds: int = LONG) -> str:
    """Record, arm and apply ``changeset`` on the host as hostwiz does, without confirming."""
    snapshot_id = new_snapshot_id()
    recorded = console.run(record_script(snapshot_id, changeset) + arm_script(snapshot_id, seconds))
    assert recorded.ok, recorded.err
    for index, action in enumerate(changeset.actions()):
        script, stdin = action_script(action)
        done = console.run(journaled(script, snapshot_id, index, seconds), stdin=stdin)
        assert done.ok, done.err
    return snapshot_id


def journal(console: Transport, snapshot_id: str) -> str:
    return console.run(f"cat {journal_path(snapshot_id)}").out


def no_watchdog(snapshot_id: str) -> str:
    """True on the host once neither the timer nor a restore of the snapshot runs."""
    return (
        f"! pgrep -f 'hostwiz-watchdo[g]-{snapshot_id}' && ! pgrep -f '{snapshot_id}/restore.s[h]'"
    )


# ---- A: an error after arming (here: the local copy) ----------------------------------------


def test_a_local_copy_that_fails_after_arming_is_explained_and_undone(
    host, ssh, tmp_path, monkeypatch
):
    """On Debian 12's Python the local copy used to crash (no tar filter) after the host armed
    its timer and before the local journal was written; any such error now undoes the change."""
    console = host.console()
    state = tmp_path / "state"
    (state / "hostwiz").mkdir(parents=True)
    (state / "hostwiz" / "snapshots").write_text("a file where the folder should be")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))

    changeset = demo(WriteFile("/etc/hostwiz-a", b"applied\n"), host=host.name)
    with pytest.raises(ApplyFailed) as caught:
        apply_changeset(ssh, changeset, confirm_timeout=30)
    error = caught.value
    assert "could not keep a local copy" in error.message
    assert "Everything done so far was undone" in error.message
    assert "hostwiz recover" in error.hint and error.details

    snapshot = console.run("cat /var/lib/hostwiz/LAST").out.strip()
    assert "reverted (hostwiz error)" in journal(console, snapshot)
    assert not console.run("test -e /etc/hostwiz-a").ok
    assert wait_for(console, no_watchdog(snapshot), 10)
    events = [entry.event for entry in last_transaction(host.name)]
    assert events == ["applying", "reverted"]
    # The host is free for the next change.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "fresh"))
    assert apply_changeset(ssh, changeset, confirm_timeout=30).confirmed


# ---- B: a configuration file that is a symbolic link -----------------------------------------


def test_a_symlinked_file_is_written_through_and_restored_with_the_targets_mode(host, ssh):
    console = host.console()
    link, target = "/etc/hostwiz-link.conf", "/etc/hostwiz-real/real.conf"
    assert console.run(
        f"mkdir -p /etc/hostwiz-real && printf 'before\\n' > {target} && "
        f"chown root:adm {target} && chmod 640 {target} && ln -s {target} {link}"
    ).ok
    state = gather(ssh, [file_fact(link)])[file_fact(link)]
    assert (state.mode, state.owner, state.group) == (0o640, "root", "adm")
    write = WriteFile(link, b"after\n", state.mode, state.owner, state.group)
    result = apply_changeset(ssh, demo(write, host=host.name), confirm_timeout=30)
    assert result.confirmed

    assert console.run(f"test -L {link}").ok
    assert console.run(f"cat {target}").out == "after\n"
    assert console.run(f"stat -c '%a %U %G' {target}").out.strip() == "640 root adm"

    restored = console.run(f"/var/lib/hostwiz/restore {result.snapshot_id}")
    assert restored.ok, restored.err
    assert console.run(f"test -L {link}").ok
    assert console.run(f"cat {target}").out == "before\n"
    assert console.run(f"stat -c '%a %U %G' {target}").out.strip() == "640 root adm"
    assert rollback_plan(ssh, result.snapshot_id).empty  # facts and snapshot agree


@pytest.mark.docker
def test_a_symlinked_daemon_json_keeps_its_link_and_mode(docker_defaults, lab_ssh_config):
    console = docker_defaults.console()
    target = "/etc/docker/managed/daemon.json"
    try:
        assert console.run(
            f"mkdir -p /etc/docker/managed && printf '{{}}\\n' > {target} && chmod 640 {target} "
            f"&& ln -s {target} /etc/docker/daemon.json"
        ).ok
        ssh = SshTransport.connect(docker_defaults.name, ssh_config=lab_ssh_config)
        try:
            preset = apply_overrides(load_preset("hardened"), [])
            result = apply(ssh, [Selection(STEPS["docker"], preset.answers["docker"])])
            assert result.confirmed and result.snapshot_id
            assert console.run("test -L /etc/docker/daemon.json").ok
            assert "userns-remap" in console.run(f"cat {target}").out
            assert console.run(f"stat -c %a {target}").out.strip() == "640"

            restored = console.run(f"/var/lib/hostwiz/restore {result.snapshot_id}", timeout=120)
            assert restored.ok, restored.err
            assert console.run("test -L /etc/docker/daemon.json").ok
            assert console.run(f"cat {target}").out == "{}\n"
            assert console.run(f"stat -c %a {target}").out.strip() == "640"
            assert rollback_plan(ssh, result.snapshot_id).empty
        finally:
            ssh.close()
    finally:
        console.run("rm -rf /etc/docker/managed /etc/docker/daemon.json")


# ---- C: the confirmation and the timer never overlap ------------------------------------------


def test_the_timer_waits_for_a_confirmation_in_progress_and_then_keeps_the_change(host):
    """The confirmation holds the snapshot's lock between its check and its record: a timer
    reaching the deadline right then must wait, see the confirmation and undo nothing."""
    console = host.console()
    sid = armed(console, demo(WriteFile("/etc/hostwiz-c", b"applied\n")))
    snap = snapshot_dir(sid)
    # The test plays the confirmation, holding the lock until told to let go.
    assert console.run(
        f"setsid -f flock {snap}/lock sh -c {quote(pause_until(f'{snap}/release', f'{snap}/held'))}"
        " </dev/null >/dev/null 2>&1"
    ).ok
    assert wait_for(console, f"test -e {snap}/held", 10)
    assert console.run(set_deadline(sid, 0)).ok
    assert wait_for(
        # the timer's restore.sh (not its own command line, which names it too) has started
        console,
        f"pgrep -fx 'sh {snap}/restore.sh timeout' || grep -q reverting {snap}/journal",
        20,
    )
    assert console.run(
        f'echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) confirmed" >> {snap}/journal; touch {snap}/release'
    ).ok
    assert wait_for(console, no_watchdog(sid), 20)
    assert "reverting" not in journal(console, sid)
    assert console.run("cat /etc/hostwiz-c").out == "applied\n"


def test_a_confirmation_during_a_restore_waits_and_is_refused_as_too_late(host):
    """The disarm must neither stop a restore halfway nor report a change it is undoing."""
    console = host.console()
    undo = pause_until("/tmp/c-go", "/tmp/c-paused") + "; touch /tmp/c-undone"
    sid = armed(
        console,
        demo(WriteFile("/etc/hostwiz-c", b"applied\n"), RunCommand("true", undo=undo)),
    )
    assert console.run(set_deadline(sid, 0)).ok
    assert wait_for(console, "test -e /tmp/c-paused", 20)  # the timer is mid-restore

    outcome: dict[str, CommandResult] = {}
    check = f"( {disarm_script(sid)} ); rc=$?; cat {journal_path(sid)}; exit $rc"
    worker = threading.Thread(target=lambda: outcome.setdefault("r", console.run(check)))
    worker.start()
    try:
        assert wait_for(console, "pgrep -f 'f[l]ock -w 300 9'", 20)  # the disarm waits
    finally:
        console.run("touch /tmp/c-go")
        worker.join(60)
    result = outcome["r"]
    assert result.exit_code == 3
    assert "reverted (timeout)" in result.out and " confirmed" not in result.out
    assert console.run("test -e /tmp/c-undone").ok
    assert not console.run("test -e /etc/hostwiz-c").ok


# ---- D: a restore killed halfway does not block the next one ----------------------------------


def test_a_restore_killed_halfway_leaves_no_lock_behind(host):
    console = host.console()
    undo = f"if [ ! -e /tmp/d-first ]; then {pause_until('/tmp/d-go', '/tmp/d-first')}; fi"
    sid = armed(
        console,
        demo(WriteFile("/etc/hostwiz-d", b"applied\n"), RunCommand("true", undo=undo)),
    )
    snap = snapshot_dir(sid)
    try:
        assert console.run(f"setsid -f sh {snap}/restore.sh manual </dev/null >/dev/null 2>&1").ok
        assert wait_for(console, "test -e /tmp/d-first", 20)  # its undo script is running
        pid = console.run(f"pgrep -f '{sid}/restore.s[h] manual'").out.split()
        assert len(pid) == 1
        assert console.run(f"kill -KILL {pid[0]}").ok  # power cut, as far as it can tell
        assert wait_for(console, f"! pgrep -f '{sid}/restore.s[h]'", 10)

        again = console.run(f"/var/lib/hostwiz/restore {sid}")
        assert again.ok, again.err
        assert f"restored snapshot {sid}" in again.out
        assert not console.run("test -e /etc/hostwiz-d").ok
        assert journal(console, sid).rstrip().endswith("reverted (manual)")
    finally:
        console.run("touch /tmp/d-go")


# ---- E: one change at a time; owners without a name; quoted paths ----------------------------


def test_a_second_apply_is_refused_while_one_is_in_progress(host, ssh, lab_ssh_config):
    console = host.console()
    slow = demo(WriteFile("/etc/hostwiz-e1", b"1\n"),
                RunCommand(pause_until("/tmp/e-go"), why="a slow action"), host=host.name)  # fmt: skip
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault("r", apply_changeset(ssh, slow, confirm_timeout=30))
    )
    worker.start()
    try:
        assert wait_for(console, "grep -q ' start 1$' /var/lib/hostwiz/snapshots/*/journal", 30)
        first = console.run("cat /var/lib/hostwiz/LAST").out.strip()
        other = SshTransport.connect(host.name, ssh_config=lab_ssh_config, connect_timeout=4)
        try:
            with pytest.raises(ApplyFailed) as caught:
                apply_changeset(other, demo(WriteFile("/etc/hostwiz-e2", b"2\n"), host=host.name))
        finally:
            other.close()
    finally:
        console.run("touch /tmp/e-go")
        worker.join(120)
    message = caught.value.message
    assert f"another hostwiz change (snapshot {first}, started at 20" in message
    assert "in progress" in message and "hostwiz recover" in caught.value.hint
    assert not console.run("test -e /etc/hostwiz-e2").ok
    assert console.run("cat /var/lib/hostwiz/LAST").out.strip() == first
    result = outcome["r"]
    assert isinstance(result, ApplyResult) and result.confirmed

    # Confirmed: the host is free again.
    assert apply_changeset(
        ssh, demo(WriteFile("/etc/hostwiz-e2", b"2\n"), host=host.name)
    ).confirmed
    # A change whose hostwiz died holds the host only until its timer has undone it.
    dead = armed(console, demo(WriteFile("/etc/hostwiz-e3", b"3\n")))
    with pytest.raises(ApplyFailed, match=f"snapshot {dead}"):
        apply_changeset(ssh, demo(WriteFile("/etc/hostwiz-e4", b"4\n"), host=host.name))
    assert console.run(set_deadline(dead, 0)).ok
    assert wait_for(console, f"grep -q 'reverted (timeout)' {journal_path(dead)}", 20)
    assert wait_for(console, no_watchdog(dead), 10)
    assert apply_changeset(
        ssh, demo(WriteFile("/etc/hostwiz-e4", b"4\n"), host=host.name)
    ).confirmed


def test_owner_without_a_name_and_a_path_with_a_quote_are_restored(host):
    console = host.console()
    quoted, broken = "/etc/hostwiz it's.conf", "/etc/hostwiz it's gone"
    assert console.run(
        f"printf 'before\\n' > {quote(quoted)} && chown 4242:4343 {quote(quoted)} && "
        f"chmod 640 {quote(quoted)} && printf 'x\\n' > {quote(broken)}"
    ).ok
    state = gather(console, [file_fact(quoted)])[file_fact(quoted)]
    assert (state.owner, state.group) == ("4242", "4343")  # no names: their numbers
    sid = armed(console, demo(WriteFile(quoted, b"after\n"), WriteFile(broken, b"y\n")))
    assert console.run(f"rm {snapshot_dir(sid)}/files/1").ok  # that one cannot come back

    restored = console.run(f"/var/lib/hostwiz/restore {sid}")
    assert restored.exit_code == 1, restored.err
    assert console.run(f"cat {quote(quoted)}").out == "before\n"
    assert console.run(f"stat -c '%a %u %g' {quote(quoted)}").out.strip() == "640 4242 4343"
    lines = journal(console, sid)
    assert f"could not restore {broken}\n" in lines and "revert incomplete (manual)" in lines


# ---- F: the console's list of snapshots ------------------------------------------------------


def test_the_console_list_says_when_what_and_how_it_ended(host):
    console = host.console()
    kept = armed(console, demo(WriteFile("/etc/hostwiz-f1", b"1\n")))
    assert console.run(disarm_script(kept)).ok
    undone = armed(console, demo(WriteFile("/etc/hostwiz-f2", b"2\n"), RunCommand("true")))
    assert console.run(f"/var/lib/hostwiz/restore {undone}").ok

    listing = console.run("/var/lib/hostwiz/restore")
    assert listing.ok, listing.err
    text = listing.out
    assert text.index(kept) < text.index(undone)  # newest last
    first, second = text[text.index(kept) :], text[text.index(undone) :]
    assert "made:  20" in first and " UTC (hostwiz apply)" in first
    assert "steps: demo" in first and "files: /etc/hostwiz-f1" in first
    assert "last:  kept (confirmed), at 20" in first
    assert f"{undone}  (LAST)" in text and "files: /etc/hostwiz-f2" in second
    assert "last:  undone (manual), at 20" in second and " UTC\n" in second
    assert f"/var/lib/hostwiz/restore ID   (or LAST for {undone})" in text
    missing = console.run("/var/lib/hostwiz/restore 20000101-000000-dead")
    assert missing.exit_code == 2 and "no snapshot" in missing.err
