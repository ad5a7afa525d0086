"""The admin's side of the Docker API over TLS: the client bundle, the docker context, probes.

Everything here runs on the admin's machine. The bundle is three files in one folder (0700):
``ca.pem`` (to check the host), ``cert.pem`` and ``key.pem`` (0600, to prove who is asking).
The docker context is made with the docker CLI itself (``docker context create``), which copies
the three files into its own store; it never switches the current context, so
``~/.docker/config.json`` stays as it was and ``docker --context NAME ps`` is opt-in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.errors import HostwizError, InvalidAnswer
from wizard.local_files import write_atomic
from wizard.pki import IssuedCert

BUNDLE_FILES = ("ca.pem", "cert.pem", "key.pem")
BUNDLE_MARKER = ".hostwiz-bundle"
"""In every bundle folder hostwiz makes: only such a folder (or a new or empty one) is written."""
CONTEXT_NAME = re.compile(r"[^A-Za-z0-9_.+-]+")


class ClientSetupFailed(HostwizError):
    title = "Could not set up the docker client"


def context_name(host: str) -> str:
    """A docker context name for ``host`` (the CLI allows letters, digits and ``_.+-``)."""
    name = CONTEXT_NAME.sub("-", host).strip("-._+")
    return name or "hostwiz"


def default_bundle_root() -> Path:
    return Path.home() / ".docker" / "hostwiz"


def default_bundle_dir(host: str) -> Path:
    return default_bundle_root() / context_name(host)


def foreign_folder(folder: Path) -> str:
    """Why hostwiz must not write a client bundle into ``folder`` ("" when it may).

    hostwiz makes the folder private (0700) and replaces ca.pem, cert.pem and key.pem in it,
    which must never happen to a folder of the admin's own (``~/.docker`` often holds their
    bundle for another daemon). A folder is hostwiz's when it is new or empty, carries the
    :data:`BUNDLE_MARKER`, or is a default bundle folder holding only bundle files (made
    before hostwiz marked its folders).
    """
    if not folder.exists():
        return ""
    if not folder.is_dir():
        return f"{folder} exists and is not a folder"
    if (folder / BUNDLE_MARKER).is_file():
        return ""
    try:
        found = sorted(path.name for path in folder.iterdir())
    except OSError as error:
        return f"{folder} cannot be read ({error.strerror})"
    if not found:
        return ""
    if folder.parent == default_bundle_root() and set(found) <= set(BUNDLE_FILES):
        return ""
    shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
    return f"{folder} already holds files hostwiz did not put there ({shown})"


class BundleFolderRefused(InvalidAnswer):
    title = "Not a folder for hostwiz's client bundle"


def check_bundle_folder(folder: Path, setting: str = "tls.bundle_dir") -> Path:
    """``folder`` when hostwiz may write its client bundle there, else BundleFolderRefused."""
    why = foreign_folder(folder)
    if why:
        raise BundleFolderRefused(
            f"{setting}: {why}. hostwiz writes ca.pem, cert.pem and key.pem there and makes "
            "the folder private (0700), which would replace your files and change who can "
            "read the folder; nothing was changed.",
            f"Choose a new or empty folder for {setting} (hostwiz marks the folders it makes), "
            "or leave it empty for ~/.docker/hostwiz/<host>.",
        )
    return folder


def host_port(address: str, port: int) -> str:
    """``ADDR:PORT`` with IPv6 addresses in brackets, as URLs need them."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class Bundle:
    """Where a client bundle's files are."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "cert.pem"

    @property
    def key(self) -> Path:
        return self.folder / "key.pem"

    def read(self) -> tuple[bytes, IssuedCert] | None:
        """``(ca_pem, client)`` when all three files are there, else None."""
        if not all(path.is_file() for path in (self.ca, self.cert, self.key)):
            return None
        return self.ca.read_bytes(), IssuedCert(self.cert.read_bytes(), self.key.read_bytes())

    def write(self, ca_pem: bytes, client: IssuedCert) -> bool:
        """Write what differs (atomically, key 0600); True when anything changed.

        Only into a folder hostwiz made (:func:`check_bundle_folder`), which it marks.
        """
        check_bundle_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder.chmod(0o700)
        marker = self.folder / BUNDLE_MARKER
        if not marker.is_file():
            marker.write_text(
                "This folder was made by hostwiz for a Docker client bundle (ca.pem, cert.pem, "
                "key.pem).\nhostwiz rewrites those files here when it renews the certificates.\n"
            )
        changed = False
        for path, data, mode in (
            (self.ca, ca_pem, 0o644),
            (self.cert, client.cert_pem, 0o644),
            (self.key, client.key_pem, 0o600),
        ):
            same = path.is_file() and path.read_bytes() == data
            if same and (path.stat().st_mode & 0o777) == mode:
                continue
            write_atomic(path, data, mode)
            changed = True
        return changed


# ---- docker context -------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextResult:
    name: str
    action: str
    """created, updated, unchanged, or skipped (no docker CLI)."""
    message: str


def _docker(
    args: list[str], env: Mapping[str, str] | None, cli: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(env) if env is not None else None,
        check=False,
    )


def ensure_context(
    name: str,
    address: str,
    port: int,
    bundle: Bundle,
    *,
    refresh: bool,
    env: Mapping[str, str] | None = None,
    cli: str = "docker",
) -> ContextResult:
    """Create the context ``name`` for ``tcp://ADDR:PORT`` with the bundle, or bring it up to
    date (``refresh``: the bundle was rewritten, and the CLI keeps its own copy of the files).

    Only ``docker context create/update/inspect`` are used: the current context is untouched.
    """
    endpoint = f"tcp://{host_port(address, port)}"
    if any("," in str(path) or "=" in str(path) for path in (bundle.ca, bundle.cert, bundle.key)):
        raise ClientSetupFailed(
            f"the bundle folder {bundle.folder} has a ',' or '=' in its path, which the docker "
            "CLI's --docker option cannot carry.",
            "Choose another folder (tls.bundle_dir).",
        )
    if shutil.which(cli, path=(env or os.environ).get("PATH")) is None:
        return ContextResult(
            name, "skipped",
            f"No docker CLI here, so no context was made. Use: DOCKER_HOST={endpoint} "
            f"DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={bundle.folder} docker ps",
        )  # fmt: skip
    spec = f"host={endpoint},ca={bundle.ca},cert={bundle.cert},key={bundle.key}"
    inspected = _docker(["context", "inspect", name], env, cli)
    if inspected.returncode == 0:
        try:
            current = json.loads(inspected.stdout)[0]["Endpoints"]["docker"]["Host"]
        except (ValueError, LookupError, TypeError):
            current = ""
        if current == endpoint and not refresh:
            return ContextResult(name, "unchanged", f"docker context {name!r} is up to date.")
        verb = "update"
    else:
        verb = "create"
    description = f"hostwiz: Docker API of {name} over TLS"
    result = _docker(
        ["context", verb, name, "--description", description, "--docker", spec], env, cli
    )
    if result.returncode != 0:
        raise ClientSetupFailed(
            f"`docker context {verb} {name}` failed: {(result.stderr or result.stdout).strip()}",
            f"The bundle is in {bundle.folder}; you can still use it with DOCKER_HOST={endpoint} "
            f"DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={bundle.folder}.",
        )
    return ContextResult(
        name, f"{verb}d", f"docker context {name!r} {verb}d: docker --context {name} ps"
    )


def context_exists(name: str, *, env: Mapping[str, str] | None = None, cli: str = "docker") -> bool:
    """The docker CLI here knows the context ``name`` (False without a docker CLI, or when it
    cannot say)."""
    if shutil.which(cli, path=(env or os.environ).get("PATH")) is None:
        return False
    try:
        return _docker(["context", "inspect", name], env, cli).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# ---- probes: is the API reachable over TLS, and only with a client certificate? ------------


@contextlib.contextmanager
def materialised(ca_pem: bytes, client: IssuedCert | None) -> Iterator[Bundle]:
    """The bundle in a private temporary folder (the SDK and ``ssl`` want file paths)."""
    with tempfile.TemporaryDirectory(prefix="hostwiz-tls-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o700)
        write_atomic(folder / "ca.pem", ca_pem, 0o644)
        if client is not None:
            write_atomic(folder / "cert.pem", client.cert_pem, 0o644)
            write_atomic(folder / "key.pem", client.key_pem, 0o600)
        yield Bundle(folder)


def sdk_client(address: str, port: int, bundle: Bundle, *, with_cert: bool = True) -> Any:
    """A ``docker.DockerClient`` for ``https://ADDR:PORT`` that checks the host against the
    bundle's CA and (``with_cert``) presents the bundle's client certificate."""
    import docker  # the SDK is only needed to check a host, not to plan

    from wizard.docker_api import API_VERSION

    tls = docker.tls.TLSConfig(
        client_cert=(str(bundle.cert), str(bundle.key)) if with_cert else None,
        ca_cert=str(bundle.ca),
        verify=True,
    )
    client = docker.DockerClient(
        base_url=f"https://{host_port(address, port)}", tls=tls, version=API_VERSION, timeout=10
    )
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override the
    # session's CA (so the host would be checked against the system CAs, not ours), and would
    # send this direct connection through an HTTPS_PROXY: neither is wanted here.
    client.api.trust_env = False
    return client


def api_version_over_tls(address: str, port: int, bundle: Bundle) -> dict[str, Any]:
    client = sdk_client(address, port, bundle)
    try:
        version: dict[str, Any] = client.version()
        return version
    finally:
        client.close()


def served_certificate(address: str, port: int, bundle: Bundle, *, timeout: float = 10) -> bytes:
    """The DER certificate the server presents (checked against the bundle's CA and name)."""
    import ssl  # here, not at the top: planning imports this module

    context = ssl.create_default_context(cafile=str(bundle.ca))
    if bundle.cert.exists():
        context.load_cert_chain(str(bundle.cert), str(bundle.key))
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server sent no certificate")
    return der


def answers_without_client_cert(address: str, port: int, ca_pem: bytes) -> bool:
    """True when the API answers a client that shows no certificate (it must refuse)."""
    import ssl

    with materialised(ca_pem, None) as bundle:
        context = ssl.create_default_context(cafile=str(bundle.ca))
        try:
            with (
                socket.create_connection((address, port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=address) as tls,
            ):
                tls.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                reply = tls.recv(64)
        except (OSError, ssl.SSLError):
            return False
    return reply.startswith(b"HTTP/") and b" 200 " in reply


def der_of(pem: bytes) -> bytes:
    from cryptography import x509  # here, not at the top: planning imports this module
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def check_tls_endpoint(
    address: str,
    port: int,
    ca_pem: bytes,
    client: IssuedCert,
    expected_server_pem: bytes,
    *,
    wait: float = 20.0,
) -> list[str]:
    """Problems with the TLS endpoint (empty when healthy), retried for up to ``wait`` seconds
    because dockerd opens its TCP listener a moment after its socket answers."""
    deadline = time.monotonic() + wait
    where = f"tcp://{host_port(address, port)}"
    with materialised(ca_pem, client) as bundle:
        while True:
            try:
                api_version_over_tls(address, port, bundle)
                served = served_certificate(address, port, bundle)
                break
            except Exception as error:  # the SDK and ssl raise many kinds; all mean "not yet"
                if time.monotonic() >= deadline:
                    return [f"the Docker API does not answer over TLS at {where}: {error}"]
                time.sleep(0.5)
    problems = []
    if served != der_of(expected_server_pem):
        problems.append(
            f"dockerd at {where} presents another certificate than the one hostwiz installed"
        )
    if answers_without_client_cert(address, port, ca_pem):
        problems.append(f"dockerd at {where} answers clients without a certificate")
    return problems
