"""The TLS step's answers, and the paths on the host it manages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wizard.answers import check_fields, describe
from wizard.errors import InvalidAnswer
from wizard.host.docker import ROOT_SOCKET
from wizard.pki import (
    LEAF_DAYS_MAX,
    MAX_COMMON_NAME,
    check_site,
    normalise_names,
)

TLS_DIR = "/etc/docker/tls"
HOST_CA_PATH = f"{TLS_DIR}/ca.pem"
SERVER_CERT_PATH = f"{TLS_DIR}/server-cert.pem"
SERVER_KEY_PATH = f"{TLS_DIR}/server-key.pem"
DROP_IN_PATH = "/etc/systemd/system/docker.service.d/hostwiz-hosts.conf"
UNIX_SOCKET = f"unix://{ROOT_SOCKET}"
TLS_KEYS = {"tlscacert": HOST_CA_PATH, "tlscert": SERVER_CERT_PATH, "tlskey": SERVER_KEY_PATH}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CONTAINER_INTERFACES = ("docker0", "docker_gwbridge", "br-", "veth")
"""Container bridges: nobody reaches the API through them, and their addresses come and go with
Docker networks (each new one would otherwise make the certificate look out of date)."""

Existing = Literal["stop", "replace", "reuse"]


def _check_names(value: tuple[str, ...], key: str = "extra_sans") -> tuple[str, ...]:
    try:
        return normalise_names(value)
    except InvalidAnswer as error:
        raise type(error)(f"tls.{key}: {error.message}", error.hint) from None


def _check_client_name(name: str, where: str) -> str:
    """The client certificate's common name: at most 64 characters, no control characters."""
    if len(name) > MAX_COMMON_NAME or not name.isprintable():
        raise InvalidAnswer(
            f"{where} is {len(name)} characters"
            + (", with control characters" if not name.isprintable() else "")
            + f": {name!r} cannot name your client certificate.",
            f"Its common name holds at most {MAX_COMMON_NAME} printable characters: set "
            "tls.client_name to a shorter name (one per admin, e.g. alice).",
        )
    return name


@dataclass(frozen=True)
class DockerTlsAnswers:
    enabled: bool = field(
        default=False,
        metadata=describe(
            "Docker API over TLS",
            "On: dockerd also listens on TCP and answers only clients holding a certificate "
            "from your own CA. Off: the API stays on the host's socket (reach it over SSH).",
        ),
    )
    site: str = field(
        default="default",
        metadata=describe(
            "CA (site) name",
            "One CA per site: hosts of the same site trust the same CA, kept on this machine "
            "with a passphrase only you know.",
        ),
    )
    address: str = field(
        default="",
        metadata=describe(
            "Address clients use",
            "The name or IP address your docker client connects to. Empty: the address hostwiz "
            "connects to over SSH.",
        ),
    )
    extra_sans: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Extra names in the server certificate",
            "More DNS names or IP addresses clients may use for this host (comma separated); "
            "its host name, FQDN and addresses are always included.",
        ),
    )
    port: int = field(
        default=2376,
        metadata=describe("TLS port", "2376 is Docker's port for TLS.", kind="port"),
    )
    listen_address: str = field(
        default="0.0.0.0",
        metadata=describe(
            "Listen address",
            "Where dockerd listens for TLS clients: 0.0.0.0 for every IPv4 address, :: for "
            "every address, or one of the host's addresses.",
            kind="ip",
        ),
    )
    client_name: str = field(
        default="",
        metadata=describe(
            "Your name in the client certificate",
            "Names your client certificate (one per admin). Empty: your login name here.",
        ),
    )
    server_days: int = field(
        default=365,
        metadata=describe("Server certificate lifetime (days)", "At most 365."),
    )
    client_days: int = field(
        default=365,
        metadata=describe("Client certificate lifetime (days)", "At most 365."),
    )
    renew_within_days: int = field(
        default=30,
        metadata=describe(
            "Renew when fewer days are left",
            "Certificates closer to expiry than this are reissued from the same CA on the "
            "next run, with one dockerd restart.",
        ),
    )
    renew: bool = field(
        default=False,
        metadata=describe(
            "Renew now",
            "Reissue the server and client certificates now even if they are not due.",
        ),
    )
    bundle_dir: str = field(
        default="",
        metadata=describe(
            "Client bundle folder",
            "Where ca.pem, cert.pem and key.pem for your docker client go. Empty: "
            "~/.docker/hostwiz/<host>.",
        ),
    )
    existing: Literal["stop", "replace", "reuse"] = field(
        default="stop",
        metadata=describe(
            "If the host already has another TLS setup",
            "stop: explain it and change nothing. replace: install hostwiz's (the plan shows "
            "the diff; clients of the old CA are refused afterwards). reuse: keep it as it is.",
        ),
    )

    def __post_init__(self) -> None:
        # Line breaks and control characters first, in every question (not in what a
        # subclass adds: PreparedTls's certificates).
        check_fields(self, "tls", DockerTlsAnswers)
        check_site(self.site)
        if self.client_name.strip():
            _check_client_name(self.client_name.strip(), "tls.client_name")
        object.__setattr__(self, "extra_sans", _check_names(self.extra_sans))
        if self.address:
            _check_names((self.address,), "address")
        for name in ("server_days", "client_days"):
            days = getattr(self, name)
            if not 1 <= days <= LEAF_DAYS_MAX:
                raise InvalidAnswer(
                    f"tls.{name} = {days}: certificates here live 1 to {LEAF_DAYS_MAX} days.",
                    "A short life limits the damage of a leaked key; renewal is automatic.",
                )
        if self.renew_within_days >= min(self.server_days, self.client_days):
            raise InvalidAnswer(
                f"tls.renew_within_days = {self.renew_within_days} is not shorter than the "
                "certificates' lifetime, so every run would renew them.",
                "Keep it well below server_days and client_days (30 is usual).",
            )
