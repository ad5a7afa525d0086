"""The swarm site step on the swarm topology: node1 inits the swarm after its custom
docker_gwbridge, node2 and node3 make theirs and join with the manager's token (a secret:
nowhere in the preview, the progress, the hosts' snapshots or the local state), a second plan
is empty, and the site rollback leaves every host out of the swarm with Docker's default
networks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import Topology
from lab.image import import_test_image
from tests.probes import on_console, require_busybox
from wizard.render import as_text
from wizard.site.apply import (
    apply_site,
    close_all,
    preview_site,
    rollback_site,
    site_rollback_plans,
)
from wizard.site.model import Site, load_site
from wizard.site.plan import render_site, site_session
from wizard.transport.base import Transport
from wizard.transport.ssh import SshTransport

pytestmark = [pytest.mark.lab, pytest.mark.docker]

NODES = ("node1", "node2", "node3")
IMAGE = "hostwiz/busybox:latest"


def write_site(folder: Path, topo: Topology) -> Path:
    path = folder / "swarm.toml"
    text = f'name = "{folder.name}"\n'
    for node in NODES:
        role = "swarm-manager" if node == "node1" else "swarm-worker"
        text += f'[hosts.{node}]\ntarget = "{topo[node].name}"\nroles = ["{role}"]\n'
    text += (
        '[steps.swarm]\nadvertise_address = "cluster"\ngwbridge_subnet = "10.81.12.0/24"\n'
        "overlay = true\noverlay_encrypted = false\n"
    )
    path.write_text(text)
    return path


@pytest.fixture
def topo(make_topology: Any) -> Topology:
    made: Topology = make_topology("swarm")
    return made


@pytest.fixture
def site(tmp_path: Path, topo: Topology) -> Site:
    return load_site(write_site(tmp_path, topo))


@pytest.fixture
def transports(site: Site, lab_ssh_config: Path) -> Iterator[dict[str, Transport]]:
    opened: dict[str, Transport] = {
        host.name: SshTransport.connect(host.target, ssh_config=lab_ssh_config, connect_timeout=4)
        for host in site.hosts
    }
    yield opened
    close_all(opened)


def swarm_state(host: Any) -> str:
    return on_console(host, "docker info --format '{{.Swarm.LocalNodeState}}'").strip()


def test_a_manager_and_two_workers_join_keep_no_token_and_roll_back(
    site: Site, transports: dict[str, Transport], topo: Topology
) -> None:
    manager, *workers = (topo[node] for node in NODES)
    require_busybox()
    for host in (manager, *workers):
        import_test_image(host)
    session = site_session(site)
    plan, _ = preview_site(session, transports)
    shown = as_text(render_site(plan, session))
    assert "Provisional" in shown and "docker swarm join" in shown
    assert {c.host for c in plan.stage(1)} == set(NODES)
    assert {c.host for c in plan.stage(2)} == {"node2", "node3"}

    seen: list[str] = []
    result = apply_site(
        session, transports, expected=plan, confirm_timeout=30,
        progress=lambda event: seen.append(f"{event.message} {event.output}"),
    )  # fmt: skip
    assert sorted((a.stage, a.host) for a in result.applied) == [
        (1, "node1"), (1, "node2"), (1, "node3"), (2, "node2"), (2, "node3")
    ]  # fmt: skip

    # node1 leads; the workers are Ready in its node list.
    wait_ready = (
        "for i in $(seq 60); do n=$(docker node ls --format '{{.Hostname}} {{.Status}} "
        '{{.ManagerStatus}}\'); [ $(echo "$n" | grep -c Ready) -ge 3 ] && break; sleep 0.5; '
        'done; echo "$n"'
    )
    nodes = on_console(manager, wait_ready)
    assert f"{manager.name} Ready Leader" in nodes
    for worker in workers:
        assert f"{worker.name} Ready" in nodes
        assert swarm_state(worker) == "active"
        bridge = json.loads(on_console(worker, "docker network inspect docker_gwbridge"))[0]
        assert bridge["IPAM"]["Config"][0]["Subnet"] == "10.81.12.0/24"
        options = bridge["Options"]
        assert options["com.docker.network.bridge.enable_icc"] == "false"
        assert options["com.docker.network.bridge.enable_ip_masquerade"] == "false"
        joined = on_console(
            manager, f"docker node inspect {worker.name} --format '{{{{.CreatedAt}}}}'"
        ).strip()
        assert bridge["Created"][:19] <= joined.replace(" ", "T")[:19]  # made before the join
    overlay = json.loads(on_console(manager, "docker network inspect hostwiz-overlay"))[0]
    assert overlay["Driver"] == "overlay" and "encrypted" not in overlay["Options"]

    # The unencrypted overlay carries traffic from each worker to a container on the manager.
    on_console(manager, f"docker run -d --name peer1 --network hostwiz-overlay {IMAGE} sleep 600")
    for worker in workers:
        script = f"docker run --rm --network hostwiz-overlay {IMAGE} ping -c 2 -W 2 peer1"
        assert "2 packets received" in on_console(worker, f"{script} 2>&1; true")
    on_console(manager, "docker rm -f peer1 >/dev/null")

    # The token is nowhere: preview, progress, the hosts' snapshots, the local state.
    token = on_console(manager, "docker swarm join-token -q worker").strip()
    assert token.startswith("SWMTKN-1-")
    assert any("join the swarm of 10.214.3.11:2377" in line for line in seen)
    assert token not in shown and token not in " ".join(seen)
    for host in (manager, *workers):
        assert not on_console(host, f"grep -rl {token} /var/lib/hostwiz; true").strip()
    local = Path(os.environ["XDG_STATE_HOME"]) / "hostwiz"
    kept = [path for path in local.rglob("*") if path.is_file()]
    assert kept and not any(token.encode() in path.read_bytes() for path in kept)

    again, _ = preview_site(session, transports)
    assert again.empty
    assert token not in as_text(render_site(again, session))

    # Site rollback: workers leave first, then every host's stage 1 goes.
    plans = site_rollback_plans(site.name, transports)
    assert [p.stage for p in plans] == [2, 2, 1, 1, 1]
    back, stuck = rollback_site(site.name, transports, plans, confirm_timeout=30)
    assert stuck == [] and {b.split()[0] for b in back[:2]} == {"node2", "node3"}
    for host in (manager, *workers):
        assert swarm_state(host) == "inactive"
        names = on_console(host, "docker network ls --format '{{.Name}}'").split()
        assert sorted(names) == ["bridge", "host", "none"], host.name


def test_a_worker_that_cannot_join_puts_the_whole_site_back_and_says_no_token(
    site: Site, transports: dict[str, Transport], topo: Topology
) -> None:
    from wizard.errors import ApplyFailed

    manager, *workers = (topo[node] for node in NODES)
    # node3 cannot reach the manager's swarm port (a rule inside that practice host only).
    on_console(workers[1], "iptables -I OUTPUT -p tcp --dport 2377 -j REJECT")
    session = site_session(site)
    seen: list[str] = []
    with pytest.raises(ApplyFailed) as raised:
        apply_site(
            session, transports, confirm_timeout=30,
            progress=lambda event: seen.append(f"{event.message} {event.output}"),
        )  # fmt: skip
    assert "node3 (stage 2)" in raised.value.message and "put back" in raised.value.message
    token_lines = [line for line in seen if "SWMTKN-1-" in line]
    assert not token_lines
    assert "SWMTKN-1-" not in f"{raised.value.message} {raised.value.hint}"
    for host in (manager, *workers):
        assert swarm_state(host) == "inactive", host.name
        names = on_console(host, "docker network ls --format '{{.Name}}'").split()
        assert sorted(names) == ["bridge", "host", "none"], host.name
