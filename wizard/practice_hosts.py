"""What the core knows of practice hosts: the ssh config the ``lab`` package keeps for them.

The lab (a package of its own beside ``wizard/``) writes ``ssh_config`` in the per-user data dir
so that ``ssh -F <it> NAME`` reaches each running practice host. The core only reads that file
(to let ``--host NAME`` find a practice host without ``-F``); it never imports the lab, which
builds on the core, not the other way round.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs


def practice_dir() -> Path:
    """The lab's data dir: its SSH key, ``ssh_config`` and ``known_hosts``."""
    return Path(platformdirs.user_data_dir("hostwiz")) / "lab"


def practice_ssh_config() -> Path:
    return practice_dir() / "ssh_config"


def ssh_config_hosts(path: Path) -> list[str]:
    """Concrete ``Host`` names of an ssh config (patterns with * ? ! are not hosts)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    names: list[str] = []
    for line in text.splitlines():
        words = line.strip().split()
        if len(words) < 2 or words[0].lower() != "host":
            continue
        for word in words[1:]:
            if not any(char in word for char in "*?!") and word not in names:
                names.append(word)
    return names


def practice_host_names() -> list[str]:
    """The practice hosts the lab's ssh config names (the running ones: ``lab down`` takes a
    host's entry out with it)."""
    return ssh_config_hosts(practice_ssh_config())
