"""Secrets are a type, so that no rendering, log line or error can show one by accident."""

from __future__ import annotations

from typing import Final

MASK: Final = "********"


class Secret:
    """A value that prints as a mask. Call :meth:`reveal` only where the value must be used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def mask(text: str, secrets: list[Secret] | tuple[Secret, ...]) -> str:
    """Replace every secret's value in ``text`` by the mask."""
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, MASK)
    return text
