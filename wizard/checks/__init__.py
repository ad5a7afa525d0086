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
from wizard.host.docker import (
    DAEMON_JSON,
    DOCKER_INFO_COMMAND,
    DOCKERD,
    GWBRIDGE_SECTION,
    parse_dockerd,
    parse_info,
)

HOST_COMMAND = r"""echo @@ip_forward; { read -r v; echo "$v"; } </proc/sys/net/ipv4/ip_forward
echo @@config; k='^(# )?CONFIG_(INET_ESP|CRYPTO_GCM)[ =]'
{ read -r r </proc/sys/kernel/osrelease
  if [ -r /proc/config.gz ]; then gzip -dc /proc/config.gz | grep -E "$k"
  else grep -E "$k" "/boot/config-$r"; fi; } 2>/dev/null
echo @@loaded; for m in esp4 gcm; do [ -d /sys/module/$m ] && echo /sys/module/$m; done
grep -qs 'gcm(aes)' /proc/crypto && echo /sys/module/gcm
echo @@nfs; awk '$3 ~ /^nfs/ {print $2}' /proc/mounts 2>/dev/null
echo @@routes; ip -4 route show table main 2>/dev/null
echo @@addresses; ip -4 -o addr show scope global 2>/dev/null
true"""
"""Five programs in all (shell builtins otherwise): what dockerd runs with, daemon.json and
``docker info`` come from the docker step's own commands (:data:`HOST_FACTS`). ``read``
takes what a /proc/sys file holds even though its value ends the file before the new line
(dash reads a byte at a time, and such files answer a read past the start with nothing)."""


def _kernel(config: str, loaded: str, option: str, module: str) -> str:
    if f"/sys/module/{module}" in loaded or f"CONFIG_{option}=y" in config:
        return "yes"
    if f"# CONFIG_{option} is not set" in config:
        return "no"
    return "unknown"  # a module (=m) not loaded yet, or no config to read


def _routes(text: str) -> tuple[str, ...]:
    """``ip -4 route show`` lines -> the destination networks (``default`` left out)."""
    found = (line.split()[0] for line in text.splitlines() if line.split())
    return tuple(route for route in found if "/" in route)


def _addresses(text: str) -> tuple[str, ...]:
    """``ip -4 -o addr show`` lines (``2: eth0    inet 10.0.0.5/24 brd ...``), or bare
    addresses, -> the addresses with their prefix."""
    found = []
    for line in text.splitlines():
        words = line.split() or [""]
        address = words[words.index("inet") + 1] if "inet" in words[:-1] else words[0]
        if "/" in address:
            found.append(address)
    return tuple(found)


def parse_host(code: int, out: str) -> dict[str, Any]:
    """The host facts the rules read (see :class:`Combined`), but for those of the other
    :data:`HOST_FACTS`."""
    s = sections(out)
    return {
        "ip_forward": s.get("ip_forward", "").strip(),
        "kernel_esp": _kernel(s.get("config", ""), s.get("loaded", ""), "INET_ESP", "esp4"),
        "kernel_gcm": _kernel(s.get("config", ""), s.get("loaded", ""), "CRYPTO_GCM", "gcm"),
        "nfs_mounts": tuple(s.get("nfs", "").split()),
        "routes": _routes(s.get("routes", "")),
        "addresses": _addresses(s.get("addresses", "")),
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


def parse_host_dockerd(code: int, out: str) -> dict[str, Any]:
    """Whether the root dockerd runs, and with ``-H`` on its command line (from the docker
    step's :data:`~wizard.host.docker.DOCKERD`)."""
    process = parse_dockerd(code, out)
    return {
        "dockerd_running": process.running,
        "dockerd_cmdline_hosts": any(
            w in {"-H", "--host"} or w.startswith(("-H=", "--host=", "-Hunix", "-Htcp", "-Hfd"))
            for w in process.args
        ),
    }


HOST_DOCKERD = Fact("combination_dockerd", DOCKERD.command, parse_host_dockerd)


def parse_host_daemon(code: int, out: str) -> dict[str, Any]:
    """Whether daemon.json lists ``hosts`` (from the docker step's file fact)."""
    state = DAEMON_JSON.parse(code, out)
    try:
        daemon = json.loads(state.content or b"{}") if state.exists else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        daemon = {}
    return {"daemon_hosts": isinstance(daemon, dict) and bool(daemon.get("hosts"))}


HOST_DAEMON = Fact("combination_daemon", DAEMON_JSON.command, parse_host_daemon)

HOST_FACTS = (HOST, HOST_DOCKER, HOST_DOCKERD, HOST_DAEMON)
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
    "HOST", "HOST_DAEMON", "HOST_DOCKER", "HOST_DOCKERD", "HOST_FACTS", "RULES", "SITE_RULES",
    "Combined", "Conflict", "Rule", "SiteHostCheck", "SiteRule", "SiteStepAnswers",
    "answers_mapping", "check_combination", "check_site", "combined_hosts", "conflict_lines",
    "conflicts_for", "conflicts_json", "host_values", "parse_host", "parse_host_daemon",
    "parse_host_docker", "parse_host_dockerd",
]  # fmt: skip
