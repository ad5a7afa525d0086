"""The nftables backend: one ``inet hostwiz`` table (seed 003's hostguard idea).

For hosts without Docker and for workstations. Not written yet: planning with it explains so.
"""

from __future__ import annotations

from wizard.errors import PlanConflict
from wizard.firewall.model import Ruleset


def render(ruleset: Ruleset) -> str:
    raise PlanConflict(
        "the nftables backend is not available yet.",
        'Use backend = "iptables" (it works with and without Docker).',
    )


def live_matches(wanted: str, live: str) -> list[str]:
    return [] if wanted.strip() == live.strip() else ["the inet hostwiz table differs"]
