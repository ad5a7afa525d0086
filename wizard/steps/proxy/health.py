"""After apply: squid answers, the intercept port listens and accepts, the log exists, and the
kernel holds the rules."""

from __future__ import annotations

from wizard.facts import gather
from wizard.steps.proxy import rules
from wizard.steps.proxy.answers import FORWARD_PORT, ProxyAnswers
from wizard.steps.proxy.facts import parse_listeners
from wizard.steps.proxy.plan import client_networks, facts_for, host_of
from wizard.transport.base import Transport, shell_quote

ASK_SQUID = (
    f"timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{FORWARD_PORT}; "
    'printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; head -c 2000 <&3\''
)
"""An ordinary request on squid's local port: any answer from squid (an error page for the
incomplete URL) proves it serves. Never the intercept port: a direct connection there is what
stalls squid 5."""


def _still_queued(transport: Transport, port: int) -> bool:
    """A busy proxy may have a connection waiting at any instant: only a queue that is still
    there two seconds later means squid stopped accepting."""
    out = transport.run(f"sleep 2; ss -Hltn 'sport = :{port}'", timeout=30).out
    return any(item.queued for item in parse_listeners(out) if item.port == port)


def health_problems(transport: Transport, answers: ProxyAnswers) -> list[str]:
    if not answers.enabled:
        return []
    facts = gather(transport, facts_for(answers))
    host = host_of(answers, facts)
    problems = []
    if not host.running:
        problems.append("squid is not running (see its cache.log)")
    listener = host.listens(answers.intercept_port)
    if listener is None:
        problems.append(f"nothing listens on the intercept port {answers.intercept_port}")
    elif listener.queued and _still_queued(transport, answers.intercept_port):
        problems.append(
            f"{listener.queued} connection(s) wait on port {answers.intercept_port} unaccepted:"
            " squid stopped accepting intercepted traffic"
        )
    answer = transport.run(ASK_SQUID, timeout=30)
    if "squid" not in answer.out.lower():
        problems.append(f"squid does not answer on 127.0.0.1:{FORWARD_PORT}")
    log = f"{answers.log_dir}/access.log"
    if not transport.run(f"test -f {shell_quote(log)}", timeout=30).ok:
        problems.append(f"{log} does not exist")
    for version, live in ((4, host.rules_v4), (6, host.rules_v6)):
        wanted = rules.render(answers, client_networks(answers, host, version), version)
        problems += [f"IPv{version}: {p}" for p in rules.live_problems(wanted, live)]
    return problems
