"""What a plan reads: only what the plans need (steps that are off read little or nothing),
and the combination checker shares the docker step's one ``docker info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from presets import apply_overrides, load_preset
from tests.unit.docker_fixtures import docker_facts
from tests.unit.test_firewall_plan import firewall_facts
from tests.unit.test_ssh_plan import facts as ssh_facts
from wizard.checks import HOST, HOST_DOCKER, HOST_FACTS, host_values, parse_host_docker
from wizard.errors import PlanConflict
from wizard.facts import Facts, gather
from wizard.host.docker import DOCKER_INFO, parse_info
from wizard.session import Selection, facts_needed, plan_changeset, statuses
from wizard.steps import STEPS
from wizard.transport.local import LocalTransport

# What the steps that are off in the hardened preset read only for their status and form.
STATUS_ONLY = {
    "firewall_tools", "iptables_v6", "ip_forwarding", "firewall_boot_registered",
    "net_interfaces", "ssh_path", "tls:identity", "tls:server-cert", "tls:configured-cert",
    "proxy_host:/var/log/squid", "hostwiz_applied_steps",
    "tcp_listeners", "sshd_port_files",  # the SSH step without a port move (port = 0)
    "ssh_accounts",  # ... and without AllowUsers/AllowGroups
}  # fmt: skip


def hardened(*overrides: str) -> list[Selection]:
    answers = apply_overrides(load_preset("hardened"), list(overrides)).answers
    return [Selection(STEPS[name], value) for name, value in answers.items()]


def host_raw(selections: list[Selection], **ssh: object) -> dict[str, tuple[int, str]]:
    """A host that has the hardened preset's SSH and engine settings' facts (as printed)."""
    answers = {s.step.name: s.answers for s in selections}
    return {
        **firewall_facts(answers["firewall"]).raw,
        **docker_facts(answers["docker"]).raw,
        **ssh_facts(user="root", groups="root", **ssh).raw,  # type: ignore[arg-type]
    }


def test_a_plan_reads_nothing_the_off_steps_need_only_for_their_status() -> None:
    selections = hardened()
    planning = {fact.name for fact in facts_needed(selections, planning=True)}
    everything = {fact.name for fact in facts_needed(selections)}
    assert everything >= STATUS_ONLY  # the step list still reads them
    assert not planning & STATUS_ONLY
    assert planning < everything
    # the off firewall still reads what its guard checks: the loaded zones and sshd's ports
    assert {"iptables_v4", "nft_hostwiz", "sshd_ports"} <= planning


def test_a_port_move_reads_who_listens_there() -> None:
    planning = {fact.name for fact in facts_needed(hardened("ssh.port=2222"), planning=True)}
    assert {"tcp_listeners", "sshd_port_files"} <= planning


@pytest.mark.parametrize(
    "overrides",
    [(), ("ssh.max_auth_tries=5",), ("ssh.port=2222",), ("ssh.allow_users=root,bobb",)],
)
def test_the_hardened_preset_plans_from_the_planning_facts_alone(
    overrides: tuple[str, ...],
) -> None:
    """The same plan (actions, before-states for the diffs, notes) as from every fact."""
    selections = hardened(*overrides)
    raw = host_raw(selections)
    few = Facts.from_raw(facts_needed(selections, planning=True), raw)
    many = Facts.from_raw(facts_needed(selections), {**raw, **status_raw()})
    planned = plan_changeset("h", selections, few)
    assert not planned.empty  # a fresh host: the SSH drop-in, daemon.json...
    assert planned == plan_changeset("h", selections, many)
    assert [status.status.value for _, status in statuses(selections, many)]  # still complete


def status_raw() -> dict[str, tuple[int, str]]:
    """The off steps' status-only facts, as a fresh host prints them."""
    return {
        "tls:identity": (0, "hostname h\nfqdn h\nnow 1700000000\n"),
        "tls:server-cert": (0, "MISSING\n"),
        "tls:configured-cert": (0, ""),
        "file:/etc/docker/tls/ca.pem": (0, "MISSING\n"),
        "meta:/etc/docker/tls/server-key.pem": (1, ""),
        "meta:/etc/docker/tls": (1, ""),
        "file:/etc/systemd/system/docker.service.d/hostwiz-hosts.conf": (0, "MISSING\n"),
        "proxy_host:/var/log/squid": (0, "@@squid\n@@rules4\n@@addr\n[]\n"),
        "hostwiz_applied_steps": (0, ""),
    }


def test_an_off_firewall_still_refuses_a_port_its_loaded_zones_keep_closed() -> None:
    """The guard of an off firewall plans from the planning facts: zones loaded earlier that
    do not open the SSH step's new port refuse the move, as with every fact read."""
    from tests.unit.test_firewall_needs import ROUTER, loaded_zones

    selections = hardened("ssh.port=2222")
    answers = {s.step.name: s.answers for s in selections}
    raw = {**host_raw(selections), **firewall_facts(answers["firewall"],
                                                    v4=loaded_zones(ROUTER)).raw}  # fmt: skip
    few = Facts.from_raw(facts_needed(selections, planning=True), raw)
    with pytest.raises(PlanConflict, match="SSH is to move to port 2222"):
        plan_changeset("h", selections, few)


# ---- the checker's docker facts ----------------------------------------------------------


INFO = {"ServerVersion": "28.2.2", "Swarm": {"LocalNodeState": "active"}}


def test_the_checker_and_the_docker_step_share_one_docker_command() -> None:
    assert HOST_DOCKER.command == DOCKER_INFO.command
    assert "docker" not in HOST.command.replace("/etc/docker", "").replace("dockerd", "")
    assert {HOST, HOST_DOCKER} <= set(HOST_FACTS)


@pytest.mark.parametrize(
    ("code", "out", "state", "custom"),
    [
        (0, json.dumps(INFO) + "\n@@gwbridge\n{\"com.docker.network.bridge.enable_icc\":"
            "\"false\"}\n", "active", True),
        (0, json.dumps(INFO) + "\n@@gwbridge\n{}\n", "active", False),
        (0, json.dumps(INFO) + "\n", "active", False),  # no docker_gwbridge yet
        (0, json.dumps({**INFO, "Swarm": {"LocalNodeState": "inactive"}}) + "\n", "inactive",
         False),
        (1, "", "", False),  # dockerd does not answer
    ],
)  # fmt: skip
def test_the_checkers_docker_parser(code: int, out: str, state: str, custom: bool) -> None:
    assert parse_host_docker(code, out) == {"swarm_state": state, "gwbridge_custom": custom}


def test_docker_info_is_parsed_the_same_with_the_gwbridge_after_it() -> None:
    out = json.dumps(INFO) + '\n@@gwbridge\n{"com.docker.network.bridge.enable_icc":"false"}\n'
    assert parse_info(0, out) == parse_info(0, json.dumps(INFO) + "\n")
    assert parse_info(0, out).swarm_state == "active"


def test_host_values_merge_what_was_read() -> None:
    both = Facts({HOST.name: {"ip_forward": "1"}, HOST_DOCKER.name: {"swarm_state": "active"}},
                 {})  # fmt: skip
    assert host_values(both) == {"ip_forward": "1", "swarm_state": "active"}
    assert host_values(Facts({HOST.name: {"ip_forward": "0"}}, {})) == {"ip_forward": "0"}
    assert host_values(Facts({}, {})) == {}


FAKE_DOCKER = """#!/bin/sh
echo "$*" >>"{log}"
case "$*" in
  *" info "*) echo '{info}' ;;
  *" network inspect "*) echo '{{"com.docker.network.bridge.enable_icc":"false"}}' ;;
esac
"""


@pytest.mark.parametrize("state", ["active", "inactive"])
def test_the_docker_command_inspects_the_gwbridge_only_on_a_swarm_node(
    tmp_path: Path, state: str
) -> None:
    """Through a real shell, with a stand-in ``docker`` that logs its calls."""
    log = tmp_path / "calls"
    info = json.dumps(
        {"ServerVersion": "28", "Swarm": {"LocalNodeState": state}}, separators=(",", ":")
    )  # as docker prints it
    fake = tmp_path / "docker"
    fake.write_text(FAKE_DOCKER.format(log=log, info=info))
    fake.chmod(0o755)

    class OnPath(LocalTransport):
        def _argv(self, script: str) -> list[str]:
            return ["/usr/bin/env", f"PATH={tmp_path}:/usr/bin:/bin", "/bin/sh", "-c", script]

    facts = gather(OnPath(), [DOCKER_INFO, HOST_DOCKER])
    calls = log.read_text().splitlines()
    assert facts[DOCKER_INFO].swarm_state == state
    assert facts.get(HOST_DOCKER.name)["gwbridge_custom"] is (state == "active")
    assert len(calls) == (2 if state == "active" else 1)  # once for both facts


FAKE_PROGRAM = """#!/bin/sh
echo "$(basename "$0") $*" >>"{log}"
[ "$(basename "$0")" = ip ] && echo "$4 dev eth7 src 10.0.0.5 uid 0 \\\\    cache"
true
"""


def test_the_ssh_path_of_a_root_login_runs_only_ip(tmp_path: Path) -> None:
    """A root login's shell has SSH_CONNECTION itself: no walk through /proc (tr, sed, head,
    awk per parent), only ``ip route get`` for the interface."""
    from wizard.steps.firewall.host import SSH_PATH

    log = tmp_path / "calls"
    for name in ("ip", "tr", "sed", "head", "awk"):
        fake = tmp_path / name
        fake.write_text(FAKE_PROGRAM.format(log=log))
        fake.chmod(0o755)

    class RootLogin(LocalTransport):
        def _argv(self, script: str) -> list[str]:
            return ["/usr/bin/env", f"PATH={tmp_path}:/usr/bin:/bin",
                    "SSH_CONNECTION=10.0.0.9 40022 10.0.0.5 22",
                    "/bin/sh", "-c", script]  # fmt: skip

    path = gather(RootLogin(), [SSH_PATH])[SSH_PATH]
    assert (path.client, path.server_port, path.interface) == ("10.0.0.9", 22, "eth7")
    assert log.read_text().splitlines() == ["ip -o route get 10.0.0.9"]


class RecordingHost:
    """Answers every fact's command from a table (as the host would print it), and records
    which facts were asked for."""

    host_label = "h"

    def __init__(self, raw: dict[str, tuple[int, str]]) -> None:
        self.raw = raw
        self.asked: list[str] = []
        from wizard.transport.base import TransportStats

        self.stats = TransportStats()

    def run(self, script: str, *, stdin: bytes = b"", timeout: float = 300.0) -> Any:
        import re
        import shlex

        from wizard.transport.base import CommandResult

        boundary = re.search(r"HOSTWIZ-[0-9a-f]+", script)
        assert boundary is not None
        frames = []
        for quoted in re.findall(r"printf '%s\\n' (.+?); trap ", script):
            header = shlex.split(quoted)[0]
            name = header.split(" S ", 1)[1]
            self.asked.append(name)
            code, out = self.raw.get(name, (1, ""))
            frames.append(f"{header}\n{out}\n{boundary[0]} E {code}\n")
        return CommandResult(script, 0, "".join(frames).encode())


def test_apply_compares_with_a_plan_read_the_same_way() -> None:
    """``hostwiz apply`` without --yes re-reads the host before applying: with the planning
    facts its plan was shown from, not every fact (a before-state only a status fact read
    would make the same plan look changed)."""
    from wizard.errors import HostChanged
    from wizard.plan import Changeset
    from wizard.session import apply

    selections = hardened()
    host = RecordingHost({**host_raw(selections), **status_raw()})
    with pytest.raises(HostChanged):
        apply(host, selections, expected=Changeset("h", ()), planning=True)  # type: ignore[arg-type]
    assert host.asked and not set(host.asked) & STATUS_ONLY
