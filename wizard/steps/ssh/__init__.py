"""Step: SSH hardening (seed 003): keys only, root without passwords, strong host keys.

hostwiz writes one drop-in, ``/etc/ssh/sshd_config.d/00-hostwiz.conf``. sshd keeps the *first*
value it reads for most keywords and reads the drop-ins where the main file includes them (at
its top on Debian and Ubuntu), so a file that sorts first wins over the main file and over
cloud images' ``50-cloud-init.conf`` (which often turns passwords back on).

The step refuses to plan a change that would lock out the admin running it: the user hostwiz
is logged in as must still be allowed in, with a key, after the change.

The rest of the usual baselines (dev-sec's ssh-baseline, Mozilla's OpenSSH guidelines, CIS
Debian 5.2) are answers with hardened defaults: log level, idle-client checks, sessions per
connection, agent and TCP forwarding, compression, TCP keepalives, an optional banner, and
strong algorithm lists limited to what the host's OpenSSH supports and hostwiz's own client
speaks (:mod:`wizard.steps.ssh.crypto`). The health check wants ``sshd -T`` to show each.

It can also move sshd to another port (:mod:`wizard.steps.ssh.port`). Its plan then says so
(``Plan.ssh_port``), and the transaction confirms over a new connection to the new port: the
move is only kept once the new port answers with the host's known key.
"""

from __future__ import annotations

from typing import Any

from wizard.facts import SERVICE_MANAGER, Fact, Facts
from wizard.plan import Plan
from wizard.steps.base import Need, StepStatus, status_from_plan
from wizard.steps.ssh import health as _health
from wizard.steps.ssh import plan as _plan
from wizard.steps.ssh.answers import SshAnswers
from wizard.steps.ssh.crypto import SUPPORTED
from wizard.steps.ssh.facts import (
    ACCOUNTS,
    BANNER,
    DROP,
    EFFECTIVE,
    LOGIN,
    MAIN,
    PORT_FILES,
    SOCKET_DROP,
)
from wizard.steps.ssh.port import LISTENERS, SSH_SOCKET, SSHD_LISTEN
from wizard.transport.base import Transport


class SshHardeningStep:
    name = "ssh"
    title = "SSH hardening"
    explanation = (
        "Makes SSH accept keys only, so that the password-guessing bots that hit every public "
        "server get nowhere; keeps root from logging in with a password; offers only strong host "
        "key types and modern algorithms; drops vanished clients, logs which key logged in, "
        "turns off forwarding you do not use; and can limit who may log in at all. hostwiz "
        "refuses a setting that would "
        "lock you out, checks the new configuration with sshd -t before reloading, and only "
        "keeps the change once a brand-new SSH connection gets in."
    )
    answers_type = SshAnswers

    def facts(self, answers: SshAnswers) -> list[Fact[Any]]:
        return [MAIN, DROP, EFFECTIVE, LOGIN, SERVICE_MANAGER, SSHD_LISTEN, PORT_FILES, LISTENERS,
                SSH_SOCKET, SUPPORTED, BANNER, ACCOUNTS, SOCKET_DROP]  # fmt: skip

    def plan_facts(self, answers: SshAnswers) -> list[Fact[Any]]:
        """Without a port to move to (``port = 0``), the plan reads neither who listens where
        (``ss -p`` walks every process's open files) nor the other port settings; without
        AllowUsers/AllowGroups, not the host's every user and group either."""
        skipped: set[str] = set()
        if not answers.port:
            skipped |= {LISTENERS.name, PORT_FILES.name, SOCKET_DROP.name}
        if not (answers.allow_users or answers.allow_groups):
            skipped.add(ACCOUNTS.name)
        return [fact for fact in self.facts(answers) if fact.name not in skipped]

    def plan(self, answers: SshAnswers, facts: Facts) -> Plan:
        return _plan.plan(self.name, answers, facts)

    def needs(self, answers: SshAnswers, facts: Facts) -> tuple[Need, ...]:
        """ssh on the port(s) sshd ends up on: zones loaded earlier must let it in."""
        where = f"port {answers.port}" if answers.port else "its port"
        return (Need("ssh", why=f"the ssh step's sshd listens on {where}"),)

    def health(self, transport: Transport, answers: SshAnswers, facts: Facts) -> list[str]:
        return _health.health(transport, answers, facts)

    def status(self, answers: SshAnswers, facts: Facts) -> StepStatus:
        port = f", port {answers.port}" if answers.port else ""
        passwords = facts[EFFECTIVE].get("passwordauthentication") == "yes"
        return status_from_plan(
            lambda: self.plan(answers, facts),
            done=f"keys only, hardened{port}",
            untouched="password logins are allowed" if passwords else None,
        )


SSH_HARDENING = SshHardeningStep()
