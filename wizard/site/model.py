"""A site: the hosts hostwiz changes together, their roles, and the answers for them.

A site file is TOML (errors name the file and line)::

    # hostwiz site
    name = "office"                 # optional: the file's name by default
    preset = "hardened"             # optional: single-host steps for every host

    [hosts.router]
    target = "admin@10.0.0.1"       # optional: ssh target (default: the table's name)
    roles = ["router"]
    preset = "classic"              # optional: this host's own single-host steps

    [hosts.nas]
    roles = ["nfs-server"]

    [steps.nfs]                     # a site step and its answers
    export = "/srv/share"

A site can also be a list of ``--host`` targets, with no roles and the command line's preset.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.errors import InvalidAnswer, PresetError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")  # fullmatch only
ROLE_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?")  # fullmatch only
MAX_HOSTS = 50
_TOP_KEYS = ("name", "preset", "hosts", "steps")
_HOST_KEYS = ("target", "roles", "preset")


class SiteError(PresetError):
    title = "Problem in site"


@dataclass(frozen=True)
class SiteHost:
    """One host of a site."""

    name: str
    target: str
    roles: tuple[str, ...] = ()
    preset: str | None = None
    """Preset for this host's single-host steps (a shipped name or a path); None: none."""


@dataclass(frozen=True)
class Site:
    """Hosts with roles, and the answers of the site steps (site step name -> answers)."""

    name: str
    source: str
    hosts: tuple[SiteHost, ...]
    steps: Mapping[str, Any] = field(default_factory=dict)

    def host(self, name: str) -> SiteHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise SiteError(f"site {self.name} has no host {name!r}.")

    def with_role(self, role: str) -> list[SiteHost]:
        return [host for host in self.hosts if role in host.roles]

    def command(self, word: str) -> str:
        """``hostwiz WORD`` for this whole site, ready to paste (``--site FILE``, or the
        ``--host`` options of a site given that way)."""
        import shlex

        if self.source == "--host":
            options = " ".join(f"--host {shlex.quote(host.target)}" for host in self.hosts)
        else:
            options = f"--site {shlex.quote(self.source)}"
        return f"hostwiz {word} {options}"


def site_from_hosts(targets: Sequence[str], preset: str | None) -> Site:
    """A site of repeated ``--host`` targets: no roles, the same preset on every host."""
    if len(set(targets)) != len(targets):
        raise SiteError("the same --host is given twice.", "Name each host once.")
    hosts = tuple(SiteHost(target, target, (), preset) for target in targets)
    return Site("+".join(targets), "--host", hosts)


def load_site(path: str | Path) -> Site:
    """Read a site file (see the module docstring)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise SiteError(
            f"cannot read the site file {path}: {error.strerror or error}.",
            "Check the path (hostwiz lab up --topology NAME writes one for practice hosts).",
        ) from None
    return parse_site(text, str(path), base=file.parent)


class _Lines:
    """Line numbers of tables and keys, for errors."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()

    def of(self, table: str, key: str | None = None) -> str:
        number = self.find(table, key)
        return f"{self.source}, line {number}" if number else self.source

    def find(self, table: str, key: str | None) -> int | None:
        inside = table == ""
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                inside = stripped.strip("[] ").replace('"', "") == table
                if inside and key is None:
                    return number
            elif inside and key is not None and re.match(rf"{re.escape(key)}\s*=", stripped):
                return number
        return None


def parse_site(text: str, source: str = "site", *, base: Path | None = None) -> Site:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SiteError(f"{source} is not valid TOML: {error}.", "Fix the line named.") from None
    lines = _Lines(source, text)
    _only(data, _TOP_KEYS, lines, "", "top level")
    name = data.get("name", Path(source).stem if source.endswith(".toml") else "site")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SiteError(
            f"{lines.of('', 'name')}: the site's name {name!r} is not usable.",
            "Use letters, digits, '.', '_' and '-' (at most 63).",
        )
    default_preset = _preset(data.get("preset"), lines, "", base)
    raw_hosts = data.get("hosts")
    if not isinstance(raw_hosts, dict) or not raw_hosts:
        raise SiteError(
            f"{source}: a site names at least one host.",
            'Add a table per host: [hosts.NAME] with roles = ["router"] (target = "user@addr" '
            "when NAME is not in your ssh config).",
        )
    if len(raw_hosts) > MAX_HOSTS:
        raise SiteError(f"{source}: more than {MAX_HOSTS} hosts.", "Split the site in two.")
    hosts = tuple(
        _host(host_name, value, lines, base, default_preset)
        for host_name, value in raw_hosts.items()
    )
    targets = [host.target for host in hosts]
    for target in targets:
        if targets.count(target) > 1:
            raise SiteError(
                f"{source}: two hosts have the same target {target!r}.",
                "One host, one table: hostwiz changes each host in one transaction.",
            )
    steps = _steps(data.get("steps", {}), lines)
    return Site(name, source, hosts, steps)


def _only(table: dict[str, Any], allowed: tuple[str, ...], lines: _Lines, at: str,
          what: str) -> None:  # fmt: skip
    for key in table:
        if key not in allowed:
            raise SiteError(
                f"{lines.of(at, key)}: unknown key {key!r} at the {what}.",
                f"Known keys there: {', '.join(allowed)}.",
            )


def _preset(value: Any, lines: _Lines, at: str, base: Path | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SiteError(f"{lines.of(at, 'preset')}: preset must be a preset name or a path.")
    if (value.endswith(".toml") or "/" in value) and base is not None:
        return str(base / value)  # relative to the site file
    return value


def _host(name: str, value: Any, lines: _Lines, base: Path | None,
          default_preset: str | None) -> SiteHost:  # fmt: skip
    at = f"hosts.{name}"
    if not NAME_RE.fullmatch(name):
        raise SiteError(f"{lines.of(at)}: host name {name!r} is not usable.",
                        "Use letters, digits, '.', '_' and '-'.")  # fmt: skip
    if not isinstance(value, dict):
        raise SiteError(f"{lines.of('hosts', name)}: {name} must be a table ([hosts.{name}]).")
    _only(value, _HOST_KEYS, lines, at, f"host {name}")
    target = value.get("target", name)
    if not isinstance(target, str) or not target.strip() or any(c.isspace() for c in target):
        raise SiteError(f"{lines.of(at, 'target')}: target must be an ssh target "
                        "(NAME, user@host or user@host:port).")  # fmt: skip
    roles = value.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise SiteError(f"{lines.of(at, 'roles')}: roles must be a list of names.",
                        'For example: roles = ["nfs-server", "swarm-manager"]')  # fmt: skip
    for role in roles:
        if not ROLE_RE.fullmatch(role):
            raise SiteError(f"{lines.of(at, 'roles')}: {role!r} is not a role name.",
                            "Lower-case letters, digits and '-', such as nfs-client.")  # fmt: skip
    preset = _preset(value.get("preset"), lines, at, base) or default_preset
    return SiteHost(name, target, tuple(dict.fromkeys(roles)), preset)


def _steps(raw: Any, lines: _Lines) -> dict[str, Any]:
    from wizard.answers import build
    from wizard.site.answers import site_hint
    from wizard.site.registry import SITE_STEPS

    if not isinstance(raw, dict):
        raise SiteError(f"{lines.of('', 'steps')}: steps must be tables ([steps.NAME]).")
    steps: dict[str, Any] = {}
    for name, values in raw.items():
        at = f"steps.{name}"
        if name not in SITE_STEPS:
            known = ", ".join(SITE_STEPS) or "none in this version"
            raise SiteError(f"{lines.of(at)}: unknown site step [{at}].",
                            f"Site steps are: {known}.")  # fmt: skip
        if not isinstance(values, dict):
            raise SiteError(f"{lines.of(at)}: {at} must be a table.")
        step = SITE_STEPS[name]
        try:
            steps[name] = build(step.answers_type, values, where=f"{lines.source} [{at}]",
                                line_of=_key_finder(lines, at))  # fmt: skip
        except InvalidAnswer as error:
            hint = site_hint(error.hint, lines.source, {name: step.answers_type})
            raise SiteError(error.message, hint) from None
    return steps


def _key_finder(lines: _Lines, table: str) -> Callable[[str], int | None]:
    def line_of(key: str) -> int | None:
        return lines.find(table, key)

    return line_of
