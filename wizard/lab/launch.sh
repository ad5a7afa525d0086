#!/bin/sh
# Machine side of a new practice host. Started by wizard.lab as
#   nsenter --net=/run/netns/NAME unshare --mount --propagation private sh launch.sh NAME STATE
# so it already runs in the host's network namespace and in a fresh, private mount namespace.
#
# 1. Mounts the host's "disk": a tmpfs on STATE/disk, visible only in this mount namespace
#    (the machine keeps seeing an empty directory). The overlays' upper dirs live there.
# 2. Gives the host its own cgroup, hostwiz-lab-NAME, below our current cgroup in each cgroup
#    v1 hierarchy the machine has mounted, and moves itself in. The host later gets a cgroup
#    namespace rooted there, so dockerd inside creates its container cgroups under it and
#    `lab down` can remove the whole subtree (a killed dockerd never cleans up its cgroups).
#    The hierarchies are mounted on a throwaway tmpfs here; the machine's own /sys/fs/cgroup
#    is never touched. STATE/cgroups records "CONTROLLERS PATH" lines for setup.sh and
#    cgclean.sh.
#    Controllers the machine leaves to cgroup v2 (hierarchy 0 in /proc/cgroups, such as
#    net_cls here) are left alone on purpose: binding one to a new v1 hierarchy is a
#    machine-wide change, and such a hierarchy outlives the host for as long as the kernel
#    keeps a removed child cgroup around (seconds, with lazy RCU).
# 3. Execs unshare for the remaining namespaces; its child (PID 1 of the host) runs setup.sh.
set -eu

name=$1
state=$2
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
groups=$(awk -v enabled="$enabled" '
    BEGIN { n = split(enabled, e, " "); for (i = 1; i <= n; i++) ok[e[i]] = 1 }
    {
        for (i = 1; i <= NF; i++) if ($i == "-") break
        if ($(i + 1) != "cgroup") next
        n = split($(i + 3), o, ","); g = ""
        for (j = 1; j <= n; j++) if (o[j] in ok) g = (g == "" ? o[j] : g "," o[j])
        if (g != "" && !(g in seen)) { seen[g] = 1; print g }
    }' /proc/self/mountinfo)
for ctl in $groups; do
    mkdir "$cg/$ctl"
    mount -t cgroup -o "$ctl" cgroup "$cg/$ctl"
    first=${ctl%%,*}
    cur=$(awk -F: -v c="$first" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
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

exec unshare --uts --ipc --pid --cgroup --fork /bin/sh "$here/setup.sh" "$name" "$disk" "$state/cgroups"
