"""Step: firewall zones that coexist with Docker (seeds 000, 002, 003).

The trap this step exists for: ufw, firewalld and shorewall fight Docker over iptables, Docker
sets FORWARD to DROP (breaking router hosts), and published container ports bypass INPUT rules
entirely. hostwiz keeps its rules in its own chains (see :mod:`wizard.steps.firewall.iptables`),
filters container traffic in DOCKER-USER, and loads everything with one ``iptables-restore
--noflush`` per address family, at apply time and at boot (before dockerd starts).

The package: ``answers`` (what the admin chose) -> ``model.resolve`` (against the host's
interfaces, read by the facts in ``host``) -> ``iptables.render`` / ``nftables.render`` (rules
text) -> ``boot`` (the script that loads them now and at boot); ``loaded`` reads the zones an
earlier apply left loaded; ``needs`` meets the needs other steps declare; ``plan`` is the step
itself (facts, planner, health, status).
"""

from __future__ import annotations

from wizard.host.sshd import DROP_IN_PATH as SSH_DROP_IN
from wizard.steps.firewall.plan import (
    BOOT_REGISTERED,
    FILES,
    FIREWALL,
    STEP_OFF_ZONES_ACTIVE,
    FirewallStep,
    ssh_ports,
)

__all__ = [
    "BOOT_REGISTERED", "FILES", "FIREWALL", "SSH_DROP_IN", "STEP_OFF_ZONES_ACTIVE", "FirewallStep",
    "ssh_ports",
]  # fmt: skip
