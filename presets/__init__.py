"""Presets: a TOML file of answers, one table per step.

Read with ``tomllib`` (errors name the file and line), written with ``tomlkit`` so that the
comments and order of an existing file survive when the wizard saves answers into it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from wizard.answers import as_mapping, build, fields_of
from wizard.errors import InvalidAnswer, PresetError
from wizard.local_files import write_atomic
from wizard.steps import STEPS


@dataclass(frozen=True)
class Preset:
    """Answers per step name; only steps named in the file are in it."""

    source: str
    answers: Mapping[str, Any]


def shipped() -> list[str]:
    """Names of the presets that come with hostwiz."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files(__package__).iterdir()
        if entry.name.endswith(".toml")
    )


def _locate(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or "/" in name_or_path:
        if not path.is_file():
            raise PresetError(
                f"there is no preset file {name_or_path}.",
                f"Check the path, or use a shipped preset: {', '.join(shipped())}.",
            )
        return str(path), path.read_text(encoding="utf-8")
    resource = resources.files(__package__) / f"{name_or_path}.toml"
    if not resource.is_file():
        raise PresetError(
            f"there is no preset called {name_or_path!r}.",
            f"Shipped presets: {', '.join(shipped())}; or give the path of a .toml file.",
        )
    return f"preset {name_or_path}", resource.read_text(encoding="utf-8")


def _line_finder(text: str, section: str) -> Any:
    lines = text.splitlines()

    def line_of(key: str) -> int | None:
        inside = False
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                inside = stripped.strip("[] ") == section
            elif inside and re.match(rf"{re.escape(key)}\s*=", stripped):
                return number
        return None

    return line_of


def _section_line(text: str, section: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().strip("[] ") == section and line.strip().startswith("["):
            return number
    return None


def parse_preset(source: str, text: str) -> Preset:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PresetError(f"{source} is not valid TOML: {error}.", "Fix the line named.") from None
    answers: dict[str, Any] = {}
    for section, values in data.items():
        if section not in STEPS:
            line = _section_line(text, section)
            where = f"{source}, line {line}" if line else source
            raise PresetError(
                f"{where}: unknown step [{section}].", f"Steps are: {', '.join(STEPS)}."
            )
        if not isinstance(values, dict):
            raise PresetError(f"{source}: {section} must be a table ([{section}]).")
        step = STEPS[section]
        try:
            answers[section] = build(
                step.answers_type, values, where=f"{source} [{section}]",
                line_of=_line_finder(text, section),
            )  # fmt: skip
        except InvalidAnswer as error:
            raise PresetError(error.message, error.hint) from None
    return Preset(source, answers)


def load_preset(name_or_path: str) -> Preset:
    source, text = _locate(name_or_path)
    return parse_preset(source, text)


def apply_overrides(preset: Preset, overrides: Sequence[str]) -> Preset:
    """``--set step.key=value`` on top of a preset (or of the defaults)."""
    answers = dict(preset.answers)
    for item in overrides:
        target, sep, raw = item.partition("=")
        step_name, dot, key = target.strip().partition(".")
        if not sep or not dot:
            raise PresetError(
                f"--set {item!r} is not of the form step.key=value.",
                "For example: --set docker.mode=rootless",
            )
        if step_name not in STEPS:
            raise PresetError(f"--set {item!r}: unknown step {step_name!r}.",
                              f"Steps are: {', '.join(STEPS)}.")  # fmt: skip
        step = STEPS[step_name]
        base = answers.get(step_name) or step.answers_type()
        try:
            answers[step_name] = build(step.answers_type, {key: raw}, base=base, where="--set")
        except InvalidAnswer as error:
            raise PresetError(error.message, error.hint) from None
    return Preset(preset.source, answers)


def save_preset(path: Path, answers: Mapping[str, Any]) -> None:
    """Write ``answers`` into ``path``, keeping the file's comments and order if it exists.

    New keys get the field's help text as a comment, so a saved preset explains itself.
    """
    import tomlkit  # only needed when saving

    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else None
    if document is None:
        document = tomlkit.document()
        document.add(tomlkit.comment("hostwiz preset: answers for each step (see hostwiz --help)"))
    for step_name, step_answers in answers.items():
        table = document.get(step_name)
        if table is None:
            table = tomlkit.table()
            document.add(tomlkit.nl())
            document.add(step_name, table)
        infos = {info.name: info for info in fields_of(type(step_answers))}
        for key, value in as_mapping(step_answers).items():
            if key in table:
                table[key] = value
            else:
                help_text = infos[key].help
                if help_text:
                    table.add(tomlkit.comment(help_text))
                table.add(key, value)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    write_atomic(path, tomlkit.dumps(document).encode("utf-8"), mode)


__all__ = [
    "Preset",
    "apply_overrides",
    "load_preset",
    "parse_preset",
    "save_preset",
    "shipped",
]
