"""After an apply: sshd's effective settings and listeners are the chosen ones."""

from __future__ import annotations

from wizard.facts import Facts
from wizard.host.sshd import with_privsep_dir
from wizard.steps.ssh.answers import (
    SshAnswers,
)
from wizard.steps.ssh.facts import (
    parse_effective,
)
from wizard.steps.ssh.plan import (
    chosen_algorithms,
    effective_differences,
)
from wizard.steps.ssh.port import (
    SSH_SOCKET,
    SSHD_LISTEN,
    listen_problems,
    listening_script,
    parse_listen,
    parse_listeners,
)
from wizard.transport.base import Transport


def health(transport: Transport, answers: SshAnswers, facts: Facts) -> list[str]:
    result = transport.run(with_privsep_dir("sshd -T"))
    if not result.out.strip():
        said = result.err.strip() or f"exit status {result.exit_code}"
        return [f"sshd -T could not read sshd's configuration ({said})"]
    effective = parse_effective(0, result.out)
    wanted = {
        "permitrootlogin": "without-password"
        if answers.permit_root_login == "prohibit-password"
        else "no",
        "passwordauthentication": "yes" if answers.password_authentication else "no",
    }
    wrong = [f"{key} is {effective.get(key)!r}" for key, value in wanted.items()
             if effective.get(key) not in {value, answers.permit_root_login}]  # fmt: skip
    wrong += effective_differences(effective, answers, chosen_algorithms(answers, facts))
    problems = [f"sshd's effective configuration differs: {', '.join(wrong)}"] if wrong else []
    if answers.port:
        listen = parse_listen(0, transport.run(SSHD_LISTEN.command).out)
        listeners = parse_listeners(0, transport.run(listening_script(answers.port)).out)
        problems += listen_problems(answers.port, listen, listeners, facts[SSH_SOCKET])
    return problems
