"""Fact framing and parsers, from tables of real outputs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from wizard.facts import Fact, Facts, batch_script, file_fact, parse_batch, text_fact
from wizard.host.docker import DOCKERD, parse_info
from wizard.host.subids import parse_id_ranges
from wizard.steps.docker.facts import parse_account
from wizard.transport.local import LocalTransport


def test_batch_round_trip_through_a_real_shell(tmp_path):
    target = tmp_path / "f.txt"
    target.write_bytes(b"line one\n\x00binary")
    target.chmod(0o640)
    facts = [
        text_fact("echo", "printf 'a\\nb'"),
        Fact("fails", "echo out; exit 3", lambda code, out: (code, out)),
        file_fact(str(target)),
        file_fact(str(tmp_path / "missing")),
        text_fact("tricky", "printf 'HOSTWIZ-0000 5\\n'"),
    ]
    boundary = "HOSTWIZ-feedfacefeedface"
    result = LocalTransport().run(batch_script(facts, boundary))
    raw = parse_batch(result.out, boundary)
    parsed = Facts.from_raw(facts, raw)
    assert parsed.get("echo") == "a\nb"
    assert parsed.get("fails") == (3, "out\n")
    state = parsed.get(f"file:{target}")
    assert state.exists and state.content == b"line one\n\x00binary" and state.mode == 0o640
    assert not parsed.get(f"file:{tmp_path / 'missing'}").exists
    assert parsed.get("tricky") == "HOSTWIZ-0000 5"


def test_batch_keeps_odd_names_and_outputs_apart():
    facts = [
        text_fact("name with spaces \\n and a backslash", "echo one"),
        Fact("no newline", "printf 'x'", lambda code, out: (code, out)),
        Fact("empty", "true", lambda code, out: (code, out)),
        Fact("blank lines", "printf '\\n\\n'; exit 7", lambda code, out: (code, out)),
    ]
    boundary = "HOSTWIZ-0123456789abcdef"
    raw = parse_batch(LocalTransport().run(batch_script(facts, boundary)).out, boundary)
    parsed = Facts.from_raw(facts, raw)
    assert parsed.get("name with spaces \\n and a backslash") == "one"
    assert parsed.get("no newline") == (0, "x")
    assert parsed.get("empty") == (0, "")
    assert parsed.get("blank lines") == (7, "\n\n")


def test_a_fact_without_its_status_is_an_error():
    from wizard.errors import HostwizError

    boundary = "HOSTWIZ-0123456789abcdef"
    with pytest.raises(HostwizError, match="printed no exit status"):
        parse_batch(f"{boundary} S cut\npartial output", boundary)


def test_gather_uses_one_round_trip():
    from wizard.facts import gather

    transport = LocalTransport()
    gather(transport, [text_fact(f"n{i}", f"echo {i}") for i in range(20)])
    assert transport.stats.round_trips == 1


DOCKERD_SYSV = """pid 812
arg /usr/sbin/dockerd
arg -p
arg /var/run/docker.pid
nofile 20000
shell_nofile 20000
docker_opts
"""
DOCKERD_SYSTEMD_STOPPED = """shell_nofile 1048576
execstart { path=/usr/sbin/dockerd ; argv[]=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock ; ignore_errors=no }
"""


@pytest.mark.parametrize(
    ("output", "running", "flags", "nofile"),
    [
        (DOCKERD_SYSV, True, ("-p",), 20000),
        (
            DOCKERD_SYSTEMD_STOPPED,
            False,
            ("-H", "--containerd=/run/containerd/containerd.sock"),
            1048576,
        ),
        ("shell_nofile 1024\n", False, (), 1024),
    ],
)
def test_dockerd_process_parser(output, running, flags, nofile):
    process = DOCKERD.parse(0, output)
    assert process.running is running
    assert process.nofile_hard == nofile
    for flag in flags:
        assert flag in process.effective_args


def test_docker_info_parser():
    line = (
        '{"ServerVersion": "20.10.24", "Containers": 2, "Images": 3, '
        '"SecurityOptions": ["name=seccomp,profile=default", "name=userns"], '
        '"Swarm": {"LocalNodeState": "active"}}'
    )
    info = parse_info(0, "WARNING: something\n" + line + "\n")
    assert info.reachable and info.userns and info.containers == 2 and info.images == 3
    assert info.swarm_state == "active"
    assert not parse_info(1, "").reachable
    assert not parse_info(0, "garbage").reachable


def test_account_parser():
    parse = parse_account("alice")
    account = parse(0, "alice:x:1001:1001:,,,:/home/alice:/bin/bash\nalice\n")
    assert (account.exists, account.uid, account.home, account.group) == (
        True,
        1001,
        "/home/alice",
        "alice",
    )
    assert not parse(2, "").exists


def test_id_ranges_ignore_garbage():
    content = b"admin:100000:65536\n# comment\nbroken\ndockremap:165536:65536\n"
    assert parse_id_ranges(content) == [("admin", 100000, 65536), ("dockremap", 165536, 65536)]


def test_file_fact_parser_decodes_content():
    fact = file_fact("/etc/x")
    data = base64.b64encode(b"hello").decode()
    state = fact.parse(0, f"600 root adm\n{data}")
    assert state.exists and state.content == b"hello" and state.mode == 0o600
    assert state.group == "adm"
    assert not fact.parse(0, "MISSING\n").exists


def test_facts_that_share_a_command_run_it_once(tmp_path: Path) -> None:
    """sshd -T is read by three steps' facts, each with its own parser: one run serves all."""
    from wizard.facts import gather

    counter = tmp_path / "runs"
    command = f"echo run >>{counter}; echo 'port 22'; echo 'port 2222'"
    ports = Fact("ports", command, lambda code, out: [w for w in out.split() if w.isdigit()])
    lines = Fact("lines", command, lambda code, out: len(out.splitlines()))
    facts = gather(LocalTransport(), [ports, lines])
    assert facts[ports] == ["22", "2222"] and facts[lines] == 2
    assert counter.read_text() == "run\n"


def test_every_reader_of_sshd_T_uses_the_one_command() -> None:
    from wizard.host.sshd import EFFECTIVE_COMMAND
    from wizard.steps.firewall.host import SSHD_PORTS, parse_ports
    from wizard.steps.ssh.facts import EFFECTIVE
    from wizard.steps.ssh.port import SSHD_LISTEN

    assert {SSHD_PORTS.command, SSHD_LISTEN.command, EFFECTIVE.command} == {EFFECTIVE_COMMAND}
    assert parse_ports(0, "port 2222\nmaxauthtries 6\nport 22\nclientaliveinterval 300\n") == (
        22, 2222,
    )  # fmt: skip
