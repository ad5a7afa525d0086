#!/bin/sh
# PID 1 of a practice host at each boot, in its own mount, UTS, IPC, PID and cgroup namespaces
# (and its own network namespace). Builds the host's view of the file system, provisions the
# host on its first boot (provision.sh: what cloud-init does on a VM), then becomes the host's
# init: systemd (INIT=systemd) or `tini -- sh -c BOOT` (INIT=sysv), which starts the services
# the way init scripts do at boot and then sleeps. Killing PID 1 ends every process of the host.
#
# Everything mounted here lives in the host's private mount namespace only. Writes to /etc,
# /var, /srv, /home, /root, /usr/local, /opt, /mnt and /media land in overlay upper dirs on the
# host's tmpfs "disk" (steps install scripts in /usr/local/sbin); the rest of the machine's
# root file system (/usr with what apt installed, the top level) is read-only in the host.
#
# What a booting system may clean or create is private to the host: /run, /tmp, /dev and
# /dev/shm are its own tmpfs, /sys is read-only (for systemd hosts), and /proc/sys is read-only
# except the per-namespace /proc/sys/net, so neither systemd nor a hardening step can change
# the machine's kernel.*, vm.* or fs.* settings.
set -eu

name=$1
disk=$2
cgfile=$3
init=${4:-sysv}
state=${5:-}
controllers=$(cut -d' ' -f1 "$cgfile")
here=$(dirname "$0")
# Read now: $here may be below the machine's /tmp, which the host's own /tmp covers below.
provision_script=$(cat "$here/provision.sh")
firstboot=""
if [ -n "$state" ] && [ -f "$state/firstboot" ]; then
    firstboot=$(cat "$state/firstboot")
    rm -f "$state/firstboot"
fi

mount -t proc -o nosuid,nodev,noexec proc /proc
echo "$name" >/proc/sys/kernel/hostname

for d in etc var srv home root usr/local opt mnt media; do
    [ -d "/$d" ] || continue
    mkdir -p "$disk/$d/upper" "$disk/$d/work"
    # Upper and work dirs sit on the disk tmpfs, outside every overlaid tree: the kernel
    # refuses layers that overlap. After a reboot the same upper dirs come back.
    mount -t overlay "hwlab-$d" -o "lowerdir=/$d,upperdir=$disk/$d/upper,workdir=$disk/$d/work" "/$d"
done

# The host's own /dev: a tmpfs with the harmless device nodes bound from the machine's. A
# booting systemd creates and links things in /dev (journald's /dev/log, tmpfiles' static
# nodes); none of that may reach the machine's /dev. No /dev/kmsg (the machine's kernel log)
# and no real console: /dev/console is /dev/null.
mkdir -p "$disk/dev"
mount -t tmpfs -o mode=0755,nosuid,size=4m hwlab-dev "$disk/dev"
for node in null zero full random urandom tty; do
    : >"$disk/dev/$node"
    mount --bind "/dev/$node" "$disk/dev/$node"
done
: >"$disk/dev/console"
mount --bind /dev/null "$disk/dev/console"
mkdir "$disk/dev/net" "$disk/dev/pts" "$disk/dev/shm" "$disk/dev/mqueue"
if [ -c /dev/net/tun ]; then
    # The machine's node is 0600; a fresh VM's is 0666 (rootless Docker's slirp4netns opens it
    # as the user). The host gets its own node instead of a change to the machine's.
    mknod -m 0666 "$disk/dev/net/tun" c 10 200
fi
if [ -c /dev/fuse ]; then
    : >"$disk/dev/fuse"
    mount --bind /dev/fuse "$disk/dev/fuse"
fi
ln -s /proc/self/fd "$disk/dev/fd"
ln -s /proc/self/fd/0 "$disk/dev/stdin"
ln -s /proc/self/fd/1 "$disk/dev/stdout"
ln -s /proc/self/fd/2 "$disk/dev/stderr"
ln -s pts/ptmx "$disk/dev/ptmx"
mount --move "$disk/dev" /dev
# Our own pty instance, so sshd can hand out ptys and the host sees only its own.
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev hwlab-shm /dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue

if [ -e /usr/sbin/policy-rc.d ]; then
    # This machine's policy-rc.d (exit 101, as in Docker build containers) stops invoke-rc.d
    # from starting services. A fresh VM has none; /usr is shared, so hide it inside the host
    # behind an empty, non-executable file (invoke-rc.d only runs it when executable).
    : >"$disk/policy-rc.d"
    chmod 0644 "$disk/policy-rc.d"
    mount --bind "$disk/policy-rc.d" /usr/sbin/policy-rc.d
fi

# Docker's overlay2 cannot sit on an overlay: its data lives on the disk tmpfs directly (it
# keeps images, containers and networks across a reboot, like a VM's disk).
mkdir -p -m 0710 "$disk/docker" /var/lib/docker
mount --bind "$disk/docker" /var/lib/docker

# Drop every mount inherited below /run before covering it: the copies of other hosts'
# /run/netns/* bind mounts would otherwise keep their network namespaces alive. The disk
# tmpfs goes too; the overlays keep their own references to it.
awk '$5 ~ "^/run/" { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
done
mount -t tmpfs -o mode=0755,nosuid,nodev hwlab-run /run
mkdir -m 1777 /run/lock
: >/run/utmp
# The host's own /tmp, mounted after everything above read what it needed from the machine's:
# a booting systemd empties /tmp (tmpfiles.d: D /tmp), which must never be the machine's.
mount -t tmpfs -o mode=1777,nosuid,nodev hwlab-tmp /tmp

# /proc/sys read-only except net (per network namespace). A second proc instance is the
# source of the writable net: a bind of /proc/sys/net onto itself would inherit the read-only
# flag. That instance stays mounted, fully visible to the kernel but out of sight under a
# read-only tmpfs: the kernel lets a user namespace mount a new proc (rootless Docker,
# userns-remap) only while some proc mount in the namespace has nothing mounted over its
# files, and the read-only /proc/sys is such a mount over /proc.
mkdir -p /run/hostwiz-lab/proc
mount -t proc -o nosuid,nodev,noexec hwlab-proc /run/hostwiz-lab/proc
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro,nosuid,nodev,noexec /proc/sys
mount --bind /run/hostwiz-lab/proc/sys/net /proc/sys/net
mount -t tmpfs -o ro,mode=0700,size=4k hwlab-hidden /run/hostwiz-lab

# Drop the copies of the machine's /sys mounts first (this namespace's copies only: it is
# private): covered by the fresh sysfs they would stay in /proc/self/mountinfo, and runc takes
# the first cgroup mount it finds there for each hierarchy. A rootless engine's runc (which
# cannot make the missing folder, unlike a rootful one) then failed to start any container on
# a sysv host: "stat /sys/fs/cgroup/systemd: no such file or directory", the machine's
# name=systemd mount point, which the host's own /sys/fs/cgroup has not.
awk '$5 == "/sys" || $5 ~ "^/sys/" { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
done
# A fresh sysfs shows this network namespace's interfaces; cgroup v1 hierarchies on top,
# each rooted (through the cgroup namespace) at the host's own cgroup. Read-only for systemd
# hosts: udev and friends skip themselves there, and nothing writes the machine's devices.
sysfs_opts=nosuid,nodev,noexec
[ "$init" = systemd ] && sysfs_opts=$sysfs_opts,ro
mount -t sysfs -o "$sysfs_opts" sysfs /sys
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup /sys/fs/cgroup
for ctl in $controllers; do
    case $ctl in
    name=systemd)
        [ "$init" = systemd ] || continue
        mkdir /sys/fs/cgroup/systemd
        mount -t cgroup -o "nosuid,nodev,noexec,none,name=systemd" cgroup /sys/fs/cgroup/systemd
        continue
        ;;
    cgroup2)
        [ "$init" = systemd ] || continue
        mkdir /sys/fs/cgroup/unified
        mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup/unified
        continue
        ;;
    esac
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

# Everything else of the machine's root file system is read-only in here: a step that makes a
# mount point (/mnt/share), a folder at the top (/export) or installs into /usr must fail
# inside the host, never land on the machine. Only this namespace's copy of the mount turns
# read-only; the overlays and tmpfs mounts above are mounts of their own. Last,
# because moving a mount onto a read-only parent fails.
mount -o remount,bind,ro /

cd /
if [ -n "$firstboot" ]; then
    # First boot: make the host a fresh cloud VM (arguments: PUBKEY, PASSWORD, DOCKER, SSH_SOCKET).
    pubkey=$(echo "$firstboot" | sed -n 1p)
    password=$(echo "$firstboot" | sed -n 2p)
    docker=$(echo "$firstboot" | sed -n 3p)
    ssh_socket=$(echo "$firstboot" | sed -n 4p)
    sh -c "$provision_script" provision "$name" "$pubkey" "$password" "$docker" "$init" "$ssh_socket"
fi

# No process of the host may set the machine's clock or load kernel modules: those
# capabilities leave the host's bounding set for good (until its next boot).
drop="setpriv --bounding-set -sys_time,-wake_alarm,-sys_module --"
if [ "$init" = systemd ]; then
    # container= tells systemd (and units' ConditionVirtualization) that it runs in a
    # container: it leaves the clock, the kernel log and the console alone, and units meant
    # for real machines skip themselves. Nothing else of our environment goes along.
    exec $drop env -i container=hostwiz-lab PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd
fi
exec $drop /usr/bin/tini -- /bin/sh -c '
# The boot of an init-script host: what rcS.d and rc2.d start, in their order (provision.sh
# left sshd and dockerd there, of what the machine has; hostwiz adds its own).
for script in /etc/rcS.d/S* /etc/rc2.d/S*; do
    [ -x "$script" ] || continue
    "$script" start >/dev/null 2>&1 </dev/null || echo "hostwiz-lab: $script start failed" >&2
done
exec sleep infinity'
