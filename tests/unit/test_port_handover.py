"""Port hand-over pieces that need no host: known_hosts trust, remembered ports, the search."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from snapshots import local_journal
from wizard.errors import AuthenticationFailed, ConnectionFailed, HostKeyChanged, SudoFailed
from wizard.recovery import (
    WayIn,
    candidate_keys,
    candidate_ports,
    explain_last_change,
    find_a_way_in,
    journal_ports,
)
from wizard.transport.known_hosts import KnownHosts, Verdict, check_moved
from wizard.transport.local import LocalTransport
from wizard.transport.ports import forget_port, remember_port, remembered_port

KEY = b"\x00\x00\x00\x0bssh-ed25519" + bytes(range(36))
OTHER = b"\x00\x00\x00\x0bssh-ed25519" + bytes(range(1, 37))


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def known(tmp_path: Path, *lines: str) -> KnownHosts:
    path = tmp_path / "known_hosts"
    path.write_text("".join(line + "\n" for line in lines))
    return KnownHosts([path])


def entry(name: str, blob: bytes) -> str:
    return f"{name} ssh-ed25519 {base64.b64encode(blob).decode()}"


def test_the_key_trusted_on_the_old_port_is_trusted_on_the_new_one(tmp_path):
    hosts = known(tmp_path, entry("10.0.0.5,web1", KEY))
    assert hosts.check("10.0.0.5", 2222, "ssh-ed25519", KEY).verdict is Verdict.UNKNOWN
    moved = check_moved(hosts, "10.0.0.5", 2222, (22,), "ssh-ed25519", KEY)
    assert moved.verdict is Verdict.MOVED


def test_another_key_on_the_new_port_is_a_changed_key_never_a_new_one(tmp_path):
    hosts = known(tmp_path, entry("10.0.0.5", KEY))
    assert check_moved(hosts, "10.0.0.5", 2222, (22,), "ssh-ed25519", OTHER).verdict is (
        Verdict.CHANGED
    )
    # With nothing on record anywhere it stays unknown (asked like any first connection).
    empty = known(tmp_path)
    assert check_moved(empty, "10.0.0.5", 2222, (22,), "ssh-ed25519", KEY).verdict is (
        Verdict.UNKNOWN
    )


def test_an_entry_for_the_new_port_decides_by_itself(tmp_path):
    hosts = known(tmp_path, entry("10.0.0.5", KEY), entry("[10.0.0.5]:2222", OTHER))
    assert check_moved(hosts, "10.0.0.5", 2222, (22,), "ssh-ed25519", OTHER).verdict is (
        Verdict.KNOWN
    )
    assert check_moved(hosts, "10.0.0.5", 2222, (22,), "ssh-ed25519", KEY).verdict is (
        Verdict.CHANGED
    )


def test_ports_are_remembered_per_host_whatever_the_user(state):
    assert remembered_port("web1") is None
    remember_port("admin@web1", 2222)
    assert remembered_port("web1") == 2222
    assert remembered_port("root@web1:22") == 2222  # the target's own port wins elsewhere
    forget_port("web1")
    assert remembered_port("admin@web1") is None


def test_recover_reads_old_and_new_ports_from_the_local_journal(state):
    local_journal.record(local_journal.JournalEntry(
        1000.0, "web1", "s1", "applying", ("ssh",), 1060.0, "", 22, 2222))  # fmt: skip
    local_journal.record(local_journal.JournalEntry(1001.0, "web1", "s1", "unconfirmed",
                                                    ("ssh",), 1061.0, "no answer", 22, 2222))  # fmt: skip
    assert journal_ports("web1") == [2222, 22]
    assert candidate_ports(22, journal_ports("web1"))[:3] == [22, 2222, 2022]
    text = " ".join(explain_last_change("web1", now=1100.0))
    assert "moved SSH from port 22 to port 2222" in text
    assert "port 22 again" in text


def test_candidate_keys_are_the_configured_one_then_every_id_file(tmp_path):
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    for name in ("id_rsa", "id_rsa.pub", "id_ed25519", "id_ed25519.pub", "config"):
        (ssh / name).write_text("x")
    mine = tmp_path / "lab_key"
    mine.write_text("x")
    assert candidate_keys(tmp_path, [mine, tmp_path / "missing"]) == [
        mine, ssh / "id_ed25519", ssh / "id_rsa",
    ]  # fmt: skip


def test_search_finds_sshd_on_another_port_then_another_user_and_key():
    console = LocalTransport()
    sshd_ports = {22: "moved away", 2222: "sshd"}
    works = WayIn(2222, "admin", Path("/k/id_ed25519"))

    def open_way(way: WayIn) -> LocalTransport:
        if sshd_ports.get(way.port) != "sshd":
            raise ConnectionFailed(f"port {way.port} refused the connection", kind="refused")
        if way == works:
            return console
        raise AuthenticationFailed("refused every key")

    search = find_a_way_in(open_way, ports=[22, 2222, 2022], users=["root", "admin"],
                           keys=[Path("/k/id_rsa"), Path("/k/id_ed25519")])  # fmt: skip
    assert search.found == works and search.transport is console
    results = [(t.way.port, t.way.user, t.result) for t in search.tried]
    assert results[:3] == [(22, "root", "refused"), (2222, "root", "login-refused"),
                           (2022, "root", "refused")]  # fmt: skip
    assert results[-1] == (2222, "admin", "works")


def test_search_never_goes_past_a_changed_key_and_reports_login_without_root():
    def open_way(way: WayIn) -> LocalTransport:
        if way.port == 22:
            raise HostKeyChanged("[h]:22", "SHA256:x", "known_hosts")
        if way.user == "admin":
            raise SudoFailed("admin needs a password for sudo")
        raise AuthenticationFailed("refused")

    search = find_a_way_in(open_way, ports=[22, 2222], users=["root", "admin"])
    assert search.found == WayIn(2222, "admin") and search.transport is None
    assert all(t.way.port != 22 for t in search.tried[1:])  # no other user tried on port 22


IPTABLES_SAVE = """*filter
:INPUT ACCEPT [0:0]
:HOSTWIZ-IN-mgmt - [0:0]
:HOSTWIZ-IN-wan - [0:0]
:HOSTWIZ-IN-docker - [0:0]
-A INPUT -j HOSTWIZ-INPUT
-A HOSTWIZ-IN-mgmt -p tcp -m tcp --dport 22 -j ACCEPT
-A HOSTWIZ-IN-mgmt -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A HOSTWIZ-IN-mgmt -j DROP
-A HOSTWIZ-IN-wan -s 203.0.113.0/24 -p tcp -m tcp --dport 8000:8002 -j ACCEPT
-A HOSTWIZ-IN-wan -j DROP
-A HOSTWIZ-IN-docker -p tcp -m tcp --dport 2222 -j ACCEPT
COMMIT
"""
NFT_TABLE = """table inet hostwiz {
\tchain in_mgmt {
\t\ttcp dport { 22, 2222 } accept
\t\tdrop
\t}
\tchain in_lan {
\t\tip saddr 10.0.0.0/8 tcp dport 2376 accept
\t\tudp dport 53 accept
\t\tdrop
\t}
}
"""


def test_the_tcp_ports_each_loaded_zone_opens_are_read_from_the_live_rules() -> None:
    from wizard.steps.firewall.loaded import describe_closed, loaded_zone_ports, zones_closed_to

    zones = loaded_zone_ports(IPTABLES_SAVE, "")
    assert zones == {"mgmt": {22}, "wan": {8000, 8001, 8002}}  # docker's zone is not the admin's
    assert zones_closed_to(zones, (22,), 2222) == ["mgmt"]  # wan never let SSH in
    assert describe_closed(zones, ["mgmt"], (22,)) == "zone mgmt offers only 22/tcp"
    assert loaded_zone_ports("", NFT_TABLE) == {"mgmt": {22, 2222}, "lan": {2376}}
    assert zones_closed_to(loaded_zone_ports("", NFT_TABLE), (22,), 2222) == []
    assert loaded_zone_ports("", "") == {}  # not loaded: nothing to follow


def test_parallel_search_takes_the_first_port_in_order_and_closes_the_others() -> None:
    import threading

    closed: list[int] = []
    started = threading.Barrier(3, timeout=5)  # all three ports are tried at once

    class Opened:
        def __init__(self, port: int) -> None:
            self.port = port

        def close(self) -> None:
            closed.append(self.port)

    def open_way(way: WayIn) -> Opened:
        started.wait()
        if way.port == 22:
            raise ConnectionFailed("No answer from 10.0.0.1:22 within 4 s.")
        return Opened(way.port)

    search = find_a_way_in(open_way, ports=[22, 2222, 2200], users=["root"])  # type: ignore[arg-type]
    assert search.found == WayIn(2222, "root")
    assert [t.way.port for t in search.tried] == [22, 2222, 2200]  # in candidate order
    assert closed == [2200]  # the other working port is not left open


def host_output(*journal: str, now: int, deadline: int, timer: bool = False) -> str:
    """What HOST_CHANGE_SCRIPT prints (the host's clock: epoch seconds and UTC stamps)."""
    meta = base64.b64encode(
        b'{"id": "20240501-101500-ab12", "steps": ["ssh"], '
        b'"ssh_port": {"before": 22, "after": 2222}}'
    ).decode()
    lines = ["id 20240501-101500-ab12", f"now {now}", f"deadline {deadline}"]
    lines += ["timer"] if timer else []
    lines += [f"meta {meta}", *(f"journal {line}" for line in journal)]
    return "\n".join(lines) + "\n"


def test_connected_recover_says_what_the_hosts_journal_says_in_this_machines_time(state):
    from wizard.recovery import change_state, parse_host_change

    # 2024-05-01 10:15:00 UTC = 1714558500 on the host; this machine's clock is 100 s ahead.
    base = 1714558500
    out = host_output(
        "2024-05-01T10:14:00Z recorded", "2024-05-01T10:14:00Z armed 60s",
        "2024-05-01T10:15:00Z reverting (timeout)", "2024-05-01T10:15:01Z reverted (timeout)",
        now=base + 30, deadline=base,
    )  # fmt: skip
    change = parse_host_change(out, local_now=base + 130)
    assert change is not None and change.state == "undone"
    assert change.deadline == base + 100 and change.events[-1][0] == base + 101
    # This machine's journal expected the revert 10 s later (and says "in 5 s"): not used.
    local_journal.record(local_journal.JournalEntry(
        base + 40, "web1", "20240501-101500-ab12", "unconfirmed", ("ssh",), base + 135, "",
        22, 2222))  # fmt: skip
    text = " ".join(explain_last_change("web1", now=base + 130, on_host=change))
    undone = time.strftime("%H:%M:%S", time.localtime(base + 101))
    assert (
        f"The host undid it at {undone} because no new connection could confirm it before the "
        "host's safety timer ran out; SSH is on port 22 again."
    ) in text
    assert "puts the snapshot back" not in text and "in 5 s" not in text
    assert change_state("web1", base + 130, change) == ("undone", base + 101)
    # Still pending on the host: its deadline, in this machine's time.
    pending = parse_host_change(
        host_output("2024-05-01T10:14:00Z armed 60s", now=base, deadline=base + 20, timer=True),
        local_now=base + 100,
    )
    assert pending is not None and pending.state == "pending"
    text = " ".join(explain_last_change("web1", now=base + 105, on_host=pending))
    at = time.strftime("%H:%M:%S", time.localtime(base + 120))
    assert f"puts the snapshot back by itself at {at}, in 15 s" in text
    # Not connected: this machine's journal, said to be an estimate.
    text = " ".join(explain_last_change("web1", now=base + 130))
    assert "in 5 s (this machine's estimate)" in text


def test_lockout_cause_tells_no_answer_from_refused_and_blames_no_undone_change(state):
    from wizard.recovery import console_instructions, judge_lockout

    dropped = judge_lockout("nohistory", "no-answer", 22, now=1000.0)
    assert dropped.not_ours and "get no answer" in " ".join(dropped.lines)
    assert "no record of a change" in " ".join(dropped.lines)
    console = "\n".join(console_instructions("web1", False, not_ours=True, kind="no-answer"))
    assert "iptables -S INPUT" in console and "nft list ruleset" in console
    assert "restore LAST" not in console
    local_journal.record(local_journal.JournalEntry(
        900.0, "web2", "20240501-101500-ab12", "unconfirmed", ("ssh",), 1100.0))  # fmt: skip
    waiting = judge_lockout("web2", "refused", 22, now=1000.0)
    assert not waiting.not_ours and "are refused" in " ".join(waiting.lines)
    assert "Wait for that" in " ".join(waiting.lines)
    overdue = judge_lockout("web2", "no-answer", 22, now=1200.0)
    assert overdue.not_ours and "most likely not hostwiz's change" in " ".join(overdue.lines)


def test_host_times_shift_only_when_the_clocks_really_differ():
    """The host prints whole seconds: clocks in step look up to a second apart, and shifting
    by that moved the host's "undone at" into the next second."""
    from wizard.recovery import clock_shift

    assert clock_shift(1000.9, 1000) == 0.0
    assert clock_shift(1001.4, 1000) == 0.0  # a slow round trip
    assert clock_shift(1000.0, 1000) == 0.0
    assert clock_shift(1060.5, 1000) == 60.0  # a host a minute behind
    assert clock_shift(940.5, 1000) == -60.0  # a minute ahead
