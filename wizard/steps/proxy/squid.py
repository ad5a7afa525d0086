"""squid's configuration, rendered from the answers, and the checks ``squid -k parse`` misses.

hostwiz writes the whole of ``/etc/squid/squid.conf`` (the package's own file is kept in the
snapshot, so a rollback puts it back) and runs squid through the package's own service.
"""

from __future__ import annotations

import re

from wizard.steps.proxy.answers import FORWARD_PORT, ProxyAnswers

CONF = "/etc/squid/squid.conf"
BLOCKLIST = "/etc/squid/hostwiz-blocked.domains"
SPOOL = "/var/spool/squid"

PARSE_SCRIPT = (
    f"out=$(squid -k parse -f {CONF} 2>&1); rc=$?\n"
    'bad=$(printf "%s\\n" "$out" | grep -E "(FATAL|ERROR|Bungled)")\n'
    'if [ "$rc" -ne 0 ] || [ -n "$bad" ]; then\n'
    '  echo "squid refuses the new configuration:" >&2\n'
    '  printf "%s\\n" "${bad:-$out}" >&2; exit 1\nfi'
)
"""Checks the written configuration before squid is restarted on it. ``squid -k parse``
exits 0 on some errors, so its ERROR/FATAL lines count too."""


def wait_listening(port: int, seconds: int = 30) -> str:
    """Wait (bounded) until squid listens on ``port``: its init script returns before squid's
    worker has opened its ports."""
    return (
        f"i=0; until [ -n \"$(ss -Hltn 'sport = :{port}')\" ]; do\n"
        f"  i=$((i + 1)); [ $i -gt {seconds * 4} ] && "
        f"{{ echo 'squid does not listen on port {port}' >&2; exit 1; }}\n"
        "  sleep 0.25\ndone"
    )


def render(answers: ProxyAnswers, networks: tuple[str, ...]) -> str:
    """squid.conf for the router placement; ``networks`` are the client networks."""
    log = answers.log_dir.rstrip("/") or "/"
    lines = [
        "# Written by hostwiz (web proxy). Change it with hostwiz; your earlier file is in",
        "# hostwiz's snapshot of this change (hostwiz rollback puts it back).",
        "",
        "# Who may use the proxy: the client networks (and the host itself).",
        *(f"acl clients src {net}" for net in networks),
        "acl SSL_ports port 443",
        "acl Safe_ports port 80 443 1025-65535",
        "acl CONNECT method CONNECT",
    ]
    if answers.blocklist():
        lines += [
            "# -n: match the name as the client wrote it, never a reverse DNS lookup.",
            f'acl blocked dstdomain -n "{BLOCKLIST}"',
        ]
    lines += [
        "http_access deny !Safe_ports",
        "http_access deny CONNECT !SSL_ports",
        "http_access allow localhost manager",
        "http_access deny manager",
        *(["http_access deny blocked"] if answers.blocklist() else []),
        *(["http_access allow clients"] if networks else []),
        "http_access allow localhost",
        "http_access deny all",
        "",
        "# The ordinary proxy port, for the host itself only (squid's own pages, health",
        "# checks); the clients' redirected web traffic arrives on the intercept port.",
        f"http_port 127.0.0.1:{FORWARD_PORT}",
        f"http_port {answers.intercept_port} intercept",
        "# HTTPS is not intercepted: peek-and-splice (ssl_bump) would need a CA of this",
        "# proxy installed on every client.",
        "",
    ]
    if answers.cache_size_mb:
        lines.append(f"cache_dir ufs {SPOOL} {answers.cache_size_mb} 16 256")
    lines += [
        f"coredump_dir {SPOOL}",
        f"access_log daemon:{log}/access.log squid",
        f"cache_log {log}/cache.log",
        "cache_store_log none",
    ]
    if answers.dns_nameservers:
        lines.append(f"dns_nameservers {' '.join(answers.dns_nameservers)}")
    lines += [
        "# Short, so an unreachable name server does not stall intercepted requests.",
        f"dns_timeout {answers.dns_timeout} seconds",
        "# Short, so restarts are quick.",
        f"shutdown_lifetime {answers.shutdown_lifetime} seconds",
        "",
        "refresh_pattern -i (/cgi-bin/|\\?) 0 0% 0",
        "refresh_pattern . 0 20% 4320",
    ]
    return "\n".join(lines) + "\n"


def blocklist_text(answers: ProxyAnswers) -> str:
    return "".join(f"{name}\n" for name in answers.blocklist())


_PORT_LINE = re.compile(r"^\s*https?_port\s+(?:\S*:)?(\d+)", re.MULTILINE)
_FILE_REF = re.compile(r'"(/[^"]+)"')


def problems(conf: str, files: set[str]) -> list[str]:
    """What ``squid -k parse`` lets through (it exits 0 on these): a port given twice, and an
    ACL file that will not exist (``files``: the paths that will)."""
    found = []
    ports = _PORT_LINE.findall(conf)
    for port in sorted({p for p in ports if ports.count(p) > 1}):
        found.append(f"port {port} is given to squid twice")
    for line in conf.splitlines():
        if line.lstrip().startswith("acl"):
            found += [f"{path} (named in squid.conf) will not exist"
                      for path in _FILE_REF.findall(line) if path not in files]  # fmt: skip
    return found
