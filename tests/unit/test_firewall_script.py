"""The firewall step's rules script and the undo script built from its stop functions
(wizard.steps.firewall.boot): what a host holds is compared byte for byte with what hostwiz
would write, so the generator must keep producing exactly these texts (kept here as they were)."""

from __future__ import annotations

from wizard.steps.firewall import boot

# The texts as the firewall step wrote them before its stop function was shared.
SCRIPT = r"""#!/bin/sh
# hostwiz firewall zones: start loads hostwiz's rules, stop removes them. Written by hostwiz.
# Run at boot before the network and dockerd; also what hostwiz runs when applying a change.
set -u
DIR=/etc/hostwiz/firewall
hw_stop_family() {
  cmd=$1
  command -v "$cmd" >/dev/null 2>&1 || return 0
  for spec in filter:INPUT:HOSTWIZ-INPUT filter:FORWARD:HOSTWIZ-FORWARD \
              filter:DOCKER-USER:HOSTWIZ-FORWARD nat:POSTROUTING:HOSTWIZ-POSTROUTING; do
    table=${spec%%:*} rest=${spec#*:}
    chain=${rest%%:*} target=${rest#*:}
    for i in 1 2 3 4 5 6 7 8; do
      "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
    done
  done
  for table in filter nat; do
    chains=$("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(HOSTWIZ-[^ ]*\).*/\1/p')
    for chain in $chains; do "$cmd" -w -t "$table" -F "$chain"; done
    for chain in $chains; do "$cmd" -w -t "$table" -X "$chain"; done
  done
  # DOCKER-USER as the start path made it (RETURN only) that nothing jumps to (no dockerd)
  if [ "$("$cmd" -w -S DOCKER-USER 2>/dev/null | tr '\n' ' ')" = \
       "-N DOCKER-USER -A DOCKER-USER -j RETURN " ] &&
     ! "$cmd-save" -t filter 2>/dev/null | grep -q -e '-j DOCKER-USER'; then
    "$cmd" -w -F DOCKER-USER && "$cmd" -w -X DOCKER-USER
  fi
  return 0
}
hw_stop_nft() {
  command -v nft >/dev/null 2>&1 && nft delete table inet hostwiz 2>/dev/null
  return 0
}

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
UNDO_LOAD = r"""if [ -x /usr/local/sbin/hostwiz-firewall ] && { [ -f /etc/hostwiz/firewall/rules.v4 ] || [ -f /etc/hostwiz/firewall/rules.nft ]; }; then
  /usr/local/sbin/hostwiz-firewall start
else
  hw_stop_family() {
    cmd=$1
    command -v "$cmd" >/dev/null 2>&1 || return 0
    for spec in filter:INPUT:HOSTWIZ-INPUT filter:FORWARD:HOSTWIZ-FORWARD \
                filter:DOCKER-USER:HOSTWIZ-FORWARD nat:POSTROUTING:HOSTWIZ-POSTROUTING; do
      table=${spec%%:*} rest=${spec#*:}
      chain=${rest%%:*} target=${rest#*:}
      for i in 1 2 3 4 5 6 7 8; do
        "$cmd" -w -t "$table" -D "$chain" -j "$target" 2>/dev/null || break
      done
    done
    for table in filter nat; do
      chains=$("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(HOSTWIZ-[^ ]*\).*/\1/p')
      for chain in $chains; do "$cmd" -w -t "$table" -F "$chain"; done
      for chain in $chains; do "$cmd" -w -t "$table" -X "$chain"; done
    done
    # DOCKER-USER as the start path made it (RETURN only) that nothing jumps to (no dockerd)
    if [ "$("$cmd" -w -S DOCKER-USER 2>/dev/null | tr '\n' ' ')" = \
         "-N DOCKER-USER -A DOCKER-USER -j RETURN " ] &&
       ! "$cmd-save" -t filter 2>/dev/null | grep -q -e '-j DOCKER-USER'; then
      "$cmd" -w -F DOCKER-USER && "$cmd" -w -X DOCKER-USER
    fi
    return 0
  }
  hw_stop_nft() {
    command -v nft >/dev/null 2>&1 && nft delete table inet hostwiz 2>/dev/null
    return 0
  }
  hw_stop_family iptables; hw_stop_family ip6tables; hw_stop_nft
fi"""


def test_the_firewall_script_and_its_undo_are_byte_identical_to_what_hosts_hold() -> None:
    assert boot.SCRIPT_TEXT == SCRIPT
    assert boot.undo_load_script() == UNDO_LOAD
