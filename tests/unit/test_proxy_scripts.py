"""The proxy step's rules scripts and the undo scripts built from their stop functions
(wizard.steps.proxy.rules and .route): what a host holds is compared byte for byte with what
hostwiz would write, and an undo script must keep working as the texts it was planned with, so
the generators must keep producing exactly these texts (kept here as they were)."""

from __future__ import annotations

from wizard.steps.proxy import route, rules

# The texts as the proxy step wrote them before its scripts shared their shell functions
# (plus, in the rules script, the proxy host's sysctl load at start, a deliberate change).
RULES_SCRIPT = r"""#!/bin/sh
# hostwiz web proxy: start loads the rules that send the clients' web traffic to squid,
# stop removes them. Written by hostwiz; run at boot and when hostwiz applies a change.
set -u
DIR=/etc/hostwiz/proxy
SYSCTL=/etc/sysctl.d/61-hostwiz-proxy.conf
hwp_stop_family() {
  cmd=$1
  command -v "$cmd" >/dev/null 2>&1 || return 0
  for spec in mangle:INPUT:HWPROXY-INPUT nat:PREROUTING:HWPROXY-PREROUTING \
              filter:INPUT:HWPROXY-INPUT; do
    table=${spec%%:*} rest=${spec#*:}
    chain=${rest%%:*} target=${rest#*:}
    for i in 1 2 3 4 5 6 7 8; do
      "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
    done
  done
  for table in mangle nat filter; do
    chains=$("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(HWPROXY-[^ ]*\).*/\1/p')
    for chain in $chains; do "$cmd" -w -t "$table" -F "$chain"; done
    for chain in $chains; do "$cmd" -w -t "$table" -X "$chain"; done
  done
  return 0
}
hwp_first() {  # cmd table chain target: chain's first rule jumps to target
  first=$("$1" -w -t "$2" -S "$3" 2>/dev/null | sed -n 2p)
  [ "$first" = "-A $3 -j $4" ] && return 0
  while "$1" -w -t "$2" -D "$3" -j "$4" 2>/dev/null; do :; done
  "$1" -w -t "$2" -I "$3" 1 -j "$4"
}
hwp_start_family() {  # cmd rules-file
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
RULES_UNDO_LOAD = r"""if [ -x /usr/local/sbin/hostwiz-proxy ] && [ -f /etc/hostwiz/proxy/rules.v4 ]; then
  /usr/local/sbin/hostwiz-proxy start
else
  hwp_stop_family() {
    cmd=$1
    command -v "$cmd" >/dev/null 2>&1 || return 0
    for spec in mangle:INPUT:HWPROXY-INPUT nat:PREROUTING:HWPROXY-PREROUTING \
                filter:INPUT:HWPROXY-INPUT; do
      table=${spec%%:*} rest=${spec#*:}
      chain=${rest%%:*} target=${rest#*:}
      for i in 1 2 3 4 5 6 7 8; do
        "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
      done
    done
    for table in mangle nat filter; do
      chains=$("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(HWPROXY-[^ ]*\).*/\1/p')
      for chain in $chains; do "$cmd" -w -t "$table" -F "$chain"; done
      for chain in $chains; do "$cmd" -w -t "$table" -X "$chain"; done
    done
    return 0
  }
  hwp_stop_family iptables; hwp_stop_family ip6tables
fi"""
ROUTE_SCRIPT = r"""#!/bin/sh
# hostwiz web proxy on another host: start marks the clients' web traffic and routes it to
# the proxy host, stop removes that. Written by hostwiz; run at boot once the network is up,
# and when hostwiz applies a change.
set -u
DIR=/etc/hostwiz/proxy-route
hwpr_stop() {  # mark table: remove every rule, route and chain of it
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for spec in mangle:PREROUTING:HWPROXYRT-MARK filter:FORWARD:HWPROXYRT-FORWARD \
                filter:DOCKER-USER:HWPROXYRT-FORWARD; do
      table=${spec%%:*} rest=${spec#*:}
      chain=${rest%%:*} target=${rest#*:}
      for i in 1 2 3 4 5 6 7 8; do
        "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
      done
    done
    for spec in mangle:HWPROXYRT-MARK filter:HWPROXYRT-FORWARD; do
      "$cmd" -w -t "${spec%%:*}" -F "${spec#*:}" 2>/dev/null
      "$cmd" -w -t "${spec%%:*}" -X "${spec#*:}" 2>/dev/null
    done
  done
  for family in -4 -6; do
    for i in 1 2 3 4 5 6 7 8; do
      ip "$family" rule del fwmark "$1" table "$2" pref 30000 2>/dev/null || break
    done
    ip "$family" route flush table "$2" 2>/dev/null
  done
  return 0
}
hwpr_first() {  # cmd table chain target: chain's first rule jumps to target
  first=$("$1" -w -t "$2" -S "$3" 2>/dev/null | sed -n 2p)
  [ "$first" = "-A $3 -j $4" ] && return 0
  while "$1" -w -t "$2" -D "$3" -j "$4" 2>/dev/null; do :; done
  "$1" -w -t "$2" -I "$3" 1 -j "$4"
}
hwpr_family() {  # cmd rules-file
  "$1-restore" -w --noflush < "$2" || { echo "hostwiz-proxy-route: $2 failed" >&2; return 1; }
  hwpr_first "$1" mangle PREROUTING HWPROXYRT-MARK || return 1
  hwpr_first "$1" filter FORWARD HWPROXYRT-FORWARD || return 1
  if "$1" -w -n -L DOCKER-USER >/dev/null 2>&1; then  # Docker's chain: its FORWARD drops
    hwpr_first "$1" filter DOCKER-USER HWPROXYRT-FORWARD || return 1
  fi
}
hwpr_route() {  # family proxy: the table's default route to the proxy, and the mark's rule
  while ip "$1" rule del fwmark "$MARK" table "$TABLE" pref 30000 2>/dev/null; do :; done
  ip "$1" route flush table "$TABLE" 2>/dev/null
  [ -n "$2" ] || return 0
  ip "$1" route replace default via "$2" table "$TABLE" || return 1
  ip "$1" rule add fwmark "$MARK" table "$TABLE" pref 30000
}
[ -f "$DIR/routing" ] || { echo "hostwiz-proxy-route: $DIR/routing is missing" >&2; exit 1; }
. "$DIR/routing"
case "${1:-}" in
  start)
    [ -f /etc/sysctl.d/61-hostwiz-proxy-route.conf ] && sysctl -q -p /etc/sysctl.d/61-hostwiz-proxy-route.conf >/dev/null
    hwpr_route -4 "$PROXY4" || exit 1
    hwpr_route -6 "$PROXY6" || exit 1
    hwpr_family iptables "$DIR/rules.v4" || exit 1
    hwpr_family ip6tables "$DIR/rules.v6" || exit 1 ;;
  stop)
    hwpr_stop "$MARK" "$TABLE" ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
"""
ROUTE_STOP = r"""hwpr_stop() {  # mark table: remove every rule, route and chain of it
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for spec in mangle:PREROUTING:HWPROXYRT-MARK filter:FORWARD:HWPROXYRT-FORWARD \
                filter:DOCKER-USER:HWPROXYRT-FORWARD; do
      table=${spec%%:*} rest=${spec#*:}
      chain=${rest%%:*} target=${rest#*:}
      for i in 1 2 3 4 5 6 7 8; do
        "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
      done
    done
    for spec in mangle:HWPROXYRT-MARK filter:HWPROXYRT-FORWARD; do
      "$cmd" -w -t "${spec%%:*}" -F "${spec#*:}" 2>/dev/null
      "$cmd" -w -t "${spec%%:*}" -X "${spec#*:}" 2>/dev/null
    done
  done
  for family in -4 -6; do
    for i in 1 2 3 4 5 6 7 8; do
      ip "$family" rule del fwmark "$1" table "$2" pref 30000 2>/dev/null || break
    done
    ip "$family" route flush table "$2" 2>/dev/null
  done
  return 0
}
hwpr_stop 2 2"""
ROUTE_UNDO_LOAD = r"""hwpr_stop() {  # mark table: remove every rule, route and chain of it
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for spec in mangle:PREROUTING:HWPROXYRT-MARK filter:FORWARD:HWPROXYRT-FORWARD \
                filter:DOCKER-USER:HWPROXYRT-FORWARD; do
      table=${spec%%:*} rest=${spec#*:}
      chain=${rest%%:*} target=${rest#*:}
      for i in 1 2 3 4 5 6 7 8; do
        "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
      done
    done
    for spec in mangle:HWPROXYRT-MARK filter:HWPROXYRT-FORWARD; do
      "$cmd" -w -t "${spec%%:*}" -F "${spec#*:}" 2>/dev/null
      "$cmd" -w -t "${spec%%:*}" -X "${spec#*:}" 2>/dev/null
    done
  done
  for family in -4 -6; do
    for i in 1 2 3 4 5 6 7 8; do
      ip "$family" rule del fwmark "$1" table "$2" pref 30000 2>/dev/null || break
    done
    ip "$family" route flush table "$2" 2>/dev/null
  done
  return 0
}
hwpr_stop 7 100
if [ -x /usr/local/sbin/hostwiz-proxy-route ] && [ -f /etc/hostwiz/proxy-route/routing ]; then /usr/local/sbin/hostwiz-proxy-route start; fi"""


def test_squid_on_the_router_script_and_its_undo_are_byte_identical_to_what_hosts_hold() -> None:
    assert rules.SCRIPT_TEXT == RULES_SCRIPT
    assert rules.undo_load_script() == RULES_UNDO_LOAD


def test_the_routing_script_and_its_stop_and_undo_are_byte_identical_to_what_hosts_hold() -> None:
    assert route.SCRIPT_TEXT == ROUTE_SCRIPT
    assert route.stop_script(2, 2) == ROUTE_STOP
    assert route.undo_load_script(7, 100) == ROUTE_UNDO_LOAD
