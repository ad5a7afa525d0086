"""Reading the host's snapshot listing: a damaged snapshot says what is wrong, never raises, and
the others are listed as usual."""

from __future__ import annotations

import base64
import json

import pytest

from snapshots.store import parse_listing

GOOD = {"id": "20240501-101500-ab12", "created": "2024-05-01T10:15:00Z", "steps": ["ssh"],
        "reason": "apply", "paths": ["/etc/ssh/sshd_config"], "actions": ["write"], "undo": [1]}  # fmt: skip


def line(folder: str, meta: bytes | None, journal: bytes | None = b"x armed 60s\nx confirmed\n"):
    def encoded(data: bytes | None) -> str:
        return base64.b64encode(data).decode() if data else "-"

    return f"snapshot {encoded(meta)} {encoded(journal)} {folder}"


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        (b'{"id": ', "meta.json is not valid JSON"),
        (b"", "meta.json is empty"),
        (b"\xff\xfe{}", "meta.json is not UTF-8 text"),
        (b"[]", "meta.json is not a JSON object"),
        (json.dumps({**GOOD, "steps": 5}).encode(), '"steps" is not a list of text'),
        (json.dumps({**GOOD, "undo": ["1"]}).encode(), '"undo" is not a list of numbers'),
        (json.dumps({**GOOD, "undo_why": [1]}).encode(), '"undo_why" is not a list of text'),
        (json.dumps({**GOOD, "created": 3}).encode(), '"created" is not text'),
        (json.dumps({**GOOD, "ssh_port": {"before": 22}}).encode(), '"ssh_port" is not a pair'),
        (json.dumps({**GOOD, "id": "20240101-000000-0000"}).encode(), "names another snapshot"),
    ],
)
def test_a_damaged_meta_is_named_and_the_others_are_still_listed(meta, problem):
    good = json.dumps(GOOD).encode()
    output = "\n".join([line(GOOD["id"], good), line("20240502-090000-cd34", meta), "junk"])
    first, second = parse_listing(output)
    assert (first.id, first.steps, first.state, first.damaged) == (GOOD["id"], ("ssh",),
                                                                   "confirmed", "")  # fmt: skip
    assert second.id == "20240502-090000-cd34" and second.state == "confirmed"
    assert problem in second.damaged


def test_a_journal_that_is_not_utf8_is_named_and_read_as_far_as_it_goes():
    (info,) = parse_listing(line(GOOD["id"], json.dumps(GOOD).encode(), b"x armed\n\xff done 0\n"))
    assert info.damaged == "its journal is not UTF-8 text"
    assert info.state == "done 0" and info.steps == ("ssh",)


def test_a_missing_journal_is_an_unknown_state_not_damage():
    (info,) = parse_listing(line(GOOD["id"], json.dumps(GOOD).encode(), None))
    assert (info.state, info.damaged) == ("unknown", "")


def test_a_damaged_local_journal_keeps_its_good_lines(tmp_path, monkeypatch):
    from snapshots import local_journal
    from wizard.recovery import explain_last_change

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    good = local_journal.JournalEntry(1000.0, "web1", "s1", "applying", ("ssh",), 1060.0)
    local_journal.record(good)
    path = local_journal.journal_file("web1")
    with path.open("ab") as handle:
        handle.write(b'{"time": 1001.0, "host": "web1", "snapshot_id": "s1", "event": "\xff"}\n')
        handle.write(b'{"time": "soon", "host": "web1", "snapshot_id": "s2", "event": "x"}\n')
        handle.write(b'{"time": 1002.0, "host": "web1", "snapshot_id": "s1", "event": "x", '
                     b'"ssh_port_after": "2222"}\n[]\n"text"\n')  # fmt: skip
    assert local_journal.entries("web1") == [good]
    assert "snapshot s1" in " ".join(explain_last_change("web1", now=1001.0))
