"""The TLS step in a site: two practice hosts whose preset turns TLS on. The CA passphrase is
asked (here: given for scripts) once for the site; one CA issues a server certificate for
each host (its own names and address) and a client bundle and docker context per host; the
docker CLI then reaches both daemons over TLS, and a second plan changes nothing.

``hostwiz`` runs as a subprocess, without a terminal, with its own HOME, DOCKER_CONFIG and XDG
data dir under ``tmp_path`` (set after the hosts are up: the lab keeps its files in the real
ones).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wizard.pki import CaFolder, cert_info, issued_by
from wizard.steps.tls.answers import SERVER_CERT_PATH
from wizard.tls_client import Bundle

pytestmark = [pytest.mark.lab, pytest.mark.docker]

PASSPHRASE = "correct horse battery staple"


def test_a_two_host_site_with_tls_one_ca_a_certificate_per_host_a_bundle_each(
    make_lab_hosts: Any, lab_ssh_config: Path, tmp_path: Path
) -> None:
    first, second = make_lab_hosts(2)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if key != "HOSTWIZ_CA_PASSPHRASE"}
    env.update({"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"),
                "XDG_DATA_HOME": str(home / "data")})  # fmt: skip
    (tmp_path / "tls.toml").write_text("[tls]\nenabled = true\n")
    site = tmp_path / "pair.toml"
    site.write_text(
        'name = "pair"\npreset = "tls.toml"\n'
        f'[hosts.one]\ntarget = "{first.name}"\n[hosts.two]\ntarget = "{second.name}"\n'
    )

    def hostwiz(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hostwiz", *args, "--site", str(site),
                   "-F", str(lab_ssh_config)]  # fmt: skip
        return subprocess.run(command, env={**env, **extra}, capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL, check=False)  # fmt: skip

    ca = CaFolder(home / "data" / "hostwiz" / "ca" / "default")
    nobody = hostwiz("plan")  # no terminal, no passphrase: explained, nothing made
    assert nobody.returncode == 1 and "nobody is here to type it" in nobody.stderr
    assert not ca.path.exists()

    applied = hostwiz("apply", "--yes", "--confirm-timeout", "60", HOSTWIZ_CA_PASSPHRASE=PASSPHRASE)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stderr.count("Created a new CA") == 1 and ca.holds_ca()
    assert PASSPHRASE not in applied.stdout + applied.stderr
    ca_pem = ca.cert_path.read_bytes()
    for host in (first, second):
        server = host.console().run(f"cat {SERVER_CERT_PATH}").out.encode()
        info = cert_info(server)
        assert info is not None and issued_by(server, ca_pem)  # one CA for the site
        assert host.address in info.names  # each host its own certificate
        bundle = Bundle(home / ".docker" / "hostwiz" / host.name)
        assert bundle.read() is not None and bundle.read()[0] == ca_pem  # type: ignore[index]
        assert f"docker --context {host.name} ps" in applied.stdout
        ps = subprocess.run(["docker", "--context", host.name, "version", "--format",
                             "{{.Server.Version}}"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
        assert ps.returncode == 0 and ps.stdout.strip(), ps.stderr  # TLS to this host's dockerd

    again = hostwiz("plan", HOSTWIZ_CA_PASSPHRASE=PASSPHRASE)
    assert again.returncode == 0, again.stdout + again.stderr  # nothing re-issued, nothing to do
    assert "Created a new CA" not in again.stderr

    # Putting the site back closes both TLS ports; the contexts and bundles stay on this
    # machine, and the rollback says so, host by host, with what to do.
    back = hostwiz("rollback", "--yes", "--confirm-timeout", "60")
    assert back.returncode == 0, back.stdout + back.stderr
    for host, name in ((first, "one"), (second, "two")):
        assert not host.console().run(f"test -e {SERVER_CERT_PATH}").ok
        assert f"{name}: On this machine, your docker context {host.name!r}" in back.stdout
        assert f"`docker context rm {host.name}`" in back.stdout
