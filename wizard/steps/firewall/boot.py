"""Loading the rules, now and at every boot, and taking them away again.

One script, ``/usr/local/sbin/hostwiz-firewall start|stop``, is what both the apply and the
boot path run, so what was tested at apply time is exactly what runs at boot. It is started
before the network and before dockerd (a systemd oneshot ordered before ``network-pre.target``
where systemd runs, an init script elsewhere), and it creates DOCKER-USER itself, so container
traffic is filtered from the first packet: the host fails closed, not open.
"""

from __future__ import annotations

from wizard.host.boot import BootPath, init_text, unit_text
from wizard.host.rules_shell import stop_family_function

RULES_DIR = "/etc/hostwiz/firewall"
RULES_V4 = f"{RULES_DIR}/rules.v4"
RULES_V6 = f"{RULES_DIR}/rules.v6"
RULES_NFT = f"{RULES_DIR}/rules.nft"
SCRIPT = "/usr/local/sbin/hostwiz-firewall"
UNIT = "/etc/systemd/system/hostwiz-firewall.service"
UNIT_LINK = "/etc/systemd/system/multi-user.target.wants/hostwiz-firewall.service"
INIT_SCRIPT = "/etc/init.d/hostwiz-firewall"
SYSCTL = "/etc/sysctl.d/60-hostwiz-forwarding.conf"

JUMPS = (
    "filter:INPUT:HOSTWIZ-INPUT",
    "filter:FORWARD:HOSTWIZ-FORWARD",
    "filter:DOCKER-USER:HOSTWIZ-FORWARD",
    "nat:POSTROUTING:HOSTWIZ-POSTROUTING",
)
"""The jumps to hostwiz's chains the script adds (TABLE:CHAIN:TARGET)."""

BARE_DOCKER_USER = (
    "  # DOCKER-USER as the start path made it (RETURN only) that nothing jumps to (no dockerd)\n"
    + r"""  if [ "$("$cmd" -w -S DOCKER-USER 2>/dev/null | tr '\n' ' ')" = \
       "-N DOCKER-USER -A DOCKER-USER -j RETURN " ] &&
     ! "$cmd-save" -t filter 2>/dev/null | grep -q -e '-j DOCKER-USER'; then
    "$cmd" -w -F DOCKER-USER && "$cmd" -w -X DOCKER-USER
  fi
"""
)
"""Removes DOCKER-USER when hostwiz's start path made it and no dockerd uses it."""

STOP_FUNCTIONS = (
    stop_family_function(
        "hw_stop_family", JUMPS, "HOSTWIZ-", ("filter", "nat"), extra=BARE_DOCKER_USER
    )
    + """hw_stop_nft() {
  command -v nft >/dev/null 2>&1 && nft delete table inet hostwiz 2>/dev/null
  return 0
}
"""
)
"""Shell functions that remove everything of hostwiz's (used by ``stop`` and by undo scripts,
which must work after the script itself was removed)."""

SCRIPT_TEXT = (
    r"""#!/bin/sh
# hostwiz firewall zones: start loads hostwiz's rules, stop removes them. Written by hostwiz.
# Run at boot before the network and dockerd; also what hostwiz runs when applying a change.
set -u
DIR=/etc/hostwiz/firewall
"""
    + STOP_FUNCTIONS
    + r"""
hw_jump() {  # cmd table chain target: make sure chain jumps to target (first, when added)
  "$1" -w -t "$2" -C "$3" -j "$4" 2>/dev/null || "$1" -w -t "$2" -I "$3" 1 -j "$4"
}
hw_start_family() {  # cmd rules-file
  cmd=$1 file=$2
  [ -f "$file" ] || { hw_stop_family "$cmd"; return 0; }
  "$cmd-restore" -w --noflush < "$file" || { echo "hostwiz-firewall: $file failed" >&2; return 1; }
  # DOCKER-USER is Docker's hook for user rules, consulted before its own FORWARD rules.
  # Creating it here means the zones filter container traffic even before dockerd starts.
  "$cmd" -w -N DOCKER-USER 2>/dev/null
  "$cmd" -w -C DOCKER-USER -j RETURN 2>/dev/null || "$cmd" -w -A DOCKER-USER -j RETURN
  hw_jump "$cmd" filter DOCKER-USER HOSTWIZ-FORWARD || return 1
  hw_jump "$cmd" filter INPUT HOSTWIZ-INPUT || return 1
  hw_jump "$cmd" filter FORWARD HOSTWIZ-FORWARD || return 1
  for table in filter nat; do  # chains an older version of the rules had
    for chain in $("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(HOSTWIZ-[^ ]*\).*/\1/p'); do
      grep -q "^:$chain " "$file" && continue
      [ "$chain" = HOSTWIZ-POSTROUTING ] && "$cmd" -w -t nat -D POSTROUTING -j "$chain" 2>/dev/null
      "$cmd" -w -t "$table" -F "$chain" && "$cmd" -w -t "$table" -X "$chain"
    done
  done
  if grep -q '^:HOSTWIZ-POSTROUTING ' "$file"; then
    hw_jump "$cmd" nat POSTROUTING HOSTWIZ-POSTROUTING || return 1
  fi
}
hw_forwarding() {
  [ -f /etc/sysctl.d/60-hostwiz-forwarding.conf ] || return 0
  sysctl -q -p /etc/sysctl.d/60-hostwiz-forwarding.conf >/dev/null
}
case "${1:-}" in
  start)
    if [ -f "$DIR/rules.nft" ]; then  # load the table first: never a moment without rules
      nft -f "$DIR/rules.nft" || exit 1
      hw_stop_family iptables; hw_stop_family ip6tables
    else
      hw_start_family iptables "$DIR/rules.v4" || exit 1
      hw_start_family ip6tables "$DIR/rules.v6" || exit 1
      hw_stop_nft
    fi
    hw_forwarding ;;
  stop)
    hw_stop_family iptables; hw_stop_family ip6tables; hw_stop_nft ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
"""
)

BOOT = BootPath(
    name="hostwiz-firewall",
    script=SCRIPT,
    comment="load the firewall zones before the network and Docker come up.",
    description="hostwiz firewall zones",
    short="hostwiz firewall zones (before the network and Docker)",
    status="iptables -w -n -L HOSTWIZ-INPUT >/dev/null 2>&1 ||\n"
    "          nft list table inet hostwiz >/dev/null 2>&1 ;;",
    wants=("network-pre.target",),
    before=("docker.service",),
    start_before=("networking", "docker"),
    stop_comment="keep filtering while the host goes down",
)
UNIT_TEXT = unit_text(BOOT)
INIT_TEXT = init_text(BOOT)


def undo_load_script() -> str:
    """Undo of loading the rules, run after the snapshot put the files back: load the old
    rules if there were any, else remove every hostwiz chain and jump (self-contained)."""
    return (
        f"if [ -x {SCRIPT} ] && {{ [ -f {RULES_V4} ] || [ -f {RULES_NFT} ]; }}; then\n"
        f"  {SCRIPT} start\nelse\n"
        + "".join(f"  {line}\n" for line in STOP_FUNCTIONS.splitlines())
        + "  hw_stop_family iptables; hw_stop_family ip6tables; hw_stop_nft\nfi"
    )


def sysctl_text(wan_interfaces: tuple[str, ...]) -> str:
    lines = [
        "# Written by hostwiz (firewall zones): this host routes between its zones.",
        "net.ipv4.ip_forward = 1",
        "net.ipv6.conf.all.forwarding = 1",
        "# A router ignores IPv6 router advertisements unless told otherwise: keep taking the",
        "# internet side's default route from them.",
        *(f"net.ipv6.conf.{name}.accept_ra = 2" for name in wan_interfaces),
    ]
    return "\n".join(lines) + "\n"
