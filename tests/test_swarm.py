"""The swarm step on practice hosts: docker_gwbridge made before init with the chosen options,
the manager, an unencrypted overlay carrying traffic (on one host and, with a worker joined by
hand, across hosts), the encrypted one refused and explained on this kernel, the demo stack
answering (dnsrr, host mode), applying twice planning nothing, and the rollback."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lab import Topology
from lab.image import import_test_image
from snapshots.rollback import rollback_plan
from snapshots.store import list_snapshots
from tests.probes import on_console, require_busybox
from wizard.errors import PlanConflict
from wizard.plan import Changeset, Plan
from wizard.render import as_text, render_plan
from wizard.secrets import Secret
from wizard.session import Selection, apply, preview
from wizard.steps.swarm import SWARM, SwarmAnswers
from wizard.steps.swarm.join import join_action
from wizard.transaction import apply_changeset
from wizard.transport.ssh import SshTransport

pytestmark = [pytest.mark.lab, pytest.mark.docker]

IMAGE = "hostwiz/busybox:latest"
ANSWERS = SwarmAnswers(
    enabled=True,
    advertise_address="cluster",
    overlay_encrypted=False,
    endpoint_mode="dnsrr",
    publish_mode="host",
    stack=True,
    stack_image=IMAGE,
    stack_command="echo hi from $(hostname) > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
)


def ping(host: Any, network: str, target: str) -> bool:
    script = f"docker run --rm --network {network} {IMAGE} ping -c 2 -W 2 {target}"
    return "2 packets received" in on_console(host, f"{script} 2>&1; true")


def test_swarm_manager_overlay_stack_and_rollback(make_topology: Any, lab_ssh_config: Any) -> None:
    require_busybox()
    topo: Topology = make_topology("swarm")
    node1, node2 = topo["node1"], topo["node2"]
    for node in (node1, node2):
        import_test_image(node)
    with SshTransport.connect(node1.name, ssh_config=lab_ssh_config) as ssh:
        # This kernel has neither ESP nor GCM: the encrypted overlay is refused, explained.
        with pytest.raises(PlanConflict) as refused:
            preview(ssh, [Selection(SWARM, replace(ANSWERS, overlay_encrypted=True))])
        assert "function not implemented" in refused.value.message
        assert "overlay_encrypted=false" in refused.value.hint
        result = apply(ssh, [Selection(SWARM, ANSWERS)])
        assert result.confirmed, result.message
        assert preview(ssh, [Selection(SWARM, ANSWERS)])[0].empty  # applying twice: nothing

    bridge = json.loads(on_console(node1, "docker network inspect docker_gwbridge"))[0]
    assert bridge["IPAM"]["Config"][0]["Subnet"] == "10.81.10.0/24"
    assert bridge["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert bridge["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    node_created = on_console(node1, "docker node inspect self --format '{{.CreatedAt}}'")
    assert bridge["Created"][:19] <= node_created.strip().replace(" ", "T")[:19]
    info = on_console(node1, "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'")
    assert f"{node1.name} Leader" in info

    # The stack's task runs and answers on the published port (host mode, dnsrr).
    page = on_console(
        node1,
        'bash -c \'exec 3<>/dev/tcp/10.214.3.11/8080; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3;'
        " timeout 5 cat <&3'",
    )
    assert "hi from" in page

    # The unencrypted overlay carries traffic between containers, on one host...
    on_console(node1, f"docker run -d --name peer1 --network hostwiz-overlay {IMAGE} sleep 600")
    assert ping(node1, "hostwiz-overlay", "peer1")
    # ...and across hosts, with a worker joined the way sites will: the token as a Secret,
    # in a snapshotted change on node2 that keeps it nowhere.
    token = Secret(on_console(node1, "docker swarm join-token -q worker").strip())
    join = join_action(token, "10.214.3.11", "10.214.3.12", "10.214.3.12")
    seen: list[str] = []
    with SshTransport.connect(node2.name, ssh_config=lab_ssh_config) as ssh:
        joined = apply_changeset(
            ssh, Changeset(node2.name, (Plan("swarm", (join,)),)),
            progress=lambda event: seen.append(f"{event.message} {event.output}"),
        )  # fmt: skip
        assert joined.confirmed, joined.message
    assert token.reveal() not in " ".join(seen)
    assert not on_console(node2, f"grep -rl {token.reveal()} /var/lib/hostwiz; true").strip()
    local = Path(os.environ["XDG_STATE_HOME"]) / "hostwiz"  # local journal, snapshot copy
    kept = [p for p in local.rglob(f"*{node2.name}*") if p.is_file()]
    kept += [f for p in local.rglob(f"*{node2.name}*") if p.is_dir() for f in p.rglob("*")]
    assert kept and not any(token.reveal().encode() in f.read_bytes() for f in kept if f.is_file())
    nodes = on_console(node1, "docker node ls --format '{{.Hostname}}'").split()
    assert node2.name in nodes
    assert ping(node2, "hostwiz-overlay", "peer1")
    on_console(node2, "docker swarm leave --force >/dev/null; true")
    on_console(node1, "docker rm -f peer1 >/dev/null; true")

    # Rollback (the way to leave): out of the swarm, no overlay, no custom bridge, no stack
    # file. It is a plan shown first (every command the teardown runs, in order), applied as
    # a change with its own snapshot.
    with SshTransport.connect(node1.name, ssh_config=lab_ssh_config) as ssh:
        rollback = rollback_plan(ssh, result.snapshot_id)
        shown = as_text(render_plan(rollback))
        order = ["docker stack rm demo", "docker network rm hostwiz-overlay",
                 "docker swarm leave --force", "docker network rm docker_gwbridge"]  # fmt: skip
        assert [shown.index(step) for step in order] == sorted(shown.index(s) for s in order)
        undone = apply_changeset(ssh, Changeset(node1.name, (rollback,)), reason="rollback")
        assert undone.confirmed
        assert [i.reason for i in list_snapshots(ssh) if i.id == undone.snapshot_id] == ["rollback"]
    assert on_console(node1, "docker info --format '{{.Swarm.LocalNodeState}}'").strip() == (
        "inactive"
    )
    names = on_console(node1, "docker network ls --format '{{.Name}}'").split()
    assert sorted(names) == ["bridge", "host", "none"]
    assert not on_console(node1, "ls /etc/hostwiz/swarm 2>/dev/null; true").strip()


def test_a_default_gwbridge_is_replaced_and_put_back(
    make_lab_hosts: Any, lab_ssh_config: Any, capsys: Any
) -> None:
    """Docker's own docker_gwbridge (left by an earlier swarm) is replaced by the chosen one
    while the host is in no swarm; the rollback puts Docker's back. ``hostwiz check`` exits 1
    on a conflict and 0 without."""
    from hostwiz.cli import main

    (lone,) = make_lab_hosts(1, docker=True)
    on_console(lone, "docker swarm init >/dev/null 2>&1; docker swarm leave --force >/dev/null")
    before = json.loads(on_console(lone, "docker network inspect docker_gwbridge"))[0]
    assert "com.docker.network.bridge.host_binding_ipv4" not in before["Options"]
    answers = SwarmAnswers(enabled=True, overlay_encrypted=False)  # eth0 is its only address

    common = ["check", "--host", lone.name, "-F", str(lab_ssh_config)]
    assert main([*common, "--set", "swarm.enabled=true"]) == 1  # live-restore, no ESP here
    out = capsys.readouterr().out
    assert "live-restore-swarm" in out and "esp-kernel" in out
    fixed = ["--set", "swarm.enabled=true", "--set", "docker.live_restore=false",
             "--set", "swarm.overlay_encrypted=false"]  # fmt: skip
    assert main([*common, *fixed]) == 0, capsys.readouterr().out

    with SshTransport.connect(lone.name, ssh_config=lab_ssh_config) as ssh:
        changeset = preview(ssh, [Selection(SWARM, answers)])[0]
        assert "replace the existing docker_gwbridge" in changeset.plans[0].actions[0].describe()
        result = apply(ssh, [Selection(SWARM, answers)])
        assert result.confirmed, result.message
        bridge = json.loads(on_console(lone, "docker network inspect docker_gwbridge"))[0]
        assert bridge["IPAM"]["Config"][0]["Subnet"] == "10.81.10.0/24"
        rollback = rollback_plan(ssh, result.snapshot_id)
        assert apply_changeset(ssh, Changeset(lone.name, (rollback,)), reason="rollback").confirmed
    after = json.loads(on_console(lone, "docker network inspect docker_gwbridge"))[0]
    assert after["IPAM"]["Config"] == before["IPAM"]["Config"]
    assert after["Options"] == before["Options"]
    assert on_console(lone, "docker info --format '{{.Swarm.LocalNodeState}}'").strip() == (
        "inactive"
    )
