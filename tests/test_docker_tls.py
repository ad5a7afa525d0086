"""The TLS step on practice hosts with a real dockerd, checked from this machine over TLS.

Each test makes its own practice host (``make_lab_hosts``) so the shared ``lab_host`` of other
tests is never touched. The CA, client bundles and docker contexts live under ``tmp_path``
(HOME and DOCKER_CONFIG point there). Traffic goes only to the practice host's address.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from snapshots.rollback import rollback_plan
from snapshots.store import list_snapshots
from wizard.actions import RunCommand, WriteFile
from wizard.pki import CaFolder, CertificateAuthority, WrongPassphrase, cert_info, issued_by
from wizard.plan import Changeset
from wizard.secrets import Secret
from wizard.session import Selection, apply, plan_changeset, preview, read_facts
from wizard.steps.tls import DOCKER_TLS
from wizard.steps.tls.answers import (
    HOST_CA_PATH,
    SERVER_CERT_PATH,
    SERVER_KEY_PATH,
    TLS_DIR,
    DockerTlsAnswers,
)
from wizard.steps.tls.local import install_client, prepare
from wizard.steps.tls.plan import PreparedTls
from wizard.tls_client import Bundle, der_of, materialised, sdk_client, served_certificate
from wizard.transaction import apply_changeset
from wizard.transport.local import LocalTransport
from wizard.transport.ssh import SshTransport

pytestmark = [pytest.mark.lab, pytest.mark.docker]

PASS = Secret("correct horse battery staple")
PORT = 2376


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and DOCKER_CONFIG of this test: bundles and contexts never reach the real ones."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    return home


@pytest.fixture
def practice(make_lab_hosts, lab_ssh_config) -> Iterator[tuple[SshTransport, LocalTransport, str]]:
    """Our own practice host: (ssh transport, console, address)."""
    (host,) = make_lab_hosts(1)
    ssh = SshTransport.connect(host.name, ssh_config=lab_ssh_config)
    try:
        yield ssh, host.console(), host.address
    finally:
        ssh.close()


def prepared_for(
    ssh: SshTransport, address: str, ca_root: Path, answers: DockerTlsAnswers, **extra: object
) -> PreparedTls:
    facts = read_facts(ssh, [Selection(DOCKER_TLS, answers)])
    options: dict[str, object] = {
        "host": ssh.host_label, "address": address, "passphrase": PASS, "confirmation": PASS,
        "ca_root": ca_root,
    }  # fmt: skip
    options.update(extra)
    return prepare(answers, facts, **options)  # type: ignore[arg-type]


def stat(console: LocalTransport, path: str) -> str:
    return console.run(f"stat -c '%a %U %G' {path}").out.strip()


def read(console: LocalTransport, path: str) -> bytes:
    result = console.run(f"cat {path}")
    assert result.ok, result.err
    return result.stdout


def refused(action) -> bool:
    try:
        action()
    except Exception:
        return True
    return False


ON = DockerTlsAnswers(enabled=True)


def test_apply_then_the_api_answers_over_tls_only_to_our_client(practice, tmp_path, local_home):
    ssh, console, address = practice
    prepared = prepared_for(ssh, address, tmp_path / "ca", ON)
    result = apply(ssh, [Selection(DOCKER_TLS, prepared)])  # health: SDK over TLS from here
    assert result.confirmed
    setup = install_client(prepared)
    assert setup is not None
    bundle = Bundle(setup.bundle_dir)

    # The docker SDK from this machine, with the client certificate: it answers.
    client = sdk_client(address, PORT, bundle)
    assert client.version()["ApiVersion"]
    client.close()
    # The docker context works at once, without switching the current context.
    context = subprocess.run(
        ["docker", "--context", prepared.context, "ps", "--format", "{{.ID}}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert context.returncode == 0, context.stderr
    config = local_home / ".docker" / "config.json"
    assert not config.exists() or "currentContext" not in config.read_text()

    # Refused: no client certificate, a certificate from another CA, plain HTTP.
    no_cert = sdk_client(address, PORT, bundle, with_cert=False)
    assert refused(no_cert.version)
    other = CertificateAuthority.create("elsewhere").issue("client", "mallory")
    with materialised(prepared.material.ca_cert, other) as foreign:
        assert refused(sdk_client(address, PORT, foreign).version)
    with socket.create_connection((address, PORT), timeout=10) as plain:
        plain.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        reply = plain.recv(256)
    assert b" 200 " not in reply and b"HTTPS" in reply  # "sent an HTTP request to an HTTPS server"

    # Artefacts on the host: owner and modes; what the certificates say.
    assert stat(console, TLS_DIR) == "700 root root"
    assert stat(console, HOST_CA_PATH) == "444 root root"
    assert stat(console, SERVER_CERT_PATH) == "444 root root"
    assert stat(console, SERVER_KEY_PATH) == "400 root root"
    assert console.run(f"su admin -s /bin/sh -c 'cat {SERVER_KEY_PATH}'").exit_code != 0
    server = cert_info(read(console, SERVER_CERT_PATH))
    assert server is not None and server.server_auth and not server.client_auth
    hostname = console.run("hostname").out.strip()
    assert {address, "127.0.0.1", "::1"} <= set(server.ip_addresses)
    assert hostname in server.dns_names and "localhost" in server.dns_names
    assert server.days_left(server.not_before) <= 365
    assert issued_by(read(console, SERVER_CERT_PATH), read(console, HOST_CA_PATH))
    mine = cert_info(bundle.cert.read_bytes())
    assert mine is not None and mine.client_auth and not mine.server_auth
    assert oct(bundle.key.stat().st_mode & 0o777) == "0o600"
    config_on_host = json.loads(read(console, "/etc/docker/daemon.json"))
    assert config_on_host["hosts"] == ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]
    assert console.run("timeout 10 docker -H unix:///var/run/docker.sock info >/dev/null").ok

    # The snapshot records which files changed, never the key (it did not exist before).
    snapshot = list_snapshots(ssh)[-1]
    assert snapshot.steps == ("tls",) and SERVER_KEY_PATH in snapshot.paths
    snap = f"/var/lib/hostwiz/snapshots/{snapshot.id}"
    assert not console.run(f"grep -rq 'PRIVATE KEY' {snap}").ok

    # A second run (the CA opened, no confirmation) plans nothing.
    again = prepared_for(ssh, address, tmp_path / "ca", ON, confirmation=None)
    changeset, _ = preview(ssh, [Selection(DOCKER_TLS, again)])
    assert changeset.empty
    status = DOCKER_TLS.status(ON, read_facts(ssh, [Selection(DOCKER_TLS, ON)]))
    assert status.status.value == "done" and "more days" in status.summary
    assert install_client(again).context.action == "unchanged"


def test_a_wrong_passphrase_is_explained_and_changes_nothing(practice, tmp_path, local_home):
    ssh, console, address = practice
    ca_root = tmp_path / "ca"
    prepared_for(ssh, address, ca_root, ON)  # creates the CA
    folder = CaFolder.for_site("default", ca_root)
    stored = folder.key_path.read_bytes()
    # The CA key cannot be used without the passphrase.
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(stored, None)
    before = (list_snapshots(ssh), console.run("ls -la /etc/docker").out)

    with pytest.raises(WrongPassphrase) as caught:
        prepared_for(ssh, address, ca_root, ON, passphrase=Secret("not the passphrase"))
    assert "does not unlock the CA" in caught.value.message
    assert "nothing was changed" in caught.value.hint
    assert folder.key_path.read_bytes() == stored
    assert (list_snapshots(ssh), console.run("ls -la /etc/docker").out) == before
    assert not console.run(f"test -e {TLS_DIR}").ok


def test_renewal_keeps_the_daemon_reachable_and_rollback_removes_everything(
    practice, tmp_path, local_home
):
    ssh, console, address = practice
    ca_root = tmp_path / "ca"
    first = prepared_for(ssh, address, ca_root, ON)
    applied = apply(ssh, [Selection(DOCKER_TLS, first)])
    install_client(first)
    old_server = read(console, SERVER_CERT_PATH)
    old_key = read(console, SERVER_KEY_PATH)

    renew = DockerTlsAnswers(enabled=True, renew=True)
    renewed = prepared_for(ssh, address, ca_root, renew, confirmation=None)
    facts = read_facts(ssh, [Selection(DOCKER_TLS, renewed)])
    changeset = plan_changeset(ssh.host_label, [Selection(DOCKER_TLS, renewed)], facts)
    writes = [a.path for a in changeset.actions() if isinstance(a, WriteFile)]
    assert writes == [SERVER_CERT_PATH, SERVER_KEY_PATH]  # same CA, same daemon.json
    assert sum(isinstance(a, RunCommand) for a in changeset.actions()) == 1  # one restart
    result = apply(ssh, [Selection(DOCKER_TLS, renewed)], expected=changeset)
    assert result.confirmed
    setup = install_client(renewed)
    assert setup is not None and setup.context.action == "updated"

    new_server = read(console, SERVER_CERT_PATH)
    assert new_server != old_server and read(console, SERVER_KEY_PATH) != old_key
    assert issued_by(new_server, first.material.ca_cert)
    bundle = Bundle(setup.bundle_dir)
    assert served_certificate(address, PORT, bundle) == der_of(new_server)
    client = sdk_client(address, PORT, bundle)
    assert client.version()["ApiVersion"]
    client.close()

    # Roll back the renewal, then the first apply: the old daemon.json (none) comes back and
    # the installed certificates, key and folder are gone; dockerd still answers locally.
    for snapshot in (result.snapshot_id, applied.snapshot_id):
        plan = rollback_plan(ssh, snapshot)
        undone = apply_changeset(ssh, Changeset(ssh.host_label, (plan,)), reason="rollback")
        if snapshot == result.snapshot_id:
            assert read(console, SERVER_CERT_PATH) == old_server
            assert read(console, SERVER_KEY_PATH) == old_key
            assert stat(console, SERVER_KEY_PATH) == "400 root root"
    assert not console.run("test -e /etc/docker/daemon.json").ok
    for path in (HOST_CA_PATH, SERVER_CERT_PATH, SERVER_KEY_PATH, TLS_DIR):
        assert not console.run(f"test -e {path}").ok, path
    assert console.run("timeout 10 docker -H unix:///var/run/docker.sock info >/dev/null").ok
    with pytest.raises(OSError):
        socket.create_connection((address, PORT), timeout=5).close()
    assert os.path.exists(bundle.key)  # the admin's bundle is theirs: rollback is host-side
    # ... and the rollback's result says so: what stays on this machine and what to do.
    from snapshots.store import list_snapshots
    from wizard.session import with_rollback_notes

    (steps,) = [i.steps for i in list_snapshots(ssh) if i.id == applied.snapshot_id]
    said = with_rollback_notes(undone, steps, first.host, {"tls": first}).message
    assert f"`docker context rm {first.context}`" in said and f"delete {bundle.folder}" in said


def test_with_the_engine_step_one_apply_one_restart_and_both_settle(practice, tmp_path, local_home):
    from wizard.steps.docker import DOCKER_ENGINE, DockerEngineAnswers

    ssh, console, address = practice
    engine = DockerEngineAnswers()  # userns-remap, hardened settings
    prepared = prepared_for(ssh, address, tmp_path / "ca", ON)
    selections = [Selection(DOCKER_ENGINE, engine), Selection(DOCKER_TLS, prepared)]
    changeset, _ = preview(ssh, selections)
    restarts = [
        a for a in changeset.actions() if isinstance(a, RunCommand) and "restart" in a.script
    ]
    assert len(restarts) == 1
    result = apply(ssh, selections, expected=changeset)  # health of both steps
    assert result.confirmed

    config = json.loads(read(console, "/etc/docker/daemon.json"))
    assert config["userns-remap"] == "default" and config["icc"] is False
    assert config["tlsverify"] is True and "tcp://0.0.0.0:2376" in config["hosts"]
    setup = install_client(prepared)
    assert setup is not None
    client = sdk_client(address, PORT, Bundle(setup.bundle_dir))
    assert any(str(o).startswith("name=userns") for o in client.info()["SecurityOptions"])
    client.close()
    again = prepared_for(ssh, address, tmp_path / "ca", ON, confirmation=None)
    assert preview(ssh, [Selection(DOCKER_ENGINE, engine), Selection(DOCKER_TLS, again)])[0].empty
