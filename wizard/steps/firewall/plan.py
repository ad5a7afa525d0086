"""The firewall step itself: its facts, its pure planner (zones from the answers, with the
needs other steps declare), its health check and status. See the package's docstring."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from wizard.actions import Action, RemoveFile, RunCommand, WriteFile, ensure_file
from wizard.errors import PlanConflict
from wizard.facts import SERVICE_MANAGER, Fact, Facts, file_fact, gather, text_fact
from wizard.host.docker import DAEMON_JSON, daemon_tcp_ports
from wizard.host.sshd import DROP_IN_PATH as SSH_DROP_IN
from wizard.host.sshd import planned_ports
from wizard.plan import Plan
from wizard.steps.base import DECLARED_NEEDS, Status, StepStatus, declared_needs, status_from_plan
from wizard.steps.firewall import boot, iptables, needs, nftables
from wizard.steps.firewall.answers import ZONES, FirewallAnswers
from wizard.steps.firewall.host import (
    FORWARDING,
    INTERFACES,
    IPTABLES_V4,
    IPTABLES_V6,
    NFT_TABLE,
    SSH_PATH,
    SSHD_PORTS,
    TOOLS,
    SshPath,
)
from wizard.steps.firewall.loaded import (
    describe_closed,
    loaded_zone_openings,
    loaded_zone_ports,
    zones_closed_to,
)
from wizard.steps.firewall.model import (
    Ruleset,
    allows_ssh_from,
    is_docker_interface,
    resolve,
    zone_map,
    zone_of_interface,
)
from wizard.transport.base import Transport

FILES = {
    path: file_fact(path)
    for path in (boot.RULES_V4, boot.RULES_V6, boot.RULES_NFT, boot.SCRIPT, boot.UNIT,
                 boot.INIT_SCRIPT, boot.SYSCTL, SSH_DROP_IN)
}  # fmt: skip
BOOT_REGISTERED = text_fact(
    "firewall_boot_registered",
    f"[ -e {boot.UNIT_LINK} ] && echo systemd; "
    "ls /etc/rc[S2345].d/ 2>/dev/null | grep -q 'hostwiz-firewall$' && echo init; true",
)


def ssh_ports(facts: Facts) -> tuple[int, ...]:
    """The ports sshd will listen on: those in hostwiz's SSH drop-in when it sets any (an SSH
    step planned before this one may have changed it), else what sshd reports now."""
    return planned_ports(facts[FILES[SSH_DROP_IN]], facts[SSHD_PORTS])


def _daemon_tcp_ports(facts: Facts) -> list[int]:
    """TCP ports dockerd's daemon.json makes it listen on (the TLS step's 2376)."""
    return daemon_tcp_ports(facts[DAEMON_JSON])


def _offers_tcp(ruleset: Ruleset, port: int) -> bool:
    return any(ruleset.opens_tcp(spec, port) for zone in ruleset.zones for spec in zone.services)


class FirewallStep:
    name = "firewall"
    title = "Firewall zones"
    explanation = (
        "Puts each network interface in a zone (mgmt for admins, lan for trusted clients, wan "
        "for the internet) and lets each zone reach only the services you choose. The rules "
        "live in hostwiz's own chains, so Docker never overwrites them, and they also guard "
        "container ports, which Docker would otherwise open to everyone. A router host "
        "forwards only between the zones you pick, with NAT towards the internet. The rules "
        "come back at boot before Docker starts. A change that would cut your own SSH "
        "connection is refused."
    )
    answers_type = FirewallAnswers

    def facts(self, answers: FirewallAnswers) -> list[Fact[Any]]:
        return [
            INTERFACES, SSH_PATH, SSHD_PORTS, TOOLS, IPTABLES_V4, IPTABLES_V6, NFT_TABLE,
            FORWARDING, SERVICE_MANAGER, BOOT_REGISTERED, DAEMON_JSON, *FILES.values(),
        ]  # fmt: skip

    def plan_facts(self, answers: FirewallAnswers) -> list[Fact[Any]]:
        """Off, the plan only checks that zones an earlier apply loaded let the needs and a
        moved sshd through: the loaded rules and sshd's ports, not the tools, files and boot
        state (the step list's status and the form read those, through :meth:`facts`)."""
        if answers.enabled:
            return self.facts(answers)
        return [SSHD_PORTS, FILES[SSH_DROP_IN], IPTABLES_V4, NFT_TABLE]

    # ---- planning ------------------------------------------------------------------------

    def off_answers(self) -> FirewallAnswers:
        """Its "off" form: planned when another step declares needs and this one is not
        selected, to check that zones loaded earlier let them through (:class:`GuardsNeeds`)."""
        return FirewallAnswers(enabled=False)

    def ruleset(self, answers: FirewallAnswers, facts: Facts) -> Ruleset:
        return self._resolved(answers, facts)[0]

    def _resolved(
        self, answers: FirewallAnswers, facts: Facts
    ) -> tuple[Ruleset, tuple[needs.Offer, ...]]:
        """The zones as the answers say, with what the other steps' declared needs add."""
        chosen = resolve(answers, facts[INTERFACES], ssh_ports(facts))
        return needs.meet(chosen, declared_needs(facts), facts[INTERFACES], facts[SSH_PATH])

    def plan(self, answers: FirewallAnswers, facts: Facts) -> Plan:
        if not answers.enabled:
            self._check_loaded_zones_follow_ssh(facts)
            needs.check_loaded(
                loaded_zone_openings(facts[IPTABLES_V4], facts[NFT_TABLE]), declared_needs(facts)
            )
            return Plan(self.name)
        self._check_tools(answers, facts)
        ruleset, offered = self._resolved(answers, facts)
        warnings = self._check_ssh_path(answers, ruleset, facts)
        rules = self._rule_files(answers, ruleset)
        actions: list[Action] = []
        for path, content, mode in (*rules, (boot.SCRIPT, boot.SCRIPT_TEXT.encode(), 0o755)):
            state = facts[FILES[path]]
            if content is None:
                if state.exists:
                    actions.append(RemoveFile(path, why="the other backend's rules"))
            elif write := ensure_file(state, content, mode=mode, owner="root", group="root",
                                      why=_why(path)):  # fmt: skip
                actions.append(write)
        sysctl = self._sysctl(ruleset, facts)
        actions += sysctl
        if actions or self._live_problems(answers, facts, rules):
            actions.append(
                RunCommand(
                    f"{boot.SCRIPT} start",
                    why=_LOAD_WHY[answers.backend],
                    undo=boot.undo_load_script() + self._forwarding_undo(facts),
                    undo_why="load the rules that were there before, or, if there were none, "
                    "remove every hostwiz chain and jump; put IP forwarding back as it was",
                    timeout=60,
                )
            )
        boot_actions, boot_warnings = self._boot(facts)
        actions += boot_actions
        before = tuple(
            facts[FILES[a.path]] for a in actions if isinstance(a, WriteFile | RemoveFile)
        )
        notes = tuple(zone_map(ruleset, facts[INTERFACES])) + tuple(o.note for o in offered)
        notes += self._notes(answers, ruleset, facts)
        now = facts[SSHD_PORTS] or (22,)
        if set(ruleset.ssh_ports) - set(now):
            notes += (
                f"The zones' ssh follows sshd in this change: port "
                f"{', '.join(map(str, ruleset.ssh_ports))} (no longer {', '.join(map(str, now))}"
                "; your open session stays connected).",
            )
        return Plan(
            self.name,
            tuple(actions),
            before=before,
            notes=notes if actions else (),
            warnings=(*warnings, *boot_warnings, *self._foreign(answers, facts)) if actions else (),
        )

    def _check_loaded_zones_follow_ssh(self, facts: Facts) -> None:
        """With this step off, zones an earlier apply loaded stay as they are: an SSH step
        moving sshd to a port they do not open (the new port in hostwiz's SSH drop-in, planned
        before this step) would cut every new connection, the confirmation's first. Refused
        before anything changes."""
        now = facts[SSHD_PORTS] or (22,)
        moved = [port for port in ssh_ports(facts) if port not in now]
        if not moved:
            return
        zones = loaded_zone_ports(facts[IPTABLES_V4], facts[NFT_TABLE])
        for port in moved:
            closed = zones_closed_to(zones, now, port)
            if closed:
                raise PlanConflict(
                    f"SSH is to move to port {port}, but the firewall zones hostwiz loaded "
                    f"earlier do not open it ({describe_closed(zones, closed, now)}): the new "
                    "connection that must confirm the change would get no answer.",
                    "Turn the firewall step on in the same change (firewall.enabled = true: its "
                    f"zones then follow SSH to port {port}), or keep SSH on port {now[0]} "
                    "(ssh.port = 0).",
                )

    def _check_tools(self, answers: FirewallAnswers, facts: Facts) -> None:
        tools = facts[TOOLS]
        for other, stop in (
            ("ufw", "ufw disable"),
            ("firewalld", "systemctl disable --now firewalld"),
        ):
            if tools.has(other):
                raise PlanConflict(
                    f"{other} is active on this host. It rewrites the same iptables chains as "
                    "Docker and hostwiz, so the three would fight and rules would vanish.",
                    f"Use one firewall manager. To use hostwiz's zones, turn {other} off first "
                    f"({stop}), then run this step again; to keep {other}, leave this step off.",
                )
        needed = (
            ("nft",) if answers.backend == "nftables" else ("iptables-restore", "ip6tables-restore")
        )
        missing = [tool for tool in needed if not tools.has(tool)]
        if missing:
            package = "nftables" if answers.backend == "nftables" else "iptables"
            raise PlanConflict(
                f"{', '.join(missing)} is not installed on the host.",
                f"Install it (apt install {package}) and run this step again.",
            )

    def _check_ssh_path(
        self, answers: FirewallAnswers, ruleset: Ruleset, facts: Facts
    ) -> list[str]:
        path = _next_ssh_path(facts)
        if not path.known:
            return [
                "hostwiz could not tell which interface your SSH connection arrives on. Check "
                "the zone map: the zone of that interface must offer ssh."
            ]
        if allows_ssh_from(ruleset, path):
            return []
        zone = zone_of_interface(ruleset, path.interface).name
        problem = (
            f"your SSH connection (from {path.client} to port {path.server_port}, arriving on "
            f"{path.interface}) would be blocked: {path.interface} is in zone {zone}, which "
            f"does not offer ssh to {path.client}"
        )
        if not answers.allow_cutting_my_ssh:
            raise PlanConflict(
                f"this would lock you out: {problem}.",
                f"Add ssh to {_field(f'{zone}_services')} (or 'ssh from {path.client}'), or "
                f"move {path.interface} to a zone that offers ssh. If you will connect another "
                f"way afterwards, turn on {_field('allow_cutting_my_ssh', 'true')} (the change "
                "will then most likely roll itself back, because hostwiz cannot confirm it).",
            )
        return [f"{problem[0].upper()}{problem[1:]}. hostwiz will most likely not be able to "
                "confirm this change, and the host will then roll it back by itself."]  # fmt: skip

    def _rule_files(
        self, answers: FirewallAnswers, ruleset: Ruleset
    ) -> list[tuple[str, bytes | None, int]]:
        if answers.backend == "nftables":
            return [
                (boot.RULES_NFT, nftables.render(ruleset).encode(), 0o644),
                (boot.RULES_V4, None, 0o644),
                (boot.RULES_V6, None, 0o644),
            ]
        return [
            (boot.RULES_V4, iptables.render(ruleset, 4).encode(), 0o644),
            (boot.RULES_V6, iptables.render(ruleset, 6).encode(), 0o644),
            (boot.RULES_NFT, None, 0o644),
        ]

    def _live_problems(
        self, answers: FirewallAnswers, facts: Facts, rules: list[tuple[str, bytes | None, int]]
    ) -> list[str]:
        """Why the kernel's rules differ from the files (empty: nothing to load)."""
        content = {path: data.decode() for path, data, _ in rules if data is not None}
        if answers.backend == "nftables":
            problems = nftables.live_matches(content[boot.RULES_NFT], facts[NFT_TABLE])
            for live in (facts[IPTABLES_V4], facts[IPTABLES_V6]):
                if iptables.parse_save(live).hostwiz().get("filter"):
                    problems.append("hostwiz's iptables chains are still loaded")
            return problems
        problems = iptables.live_matches(content[boot.RULES_V4], facts[IPTABLES_V4])
        problems += iptables.live_matches(content[boot.RULES_V6], facts[IPTABLES_V6])
        if facts[NFT_TABLE].strip():
            problems.append("hostwiz's nftables table is still loaded")
        return problems

    def live_problems(self, answers: FirewallAnswers, facts: Facts) -> list[str]:
        ruleset = self.ruleset(answers, facts)
        return self._live_problems(answers, facts, self._rule_files(answers, ruleset))

    def _sysctl(self, ruleset: Ruleset, facts: Facts) -> list[Action]:
        state = facts[FILES[boot.SYSCTL]]
        if not ruleset.forwards:
            return (
                [RemoveFile(boot.SYSCTL, why="this host no longer routes")] if state.exists else []
            )
        wanted = boot.sysctl_text(ruleset.zone("wan").interfaces).encode()
        forwarding = facts[FORWARDING]
        if state.exists and state.content == wanted and forwarding.ipv4 and forwarding.ipv6:
            return []
        return [WriteFile(boot.SYSCTL, wanted, 0o644, why="turn on IP forwarding (router host)")]

    @staticmethod
    def _forwarding_undo(facts: Facts) -> str:
        forwarding = facts[FORWARDING]
        return (
            f"\nsysctl -qw net.ipv4.ip_forward={int(forwarding.ipv4)} "
            f"net.ipv6.conf.all.forwarding={int(forwarding.ipv6)} || true"
        )

    def _boot(self, facts: Facts) -> tuple[list[Action], list[str]]:
        registered = facts[BOOT_REGISTERED].split()
        if facts[SERVICE_MANAGER] == "systemd":
            path, content, mode = boot.UNIT, boot.UNIT_TEXT, 0o644
            enable = RunCommand(
                "systemctl daemon-reload && systemctl enable hostwiz-firewall.service",
                why="load the zones at every boot, before the network and Docker",
                undo=f"rm -f {boot.UNIT_LINK}; systemctl daemon-reload",
            )
            done = "systemd" in registered
        else:
            path, content, mode = boot.INIT_SCRIPT, boot.INIT_TEXT, 0o755
            enable = RunCommand(
                "update-rc.d hostwiz-firewall defaults",
                why="load the zones at every boot (init script), before the network and Docker",
                undo="update-rc.d -f hostwiz-firewall remove >/dev/null 2>&1 || true",
            )
            done = "init" in registered
            if not facts[TOOLS].has("update-rc.d"):
                return [], [
                    "This host has neither systemd nor update-rc.d: hostwiz cannot make "
                    f"the rules come back at boot. Run {boot.SCRIPT} start at boot."
                ]
        actions: list[Action] = []
        state = facts[FILES[path]]
        if not state.exists or state.content != content.encode() or state.mode != mode:
            actions.append(WriteFile(path, content.encode(), mode, why=_why(path)))
        if not done:
            actions.append(enable)
        return actions, []

    def _notes(self, answers: FirewallAnswers, ruleset: Ruleset, facts: Facts) -> tuple[str, ...]:
        notes = []
        forwarding = facts[FORWARDING]
        if ruleset.forwards and not (forwarding.ipv4 and forwarding.ipv6):
            notes.append(
                "IP forwarding gets turned on: this host becomes a router between the zones "
                "you chose (and only those: everything else that would cross it is dropped). "
                "IPv6 is routed without NAT, so the wan side needs a route to the LAN's IPv6 "
                "prefix."
            )
        if any(spec.is_ssh and spec.source is None for spec in ruleset.zone("wan").services):
            notes.append(
                "SSH stays open to the internet (wan). Once you reach the host through mgmt or "
                f"lan, remove ssh from {_field('wan_services')} or limit it there "
                "('ssh from NETWORK')."
            )
        if facts[TOOLS].has("dockerd") and answers.backend == "nftables":
            notes.append(
                "Warning: dockerd runs on this host, and the nftables backend cannot overrule "
                "Docker's own iptables rules (an accept in hostwiz's table does not stop "
                "Docker's chains from dropping). Published ports are still limited to the "
                "zones you chose, but once Docker sets its FORWARD policy to DROP (it does "
                "when it turns IP forwarding on itself), routing between zones stops. Set "
                f"{_field('backend')} to iptables on Docker hosts."
            )
        elif facts[TOOLS].has("dockerd"):
            notes.append(
                "Docker publishes container ports on every address and would let anyone reach "
                "them; hostwiz filters them in DOCKER-USER, which Docker consults first."
            )
        declared = needs.declared_tcp_ports(declared_needs(facts))
        for port in _daemon_tcp_ports(facts):  # only ports no step declared a need for
            if port not in declared and not _offers_tcp(ruleset, port):
                notes.append(
                    f"dockerd listens on TCP port {port} (the Docker API over TLS), but no zone "
                    "offers it: add docker-tls (or "
                    f"'{port}/tcp from YOUR-NETWORK') to {_field('mgmt_services')} to use it "
                    "remotely."
                )
        return tuple(notes)

    def _foreign(self, answers: FirewallAnswers, facts: Facts) -> list[str]:
        if answers.backend != "iptables":
            return []
        found = iptables.foreign_rules(facts[IPTABLES_V4])
        return [
            f"{chain} already holds rules that are not hostwiz's; hostwiz's chain comes first, "
            f"so they no longer see traffic that hostwiz drops: {'; '.join(rules)}"
            for chain, rules in found.items()
        ]

    def question_context(self, answers: FirewallAnswers, facts: Facts) -> dict[str, str]:
        """The host's real interfaces next to the zone questions, and where the admin's SSH
        connection comes in once, under the services of the zone its interface is in with
        these answers."""
        interfaces = facts[INTERFACES]
        own = [i for name, i in interfaces.items() if not is_docker_interface(name)]
        listed = "; ".join(i.describe() for i in own) or "none found"
        context = {f"{zone}_interfaces": f"This host has: {listed}." for zone in ZONES}
        path = facts[SSH_PATH]
        if path.known:  # once, under the services of the zone that interface is in now
            zones = [z for z in ZONES if path.interface in answers.interfaces_of(z)]
            zone = zones[0] if zones else answers.other_interfaces
            why = "" if zones else f" (in no list: interfaces not listed are {zone})"
            context[f"{zone}_services"] = (
                f"Your SSH connection comes from {path.client} on {path.interface}, which is "
                f"in zone {zone} with these answers{why}: keep ssh in {zone}'s services."
            )
        return context

    # ---- after apply ---------------------------------------------------------------------

    def health(self, transport: Transport, answers: FirewallAnswers, facts: Facts) -> list[str]:
        if not answers.enabled:
            return []
        now = gather(transport, self.facts(answers))
        if DECLARED_NEEDS in facts:  # the zones were planned with them
            now = now.with_values({DECLARED_NEEDS: facts[DECLARED_NEEDS]})
        return [f"the live rules differ: {p}" for p in self.live_problems(answers, now)]

    def status(self, answers: FirewallAnswers, facts: Facts) -> StepStatus:
        loaded = bool(iptables.parse_save(facts[IPTABLES_V4]).hostwiz().get("filter")) or bool(
            facts[NFT_TABLE].strip()
        )
        if not answers.enabled:
            if loaded:
                return StepStatus(Status.DONE, STEP_OFF_ZONES_ACTIVE)
            return StepStatus(
                Status.OFF, "not chosen: no zones, Docker's published ports are open to all"
            )
        return status_from_plan(
            lambda: self.plan(answers, facts),
            done="zones loaded and restored at boot",
            untouched=None if loaded else "no zones loaded",
            chosen="zones",
        )


STEP_OFF_ZONES_ACTIVE = (
    "zones from an earlier apply are active, and hostwiz leaves them as they are while this "
    "step is off. To change them, turn the step on; to remove them, roll back the snapshot "
    "that loaded them: Snapshots in the step list, or hostwiz snapshots and hostwiz rollback "
    "on the command line."
)


def _field(name: str, value: str = "") -> str:
    """A question as the form shows it, with its preset key beside it:
    '"Services offered to wan" (wan_services)'."""
    from wizard.answers import fields_of

    label = next(info.label for info in fields_of(FirewallAnswers) if info.name == name)
    return f'"{label}" ({name}{f" = {value}" if value else ""})'


def _next_ssh_path(facts: Facts) -> SshPath:
    """The path of hostwiz's next SSH connection (the one that confirms this change): the
    current one, but to sshd's new port when an SSH step planned before this one moves it."""
    path = facts[SSH_PATH]
    after = ssh_ports(facts)
    if path.server_port not in after and path.server_port in facts[SSHD_PORTS]:
        return replace(path, server_port=after[0])
    return path


_LOAD_WHY = {
    "iptables": "load the zones: one iptables-restore --noflush per address family (hostwiz's "
    "chains only), then the jumps from INPUT, FORWARD and DOCKER-USER",
    "nftables": "load the zones: nft -f replaces the inet hostwiz table in one transaction "
    "(no other table is touched), then removes hostwiz's iptables chains if any",
}


def _why(path: str) -> str:
    return {
        boot.RULES_V4: "IPv4 rules (hostwiz's chains)",
        boot.RULES_V6: "IPv6 rules, matching the IPv4 intent",
        boot.RULES_NFT: "the inet hostwiz table",
        boot.SCRIPT: "loads the rules now and at boot (start/stop)",
        boot.UNIT: "systemd unit: load the rules before the network and Docker",
        boot.INIT_SCRIPT: "init script: load the rules before the network and Docker",
        boot.SYSCTL: "IP forwarding for a router host",
    }.get(path, "")


FIREWALL = FirewallStep()
