"""After apply: the host is a swarm manager, docker_gwbridge has the chosen options, the
overlay exists, and the demo stack's tasks run and answer on the published port."""

from __future__ import annotations

from wizard.facts import gather
from wizard.steps.swarm.answers import SwarmAnswers
from wizard.steps.swarm.facts import SWARM_HOST, SwarmHost
from wizard.steps.swarm.plan import GWBRIDGE, gwbridge_matches, overlay_matches, resolve
from wizard.transport.base import Transport

WAIT_TASKS = 60
"""Half-second tries for the stack's tasks to run (busy hosts are slow to start them)."""


def ask_script(address: str, port: int) -> str:
    """Bounded: an HTTP GET to address:port, retried for about 20 s; prints the answer."""
    request = (
        f"exec 3<>/dev/tcp/{address}/{port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 "
        "&& timeout 5 cat <&3"
    )
    return (
        f'for i in $(seq 40); do out=$(timeout 6 bash -c "{request}" 2>/dev/null) && '
        '[ -n "$out" ] && { printf %s "$out"; exit 0; }; sleep 0.5; done; exit 1'
    )


def tasks_script(stack: str) -> str:
    return (
        f"for i in $(seq {WAIT_TASKS}); do r=$(docker service ls --filter name={stack}_web "
        "--format '{{.Replicas}}'); case $r in ''|0/*) ;; *) a=${r%%/*}; b=${r#*/}; "
        'b=${b%% *}; [ "$a" = "$b" ] && { echo "$r"; exit 0; } ;; esac; sleep 0.5; done; '
        'echo "$r"; exit 1'
    )


def spread_script(stack: str) -> str:
    """The nodes (one a line) where the stack's web service has a task running."""
    return (
        f"docker service ps {stack}_web --filter desired-state=running "
        "--format '{{.Node}} {{.CurrentState}}' 2>/dev/null | awk '$2 == \"Running\" "
        "{print $1}' | sort -u"
    )


def health_problems(transport: Transport, answers: SwarmAnswers) -> list[str]:
    if not answers.enabled:
        return []
    host: SwarmHost = gather(transport, [SWARM_HOST])[SWARM_HOST]
    problems = []
    if host.state != "active" or not host.manager:
        problems.append(f"this host is not a swarm manager (state {host.state or 'unknown'})")
    if not gwbridge_matches(answers, host.networks.get(GWBRIDGE)):
        problems.append("docker_gwbridge does not have the chosen subnet and options")
    overlay = host.networks.get(answers.overlay_name)
    if overlay is None or not overlay_matches(answers, overlay):
        problems.append(f"the overlay network {answers.overlay_name} is missing or differs")
    if not answers.stack:
        return problems
    tasks = transport.run(tasks_script(answers.stack_name), timeout=60)
    if not tasks.ok:
        problems.append(f"the stack's tasks do not all run ({tasks.out.strip() or 'none'})")
        return problems
    address = answers.gwbridge_host_binding or (
        resolve(answers.advertise_address, host, "advertise_address")
        if answers.publish_mode == "host"
        else "127.0.0.1"
    )
    if not transport.run(ask_script(address, answers.stack_port), timeout=60).ok:
        problems.append(f"nothing answers on {address}:{answers.stack_port}")
    return problems
