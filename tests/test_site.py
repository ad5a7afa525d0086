"""A two-host site on practice hosts, carried by the generic site machinery: the test-only
two-stage step (tests/site_demo) previews, applies, plans nothing the second time, rolls back
and, when the second host fails, puts the first one back; the site journal tells the story."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.site_demo import DEMO, FOLDER, PEER_CONF, PEER_TOKEN, SOURCE, TOKEN, WRITER
from wizard.errors import ApplyFailed
from wizard.render import as_text
from wizard.site import journal
from wizard.site.apply import (
    apply_site,
    close_all,
    preview_site,
    rollback_site,
    site_rollback_plans,
)
from wizard.site.model import Site, load_site
from wizard.site.plan import render_site, site_session
from wizard.site.registry import SITE_STEPS
from wizard.transport.base import Transport
from wizard.transport.ssh import SshTransport

pytestmark = pytest.mark.lab


@pytest.fixture
def demo_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SITE_STEPS, DEMO.name, DEMO)


@pytest.fixture
def two_hosts(make_lab_hosts: Any) -> list[Any]:
    return list(make_lab_hosts(2, docker=False))


def write_site(folder: Path, writer: str, source: str) -> Path:
    path = folder / "demo.toml"
    path.write_text(
        f'name = "{folder.name}"\n'
        f'[hosts.writer]\ntarget = "{writer}"\nroles = ["{WRITER}"]\n'
        f'[hosts.source]\ntarget = "{source}"\nroles = ["{SOURCE}"]\n'
        "[steps.site-demo]\n"
    )
    return path


@pytest.fixture
def site(tmp_path: Path, two_hosts: list[Any], demo_step: None) -> Site:
    return load_site(write_site(tmp_path, two_hosts[0].name, two_hosts[1].name))


def test_two_hosts_two_stages_apply_plan_nothing_then_roll_back(
    site: Site, transports: dict[str, Transport], two_hosts: list[Any]
) -> None:
    writer, source = (host.console() for host in two_hosts)
    session = site_session(site)
    plan, _ = preview_site(session, transports)
    shown = as_text(render_site(plan, session))
    assert f"peer = {two_hosts[1].address}" in shown and "Provisional" in shown
    assert not writer.run(f"test -e {FOLDER}").ok  # a preview changes nothing

    result = apply_site(session, transports, expected=plan, confirm_timeout=30)
    assert [(a.host, a.stage) for a in result.applied] == [("source", 1), ("writer", 2)]
    token = source.run(f"cat {TOKEN}").out.strip()
    assert len(token) == 32
    assert writer.run(f"cat {PEER_CONF}").out == f"peer = {two_hosts[1].address}\n"
    assert writer.run(f"cat {PEER_TOKEN}").out.strip() == token
    assert writer.run(f"stat -c %a {PEER_TOKEN}").out.strip() == "600"

    again, _ = preview_site(session, transports)
    assert again.empty
    assert token not in as_text(render_site(again, session))

    plans = site_rollback_plans(site.name, transports)
    assert [(p.host, p.stage) for p in plans] == [("writer", 2), ("source", 1)]
    back, stuck, _notes = rollback_site(site.name, transports, plans, confirm_timeout=30)
    assert stuck == [] and [b.split()[0] for b in back] == ["writer", "source"]
    assert not writer.run(f"test -e {PEER_CONF} || test -e {FOLDER}").ok
    assert not source.run(f"test -e {TOKEN} || test -e {FOLDER}").ok
    assert all(p.plan.empty for p in site_rollback_plans(site.name, transports))
    story = "\n".join(journal.explain(site.name))
    assert "asked with rollback --site" in story and "writer, stage 2: put back" in story


def test_a_failure_on_the_second_host_puts_the_first_one_back(
    site: Site, transports: dict[str, Transport], two_hosts: list[Any]
) -> None:
    writer, source = (host.console() for host in two_hosts)
    assert writer.run(f"touch {FOLDER}").ok  # a file where the writer needs a folder
    session = site_session(site)
    with pytest.raises(ApplyFailed) as raised:
        apply_site(session, transports, confirm_timeout=30)
    message = raised.value.message
    assert "writer (stage 2)" in message and "put back" in message and "source" in message
    assert not source.run(f"test -e {TOKEN} || test -e {FOLDER}").ok  # really put back
    assert writer.run(f"test -f {FOLDER}").ok
    story = "\n".join(journal.explain(site.name))
    assert "source, stage 1: applied and confirmed" in story
    assert "writer, stage 2: FAILED" in story
    assert "source, stage 1: put back" in story
    assert "did not go through" in story
    assert site_rollback_plans(site.name, transports) == []


def test_lab_up_topology_writes_a_site_file_the_demo_step_runs_on(
    tmp_path: Path, demo_step: None, lab_ssh_config: Path
) -> None:
    import argparse
    import io
    import os
    import secrets
    from contextlib import redirect_stdout

    from lab import lab_down, lab_list
    from lab.cli import add_lab_parser, run_lab

    if os.geteuid() != 0:
        pytest.skip("needs root")
    topology = tmp_path / "pair.toml"
    topology.write_text(
        'description = "two hosts"\n[networks.pair]\nsubnet = "10.214.7.0/24"\n'
        f'[hosts.{WRITER}]\nnetworks = {{ pair = "10.214.7.10" }}\n'
        f'[hosts.{SOURCE}]\nnetworks = {{ pair = "10.214.7.20" }}\n'
    )
    prefix = f"si{secrets.token_hex(2)}"
    parser = argparse.ArgumentParser(prog="hostwiz")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            argv = ["lab", "up", "--topology", str(topology), "--name", prefix, "--no-docker"]
            assert run_lab(parser.parse_args(argv)) == 0
        said = [line for line in out.getvalue().splitlines() if "Site file" in line]
        assert said, out.getvalue()
        path = Path(said[0].split(": ", 1)[1])
        path.write_text(path.read_text() + '\n[steps.site-demo]\ninterface = "pair"\n')
        site = load_site(path)
        assert [(h.target, h.roles) for h in site.hosts] == [
            (f"{prefix}-{WRITER}", (WRITER,)),
            (f"{prefix}-{SOURCE}", (SOURCE,)),
        ]
        transports: dict[str, Transport] = {
            h.name: SshTransport.connect(h.target, ssh_config=lab_ssh_config, connect_timeout=4)
            for h in site.hosts
        }
        try:
            apply_site(site_session(site), transports, confirm_timeout=30)
        finally:
            close_all(transports)
        writer = next(h for h in lab_list() if h.name == f"{prefix}-{WRITER}")
        assert writer.console().run(f"cat {PEER_CONF}").out == "peer = 10.214.7.20\n"
        with redirect_stdout(out):
            assert run_lab(parser.parse_args(["lab", "down", prefix])) == 0
        assert not path.exists()  # the site file goes with its topology
    finally:
        if any(h.topology == prefix for h in lab_list()):
            lab_down([prefix])


def test_a_host_that_changed_after_the_preview_is_refused_before_any_change(
    site: Site, transports: dict[str, Transport], two_hosts: list[Any]
) -> None:
    from wizard.errors import HostChanged

    writer, source = (host.console() for host in two_hosts)
    session = site_session(site)
    plan, _ = preview_site(session, transports)
    assert writer.run(f"mkdir -p {FOLDER} && echo 'peer = elsewhere' > {PEER_CONF}").ok
    with pytest.raises(HostChanged):
        apply_site(session, transports, expected=plan, confirm_timeout=30)
    assert not source.run(f"test -e {FOLDER}").ok  # the first stage's host was not touched
    assert writer.run(f"cat {PEER_CONF}").out == "peer = elsewhere\n"


def test_the_command_line_plans_applies_rolls_back_and_recovers_a_site(
    tmp_path: Path, two_hosts: list[Any], demo_step: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from hostwiz.cli import main

    writer, source = (host.console() for host in two_hosts)
    path = str(write_site(tmp_path, two_hosts[0].name, two_hosts[1].name))
    assert main(["plan", "--site", path]) == 2
    shown = capsys.readouterr().out
    assert shown.index("=== source [demo-source]") < shown.index("=== writer [demo-writer]")
    assert f"peer = {two_hosts[1].address}" in shown and "Provisional" in shown

    assert main(["apply", "--site", path, "--yes", "--confirm-timeout", "30"]) == 0
    said = capsys.readouterr()
    assert f"rollback --site {path}" in said.out, said.err
    # The outcome is said once, on stdout (not again on stderr as the last progress line).
    assert (said.out + said.err).count(f"rollback --site {path}") == 1, said
    token = source.run(f"cat {TOKEN}").out.strip()
    assert writer.run(f"cat {PEER_TOKEN}").out.strip() == token
    assert main(["plan", "--site", path, "--json"]) == 0
    assert token not in capsys.readouterr().out

    assert main(["rollback", "--site", path, "--yes", "--confirm-timeout", "30"]) == 0
    out = capsys.readouterr().out
    assert out.index("=== writer") < out.index("=== source")  # reverse order
    assert not writer.run(f"test -e {FOLDER}").ok and not source.run(f"test -e {FOLDER}").ok

    assert main(["recover", "--site", path]) == 0
    story = capsys.readouterr().out
    assert "source, stage 1: applied and confirmed" in story
    assert "writer, stage 2: put back" in story and "asked with rollback --site" in story
    assert f"writer ({two_hosts[0].name}):" in story


def test_repeated_hosts_plan_each_hosts_preset_grouped_per_host(
    two_hosts: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from hostwiz.cli import main

    names = [host.name for host in two_hosts]
    status = main(["plan", "--host", names[0], "--host", names[1], "--preset", "classic"])
    out = capsys.readouterr()
    assert status == 2, out.err
    assert f"=== {names[0]} ({names[0]}) ===" in out.out
    assert f"=== {names[1]} ({names[1]}) ===" in out.out
    assert main(["snapshots", "--host", names[0], "--host", names[1]]) == 1
    assert "takes one --host" in capsys.readouterr().err


def test_each_hosts_single_host_steps_go_with_stage_one_and_back_with_the_site(
    tmp_path: Path, two_hosts: list[Any], demo_step: None, lab_ssh_config: Path
) -> None:
    """Single-host steps are lifted unchanged: the site's preset (a file beside the site file)
    plans the SSH step on both hosts, in their stage-1 transactions, health-checked as alone."""
    drop_in = "/etc/ssh/sshd_config.d/00-hostwiz.conf"
    (tmp_path / "ssh-only.toml").write_text("[ssh]\n")
    path = write_site(tmp_path, two_hosts[0].name, two_hosts[1].name)
    path.write_text('preset = "ssh-only.toml"\n' + path.read_text())
    site = load_site(path)
    session = site_session(site)
    opened: dict[str, Transport] = {
        host.name: SshTransport.connect(host.target, ssh_config=lab_ssh_config, connect_timeout=4)
        for host in site.hosts
    }
    try:
        plan, _ = preview_site(session, opened)
        assert {c.host for c in plan.stage(1)} == {"writer", "source"}
        writer_first = next(c for c in plan.stage(1) if c.host == "writer")
        assert writer_first.changeset.steps == ("ssh",)
        result = apply_site(session, opened, expected=plan, confirm_timeout=30)
        assert [(a.host, a.stage) for a in result.applied] == [
            ("writer", 1), ("source", 1), ("writer", 2)
        ]  # fmt: skip
        for host in two_hosts:
            assert "PermitRootLogin prohibit-password" in host.console().run(f"cat {drop_in}").out
        assert preview_site(session, opened)[0].empty
        plans = site_rollback_plans(site.name, opened)
        assert plans[0].host == "writer" and [p.stage for p in plans] == [2, 1, 1]
        assert {p.host for p in plans[1:]} == {"writer", "source"}  # one stage: either order
        back, stuck, _notes = rollback_site(site.name, opened, plans, confirm_timeout=30)
        assert stuck == [] and len(back) == 3
    finally:
        close_all(opened)
    for host in two_hosts:
        assert not host.console().run(f"test -e {drop_in} || test -e {FOLDER}").ok


def test_recover_site_tells_the_story_and_how_to_reach_a_host_it_cannot_get_into(
    tmp_path: Path, demo_step: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """No practice host needed: the unreachable host is a closed port on loopback."""
    from hostwiz.cli import main

    path = tmp_path / "gone.toml"
    path.write_text('name = "gone"\n[hosts.away]\ntarget = "nobody@127.0.0.1:1"\n')
    journal.record(journal.SiteEntry(1.0, "gone", "site-9", "applying"))
    journal.record(journal.SiteEntry(2.0, "gone", "site-9", "applied", "away", 1, "SNAP1"))
    assert main(["recover", "--site", str(path)]) == 1
    out = capsys.readouterr().out
    assert "away, stage 1: applied and confirmed (snapshot SNAP1)" in out
    assert "did not finish" in out
    assert "away (nobody@127.0.0.1:1):\n  cannot get in" in out
    assert "hostwiz recover --host nobody@127.0.0.1:1" in out
