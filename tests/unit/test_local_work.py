"""Local work around the plan, run by the session through the steps' hooks (wizard.local):
the front ends call prepare_local / after_confirmed / step_statuses and never name a step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_tls_plan import ON, PASS, tls_facts
from tests.unit.test_tls_plan import ca_root as ca_root  # a fixture
from tests.unit.test_tls_plan import home as home  # a fixture
from wizard.local import (
    LocalContext,
    SecretAnswer,
    SecretNotGiven,
    SecretRequest,
    answer_with,
    nobody_to_ask,
    remembering,
)
from wizard.pki import WrongPassphrase
from wizard.secrets import Secret
from wizard.session import Selection, after_confirmed, prepare_local
from wizard.steps import STEPS
from wizard.steps.tls.plan import PreparedTls

TLS = STEPS["tls"]


def local(ask: Any, root: Path, tries: int = 3) -> LocalContext:
    return LocalContext("web1", "web1.example.org", ask, tries, root)


def test_a_new_ca_asks_for_a_secret_twice_through_a_generic_request(ca_root, home):
    asked: list[SecretRequest] = []

    def ask(request: SecretRequest) -> SecretAnswer:
        asked.append(request)
        return SecretAnswer(PASS, PASS)

    prepared = prepare_local([Selection(TLS, ON)], tls_facts(), local(ask, ca_root))
    assert [r.confirm for r in asked] == [True]
    assert asked[0].title == "New CA passphrase" and asked[0].submit == "Create CA"
    assert asked[0].prompt == "Choose a passphrase for the new CA 'default'"
    assert isinstance(prepared.selections[0].answers, PreparedTls)
    assert prepared.created == (ca_root / "default",)
    again = prepare_local([Selection(TLS, ON)], tls_facts(), local(ask, ca_root))
    assert asked[-1].confirm is False and again.created == ()  # the CA exists now: unlock it


def test_a_refused_secret_is_asked_again_with_the_reason_then_raised(ca_root, home):
    prepare_local([Selection(TLS, ON)], tls_facts(), local(answer_with(PASS), ca_root))
    problems: list[Any] = []

    def wrong(request: SecretRequest) -> SecretAnswer:
        problems.append(request.problem)
        return SecretAnswer(Secret("not the passphrase at all"))

    with pytest.raises(WrongPassphrase):
        prepare_local([Selection(TLS, ON)], tls_facts(), local(wrong, ca_root, tries=2))
    assert problems[0] is None and isinstance(problems[1], WrongPassphrase)


def test_nobody_to_ask_names_what_is_needed_and_how_scripts_give_it(ca_root, home):
    with pytest.raises(SecretNotGiven) as caught:
        prepare_local([Selection(TLS, ON)], tls_facts(), local(nobody_to_ask, ca_root, 1))
    assert caught.value.message == (
        "the TLS step needs the passphrase of your CA 'default', and nobody is here to type "
        "it. Nothing was changed."
    )
    assert "HOSTWIZ_CA_PASSPHRASE" in caught.value.hint
    assert not ca_root.exists()


def test_declining_plans_nothing(ca_root, home):
    with pytest.raises(SecretNotGiven, match="no CA passphrase was given"):
        prepare_local([Selection(TLS, ON)], tls_facts(), local(lambda request: None, ca_root))


def test_steps_without_local_work_pass_through_and_report_nothing():
    selections = [Selection(STEPS["docker"], STEPS["docker"].answers_type())]
    prepared = prepare_local(selections, tls_facts(), local(nobody_to_ask, Path("/nowhere")))
    assert prepared.selections == selections and prepared.created == ()
    report = after_confirmed(selections)
    assert report.lines == [] and report.ok


def test_a_site_asks_for_the_same_secret_once_and_again_only_when_it_was_refused(ca_root, home):
    """Two hosts' TLS steps share the site's CA: the passphrase chosen for the first (typed
    twice, a new CA) unlocks it for the second without asking; a refused answer is asked
    again, with the reason, and that new answer is the one remembered."""
    asked: list[SecretRequest] = []

    def ask(request: SecretRequest) -> SecretAnswer:
        asked.append(request)
        return SecretAnswer(PASS, PASS)

    once = remembering(ask)
    first = prepare_local([Selection(TLS, ON)], tls_facts(), local(once, ca_root))
    second = LocalContext("web2", "web2.example.org", once, 3, ca_root)
    other = prepare_local([Selection(TLS, ON)], tls_facts(), second)
    assert [r.confirm for r in asked] == [True]  # asked once, for the new CA
    assert first.created == (ca_root / "default",) and other.created == ()
    material = other.selections[0].answers.material
    assert material is not None and material.server is not None

    typed = iter([Secret("not the passphrase at all"), PASS])
    wrong_first = remembering(lambda request: asked.append(request) or SecretAnswer(next(typed)))
    prepare_local([Selection(TLS, ON)], tls_facts(), local(wrong_first, ca_root))
    third = LocalContext("web3", "web3.example.org", wrong_first, 3, ca_root)
    prepare_local([Selection(TLS, ON)], tls_facts(), third)
    assert [r.problem is None for r in asked[1:]] == [True, False]  # the second host: not asked


def test_prepared_answers_are_answers_of_the_steps_own_type(ca_root, home):
    """``Step[A]`` tells the truth: what ``prepare`` returns is an ``answers_type`` (with the
    certificates it made), and those additions are never questions (forms, presets, --set)."""
    from wizard.answers import build, fields_of
    from wizard.errors import InvalidAnswer

    prepared = prepare_local([Selection(TLS, ON)], tls_facts(), local(answer_with(PASS), ca_root))
    answers = prepared.selections[0].answers
    assert isinstance(answers, TLS.answers_type) and answers.material is not None
    assert answers.enabled and answers.port == ON.port  # the questions, answered the same
    questions = {info.name for info in fields_of(TLS.answers_type)}
    assert not questions & {"material", "client_address", "client_bundle", "context", "host"}
    with pytest.raises(InvalidAnswer, match="unknown setting 'material'"):
        build(TLS.answers_type, {"material": "x"})
    assert TLS.plan(answers, tls_facts()).actions  # plans from the answers it takes


def fake_docker(folder: Path, contexts: list[str]) -> Path:
    """A ``docker`` on PATH that knows ``contexts`` (``docker context inspect NAME``)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "docker"
    known = " ".join(contexts)
    script.write_text(
        f'#!/bin/sh\nfor n in {known}; do [ "$1 $2 $3" = "context inspect $n" ] && exit 0; done\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    return folder


def test_a_rollback_of_the_tls_step_says_what_stays_locally_and_what_to_do(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session runs the steps' ``after_rolled_back`` hooks for the steps a rolled-back
    snapshot recorded; the TLS step names its docker context and client bundle, which stay
    on this machine, and how to remove them."""
    monkeypatch.setenv("PATH", str(fake_docker(tmp_path / "bin", ["web1"])))
    from wizard.session import after_rolled_back

    assert after_rolled_back(["ssh", "tls"], "web1") == [
        "On this machine, your docker context 'web1' still points at the host's Docker TLS "
        "port, which the rollback closed again.",
        "What to do: remove the context with `docker context rm web1`, or apply the TLS step "
        "again.",
    ]
    bundle = home / ".docker" / "hostwiz" / "web1"
    bundle.mkdir(parents=True)
    (bundle / "ca.pem").write_text("x")
    lines = after_rolled_back(["tls"], "web1")
    assert lines[0] == (
        f"On this machine, your docker context 'web1' and the client bundle in {bundle} still "
        "point at the host's Docker TLS port, which the rollback closed again."
    )
    assert lines[1] == (
        f"What to do: remove the context with `docker context rm web1` and delete {bundle}, "
        "or apply the TLS step again."
    )
    custom = tmp_path / "mine"
    custom.mkdir()
    (custom / "cert.pem").write_text("x")
    answers = {"tls": TLS.answers_type(bundle_dir=str(custom))}
    assert str(custom) in after_rolled_back(["tls"], "web1", answers)[0]  # the admin's folder


def test_nothing_is_said_after_a_rollback_without_the_tls_step_or_its_local_side(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wizard.session import after_rolled_back

    monkeypatch.setenv("PATH", str(fake_docker(tmp_path / "bin", ["web1"])))
    (home / ".docker" / "hostwiz" / "web1").mkdir(parents=True)
    (home / ".docker" / "hostwiz" / "web1" / "key.pem").write_text("x")
    assert after_rolled_back(["ssh", "firewall"], "web1") == []  # no TLS step in the snapshot
    assert after_rolled_back(["tls"], "web2") == []  # no context, no bundle for web2
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no docker CLI: the bundle only
    assert after_rolled_back(["tls"], "web1")[1] == (
        f"What to do: delete {home / '.docker' / 'hostwiz' / 'web1'}, or apply the TLS step again."
    )
