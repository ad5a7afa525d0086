"""The swarm step's pure planner: (answers, facts) -> the actions still needed.

Order matters and is the seed's: docker_gwbridge is created BEFORE ``docker swarm init``
(afterwards Docker has made its own, with default options), then the init, the overlay and the
stack. Each command carries its undo, and undos run newest first, so a rollback removes the
stack, the overlay, leaves the swarm (``docker swarm leave --force``) and only then removes the
custom bridge (and recreates a default one hostwiz replaced): Docker's default network state.

The join token is never part of a plan: ``docker swarm init`` prints it, so its output goes to
/dev/null (a journal or a preview would otherwise keep it). Joins are a site change (another
host): :mod:`wizard.steps.swarm.site`.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from wizard.actions import Action, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.facts import Fact, Facts, file_fact
from wizard.plan import Plan
from wizard.steps.swarm.answers import SwarmAnswers
from wizard.steps.swarm.facts import SWARM_HOST, DockerNetwork, SwarmHost
from wizard.transport.base import shell_quote

DAEMON_JSON = "/etc/docker/daemon.json"
STACK_DIR = "/etc/hostwiz/swarm"
GWBRIDGE = "docker_gwbridge"
OPT = "com.docker.network.bridge."
NOT_OURS = ("docker", "br-", "veth", "lo")
"""Interfaces that are Docker's, never an advertise address."""
ALTERNATIVE = (
    "--set swarm.overlay_encrypted=false --set swarm.endpoint_mode=dnsrr "
    "--set swarm.publish_mode=host"
)

DAEMON = file_fact(DAEMON_JSON)


def stack_file(answers: SwarmAnswers) -> str:
    return f"{STACK_DIR}/{answers.stack_name}.yml"


def facts_for(answers: SwarmAnswers) -> list[Fact[Any]]:
    """Nothing while the step is off: the swarm fact runs several docker commands, and the
    hardened preset lists the step (off) on every run."""
    if not answers.enabled:
        return []
    return [SWARM_HOST, DAEMON, file_fact(stack_file(answers))]


def stack_facts(answers: SwarmAnswers) -> list[Fact[Any]]:
    """What planning the demo stack reads besides :data:`SWARM_HOST`: its compose file."""
    return [file_fact(stack_file(answers))] if answers.stack else []


def host_of(facts: Facts) -> SwarmHost:
    return facts[SWARM_HOST]


def retry(command: str, tries: int = 20) -> str:
    """``command`` until it works, at most ``tries`` times a half second apart (Docker frees a
    network a moment after the last task on it ends)."""
    return (
        f"i=0; until {command} >/dev/null 2>&1; do i=$((i+1)); "
        f'[ "$i" -ge {tries} ] && break; sleep 0.5; done; true'
    )


def resolve(value: str, host: SwarmHost, label: str) -> str:
    """An address or interface name (or "") -> one of the host's own IPv4 addresses."""
    own = {n: a for n, a in host.interfaces.items() if a and not n.startswith(NOT_OURS)}
    listed = "; ".join(f"{n} {', '.join(a)}" for n, a in own.items()) or "none found"
    if not value:
        if len(own) == 1:
            return next(iter(own.values()))[0].split("/")[0]
        raise PlanConflict(
            f"swarm.{label} is empty and this host has {len(own)} interfaces with addresses.",
            f"Name the one the other nodes reach (this host has: {listed}), e.g. "
            f"--set swarm.{label}={next(iter(own), 'eth1')}.",
        )
    if value in own:
        return own[value][0].split("/")[0]
    if host.interface_of(value) in own:
        return value
    raise PlanConflict(
        f"swarm.{label}: {value} is not an address or interface of this host.",
        f"Use one of the host's real interfaces: {listed}.",
    )


def check(answers: SwarmAnswers, facts: Facts, host: SwarmHost) -> None:
    """Refuse, before anything changes, what cannot work on this host."""
    if not host.docker:
        raise PlanConflict("dockerd does not answer on this host.", "Run the docker step first.")
    if host.rootless:
        raise PlanConflict(
            "Docker runs rootless here: swarm mode needs the rootful engine.",
            "Set docker.mode to userns-remap or rootful.",
        )
    daemon = facts[DAEMON]
    if daemon.exists and live_restore_on(daemon.text):
        raise PlanConflict(
            "live-restore is on in daemon.json: dockerd refuses swarm mode with it.",
            "Turn it off with --set docker.live_restore=false (in the same change).",
        )
    if host.state not in {"inactive", "active", ""}:
        raise PlanConflict(
            f"this node's swarm state is {host.state!r}.",
            "Fix it by hand (docker swarm leave --force) and plan again.",
        )
    if host.state == "active" and not host.manager:
        raise PlanConflict(
            "this host is a worker of another swarm.",
            "Joining other swarms is a site change: give this host roles = "
            '["swarm-worker"] in a site file with [steps.swarm] (hostwiz apply --site).',
        )
    _check_encryption(answers, host)
    if host.kernel.ipvs == "no" and needs_ipvs(answers):
        raise PlanConflict(
            "this kernel has no IPVS: service VIPs and the ingress routing mesh do not work "
            "(services publish nothing and cannot reach each other by VIP).",
            f"Use DNS round robin and host-mode publishing: {ALTERNATIVE}.",
        )
    if answers.stack and answers.stack_image not in host.images:
        raise PlanConflict(
            f"the image {answers.stack_image} is not on this host (hostwiz pulls nothing).",
            f"Load it (docker load / docker import) or name one of: "
            f"{', '.join(host.images) or 'none'}.",
        )
    check_subnets(answers, host)


def needs_ipvs(answers: SwarmAnswers) -> bool:
    """The stack uses a service VIP or the ingress routing mesh (both IPVS)."""
    return answers.stack and (answers.endpoint_mode == "vip" or answers.publish_mode == "ingress")


def _check_encryption(answers: SwarmAnswers, host: SwarmHost) -> None:
    kernel = host.kernel
    if not answers.overlay_encrypted or kernel.encryption != "no":
        return
    missing = [name for name, ok in (("ESP (esp4)", kernel.esp), ("AES-GCM (gcm)", kernel.gcm))
               if ok == "no"] + ([] if kernel.xfrm else ["xfrm"])  # fmt: skip
    raise PlanConflict(
        f"this kernel lacks {' and '.join(missing)}: an encrypted overlay would be created but "
        "carry nothing between hosts (only dockerd's log says 'function not implemented').",
        f"Use an unencrypted overlay on a network you trust, with DNS round robin and "
        f"host-mode publishing: {ALTERNATIVE}. Or use a kernel with esp4 and gcm.",
    )


def check_subnets(answers: SwarmAnswers, host: SwarmHost) -> None:
    mine = {GWBRIDGE: answers.gwbridge_network, answers.overlay_name: answers.overlay_network}
    for name, net in mine.items():
        for route in host.routes:
            if net.overlaps(ipaddress.ip_network(route)) and not _docker_route(route, host):
                raise PlanConflict(
                    f"{net} ({name}) overlaps the host's route to {route}.",
                    "Pick a subnet nothing on this host routes to (ip route).",
                )
        for other in host.networks.values():
            if other.name in mine:
                continue
            for subnet in other.subnets:
                if net.overlaps(ipaddress.ip_network(subnet, strict=False)):
                    raise PlanConflict(
                        f"{net} ({name}) overlaps Docker's network {other.name} ({subnet}).",
                        "Pick a subnet of its own (docker network inspect shows the others).",
                    )


def _docker_route(route: str, host: SwarmHost) -> bool:
    """A route Docker made for one of its own networks (docker_gwbridge's, say)."""
    return any(route in n.subnets for n in host.networks.values())


def live_restore_on(text: str) -> bool:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("live-restore") is True


def gwbridge_options(answers: SwarmAnswers) -> dict[str, str]:
    options = {
        f"{OPT}name": GWBRIDGE,
        f"{OPT}enable_icc": str(answers.gwbridge_icc).lower(),
        f"{OPT}enable_ip_masquerade": str(answers.gwbridge_masquerade).lower(),
    }
    if answers.gwbridge_host_binding:
        options[f"{OPT}host_binding_ipv4"] = answers.gwbridge_host_binding
    return options


def gwbridge_matches(answers: SwarmAnswers, network: DockerNetwork | None) -> bool:
    return (
        network is not None
        and network.subnets == (str(answers.gwbridge_network),)
        and network.options == gwbridge_options(answers)
    )


def create_gwbridge(answers: SwarmAnswers) -> str:
    options = gwbridge_options(answers).items()
    opts = " ".join(f"--opt {shell_quote(f'{k}={v}')}" for k, v in options)
    return (
        f"docker network create --driver bridge --subnet {answers.gwbridge_network} {opts} "
        f"{GWBRIDGE} >/dev/null"
    )


def _recreate(network: DockerNetwork) -> str:
    """Shell that makes ``network`` again as it was (a default docker_gwbridge replaced)."""
    subnets = " ".join(f"--subnet {s}" for s in network.subnets)
    subnets += "".join(f" --gateway {g}" for g in network.gateways)
    opts = " ".join(f"--opt {shell_quote(f'{k}={v}')}" for k, v in sorted(network.options.items()))
    return f"docker network create --driver bridge {subnets} {opts} {GWBRIDGE} >/dev/null"


def gwbridge_actions(answers: SwarmAnswers, host: SwarmHost) -> list[Action]:
    current = host.networks.get(GWBRIDGE)
    if gwbridge_matches(answers, current):
        return []
    create = create_gwbridge(answers)
    remove = retry(f"docker network rm {GWBRIDGE}")
    if current is None:
        return [RunCommand(
            create, why=f"create docker_gwbridge ({answers.gwbridge_network}, icc "
            f"{answers.gwbridge_icc}, masquerade {answers.gwbridge_masquerade}) before swarm init",
            undo=remove, undo_why="remove the custom docker_gwbridge (Docker makes a default "
            "one again when a node next joins a swarm)", timeout=60,
        )]  # fmt: skip
    if host.state == "active":
        raise PlanConflict(
            "this host is already in a swarm, with a docker_gwbridge that is not the chosen "
            "one; it can only be replaced outside a swarm.",
            "The safe sequence: drain the node (docker node update --availability drain), "
            "docker swarm leave (on the last manager: --force, which ends the swarm), docker "
            "network rm docker_gwbridge, then apply this step again (it creates the bridge and "
            "inits the swarm).",
        )
    if current.containers:
        raise PlanConflict(
            f"docker_gwbridge has {current.containers} container(s) attached.",
            "Stop them (docker network inspect docker_gwbridge lists them) and plan again.",
        )
    return [RunCommand(
        f"docker network rm {GWBRIDGE} >/dev/null && {create}",
        why="replace the existing docker_gwbridge (made by Docker, with its default options) "
        "by the chosen one: safe now, since the host is in no swarm and nothing is attached",
        undo=f"{remove}; {_recreate(current)}",
        undo_why="put the earlier docker_gwbridge back, with its subnet and options",
        timeout=60,
    )]  # fmt: skip


def init_actions(answers: SwarmAnswers, host: SwarmHost) -> list[Action]:
    if host.state == "active":
        return []
    advertise = resolve(answers.advertise_address, host, "advertise_address")
    data = resolve(answers.data_path_address or advertise, host, "data_path_address")
    return [RunCommand(
        f"docker swarm init --advertise-addr {advertise} --data-path-addr {data} >/dev/null",
        why=f"make this host a swarm manager, reached on {advertise}, overlay traffic on {data} "
        "(the output, with the join token, is not kept)",
        undo="docker swarm leave --force >/dev/null 2>&1 || true",
        undo_why="leave the swarm (docker swarm leave --force)",
        timeout=120,
    )]  # fmt: skip


def overlay_matches(answers: SwarmAnswers, network: DockerNetwork) -> bool:
    gateway_ok = not answers.overlay_gateway or network.gateways == (answers.overlay_gateway,)
    return (
        network.driver == "overlay"
        and network.subnets == (str(answers.overlay_network),)
        and gateway_ok
        and network.options.get("com.docker.network.driver.mtu") == str(answers.overlay_mtu)
        and ("encrypted" in network.options) == answers.overlay_encrypted
    )


def create_overlay(answers: SwarmAnswers) -> str:
    parts = ["docker network create --driver overlay --attachable",
             f"--subnet {answers.overlay_network}"]  # fmt: skip
    if answers.overlay_gateway:
        parts.append(f"--gateway {answers.overlay_gateway}")
    parts.append(f"--opt com.docker.network.driver.mtu={answers.overlay_mtu}")
    if answers.overlay_encrypted:
        parts.append("--opt encrypted")
    parts.append(f"{shell_quote(answers.overlay_name)} >/dev/null")
    return " ".join(parts)


def overlay_actions(answers: SwarmAnswers, host: SwarmHost) -> list[Action]:
    current = host.networks.get(answers.overlay_name)
    if current is not None and overlay_matches(answers, current):
        return []
    if current is not None:
        raise PlanConflict(
            f"a network {answers.overlay_name} exists with other settings.",
            f"Remove it (docker network rm {answers.overlay_name}) or choose another "
            "swarm.overlay_name.",
        )
    data = host.mtus.get(host.interface_of(_data_address(answers, host)), 1500)
    if answers.overlay_mtu > data - 50:
        raise PlanConflict(
            f"swarm.overlay_mtu {answers.overlay_mtu} does not fit the data path interface's "
            f"MTU {data} (VXLAN adds 50 bytes): large packets would be lost.",
            f"Use --set swarm.overlay_mtu={data - 50}.",
        )
    how = "encrypted (IPsec)" if answers.overlay_encrypted else "unencrypted"
    return [RunCommand(
        create_overlay(answers),
        why=f"create the {how} overlay network {answers.overlay_name} ({answers.overlay_network}, "
        f"MTU {answers.overlay_mtu}), attachable",
        undo=retry(f"docker network rm {shell_quote(answers.overlay_name)}"),
        undo_why=f"remove the overlay network {answers.overlay_name}",
        timeout=60,
    )]  # fmt: skip


def _data_address(answers: SwarmAnswers, host: SwarmHost) -> str:
    try:
        advertise = resolve(answers.advertise_address, host, "advertise_address")
        return resolve(answers.data_path_address or advertise, host, "data_path_address")
    except PlanConflict:
        return ""


def render_stack(answers: SwarmAnswers) -> str:
    """The demo stack's compose file (JSON is YAML; ``$`` doubled against interpolation)."""
    service: dict[str, Any] = {
        "image": answers.stack_image,
        "networks": ["overlay"],
        "ports": [{
            "target": answers.stack_target_port, "published": answers.stack_port,
            "protocol": "tcp", "mode": answers.publish_mode,
        }],
        "deploy": {"endpoint_mode": answers.endpoint_mode},
    }  # fmt: skip
    if answers.publish_mode == "host":
        service["deploy"]["mode"] = "global"  # one task per node: each holds the port once
    else:
        service["deploy"].update(mode="replicated", replicas=answers.stack_replicas)
    if answers.stack_command:
        service["command"] = ["sh", "-c", answers.stack_command.replace("$", "$$")]
    compose = {
        "version": "3.8",
        "services": {"web": service},
        "networks": {"overlay": {"external": True, "name": answers.overlay_name}},
    }
    return "# hostwiz: the swarm step's demo stack\n" + json.dumps(compose, indent=2) + "\n"


def deploy_script(answers: SwarmAnswers) -> str:
    """``--resolve-image never``: the manager does not ask a registry to pin the image to a
    digest, so every node runs the image by its name, as loaded there.

    Each node's dockerd still tries to pull the image before it starts a task (swarm's
    executor always does; only a dockerd *started* with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
    in its own environment skips that, and hostwiz does not change dockerd's environment).
    The failed pull is only logged; the task runs the node's own copy. A node that reaches a
    registry holding that name may get a newer copy instead."""
    return (
        f"docker stack deploy --resolve-image never "
        f"-c {shell_quote(stack_file(answers))} {shell_quote(answers.stack_name)} >/dev/null"
    )


def stack_actions(answers: SwarmAnswers, facts: Facts, host: SwarmHost) -> list[Action]:
    if not answers.stack:
        return []
    path = stack_file(answers)
    content = render_stack(answers).encode()
    state = facts[file_fact(path)]
    actions: list[Action] = []
    if not (state.exists and state.content == content):
        actions.append(WriteFile(path, content, 0o644, why="the demo stack's compose file"))
    if actions or f"{answers.stack_name}_web" not in host.services:
        name = shell_quote(answers.stack_name)
        gone = f'[ -z "$(docker ps -aq --filter label=com.docker.stack.namespace={name})" ]'
        actions.append(RunCommand(
            deploy_script(answers),
            why=f"deploy the demo stack {answers.stack_name} ({answers.stack_image}, the image "
            "as each node has it: not resolved in a registry)",
            undo=f"docker stack rm {name} >/dev/null 2>&1; {retry(gone, 40)}",
            undo_why=f"remove the stack {answers.stack_name} and wait for its containers to go",
            timeout=120,
        ))  # fmt: skip
    return actions


def plan_swarm(answers: SwarmAnswers, facts: Facts) -> Plan:
    if not answers.enabled:
        return Plan("swarm")
    host = host_of(facts)
    check(answers, facts, host)
    actions = gwbridge_actions(answers, host)
    actions += init_actions(answers, host)
    actions += overlay_actions(answers, host)
    actions += stack_actions(answers, facts, host)
    before = tuple(facts[file_fact(a.path)] for a in actions if isinstance(a, WriteFile))
    return Plan("swarm", tuple(actions), before=before,
                notes=notes(answers, host) if actions else ())  # fmt: skip


def notes(answers: SwarmAnswers, host: SwarmHost) -> tuple[str, ...]:
    found = [
        "Between the nodes, 2377/tcp (managers), 7946/tcp+udp (gossip) and 4789/udp (VXLAN) "
        "must pass: the firewall step's 'swarm' service opens them to firewall.swarm_peers. "
        "Never open 4789/udp to wan (anyone could inject packets into the overlays).",
        "The join token is never shown or kept: other hosts join through a site "
        "(roles swarm-manager and swarm-worker).",
    ]
    if answers.overlay_encrypted:
        found.append("Encrypted overlays need ESP (IP protocol 50) let through between nodes.")
    if host.kernel.ipvs != "yes":
        found.append(
            f"IPVS is {'missing' if host.kernel.ipvs == 'no' else 'not confirmed'} on this "
            "kernel: service VIPs and the routing mesh need it; dnsrr and mode=host work "
            "without it."
        )
    if answers.publish_mode == "host" and answers.stack:
        found.append("Host-mode publishing runs one task per node (global mode), each on the "
                     f"node's port {answers.stack_port}.")  # fmt: skip
    return tuple(found)
