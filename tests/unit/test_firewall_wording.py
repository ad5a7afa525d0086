"""The firewall's notes name the form's questions as the form shows them (the label, with the
preset key beside it), never a bare preset key; its status reads well in every front end."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.unit.test_firewall_plan import firewall_facts, router
from wizard.steps.firewall import FIREWALL, STEP_OFF_ZONES_ACTIVE
from wizard.steps.firewall.answers import FirewallAnswers

BARE_KEY = re.compile(r"(?<![(\w])(mgmt|lan|wan)_services\b|(?<!\()backend = ")


def notes_of(answers: FirewallAnswers, **facts: Any) -> tuple[str, ...]:
    return FIREWALL.plan(answers, firewall_facts(answers, **facts)).notes


def test_the_notes_name_the_questions_by_their_labels() -> None:
    daemon = json.dumps({"hosts": ["tcp://0.0.0.0:2376"]}).encode()
    wan_ssh = router(wan_services=("ssh", "ping"))
    notes = notes_of(wan_ssh, daemon_json=daemon)  # dockerd among the tools
    tls = next(n for n in notes if "dockerd listens on TCP port 2376" in n)
    assert '"Services offered to mgmt" (mgmt_services)' in tls
    ssh = next(n for n in notes if "SSH stays open to the internet" in n)
    assert '"Services offered to wan" (wan_services)' in ssh
    nft = notes_of(router(backend="nftables"), tools=("nft", "update-rc.d", "dockerd"))
    docker = next(n for n in nft if "dockerd runs on this host" in n)
    assert '"Backend" (backend) to iptables' in docker
    for note in (*notes, *nft):
        assert not BARE_KEY.search(note), note


def test_the_off_steps_status_reads_well_in_plain_mode() -> None:
    """Plain mode shows it as "Firewall zones: done (...)": no "(Snapshots)" inside."""
    assert "(Snapshots)" not in STEP_OFF_ZONES_ACTIVE
    assert "hostwiz snapshots" in STEP_OFF_ZONES_ACTIVE and "Snapshots in the step list" in (
        STEP_OFF_ZONES_ACTIVE
    )
