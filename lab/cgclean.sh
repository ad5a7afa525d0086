#!/bin/sh
# Removes a dead practice host's cgroups (recorded by launch.sh in STATE/cgroups), including
# whatever dockerd created below them. Run by `lab down` as
#   unshare --mount --propagation private sh cgclean.sh STATE
# so the hierarchies are mounted in a throwaway mount namespace, never on the machine.
# Exits non-zero when some cgroup could not be removed (still has tasks after the wait).
set -u

state=$1
[ -s "$state/cgroups" ] || exit 0
cg=$state/cgclean
mkdir -p "$cg"
mount -t tmpfs -o mode=0700 hwlab-cgclean "$cg" || exit 1
status=0
while read -r ctl rel; do
    case $rel in
    */hostwiz-lab-*) ;;
    *) continue ;; # never touch anything that is not a host's own cgroup
    esac
    mkdir "$cg/$ctl"
    case $ctl in
    cgroup2) mount -t cgroup2 cgroup2 "$cg/$ctl" || { status=1; continue; } ;;
    name=*) mount -t cgroup -o "none,$ctl" cgroup "$cg/$ctl" || { status=1; continue; } ;;
    *) mount -t cgroup -o "$ctl" cgroup "$cg/$ctl" || { status=1; continue; } ;;
    esac
    top=$cg/$ctl$rel
    case ",$ctl," in
    *,memory,*)
        # Reclaim the pages still charged to the host (its tmpfs files, page cache) now;
        # otherwise each removed memory cgroup lingers in the kernel until memory pressure.
        find "$top" -depth -name memory.force_empty -exec sh -c 'for f; do echo 0 >"$f"; done' sh {} + 2>/dev/null || true
        ;;
    esac
    tries=0
    # The kernel frees a cgroup only once its last task has fully exited: retry, bounded.
    while [ -d "$top" ] && [ $tries -lt 50 ]; do
        find "$top" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [ -d "$top" ] || break
        tries=$((tries + 1))
        sleep 0.1
    done
    [ -d "$top" ] && { echo "cgroup $ctl:$rel still in use" >&2; status=1; }
    umount "$cg/$ctl"
done <"$state/cgroups"

umount "$cg"
rmdir "$cg"
exit $status
