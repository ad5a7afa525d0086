#!/bin/sh
# Turns a freshly set up practice host into "a fresh cloud VM": what cloud-init would do.
# Fed on stdin to `nsenter -t INIT_PID -a env -i ... /bin/sh -s -- NAME PUBKEY PASSWORD DOCKER`,
# so every write below lands in the host's overlays, never on the machine.
# Prints the host's SSH public host keys on stdout (for the lab's known_hosts).
set -eu

name=$1
pubkey=$2
password=$3
docker=$4

# nsenter leaves us in the machine's cgroups; join the host's own (the cgroup namespace root)
# so sshd and dockerd are accounted to the host like every other process of it.
for f in /sys/fs/cgroup/*/cgroup.procs; do
    echo $$ >"$f" 2>/dev/null || true
done

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

# Unique host keys: drop the machine's copies (copied up into this host's /etc) and make new.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A >/dev/null

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
/etc/init.d/ssh start >/dev/null

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
if [ "$docker" = 1 ]; then
    /etc/init.d/docker start >/dev/null
    tries=0
    until docker info >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ $tries -gt 300 ]; then
            echo "dockerd did not answer within 30 seconds; /var/log/docker.log:" >&2
            tail -n 20 /var/log/docker.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
fi

cat /etc/ssh/ssh_host_*_key.pub
