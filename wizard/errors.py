"""Errors a person can act on.

Every failure hostwiz reports is a :class:`HostwizError`: a plain-words ``message`` saying what
went wrong and a ``hint`` saying what to do next. Front ends print both; nothing else about an
error (tracebacks, raw stderr) is shown unless asked for.
"""

from __future__ import annotations


class HostwizError(Exception):
    """Base of every error hostwiz explains to the admin."""

    title = "Something went wrong"

    def __init__(self, message: str, hint: str = "", *, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def explain(self) -> str:
        """The message and the next step, as a front end shows them."""
        text = f"{self.title}: {self.message}"
        if self.hint:
            text += f"\n  What to do: {self.hint}"
        return text


class ConnectionFailed(HostwizError):
    """A connection that could not be opened (or was lost), with how it failed as ``kind``."""

    title = "Cannot connect"
    kind = "failed"
    """How it failed, set where it is raised: ``refused`` (nothing listens on the port),
    ``no-answer`` (packets dropped on the way: a firewall), ``no-route``, ``login-refused``
    (sshd answers, the login fails), ``host-key`` (a key not trusted), ``unknown-name`` (the
    host name does not resolve: a typo, most likely); ``failed`` otherwise.
    :func:`wizard.recovery.failure_kind` reads it; nobody reads the message for it."""

    def __init__(
        self, message: str, hint: str = "", *, details: str = "", kind: str | None = None
    ) -> None:
        super().__init__(message, hint, details=details)
        if kind is not None:
            self.kind = kind


UNKNOWN_NAME = "unknown-name"
"""The :attr:`ConnectionFailed.kind` of a host name that does not resolve."""


def recovery_can_help(error: BaseException | None) -> bool:
    """Whether recovery (what the last change did, other ways in) is worth offering after
    ``error``: not for a host name that does not resolve, which no host can have caused."""
    return not (isinstance(error, ConnectionFailed) and error.kind == UNKNOWN_NAME)


class HostKeyUnknown(ConnectionFailed):
    """The host presented a key we have never seen; trust must be given explicitly."""

    title = "Unknown host key"
    kind = "host-key"

    def __init__(self, host: str, fingerprint: str, key_type: str) -> None:
        super().__init__(
            f"{host} presented a host key ({key_type}) with fingerprint {fingerprint}, "
            "which is not in your known_hosts.",
            "Compare the fingerprint with the one shown on the VM's console "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run again with "
            "--accept-new-host-key, or accept it in the wizard.",
        )
        self.host = host
        self.fingerprint = fingerprint
        self.key_type = key_type


class HostKeyChanged(ConnectionFailed):
    """The host's key differs from known_hosts: possibly an attack, never accepted silently."""

    title = "HOST KEY CHANGED"
    kind = "host-key"

    def __init__(self, host: str, fingerprint: str, known_hosts: str) -> None:
        super().__init__(
            f"{host} now presents a host key with fingerprint {fingerprint}, which differs "
            f"from the one recorded in {known_hosts}. Someone may be intercepting the "
            "connection, or the VM was reinstalled.",
            f"If you reinstalled the VM, remove the old entry (ssh-keygen -R {host} -f "
            f"{known_hosts}) and connect again. Otherwise, stop and find out why.",
        )
        self.host = host
        self.fingerprint = fingerprint


class AuthenticationFailed(ConnectionFailed):
    title = "Login refused"
    kind = "login-refused"


class SudoFailed(HostwizError):
    title = "No administrator rights"


class CommandFailed(HostwizError):
    title = "A command failed on the host"

    def __init__(self, command: str, exit_code: int, output: str, hint: str = "") -> None:
        detail = f"\n{output.strip()}" if output.strip() else ""
        super().__init__(f"`{command}` exited with status {exit_code}.{detail}", hint)
        self.command = command
        self.exit_code = exit_code
        self.output = output


class InvalidAnswer(HostwizError):
    """An answer (from a preset, --set or a form) that cannot be used as given."""

    title = "Invalid setting"


class PresetError(InvalidAnswer):
    title = "Problem in preset"


class PlanConflict(HostwizError):
    """The host's current state makes the requested change unsafe or impossible."""

    title = "Cannot do this safely"


class HostChanged(HostwizError):
    title = "The host changed since the plan was shown"


class ApplyFailed(HostwizError):
    title = "The change did not go through"


class LabError(HostwizError):
    title = "Practice host problem"
