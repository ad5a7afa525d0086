"""Shared fixtures: practice hosts (``lab``) for tests that need a real host.

``lab_host`` is one host with dockerd for the whole session (its services run through init
scripts); ``systemd_host`` is the same with systemd as PID 1; ``any_lab_host`` is either, a
test using it runs once on each (``init_kind`` says which). ``make_lab_hosts(count,
docker=True, init="sysv")`` makes more for one test; ``make_topology(name_or_path,
prefix=None, docker=None, init="sysv")`` brings up a topology (``router``, ``swarm``… or a
.toml path) for one test; ``init=init_kind`` asks for the kind of a parametrized test.
``docker_defaults`` is ``lab_host`` with Docker's defaults, put back after the test;
``lab_ssh_config`` is the ssh_config that reaches them. They tear down exactly the hosts (and
topology networks) they made (other people's hosts on the same machine are never touched),
even when the test fails. Without root or the needed packages, tests using them are skipped
with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from screen_data import RESET_DOCKER

from lab import LabHost, check_requirements, lab_down, lab_list, lab_paths, lab_up
from lab.hosts import lab_up_topology
from lab.topology import Topology, TopologySpec, load_topology
from wizard.errors import LabError

MakeLabHosts = Callable[..., list[LabHost]]
MakeTopology = Callable[..., Topology]


def _require_lab(*, docker: bool = True) -> None:
    if os.geteuid() != 0:
        pytest.skip("practice hosts need root (network, mount and PID namespaces)")
    try:
        check_requirements(docker=docker)
    except LabError as exc:
        pytest.skip(f"{exc.message} {exc.hint}")


def _test_prefix() -> str:
    """A prefix nobody else uses at the same time: t + 4 random hex digits + '-'."""
    return f"t{secrets.token_hex(2)}-"


def _down_only(names: list[str]) -> None:
    """Take down the named hosts that still exist (a test may have removed some itself)."""
    alive = {h.name for h in lab_list()}
    ours = [n for n in names if n in alive]
    if ours:
        lab_down(ours)


INIT_KINDS = ("sysv", "systemd")


@pytest.fixture(scope="session")
def _session_hosts() -> Iterator[dict[str, LabHost]]:
    """The session's shared hosts, one per init kind, made when a test first asks."""
    made: dict[str, LabHost] = {}
    try:
        yield made
    finally:
        _down_only([h.name for h in made.values()])


def _session_host(made: dict[str, LabHost], init: str) -> LabHost:
    if init not in made:
        _require_lab(docker=True)
        made[init] = lab_up(1, _test_prefix(), docker=True, init=init)[0]
    return made[init]


@pytest.fixture(scope="session")
def lab_host(_session_hosts: dict[str, LabHost]) -> LabHost:
    """One practice host with a running dockerd (started by its init script), shared by the
    session."""
    return _session_host(_session_hosts, "sysv")


@pytest.fixture(scope="session")
def systemd_host(_session_hosts: dict[str, LabHost]) -> LabHost:
    """One practice host where systemd is PID 1 and runs sshd and dockerd, shared by the
    session."""
    return _session_host(_session_hosts, "systemd")


@pytest.fixture(params=INIT_KINDS)
def init_kind(request: pytest.FixtureRequest) -> str:
    """``sysv`` or ``systemd``: a test using it runs once for each kind of host."""
    return str(request.param)


@pytest.fixture
def any_lab_host(_session_hosts: dict[str, LabHost], init_kind: str) -> LabHost:
    """The session's shared host of kind ``init_kind`` (the test runs on each kind)."""
    return _session_host(_session_hosts, init_kind)


@pytest.fixture(scope="session")
def lab_ssh_config() -> Path:
    """The lab's ssh_config: ``ssh -F <it> NAME`` logs in to practice host NAME as root."""
    return lab_paths().ssh_config


@pytest.fixture
def make_lab_hosts() -> Iterator[MakeLabHosts]:
    """Factory: ``make_lab_hosts(count, docker=True, init="sysv", ssh_socket=False)`` -> new
    hosts, removed after the test."""
    made: list[str] = []
    prefix = _test_prefix()

    def make(
        count: int = 1, docker: bool = True, init: str = "sysv", ssh_socket: bool = False
    ) -> list[LabHost]:
        _require_lab(docker=docker)
        hosts = lab_up(count, prefix, docker=docker, init=init, ssh_socket=ssh_socket)
        made.extend(h.name for h in hosts)
        return hosts

    try:
        yield make
    finally:
        _down_only(made)


@pytest.fixture
def make_topology() -> Iterator[MakeTopology]:
    """Factory: ``make_topology(name_or_path, prefix=None, docker=None, init="sysv")`` -> a running
    topology (hosts ``PREFIX-ROLE``), removed with its networks after the test.

    ``prefix`` defaults to a fresh ``tXXXX``; ``docker=False`` starts no dockerd anywhere
    (faster), None keeps what the topology says.
    """
    made: list[str] = []

    def make(
        name_or_path: str | Path | TopologySpec,
        prefix: str | None = None,
        *,
        docker: bool | None = None,
        init: str = "sysv",
    ) -> Topology:
        spec = (
            name_or_path if isinstance(name_or_path, TopologySpec) else load_topology(name_or_path)
        )
        _require_lab(docker=spec.uses_docker if docker is None else docker)
        topology = lab_up_topology(
            spec, prefix or _test_prefix().rstrip("-"), docker=docker, init=init
        )
        made.extend(topology.host_names)
        return topology

    try:
        yield make
    finally:
        _down_only(made)


@pytest.fixture
def docker_defaults(lab_host: LabHost) -> Iterator[LabHost]:
    """The shared practice host with Docker's defaults, put back after the test.

    Other tests on the same host expect its default state, so it is reset on the way out even
    when the test fails.
    """
    console = lab_host.console()
    assert console.run(RESET_DOCKER).ok
    try:
        yield lab_host
    finally:
        console.run(RESET_DOCKER)


@pytest.fixture
def transports(site: Any, lab_ssh_config: Path) -> Iterator[dict[str, Any]]:
    """One SSH connection per host of the test module's ``site`` fixture (closed after)."""
    from wizard.site.apply import close_all
    from wizard.transport.ssh import SshTransport

    opened: dict[str, Any] = {
        host.name: SshTransport.connect(host.target, ssh_config=lab_ssh_config, connect_timeout=4)
        for host in site.hosts
    }
    yield opened
    close_all(opened)
