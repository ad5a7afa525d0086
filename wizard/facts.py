"""Facts: what hostwiz knows about a host, each a shell command plus a pure parser.

All facts a run needs are gathered in a single round trip: :func:`gather` joins their commands
into one script whose output frames each fact's stdout and exit code, then runs every parser.
Parsers are pure functions ``(exit_code, stdout) -> value`` and are unit tested with tables.
"""

from __future__ import annotations

import base64
import secrets as _random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from wizard.actions import FileState
from wizard.errors import ConnectionFailed, HostwizError
from wizard.transport.base import Transport, shell_quote

T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    """A named piece of host state: the command that reads it and the parser that types it."""

    name: str
    command: str
    parse: Callable[[int, str], T]


class Facts:
    """The typed results of one gathering, looked up by fact (or by name)."""

    def __init__(self, values: Mapping[str, Any], raw: Mapping[str, tuple[int, str]]) -> None:
        self._values = dict(values)
        self.raw = dict(raw)

    def __getitem__(self, fact: Fact[T]) -> T:
        value: T = self._values[fact.name]
        return value

    def get(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, fact: Fact[Any]) -> bool:
        return fact.name in self._values

    def names(self) -> list[str]:
        return sorted(self._values)

    def file(self, path: str) -> FileState | None:
        """The state of ``path`` when a :func:`file_fact` read it (None: no fact read it)."""
        state = self._values.get(f"file:{path}")
        return state if isinstance(state, FileState) else None

    def with_files(self, states: Iterable[FileState]) -> Facts:
        """These facts as they will be once ``states`` are written (for steps planned later)."""
        values = dict(self._values)
        for state in states:
            key = f"file:{state.path}"
            if key in values:
                values[key] = state
        return Facts(values, self.raw)

    def with_values(self, values: Mapping[Fact[Any], Any]) -> Facts:
        """These facts with ``values`` added or replaced (values the session knows without
        reading the host, such as the needs steps declare)."""
        merged = dict(self._values)
        merged.update({fact.name: value for fact, value in values.items()})
        return Facts(merged, self.raw)

    @classmethod
    def from_raw(cls, facts: Iterable[Fact[Any]], raw: Mapping[str, tuple[int, str]]) -> Facts:
        """Parse already-read outputs (used by tests with fixture tables)."""
        values = {}
        for fact in facts:
            code, out = raw[fact.name]
            values[fact.name] = fact.parse(code, out)
        return cls(values, raw)


def _unique(facts: Iterable[Fact[Any]]) -> list[Fact[Any]]:
    by_name: dict[str, Fact[Any]] = {}
    for fact in facts:
        known = by_name.get(fact.name)
        if known is not None and known.command != fact.command:
            raise ValueError(f"two different facts are both named {fact.name!r}")
        by_name[fact.name] = fact
    return list(by_name.values())


def batch_script(facts: Iterable[Fact[Any]], boundary: str) -> str:
    """One script that runs every fact's command and prints each one's output, framed.

    The commands run side by side (facts only read), each in one background subshell whose
    output goes to its own file of a private temporary folder; the files are printed in
    order: the round trip then costs about as long as the slowest fact (``docker info``)
    instead of the sum of them all. Each file holds ``BOUNDARY S NAME``, the command's stdout
    and ``BOUNDARY E STATUS`` (printed by the subshell's EXIT trap, so an ``exit`` in a
    command still reports its status). One fork per fact and no encoding: on a loaded 2-CPU
    machine the 59 facts of the hardened preset took 230-310 ms with a pipeline through
    ``base64`` per fact, 170-240 ms like this. ``boundary`` is random per run, so no output
    can fake a frame.
    """
    facts = list(facts)
    if not facts:
        return "true\n"
    trap = shell_quote(f'printf "\\n%s\\n" "{boundary} E $?"')
    parts = ["(", "d=$(mktemp -d) || exit 1"]
    for index, fact in enumerate(facts):
        parts.append(
            f'( exec >"$d/{index}" 2>/dev/null </dev/null; '
            f"printf '%s\\n' {shell_quote(f'{boundary} S {fact.name}')}; trap {trap} EXIT\n"
            f"{fact.command}\n) &"
        )
    parts.append("wait")
    files = " ".join(f'"$d/{index}"' for index in range(len(facts)))
    parts.append(f'cat {files}; rm -rf "$d"')
    parts.append(")")  # a subshell: nothing of this stays in a persistent shell
    return "\n".join(parts) + "\n"


def parse_batch(output: str, boundary: str) -> dict[str, tuple[int, str]]:
    """Split the framed output of :func:`batch_script` back into ``name -> (rc, stdout)``."""
    raw: dict[str, tuple[int, str]] = {}
    start, end = f"{boundary} S ", f"\n{boundary} E "
    for frame in output.split(start)[1:]:
        name, _, rest = frame.partition("\n")
        body, sep, status = rest.rpartition(end)
        code = status.split()[0] if sep and status.split() else ""
        if not code.lstrip("-").isdigit():
            raise HostwizError(f"fact {name} printed no exit status")
        raw[name] = (int(code), body)
    return raw


def gather(transport: Transport, facts: Iterable[Fact[Any]]) -> Facts:
    """Read every fact from the host in one round trip and parse them."""
    wanted = _unique(facts)
    first: dict[str, Fact[Any]] = {}  # command -> the fact that runs it for all sharing it
    for fact in wanted:
        first.setdefault(fact.command, fact)
    boundary = "HOSTWIZ-" + _random.token_hex(8)
    result = transport.run(batch_script(first.values(), boundary), timeout=120)
    if not result.ok and not result.stdout:
        raise ConnectionFailed(
            f"could not read the state of {transport.host_label}",
            "Check that /bin/sh and base64 (coreutils) exist on the host.",
            details=result.err,
        )
    ran = parse_batch(result.out, boundary)
    raw = {fact.name: ran[first[fact.command].name] for fact in wanted
           if first[fact.command].name in ran}  # fmt: skip
    missing = [fact.name for fact in wanted if fact.name not in raw]
    if missing:
        raise HostwizError(f"the host did not answer for: {', '.join(missing)}", details=result.err)
    return Facts.from_raw(wanted, raw)


# ---- facts many steps share --------------------------------------------------------------


FILE_STAT = "stat -L -c '%a %U %G %u %g'"
"""Mode, owner and group of a file, following a symbolic link to the file it names (see
:func:`file_fact`); the numeric ids come last, for owners that have no name."""


def owner_names(fields: list[str]) -> tuple[str, str]:
    """Owner and group from ``%U %G [%u %g]`` fields: the names, or the numeric id where stat
    printed UNKNOWN (a uid/gid without a name, which ``chown`` would not accept)."""
    owner, group = fields[0], fields[1]
    if len(fields) >= 4:
        owner = fields[2] if owner == "UNKNOWN" else owner
        group = fields[3] if group == "UNKNOWN" else group
    return owner, group


def _parse_file(path: str) -> Callable[[int, str], FileState]:
    def parse(code: int, out: str) -> FileState:
        if code != 0 or out.startswith("MISSING"):
            return FileState(path, exists=False)
        meta, _, data = out.partition("\n")
        mode, *names = meta.split()
        owner, group = owner_names(names)
        return FileState(
            path, True, base64.b64decode(data.strip() or b""), int(mode, 8), owner, group
        )

    return parse


def file_fact(path: str) -> Fact[FileState]:
    """The content, mode and owner of one file (``exists=False`` when absent).

    A symbolic link is followed: the state is the *target's* content, mode and owner (a link's
    own mode is always 0777). hostwiz writes through such a link to its target and never
    replaces the link itself (see :func:`wizard.actions.resolve_link_script`), so what is read
    here is exactly what a plan changes and a snapshot puts back.
    """
    quoted = shell_quote(path)
    command = (
        f"if [ -f {quoted} ]; then {FILE_STAT} {quoted} && base64 -w0 {quoted}; "
        "else echo MISSING; fi"
    )
    return Fact(f"file:{path}", command, _parse_file(path))


def sections(out: str, names: Iterable[str] | None = None) -> dict[str, str]:
    """A fact's output split at its ``@@NAME`` lines (one command printing several parts in
    the one round trip): name -> the lines after it. With ``names``, only those names start
    a part; any other line, ``@@`` or not, is content."""
    known = None if names is None else frozenset(names)
    parts: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("@@") and (known is None or line[2:] in known):
            current = line[2:]
            parts[current] = []
        elif current:
            parts[current].append(line)
    return {name: "\n".join(lines) for name, lines in parts.items()}


def _parse_text(code: int, out: str) -> str:
    return out.strip() if code == 0 else ""


def text_fact(name: str, command: str) -> Fact[str]:
    """The trimmed stdout of a command, or "" if it failed."""
    return Fact(name, command, _parse_text)


def _parse_service_manager(code: int, out: str) -> str:
    return out.strip() or "none"


SERVICE_MANAGER: Fact[str] = Fact(
    "service_manager",
    "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then echo systemd; "
    "elif [ -d /etc/init.d ]; then echo sysv; else echo none; fi",
    _parse_service_manager,
)
"""``systemd`` where systemd runs, ``sysv`` where services run through /etc/init.d scripts."""


def restart_service_script(manager: str, service: str) -> str:
    """The command that restarts ``service`` through the host's own service manager.

    A stopped service is started, as ``systemctl restart`` does. Under systemd the unit's
    failure state is reset first: a unit may be started only so
    often (Debian's docker.service: 3 times in 60 s), and apply, roll back, apply again would
    otherwise hit the limit, which would then also stop the undo from starting it again.
    """
    if manager == "systemd":
        unit = shell_quote(service)
        return f"systemctl reset-failed {unit} 2>/dev/null; systemctl restart {unit}"
    # An init script's restart of a stopped service may fail where systemctl restart starts
    # it (Debian's docker script: under set -e, reading the missing pid file ends it).
    script = f"/etc/init.d/{service}"
    return f"if {script} status >/dev/null 2>&1; then {script} restart; else {script} start; fi"
