"""Answers: what the admin chose for a step, as a frozen dataclass built and checked from data.

Each answers class describes its own fields through ``dataclasses.field(metadata=...)`` (label,
help text, allowed choices, the kind of value), so the Textual form, the plain prompts and preset
validation are all generated from one description.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from wizard.errors import InvalidAnswer

A = TypeVar("A")

USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
SIZE = re.compile(r"[0-9]+[kmg]?")
WHOLE_NUMBER = re.compile(r"-?[0-9]+")
# Patterns are always used with ``fullmatch``: ``^...$`` with ``match`` lets a trailing newline
# through, and a newline is exactly what would inject a line into a configuration file.
ACCOUNT_PATTERN = re.compile(r"[A-Za-z0-9_.*?!][A-Za-z0-9_.*?!-]{0,63}\$?")
"""A user or group name as sshd's AllowUsers/AllowGroups take it (``*`` and ``?`` wildcards,
``!`` negation, a trailing ``$`` for machine accounts)."""
LOGIN_HOST = re.compile(r"[A-Za-z0-9_.*?!:/-]{1,255}")
"""The ``@HOST`` part of an AllowUsers pattern: a host name or address pattern, or a network."""
INTERFACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
"""A network interface name (the kernel takes up to 15 bytes; hostwiz takes the usual ones)."""
WORD = re.compile(r"[A-Za-z0-9_.@+^-]{1,128}")
"""A keyword in a setting's list (a host key type, an algorithm name)."""


@dataclass(frozen=True)
class FieldInfo:
    """Everything a front end needs to ask for one answer."""

    name: str
    label: str
    help: str
    kind: str
    """bool, int, str, multiline, choice, user, size, ip, cidr, port, list"""
    default: Any
    choices: tuple[str, ...] = ()
    show_if: tuple[str, Any] | None = None
    """Only relevant when another field has this value, e.g. ("mode", "rootless")."""
    item: str = ""
    """For a list, the kind of each entry: user_pattern, group_pattern, interface, network or
    word (see ``_item_problem``); "" is any one line of text."""


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
                item=meta.get("item", ""),
            )
        )
    return tuple(result)


def check_value(info: FieldInfo, value: Any) -> Any:
    """Return ``value`` converted for ``info`` or raise ``ValueError`` saying what was expected.

    Every text is one line without control characters (a line break in an answer would become
    a line of its own in the configuration file it ends up in), and every list entry is checked
    by its kind (``info.item``).
    """
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
        if isinstance(value, str) and not WHOLE_NUMBER.fullmatch(value.strip(" ")):
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
            value = [part for part in value.split(",") if part.strip(" ")]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return tuple(_check_item(info, item) for item in value)
    if not isinstance(value, str):
        raise ValueError("expected text")
    if kind == "multiline":  # free text over several lines (a login banner): lines, no controls
        problem = next(filter(None, map(_unprintable, value.replace("\r\n", "\n").split("\n"))), "")
        if problem:
            raise ValueError(f"it contains {problem}; expected plain text (new lines are fine)")
        return value
    problem = _unprintable(value)
    if problem:
        raise ValueError(f"it contains {problem}; {ONE_LINE}")
    if kind == "choice" and value not in info.choices:
        raise ValueError(f"expected one of: {', '.join(info.choices)}")
    if kind == "user" and value and not USER_NAME.fullmatch(value):
        raise ValueError("expected a Linux user name (lower case letters, digits, - and _)")
    if kind == "size" and not SIZE.fullmatch(value):
        raise ValueError("expected a size such as 10m, 512k or 1g")
    if kind == "ip":
        problem = _address_problem(value, network=False)
        if problem:
            raise ValueError(f"{problem}; expected an IP address such as 192.168.1.10")
    if kind == "cidr":
        problem = _address_problem(value, network=True)
        if problem:
            raise ValueError(f"{problem}; expected a network such as 192.168.1.0/24")
    return value


ONE_LINE_TEXT = "one line of text"
ONE_LINE = f"expected {ONE_LINE_TEXT}"


def _unprintable(text: str) -> str:
    """What makes ``text`` unfit for a one-line setting, in words ("" when nothing does)."""
    for char in text:
        if char in "\r\n":
            return "a line break"
        if char == "\t":
            return "a tab"
        if not char.isprintable():
            return f"an invisible or control character (U+{ord(char):04X})"
    return ""


def _address_problem(text: str, *, network: bool) -> str:
    """Why ``text`` is no address (or, with ``network``, no network either); "" if it is one.

    A scope id (``fe80::1%eth0``) is refused: :mod:`ipaddress` takes almost anything after the
    ``%``, line breaks included, and no rule or setting hostwiz writes needs one.
    """
    if "%" in text:
        return "it carries a scope id (the part from %), which hostwiz does not use"
    if any(char.isspace() for char in text):
        return "it contains spaces"
    try:
        if network:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return "it is not a network or an address" if network else "it is not an IP address"
    return ""


def _account_problem(text: str, *, allow_host: bool) -> str:
    name, at, host = text.partition("@")
    if not ACCOUNT_PATTERN.fullmatch(name):
        return "is not a user or group name (letters, digits, . _ - and the wildcards * ?)"
    if at and not allow_host:
        return "names a host, which group names cannot"
    if at and not LOGIN_HOST.fullmatch(host):
        return "has a host part that is not a host name, address or network"
    return ""


def _item_problem(kind: str, item: str) -> tuple[str, str]:
    """(what is wrong with one list entry, what is expected) for the entry kind ``kind``."""
    if kind == "user_pattern":
        expected = "user names or patterns such as admin, deploy, ops-*, admin@10.0.0.0/8"
        return _account_problem(item, allow_host=True), expected
    if kind == "group_pattern":
        return _account_problem(item, allow_host=False), "group names such as sudo or ssh-users"
    if kind == "interface":
        ok = INTERFACE.fullmatch(item)
        return ("" if ok else "is not an interface name"), "interface names such as eth0 or ens3"
    if kind == "network":
        return _address_problem(item, network=True), "networks or addresses such as 10.0.0.0/8"
    if kind == "word":
        ok = WORD.fullmatch(item)
        return ("" if ok else "is not a single word"), "words such as ed25519 or rsa"
    return "", ONE_LINE_TEXT


def _check_item(info: FieldInfo, item: str) -> str:
    problem = _unprintable(item)
    entry = item.strip(" ")
    kind_problem, expected = _item_problem(info.item, entry)
    if problem:
        raise ValueError(f"entry {item!r} contains {problem}; expected {expected}")
    if kind_problem:
        raise ValueError(f"entry {item!r} {kind_problem}; expected {expected}")
    return entry


def check_fields(answers: Any, step: str, of: type[Any] | None = None) -> None:
    """Check every field of ``answers`` as :func:`check_value` checks an answer typed in.

    Called from the answers classes' ``__post_init__``, so that answers built in code (not
    through :func:`build`) cannot carry a line break into a configuration file either.
    ``of``: the answers class whose fields are questions, when ``answers`` may be of a
    subclass that adds what a step prepared (:class:`~wizard.steps.tls.plan.PreparedTls`).
    """
    for info in fields_of(of or type(answers)):
        value = getattr(answers, info.name)
        try:
            check_value(info, value)
        except ValueError as error:
            raise InvalidAnswer(
                f"{step}.{info.name}: {value!r} is not valid: {error}.", info.help
            ) from None


def fix_hint(key: str, info: FieldInfo, error: str, place: str) -> str:
    """What to do about a bad value: the values accepted and where to write one (not the
    field's help text, which says what the setting does, not how to fix it)."""
    accepted = error.partition("expected ")[2] if "expected " in error else error
    where = "on the command line" if place == "--set" else f"in {place}"
    if info.kind == "bool":
        written = f"{key}=false" if place == "--set" else f"{key} = false"
        return f"Set {key} to true or false (without quotes) {where}, e.g. {written}."
    return f"Set {key} to {accepted} {where}."


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
            why = getattr(cls, "not_asked", {}).get(name, "")
            close = difflib.get_close_matches(name, list(infos), n=1)
            guess = f"Did you mean {close[0]!r}? " if close else ""
            raise InvalidAnswer(
                f"{place}: unknown setting {key!r}{f' ({why})' if why else ''}.",
                f"{guess}Use one of: {known}. Check the spelling (underscores, not dashes).",
            )
        try:
            values[name] = check_value(infos[name], value)
        except ValueError as error:
            raise InvalidAnswer(
                f"{place}: {key} = {value!r} is not valid: {error}.",
                fix_hint(key, infos[name], str(error), place),
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


__all__ = [
    "FieldInfo", "as_mapping", "build", "check_fields", "check_value", "describe", "fields_of",
]  # fmt: skip
