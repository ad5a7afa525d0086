"""The docker step's own facts (command + pure parser): a user's account and what rootless
mode needs. Gathered with every other step's facts in one round trip. What other steps read
about Docker too (daemon.json, dockerd's command line, ``docker info``) is shared in
:mod:`wizard.host.docker`; the subordinate id files in :mod:`wizard.host.subids`."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from wizard.actions import FileState
from wizard.facts import FILE_STAT, Fact, file_fact, sections
from wizard.transport.base import shell_quote

ROOTLESS_SCRIPT_DIRS = ("/usr/share/docker.io/contrib", "/usr/bin", "/usr/local/bin")


@dataclass(frozen=True)
class Account:
    name: str
    exists: bool
    uid: int = -1
    gid: int = -1
    home: str = ""
    group: str = ""


def parse_account(name: str) -> Any:
    def parse(code: int, out: str) -> Account:
        lines = out.strip().splitlines()
        if code != 0 or not lines:
            return Account(name, False)
        fields = lines[0].split(":")
        group = lines[1] if len(lines) > 1 else name
        return Account(name, True, int(fields[2]), int(fields[3]), fields[5], group)

    return parse


def account_fact(name: str) -> Fact[Account]:
    quoted = shell_quote(name)
    return Fact(
        f"account:{name}",
        f"getent passwd {quoted} && id -gn {quoted}",
        parse_account(name),
    )


@dataclass(frozen=True)
class RootlessTools:
    """What rootless mode needs on the host, and whether it is already running for the user.

    Everything here is read, nothing changed: the planner explains what is missing before it
    plans anything, instead of dockerd failing late with only "did not start".
    """

    newuidmap: bool
    newgidmap: bool
    slirp4netns: bool
    rootlesskit: bool
    tun: bool
    script: str
    """Path of dockerd-rootless.sh ("" when missing)."""
    running: bool
    own_config: bytes | None = None
    """The user's own ~/.config/docker/daemon.json (read as the user; None when there is none)."""
    tun_usable: bool = True
    """The user can open /dev/net/tun read-write (slirp4netns does, as the user)."""
    tun_mode: str = ""
    id_maps_privileged: bool = True
    """newuidmap and newgidmap are setuid root (or have the cap_setuid/cap_setgid file caps)."""
    userns: bool = True
    """The user could create a user namespace (tried as the user with ``unshare --user``)."""
    userns_settings: tuple[str, ...] = ()
    """The kernel settings that decide it, as ``name = value`` (read only, never written)."""
    linger: bool = False
    """systemd keeps the user's manager running without a login (loginctl enable-linger)."""
    update_rc: bool = True
    """update-rc.d exists, so an init script can be started at boot (hosts without systemd)."""
    unwritable: tuple[tuple[str, str], ...] = ()
    """Folders of the user's home the engine writes to (relative path, where it leads) that the
    user cannot write: a link planted to a root folder, or a root-owned folder."""

    def missing(self) -> list[str]:
        needs = []
        if not (self.newuidmap and self.newgidmap):
            needs.append("newuidmap/newgidmap (Debian package: uidmap)")
        if not self.slirp4netns:
            needs.append("slirp4netns (Debian package: slirp4netns)")
        if not self.rootlesskit:
            needs.append("rootlesskit (Debian package: rootlesskit)")
        if not self.script:
            needs.append(
                "dockerd-rootless.sh (Debian package: docker.io, or docker-ce-rootless-extras)"
            )
        if not self.tun:
            needs.append("the /dev/net/tun device (load the tun kernel module: modprobe tun)")
        return needs

    def blockers(self, user: str, manager: str) -> list[tuple[str, str]]:
        """(what stops the rootless engine of ``user`` from starting, how to fix it)."""
        found = []
        for folder, target in self.unwritable:
            if folder == USER_UNITS and manager != "systemd":
                continue
            leads = f", which leads to {target}" if target and not target.endswith(folder) else ""
            found.append((
                f"{user} cannot write ~/{folder}{leads}; {USER_FOLDERS[folder]}",
                f"as {user}, make ~/{folder} an ordinary folder of their own (rm ~/{folder} if "
                "it is a link); hostwiz writes nothing there as root and will not follow it",
            ))  # fmt: skip
        if self.tun and not self.tun_usable:
            mode = f" (mode {self.tun_mode})" if self.tun_mode else ""
            found.append((
                f"{user} cannot open /dev/net/tun{mode}, which slirp4netns needs for the "
                "engine's network",
                "chmod 0666 /dev/net/tun (Debian's default: the device grants nothing by "
                "itself); keep it after a reboot with a udev rule such as "
                'KERNEL=="tun", MODE="0666" in /etc/udev/rules.d/60-tun.rules',
            ))  # fmt: skip
        if self.newuidmap and self.newgidmap and not self.id_maps_privileged:
            found.append((
                "newuidmap/newgidmap are not setuid root, so they cannot map the subordinate "
                f"ids of {user}",
                "apt install --reinstall uidmap (or chmod u+s /usr/bin/newuidmap "
                "/usr/bin/newgidmap)",
            ))  # fmt: skip
        if not self.userns:
            settings = ", ".join(self.userns_settings) or "no setting found"
            found.append((
                f"the kernel does not let {user} create user namespaces ({settings})",
                "allow unprivileged user namespaces: kernel.unprivileged_userns_clone = 1 "
                "and user.max_user_namespaces above 0 in /etc/sysctl.d/ (then sysctl --system); "
                "on Ubuntu 24.04 and later also an AppArmor profile for rootlesskit, or "
                "kernel.apparmor_restrict_unprivileged_userns = 0",
            ))  # fmt: skip
        return found


USER_UNITS = ".config/systemd/user"
USER_FOLDERS = {
    ".config/docker": "the rootless engine keeps its key (key.json) there",
    ".local/share/docker": "the rootless engine keeps its images and containers there",
    USER_UNITS: "systemctl --user enable links the engine's unit there",
}
"""Folders in the user's home the rootless engine (or the user's systemd) writes to, as the user."""

USERNS_SETTINGS = (
    "kernel/unprivileged_userns_clone",
    "user/max_user_namespaces",
    "kernel/apparmor_restrict_unprivileged_userns",
)


def parse_rootless(user: str) -> Any:
    def parse(code: int, out: str) -> RootlessTools:
        values: dict[str, str] = {}
        settings: list[str] = []
        unwritable: list[tuple[str, str]] = []
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            if key == "sysctl":
                settings.append(value.replace("/", ".", 1).replace(" ", " = ", 1))
            if key == "unwritable":
                folder, _, target = value.partition(" ")
                unwritable.append((folder, target))
            values[key] = value
        own = values.get("own_data")
        probe = values.get("probe") == "yes"  # without setpriv, nothing was tried as the user

        def tried(key: str, probed: bool) -> bool:
            return values.get(key) == "yes" or not probed

        return RootlessTools(
            newuidmap=values.get("newuidmap") == "yes",
            newgidmap=values.get("newgidmap") == "yes",
            slirp4netns=values.get("slirp4netns") == "yes",
            rootlesskit=values.get("rootlesskit") == "yes",
            tun=values.get("tun") == "yes",
            script=values.get("script", ""),
            running=values.get("running") == "yes",
            own_config=None if own is None else base64.b64decode(own),
            tun_usable=tried("tun_user", probe),
            tun_mode=values.get("tun_mode", ""),
            id_maps_privileged=values.get("idmap_privileged") == "yes",
            userns=tried("userns", probe and values.get("probe_userns") == "yes"),
            userns_settings=tuple(settings),
            linger=values.get("linger") == "yes",
            update_rc=values.get("update_rc") == "yes",
            unwritable=tuple(unwritable),
        )

    return parse


def rootless_fact(user: str) -> Fact[RootlessTools]:
    """What rootless mode needs, read as root but tried as the user where the user matters.

    Nothing under the user's home is read as root: the user controls it, and a link there
    (``~/.config/docker -> /etc/docker``) would make root read or write its own files.
    """
    quoted = shell_quote(user)
    dirs = " ".join(ROOTLESS_SCRIPT_DIRS)
    sysctls = " ".join(USERNS_SETTINGS)
    folders = " ".join(USER_FOLDERS)
    return Fact(
        f"rootless:{user}",
        f"""have() {{ command -v "$1" >/dev/null 2>&1 && echo "$1 yes" || echo "$1 no"; }}
have newuidmap; have newgidmap; have slirp4netns; have rootlesskit
[ -c /dev/net/tun ] && echo "tun yes" && echo "tun_mode $(stat -c %a /dev/net/tun)"
for d in {dirs}; do
  [ -x "$d/dockerd-rootless.sh" ] && {{ echo "script $d/dockerd-rootless.sh"; break; }}
done
privileged=yes
for b in newuidmap newgidmap; do
  p=$(command -v $b) || continue
  [ -u "$p" ] && [ "$(stat -c %u "$p")" = 0 ] && continue
  command -v getcap >/dev/null 2>&1 && getcap "$p" | grep -q cap_set && continue
  privileged=no
done
echo "idmap_privileged $privileged"
for s in {sysctls}; do
  [ -r /proc/sys/$s ] && echo "sysctl $s $(cat /proc/sys/$s)"
done
command -v update-rc.d >/dev/null 2>&1 && echo "update_rc yes"
[ -e /var/lib/systemd/linger/{quoted} ] && echo "linger yes"
if u=$(id -u {quoted} 2>/dev/null); then
  [ -S /run/user/$u/docker.sock ] && echo "running yes"
  h=$(getent passwd {quoted} | cut -d: -f6)
  as_user() {{ setpriv --reuid="$u" --regid="$(id -g {quoted})" --init-groups \\
    env -i HOME=/ PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }}
  if command -v setpriv >/dev/null 2>&1; then
    echo "probe yes"
    as_user sh -c 'exec 3<>/dev/net/tun' 2>/dev/null && echo "tun_user yes"
    command -v unshare >/dev/null 2>&1 && echo "probe_userns yes" \\
      && as_user unshare --user true 2>/dev/null && echo "userns yes"
    for f in {folders}; do
      as_user sh -c 'd=$1; while [ "$d" != "${{d%/*}}" ] && [ ! -e "$d" ] && [ ! -L "$d" ]; do
        d=${{d%/*}}; done; [ -d "$d" ] && [ -w "$d" ]' sh "$h/$f" \\
        || echo "unwritable $f $(readlink -f "$h/$f" 2>/dev/null)"
    done
  fi
  own=$(as_user cat "$h/.config/docker/daemon.json" 2>/dev/null | base64 -w0) \\
    && [ -n "$own" ] && echo "own_data $own"
fi
true""",
        parse_rootless(user),
    )


ROOTLESS_FILE_GLOBS = (
    "/etc/profile.d/hostwiz-docker-rootless-*.sh",
    "/etc/init.d/docker-rootless-*",
    "/etc/systemd/user/docker-rootless-*.service",
    "/etc/docker/rootless-*.json",
)
"""Where hostwiz's rootless mode leaves files (see :func:`wizard.steps.docker.rootless.
service_paths`): found by name, so that switching back to a rootful mode can remove them."""

HOSTWIZ_MARK = b"hostwiz"
"""The profile snippet, init script and unit hostwiz writes all say so in a comment."""

LINGER_MARK = b"# hostwiz turned on lingering for "
"""Begins the comment in a rootless engine's systemd unit that records that hostwiz, not the
admin, turned on the user's lingering for it: a rootful mode then turns it off again."""

_ROOTLESS_NAME = re.compile(
    r"^/etc/(?:profile\.d/hostwiz-docker-rootless-(?P<a>.+)\.sh|init\.d/docker-rootless-(?P<b>.+)"
    r"|systemd/user/docker-rootless-(?P<c>.+)\.service|docker/rootless-(?P<d>.+)\.json)$"
)


def rootless_owner(path: str) -> str:
    """The user a hostwiz rootless-engine file belongs to ("" for any other path)."""
    match = _ROOTLESS_NAME.match(path)
    return next((name for name in match.groups() if name), "") if match else ""


@dataclass(frozen=True)
class SystemEngine:
    """The system (rootful) Docker engine's service, and the rootless engines hostwiz made.

    ``running`` of the root dockerd itself is :data:`wizard.host.docker.DOCKERD`'s; this says
    whether the service manager starts it at boot, or (systemd) would start it again on the
    next client call through ``docker.socket``.
    """

    enabled: tuple[str, ...] = ()
    """Units (systemd) or rc links (init scripts) that start the system dockerd at boot."""
    active: tuple[str, ...] = ()
    """systemd units of the system engine that are active now (docker.service, docker.socket)."""
    rootless_files: tuple[FileState, ...] = ()
    """Every hostwiz rootless-engine file on the host (any user's)."""
    installed: bool = False
    """The system engine's service exists (docker.service, or /etc/init.d/docker)."""
    rootless_running: tuple[tuple[str, int], ...] = ()
    """(user, containers running) for each rootless engine that answers on its socket."""
    lingering: tuple[str, ...] = ()
    """Users whose systemd runs without a login (``loginctl enable-linger``)."""

    def rootless_users(self) -> tuple[str, ...]:
        """Users with a hostwiz-made rootless engine (its profile snippet, init script or unit
        says it was written by hostwiz; the engine's daemon.json alone does not count)."""
        users = {
            rootless_owner(state.path)
            for state in self.rootless_files
            if not state.path.endswith(".json") and HOSTWIZ_MARK in state.content
        }
        return tuple(sorted(user for user in users if user))

    def files_of(self, user: str) -> tuple[FileState, ...]:
        return tuple(s for s in self.rootless_files if rootless_owner(s.path) == user)

    def linger_by_hostwiz(self, user: str) -> bool:
        """hostwiz turned on ``user``'s lingering for their rootless engine (its unit says so;
        units of hostwiz versions before that record say nothing, and count as the admin's)."""
        return any(
            state.path.endswith(".service") and LINGER_MARK in state.content
            for state in self.files_of(user)
        )

    def running_under(self, user: str) -> int:
        """Containers running under ``user``'s rootless engine (0 when it does not answer)."""
        return sum(count for owner, count in self.rootless_running if owner == user)


def parse_system_engine(code: int, out: str) -> SystemEngine:
    enabled: list[str] = []
    active: list[str] = []
    running: list[tuple[str, int]] = []
    lingering: list[str] = []
    files: list[FileState] = []
    for name, body in sections(out).items():
        if name.startswith("file ") and body.strip():
            files.append(file_fact(name[5:]).parse(0, body))
    for line in out.split("\n@@", 1)[0].splitlines():
        key, _, value = line.partition(" ")
        if key == "enabled":
            enabled.append(value)
        elif key == "active":
            active.append(value)
        elif key == "linger" and value:
            lingering.append(value)
        elif key == "rootless-running":
            user, _, count = value.partition(" ")
            if user and count.isdigit():
                running.append((user, int(count)))
    installed = "installed" in out.split("\n@@", 1)[0].splitlines()
    return SystemEngine(
        tuple(enabled), tuple(active), tuple(files), installed, tuple(running), tuple(lingering)
    )


SYSTEM_ENGINE = Fact(
    "docker_system_engine",
    f"""if [ -d /run/systemd/system ]; then
  [ -n "$(systemctl show -p FragmentPath --value docker.service 2>/dev/null)" ] \\
    && echo installed
  for u in docker.service docker.socket; do
    systemctl is-enabled --quiet $u 2>/dev/null && echo "enabled $u"
    systemctl is-active --quiet $u 2>/dev/null && echo "active $u"
  done
else
  [ -x /etc/init.d/docker ] && echo installed
  for l in /etc/rc[2345].d/S[0-9][0-9]docker; do [ -e "$l" ] && echo "enabled $l"; done
fi
for s in /run/user/*/docker.sock; do
  [ -S "$s" ] || continue
  n=$(DOCKER_HOST="unix://$s" timeout 5 docker ps -q 2>/dev/null | wc -l)
  echo "rootless-running $(stat -c %U "${{s%/docker.sock}}") $n"
done
for l in /var/lib/systemd/linger/*; do [ -e "$l" ] && echo "linger ${{l##*/}}"; done
for f in {" ".join(ROOTLESS_FILE_GLOBS)}; do
  [ -f "$f" ] || continue
  echo "@@file $f"; {FILE_STAT} "$f" && base64 -w0 "$f"; echo
done
true""",
    parse_system_engine,
)
"""Whether the system dockerd starts at boot (or on demand), and hostwiz's rootless engines."""
