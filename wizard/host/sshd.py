"""sshd as several steps see it: the drop-in hostwiz writes, and the ports sshd will listen on
once it is in place (the SSH step writes the drop-in; the firewall opens those ports)."""

from __future__ import annotations

from wizard.actions import FileState
from wizard.facts import file_fact

DROP_IN_PATH = "/etc/ssh/sshd_config.d/00-hostwiz.conf"
"""hostwiz's own sshd drop-in: it sorts first, so its values win (see the SSH step)."""

DROP_IN = file_fact(DROP_IN_PATH)


def ports_in(drop_in: FileState) -> tuple[int, ...]:
    """The ``Port`` lines of an sshd configuration file, sorted (none when it sets none)."""
    if not drop_in.exists:
        return ()
    lines = [line.split() for line in drop_in.text.splitlines()]
    words = [w[1] for w in lines if len(w) == 2 and w[0] == "Port"]
    return tuple(sorted({int(word) for word in words if word.isdigit()}))


def planned_ports(drop_in: FileState, running: tuple[int, ...]) -> tuple[int, ...]:
    """The ports sshd will listen on: those hostwiz's drop-in sets when it sets any (an SSH
    step planned before may have changed it), else ``running`` (what sshd reports now), else
    22."""
    return ports_in(drop_in) or running or (22,)


PRIVSEP_DIR = "/run/sshd"
"""sshd's privilege separation directory on Debian and Ubuntu; sshd -t and -T need it."""


def with_privsep_dir(command: str) -> str:
    """``command`` (an ``sshd -t`` or ``sshd -T``), run once more after creating sshd's
    privilege separation directory, when the first run failed and the directory is missing.

    Where ssh.socket starts sshd, systemd removes /run/sshd (ssh.service's RuntimeDirectory)
    whenever ssh.service stops, and creates it again only when the next connection starts the
    service. Until then sshd -t and -T fail with "Missing privilege separation directory",
    although nothing is wrong. Debian's init script creates the directory the same way before
    its own ``sshd -t``; systemd adopts it when the service starts.
    """
    return (
        f"{{ {command} || {{ [ ! -d {PRIVSEP_DIR} ] && mkdir -m 0755 {PRIVSEP_DIR} && "
        f"{command}; }}; }}"
    )


EFFECTIVE_COMMAND = with_privsep_dir("sshd -T 2>/dev/null")
"""sshd's effective configuration. Every fact that reads it uses this very command, with its
own parser, so that one round trip runs ``sshd -T`` once (:func:`wizard.facts.gather` runs a
command once for all facts that share it; sshd -T parses every file and costs ~10 ms)."""
