"""The proxy's packet rules on the router, and the script that loads them now and at boot.

With squid on the router itself, the clients' web traffic is taken with a REDIRECT::

    nat    HWPROXY-PREROUTING  traffic to the router's own addresses: RETURN (normal path);
                               from a client network on a client interface to a web port:
                               REDIRECT to the intercept port
    mangle HWPROXY-INPUT       to the intercept port but not redirected (a direct connection,
                               also from the router itself): DROP. squid 5.7 in intercept
                               mode stops accepting on that port after one failed
                               ORIGINAL_DST lookup, i.e. after any direct connection.
    filter HWPROXY-INPUT       redirected traffic from a client interface: ACCEPT (the
                               firewall's zones may drop the intercept port otherwise)

squid's own requests leave from the router (OUTPUT), which PREROUTING never sees: no loop.
No mark, routing table or rp_filter change is needed here, because the packets never leave the
router towards squid. Those are what the *proxy-host* placement (squid on another host) will
need: mark the web traffic in mangle PREROUTING (the proxy's own traffic excluded, written
``! -s PROXY``: iptables 1.8.9 refuses seed 000's ``-s ! PROXY``), ``ip rule fwmark MARK
table T`` with a default route via the proxy in T (IPv4 and IPv6), rp_filter 0 or 2 on the
interfaces involved, accepts in FORWARD and DOCKER-USER, and the REDIRECT on the proxy host.

The chains are called ``HWPROXY-*``, not ``HOSTWIZ-*``: the firewall step owns every
``HOSTWIZ-*`` chain (it compares them with its files and removes those it did not write).
Rules are written the way ``iptables-save`` prints them, so an empty plan means the kernel
holds exactly these rules.
"""

from __future__ import annotations

from wizard.host.boot import BootPath, init_text, unit_text
from wizard.host.iptables_save import parse_save
from wizard.host.rules_shell import first_jump_function, stop_family_function
from wizard.steps.proxy.answers import ProxyAnswers

PREFIX = "HWPROXY-"
PREROUTING = "HWPROXY-PREROUTING"
INPUT = "HWPROXY-INPUT"
JUMPS = (("mangle", "INPUT", INPUT), ("nat", "PREROUTING", PREROUTING), ("filter", "INPUT", INPUT))
"""(table, built-in chain, hostwiz's chain it jumps to first)."""

FIREWALL_RULES_V4 = "/etc/hostwiz/firewall/rules.v4"
"""The firewall step's rules (read, never written): its script puts its INPUT jump first when
the jump is missing, which would put hostwiz's zones before the proxy's accept. The proxy's
rules are loaded after it (at boot and in the same change), so its jumps stay first."""
FIREWALL_INPUT_JUMP = "-A INPUT -j HOSTWIZ-INPUT"

RULES_DIR = "/etc/hostwiz/proxy"
RULES_V4 = f"{RULES_DIR}/rules.v4"
RULES_V6 = f"{RULES_DIR}/rules.v6"
SCRIPT = "/usr/local/sbin/hostwiz-proxy"
UNIT = "/etc/systemd/system/hostwiz-proxy.service"
UNIT_LINK = "/etc/systemd/system/multi-user.target.wants/hostwiz-proxy.service"
INIT_SCRIPT = "/etc/init.d/hostwiz-proxy"
PROXY_SYSCTL = "/etc/sysctl.d/61-hostwiz-proxy.conf"
"""On a site's proxy host: rp_filter loose where the clients' traffic arrives. The script
loads it at start, as the firewall's script loads its forwarding switch: the boot's own
sysctl.d pass may run before the interface exists (sysv), or not at all."""


def render(answers: ProxyAnswers, networks: tuple[str, ...], version: int) -> str:
    """The restore file of one address family; ``networks`` are the client networks of it
    (none: this family's web traffic is not redirected, only the direct-connection guard)."""
    port = answers.intercept_port
    nat = [f"-A {PREROUTING} -m addrtype --dst-type LOCAL -j RETURN"]
    accept = []
    for name in answers.client_interfaces:
        for net in networks:
            for web in answers.web_ports:
                nat.append(
                    f"-A {PREROUTING} -s {net} -i {name} -p tcp -m tcp --dport {web} "
                    f"-j REDIRECT --to-ports {port}"
                )
        accept.append(
            f"-A {INPUT} -i {name} -p tcp -m tcp --dport {port} "
            "-m conntrack --ctstate DNAT -j ACCEPT"
        )
    guard = f"-A {INPUT} -p tcp -m tcp --dport {port} -m conntrack ! --ctstate DNAT -j DROP"
    family = "iptables" if version == 4 else "ip6tables"
    lines = [
        f"# Written by hostwiz (web proxy). Loaded with {family}-restore --noflush by",
        f"# {SCRIPT}: only the HWPROXY-* chains are replaced. Change it with hostwiz.",
        "*mangle", f":{INPUT} - [0:0]", guard, "COMMIT",
        "*nat", f":{PREROUTING} - [0:0]", *nat, "COMMIT",
        "*filter", f":{INPUT} - [0:0]", *accept, "COMMIT",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def ours(text: str) -> dict[str, dict[str, list[str]]]:
    """Only hostwiz's proxy chains (tables without any left out)."""
    result = {}
    for table, chains in parse_save(text).items():
        mine = {chain: rules for chain, rules in chains.items() if chain.startswith(PREFIX)}
        if mine:
            result[table] = mine
    return result


def live_problems(wanted: str, live: str) -> list[str]:
    """How the live rules differ from the file ([] when the kernel holds exactly them)."""
    want, have, everything = ours(wanted), ours(live), parse_save(live)
    problems = []
    for table in sorted(set(want) | set(have)):
        for chain in sorted(set(want.get(table, {})) | set(have.get(table, {}))):
            if chain not in have.get(table, {}):
                problems.append(f"chain {chain} ({table}) is not loaded")
            elif chain not in want.get(table, {}):
                problems.append(f"chain {chain} ({table}) is left over")
            elif have[table][chain] != want[table][chain]:
                problems.append(f"chain {chain} ({table}) has other rules than the file")
    for table, chain, target in JUMPS:
        rules = everything.get(table, {}).get(chain, [])
        if f"-A {chain} -j {target}" not in rules[:1] and table in want:
            problems.append(f"{chain} ({table}) does not jump to {target} first")
    return problems


def firewall_jumps_in_first(firewall_rules: str, live: str) -> bool:
    """Whether loading the firewall's rules will insert its INPUT jump at the top (it is not
    there yet), in front of the proxy's accept for redirected traffic."""
    wants = any(line.startswith(":HOSTWIZ-INPUT ") for line in firewall_rules.splitlines())
    return wants and FIREWALL_INPUT_JUMP not in parse_save(live).get("filter", {}).get("INPUT", [])


def loaded(live: str) -> bool:
    return bool(ours(live))


STOP_FUNCTIONS = stop_family_function(
    "hwp_stop_family", [":".join(jump) for jump in JUMPS], PREFIX, ("mangle", "nat", "filter")
)
"""Removes every rule of hostwiz's proxy (used by ``stop`` and by undo scripts, which must
work after the script itself is gone)."""

SCRIPT_TEXT = (
    r"""#!/bin/sh
# hostwiz web proxy: start loads the rules that send the clients' web traffic to squid,
# stop removes them. Written by hostwiz; run at boot and when hostwiz applies a change.
set -u
DIR=/etc/hostwiz/proxy
"""
    + f"SYSCTL={PROXY_SYSCTL}\n"
    + STOP_FUNCTIONS
    + first_jump_function("hwp_first")
    + r"""hwp_start_family() {  # cmd rules-file
  cmd=$1 file=$2
  [ -f "$file" ] || { hwp_stop_family "$cmd"; return 0; }
  "$cmd-restore" -w --noflush < "$file" || { echo "hostwiz-proxy: $file failed" >&2; return 1; }
  hwp_first "$cmd" mangle INPUT HWPROXY-INPUT || return 1
  hwp_first "$cmd" nat PREROUTING HWPROXY-PREROUTING || return 1
  hwp_first "$cmd" filter INPUT HWPROXY-INPUT || return 1
}
hwp_sysctl() {  # a site's proxy host: rp_filter loose (a missing interface is no failure)
  [ -f "$SYSCTL" ] || return 0
  sysctl -q -p "$SYSCTL" >/dev/null 2>&1 ||
    echo "hostwiz-proxy: $SYSCTL: not every value could be set" >&2
  return 0
}
case "${1:-}" in
  start)
    hwp_sysctl
    hwp_start_family iptables "$DIR/rules.v4" || exit 1
    hwp_start_family ip6tables "$DIR/rules.v6" || exit 1 ;;
  stop)
    hwp_stop_family iptables; hwp_stop_family ip6tables ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
"""
)

BOOT = BootPath(
    name="hostwiz-proxy",
    script=SCRIPT,
    comment="load the web proxy's rules at boot, before squid and Docker.",
    description="hostwiz web proxy rules",
    short="hostwiz web proxy rules (before squid and Docker)",
    status="iptables -w -t nat -n -L HWPROXY-PREROUTING >/dev/null 2>&1 ;;",
    after=("hostwiz-firewall.service",),
    before=("squid.service", "docker.service"),
    should_start=("hostwiz-firewall",),
    start_before=("networking", "squid", "docker"),
)
UNIT_TEXT = unit_text(BOOT)
INIT_TEXT = init_text(BOOT)


def undo_load_script() -> str:
    """Undo of loading the rules, run after the snapshot put the files back: load the old
    rules if there were any, else remove every rule of hostwiz's proxy (self-contained)."""
    return (
        f"if [ -x {SCRIPT} ] && [ -f {RULES_V4} ]; then\n  {SCRIPT} start\nelse\n"
        + "".join(f"  {line}\n" for line in STOP_FUNCTIONS.splitlines())
        + "  hwp_stop_family iptables; hwp_stop_family ip6tables\nfi"
    )
