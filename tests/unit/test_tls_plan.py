"""The TLS step as tables: (answers, facts, local CA) -> prepared material -> expected plan."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from presets import parse_preset
from tests.unit.docker_fixtures import docker_facts
from wizard.actions import RunCommand, WriteFile
from wizard.answers import build
from wizard.daemon_json import check_types, command_line_flags, flag_conflicts
from wizard.errors import InvalidAnswer, PlanConflict, PresetError
from wizard.facts import Facts
from wizard.host.docker import restart_dockerd
from wizard.pki import (
    CaFolder,
    CaFolderProblem,
    PassphraseProblem,
    SanError,
    WrongPassphrase,
    cert_info,
    issued_by,
)
from wizard.render import as_text, render_changeset, render_plan
from wizard.secrets import Secret
from wizard.session import Selection, plan_changeset
from wizard.steps import STEPS, Status
from wizard.steps.docker import DOCKER_ENGINE, DockerEngineAnswers
from wizard.steps.tls import DOCKER_TLS
from wizard.steps.tls.answers import (
    DROP_IN_PATH,
    HOST_CA_PATH,
    SERVER_CERT_PATH,
    SERVER_KEY_PATH,
    DockerTlsAnswers,
)
from wizard.steps.tls.facts import parse_identity
from wizard.steps.tls.local import ca_exists, install_client, prepare
from wizard.steps.tls.plan import ExistingTlsSetup, NeedsPassphrase, PreparedTls

PASS = Secret("correct horse battery staple")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ON = DockerTlsAnswers(enabled=True)
IP_ADDR = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.213.0.10/24 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet6 fd00:213::10/64 scope global nodad \\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::68:77ff:fe00:10a/64 scope link \\       valid_lft forever preferred_lft forever
3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever
7: br-4f2a9c    inet 172.18.0.1/16 brd 172.18.255.255 scope global br-4f2a9c\\       valid_lft forever
"""


def file_output(content: bytes | None, meta: str = "644 root root") -> tuple[int, str]:
    if content is None:
        return 0, "MISSING\n"
    return 0, f"{meta}\n{base64.b64encode(content).decode()}"


def meta_output(meta: str | None) -> tuple[int, str]:
    return (0, meta + "\n") if meta else (1, "")


def tls_facts(
    *,
    daemon_json: dict[str, object] | bytes | None = None,
    ca: bytes | None = None,
    cert: bytes | None = None,
    key: str | None = None,
    folder: str | None = None,
    now: datetime = NOW,
    manager: str = "sysv",
    dockerd_args: tuple[str, ...] = ("/usr/sbin/dockerd", "-p", "/var/run/docker.pid"),
    execstart: str = "",
    docker_opts: str | None = "",
    drop_in: bytes | None = None,
    configured: tuple[str, bytes] | None = None,
) -> Facts:
    if isinstance(daemon_json, dict):
        daemon_json = json.dumps(daemon_json, indent=2).encode()
    dockerd = "pid 1\n" + "".join(f"arg {a}\n" for a in dockerd_args) + "nofile 1048576\n"
    if execstart:
        dockerd += (
            f"execstart {{ path=/usr/bin/dockerd ; argv[]={execstart} ; ignore_errors=no }}\n"
        )
    elif docker_opts is not None:
        dockerd += f"docker_opts {docker_opts}\n"
    raw = {
        "file:/etc/docker/daemon.json": file_output(daemon_json),
        "dockerd": (0, dockerd),
        "service_manager": (0, manager + "\n"),
        "tls:identity": (
            0,
            f"hostname web1\nfqdn web1.example.org\nnow {int(now.timestamp())}\n"
            + "".join(f"addr {line}\n" for line in IP_ADDR.splitlines()),
        ),
        "tls:server-cert": file_output(cert, "444 root root"),
        f"file:{HOST_CA_PATH}": file_output(ca, "444 root root"),
        f"meta:{SERVER_KEY_PATH}": meta_output(key),
        "meta:/etc/docker/tls": meta_output(folder),
        f"file:{DROP_IN_PATH}": file_output(drop_in),
        "tls:configured-cert": (
            0,
            f"{configured[0]}\n{base64.b64encode(configured[1]).decode()}" if configured else "",
        ),
    }
    return Facts.from_raw(DOCKER_TLS.facts(ON), raw)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME (client bundles) and DOCKER_CONFIG (contexts) for each test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "home" / ".docker"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def ca_root(tmp_path: Path) -> Path:
    return tmp_path / "ca"


def prep(answers: DockerTlsAnswers, facts: Facts, ca_root: Path, **extra: object) -> PreparedTls:
    options: dict[str, object] = {
        "host": "web1", "address": "web1.example.org", "passphrase": PASS,
        "confirmation": PASS, "ca_root": ca_root, "now": NOW,
    }  # fmt: skip
    options.update(extra)
    return prepare(answers, facts, **options)  # type: ignore[arg-type]


def written(plan, path):
    return next(a for a in plan.actions if isinstance(a, WriteFile) and a.path == path)


def applied(prepared: PreparedTls, **extra: object) -> Facts:
    """The facts of a host after the prepared plan was applied (a sysv practice host)."""
    plan = DOCKER_TLS.plan(prepared, tls_facts(**extra))  # type: ignore[arg-type]
    material = prepared.material
    assert material is not None and material.server is not None
    return tls_facts(
        daemon_json=written(plan, "/etc/docker/daemon.json").content,
        ca=material.ca_cert,
        cert=material.server.cert_pem,
        key="400 root root",
        folder="700 root root",
        **extra,  # type: ignore[arg-type]
    )


# ---- a fresh host -------------------------------------------------------------------------


def test_fresh_host_gets_ca_cert_key_config_and_one_restart(ca_root, home):
    facts = tls_facts()
    prepared = prep(ON, facts, ca_root)
    plan = DOCKER_TLS.plan(prepared, facts)
    kinds = [(type(a).__name__, getattr(a, "path", "")) for a in plan.actions]
    assert kinds == [
        ("RunCommand", ""),
        ("WriteFile", HOST_CA_PATH),
        ("WriteFile", SERVER_CERT_PATH),
        ("WriteFile", SERVER_KEY_PATH),
        ("WriteFile", "/etc/docker/daemon.json"),
        ("RunCommand", ""),
    ]
    assert plan.actions[0].script == "install -d -m 0700 -o root -g root /etc/docker/tls"
    modes = {
        a.path: (a.mode, a.owner, a.group, a.secret)
        for a in plan.actions
        if isinstance(a, WriteFile)
    }
    assert modes[HOST_CA_PATH] == (0o444, "root", "root", False)
    assert modes[SERVER_CERT_PATH] == (0o444, "root", "root", False)
    assert modes[SERVER_KEY_PATH] == (0o400, "root", "root", True)
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert config == {
        "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
        "tls": True, "tlsverify": True, "tlscacert": HOST_CA_PATH,
        "tlscert": SERVER_CERT_PATH, "tlskey": SERVER_KEY_PATH,
    }  # fmt: skip
    assert not check_types(config)
    assert not flag_conflicts(config, command_line_flags(("dockerd", "-p", "/var/run/docker.pid")))
    # The restart is the engine step's own, word for word, so a combined plan restarts once.
    assert plan.actions[-1] == restart_dockerd("sysv")
    assert any("2376 only to the networks you administer" in note for note in plan.notes)
    assert any(str(home / ".docker/hostwiz/web1") in note for note in plan.notes)


def test_the_server_certificate_names_the_host_every_address_and_loopback(ca_root, home):
    facts = tls_facts()
    prepared = prep(
        DockerTlsAnswers(enabled=True, extra_sans=("docker.example.org", "192.0.2.7")),
        facts,
        ca_root,
    )
    cert = written(DOCKER_TLS.plan(prepared, facts), SERVER_CERT_PATH).content
    info = cert_info(cert)
    assert info is not None and info.server_auth and not info.client_auth
    assert set(info.dns_names) == {"web1.example.org", "web1", "localhost", "docker.example.org"}
    assert set(info.ip_addresses) == {
        "10.213.0.10",
        "fd00:213::10",
        "127.0.0.1",
        "::1",
        "192.0.2.7",
    }
    assert info.subject == "web1.example.org"
    assert (info.not_after - NOW) <= timedelta(days=365)
    assert issued_by(cert, prepared.material.ca_cert)


def test_the_key_never_renders(ca_root, home):
    facts = tls_facts()
    prepared = prep(ON, facts, ca_root)
    text = as_text(render_plan(DOCKER_TLS.plan(prepared, facts)))
    assert "PRIVATE KEY" not in text
    assert f"new file: {SERVER_KEY_PATH} (mode 0400, root:root)" in text
    assert "secret content, not shown" in text
    assert "BEGIN CERTIFICATE" in text  # certificates are public: their diff is shown
    assert "PRIVATE KEY" not in repr(prepared)


def test_prepare_creates_the_ca_folder_private_and_encrypted(ca_root, home):
    assert not ca_exists("default", ca_root)
    prep(ON, tls_facts(), ca_root)
    folder = CaFolder.for_site("default", ca_root)
    assert ca_exists("default", ca_root)
    assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.key_path.stat().st_mode) == 0o600
    assert folder.key_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


# ---- settling: a second run, renewal ------------------------------------------------------


def test_a_second_run_plans_nothing(ca_root, home):
    first = prep(ON, tls_facts(), ca_root)
    install_client(first, docker_cli="/nonexistent/docker")
    after = applied(first)
    again = prep(ON, after, ca_root, confirmation=None)
    assert again.material.server is None and not again.material.client_new
    assert DOCKER_TLS.plan(again, after).empty
    status = DOCKER_TLS.status(ON, after)
    assert status.status is Status.DONE and "valid 365 more days" in status.summary


def test_a_certificate_close_to_expiry_is_renewed_with_one_restart(ca_root, home):
    first = prep(ON, tls_facts(), ca_root)
    later = NOW + timedelta(days=340)
    after = applied(first, now=later)
    status = DOCKER_TLS.status(ON, after)
    assert status.status is Status.DRIFTED and "expires in 25 days" in status.summary
    renewed = prep(ON, after, ca_root, confirmation=None, now=later)
    assert renewed.material.server_reason == "the current one expires in 25 days"
    plan = DOCKER_TLS.plan(renewed, after)
    paths = [a.path for a in plan.actions if isinstance(a, WriteFile)]
    assert paths == [SERVER_CERT_PATH, SERVER_KEY_PATH]  # same CA, same daemon.json
    assert sum(isinstance(a, RunCommand) for a in plan.actions) == 1
    assert issued_by(renewed.material.server.cert_pem, first.material.ca_cert)


def test_renew_asked_for_reissues_both_leaves(ca_root, home):
    first = prep(ON, tls_facts(), ca_root)
    install_client(first, docker_cli="/nonexistent/docker")
    after = applied(first)
    renewed = prep(DockerTlsAnswers(enabled=True, renew=True), after, ca_root, confirmation=None)
    assert renewed.material.server is not None and renewed.material.client_new
    assert renewed.material.server.cert_pem != first.material.server.cert_pem


def test_a_new_address_on_the_host_reissues_the_server_certificate(ca_root, home):
    first = prep(ON, tls_facts(), ca_root)
    after = applied(first)
    bigger = DockerTlsAnswers(enabled=True, extra_sans=("api.example.org",))
    again = prep(bigger, after, ca_root, confirmation=None)
    assert again.material.server_reason == "the current one lacks api.example.org"


# ---- together with the engine step; systemd -----------------------------------------------


def test_with_the_engine_step_daemon_json_is_merged_and_dockerd_restarts_once(ca_root, home):
    engine = DockerEngineAnswers(mode="rootful")
    facts = docker_facts(engine)
    tls_part = tls_facts()
    merged = Facts(
        {
            **{n: facts.get(n) for n in facts.names()},
            **{n: tls_part.get(n) for n in tls_part.names()},
        },
        {},
    )
    prepared = prep(ON, merged, ca_root)
    changeset = plan_changeset(
        "web1", [Selection(DOCKER_ENGINE, engine), Selection(DOCKER_TLS, prepared)], merged
    )
    _, tls_plan = changeset.plans
    config = json.loads(written(tls_plan, "/etc/docker/daemon.json").content)
    assert config["icc"] is False and config["tlsverify"] is True  # both steps' keys
    restarts = [
        a for a in changeset.actions() if isinstance(a, RunCommand) and "restart" in a.script
    ]
    assert len(restarts) == 1 and restarts[0] is tls_plan.actions[-1]
    assert "PRIVATE KEY" not in as_text(render_changeset(changeset))


def test_systemd_with_fd_listener_gets_a_drop_in_without_h(ca_root, home):
    args = ("/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock")
    facts = tls_facts(manager="systemd", dockerd_args=args, execstart=" ".join(args))
    plan = DOCKER_TLS.plan(prep(ON, facts, ca_root), facts)
    drop_in = written(plan, DROP_IN_PATH).content.decode()
    assert (
        "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\n"
        in drop_in
    )
    assert "-H" not in drop_in.split("[Service]")[1]
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert config["hosts"] == ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]
    commands = [a for a in plan.actions if isinstance(a, RunCommand)]
    assert commands[-2].script == "systemctl daemon-reload"
    assert (
        commands[-2].undo.startswith("systemctl daemon-reload\n")
        and "restart docker" in commands[-2].undo
    )
    assert commands[-1] == restart_dockerd("systemd")
    assert any("starts it without -H" in note for note in plan.notes)
    # Once the drop-in is in place, systemd starts dockerd without -H: nothing more to do.
    after_args = ("/usr/bin/dockerd", "--containerd=/run/containerd/containerd.sock")
    prepared = prep(ON, facts, ca_root, confirmation=None)
    settled = tls_facts(
        manager="systemd", dockerd_args=after_args, execstart=" ".join(after_args),
        daemon_json=written(plan, "/etc/docker/daemon.json").content,
        drop_in=written(plan, DROP_IN_PATH).content,
    )  # fmt: skip
    replan = DOCKER_TLS.plan(prepared, settled)
    assert not any(getattr(a, "path", "") == DROP_IN_PATH for a in replan.actions)


def test_h_in_docker_opts_is_refused_before_a_ca_is_made(ca_root, home):
    facts = tls_facts(docker_opts="-H unix:///var/run/docker.sock -H tcp://0.0.0.0:2375")
    with pytest.raises(PlanConflict) as caught:
        prep(ON, facts, ca_root)
    assert "-H unix:///var/run/docker.sock" in caught.value.message
    assert "DOCKER_OPTS" in caught.value.hint
    assert not ca_root.exists()


def test_a_tls_flag_on_the_command_line_is_a_conflict(ca_root, home):
    facts = tls_facts(docker_opts="--tlsverify")
    with pytest.raises(PlanConflict, match=r"'tlsverify' is set in daemon.json and as --tlsverify"):
        prep(ON, facts, ca_root)


def test_the_admins_own_listeners_and_keys_are_kept(ca_root, home):
    facts = tls_facts(daemon_json={"hosts": ["unix:///run/alt.sock"], "data-root": "/srv/docker"})
    plan = DOCKER_TLS.plan(prep(ON, facts, ca_root), facts)
    config = json.loads(written(plan, "/etc/docker/daemon.json").content)
    assert config["hosts"] == ["unix:///run/alt.sock", "tcp://0.0.0.0:2376"]
    assert config["data-root"] == "/srv/docker"


# ---- an existing setup that is not ours ---------------------------------------------------


def other_ca_setup(tmp_path: Path) -> tuple[bytes, bytes]:
    from wizard.pki import CertificateAuthority

    other = CertificateAuthority.create("elsewhere", NOW)
    return other.cert_pem, other.issue("server", "old", ["web1"], now=NOW).cert_pem


def test_an_existing_setup_stops_and_explains(tmp_path, ca_root, home):
    _, cert = other_ca_setup(tmp_path)
    config = {"tls": True, "tlsverify": True, "tlscacert": "/etc/docker/CA/ca.pem",
              "tlscert": "/etc/docker/CA/server-cert.pem", "tlskey": "/etc/docker/CA/server-key.pem"}  # fmt: skip
    facts = tls_facts(daemon_json=config, configured=("/etc/docker/CA/server-cert.pem", cert))
    with pytest.raises(ExistingTlsSetup) as caught:
        prep(ON, facts, ca_root)
    message = caught.value.message
    assert (
        '"tlscert": "/etc/docker/CA/server-cert.pem" (hostwiz uses /etc/docker/tls/server-cert.pem)'
        in message
    )
    assert "issued by 'hostwiz CA elsewhere'" in message
    assert 'tls.existing = "replace"' in caught.value.hint and '"reuse"' in caught.value.hint
    assert not ca_root.exists()  # explained before anything changed
    assert DOCKER_TLS.status(ON, facts).status is Status.UNKNOWN

    reuse = DockerTlsAnswers(enabled=True, existing="reuse")
    prepared = prep(reuse, facts, ca_root)
    assert prepared.material is None and DOCKER_TLS.plan(prepared, facts).empty
    assert "kept" in DOCKER_TLS.status(reuse, facts).summary

    replace = DockerTlsAnswers(enabled=True, existing="replace")
    plan = DOCKER_TLS.plan(prep(replace, facts, ca_root), facts)
    text = as_text(render_plan(plan))
    assert '-  "tlscert": "/etc/docker/CA/server-cert.pem",' in text
    assert '+  "tlscert": "/etc/docker/tls/server-cert.pem",' in text
    assert any(
        "clients holding certificates from the old CA will be refused" in w for w in plan.warnings
    )


def test_our_paths_holding_another_ca_count_as_an_existing_setup(tmp_path, ca_root, home):
    ca, cert = other_ca_setup(tmp_path)
    facts = tls_facts(ca=ca, cert=cert, key="400 root root", folder="700 root root")
    with pytest.raises(ExistingTlsSetup, match="is the CA 'hostwiz CA elsewhere', not your CA"):
        prep(ON, facts, ca_root)


def test_tls_without_client_verification_is_not_taken_over_silently(ca_root, home):
    facts = tls_facts(daemon_json={"tls": True, "tlscert": SERVER_CERT_PATH})
    with pytest.raises(ExistingTlsSetup, match='without "tlsverify"'):
        prep(ON, facts, ca_root)


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["web 1", "-web1", "a..b", "10.0.0.300", "http://web1", "web1_x"])
def test_a_san_that_is_neither_name_nor_address_is_refused(bad):
    with pytest.raises(SanError) as caught:
        DockerTlsAnswers(extra_sans=("ok.example.org", bad))
    assert caught.value.message.startswith("tls.extra_sans: ")
    assert repr(bad) in caught.value.message and "192.0.2.10" in caught.value.hint


def test_a_bad_san_in_a_preset_is_a_preset_error():
    with pytest.raises(PresetError, match="neither a DNS name nor an IP address"):
        parse_preset("test.toml", '[tls]\nextra_sans = ["web 1"]\n')
    answers = build(DockerTlsAnswers, {"extra_sans": "A.example.org, 2001:DB8::1"})
    assert answers.extra_sans == ("a.example.org", "2001:db8::1")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"server_days": 400}, "1 to 365 days"),
        ({"renew_within_days": 365}, "not shorter than"),
        ({"site": "../etc"}, "cannot name a CA folder"),
    ],
)
def test_answers_that_make_no_sense_are_refused(values, message):
    with pytest.raises(InvalidAnswer, match=message):
        build(DockerTlsAnswers, values)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("", "", "empty"),
        ("short", "short", "shorter than 12"),
        ("long enough one", "long enough two", "differ"),
    ],
)
def test_a_bad_new_passphrase_creates_nothing(ca_root, home, first, second, message):
    with pytest.raises(PassphraseProblem, match=message):
        prep(ON, tls_facts(), ca_root, passphrase=Secret(first), confirmation=Secret(second))
    assert not ca_root.exists()


def test_a_wrong_passphrase_is_explained_and_changes_nothing(ca_root, home):
    prep(ON, tls_facts(), ca_root)
    folder = CaFolder.for_site("default", ca_root)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.path.iterdir()}
    with pytest.raises(WrongPassphrase) as caught:
        prep(ON, tls_facts(), ca_root, passphrase=Secret("not the passphrase"))
    assert (
        "does not unlock the CA" in caught.value.message
        and "nothing was changed" in caught.value.hint
    )
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.path.iterdir()}
    assert after == before


def test_an_existing_ca_is_reused_never_overwritten(ca_root, home):
    first = prep(ON, tls_facts(), ca_root)
    second = prep(ON, tls_facts(), ca_root, confirmation=Secret("something else entirely"))
    assert first.material.ca_cert == second.material.ca_cert


def test_half_a_ca_is_refused(ca_root, home):
    prep(ON, tls_facts(), ca_root)
    CaFolder.for_site("default", ca_root).key_path.unlink()
    with pytest.raises(CaFolderProblem, match="only half a CA"):
        prep(ON, tls_facts(), ca_root)


# ---- without the passphrase: off, status, and the need for it -----------------------------


def test_without_material_the_step_is_off_or_asks_for_the_passphrase():
    facts = tls_facts()
    assert DOCKER_TLS.plan(DockerTlsAnswers(), facts).empty
    with pytest.raises(NeedsPassphrase, match="needs its passphrase"):
        DOCKER_TLS.plan(ON, facts)
    assert DOCKER_TLS.status(DockerTlsAnswers(), facts).status.value == "off"
    assert DOCKER_TLS.status(ON, facts).status is Status.NOT_DONE


def test_the_step_is_registered_after_docker():
    names = list(STEPS)
    assert names.index("tls") == names.index("docker") + 1


def test_parse_identity_keeps_host_addresses_and_skips_link_local_and_container_bridges():
    identity = parse_identity(0, "hostname web1\nfqdn web1.example.org\nnow 1700000000\n"
                              + "".join(f"addr {line}\n" for line in IP_ADDR.splitlines()))  # fmt: skip
    assert identity.addresses == ("127.0.0.1", "::1", "10.213.0.10", "fd00:213::10")
    assert identity.now == datetime.fromtimestamp(1700000000, UTC)
    assert identity.names() == (
        "web1.example.org", "web1", "127.0.0.1", "::1", "10.213.0.10", "fd00:213::10", "localhost",
    )  # fmt: skip


# ---- the client side ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_install_client_writes_the_bundle_and_a_context_without_switching(ca_root, home):
    config = home / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text('{"auths": {}}\n')
    prepared = prep(ON, tls_facts(), ca_root)
    setup = install_client(prepared)
    folder = home / ".docker" / "hostwiz" / "web1"
    assert setup.bundle_dir == folder and setup.context.action == "created"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert (folder / "ca.pem").read_bytes() == prepared.material.ca_cert
    assert cert_info((folder / "cert.pem").read_bytes()).client_auth
    inspect = os.popen("docker context inspect web1").read()
    assert (
        '"Host": "tcp://web1.example.org:2376"' in inspect and '"SkipTLSVerify": false' in inspect
    )
    assert config.read_text() == '{"auths": {}}\n'  # the current context is untouched
    assert install_client(prepared).context.action == "unchanged"


def test_the_facts_print_as_json_for_hostwiz_facts(ca_root, home):
    from hostwiz.cli import _jsonable

    first = prep(ON, tls_facts(), ca_root)
    facts = applied(first)
    text = json.dumps({name: facts.get(name) for name in facts.names()}, default=_jsonable)
    assert '"expires": "2026-03-01T' in text and "PRIVATE KEY" not in text
    assert facts.get("tls:server-cert").info.server_auth
