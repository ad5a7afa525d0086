#!/bin/sh
# Machine side of a practice host, and its "power supply". Started by lab as
#   nsenter --net=/run/netns/NAME unshare --mount --propagation private sh launch.sh NAME STATE INIT
# so it already runs in the host's network namespace and in a fresh, private mount namespace.
# It stays alive for the host's whole life (it is the host's recorded launcher):
#
# 1. Mounts the host's "disk": a tmpfs on STATE/disk, visible only in this mount namespace
#    (the machine keeps seeing an empty directory). The overlays' upper dirs live there, so
#    they outlive a reboot of the host and go with this process.
# 2. Gives the host its own cgroup, hostwiz-lab-NAME, below our current cgroup in each cgroup
#    v1 hierarchy the machine has mounted, and moves itself in. The host later gets a cgroup
#    namespace rooted there, so dockerd (and systemd) inside create their cgroups under it and
#    `lab down` can remove the whole subtree (a killed dockerd never cleans up its cgroups).
#    The hierarchies are mounted on a throwaway tmpfs here; the machine's own /sys/fs/cgroup
#    is never touched. STATE/cgroups records "CONTROLLERS PATH" lines for setup.sh and
#    cgclean.sh. The named hierarchy name=systemd (what systemd as PID 1 tracks its units in)
#    is included when the machine has it mounted already, never created.
#    Controllers the machine leaves to cgroup v2 (hierarchy 0 in /proc/cgroups, such as
#    net_cls here) are left alone on purpose: binding one to a new v1 hierarchy is a
#    machine-wide change, and such a hierarchy outlives the host for as long as the kernel
#    keeps a removed child cgroup around (seconds, with lazy RCU).
# 3. Boots the host: unshare for the remaining namespaces (a fresh mount namespace per boot,
#    copied from this one), whose child is the host's PID 1 running setup.sh. When that PID 1
#    ends, the host is off; if STATE/reboot exists (`lab reboot`) or PID 1 ended the way a
#    reboot(2) inside a PID namespace ends it (SIGHUP: `systemctl reboot`, `reboot`), it is
#    reset like a powered-off machine (the kernel's firewall rules and the links the host
#    made itself are gone, forwarding is as at the first boot) and booted again.
set -eu

name=$1
state=$2
init=${3:-sysv}
here=$(dirname "$0")
disk=$state/disk

mount -t tmpfs -o mode=0755 hwlab-disk "$disk"

cg=$disk/.cgroup-setup
mkdir "$cg"
mount -t tmpfs -o mode=0700 hwlab-cg "$cg"
: >"$state/cgroups.tmp"
# The machine's cgroup v1 mounts (our mount namespace is still a copy of the machine's): one
# line per hierarchy with its controllers, "cpu,cpuacct" on machines that co-mount them.
enabled=$(awk '!/^#/ && $4 == 1 { printf "%s ", $1 }' /proc/cgroups)
# systemd's own named hierarchy, only where the machine mounted it (never a new hierarchy).
grep -q ' - cgroup [^ ]* [^ ]*name=systemd' /proc/self/mountinfo && enabled="${enabled}name=systemd"
groups=$(awk -v enabled="$enabled" '
    BEGIN { n = split(enabled, e, " "); for (i = 1; i <= n; i++) ok[e[i]] = 1 }
    {
        for (i = 1; i <= NF; i++) if ($i == "-") break
        if ($(i + 1) != "cgroup") next
        n = split($(i + 3), o, ","); g = ""
        for (j = 1; j <= n; j++) if (o[j] in ok) g = (g == "" ? o[j] : g "," o[j])
        if (g != "" && !(g in seen)) { seen[g] = 1; print g }
    }' /proc/self/mountinfo)
# The cgroup v2 hierarchy too, where the machine has it mounted (hybrid set-ups): systemd
# inside tracks its units there, and must do so below the host's own cgroup, not in the
# machine's root.
grep -q ' - cgroup2 ' /proc/self/mountinfo && groups="$groups cgroup2"
for ctl in $groups; do
    mkdir "$cg/$ctl"
    case $ctl in
    cgroup2) mount -t cgroup2 cgroup2 "$cg/$ctl" ;;
    name=*) mount -t cgroup -o "none,$ctl" cgroup "$cg/$ctl" ;;
    *) mount -t cgroup -o "$ctl" cgroup "$cg/$ctl" ;;
    esac
    first=${ctl%%,*}
    [ "$ctl" = cgroup2 ] && first=""
    cur=$(awk -F: -v c="$first" '$1 == 0 && c == "" { print $3 } c != "" { n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
    cur=${cur%/}
    rel=$cur/hostwiz-lab-$name
    dir=$cg/$ctl$rel
    mkdir -p "$dir"
    case ",$ctl," in
    *,cpuset,*)
        # A new cpuset cgroup starts with no CPUs and no memory nodes; tasks cannot join it.
        cat "$cg/$ctl$cur/cpuset.cpus" >"$dir/cpuset.cpus"
        cat "$cg/$ctl$cur/cpuset.mems" >"$dir/cpuset.mems"
        ;;
    esac
    echo $$ >"$dir/cgroup.procs"
    echo "$ctl $rel" >>"$state/cgroups.tmp"
    umount "$cg/$ctl"
    rmdir "$cg/$ctl"
done
umount "$cg"
rmdir "$cg"
mv "$state/cgroups.tmp" "$state/cgroups"

# Drop the copies of the machine's mounts below /run (other hosts' /run/netns/* bind mounts
# would keep their network namespaces alive as long as this process lives); keep our disk.
awk -v keep="$disk" '$5 ~ "^/run/" && $5 != keep { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do
        case $disk/ in "$m"/*) continue ;; esac
        umount -l "$m" 2>/dev/null || true
    done

# What a power cycle leaves: the links the lab made (eth0, topology interfaces) and forwarding.
links=$(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | tr '\n' ' ')
forward4=$(cat /proc/sys/net/ipv4/ip_forward)
forward6=$(cat /proc/sys/net/ipv6/conf/all/forwarding)

power_cycle() {
    # Only inside this host's network namespace: its own rules, links and net.* sysctls.
    nft flush ruleset 2>/dev/null || true
    for cmd in iptables-legacy ip6tables-legacy; do
        # Only where legacy tables were loaded (a flush would load them).
        case $cmd in ip6*) names=/proc/net/ip6_tables_names ;; *) names=/proc/net/ip_tables_names ;; esac
        [ -s $names ] && command -v $cmd >/dev/null 2>&1 || continue
        for table in filter nat mangle raw; do
            $cmd -w -t $table -F 2>/dev/null; $cmd -w -t $table -X 2>/dev/null
        done
        for chain in INPUT FORWARD OUTPUT; do $cmd -w -P $chain ACCEPT 2>/dev/null; done
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        case " $links " in *" $link "*) ;; *) ip link del "$link" 2>/dev/null || true ;; esac
    done
    echo "$forward4" >/proc/sys/net/ipv4/ip_forward
    echo "$forward6" >/proc/sys/net/ipv6/conf/all/forwarding
}

boots=0
while [ $boots -lt 1000 ]; do
    boots=$((boots + 1))
    status=0
    unshare --mount --propagation private --uts --ipc --pid --cgroup --fork --kill-child \
        /bin/sh "$here/setup.sh" "$name" "$disk" "$state/cgroups" "$init" "$state" || status=$?
    if [ -e "$state/reboot" ] || [ $status = 129 ]; then
        rm -f "$state/reboot"
        echo "hostwiz-lab: $name rebooting (boot $((boots + 1)))"
        power_cycle
        continue
    fi
    echo "hostwiz-lab: $name is off (PID 1 ended with status $status)"
    exit $status
done
