"""The proxy step's pure planner: (answers, facts) -> the actions still needed.

Each action knows its inverse: files are put back from the snapshot; loading the rules is
undone by loading the old ones or removing hostwiz's proxy chains; restarting squid is undone
by restarting it on the restored configuration (or stopping it if it was not running); a log
folder hostwiz created is removed. An empty plan means squid runs on exactly this
configuration and the kernel holds exactly these rules.
"""

from __future__ import annotations

from typing import Any

from wizard.actions import Action, RemoveFile, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact, restart_service_script
from wizard.plan import Plan
from wizard.steps.proxy import container, rules, squid
from wizard.steps.proxy.answers import SUPPORTED_PLACEMENTS, ProxyAnswers
from wizard.steps.proxy.container import Container, container_fact
from wizard.steps.proxy.facts import ProxyHost, proxy_host_fact
from wizard.transport.base import shell_quote

FILES = {
    path: file_fact(path)
    for path in (squid.CONF, squid.BLOCKLIST, rules.RULES_V4, rules.RULES_V6, rules.SCRIPT,
                 rules.UNIT, rules.INIT_SCRIPT, rules.FIREWALL_RULES_V4, container.SCRIPT)
}  # fmt: skip

_NOT_HERE = {
    "proxy-host": (
        "squid on another host is a change of two hosts at once (the router and the proxy "
        "host): it is planned as a site, not by the one-host proxy step.",
        'Write a site file with the router (roles = ["router"]), the proxy host (roles = '
        '["proxy"]) and a [steps.proxy] table (client_interfaces = ["lan"], ...), then '
        "hostwiz plan --site FILE (hostwiz lab up --topology proxy writes one to practise "
        'on). Or use placement = "router" (squid on this host).',
    ),
}


def facts_for(answers: ProxyAnswers) -> list[Fact[Any]]:
    if not answers.enabled:
        # Off plans nothing: the host's interfaces and rules (the step list's status, the
        # form's context) are enough. The files (Debian's squid.conf alone is ~340 KB) would
        # cost every run of a preset that lists the step.
        return [proxy_host_fact(answers.log_dir)]
    found: list[Fact[Any]] = [proxy_host_fact(answers.log_dir), SERVICE_MANAGER, *FILES.values()]
    if answers.placement == "container":
        found.append(container_fact(answers))
    return found


def host_of(answers: ProxyAnswers, facts: Facts) -> ProxyHost:
    return facts[proxy_host_fact(answers.log_dir)]


def client_networks(answers: ProxyAnswers, host: ProxyHost, version: int) -> tuple[str, ...]:
    """The listed networks of one family, or those of the client interfaces."""
    if answers.client_networks:
        return answers.networks(version)
    nets = (n for name in answers.client_interfaces for n in host.networks.get(name, ()))
    return tuple(dict.fromkeys(n for n in nets if (":" in n) == (version == 6)))


def check(answers: ProxyAnswers, host: ProxyHost, facts: Facts) -> None:
    """Refuse, before anything changes, what cannot work on this host."""
    if answers.placement not in SUPPORTED_PLACEMENTS:
        message, hint = _NOT_HERE[answers.placement]
        raise PlanConflict(message, hint)
    if answers.placement == "container":
        check_container(answers, host, facts[container_fact(answers)])
    elif not host.squid_version:
        raise PlanConflict(
            "squid is not installed on this host.",
            "Install it (apt install squid) and run this step again.",
        )
    if not answers.client_interfaces:
        raise PlanConflict(
            "proxy.client_interfaces is empty: hostwiz does not know whose web traffic to "
            "send to squid.",
            f"Name the interfaces the clients are on, e.g. --set proxy.client_interfaces=lan "
            f"(this host has: {', '.join(sorted(host.networks)) or 'none'}).",
        )
    missing = [name for name in answers.client_interfaces if name not in host.networks]
    if missing:
        raise PlanConflict(
            f"this host has no interface {', '.join(missing)}.",
            f"Use the host's interfaces: {', '.join(sorted(host.networks)) or 'none found'}.",
        )
    if not client_networks(answers, host, 4) + client_networks(answers, host, 6):
        raise PlanConflict(
            "no client network: the client interfaces have no addresses.",
            "List the clients' networks in proxy.client_networks (e.g. 10.0.2.0/24).",
        )


def check_container(answers: ProxyAnswers, host: ProxyHost, found: Container) -> None:
    """What squid in a container needs: a rootful dockerd, the image here, and no squid of the
    package taking the same ports."""
    router = 'Or use placement = "router" (squid from the Debian package).'
    if not found.docker:
        raise PlanConflict("dockerd does not answer on this host.",
                           f"Run the docker step first. {router}")  # fmt: skip
    if found.rootless:
        raise PlanConflict(
            "Docker runs rootless here: a rootless container's host network is not the "
            "host's, so squid could not take the redirected traffic.",
            f"Set docker.mode to userns-remap or rootful. {router}",
        )
    if not found.image_id:
        raise PlanConflict(
            f"the image {answers.container_image} is not on this host (hostwiz pulls nothing).",
            f"Put it there first: docker pull {answers.container_image} (or docker load -i "
            "FILE), then plan again.",
        )
    if (host.running and not found.running) or "squid" in host.boot:
        raise PlanConflict(
            "squid from the Debian package runs (or starts at boot) on this host: it would "
            "hold the ports the container needs.",
            "Stop and disable it (systemctl disable --now squid, or update-rc.d squid disable "
            "and /etc/init.d/squid stop; hostwiz rollback if hostwiz set it up), then plan "
            "again.",
        )


def _file(facts: Facts, path: str, content: str | None, mode: int, why: str) -> list[Action]:
    state = facts[FILES[path]]
    if content is None:
        return [RemoveFile(path, why=why)] if state.exists else []
    data = content.encode()
    if state.exists and state.content == data and state.mode == mode:
        return []
    return [WriteFile(path, data, mode, why=why)]


def plan_proxy(answers: ProxyAnswers, facts: Facts) -> Plan:
    if not answers.enabled:
        return Plan("proxy")
    host = host_of(answers, facts)
    check(answers, host, facts)
    nets4, nets6 = client_networks(answers, host, 4), client_networks(answers, host, 6)
    conf = squid.render(answers, nets4 + nets6)
    blocklist = squid.blocklist_text(answers) or None
    bad = squid.problems(conf, {squid.BLOCKLIST} if blocklist else set())
    if bad:
        raise PlanConflict(f"squid's configuration would not work: {'; '.join(bad)}.")
    v4, v6 = rules.render(answers, nets4, 4), rules.render(answers, nets6, 6)

    actions: list[Action] = []
    in_container = answers.placement == "container"
    if not host.log_dir_exists:
        quoted = shell_quote(answers.log_dir)
        owner = container.PROXY_UID if in_container else "proxy"
        actions.append(RunCommand(
            f"install -d -o {owner} -g {owner} -m 0750 {quoted}",
            why=f"create squid's log folder {answers.log_dir}",
            undo=f"rm -rf {quoted}",
        ))  # fmt: skip
    squid_files = _file(facts, squid.BLOCKLIST, blocklist, 0o644, "domains squid refuses")
    squid_files += _file(facts, squid.CONF, conf, 0o644, "squid's configuration")
    actions += squid_files
    if in_container:
        actions += _container(answers, facts, host, bool(squid_files), bool(blocklist))
    else:
        actions += _squid_restart(answers, facts, host, bool(squid_files))
    rule_files = _file(facts, rules.RULES_V4, v4, 0o644, "IPv4 rules (HWPROXY-* chains)")
    rule_files += _file(facts, rules.RULES_V6, v6, 0o644, "IPv6 rules, the same for IPv6")
    rule_files += _file(facts, rules.SCRIPT, rules.SCRIPT_TEXT, 0o755, "loads the rules")
    actions += rule_files
    live = rules.live_problems(v4, host.rules_v4) + rules.live_problems(v6, host.rules_v6)
    firewall = facts[FILES[rules.FIREWALL_RULES_V4]]  # as a firewall step before this leaves it
    if firewall.exists and rules.firewall_jumps_in_first(firewall.text, host.rules_v4):
        live.append("the firewall's zones will be jumped to before the proxy's accept")
    if rule_files or live:
        actions.append(RunCommand(
            f"{rules.SCRIPT} start",
            why="send the clients' web traffic to squid: one iptables-restore --noflush per "
            "address family (hostwiz's HWPROXY-* chains only), then the jumps to them",
            undo=rules.undo_load_script(),
            undo_why="load the proxy rules that were there before, or remove every HWPROXY "
            "chain and jump if there were none",
            timeout=60,
        ))  # fmt: skip
    actions += _boot(facts, host, package=not in_container)
    before = tuple(facts[FILES[a.path]] for a in actions if isinstance(a, WriteFile | RemoveFile))
    return Plan(
        "proxy",
        tuple(actions),
        before=before,
        notes=_notes(answers, nets4, nets6) if actions else (),
    )


def _container(
    answers: ProxyAnswers, facts: Facts, host: ProxyHost, changed: bool, blocklist: bool
) -> list[Action]:
    """The cache folder, the container's script, and (re)creating or restarting it."""
    found = facts[container_fact(answers)]
    actions: list[Action] = []
    if found.cache_dir_missing_from:
        cache = shell_quote(answers.container_cache_dir)
        uid = container.PROXY_UID
        actions.append(RunCommand(
            f"install -d -o {uid} -g {uid} -m 0750 {cache}",
            why=f"create squid's cache folder {answers.container_cache_dir} (the container's "
            f"{squid.SPOOL})",
            undo=f"rm -rf {shell_quote(found.cache_dir_missing_from)}",
        ))  # fmt: skip
    why = f"creates squid's container {container.NAME} (image {answers.container_image})"
    text = container.script_text(answers, blocklist)
    script = _file(facts, container.SCRIPT, text, 0o755, why)
    actions += script
    current = (found.running and found.label == container.digest(answers, blocklist)
               and found.container_image_id == found.image_id)  # fmt: skip
    check = container.parse_check(answers, blocklist)
    wait = squid.wait_listening(answers.intercept_port)
    if script or not current:
        actions.append(RunCommand(
            f"{check}\n{container.SCRIPT}\n{wait}",
            why=f"check squid's configuration in the image, (re)create the container "
            f"{container.NAME} on the host's network, wait until squid listens",
            undo=container.undo_script(),
            undo_why="remove the container (the earlier one is created again, if there was one)",
            timeout=180,
        ))  # fmt: skip
    elif changed or host.listens(answers.intercept_port) is None:
        actions.append(RunCommand(
            f"{check}\ndocker restart {container.NAME} >/dev/null\n{wait}",
            why="check squid's configuration in the image, restart its container on it",
            undo=f"docker restart {container.NAME} >/dev/null 2>&1 || true",
            undo_why="restart the container on the earlier configuration",
            timeout=180,
        ))  # fmt: skip
    return actions


def _squid_restart(
    answers: ProxyAnswers, facts: Facts, host: ProxyHost, changed: bool
) -> list[Action]:
    listening = host.listens(answers.intercept_port)
    if not changed and host.running and listening is not None:
        return []
    manager = facts[SERVICE_MANAGER]
    stop = "systemctl stop squid" if manager == "systemd" else "/etc/init.d/squid stop"
    undo = restart_service_script(manager, "squid") if host.running else stop
    return [RunCommand(
        f"{squid.PARSE_SCRIPT}\n{restart_service_script(manager, 'squid')}\n"
        f"{squid.wait_listening(answers.intercept_port)}",
        why="check squid's configuration (squid -k parse, and its ERROR lines), restart squid "
        "on it, and wait until it listens on the intercept port",
        undo=f"{undo} >/dev/null 2>&1 || true",
        undo_why="restart squid on its earlier configuration"
        if host.running else "stop squid again (it was not running)",
        timeout=120,
    )]  # fmt: skip


def _boot(facts: Facts, host: ProxyHost, package: bool = True) -> list[Action]:
    """The rules' boot path, and squid's where it is the package's (a container starts by
    its restart policy)."""
    actions: list[Action] = []
    if facts[SERVICE_MANAGER] == "systemd":
        actions += _file(facts, rules.UNIT, rules.UNIT_TEXT, 0o644, "loads the rules at boot")
        enable = RunCommand(
            "systemctl daemon-reload && systemctl enable hostwiz-proxy.service",
            why="load the proxy rules at every boot",
            undo=f"rm -f {rules.UNIT_LINK}; systemctl daemon-reload",
        )
        # Debian's systemctl also keeps the init script's links in step (update-rc.d enable),
        # which fails where they were never made: `defaults` makes them first (a no-op if there).
        squid_on = RunCommand(
            "(update-rc.d squid defaults >/dev/null 2>&1 || true) && systemctl enable squid",
            why="start squid at every boot", undo="systemctl disable squid",
        )  # fmt: skip
    else:
        actions += _file(
            facts, rules.INIT_SCRIPT, rules.INIT_TEXT, 0o755, "loads the rules at boot"
        )
        enable = RunCommand(
            "update-rc.d hostwiz-proxy defaults",
            why="load the proxy rules at every boot (init script)",
            undo="update-rc.d -f hostwiz-proxy remove >/dev/null 2>&1 || true",
        )
        squid_on = RunCommand(
            "update-rc.d squid defaults >/dev/null && update-rc.d squid enable",
            why="start squid at every boot",
            undo="update-rc.d squid disable >/dev/null 2>&1 || true",
        )  # fmt: skip
    if "rules" not in host.boot:
        actions.append(enable)
    if package and "squid" not in host.boot:
        actions.append(squid_on)
    return actions


def _notes(
    answers: ProxyAnswers, nets4: tuple[str, ...], nets6: tuple[str, ...]
) -> tuple[str, ...]:
    ports = ", ".join(answers.web_ports)
    nets = ", ".join(nets4 + nets6)
    where = "on this host"
    if answers.placement == "container":
        where = f"in the container {container.NAME} on this host"
    notes = [
        f"Web traffic (TCP {ports}) from {nets} arriving on "
        f"{', '.join(answers.client_interfaces)} is redirected to squid {where} "
        f"(port {answers.intercept_port}); SSH, ping and all other traffic keep their path, and "
        "the host's own web traffic is not redirected.",
        "HTTPS is not intercepted: squid could only read it with peek-and-splice, which needs "
        "a certificate authority of this proxy installed and trusted on every client.",
        f"squid logs every request to {answers.log_dir}/access.log.",
        "squid runs on this host, so the REDIRECT needs no packet mark, routing table or "
        "rp_filter change (those are for squid on another host: a site's proxy step).",
    ]
    if answers.placement == "container":
        notes.append(
            f"The container ({answers.container_image}) shares the host's network (squid must "
            "see the host's connection tracking to find where each redirected connection was "
            f"going), has its own /dev/shm, restart policy {answers.container_restart} (it "
            f"starts at boot with dockerd) and TZ={answers.container_timezone}; it mounts "
            f"{squid.CONF}, {answers.log_dir} and {answers.container_cache_dir} (as "
            f"{squid.SPOOL})."
        )
    return tuple(notes)
