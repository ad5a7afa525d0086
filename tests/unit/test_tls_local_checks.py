"""What the TLS step refuses on the admin's side is refused before anything is made: a common
name over 64 characters, a site whose CA name would be, a bundle folder hostwiz did not make.
A refusal leaves no new CA behind, and a folder of the admin's is neither chmodded nor written."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_tls_plan import IP_ADDR, NOW, ON, PASS, ca_root, home, prep, tls_facts
from wizard.answers import build
from wizard.errors import InvalidAnswer
from wizard.facts import Facts
from wizard.local import local_context
from wizard.pki import CertificateAuthority, SanError, cert_info
from wizard.session import Selection, prepare_local
from wizard.steps.tls import DOCKER_TLS
from wizard.steps.tls.answers import DockerTlsAnswers
from wizard.steps.tls.local import install_client

__all__ = ["ca_root", "home"]  # fixtures, used by name

LONG_FQDN = "docker-build-runner-for-the-integration-environment-7.eu-west.example.org"


def with_identity(hostname: str, fqdn: str) -> Facts:
    facts = tls_facts()
    identity = f"hostname {hostname}\nfqdn {fqdn}\nnow {int(NOW.timestamp())}\n" + "".join(
        f"addr {line}\n" for line in IP_ADDR.splitlines()
    )
    return Facts.from_raw(DOCKER_TLS.facts(ON), {**facts.raw, "tls:identity": (0, identity)})


def server_cert(prepared: Any) -> Any:
    assert prepared.material is not None and prepared.material.server is not None
    return cert_info(prepared.material.server.cert_pem)


# ---- common names ---------------------------------------------------------------------------


def test_a_client_name_over_64_characters_is_refused_as_an_answer():
    with pytest.raises(InvalidAnswer, match=r"tls\.client_name is 65 characters") as caught:
        build(DockerTlsAnswers, {"enabled": True, "client_name": "a" * 65})
    assert "at most 64" in caught.value.hint


def test_a_login_name_over_64_characters_is_refused_before_a_ca_is_made(ca_root, home, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "u" * 70)
    with pytest.raises(InvalidAnswer, match="your login name here"):
        prep(ON, tls_facts(), ca_root)
    assert not ca_root.exists()


def test_a_long_fqdn_stays_in_the_san_while_the_common_name_is_the_short_name(ca_root, home):
    assert len(LONG_FQDN) > 64
    info = server_cert(prep(ON, with_identity("runner7", LONG_FQDN), ca_root))
    assert info.subject == "runner7"
    assert LONG_FQDN in info.dns_names


def test_a_long_fqdn_as_the_hostname_too_gives_its_first_label(ca_root, home):
    info = server_cert(prep(ON, with_identity(LONG_FQDN, LONG_FQDN), ca_root))
    assert info.subject == LONG_FQDN.split(".")[0]
    assert LONG_FQDN in info.dns_names


def test_a_site_whose_ca_name_would_be_too_long_is_refused_as_an_answer():
    with pytest.raises(InvalidAnswer, match="at most 53 characters"):
        build(DockerTlsAnswers, {"site": "s" * 54})
    with pytest.raises(InvalidAnswer, match="at most 53 characters"):
        CertificateAuthority.create("s" * 60)
    assert CertificateAuthority.create("s" * 53).name == "hostwiz CA " + "s" * 53


def test_issuing_with_a_long_common_name_is_a_clear_error():
    ca = CertificateAuthority.create("office", NOW)
    with pytest.raises(InvalidAnswer, match=r"common name .* 65 characters"):
        ca.issue("client", "c" * 65, now=NOW)


def test_dns_labels_over_63_characters_are_not_names():
    with pytest.raises(SanError):
        DockerTlsAnswers(extra_sans=("x" * 64 + ".example.org",))
    assert DockerTlsAnswers(extra_sans=("x" * 63 + ".example.org",)).extra_sans


# ---- the client bundle folder ---------------------------------------------------------------


def admins_docker_folder(home: Path) -> dict[str, Any]:
    """~/.docker as many admins have it: their own client bundle and config."""
    folder = home / ".docker"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    for name in ("ca.pem", "cert.pem", "key.pem", "config.json"):
        (folder / name).write_text(f"the admin's own {name}\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_an_existing_folder_hostwiz_did_not_make_is_refused_before_anything_is_made(ca_root, home):
    before = admins_docker_folder(home)
    answers = DockerTlsAnswers(enabled=True, bundle_dir=str(home / ".docker"))
    with pytest.raises(InvalidAnswer, match=r"tls\.bundle_dir: .* hostwiz did not put") as caught:
        prep(answers, tls_facts(), ca_root)
    assert "new or empty folder" in caught.value.hint
    assert not ca_root.exists()
    folder = home / ".docker"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_the_passphrase_is_not_asked_for_a_folder_that_will_be_refused(ca_root, home):
    admins_docker_folder(home)
    answers = DockerTlsAnswers(enabled=True, bundle_dir=str(home / ".docker"))

    def ask(request: Any) -> Any:
        raise AssertionError("the passphrase was asked")

    class Transport:
        host_label = "root@web1"
        hostname = "web1.example.org"

    with pytest.raises(InvalidAnswer, match="hostwiz did not put there"):
        local = local_context(Transport(), ask, root=ca_root)  # type: ignore[arg-type]
        prepare_local([Selection(DOCKER_TLS, answers)], tls_facts(), local)
    assert not ca_root.exists()


def test_writing_the_bundle_into_a_folder_hostwiz_did_not_make_is_refused(ca_root, home):
    folder = home / "bundles"
    prepared = prep(DockerTlsAnswers(enabled=True, bundle_dir=str(folder)), tls_facts(), ca_root)
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")  # appeared between the plan and the apply
    with pytest.raises(InvalidAnswer, match="hostwiz did not put there"):
        install_client(prepared, docker_cli="/nonexistent/docker")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_new_or_empty_folder_is_used_and_marked_so_the_next_run_may_use_it(ca_root, home):
    for folder in (home / "new" / "bundle", home / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        answers = DockerTlsAnswers(enabled=True, bundle_dir=str(folder))
        prepared = prep(
            answers, tls_facts(), ca_root, confirmation=None if ca_root.exists() else PASS
        )
        install_client(prepared, docker_cli="/nonexistent/docker")
        assert (folder / ".hostwiz-bundle").is_file()
        again = prep(answers, tls_facts(), ca_root, confirmation=None)
        assert again.material is not None and not again.material.client_new


def test_the_default_folder_from_before_the_marker_is_still_hostwizs(ca_root, home):
    folder = home / ".docker" / "hostwiz" / "web1"
    folder.mkdir(parents=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (folder / name).write_text("old bundle\n")
    prepared = prep(ON, tls_facts(), ca_root)
    assert install_client(prepared, docker_cli="/nonexistent/docker") is not None
    assert (folder / ".hostwiz-bundle").is_file()


def test_a_wrong_passphrase_that_decrypts_to_garbage_is_still_a_wrong_passphrase(
    ca_root, home, monkeypatch
):
    """About one wrong passphrase in 256 passes the padding check; the key data then does not
    parse, and cryptography says so instead of "incorrect password"."""
    from wizard.pki import CaFolder, WrongPassphrase

    prep(ON, tls_facts(), ca_root)

    def garbage(data: bytes, password: bytes | None) -> Any:
        raise ValueError("Could not deserialize key data. ... ASN.1 parsing error: unexpected tag")

    monkeypatch.setattr(
        "cryptography.hazmat.primitives.serialization.load_pem_private_key", garbage
    )
    with pytest.raises(WrongPassphrase, match="does not unlock the CA") as caught:
        CaFolder.for_site("default", ca_root).open(PASS)
    assert "nothing was changed" in caught.value.hint
