"""Ways of running commands on a host: over SSH (paramiko) or locally (tests, lab console)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any


class _Deferred(types.ModuleType):
    """A stand-in in ``sys.modules`` that imports the real module on first attribute use."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, name)


def defer_invoke() -> None:
    """Let ``import paramiko`` skip importing ``invoke`` until it is really used.

    paramiko's ssh config module imports invoke at once, only to run ``Match exec`` lines;
    invoke brings unittest.mock, asyncio, ssl and a YAML parser, which made up almost half of
    ``import paramiko`` (and of a no-change ``hostwiz plan``'s imports). The stand-in keeps
    ``Match exec`` working: the first use imports the real invoke. Nothing is done when
    invoke is not installed (paramiko then reports that itself) or is already imported.
    """
    if "invoke" in sys.modules or "paramiko.config" in sys.modules:
        return
    if importlib.util.find_spec("invoke") is None:
        return
    sys.modules["invoke"] = _Deferred("invoke")


defer_invoke()

from wizard.transport.base import CommandResult, Transport, shell_quote  # noqa: E402

__all__ = ["CommandResult", "Transport", "defer_invoke", "shell_quote"]
