"""The TLS step through its front ends, on practice hosts with a real dockerd.

The ``hostwiz`` command runs as a subprocess, as an admin or a CI job runs it: its standard
input is not a terminal, so the CA passphrase comes from ``HOSTWIZ_CA_PASSPHRASE`` or
``--passphrase-file``. The plain (questionary) mode runs in this process, typed into through a
prompt_toolkit pipe. Each test has its own practice host, and its own HOME, DOCKER_CONFIG and
XDG data dir (where the CA lives) under ``tmp_path``, set only after the host is up (the lab
keeps its own files in the real XDG data dir). After each apply, the docker CLI (``docker
--context NAME ps``) and the docker SDK connect from this machine over TLS.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from lab import LabHost
from screens.app import default_args
from screens.plain import run_plain
from snapshots.store import list_snapshots
from wizard.answers import fields_of
from wizard.pki import CaFolder
from wizard.steps import STEPS
from wizard.steps.tls.answers import TLS_DIR, DockerTlsAnswers
from wizard.tls_client import Bundle, sdk_client
from wizard.transport.ssh import SshTransport

pytestmark = [pytest.mark.lab, pytest.mark.docker]

PASSPHRASE = "correct horse battery staple"
PORT = 2376
KILL_LINE = "\x15"  # Ctrl-U


@dataclass(frozen=True)
class Admin:
    """The admin's machine for one test: where the CA, bundles and docker contexts go."""

    host: LabHost
    ssh_config: Path
    home: Path
    env: dict[str, str]

    @property
    def ca(self) -> CaFolder:
        return CaFolder(self.home / "data" / "hostwiz" / "ca" / "default")

    @property
    def bundle(self) -> Bundle:
        return Bundle(self.home / ".docker" / "hostwiz" / self.host.name)

    def hostwiz(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The real command, without a terminal; the host named through our ssh config."""
        command = [sys.executable, "-m", "hostwiz", *args, "--host", self.host.name]
        command += ["-F", str(self.ssh_config)]
        return subprocess.run(
            command, env={**self.env, **env}, capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip

    def docker_ps(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "--context", self.host.name, "ps", "--format", "{{.ID}}"],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def host_has_tls(self) -> bool:
        return self.host.console().run(f"test -e {TLS_DIR}").ok

    def sdk_answers(self) -> bool:
        client = sdk_client(self.host.address, PORT, self.bundle)
        try:
            return bool(client.version()["ApiVersion"])
        finally:
            client.close()


@pytest.fixture
def admin(make_lab_hosts: Any, lab_ssh_config: Path, tmp_path: Path) -> Iterator[Admin]:
    (host,) = make_lab_hosts(1)  # before HOME and XDG_DATA_HOME move: the lab uses the real ones
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if key != "HOSTWIZ_CA_PASSPHRASE"}
    env.update({
        "HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"),
        "XDG_DATA_HOME": str(home / "data"), "XDG_STATE_HOME": str(home / "state"),
    })  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:  # undone before the host is taken down
        for key in ("HOME", "DOCKER_CONFIG", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            patch.setenv(key, env[key])
        patch.delenv("HOSTWIZ_CA_PASSPHRASE", raising=False)
        yield Admin(host, Path(lab_ssh_config), home, env)


class Terminal:
    """``hostwiz`` on a pseudo-terminal of its own (its controlling terminal, which getpass
    reads from), typed at like a person would."""

    def __init__(self, admin: Admin, *args: str) -> None:
        command = [sys.executable, "-m", "hostwiz", *args, "--host", admin.host.name]
        command += ["-F", str(admin.ssh_config)]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a new session whose controlling terminal is the pty
            os.execve(sys.executable, command, admin.env)
        self.transcript = ""
        """Everything the terminal showed so far."""
        self.position = 0
        """Where the last match ended: the next wait looks after it."""

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the program has ended."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child has ended
            return False
        self.transcript += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return bool(chunk)

    def wait_for(self, pattern: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while True:
            found = re.compile(pattern).search(self.transcript, self.position)
            if found:
                self.position = found.end()
                return
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{pattern!r} did not show; the terminal:\n{self.transcript}")

    def type(self, line: str) -> None:
        os.write(self.fd, f"{line}\r".encode())

    def exit_code(self, seconds: float = 300) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._read(0.5):
            pass
        while time.monotonic() < deadline:  # the terminal closes a moment before the exit
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"hostwiz did not end; the terminal:\n{self.transcript}")


def tls_preset(admin: Admin) -> str:
    path = admin.home / "tls.toml"
    path.write_text("[tls]\nenabled = true\n")
    return str(path)


def test_cli_plan_then_apply_with_the_passphrase_from_the_environment_or_a_file(
    admin: Admin,
) -> None:
    preset = tls_preset(admin)

    # No passphrase and no terminal: explained, nothing made anywhere.
    nobody = admin.hostwiz("plan", "--preset", preset)
    assert nobody.returncode == 1
    assert "nobody is here to type it" in nobody.stderr
    assert "HOSTWIZ_CA_PASSPHRASE" in nobody.stderr and "--passphrase-file" in nobody.stderr
    empty = admin.hostwiz("plan", "--preset", preset, HOSTWIZ_CA_PASSPHRASE="")
    assert empty.returncode == 1 and "the CA passphrase is empty" in empty.stderr
    assert not admin.ca.path.exists()

    # plan: the new CA is the one local change, and it says so; the host is untouched.
    planned = admin.hostwiz("plan", "--preset", preset, HOSTWIZ_CA_PASSPHRASE=PASSPHRASE)
    assert planned.returncode == 2, planned.stderr
    assert f"Created a new CA in {admin.ca.path}" in planned.stderr
    assert admin.ca.holds_ca()
    assert "/etc/docker/tls/server-cert.pem" in planned.stdout
    assert f"docker --context {admin.host.name} ps" in planned.stdout
    assert not admin.host_has_tls() and not admin.bundle.folder.exists()
    ca_key = admin.ca.key_path.read_bytes()

    # A wrong passphrase (from a file): explained, nothing changed here or on the host.
    wrong = admin.home / "wrong"
    wrong.write_text("not the passphrase at all\n")
    wrong.chmod(0o600)
    refused = admin.hostwiz("apply", "--yes", "--preset", preset, "--passphrase-file", str(wrong))
    assert refused.returncode == 1
    assert "does not unlock the CA" in refused.stderr and "nothing was changed" in refused.stderr
    assert admin.ca.key_path.read_bytes() == ca_key
    assert not admin.host_has_tls() and not admin.bundle.folder.exists()

    # The right one: applied, then the client bundle and the docker context.
    right = admin.home / "passphrase"
    right.write_text(f"{PASSPHRASE}\n")
    right.chmod(0o600)
    applied = admin.hostwiz("apply", "--yes", "--preset", preset, "--passphrase-file", str(right))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"Client bundle (written): {admin.bundle.folder}" in applied.stdout
    assert f"  docker --context {admin.host.name} ps" in applied.stdout
    assert "can be read by other users" not in applied.stderr
    for result in (nobody, empty, planned, refused, applied):
        assert PASSPHRASE not in result.stdout + result.stderr
    assert admin.host_has_tls()
    assert oct(admin.bundle.key.stat().st_mode & 0o777) == "0o600"
    ps = admin.docker_ps()
    assert ps.returncode == 0, ps.stderr
    assert admin.sdk_answers()

    # Again, in plain mode without questions: nothing to change on the host, the client
    # side is checked and left as it is; the step list says how long both certificates last.
    again = admin.hostwiz("--plain", "--yes", "--preset", preset, HOSTWIZ_CA_PASSPHRASE=PASSPHRASE)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to change" in again.stdout
    assert f"docker context {admin.host.name!r} unchanged" in again.stdout
    facts = admin.hostwiz("facts", "--preset", preset)
    assert "server certificate valid 36" in facts.stdout, facts.stdout
    assert "client certificate valid 36" in facts.stdout


def test_plain_mode_asks_twice_for_a_new_ca_then_applies_and_installs_the_client(
    admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    """Go through the TLS step only: switch it on, keep the other answers; the passphrase is
    too short, then typed differently twice, then right; apply; do not save a preset."""
    typed: list[str] = []
    for name in STEPS:
        if name != "tls":
            typed.append("n\r")  # a yes/no answer takes Enter too
            continue
        typed.append("y\r")
        for info in fields_of(DockerTlsAnswers):
            if info.show_if is None:
                typed.append("y\r" if info.name == "enabled" else "\r")
    typed += ["short\r", f"{KILL_LINE}{PASSPHRASE}\r", "a different passphrase\r"]
    typed += [f"{PASSPHRASE}\r", f"{PASSPHRASE}\r", "y\r", "n\r"]
    args = default_args(plain=True, host=admin.host.name, ssh_config=str(admin.ssh_config))
    with create_pipe_input() as pipe:
        pipe.send_text("".join(typed))
        code = run_plain(args, input=pipe, output=DummyOutput())
    out = capsys.readouterr().out
    assert code == 0, out
    assert "never stores" in out
    assert "the two passphrases differ" in out
    assert f"Created a new CA in {admin.ca.path}" in out
    assert "/etc/docker/tls/server-key.pem" in out and PASSPHRASE not in out
    assert f"  docker --context {admin.host.name} ps" in out
    assert admin.host_has_tls()
    ps = admin.docker_ps()
    assert ps.returncode == 0, ps.stderr
    assert admin.sdk_answers()
    with SshTransport.connect(admin.host.name, ssh_config=admin.ssh_config) as ssh:
        assert [info.steps for info in list_snapshots(ssh)] == [("tls",)]


def test_cli_on_a_terminal_asks_twice_for_a_new_ca_once_for_an_existing_one(admin: Admin) -> None:
    """getpass on a real (pseudo-)terminal: nothing typed is echoed; a mismatch and a wrong
    passphrase are explained and asked again; then apply asks before changing the host."""
    preset = tls_preset(admin)
    plan = Terminal(admin, "plan", "--preset", preset)
    plan.wait_for(r"never stores, shows or logs it")
    plan.wait_for(r"Choose a passphrase for the new CA 'default': ")
    plan.type(PASSPHRASE)
    plan.wait_for(r"The same passphrase again: ")
    plan.type("correct horse battery stable")
    plan.wait_for(r"the two passphrases differ\. Type the same passphrase twice")
    plan.wait_for(r"Choose a passphrase for the new CA 'default': ")
    plan.type(PASSPHRASE)
    plan.wait_for(r"The same passphrase again: ")
    plan.type(PASSPHRASE)
    plan.wait_for(r"Created a new CA in ")
    assert plan.exit_code() == 2, plan.transcript
    assert "/etc/docker/tls/server-cert.pem" in plan.transcript
    assert not admin.host_has_tls()

    apply = Terminal(admin, "apply", "--preset", preset)
    apply.wait_for(r"Passphrase of your CA 'default': ")
    apply.type("not the passphrase at all")
    apply.wait_for(r"does not unlock the CA")
    apply.wait_for(r"Passphrase of your CA 'default': ")
    apply.type(PASSPHRASE)
    apply.wait_for(r"Apply these changes\? \[y/N\] ")
    assert not admin.host_has_tls()
    apply.type("y")
    apply.wait_for(rf"docker context '{re.escape(admin.host.name)}' created\. Try:\n  docker --")
    assert apply.exit_code() == 0, apply.transcript
    for terminal in (plan, apply):
        assert PASSPHRASE not in terminal.transcript  # never echoed nor printed
    ps = admin.docker_ps()
    assert ps.returncode == 0, ps.stderr
    assert admin.sdk_answers()


LONG_FQDN = "docker-build-runner-for-the-integration-environment-7.eu-west.example.org"


def test_cli_refusals_change_nothing_and_a_long_fqdn_only_shortens_the_common_name(
    admin: Admin,
) -> None:
    preset = tls_preset(admin)
    secret = {"HOSTWIZ_CA_PASSPHRASE": PASSPHRASE}

    # A client name too long for a certificate: refused before a CA is made.
    long_name = admin.hostwiz("plan", "--preset", preset, "--set", "tls.client_name=" + "a" * 65,
                              **secret)  # fmt: skip
    assert long_name.returncode == 1
    assert "tls.client_name is 65 characters" in long_name.stderr
    assert "Traceback" not in long_name.stderr
    assert not admin.ca.path.exists()

    # ~/.docker holding the admin's own bundle: refused before a CA is made; not chmodded.
    own = admin.home / ".docker"
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (own / name).write_text(f"the admin's own {name}\n")
    own.chmod(0o755)
    into_docker = admin.hostwiz("apply", "--yes", "--preset", preset, "--set",
                                f"tls.bundle_dir={own}", **secret)  # fmt: skip
    assert into_docker.returncode == 1
    assert f"tls.bundle_dir: {own} already holds files hostwiz did not put there" in (
        into_docker.stderr
    )
    assert "Traceback" not in into_docker.stderr
    assert not admin.ca.path.exists() and not admin.host_has_tls()
    assert oct(own.stat().st_mode & 0o777) == "0o755"
    assert (own / "key.pem").read_text() == "the admin's own key.pem\n"

    # A host whose FQDN is longer than a common name may be: the full name is in the SAN.
    console = admin.host.console()
    assert console.run(f"echo '{admin.host.address} {LONG_FQDN} runner7' >> /etc/hosts").ok
    assert console.run("hostname runner7").ok  # the practice host's own UTS namespace
    assert console.run("hostname -f").out.strip() == LONG_FQDN
    applied = admin.hostwiz("apply", "--yes", "--preset", preset, **secret)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    served = console.run("openssl x509 -noout -subject -ext subjectAltName "
                         f"-in {TLS_DIR}/server-cert.pem").out  # fmt: skip
    assert "CN = runner7" in served and f"DNS:{LONG_FQDN}" in served
    assert admin.sdk_answers()
