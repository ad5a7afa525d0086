"""What ``hostwiz recover`` says about the last change, in words a newcomer can act on (no
host needed: the journals are written here, the host's output is made up)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from snapshots import local_journal
from wizard.recovery import explain_last_change, parse_host_change, progress_words

SNAPSHOT = "20240501-101500-ab12"
BASE = 1714558500  # 2024-05-01 10:15:00 UTC
ACTIONS = ["write /etc/ssh/sshd_config.d/00-hostwiz.conf", "reload sshd",
           "create the unprivileged dockremap user", "restart dockerd"]  # fmt: skip
NO_ANSWER = (
    "a new connection to the new SSH port 2222 failed: No answer from 10.0.0.5:2222 (web1) "
    "within 10 s. Likely cause: another firewall drops new connections to port 2222."
)


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def host_says(*journal: str, timer: bool = False) -> str:
    """What the host's change script prints (clocks in step)."""
    meta = {"id": SNAPSHOT, "steps": ["ssh", "docker"], "actions": ACTIONS,
            "ssh_port": {"before": 22, "after": 2222}}  # fmt: skip
    lines = [f"id {SNAPSHOT}", f"now {BASE}", f"deadline {BASE + 60}"]
    lines += ["timer"] if timer else []
    lines += [f"meta {base64.b64encode(json.dumps(meta).encode()).decode()}"]
    return "\n".join(lines + [f"journal {line}" for line in journal]) + "\n"


def unconfirmed(detail: str = NO_ANSWER) -> None:
    local_journal.record(local_journal.JournalEntry(
        BASE - 70, "web1", SNAPSHOT, "applying", ("ssh",), BASE - 10, "", 22, 2222))  # fmt: skip
    local_journal.record(local_journal.JournalEntry(
        BASE - 60, "web1", SNAPSHOT, "unconfirmed", ("ssh",), BASE, detail, 22, 2222))  # fmt: skip


def test_how_far_an_interrupted_change_got_is_said_in_steps_not_journal_words() -> None:
    actions = tuple(ACTIONS)
    assert progress_words("done 2", actions) == (
        'it stopped after step 3 of 4 ("create the unprivileged dockremap user")'
    )
    assert progress_words("start 0", actions).startswith("it stopped in the middle of step 1 ")
    assert progress_words("done 1") == "it stopped after step 2"
    assert progress_words("armed 60s", actions) == "it stopped before its first step"
    assert "putting it back" in progress_words("reverting (timeout)", actions)


def test_an_interrupted_change_on_the_host_says_how_far_it_got() -> None:
    change = parse_host_change(
        host_says("2024-05-01T10:14:00Z armed 60s", "2024-05-01T10:14:00Z start 0",
                  "2024-05-01T10:14:00Z done 0", "2024-05-01T10:14:01Z done 1"),
        local_now=BASE,
    )  # fmt: skip
    assert change is not None and change.state == "interrupted"
    text = " ".join(explain_last_change("web1", now=BASE, on_host=change))
    assert 'It was interrupted: it stopped after step 2 of 4 ("reload sshd"). It was never' in text
    assert "(done 1)" not in text


def test_a_change_undone_for_want_of_a_confirmation_says_why_and_what_next() -> None:
    """The port SSH moved to got no answer (a firewall): once the host has put the change
    back, recover used to say only that; applying the same change again locks out the same way.
    """
    unconfirmed()
    change = parse_host_change(
        host_says("2024-05-01T10:14:00Z armed 60s", "2024-05-01T10:15:01Z reverting (timeout)",
                  "2024-05-01T10:15:01Z reverted (timeout)"),
        local_now=BASE + 10,
    )  # fmt: skip
    text = " ".join(explain_last_change("web1", now=BASE + 10, on_host=change))
    assert f"Why no new connection could confirm it: {NO_ANSWER}" in text, text
    assert "Put that right before you apply the change again." in text


def test_locked_out_in_the_safety_window_the_journal_word_is_said_in_words() -> None:
    """Not connected: this machine's journal; "(unconfirmed)" was its word, not a reason."""
    unconfirmed()
    text = " ".join(explain_last_change("web1", now=BASE - 30))
    assert "(unconfirmed)" not in text, text
    assert "It is not confirmed (no new connection could confirm it)" in text, text
    assert f"Why no new connection could confirm it: {NO_ANSWER}" in text
    text = " ".join(explain_last_change("web1", now=BASE + 30))  # overdue
    assert "(unconfirmed)" not in text and "never confirmed" in text, text


def test_just_after_the_deadline_the_host_may_still_be_putting_the_change_back() -> None:
    """Seconds after the safety timer's deadline the host may still be undoing the change (a
    Docker restart): recover said only "most likely not hostwiz's change", and a newcomer went
    looking at firewalls while the host was about to be reachable again."""
    from wizard.recovery import judge_lockout

    unconfirmed()  # its deadline: BASE
    soon = " ".join(judge_lockout("web1", "refused", 22, now=BASE + 5).lines)
    assert "the host may still be putting the change back" in soon, soon
    assert "Wait a minute and run this again before you look further." in soon
    later = judge_lockout("web1", "refused", 22, now=BASE + 120)
    assert later.not_ours and "most likely not hostwiz's change" in " ".join(later.lines)
    assert "Wait a minute" not in " ".join(later.lines)


def test_refused_console_advice_checks_sshd_config_then_starts_it() -> None:
    """Connection refused: sshd is not running. The advice lacked `sshd -t` and how to start
    sshd; its `journalctl ... || tail` showed nothing on a sysv host (journalctl exits 0
    there with "No entries")."""
    from wizard.recovery import console_checks

    text = "\n".join(console_checks("refused"))
    assert "sshd -t " in text, text
    assert text.index("sshd -t ") < text.index("systemctl start ssh"), text
    assert "/etc/init.d/ssh start" in text, text
    assert "journalctl -u ssh -n 30 ||" not in text, text
    assert "[ -d /run/systemd/system ]" in text and "tail -n 30 /var/log/auth.log ||" in text
    sysv = "\n".join(console_checks("refused", init="sysv"))
    assert "/etc/init.d/ssh start" in sysv and "systemctl start" not in sysv, sysv


def test_the_last_change_names_its_steps_by_title_not_by_id() -> None:
    """Locked out, recover said "Last change from here: ssh (snapshot ...)": the step's id,
    where every other screen says its title."""
    unconfirmed()
    text = " ".join(explain_last_change("web1", now=BASE - 30))
    assert "Last change from here: SSH hardening (snapshot" in text, text
    change = parse_host_change(host_says("2024-05-01T10:14:00Z armed 60s"), local_now=BASE)
    text = " ".join(explain_last_change("web1", now=BASE, on_host=change))
    assert "Last change on the host: SSH hardening, Docker engine (snapshot" in text, text


def test_wait_then_connect_again_says_how() -> None:
    """Recover said "Wait, then connect again." and left a newcomer guessing how."""
    from wizard.recovery import judge_lockout

    unconfirmed()  # moved SSH from 22 to 2222; its deadline: BASE
    text = " ".join(explain_last_change("web1", now=BASE - 30))
    assert "then run `hostwiz recover --host web1` again (or `ssh -p 22 web1`" in text, text
    pending = " ".join(judge_lockout("web1", "no-answer", 2222, now=BASE - 30).lines)
    assert "then run `hostwiz recover --host web1` again" in pending, pending
    assert "connect again." not in pending + text


def test_after_a_rollback_recover_says_what_was_put_back_and_what_next() -> None:
    """The restore script says only "restored snapshot X": recover printed that alone."""
    from wizard.recovery import rolled_back_words

    text = " ".join(rolled_back_words(
        SNAPSHOT, ["ssh", "docker"], "hostwiz plan --host web1", "hostwiz apply --host web1"))  # fmt: skip
    assert "Put back: what SSH hardening, Docker engine had changed" in text, text
    assert f"before snapshot {SNAPSHOT}" in text
    assert "`hostwiz plan --host web1`" in text and "`hostwiz apply --host web1`" in text


@pytest.mark.parametrize("applied_to", ["root@127.0.0.1", "127.0.0.1"])
def test_recover_tries_the_ports_its_journal_knows_before_guessed_ones(
    state: Path, monkeypatch: pytest.MonkeyPatch, applied_to: str
) -> None:
    """The last change moved SSH from 22 to 8022: recover tried the guessed ports 2222, 2022,
    2200, 22222, 222 beside it (all of them before it, when the change was applied to the
    host named without the user: the journal is kept per name as given)."""
    from wizard.errors import ConnectionFailed
    from wizard.recovery import Tried, WayIn
    from wizard.ways_in import look_for_ways_in

    monkeypatch.setenv("HOME", str(state))
    local_journal.record(local_journal.JournalEntry(
        BASE, applied_to, SNAPSHOT, "unconfirmed", ("ssh",), BASE + 60, "", 22, 8022))  # fmt: skip
    tried: list[int] = []
    told: list[int] = []

    class Opened:
        def close(self) -> None:
            pass

    def open_at(target: str, port: int, key: Path | None) -> Any:
        tried.append(port)
        if port == 8022:
            return Opened()
        raise ConnectionFailed(f"port {port}", kind="refused")

    def say(one: Tried) -> None:
        told.append(one.way.port)

    refused = ConnectionFailed("port 22 refused", kind="refused")
    found = look_for_ways_in("root@127.0.0.1", open_at, say=say, first_failure=refused)
    assert found is not None and found.way == WayIn(8022, "root")
    assert tried == [8022], tried  # 22 just failed; no guess before (or beside) the known port
    assert told == [22, 8022], told
