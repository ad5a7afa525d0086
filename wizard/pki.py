"""A small private certificate authority, made on the admin's machine with ``cryptography``.

It replaces the usual ``openssl genrsa / req / x509`` walkthrough for securing the Docker API:

* one CA per *site* (a group of hosts the admin manages), kept in
  ``platformdirs.user_data_dir("hostwiz")/ca/<site>/`` (folder 0700): ``ca.pem`` (public) and
  ``ca-key.pem`` (0600, encrypted with a passphrase only the admin knows: PKCS#8, PBES2 with
  PBKDF2-HMAC-SHA256 and AES-256-CBC, which ``openssl`` can read too);
* ECDSA keys: P-384 for the CA (valid 10 years), P-256 for leaves (at most one year);
* server certificates carry ``extendedKeyUsage=serverAuth`` and every name and address clients
  use as subjectAltName; client certificates carry ``clientAuth``.

Nothing here talks to a host. Everything that writes locally is in :class:`CaFolder`; the
rest are pure functions over PEM bytes, so the planner can reason about certificates read from
a host without any side effect.

``cryptography`` is imported by the functions that use it, not with this module: the steps
import this module, and planning, ``hostwiz plan`` without TLS and the wizard's first screen
should not pay for loading x509 support until a certificate or a CA is opened.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs

from wizard.errors import HostwizError, InvalidAnswer
from wizard.secrets import Secret

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

CA_DAYS = 3650
"""The CA outlives many leaf renewals; replacing it means handing every admin a new bundle."""
LEAF_DAYS_MAX = 365
"""Leaves live at most a year, so a leaked key stops working on its own."""
MIN_PASSPHRASE = 12
"""PKCS#8 encryption in ``cryptography`` uses a fixed, modest PBKDF2 count; length makes up."""
BACKDATE = timedelta(minutes=5)
"""notBefore is set a little in the past so a host whose clock is slightly behind accepts it."""

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
MAX_COMMON_NAME = 64
"""X.509 (RFC 5280, ub-common-name) allows at most 64 characters in a common name."""
CA_NAME_PREFIX = "hostwiz CA "
MAX_SITE = MAX_COMMON_NAME - len(CA_NAME_PREFIX)
"""The CA's common name is "hostwiz CA <site>", which must fit in 64 characters too."""
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch only
DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")  # fullmatch only

Usage = Literal["server", "client"]


class SanError(InvalidAnswer):
    title = "Not a name or address"


class PassphraseProblem(InvalidAnswer):
    title = "Passphrase not accepted"


class WrongPassphrase(HostwizError):
    title = "Wrong CA passphrase"


class CaFolderProblem(HostwizError):
    title = "Problem with the CA folder"


# ---- names --------------------------------------------------------------------------------


def is_dns_name(text: str) -> bool:
    """A host name (``web1``, ``web1.example.org``; one leading ``*.`` wildcard allowed)."""
    name = text[2:] if text.startswith("*.") else text
    name = name.removesuffix(".")
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if not all(DNS_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()  # "10.0.0.300" is a broken address, not a name


def san_entry(text: str) -> x509.GeneralName:
    """The subjectAltName entry for ``text`` (an IP address or a DNS name), else SanError."""
    from cryptography import x509

    value = text.strip()
    try:
        if "%" not in value:  # no scope ids: ipaddress takes anything after the %
            return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    if is_dns_name(value):
        return x509.DNSName(value.removesuffix(".").lower())
    raise SanError(
        f"{text!r} is neither a DNS name nor an IP address, so it cannot go into a certificate.",
        "Give host names such as docker1.example.org (letters, digits, - and .) or addresses "
        "such as 192.0.2.10 or 2001:db8::10 (without a %scope), separated by commas.",
    )


def normalise_names(items: Iterable[str]) -> tuple[str, ...]:
    """Check every entry and return them normalised (lower-case names, compressed addresses),
    without duplicates and in their first order."""
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(str(san_entry(item).value), None)
    return tuple(seen)


def check_site(site: str) -> str:
    hint = (
        f"Use letters, digits, '.', '-' and '_', at most {MAX_SITE} of them (for example: "
        "default, office, lab)."
    )
    if not SITE_NAME.fullmatch(site):
        raise InvalidAnswer(f"tls.site = {site!r} cannot name a CA folder.", hint)
    if len(site) > MAX_SITE:
        raise InvalidAnswer(
            f"tls.site = {site!r} is {len(site)} characters: at most {MAX_SITE} characters fit "
            f"in the CA's name ({CA_NAME_PREFIX}<site>), a certificate's common name.",
            hint,
        )
    return site


def check_common_name(name: str, what: str = "the certificate's common name") -> str:
    """``name`` when it fits a certificate's common name (1 to 64 characters), else
    InvalidAnswer naming ``what`` it is."""
    if not 1 <= len(name) <= MAX_COMMON_NAME:
        raise InvalidAnswer(
            f"{what} is {len(name)} characters: {name!r}.",
            f"A certificate's common name holds 1 to at most {MAX_COMMON_NAME} characters; "
            "choose a shorter one.",
        )
    return name


def new_passphrase(first: Secret, second: Secret) -> Secret:
    """The passphrase for a new CA, asked twice: refused when empty, short or mismatched."""
    if not first:
        raise PassphraseProblem(
            "the CA passphrase is empty.",
            "The CA key signs every certificate the Docker API trusts; choose a passphrase of "
            f"at least {MIN_PASSPHRASE} characters (a few unrelated words work well).",
        )
    if len(first.reveal()) < MIN_PASSPHRASE:
        raise PassphraseProblem(
            f"the CA passphrase is shorter than {MIN_PASSPHRASE} characters.",
            "Anyone who copies ca-key.pem can try passphrases offline; a longer one (a few "
            "unrelated words) keeps the CA safe.",
        )
    if first != second:
        raise PassphraseProblem(
            "the two passphrases differ.",
            "Type the same passphrase twice. Nothing was created.",
        )
    return first


# ---- reading certificates -----------------------------------------------------------------


@dataclass(frozen=True)
class CertInfo:
    """What hostwiz needs to know about one certificate (parsed with ``cryptography``)."""

    subject: str
    issuer: str
    serial: int
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    server_auth: bool
    client_auth: bool
    is_ca: bool
    fingerprint: str
    """SHA-256 of the DER encoding, hex."""

    @property
    def names(self) -> tuple[str, ...]:
        return self.dns_names + self.ip_addresses

    def days_left(self, now: datetime) -> int:
        """Whole days until expiry (negative once expired)."""
        return (self.not_after - now) // timedelta(days=1)

    def covers(self, names: Iterable[str]) -> bool:
        have = set(self.names)
        return all(name in have for name in normalise_names(names))


def _common_name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def load_cert(pem: bytes) -> x509.Certificate | None:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def cert_info(pem: bytes) -> CertInfo | None:
    """Parse the first certificate of a PEM file; None when it is not one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = load_cert(pem)
    if cert is None:
        return None
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(sans.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        server = ExtendedKeyUsageOID.SERVER_AUTH in usages
        client = ExtendedKeyUsageOID.CLIENT_AUTH in usages
    except x509.ExtensionNotFound:
        server = client = False
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        subject=_common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=dns,
        ip_addresses=ips,
        server_auth=server,
        client_auth=client,
        is_ca=is_ca,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """True when ``cert_pem`` carries a valid signature of the CA in ``ca_pem``."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    cert, ca = load_cert(cert_pem), load_cert(ca_pem)
    if cert is None or ca is None:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """True when the (unencrypted) private key in ``key_pem`` belongs to the certificate."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    cert = load_cert(cert_pem)
    try:
        key = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    if cert is None:
        return False
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw))


# ---- issuing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCert:
    """A leaf certificate and its private key, both PEM. The key never shows in a repr."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: Secret | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.reveal().encode())
        if passphrase is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).replace(microsecond=0)


class CertificateAuthority:
    """A CA whose key is unlocked in memory (see :class:`CaFolder` for the stored form)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self._cert = cert

    def __repr__(self) -> str:
        return f"CertificateAuthority({_common_name(self._cert.subject)!r})"

    @property
    def cert_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def name(self) -> str:
        return _common_name(self._cert.subject)

    @classmethod
    def create(cls, site: str, now: datetime | None = None) -> CertificateAuthority:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        start = _now(now)
        key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hostwiz"),
                x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME_PREFIX + check_site(site)),
            ]
        )
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - BACKDATE)
            .not_valid_after(start + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA384())
        )
        return cls(key, cert)

    def issue(
        self,
        usage: Usage,
        common_name: str,
        names: Iterable[str] = (),
        *,
        days: int = LEAF_DAYS_MAX,
        now: datetime | None = None,
    ) -> IssuedCert:
        """A new P-256 key and a certificate for it, signed by this CA.

        Server certificates list ``names`` as subjectAltName (clients check those, never the
        common name); client certificates are identified by ``common_name`` alone.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        if not 1 <= days <= LEAF_DAYS_MAX:
            raise InvalidAnswer(
                f"a certificate cannot be valid for {days} days here.",
                f"Choose 1 to {LEAF_DAYS_MAX} days; hostwiz renews before expiry.",
            )
        check_common_name(common_name, f"the {usage} certificate's common name")
        start = _now(now)
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        not_after = min(start + timedelta(days=days), self._cert.not_valid_after_utc)
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else (
            ExtendedKeyUsageOID.CLIENT_AUTH
        )  # fmt: skip
        ca_ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        entries = [san_entry(name) for name in normalise_names(names)]
        if usage == "server":
            if not entries:
                raise SanError(
                    "a server certificate needs at least one name or address.",
                    "Give the host's name or address.",
                )
            builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
        cert = builder.sign(self._key, hashes.SHA384())
        return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def stored_key(self, passphrase: Secret) -> bytes:
        """The CA key as written to disk: PKCS#8 PEM encrypted with ``passphrase``."""
        return _key_pem(self._key, passphrase)


# ---- the local CA folder ------------------------------------------------------------------


def default_ca_root() -> Path:
    return Path(platformdirs.user_data_dir("hostwiz")) / "ca"


@dataclass(frozen=True)
class CaFolder:
    """``<root>/<site>/``: where one site's CA lives on the admin's machine."""

    path: Path

    @classmethod
    def for_site(cls, site: str, root: Path | None = None) -> CaFolder:
        return cls((root or default_ca_root()) / check_site(site))

    @property
    def cert_path(self) -> Path:
        return self.path / CA_CERT_FILE

    @property
    def key_path(self) -> Path:
        return self.path / CA_KEY_FILE

    def holds_ca(self) -> bool:
        """True when a CA is there (both files); a half CA is an error, never "no CA"."""
        cert, key = self.cert_path.exists(), self.key_path.exists()
        if cert != key:
            missing = self.key_path if cert else self.cert_path
            raise CaFolderProblem(
                f"{self.path} holds only half a CA: {missing.name} is missing.",
                "Put the missing file back from your backup. hostwiz will not create a new CA "
                "over it, because hosts that trust the old one would stop trusting you.",
            )
        return cert

    def open(self, passphrase: Secret) -> CertificateAuthority:
        """Unlock the CA. A wrong passphrase raises :class:`WrongPassphrase`, changing nothing."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if not self.holds_ca():
            raise CaFolderProblem(f"there is no CA in {self.path}.", "Create it first.")
        stored = self.key_path.read_bytes()
        if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" not in stored:
            raise CaFolderProblem(
                f"{self.key_path} is not encrypted, so anyone who can read it can sign "
                "certificates your hosts trust.",
                "hostwiz only uses passphrase-protected CA keys: restore the encrypted file "
                "from your backup, or start a new CA under another site name (tls.site).",
            )
        try:
            key = serialization.load_pem_private_key(stored, passphrase.reveal().encode() or None)
        except (TypeError, ValueError):
            # A wrong passphrase usually fails the padding check ("Bad decrypt. Incorrect
            # password?"), but about one time in 256 it decrypts to garbage with valid padding
            # and fails as unreadable key data: from an encrypted key the two look alike.
            raise WrongPassphrase(
                f"the passphrase does not unlock the CA in {self.path}.",
                "Type the passphrase chosen when this CA was created (nothing was changed). "
                "If it is lost, the CA cannot sign again: choose another site name "
                "(tls.site) to start a new CA, and re-run the TLS step on every host. If you "
                f"are sure of it, {self.key_path.name} may be damaged: restore it from your "
                "backup.",
            ) from None
        cert = load_cert(self.cert_path.read_bytes())
        if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaFolderProblem(
                f"{self.path} does not hold a CA hostwiz can use.",
                "Restore ca.pem and ca-key.pem from your backup.",
            )
        if not key_matches(self.cert_path.read_bytes(), _key_pem(key)):
            raise CaFolderProblem(
                f"{CA_CERT_FILE} and {CA_KEY_FILE} in {self.path} do not belong together.",
                "Restore the matching pair from your backup.",
            )
        self.path.chmod(0o700)
        return CertificateAuthority(key, cert)

    def create(
        self, site: str, passphrase: Secret, now: datetime | None = None
    ) -> CertificateAuthority:
        """Make a new CA here. Refuses if one exists: a CA is never overwritten."""
        if self.holds_ca():
            raise CaFolderProblem(
                f"{self.path} already holds a CA.", "Open it with its passphrase instead."
            )
        if len(passphrase.reveal()) < MIN_PASSPHRASE:
            new_passphrase(passphrase, passphrase)  # raises with the explanation
        ca = CertificateAuthority.create(site, now)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.chmod(0o700)
        _write_new(self.key_path, ca.stored_key(passphrase), 0o600)
        _write_new(self.cert_path, ca.cert_pem, 0o644)
        return ca


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet (O_EXCL): an existing one is never replaced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    path.chmod(mode)


__all__ = [
    "CA_DAYS",
    "LEAF_DAYS_MAX",
    "CaFolder",
    "CaFolderProblem",
    "CertInfo",
    "CertificateAuthority",
    "IssuedCert",
    "PassphraseProblem",
    "SanError",
    "WrongPassphrase",
    "cert_info",
    "check_common_name",
    "check_site",
    "default_ca_root",
    "is_dns_name",
    "issued_by",
    "key_matches",
    "new_passphrase",
    "normalise_names",
    "san_entry",
]
