"""hostwiz decides the order of the steps, never the preset: later steps build on earlier ones."""

from __future__ import annotations

from presets import apply_overrides, load_preset
from tests.unit.docker_fixtures import docker_facts
from tests.unit.test_firewall_plan import firewall_facts
from tests.unit.test_ssh_plan import facts as ssh_facts
from wizard.actions import WriteFile
from wizard.facts import Facts
from wizard.session import Selection, facts_needed, plan_changeset
from wizard.steps import STEPS
from wizard.steps.firewall import boot

OVERRIDES = ["firewall.enabled=true", "ssh.port=2222"]


def classic_with_overrides() -> list[Selection]:
    """The classic preset (only [docker]) + --set firewall... + --set ssh..., as the preset
    and the overrides list them: docker, firewall, ssh."""
    answers = apply_overrides(load_preset("classic"), OVERRIDES).answers
    assert list(answers) == ["docker", "firewall", "ssh"]
    return [Selection(STEPS[name], value) for name, value in answers.items()]


def host_facts(selections: list[Selection]) -> Facts:
    """A fresh Debian host with Docker, as every selected step's fact commands print it."""
    answers = {s.step.name: s.answers for s in selections}
    raw = {
        **firewall_facts(answers["firewall"]).raw,
        **docker_facts(answers["docker"]).raw,
        **ssh_facts().raw,
        "hostwiz_applied_steps": (0, ""),  # no snapshot on the host yet
    }
    return Facts.from_raw(facts_needed(selections), raw)


def test_the_cli_takes_the_steps_in_the_registrys_order():
    from hostwiz.cli import _selections, build_parser

    argv = ["plan", "--preset", "classic", *(f"--set={item}" for item in OVERRIDES)]
    args = build_parser(argv).parse_args(argv)
    assert [s.step.name for s in _selections(args)] == ["ssh", "docker", "firewall"]


def test_plain_mode_takes_the_steps_in_the_registrys_order():
    from hostwiz.cli import build_parser
    from screens.plain import _preset_answers
    from wizard.session import selections_for

    argv = ["--plain", "--yes", "--preset", "classic", *(f"--set={item}" for item in OVERRIDES)]
    _, answers = _preset_answers(build_parser(argv).parse_args(argv))
    assert [s.step.name for s in selections_for(answers)] == ["ssh", "docker", "firewall"]


def test_the_firewall_opens_the_port_ssh_moves_to_whatever_the_preset_order():
    selections = classic_with_overrides()
    changeset = plan_changeset("web1", selections, host_facts(selections))
    assert [plan.step for plan in changeset.plans] == ["ssh", "docker", "firewall"]
    assert changeset.ssh_port is not None and changeset.ssh_port.after == 2222
    firewall = changeset.plans[-1]
    rules = next(
        a.content.decode()
        for a in firewall.actions
        if isinstance(a, WriteFile) and a.path == boot.RULES_V4
    )
    assert "--dport 2222 -j ACCEPT" in rules
    assert "--dport 22 " not in rules  # sshd no longer listens there once the change is in
