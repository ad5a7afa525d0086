"""Errors in plain words, shared by the screens: title, message and hint, never a traceback."""

from __future__ import annotations

from textual.content import Content

from wizard.errors import HostKeyChanged, HostwizError


def describe_error(error: BaseException) -> tuple[str, str, str]:
    """(title, message, hint) of any error, in plain words and without a traceback."""
    if isinstance(error, HostwizError):
        return error.title, error.message, error.hint
    return (
        "Unexpected problem",
        f"{type(error).__name__}: {error}",
        "This is a bug in hostwiz. Nothing more was done after it; please report it.",
    )


def is_danger(error: BaseException | None) -> bool:
    """Errors that must stand out: the host may not be the one it claims to be."""
    return isinstance(error, HostKeyChanged)


def error_content(error: BaseException) -> Content:
    title, message, hint = describe_error(error)
    if is_danger(error):
        parts = [
            Content.styled(f" ⚠ {title} ", "bold reverse $text-error"),
            Content.styled(" Do not type passwords or continue until you know why.\n", "bold"),
            Content(message),
        ]
    else:
        parts = [Content.styled(f"{title}: ", "bold $text-error"), Content(message)]
    if hint:
        parts += [Content("\n"), Content.styled("What to do: ", "bold"), Content(hint)]
    return Content.assemble(*parts)
