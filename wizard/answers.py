"""Answers: what the admin chose for a step, as a frozen dataclass built and checked from data.

Each answers class describes its own fields through ``dataclasses.field(metadata=...)`` (label,
help text, allowed choices, the kind of value), so the Textual form, the plain prompts and preset
validation are all generated from one description.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from wizard.errors import InvalidAnswer

A = TypeVar("A")

USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
SIZE = re.compile(r"^[0-9]+[kmg]?$")


@dataclass(frozen=True)
class FieldInfo:
    """Everything a front end needs to ask for one answer."""

    name: str
    label: str
    help: str
    kind: str
    """bool, int, str, choice, user, size, ip, cidr, port, list"""
    default: Any
    choices: tuple[str, ...] = ()
    show_if: tuple[str, Any] | None = None
    """Only relevant when another field has this value, e.g. ("mode", "rootless")."""


def describe(label: str, help: str, kind: str = "", **extra: Any) -> Any:
    """Metadata for a dataclass field: ``x: bool = field(default=True, metadata=describe(...))``."""
    return {"label": label, "help": help, "kind": kind, **extra}


def _kind_of(annotation: Any, declared: str) -> tuple[str, tuple[str, ...]]:
    if typing.get_origin(annotation) is Literal:
        return "choice", tuple(str(arg) for arg in typing.get_args(annotation))
    if declared:
        return declared, ()
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if typing.get_origin(annotation) is tuple:
        return "list", ()
    return "str", ()


def fields_of(cls: type[Any]) -> tuple[FieldInfo, ...]:
    hints = typing.get_type_hints(cls)
    result = []
    for item in dataclasses.fields(cls):
        meta = item.metadata
        kind, choices = _kind_of(hints[item.name], meta.get("kind", ""))
        default = item.default
        if default is dataclasses.MISSING and item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        result.append(
            FieldInfo(
                name=item.name,
                label=meta.get("label", item.name.replace("_", " ")),
                help=meta.get("help", ""),
                kind=kind,
                default=default,
                choices=choices,
                show_if=meta.get("show_if"),
            )
        )
    return tuple(result)


def check_value(info: FieldInfo, value: Any) -> Any:
    """Return ``value`` converted for ``info`` or raise ``ValueError`` saying what was expected."""
    kind = info.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "yes", "on", "false", "no", "off"}:
            return value.lower() in {"true", "yes", "on"}
        raise ValueError("expected true or false")
    if kind in {"int", "port"}:
        if isinstance(value, bool):
            raise ValueError("expected a whole number")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError("expected a whole number") from None
        if kind == "port" and not 1 <= number <= 65535:
            raise ValueError("expected a port number from 1 to 65535")
        if number < 0:
            raise ValueError("expected a number of 0 or more")
        return number
    if kind == "list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError("expected text")
    if kind == "choice" and value not in info.choices:
        raise ValueError(f"expected one of: {', '.join(info.choices)}")
    if kind == "user" and value and not USER_NAME.match(value):
        raise ValueError("expected a Linux user name (lower case letters, digits, - and _)")
    if kind == "size" and not SIZE.match(value):
        raise ValueError("expected a size such as 10m, 512k or 1g")
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("expected an IP address such as 192.168.1.10") from None
    if kind == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError("expected a network such as 192.168.1.0/24") from None
    return value


def build(
    cls: type[A],
    data: Mapping[str, Any],
    *,
    base: A | None = None,
    where: str = "",
    line_of: typing.Callable[[str], int | None] | None = None,
) -> A:
    """Build answers of ``cls`` from ``data`` over ``base`` (or the defaults).

    Unknown keys and wrong values raise :class:`InvalidAnswer` naming ``where`` (a preset file
    and section, or ``--set``), the line when known, and what was expected.
    """
    infos = {info.name: info for info in fields_of(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        line = line_of(key) if line_of else None
        place = f"{where}, line {line}" if line else where
        if name not in infos:
            known = ", ".join(sorted(infos))
            raise InvalidAnswer(
                f"{place}: unknown setting {key!r}.",
                f"Use one of: {known}. Check the spelling (underscores, not dashes).",
            )
        try:
            values[name] = check_value(infos[name], value)
        except ValueError as error:
            raise InvalidAnswer(
                f"{place}: {key} = {value!r} is not valid: {error}.", infos[name].help
            ) from None
    try:
        if base is None:
            return cls(**values)
        return dataclasses.replace(base, **values)  # type: ignore[type-var]
    except InvalidAnswer as error:  # checks across fields, in the answers' __post_init__
        if not where or error.message.startswith(where):
            raise
        raise InvalidAnswer(f"{where}: {error.message}", error.hint) from None


def as_mapping(answers: Any) -> dict[str, Any]:
    result = {}
    for item in dataclasses.fields(answers):
        value = getattr(answers, item.name)
        result[item.name] = list(value) if isinstance(value, tuple) else value
    return result


__all__ = ["FieldInfo", "as_mapping", "build", "check_value", "describe", "fields_of"]
