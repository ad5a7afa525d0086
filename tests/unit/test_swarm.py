"""The swarm step without a host: kernel facts as this kernel and a Debian one show them, the
answers' checks, and the planner's order, refusals and explanations."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from wizard.actions import FileState, RunCommand, WriteFile
from wizard.errors import InvalidAnswer, PlanConflict
from wizard.facts import Facts
from wizard.steps.swarm import SWARM, SwarmAnswers
from wizard.steps.swarm.facts import (
    SWARM_HOST,
    DockerNetwork,
    Kernel,
    SwarmHost,
    parse_kernel,
    parse_swarm_host,
)
from wizard.steps.swarm.plan import (
    DAEMON_JSON,
    create_gwbridge,
    gwbridge_options,
    render_stack,
    stack_file,
)

HERE_CONFIG = (
    "# CONFIG_IP_VS is not set\n# CONFIG_INET_ESP is not set\n# CONFIG_CRYPTO_GCM is not set"
)
DEBIAN_CONFIG = "CONFIG_IP_VS=m\nCONFIG_INET_ESP=m\nCONFIG_CRYPTO_GCM=m"
GOOD_KERNEL = Kernel(ipvs="yes", esp="yes", gcm="yes", xfrm=True)
ANSWERS = SwarmAnswers(enabled=True, advertise_address="cluster")


def test_this_kernel_lacks_ipvs_esp_and_gcm() -> None:
    kernel = parse_kernel("xfrm", HERE_CONFIG, "")
    assert (kernel.ipvs, kernel.esp, kernel.gcm, kernel.encryption) == ("no", "no", "no", "no")


def test_a_debian_kernel_loads_them_on_demand() -> None:
    # Not loaded yet: /proc/crypto has no gcm, but modprobe -n finds the modules.
    signs = "xfrm modprobe ipvs-loadable esp-loadable gcm-loadable"
    kernel = parse_kernel(signs, DEBIAN_CONFIG, "")
    assert (kernel.ipvs, kernel.esp, kernel.gcm, kernel.encryption) == ("yes",) * 4
    # Loaded: the signs in /sys/module and /proc/crypto alone are enough.
    loaded = parse_kernel("xfrm ipvs-loaded esp-loaded", "", "name : rfc4106(gcm(aes))")
    assert loaded.encryption == "yes"
    # Modules in the config but none on disk (modprobe -n fails): no.
    assert parse_kernel("xfrm modprobe", DEBIAN_CONFIG, "").esp == "no"
    # Modules, and no modprobe to ask (the kernel may still load them itself): unknown.
    assert parse_kernel("xfrm", DEBIAN_CONFIG, "").esp == "unknown"
    # Nothing to read at all: unknown, not a refusal.
    assert parse_kernel("xfrm", "", "").encryption == "unknown"


def test_swarm_host_parses_docker_and_the_network() -> None:
    nets = [
        {
            "Name": "docker_gwbridge",
            "Driver": "bridge",
            "Created": "2026-01-01T00:00:00Z",
            "IPAM": {"Config": [{"Subnet": "10.81.10.0/24"}]},
            "Options": {"com.docker.network.bridge.enable_icc": "false"},
            "Containers": {},
        }
    ]
    addr = [
        {"ifname": "lo", "flags": ["LOOPBACK"], "mtu": 65536, "addr_info": []},
        {
            "ifname": "cluster",
            "flags": [],
            "mtu": 1500,
            "addr_info": [{"family": "inet", "local": "10.214.3.11", "prefixlen": 24}],
        },
    ]
    route = [{"dst": "default"}, {"dst": "10.214.3.0/24"}, {"dst": "10.9.9.9"}]
    info = {
        "ServerVersion": "20.10.24",
        "Swarm": {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": "n1"},
        "LiveRestoreEnabled": False,
        "SecurityOptions": ["name=seccomp"],
    }
    out = (f"@@info\n{json.dumps(info)}\n@@nets\n{json.dumps(nets)}\n@@addr\n{json.dumps(addr)}\n"
           f"@@route\n{json.dumps(route)}\n@@images\nhostwiz/busybox:latest\n<none>:<none>\n"
           "@@services\ndemo_web 1/1\n@@kernel\nxfrm\nnode-created 2026-01-01 00:00:01\n"
           f"@@config\n{HERE_CONFIG}\n@@crypto\n")  # fmt: skip
    host = parse_swarm_host(0, out)
    assert host.state == "active" and host.manager and host.node_id == "n1"
    assert host.networks["docker_gwbridge"].subnets == ("10.81.10.0/24",)
    assert host.interfaces == {"cluster": ("10.214.3.11/24",)}
    assert host.routes == ("10.214.3.0/24", "10.9.9.9/32")
    assert host.images == ("hostwiz/busybox:latest",)
    assert host.services == {"demo_web": "1/1"}
    assert host.kernel.ipvs == "no" and host.node_created == "2026-01-01 00:00:01"
    assert not parse_swarm_host(0, "").docker  # no dockerd: nothing, no error
    # docker info without a daemon still prints its JSON, the server's fields empty.
    client_only = {"ID": "", "ServerVersion": "", "Swarm": {"LocalNodeState": ""}}
    assert not parse_swarm_host(0, f"@@info\n{json.dumps(client_only)}\n").docker


def host(**changes: Any) -> SwarmHost:
    base = SwarmHost(
        docker=True, state="inactive",
        interfaces={"eth0": ("10.213.0.14/24",), "cluster": ("10.214.3.11/24",),
                    "docker0": ("172.17.0.1/16",)},
        mtus={"eth0": 1500, "cluster": 1500},
        routes=("10.213.0.0/24", "10.214.3.0/24"),
        networks={"bridge": DockerNetwork("bridge", "bridge", "", ("172.17.0.0/16",))},
        images=("hostwiz/busybox:latest",), kernel=GOOD_KERNEL,
    )  # fmt: skip
    return replace(base, **changes)


def facts(swarm_host: SwarmHost, daemon: str | None = None, answers: Any = ANSWERS) -> Facts:
    daemon_state = FileState(DAEMON_JSON, daemon is not None, (daemon or "").encode())
    stack = FileState(stack_file(answers), False)
    return Facts({SWARM_HOST.name: swarm_host, f"file:{DAEMON_JSON}": daemon_state,
                  f"file:{stack.path}": stack}, {})  # fmt: skip


def scripts(answers: SwarmAnswers, swarm_host: SwarmHost) -> list[str]:
    plan = SWARM.plan(answers, facts(swarm_host, answers=answers))
    return [a.script if isinstance(a, RunCommand) else a.path for a in plan.actions]


def test_the_bridge_comes_before_init_and_the_token_is_never_shown() -> None:
    done = scripts(ANSWERS, host())
    assert done[0].startswith("docker network create --driver bridge --subnet 10.81.10.0/24")
    assert "enable_icc=false" in done[0] and "enable_ip_masquerade=false" in done[0]
    assert done[1] == (
        "docker swarm init --advertise-addr 10.214.3.11 --data-path-addr 10.214.3.11 >/dev/null"
    )
    assert "--opt encrypted" in done[2]
    plan = SWARM.plan(ANSWERS, facts(host()))
    undo = [a.undo for a in plan.actions if isinstance(a, RunCommand)]
    assert "docker swarm leave --force" in str(undo[1])
    assert "docker network rm docker_gwbridge" in str(undo[0])


def test_the_done_host_plans_nothing() -> None:
    answers = replace(ANSWERS, overlay_encrypted=False)
    overlay = DockerNetwork("hostwiz-overlay", "overlay", "", ("10.81.30.0/24",),
                            options={"com.docker.network.driver.mtu": "1450"})  # fmt: skip
    gw = DockerNetwork("docker_gwbridge", "bridge", "", ("10.81.10.0/24",),
                       options=gwbridge_options(answers))  # fmt: skip
    done = host(
        state="active",
        manager=True,
        networks={**host().networks, "docker_gwbridge": gw, "hostwiz-overlay": overlay},
    )
    assert SWARM.plan(answers, facts(done)).empty


def test_a_default_gwbridge_is_replaced_outside_a_swarm_and_put_back_on_undo() -> None:
    default = DockerNetwork(
        "docker_gwbridge",
        "bridge",
        "",
        ("172.18.0.0/16",),
        options={"com.docker.network.bridge.enable_icc": "false"},
    )
    plan = SWARM.plan(ANSWERS, facts(host(networks={"docker_gwbridge": default})))
    first = plan.actions[0]
    assert isinstance(first, RunCommand)
    assert first.script.startswith("docker network rm docker_gwbridge >/dev/null && ")
    assert "--subnet 172.18.0.0/16" in str(first.undo)
    # In a swarm, it is refused with the safe sequence.
    with pytest.raises(PlanConflict) as refused:
        SWARM.plan(
            ANSWERS,
            facts(host(state="active", manager=True, networks={"docker_gwbridge": default})),
        )
    assert "docker swarm leave" in refused.value.hint and "drain" in refused.value.hint


@pytest.mark.parametrize(
    ("answers", "swarm_host", "daemon", "words"),
    [
        (ANSWERS, host(), '{"live-restore": true}', "live-restore"),
        (ANSWERS, host(rootless=True), None, "rootless"),
        (ANSWERS, host(kernel=Kernel("no", "no", "no", True)), None, "function not implemented"),
        (replace(ANSWERS, advertise_address=""), host(), None, "2 interfaces"),
        (replace(ANSWERS, advertise_address="10.1.1.1"), host(), None, "not an address"),
        (replace(ANSWERS, overlay_subnet="10.214.0.0/16"), host(), None, "overlaps the host"),
        (replace(ANSWERS, overlay_subnet="172.17.5.0/24"), host(), None, "network bridge"),
        (replace(ANSWERS, overlay_mtu=1480), host(), None, "MTU 1500"),
        (replace(ANSWERS, stack=True, stack_image="nginx:alpine"), host(), None, "not on this"),
        (replace(ANSWERS, stack=True, stack_image="hostwiz/busybox:latest"),
         host(kernel=replace(GOOD_KERNEL, ipvs="no")), None, "IPVS"),
        (ANSWERS, host(state="active", manager=False), None, "worker"),
    ],
)  # fmt: skip
def test_what_cannot_work_is_refused_and_explained(
    answers: SwarmAnswers, swarm_host: SwarmHost, daemon: str | None, words: str
) -> None:
    with pytest.raises(PlanConflict) as refused:
        SWARM.plan(answers, facts(swarm_host, daemon, answers))
    assert words in refused.value.message and refused.value.hint


def test_without_ipvs_dnsrr_and_host_mode_are_planned() -> None:
    answers = replace(ANSWERS, overlay_encrypted=False, endpoint_mode="dnsrr",
                      publish_mode="host", stack=True, stack_image="hostwiz/busybox:latest",
                      stack_command="echo $(hostname)")  # fmt: skip
    plan = SWARM.plan(answers, facts(host(kernel=Kernel("no", "no", "no", True)), None, answers))
    compose = json.loads(render_stack(answers).split("\n", 1)[1])
    web = compose["services"]["web"]
    assert web["deploy"] == {"endpoint_mode": "dnsrr", "mode": "global"}
    assert web["ports"][0]["mode"] == "host" and web["command"][-1] == "echo $$(hostname)"
    assert any(isinstance(a, WriteFile) for a in plan.actions)
    deploy = plan.actions[-1]
    assert isinstance(deploy, RunCommand) and "--resolve-image never" in deploy.script
    # The variable is dockerd's (read from its own environment), not the client's: set on the
    # command it did nothing, and hostwiz does not set dockerd's environment.
    assert "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE" not in deploy.script
    assert any("IPVS is missing" in note for note in plan.notes)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"overlay_subnet": "10.81.10.0/25"}, "overlaps swarm.gwbridge_subnet"),
        ({"overlay_gateway": "10.9.9.1"}, "is not in"),
        ({"overlay_mtu": 100}, "out of range"),
        ({"endpoint_mode": "dnsrr"}, "ingress routing mesh"),
        ({"stack": True}, "stack_image is empty"),
        ({"advertise_address": "a b"}, "neither an address"),
        ({"overlay_name": "-x"}, "not a valid name"),
    ],
)
def test_bad_answers_are_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidAnswer) as refused:
        SwarmAnswers(enabled=True, **changes)
    assert words in refused.value.message


def test_host_binding_goes_into_the_bridge() -> None:
    answers = replace(ANSWERS, gwbridge_host_binding="10.214.3.11")
    assert "host_binding_ipv4=10.214.3.11" in create_gwbridge(answers)


def test_a_join_for_sites_never_shows_the_token() -> None:
    from wizard.plan import Plan
    from wizard.render import as_text, render_plan
    from wizard.secrets import Secret
    from wizard.steps.swarm.join import join_action

    value = "SWMTKN-1-" + "a1" * 25 + "-" + "b2" * 12
    action = join_action(Secret(value), "10.214.3.11", "10.214.3.12", "10.214.3.12")
    shown = as_text(render_plan(Plan("swarm", (action,))))
    assert value not in shown and "docker swarm join" in shown
    assert value in action.script  # the host gets it; nothing that is shown or kept does
    with pytest.raises(InvalidAnswer):
        join_action(Secret("oops; rm -rf /"), "10.214.3.11", "10.214.3.12", "10.214.3.12")


def test_the_step_off_reads_nothing_and_plans_nothing() -> None:
    off = SwarmAnswers()
    assert SWARM.facts(off) == []  # the hardened preset lists it, off, on every run
    assert SWARM.plan(off, Facts({}, {})).empty
    assert SWARM.status(off, Facts({}, {})).status.value == "off"
