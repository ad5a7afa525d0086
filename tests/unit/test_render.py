from __future__ import annotations

from wizard.actions import FileState, RunCommand, WriteFile
from wizard.plan import Plan
from wizard.render import as_text, render_plan
from wizard.secrets import MASK, Secret


def test_secrets_are_masked_in_commands_and_secret_files_never_shown():
    password = Secret("hunter2-very-secret")
    plan = Plan(
        "demo",
        (
            RunCommand(f"echo {password.reveal()} | chpasswd", why="set password",
                       secrets=(password,), undo=f"echo {password.reveal()}"),
            WriteFile("/etc/key.pem", b"-----BEGIN PRIVATE KEY-----", 0o400, secret=True),
            RunCommand("rm -rf /var/lib/thing", why="wipe", irreversible=True),
        ),
    )  # fmt: skip
    text = as_text(render_plan(plan))
    assert "hunter2" not in text and MASK in text
    assert "BEGIN PRIVATE KEY" not in text
    assert "[IRREVERSIBLE]" in text
    assert repr(password) == f"Secret({MASK})" and str(password) == MASK


def test_mode_and_owner_changes_are_shown():
    before = FileState("/etc/x", True, b"same\n", 0o644, "root", "root")
    plan = Plan("demo", (WriteFile("/etc/x", b"same\n", 0o600, "root", "adm"),), before=(before,))
    text = as_text(render_plan(plan))
    assert "mode 0644, root:root -> mode 0600, root:adm" in text


def test_empty_plan_says_already_done():
    assert "nothing to do" in as_text(render_plan(Plan("docker")))


def test_a_long_undo_is_shown_in_plain_words_and_a_short_one_as_it_is():
    long_undo = "\n".join(f"step {n}" for n in range(30))
    plan = Plan("demo", (
        RunCommand("load", why="load rules", undo=long_undo, undo_why="remove the rules"),
        RunCommand("reload sshd", undo="/etc/init.d/ssh reload"),
    ))  # fmt: skip
    text = as_text(render_plan(plan))
    assert "undo: remove the rules" in text and "step 7" not in text
    assert "undo: /etc/init.d/ssh reload" in text


def test_a_step_that_is_off_says_off_not_that_the_host_is_already_set() -> None:
    from wizard.facts import Facts
    from wizard.render import render_changeset
    from wizard.session import Selection, plan_changeset
    from wizard.steps.swarm import SWARM
    from wizard.steps.swarm.answers import SwarmAnswers

    changeset = plan_changeset("h", [Selection(SWARM, SwarmAnswers())], Facts({}, {}))
    text = as_text(render_changeset(changeset))
    assert "swarm: off, nothing to do." in text, text
    assert "already set" not in text, text
    assert (
        as_text(render_plan(Plan("ssh"))).strip() == "ssh: nothing to do, the host is already set."
    )


def test_the_status_of_a_step_that_is_off_is_off_not_not_done() -> None:
    from wizard.facts import Facts
    from wizard.steps.swarm import SWARM
    from wizard.steps.swarm.answers import SwarmAnswers

    status = SWARM.status(SwarmAnswers(), Facts({}, {}))
    assert status.status.value == "off" and status.summary.startswith("not chosen"), status
