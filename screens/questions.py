"""What both front ends ask, and when: pure helpers shared by the Textual form
(:mod:`screens.widgets`) and plain mode (:mod:`screens.plain`). Nothing here imports Textual or
questionary, so plain mode stays quick to start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from wizard.answers import FieldInfo, check_value

ENABLED = "enabled"
"""A step whose first question is this switch asks nothing else while it is off."""


def has_switch(fields: Sequence[FieldInfo]) -> bool:
    return any(info.name == ENABLED and info.kind == "bool" for info in fields)


def is_asked(info: FieldInfo, values: Mapping[str, Any], fields: Sequence[FieldInfo]) -> bool:
    """Whether the question matters with these answers: its ``show_if`` holds, and the step's
    ``enabled`` switch (when it has one) is on. A question that is not asked keeps its answer."""
    if info.show_if is not None:
        other, wanted = info.show_if
        if values.get(other) != wanted:
            return False
    if info.name != ENABLED and has_switch(fields):
        return bool(values.get(ENABLED))
    return True


def on_off(value: bool) -> str:
    """The word shown beside a switch."""
    return "On" if value else "Off"


def normalized(info: FieldInfo, raw: Any) -> Any:
    """A value as the answers hold it (``"a,b"`` and ``"a, b"`` are the same list); the raw
    value when it does not check."""
    try:
        return check_value(info, raw)
    except ValueError:
        return raw


def field_named_in(fields: Sequence[FieldInfo], *texts: str) -> str | None:
    """The question an error message is about: the first field it names as a preset key
    (``firewall.wan_services``, ``wan_services``, ``allow_cutting_my_ssh = true``). The texts
    are searched in order (the message, then its hint); None when none names a field.

    A bare one-word name (``port``) only counts as ``step.port`` or ``port =``: the word alone
    is too common in messages."""
    for text in texts:
        best: tuple[int, str] | None = None
        for info in fields:
            name = re.escape(info.name)
            patterns = [rf"(?<![\w.])\w+\.{name}\b", rf"(?<![\w.]){name}\s*="]
            if "_" in info.name:
                patterns.append(rf"(?<![\w.]){name}\b")
            for pattern in patterns:
                found = re.search(pattern, text)
                if found and (best is None or found.start() < best[0]):
                    best = (found.start(), info.name)
        if best is not None:
            return best[1]
    return None


def confirm_keys(default: bool) -> str:
    """How a yes/no question is answered, with what Enter alone chooses."""
    return f"(y or n, then Enter; Enter alone: {'yes' if default else 'no'})"


def select_keys(default: str) -> str:
    return f"(↑/↓ to choose, then Enter; Enter alone keeps: {default})"


def text_keys(shown: str) -> str:
    if shown:
        return "(Enter keeps the value shown; Ctrl-U clears it)"
    return "(type the answer, then Enter; Enter alone leaves it empty)"
