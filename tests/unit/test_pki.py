"""The private CA: algorithms, extensions, lifetimes, names, and the encrypted CA folder."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from wizard.errors import InvalidAnswer
from wizard.pki import (
    CA_DAYS,
    CaFolder,
    CaFolderProblem,
    CertificateAuthority,
    PassphraseProblem,
    SanError,
    WrongPassphrase,
    cert_info,
    issued_by,
    key_matches,
    new_passphrase,
    normalise_names,
    san_entry,
)
from wizard.secrets import Secret

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PASS = Secret("correct horse battery staple")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("office", NOW)


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_the_ca_is_p384_self_signed_for_ten_years_and_signs_only_certificates(ca):
    cert = load(ca.cert_pem)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    assert cert.issuer == cert.subject and ca.name == "hostwiz CA office"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert cert.not_valid_after_utc - NOW == timedelta(days=CA_DAYS)
    assert issued_by(ca.cert_pem, ca.cert_pem)


def test_a_server_leaf_is_p256_for_servers_only_with_names_and_addresses(ca):
    issued = ca.issue("server", "web1", ["web1", "10.0.0.5", "::1"], days=90, now=NOW)
    cert = load(issued.cert_pem)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    info = cert_info(issued.cert_pem)
    assert info is not None
    assert info.dns_names == ("web1",) and info.ip_addresses == ("10.0.0.5", "::1")
    assert info.server_auth and not info.client_auth and info.issuer == "hostwiz CA office"
    assert info.days_left(NOW) == 90 and info.not_before < NOW
    assert issued_by(issued.cert_pem, ca.cert_pem)
    assert key_matches(issued.cert_pem, issued.key_pem)
    assert b"ENCRYPTED" not in issued.key_pem  # dockerd reads it unattended; the host guards it
    assert "key_pem" not in repr(issued)


def test_a_client_leaf_is_for_clients_only(ca):
    info = cert_info(ca.issue("client", "alice", now=NOW).cert_pem)
    assert info is not None and info.client_auth and not info.server_auth
    assert info.subject == "alice" and info.names == ()


def test_a_certificate_from_another_ca_is_told_apart(ca):
    other = CertificateAuthority.create("elsewhere", NOW)
    leaf = other.issue("client", "mallory", now=NOW)
    assert not issued_by(leaf.cert_pem, ca.cert_pem)
    assert not key_matches(leaf.cert_pem, ca.issue("client", "x", now=NOW).key_pem)


@pytest.mark.parametrize("days", [0, 366, 3650])
def test_leaves_live_at_most_a_year(ca, days):
    with pytest.raises(InvalidAnswer, match=f"valid for {days} days") as caught:
        ca.issue("client", "alice", days=days, now=NOW)
    assert "1 to 365" in caught.value.hint


def test_a_server_certificate_needs_a_name(ca):
    with pytest.raises(SanError):
        ca.issue("server", "web1", [], now=NOW)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("web1", x509.DNSName, "web1"),
        ("Docker.Example.ORG.", x509.DNSName, "docker.example.org"),
        ("*.example.org", x509.DNSName, "*.example.org"),
        ("192.0.2.10", x509.IPAddress, "192.0.2.10"),
        ("2001:DB8:0::10", x509.IPAddress, "2001:db8::10"),
    ],
)
def test_san_entries(text, kind, value):
    entry = san_entry(text)
    assert isinstance(entry, kind) and str(entry.value) == value


@pytest.mark.parametrize(
    "text", ["", "web 1", "-web1", "web1-", "a..b", "10.0.0.300", "http://web1", "x" * 64, "é.org"]
)
def test_san_entries_refused(text):
    with pytest.raises(SanError, match="neither a DNS name nor an IP address"):
        san_entry(text)


def test_normalise_names_drops_duplicates_in_order():
    assert normalise_names(["B.org", "b.org", "::1", "0:0::1", "a.org"]) == (
        "b.org",
        "::1",
        "a.org",
    )


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("", "", "empty"),
        ("tiny", "tiny", "shorter"),
        (PASS.reveal(), "other one entirely", "differ"),
    ],
)
def test_new_passphrase_refusals(first, second, message):
    with pytest.raises(PassphraseProblem, match=message) as caught:
        new_passphrase(Secret(first), Secret(second))
    assert first not in caught.value.message or not first


def test_the_ca_folder_is_private_and_its_key_unreadable_without_the_passphrase(tmp_path):
    folder = CaFolder.for_site("office", tmp_path)
    made = folder.create("office", PASS, NOW)
    assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.key_path.stat().st_mode) == 0o600
    stored = folder.key_path.read_bytes()
    assert stored.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(stored, None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(stored, b"guess")
    assert PASS.reveal().encode() not in stored
    assert folder.open(PASS).cert_pem == made.cert_pem
    with pytest.raises(WrongPassphrase):
        folder.open(Secret("not it at all"))
    with pytest.raises(WrongPassphrase):
        folder.open(Secret(""))
    with pytest.raises(CaFolderProblem, match="already holds a CA"):
        folder.create("office", PASS, NOW)
    assert folder.key_path.read_bytes() == stored


def test_an_unencrypted_ca_key_is_refused(tmp_path):
    folder = CaFolder.for_site("office", tmp_path)
    folder.create("office", PASS, NOW)
    key = serialization.load_pem_private_key(folder.key_path.read_bytes(), PASS.reveal().encode())
    folder.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(CaFolderProblem, match="not encrypted"):
        folder.open(PASS)


def test_cert_info_of_garbage_is_none():
    assert cert_info(b"not a certificate") is None
    assert not issued_by(b"junk", b"junk")
