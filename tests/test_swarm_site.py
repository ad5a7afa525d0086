"""The swarm site step on the swarm topology: node1 inits the swarm after its custom
docker_gwbridge, node2 and node3 make theirs and join with the manager's token (a secret:
nowhere in the preview, the progress, the hosts' snapshots or the local state), a second plan
is empty, and the site rollback leaves every host out of the swarm with Docker's default
networks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lab import Topology
from lab.image import import_test_image
from tests.probes import on_console, require_busybox, wait_until
from wizard.render import as_text, render_plan
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


def write_site(
    folder: Path, topo: Topology, managers: tuple[str, ...] = ("node1",), extra: str = ""
) -> Path:
    path = folder / "swarm.toml"
    text = f'name = "{folder.name}"\n'
    for node in NODES:
        role = "swarm-manager" if node in managers else "swarm-worker"
        text += f'[hosts.{node}]\ntarget = "{topo[node].name}"\nroles = ["{role}"]\n'
    text += (
        '[steps.swarm]\nadvertise_address = "cluster"\ngwbridge_subnet = "10.81.12.0/24"\n'
        "overlay = true\noverlay_encrypted = false\n" + extra
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
    back, stuck, _notes = rollback_site(site.name, transports, plans, confirm_timeout=30)
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


STACK = (
    f'stack = true\nstack_image = "{IMAGE}"\nendpoint_mode = "dnsrr"\npublish_mode = "host"\n'
    "stack_command = 'echo hi from $(hostname) > /tmp/index.html; exec httpd -f -p 80 -h /tmp'\n"
)


def ask(host: Any, address: str) -> str:
    """One HTTP GET from ``host`` to ``address``:8080 (a practice host's), bounded."""
    script = (
        f"exec 3<>/dev/tcp/{address}/8080 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && "
        "timeout 5 cat <&3"
    )
    return on_console(host, f"timeout 10 bash -c {json.dumps(script)}; true")


def snapshots_on(host: Any) -> list[str]:
    return on_console(host, "ls /var/lib/hostwiz/snapshots 2>/dev/null; true").split()


def test_two_managers_a_worker_and_a_stack_on_every_node_then_a_previewed_teardown(
    tmp_path: Path, topo: Topology, lab_ssh_config: Path
) -> None:
    """node1 inits, node2 joins as a manager with the manager token (a secret), node3 as a
    worker; the demo stack (stage 3) runs a task on each node that answers on its port. The
    teardown is the site rollback: a plan shown per host, each put back in a transaction with
    its own snapshot."""
    require_busybox()
    manager, second, worker = (topo[node] for node in NODES)
    for host in (manager, second, worker):
        import_test_image(host)
    site = load_site(write_site(tmp_path, topo, ("node1", "node2"), STACK))
    opened: dict[str, Transport] = {
        host.name: SshTransport.connect(host.target, ssh_config=lab_ssh_config, connect_timeout=4)
        for host in site.hosts
    }
    try:
        session = site_session(site)
        plan, _ = preview_site(session, opened)
        shown = as_text(render_site(plan, session))
        assert {c.host for c in plan.stage(2)} == {"node2", "node3"}
        assert [c.host for c in plan.stage(3)] == ["node1"]
        assert "as a manager" in shown and "as a worker" in shown
        seen: list[str] = []
        result = apply_site(
            session, opened, expected=plan, confirm_timeout=30,
            progress=lambda event: seen.append(f"{event.message} {event.output}"),
        )  # fmt: skip
        assert sorted((a.stage, a.host) for a in result.applied) == [
            (1, "node1"), (1, "node2"), (1, "node3"), (2, "node2"), (2, "node3"), (3, "node1")
        ]  # fmt: skip

        # The expected managers (node1 leads, node2 reachable) and the worker.
        listed = on_console(second, "docker node ls --format '{{.Hostname}} {{.Status}} "
                                    "{{.ManagerStatus}}'")  # fmt: skip
        rows = {line.split()[0]: line.split()[1:] for line in listed.splitlines()}
        assert rows == {manager.name: ["Ready", "Leader"], second.name: ["Ready", "Reachable"],
                        worker.name: ["Ready"]}, listed  # fmt: skip

        # The manager token is nowhere: preview, progress, the hosts' hostwiz files, locally.
        token = on_console(manager, "docker swarm join-token -q manager").strip()
        assert token.startswith("SWMTKN-1-")
        assert any("as a manager" in line for line in seen)
        assert token not in shown and token not in " ".join(seen)
        for host in (manager, second, worker):
            assert not on_console(host, f"grep -rl {token} /var/lib/hostwiz; true").strip()
        local = Path(os.environ["XDG_STATE_HOME"]) / "hostwiz"
        kept = [path for path in local.rglob("*") if path.is_file()]
        assert kept and not any(token.encode() in path.read_bytes() for path in kept)

        # The stack: a task on every node, each answering on its own node's port.
        running = on_console(manager, "docker service ps demo_web --filter desired-state=running "
                                      "--format '{{.Node}} {{.CurrentState}}'")  # fmt: skip
        assert {line.split()[0] for line in running.splitlines() if "Running" in line} == {
            manager.name, second.name, worker.name}, running  # fmt: skip
        answers = {ask(worker, f"10.214.3.{n}").rpartition("hi from ")[2].strip()
                   for n in (11, 12, 13)}  # fmt: skip
        assert len(answers) == 3 and "" not in answers, answers  # three tasks answer

        again, _ = preview_site(session, opened)
        assert again.empty, as_text(render_site(again, session))

        # Tearing down: every host's part is shown as a plan first, newest stage first...
        before = {host.name: len(snapshots_on(host)) for host in (manager, second, worker)}
        plans = site_rollback_plans(site.name, opened)
        assert [(p.stage, p.host) for p in plans][:1] == [(3, "node1")]
        assert [p.stage for p in plans] == [3, 2, 2, 1, 1, 1]
        text = {f"{p.host}/{p.stage}": as_text(render_plan(p.plan)) for p in plans}
        assert "docker stack rm" in text["node1/3"]
        assert "docker node demote" in text["node2/2"] and "swarm leave" in text["node2/2"]
        assert "swarm leave" in text["node3/2"] and "swarm leave" in text["node1/1"]
        assert token not in " ".join(text.values())
        # ...and applied as one snapshotted transaction per host and stage.
        back, stuck, _notes = rollback_site(site.name, opened, plans, confirm_timeout=30)
        assert stuck == [] and len(back) == 6
        after = {host.name: len(snapshots_on(host)) for host in (manager, second, worker)}
        assert after == {manager.name: before[manager.name] + 2,
                         second.name: before[second.name] + 2,
                         worker.name: before[worker.name] + 2}  # fmt: skip
    finally:
        close_all(opened)
    for host in (manager, second, worker):
        assert swarm_state(host) == "inactive", host.name
        names = on_console(host, "docker network ls --format '{{.Name}}'").split()
        assert sorted(names) == ["bridge", "host", "none"], host.name
        assert not on_console(host, "docker ps -aq").strip(), host.name


def test_check_site_reads_every_host_and_exits_1_on_a_conflict(
    tmp_path: Path, make_lab_hosts: Any, lab_ssh_config: Path, capsys: Any
) -> None:
    """``hostwiz check --site``: the site's swarm subnet on the lab's own network is a conflict
    on the swarm hosts (their route) and on the host outside the swarm (the site rule); plan
    --site shows the same before it plans (here the plan then refuses). A free subnet: exit 0."""
    from hostwiz.cli import main

    first, second, third = make_lab_hosts(3, docker=False)
    path = tmp_path / "check.toml"

    def write(subnet: str) -> None:
        path.write_text(
            f'[hosts.a]\ntarget = "{first.name}"\nroles = ["swarm-manager"]\n'
            f'[hosts.b]\ntarget = "{second.name}"\nroles = ["swarm-worker"]\n'
            f'[hosts.c]\ntarget = "{third.name}"\n'
            f'[steps.swarm]\noverlay = true\noverlay_encrypted = false\noverlay_subnet = "{subnet}"\n'
        )

    common = ["--site", str(path), "-F", str(lab_ssh_config)]
    write("10.213.0.0/16")  # the lab's management network is 10.213.0.0/24
    assert main(["check", *common, "--json"]) == 1
    found = {(c["rule"], c["host"]) for c in json.loads(capsys.readouterr().out)}
    assert found == {("subnet-overlap", "a"), ("subnet-overlap", "b"),
                     ("site-subnet-overlap", "c")}  # fmt: skip
    assert main(["plan", *common]) == 1  # no dockerd on these hosts: the plan refuses...
    err = capsys.readouterr().err
    assert "! conflict (site-subnet-overlap) on c" in err  # ...after the checker spoke
    assert "dockerd does not answer" in err, err
    assert err.index("! conflict") < err.index("dockerd does not answer")

    write("10.81.30.0/24")
    assert main(["check", *common]) == 0
    assert "No known conflicts on a, b, c." in capsys.readouterr().out


def test_the_swarm_topologys_site_file_plans_the_swarm_as_written(
    topo: Topology, lab_ssh_config: Path, capsys: Any
) -> None:
    """The site file ``lab up --topology swarm`` writes: node1 inits, node2 and node3 join,
    with no edit (a plan with changes pending: exit 2)."""
    from hostwiz.cli import main
    from lab.site_file import write_topology_site

    path = write_topology_site(topo)
    assert main(["plan", "--site", str(path), "-F", str(lab_ssh_config), "--json"]) == 2
    plan = json.loads(capsys.readouterr().out)
    shown = {(h["host"], h["stage"]): " ".join(p["text"] for p in h["plans"])
             for h in plan["hosts"]}  # fmt: skip
    assert "docker swarm init --advertise-addr 10.214.3.11" in shown.get(("node1", 1), ""), plan
    assert "--driver overlay" in shown[("node1", 1)]
    for node in ("node2", "node3"):
        assert "docker swarm join" in shown[(node, 2)] and "10.214.3.11:2377" in shown[(node, 2)]


def node_role(manager: Any, node: Any) -> str:
    """What the swarm says of ``node``: its role, and its reachability as a manager."""
    script = (f"docker node inspect {node.name} --format '{{{{.Spec.Role}}}} "
              "{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}'")  # fmt: skip
    return on_console(manager, script).strip()


def test_a_worker_the_site_makes_a_manager_is_promoted_and_demoted_back(
    tmp_path: Path, transports: dict[str, Transport], topo: Topology
) -> None:
    """A node already in the swarm changes its role through the first manager (docker node
    promote / demote), each undone by the other."""
    manager, node2, _node3 = (topo[node] for node in NODES)
    workers = load_site(write_site(tmp_path, topo))
    apply_site(site_session(workers), transports, confirm_timeout=30)
    assert node_role(manager, node2) == "worker"

    managers = load_site(write_site(tmp_path, topo, managers=("node1", "node2")))
    session = site_session(managers)
    plan, _ = preview_site(session, transports)
    changed = {(c.stage, c.host) for c in plan.changes if not c.changeset.empty}
    assert changed == {(2, "node1")}
    assert "docker node promote" in as_text(render_site(plan, session))
    apply_site(session, transports, expected=plan, confirm_timeout=30)
    assert node_role(manager, node2) == "manager reachable"
    # node2's own dockerd takes part in the managers' consensus a moment later.
    control = "docker info --format '{{.Swarm.ControlAvailable}}'"
    assert wait_until(lambda: on_console(node2, control).strip() == "true", 30)
    assert preview_site(session, transports)[0].empty

    # Its rollback demotes it again.
    plans = site_rollback_plans(managers.name, transports)
    _back, stuck, _notes = rollback_site(managers.name, transports, plans, confirm_timeout=30)
    assert stuck == [] and node_role(manager, node2).startswith("worker")

    # The other way through the site: a manager the site makes a worker is demoted.
    apply_site(session, transports, confirm_timeout=30)
    assert node_role(manager, node2) == "manager reachable"
    assert wait_until(lambda: on_console(node2, control).strip() == "true", 30)
    session = site_session(workers)
    plan, _ = preview_site(session, transports)
    assert "docker node demote" in as_text(render_site(plan, session))
    apply_site(session, transports, expected=plan, confirm_timeout=30)
    assert node_role(manager, node2).startswith("worker")
    assert swarm_state(node2) == "active"
