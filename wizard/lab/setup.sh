#!/bin/sh
# PID 1 of a new practice host, in its own mount, UTS, IPC, PID and cgroup namespaces (and its
# own network namespace). Builds the host's view of the file system, then becomes
# `tini -- sleep infinity`: tini reaps orphans, and killing it ends every process of the host.
#
# Everything mounted here lives in the host's private mount namespace only. Writes to /etc,
# /var, /srv, /home, /root and /usr/local land in overlay upper dirs on the host's tmpfs "disk"
# (steps install scripts in /usr/local/sbin); the rest of /usr comes straight from the machine,
# so whatever is installed there with apt is installed on the machine.
set -eu

name=$1
disk=$2
cgfile=$3
controllers=$(cut -d' ' -f1 "$cgfile")

mount -t proc -o nosuid,nodev,noexec proc /proc
echo "$name" >/proc/sys/kernel/hostname

for d in etc var srv home root usr/local; do
    [ -d "/$d" ] || continue
    mkdir -p "$disk/$d/upper" "$disk/$d/work"
    # Upper and work dirs sit on the disk tmpfs, outside every overlaid tree: the kernel
    # refuses layers that overlap.
    mount -t overlay "hwlab-$d" -o "lowerdir=/$d,upperdir=$disk/$d/upper,workdir=$disk/$d/work" "/$d"
done

if [ -c /dev/net/tun ]; then
    # The machine's node is 0600; a fresh VM's is 0666 (rootless Docker's slirp4netns opens it
    # as the user). Give the host its own node instead of changing the machine's.
    mkdir -p "$disk/dev"
    mknod -m 0666 "$disk/dev/tun" c 10 200
    mount --bind "$disk/dev/tun" /dev/net/tun
fi

if [ -e /usr/sbin/policy-rc.d ]; then
    # This machine's policy-rc.d (exit 101, as in Docker build containers) stops invoke-rc.d
    # from starting services. A fresh VM has none; /usr is shared, so hide it inside the host
    # behind an empty, non-executable file (invoke-rc.d only runs it when executable).
    : >"$disk/policy-rc.d"
    chmod 0644 "$disk/policy-rc.d"
    mount --bind "$disk/policy-rc.d" /usr/sbin/policy-rc.d
fi

# Our own pty instance, so sshd can hand out ptys and the host sees only its own.
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts /dev/pts
mount --bind /dev/pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev hwlab-shm /dev/shm

if [ "${HWLAB_PROTECT_SYSCTL:-0}" = 1 ]; then
    # Only net.* sysctls are per network namespace; everything else in /proc/sys is the
    # machine's kernel. Read-only except net.
    mount --bind /proc/sys /proc/sys
    mount --bind /proc/sys/net /proc/sys/net
    mount -o remount,bind,ro /proc/sys
fi

# Drop every mount inherited below /run before covering it: the copies of other hosts'
# /run/netns/* bind mounts would otherwise keep their network namespaces alive. The disk
# tmpfs goes too; the overlays keep their own references to it.
awk '$5 ~ "^/run/" { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
done
mount -t tmpfs -o mode=0755,nosuid,nodev hwlab-run /run
mkdir -m 1777 /run/lock
: >/run/utmp
mount -t tmpfs -o mode=1777,nosuid,nodev hwlab-tmp /tmp
mkdir -p /var/lib/docker
mount -t tmpfs -o mode=0710 hwlab-docker /var/lib/docker

# A fresh sysfs shows this network namespace's interfaces; cgroup v1 hierarchies on top,
# each rooted (through the cgroup namespace) at the host's own cgroup.
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup /sys/fs/cgroup
for ctl in $controllers; do
    mkdir "/sys/fs/cgroup/$ctl"
    mount -t cgroup -o "nosuid,nodev,noexec,$ctl" cgroup "/sys/fs/cgroup/$ctl"
    case $ctl in
    *,*)
        for part in $(echo "$ctl" | tr , ' '); do
            ln -s "$ctl" "/sys/fs/cgroup/$part"
        done
        ;;
    esac
done

cd /
exec /usr/bin/tini -- sleep infinity
