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


# ---- a site's proxy host: a request along the clients' path -----------------------------

PROBE = {4: "192.0.2.1", 6: "2001:db8::1"}
"""Where the router's test request is addressed: documentation addresses (RFC 5737, 3849),
never on the internet. Marked, it goes to the proxy host like a client's request; squid
refuses it itself (below) and connects nowhere."""
PROBE_PATH = "/squid-internal-mgr/hostwiz-health"
"""A cache manager URL: squid's ``http_access deny manager`` (hostwiz's squid.conf, for
everyone but the proxy host itself) answers it with squid's 403 at once."""
PROBE_SECONDS = 5

_PROBE_PY = """import socket, sys
family = socket.AF_INET6 if ":" in DEST else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, 36, MARK)  # SO_MARK: routed as the clients' web traffic
sock.settimeout(SECONDS)
data = b""
try:
    sock.bind((SOURCE, 0))
    sock.connect((DEST, PORT))
    sock.sendall(REQUEST)
    for _ in range(64):
        chunk = sock.recv(4096)
        if not chunk or len(data) > 8192:
            break
        data += chunk
except OSError as error:
    if not data:
        print("hostwiz-probe:", error)
        sys.exit(1)
sys.stdout.write(data.decode("latin-1"))
"""


def probe_script(source: str, version: int, port: str, mark: int) -> str:
    """A web request from ``source`` (the router's address on a client network), carrying the
    clients' mark: the router routes it by the proxy's table, the proxy host redirects it to
    squid's intercept port, squid answers. Run by python3 (SO_MARK needs a socket option)."""
    dest = PROBE[version]
    host = f"[{dest}]" if version == 6 else dest
    request = f"GET {PROBE_PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    values = (f"DEST = {dest!r}\nSOURCE = {source!r}\nPORT = {int(port)}\nMARK = {mark}\n"
              f"SECONDS = {PROBE_SECONDS}\nREQUEST = {request.encode()!r}\n")  # fmt: skip
    return f"python3 - <<'HWPROBE'\n{values}{_PROBE_PY}HWPROBE"


def route_check(version: int, mark: int) -> str:
    """Without python3: the kernel's route for a marked packet (the table and rule only)."""
    return f"ip -{version} route get {PROBE[version]} mark {mark}"


def path_problems(
    transport: Transport, version: int, source: str, proxy: str, port: str, mark: int
) -> list[str]:
    """[] when a request along the clients' path reaches squid on the proxy host."""
    family = f"IPv{version}"
    # squid's answer comes from the probe's address: loose rp_filter drops it unless the
    # router has some route there (a default route: what a router of web clients has).
    routed = version == 6 or transport.run(f"ip -4 route get {PROBE[4]}", timeout=30).ok
    if not routed or not transport.run("command -v python3 >/dev/null", timeout=30).ok:
        out = transport.run(route_check(version, mark), timeout=30).out
        if f"via {proxy} " in out:
            return []
        return [f"{family}: web traffic marked {mark:#x} is not routed to the proxy {proxy} "
                f"({out.strip() or 'no route'})"]  # fmt: skip
    answer = transport.run(probe_script(source, version, port, mark), timeout=30)
    head = answer.out.split("\r\n", 1)[0]
    if answer.ok and head.startswith("HTTP/") and "squid" in answer.out.lower():
        return []
    said = head.strip() or answer.err.strip() or "no answer"
    return [f"{family}: a web request from {source} routed as the clients' (port {port}) got no "
            f"answer from squid on the proxy {proxy}: {said[:200]}"]  # fmt: skip
