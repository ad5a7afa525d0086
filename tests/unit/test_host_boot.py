"""The boot path's unit and init script (wizard.host.boot): the texts hosts applied before hold
are compared byte for byte, so the generator must produce exactly the texts each step wrote
before it existed (kept here as they were)."""

from __future__ import annotations

from wizard.steps.firewall import boot as firewall_boot
from wizard.steps.proxy import rules as proxy_rules

# The texts as the firewall and proxy steps wrote them before the shared generator.
FIREWALL_UNIT = """# Written by hostwiz: load the firewall zones before the network and Docker come up.
[Unit]
Description=hostwiz firewall zones
DefaultDependencies=no
After=local-fs.target
Wants=network-pre.target
Before=network-pre.target docker.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/hostwiz-firewall start

[Install]
WantedBy=multi-user.target
"""
FIREWALL_INIT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          hostwiz-firewall
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    networking docker
# Default-Start:     S
# Default-Stop:
# Short-Description: hostwiz firewall zones (before the network and Docker)
### END INIT INFO
# Written by hostwiz.
case "$1" in
  start|restart|reload|force-reload) exec /usr/local/sbin/hostwiz-firewall start ;;
  stop) exit 0 ;;  # keep filtering while the host goes down
  status) iptables -w -n -L HOSTWIZ-INPUT >/dev/null 2>&1 ||
          nft list table inet hostwiz >/dev/null 2>&1 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
"""
PROXY_UNIT = """# Written by hostwiz: load the web proxy's rules at boot, before squid and Docker.
[Unit]
Description=hostwiz web proxy rules
DefaultDependencies=no
After=local-fs.target hostwiz-firewall.service
Before=network-pre.target squid.service docker.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/hostwiz-proxy start

[Install]
WantedBy=multi-user.target
"""
PROXY_INIT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          hostwiz-proxy
# Required-Start:    $local_fs
# Should-Start:      hostwiz-firewall
# Required-Stop:
# X-Start-Before:    networking squid docker
# Default-Start:     S
# Default-Stop:
# Short-Description: hostwiz web proxy rules (before squid and Docker)
### END INIT INFO
# Written by hostwiz.
case "$1" in
  start|restart|reload|force-reload) exec /usr/local/sbin/hostwiz-proxy start ;;
  stop) exit 0 ;;
  status) iptables -w -t nat -n -L HWPROXY-PREROUTING >/dev/null 2>&1 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
"""


def test_the_firewall_boot_path_is_byte_identical_to_what_hosts_hold() -> None:
    assert firewall_boot.UNIT_TEXT == FIREWALL_UNIT
    assert firewall_boot.INIT_TEXT == FIREWALL_INIT


def test_the_proxy_boot_path_is_byte_identical_to_what_hosts_hold() -> None:
    assert proxy_rules.UNIT_TEXT == PROXY_UNIT
    assert proxy_rules.INIT_TEXT == PROXY_INIT
