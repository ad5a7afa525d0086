"""Ways of running commands on a host: over SSH (paramiko) or locally (tests, lab console)."""

from wizard.transport.base import CommandResult, Transport, shell_quote

__all__ = ["CommandResult", "Transport", "shell_quote"]
