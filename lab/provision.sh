#!/bin/sh
# Turns a freshly set up practice host into "a fresh cloud VM": what cloud-init would do on its
# first boot. Run by setup.sh (the host's PID 1, before its init starts) as
#   sh -c SCRIPT provision NAME PUBKEY PASSWORD DOCKER INIT SSH_SOCKET
# so every write below lands in the host's overlays, never on the machine. It starts nothing:
# the host's init (systemd, or the init-script boot in setup.sh) starts sshd and dockerd.
set -eu

name=$1
pubkey=$2
password=$3
docker=$4
init=$5
ssh_socket=$6

echo "$name" >/etc/hostname
cat >/etc/hosts <<EOF
127.0.0.1	localhost
127.0.1.1	$name
::1	localhost ip6-localhost ip6-loopback
EOF
# The lab has no way out, so no name server: the resolver falls back to 127.0.0.1 and fails
# at once instead of sending queries towards the machine's name server.
rm -f /etc/resolv.conf
echo "# hostwiz practice host: no name server (the lab network has no way out)" >/etc/resolv.conf
tr -d - </proc/sys/kernel/random/uuid >/etc/machine-id
# A container has no file systems of its own to mount, check or swap on: the machine's fstab
# would have systemd fsck, remount or swapon the machine's disks.
echo "# hostwiz practice host: nothing to mount (the host's disk is an overlay)" >/etc/fstab

# Unique host keys: drop the machine's copies (copied up into this host's /etc) and make new.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A >/dev/null

# Root's shell start-up files as on a fresh Debian VM (base-files installs these for root).
# The host's /root is an overlay of the machine's, whose files may set up the machine's own
# tools (a pyenv, a cargo): every SSH session in the host would run them (~0.1 s each) and
# find the machine's python3 first on its PATH, unlike any fresh VM.
for f in bashrc profile; do
    if [ -f /usr/share/base-files/dot.$f ]; then
        cp /usr/share/base-files/dot.$f /root/.$f
    fi
done

install -d -m 700 /root/.ssh
printf '%s\n' "$pubkey" >/root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys

if id admin >/dev/null 2>&1; then
    usermod -a -G sudo admin
else
    useradd -m -s /bin/bash -G sudo admin
fi
printf 'admin:%s\n' "$password" | chpasswd
install -d -m 700 -o admin -g admin /home/admin/.ssh
printf '%s\n' "$pubkey" >/home/admin/.ssh/authorized_keys
chown admin:admin /home/admin/.ssh/authorized_keys
chmod 600 /home/admin/.ssh/authorized_keys

# pam_loginuid (session required in /etc/pam.d/sshd) works here: we are real root in the
# initial user namespace, so /proc/self/loginuid is writable. Nothing to change.

# Debian's init script raises the open-files hard limit (ulimit -n 1048576) and the process
# limit; without CAP_SYS_RESOURCE that fails and, under `set -e`, stops the script. Patch the
# host's own copy (copied up into its /etc overlay), never the machine's.
# Its cgroupfs_mount would also mount every enabled controller that has no mount yet, binding
# the ones the machine leaves to cgroup v2 (net_cls, perf_event...) to new machine-wide v1
# hierarchies; the host's /sys/fs/cgroup already has what the machine has, so skip that too.
if [ -f /etc/init.d/docker ] && grep -q -e '^[[:space:]]*ulimit ' -e '^[[:space:]]*cgroupfs_mount$' /etc/init.d/docker; then
    sed -i \
        -e 's/^\([[:space:]]*\)ulimit .*/\1: # hostwiz practice host: ulimit removed (no CAP_SYS_RESOURCE)/' \
        -e 's/^\([[:space:]]*\)cgroupfs_mount$/\1: # hostwiz practice host: cgroups are mounted already/' \
        /etc/init.d/docker
fi

# Which services start at boot: sshd, and dockerd unless DOCKER=0, as on a fresh VM. What the
# machine itself has enabled besides (databases, proxies, NFS...) stays off in the host.
# Turned off the way `update-rc.d NAME disable` does (its S links become K links), so that a
# step can turn one on again the Debian way (update-rc.d NAME enable, systemctl enable NAME).
disable_link() { mv -f "$1" "${1%/*}/K01${1##*/S[0-9][0-9]}"; }
for link in /etc/rc[S2345].d/S*; do
    [ -L "$link" ] || continue
    case ${link##*/S[0-9][0-9]} in
    ssh) ;;
    docker) [ "$docker" = 1 ] || disable_link "$link" ;;
    *) disable_link "$link" ;; # hwclock.sh, procps (sysctl), NFS, databases... of the machine
    esac
done
[ "$init" = systemd ] || exit 0

units=/etc/systemd/system
keep=" ssh.service docker.service docker.socket containerd.service "
[ "$docker" = 1 ] || keep=" ssh.service "
for link in "$units"/*.wants/* "$units"/*.requires/*; do
    [ -L "$link" ] || continue
    case $keep in *" ${link##*/} "*) ;; *) rm -f "$link" ;; esac
done
mkdir -p "$units/multi-user.target.wants" "$units/sockets.target.wants"
enable() { # unit target
    ln -sf "/lib/systemd/system/$1" "$units/$2.wants/$1"
}
if [ "$ssh_socket" = 1 ]; then
    # As on Ubuntu 22.10 and later: systemd listens (ssh.socket) and starts sshd on demand.
    rm -f "$units/multi-user.target.wants/ssh.service"
    enable ssh.socket sockets.target
else
    enable ssh.service multi-user.target
fi
if [ "$docker" = 1 ]; then
    enable docker.service multi-user.target
    enable containerd.service multi-user.target
    enable docker.socket sockets.target
fi

# Units that would touch the machine (its kernel settings, modules, clock, devices, disks,
# consoles, packages in the shared /usr) are masked. Many skip themselves in a container
# already (ConditionVirtualization, a read-only /sys or /proc/sys); masked all the same.
for unit in \
    systemd-sysctl.service systemd-modules-load.service kmod-static-nodes.service modprobe@.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    systemd-timesyncd.service systemd-time-wait-sync.service hwclock.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \
    systemd-tmpfiles-setup-dev.service systemd-remount-fs.service systemd-fsck-root.service \
    systemd-pstore.service systemd-journald-audit.socket systemd-random-seed.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-fs-fuse-connections.mount dev-hugepages.mount \
    getty@.service serial-getty@.service console-getty.service container-getty@.service \
    getty-static.service getty.target \
    e2scrub_reap.service e2scrub_all.service e2scrub_all.timer fstrim.service fstrim.timer \
    apt-daily.service apt-daily.timer apt-daily-upgrade.service apt-daily-upgrade.timer; do
    ln -sf /dev/null "$units/$unit"
done

# systemd-tmpfiles --boot runs every rule of tmpfiles.d; the host's /run, /tmp, /dev and its
# overlays take what they touch, except rules on paths of the machine's own (/fastboot and
# other files in /, /usr...). The host gets a copy of each such file without those rules.
private='^/(etc|var|srv|home|root|usr/local|run|tmp|dev)(/|$)'
for file in /usr/lib/tmpfiles.d/*.conf /etc/tmpfiles.d/*.conf; do
    [ -f "$file" ] || continue
    base=${file##*/}
    [ -e "/etc/tmpfiles.d/$base" ] && [ "$file" != "/etc/tmpfiles.d/$base" ] && continue
    awk -v private="$private" '
        /^[[:space:]]*(#|$)/ { next }
        $2 !~ private { bad = 1 }
        END { exit !bad }' "$file" || continue
    mkdir -p /etc/tmpfiles.d
    awk -v private="$private" '
        /^[[:space:]]*(#|$)/ { print; next }
        $2 !~ private { print "# hostwiz practice host: not a path of this host: " $0; next }
        { print }' "$file" >"/etc/tmpfiles.d/$base.tmp"
    mv "/etc/tmpfiles.d/$base.tmp" "/etc/tmpfiles.d/$base"
done
