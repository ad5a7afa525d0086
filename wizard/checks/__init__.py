"""The combination checker: before any apply, the combined answers of every step and the
host's facts are checked for known conflicts (:mod:`wizard.checks.rules`), each explained.

Front ends call :func:`conflicts_for` (selections + facts already read) and show
:func:`conflict_lines` before the preview; ``hostwiz check`` runs it alone. Nothing here
imports a step: answers are read by step name and field name.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from wizard.checks.rules import RULES, Combined, Conflict, Rule, check_combination
from wizard.checks.site import (
    SITE_RULES,
    SiteHostCheck,
    SiteRule,
    SiteStepAnswers,
    check_site,
    combined_hosts,
)
from wizard.facts import Fact, Facts, sections
from wizard.host.docker import DOCKER_INFO_COMMAND, GWBRIDGE_SECTION, parse_info

HOST_COMMAND = r"""echo @@ip_forward; cat /proc/sys/net/ipv4/ip_forward 2>/dev/null
echo @@dockerd; p=$(pidof dockerd 2>/dev/null | cut -d' ' -f1)
[ -n "$p" ] && tr '\0' ' ' </proc/$p/cmdline
echo @@daemon; cat /etc/docker/daemon.json 2>/dev/null
echo @@config; { zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null; } \
  | grep -E '^(# )?CONFIG_(INET_ESP|CRYPTO_GCM)[ =]'
echo @@loaded; ls -d /sys/module/esp4 /sys/module/gcm 2>/dev/null
grep -q 'gcm(aes)' /proc/crypto 2>/dev/null && echo /sys/module/gcm
echo @@nfs; awk '$3 ~ /^nfs/ {print $2}' /proc/mounts 2>/dev/null
echo @@routes; ip -4 route show table main 2>/dev/null | awk '$1 != "default" {print $1}'
echo @@addresses; ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}'
true"""


def _kernel(config: str, loaded: str, option: str, module: str) -> str:
    if f"/sys/module/{module}" in loaded or f"CONFIG_{option}=y" in config:
        return "yes"
    if f"# CONFIG_{option} is not set" in config:
        return "no"
    return "unknown"  # a module (=m) not loaded yet, or no config to read


def parse_host(code: int, out: str) -> dict[str, Any]:
    """The host facts the rules read (see :class:`Combined`)."""
    s = sections(out)
    cmdline = s.get("dockerd", "").split()
    try:
        daemon = json.loads(s.get("daemon", "") or "{}")
    except json.JSONDecodeError:
        daemon = {}
    return {
        "ip_forward": s.get("ip_forward", "").strip(),
        "dockerd_running": bool(cmdline),
        "dockerd_cmdline_hosts": any(
            w in {"-H", "--host"} or w.startswith(("-H=", "--host=", "-Hunix", "-Htcp", "-Hfd"))
            for w in cmdline
        ),
        "daemon_hosts": isinstance(daemon, dict) and bool(daemon.get("hosts")),
        "kernel_esp": _kernel(s.get("config", ""), s.get("loaded", ""), "INET_ESP", "esp4"),
        "kernel_gcm": _kernel(s.get("config", ""), s.get("loaded", ""), "CRYPTO_GCM", "gcm"),
        "nfs_mounts": tuple(s.get("nfs", "").split()),
        "routes": tuple(r for r in s.get("routes", "").split() if "/" in r),
        "addresses": tuple(a for a in s.get("addresses", "").split() if "/" in a),
    }


HOST = Fact("combination_host", HOST_COMMAND, parse_host)
"""Read with the steps' facts (one round trip) wherever the checker runs."""


def parse_host_docker(code: int, out: str) -> dict[str, Any]:
    """The swarm state and docker_gwbridge's options, from the docker step's ``docker info``
    (:data:`~wizard.host.docker.DOCKER_INFO_COMMAND`; "" when dockerd does not answer)."""
    info, _, options = out.partition(f"\n{GWBRIDGE_SECTION}\n")
    state = parse_info(code, info).swarm_state if code == 0 else ""
    return {
        "swarm_state": state,
        "gwbridge_custom": "enable_icc" in options or "host_binding_ipv4" in options,
    }


HOST_DOCKER = Fact("combination_docker", DOCKER_INFO_COMMAND, parse_host_docker)
"""The command is the docker step's own: a round trip with both runs ``docker info`` once."""

HOST_FACTS = (HOST, HOST_DOCKER)
"""Everything the checker reads from a host (see :func:`host_values`)."""


def host_values(facts: Facts) -> dict[str, Any]:
    """The host facts the rules read (see :class:`Combined`), from those of
    :data:`HOST_FACTS` that were read (none: an empty mapping, the answers alone)."""
    values: dict[str, Any] = {}
    for fact in HOST_FACTS:
        if fact in facts:
            values.update(facts.get(fact.name))
    return values


def answers_mapping(selections: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """step name -> field -> value, from selections (anything with ``.step.name`` and
    dataclass ``.answers``)."""
    found: dict[str, dict[str, Any]] = {}
    for selection in selections:
        answers = selection.answers
        if dataclasses.is_dataclass(answers) and not isinstance(answers, type):
            found[selection.step.name] = {
                f.name: getattr(answers, f.name) for f in dataclasses.fields(answers)
            }
    return found


def conflicts_for(selections: Iterable[Any], facts: Facts | None = None) -> list[Conflict]:
    """The conflicts of these selections on a host whose facts (with :data:`HOST`) were read;
    without host facts only the answers are checked."""
    host: Mapping[str, Any] = {} if facts is None else host_values(facts)
    return check_combination(Combined(answers_mapping(selections), host))


def conflicts_json(conflicts: Iterable[Conflict]) -> list[dict[str, str]]:
    """For ``--json``: one object per conflict (``host`` only on a site)."""
    return [
        {"rule": c.rule, "message": c.message, "hint": c.hint, **({"host": c.host} if c.host
                                                                   else {})}
        for c in conflicts
    ]  # fmt: skip


def conflict_lines(conflicts: Iterable[Conflict]) -> list[str]:
    """Plain text for a front end: one block per conflict."""
    lines = []
    for conflict in conflicts:
        where = f" on {conflict.host}" if conflict.host else ""
        lines.append(f"! conflict ({conflict.rule}){where}: {conflict.message}")
        lines.append(f"  what to do: {conflict.hint}")
    return lines


__all__ = [
    "HOST", "HOST_DOCKER", "HOST_FACTS", "RULES", "SITE_RULES", "Combined", "Conflict", "Rule",
    "SiteHostCheck", "SiteRule", "SiteStepAnswers", "answers_mapping", "check_combination",
    "check_site", "combined_hosts", "conflict_lines", "conflicts_for", "conflicts_json",
    "host_values", "parse_host", "parse_host_docker",
]  # fmt: skip
