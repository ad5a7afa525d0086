"""The boot path of a rules script: a systemd unit, or an LSB init script where there is no
systemd, that runs ``SCRIPT start`` once at boot.

The firewall and the proxy steps both load their rules this way (one script that the apply and
the boot path both run). Their texts are compared byte for byte with what is on a host to
decide whether the boot path is in place, so a change here would make every host applied
before plan a rewrite: ``tests/unit/test_host_boot.py`` keeps the produced texts fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BootPath:
    """What a rules script's unit and init script say (see :func:`unit_text`,
    :func:`init_text`)."""

    name: str
    """The service's name, e.g. ``hostwiz-firewall``."""
    script: str
    """The script run with ``start``, e.g. ``/usr/local/sbin/hostwiz-firewall``."""
    comment: str
    """The unit's first line, after ``# Written by hostwiz: ``."""
    description: str
    """The unit's Description=."""
    short: str
    """The init script's Short-Description."""
    status: str
    """The init script's ``status)`` command: may span lines (the following ones indented to
    line up under the first); it must end with ``;;``."""
    after: Sequence[str] = ()
    """Units started before it (besides ``local-fs.target``)."""
    wants: Sequence[str] = ()
    before: Sequence[str] = ()
    """Units it starts before (besides ``network-pre.target`` and ``shutdown.target``)."""
    should_start: Sequence[str] = ()
    """Init scripts it starts after when they exist."""
    start_before: Sequence[str] = ()
    """Init scripts it starts before (X-Start-Before)."""
    stop_comment: str = ""
    """Said after ``stop) exit 0 ;;`` (why stopping keeps the rules)."""
    network: bool = False
    """Start once the network is up (rules that name addresses on it, such as routes via a
    neighbour), not before it."""


def unit_text(boot: BootPath) -> str:
    """The systemd unit: a oneshot before the network (``network-pre.target``), or once it is
    online (``network``)."""
    online = ("network-online.target",) if boot.network else ()
    early = () if boot.network else ("network-pre.target",)
    lines = [
        f"# Written by hostwiz: {boot.comment}",
        "[Unit]",
        f"Description={boot.description}",
        "DefaultDependencies=no",
        f"After={' '.join(('local-fs.target', *online, *boot.after))}",
        *([f"Wants={' '.join((*online, *boot.wants))}"] if online or boot.wants else []),
        f"Before={' '.join((*early, *boot.before, 'shutdown.target'))}",
        "Conflicts=shutdown.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart={boot.script} start",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def init_text(boot: BootPath) -> str:
    """The LSB init script (``update-rc.d NAME defaults`` puts it in rcS.d)."""
    stop = f"  # {boot.stop_comment}" if boot.stop_comment else ""
    lines = [
        "#!/bin/sh",
        "### BEGIN INIT INFO",
        f"# Provides:          {boot.name}",
        f"# Required-Start:    $local_fs{' $network' if boot.network else ''}",
        *([f"# Should-Start:      {' '.join(boot.should_start)}"] if boot.should_start else []),
        "# Required-Stop:",
        *([f"# X-Start-Before:    {' '.join(boot.start_before)}"] if boot.start_before else []),
        "# Default-Start:     S",
        "# Default-Stop:",
        f"# Short-Description: {boot.short}",
        "### END INIT INFO",
        "# Written by hostwiz.",
        'case "$1" in',
        f"  start|restart|reload|force-reload) exec {boot.script} start ;;",
        f"  stop) exit 0 ;;{stop}",
        f"  status) {boot.status}",
        '  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;',
        "esac",
    ]
    return "\n".join(lines) + "\n"
