"""The audit's checks, as data: each :class:`Rule` has plain words for a first-time admin, a
severity, the hostwiz step that fixes it, and a small pure check over a :class:`HostView`.

Written by us in the spirit of the CIS Docker Benchmark's sections 2 (daemon configuration)
and 3 (daemon files), seed 001 (daemon.json hardening) and seed 003 (least-privilege
containers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from wizard.audit.facts import Container
from wizard.audit.model import Hit, Rule, Severity
from wizard.audit.view import HostView

CRITICAL, HIGH, MEDIUM, LOW, INFO = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
    Severity.INFO,
)

SENSITIVE_MOUNTS = (
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/usr",
    "/lib",
)
"""Host paths that give a container control of the host when bind-mounted."""
SOCKET_PATHS = ("/var/run/docker.sock", "/run/docker.sock")
DANGEROUS_CAPS = (
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "DAC_READ_SEARCH",
    "SYS_BOOT",
    "SYS_TIME",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "PERFMON",
    "SYSLOG",
)
EXPIRY_WARNING_DAYS = 30


# ---- containers (seed 003) ------------------------------------------------------------


def _each(view: HostView, test: Callable[[Container], str]) -> list[Hit]:
    """One hit per running container of ``view``'s engine for which ``test`` returns
    evidence, named as :attr:`Container.label` (with its engine when it is a rootless one)."""
    hits = []
    for container in view.containers or ():
        evidence = test(container)
        if evidence:
            hits.append(Hit(evidence, container.label, container.label, view.engine_name))
    return hits


def _rootless_engine(view: HostView) -> bool:
    """``view`` is a rootless engine's (root in its containers is its user on the host)."""
    return view.engine is not None and view.rootless


def _privileged(c: Container) -> str:
    return "runs with --privileged" if c.privileged else ""


def _socket_mount(c: Container) -> str:
    mounts = [m for m in c.binds if m.source in SOCKET_PATHS]
    return ", ".join(
        f"{m.source} -> {m.destination} ({'rw' if m.writable else 'ro'})" for m in mounts
    )


def _sensitive_mounts(c: Container) -> str:
    mounts = [
        m for m in c.binds if m.source.rstrip("/") in {p.rstrip("/") for p in SENSITIVE_MOUNTS}
    ]
    return ", ".join(
        f"{m.source} -> {m.destination} ({'rw' if m.writable else 'ro'})" for m in mounts
    )


def _shared(kind: str) -> Callable[[Container], str]:
    def test(c: Container) -> str:
        return (
            f"--{'net' if kind == 'network' else kind}=host" if kind in c.shared_namespaces else ""
        )

    return test


def _dangerous_caps(c: Container) -> str:
    caps = [cap for cap in c.cap_add if cap in DANGEROUS_CAPS]
    return "--cap-add " + " ".join(caps) if caps else ""


def _other_caps(c: Container) -> str:
    caps = [cap for cap in c.cap_add if cap not in DANGEROUS_CAPS]
    return "--cap-add " + " ".join(caps) if caps else ""


def _root_user(view: HostView) -> Callable[[Container], str]:
    def test(c: Container) -> str:
        if not c.runs_as_root:
            return ""
        if _rootless_engine(view) and view.engine is not None:
            return (
                f"user {c.user or 'root (image default)'}, under {view.engine.name}: root in "
                f"the container is {view.engine.user} (uid {view.engine.uid}) on the host, "
                "not root"
            )
        mapped = " (userns-remap maps it to an unprivileged host user)" if view.userns else ""
        return f"user {c.user or 'root (image default)'}{mapped}"

    return test


def _root_user_rootless(view: HostView) -> tuple[Severity, str] | None:
    """(severity, meaning) of a container running as root under a rootless engine: rootless
    mode already keeps root in containers from being root on the host (seed 003), so what is
    left is the engine user's own rights, a lower risk said in other words."""
    if not _rootless_engine(view) or view.engine is None:
        return None
    user = view.engine.user
    return LOW, (
        f"Under a rootless engine, root in a container is {user} on the host, not root: an "
        f"escape from the container gets {user}'s files and rights (their Docker engine, their "
        f"SSH keys, sudo if {user} may use it), not the whole host. Running the process as an "
        "ordinary user in the container (--user 1000, or USER in the Dockerfile) takes even "
        "that away."
    )


def _no_cap_drop(c: Container) -> str:
    return "" if "ALL" in c.cap_drop or c.privileged else "keeps Docker's default capabilities"


def _no_new_privileges(view: HostView) -> Callable[[Container], str]:
    def test(c: Container) -> str:
        if c.process_no_new_privs is not None:  # the kernel's word wins
            return "" if c.process_no_new_privs else f"NoNewPrivs: 0 in /proc/{c.pid}/status"
        if c.no_new_privileges or view.config("no-new-privileges") is True:
            return ""
        return "no no-new-privileges security option (nor as the daemon's default)"

    return test


def _seccomp_off(c: Container) -> str:
    if c.option("seccomp") == "unconfined":
        return "--security-opt seccomp=unconfined"
    if c.process_seccomp == 0 and not c.privileged:
        return f"Seccomp: 0 in /proc/{c.pid}/status"
    return ""


def _apparmor_off(c: Container) -> str:
    return "--security-opt apparmor=unconfined" if c.option("apparmor") == "unconfined" else ""


def _open_ports(view: HostView) -> Callable[[Container], str]:
    def test(c: Container) -> str:
        if _rootless_engine(view):
            # rootlesskit listens on the host itself: its ports go through the INPUT chain.
            if view.firewall.filters_input:
                return ""
        elif view.firewall.filters_containers:
            return ""
        ports = [p.describe() for p in c.ports if p.all_addresses]
        return "published on every address: " + ", ".join(ports) if ports else ""

    return test


def _open_ports_rootless(view: HostView) -> tuple[Severity, str] | None:
    if not _rootless_engine(view):
        return None
    return MEDIUM, (
        "A rootless engine's published ports are opened by rootlesskit on every address of "
        "the host, and no firewall filters the host's INPUT: anyone who reaches the host "
        "reaches the port. Publish on one address (-p 127.0.0.1:8080:80) or turn on the "
        "firewall step."
    )


# ---- the daemon's API over TCP ----------------------------------------------------------


def _tcp_without_tls(local: bool) -> Callable[[HostView], list[Hit]]:
    def check(view: HostView) -> list[Hit]:
        if view.tls:
            return []
        return [
            Hit(f"dockerd serves its API on {e.describe()} without TLS", e.describe())
            for e in view.tcp_endpoints
            if e.loopback == local
        ]

    return check


def _tls_without_verify(view: HostView) -> list[Hit]:
    if not view.tls or view.tlsverify:
        return []
    return [
        Hit(f"{e.describe()} uses TLS without tlsverify", e.describe()) for e in view.tcp_endpoints
    ]


# ---- daemon.json (seed 001, CIS 2) ----------------------------------------------------


def _docker_known(view: HostView) -> bool:
    """Judge daemon settings only where Docker is installed (running, or configured), and
    not those of a system engine rootless mode turned off (it does not run them)."""
    if view.engine is not None:
        return True
    if view.system_off_on_purpose:
        return False
    return view.info.reachable or view.dockerd.running or bool(view.daemon_config)


def _per_engine(check: Callable[[HostView], list[Hit]]) -> Callable[[HostView], list[Hit]]:
    """A daemon check run for the system engine (unless rootless mode turned it off) and for
    each rootless engine over its own daemon.json and ``docker info``; a rootless engine's
    hits name it (subject and engine) and its file."""

    def each(view: HostView) -> list[Hit]:
        hits = [] if view.system_off_on_purpose else list(check(view))
        for engine in view.rootless_engines:
            for hit in check(view.engine_view(engine)):
                evidence = hit.evidence
                if engine.config_path and not evidence.startswith(engine.config_path):
                    evidence = f"{engine.config_path}: {evidence}"
                hits.append(Hit(evidence, engine.name, engine=engine.name,
                                severity=hit.severity, meaning=hit.meaning))  # fmt: skip
        return hits

    return each


def _config_unreadable(view: HostView) -> list[Hit]:
    if view.daemon_config is not None or not view.config_file:
        return []
    engine = view.engine
    if engine is not None and engine.config_text is None:
        return [Hit(f"{view.config_file} could not be read as {engine.user}")]
    return [Hit(f"{view.config_file} cannot be parsed: {view.daemon_error}")]


def _setting(
    key: str, good: object, evidence: str, rootless: bool = True
) -> Callable[[HostView], list[Hit]]:
    """``key`` must be ``good``; ``rootless``: the setting applies to rootless engines too."""

    def check(view: HostView) -> list[Hit]:
        if view.daemon_config is None or not _docker_known(view):
            return []
        if view.rootless and (view.engine is None or not rootless):
            return []
        value = view.config(key)
        if value == good:
            return []
        shown = (
            "not set"
            if value is None
            else f"{value!r}".replace("True", "true").replace("False", "false")
        )
        return [Hit(f"{key}: {shown} ({evidence})")]

    return check


def _no_userns(view: HostView) -> list[Hit]:
    if not _docker_known(view) or view.userns or view.rootless:
        return []
    return [
        Hit(
            "userns-remap is not set and dockerd is not rootless: root in a container is "
            "root on the host"
        )
    ]


def _log_limits(view: HostView) -> list[Hit]:
    if view.daemon_config is None or not _docker_known(view):
        return []
    driver = view.config("log-driver", "json-file")
    opts = view.config("log-opts") or {}
    if driver == "json-file" and not (isinstance(opts, dict) and opts.get("max-size")):
        return [Hit("log-driver json-file without log-opts max-size")]
    return []


def _experimental(view: HostView) -> list[Hit]:
    return [Hit("experimental: true")] if view.config("experimental") is True else []


def _insecure_registries(view: HostView) -> list[Hit]:
    registries = view.config("insecure-registries") or []
    if isinstance(registries, list) and registries:
        return [Hit("insecure-registries: " + ", ".join(str(r) for r in registries))]
    return []


def _no_seccomp(view: HostView) -> list[Hit]:
    if view.config("seccomp-profile") == "unconfined":
        return [Hit('seccomp-profile: "unconfined"')]
    if view.info.reachable and not any(
        o.startswith("name=seccomp") for o in view.info.security_options
    ):
        return [Hit("docker info lists no seccomp security option")]
    return []


def _docker_down(view: HostView) -> list[Hit]:
    hits = []
    if view.containers is None and not view.system_off:
        if view.dockerd.running:
            hits.append(
                Hit("dockerd runs but `docker ps` did not answer through /var/run/docker.sock")
            )
        else:
            hits.append(Hit("dockerd is not running (or Docker is not installed)"))
    for engine in view.rootless_engines:
        if engine.containers is None:
            hits.append(
                Hit(f"{engine.name} answers `docker info` on {engine.socket} but `docker ps` "
                    "failed", engine.name, engine=engine.name)
            )  # fmt: skip
    return hits


def _rootless_engines(view: HostView) -> list[Hit]:
    """One line per rootless engine: where it answers, and what the system engine does."""
    if view.system_off_on_purpose:
        system = "the system (root) engine is off and disabled, as rootless mode wants"
    elif view.system_off:
        system = "the system (root) engine is off, but starts again at boot"
    else:
        system = "the system (root) engine runs too (its findings are the ones without an engine)"
    hits = []
    for engine in view.rootless_engines:
        version = f" (Docker {engine.info.server_version})" if engine.info.server_version else ""
        settings = f"; its settings: {engine.config_path}" if engine.config_path else ""
        hits.append(
            Hit(f"{engine.name} answers on {engine.socket}{version}{settings}; {system}",
                engine.name, engine=engine.name)
        )  # fmt: skip
    return hits


def _system_at_boot(view: HostView) -> list[Hit]:
    if not view.system_off or not view.system_enabled:
        return []
    return [
        Hit("the system engine does not run now, but starts at boot: "
            + ", ".join(view.system_enabled))
    ]  # fmt: skip


# ---- files (CIS 3) ----------------------------------------------------------------------

_ROOT = ("root",)


def _expected(view: HostView) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Path -> (loosest allowed mode, allowed groups); the owner must be root."""
    expected: dict[str, tuple[int, tuple[str, ...]]] = {
        "/etc/docker": (0o755, _ROOT),
        "/etc/docker/daemon.json": (0o644, _ROOT),
        "/etc/default/docker": (0o644, _ROOT),
        "/var/run/docker.sock": (0o660, ("docker", "root")),
        "/etc/docker/tls": (0o755, _ROOT),
        "/etc/docker/tls/ca.pem": (0o644, _ROOT),
        "/etc/docker/tls/server-cert.pem": (0o644, _ROOT),
    }
    for unit in ("docker.service", "docker.socket"):
        for folder in ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system"):
            expected[f"{folder}/{unit}"] = (0o644, _ROOT)
    group = view.config("group")
    if isinstance(group, str) and group:
        expected["/var/run/docker.sock"] = (0o660, (group, "root"))
    for key in ("tlscacert", "tlscert"):
        path = view.config(key)
        if isinstance(path, str) and path:
            expected.setdefault(path, (0o644, _ROOT))
    return expected


def _keys(view: HostView) -> set[str]:
    keys = {"/etc/docker/tls/server-key.pem"}
    path = view.config("tlskey")
    if isinstance(path, str) and path:
        keys.add(path)
    return keys


def _loose_files(view: HostView) -> list[Hit]:
    hits = []
    for path, (mode, groups) in sorted(_expected(view).items()):
        info = view.paths.get(path)
        if info is None:
            continue
        problems = []
        if info.mode & ~mode & 0o7777:
            problems.append(f"mode {info.mode:o} (at most {mode:o})")
        if info.owner != "root":
            problems.append(f"owner {info.owner} (root)")
        if info.group not in groups:
            problems.append(f"group {info.group} ({' or '.join(groups)})")
        if problems:
            hits.append(Hit(f"{path}: {', '.join(problems)}", path))
    return hits


def _readable_keys(view: HostView) -> list[Hit]:
    hits = []
    for path in sorted(_keys(view)):
        info = view.paths.get(path)
        if info is not None and (info.mode & 0o077 or info.owner != "root"):
            hits.append(
                Hit(
                    f"{path}: mode {info.mode:o}, owner {info.owner}:{info.group} "
                    "(wanted 600 or 400, root)",
                    path,
                )
            )
    return hits


def _socket_group(view: HostView) -> list[Hit]:
    group = view.socket_group
    if not group.members:
        return []
    evidence = f"group {group.name}: {', '.join(group.members)}"
    if not view.system_off_on_purpose:
        return [Hit(evidence, group.name)]
    # Rootless mode: no root engine listens on the group's socket now, but the members are
    # root again the moment someone starts the system engine (by hand, or a rootful mode).
    return [
        Hit(
            f"{evidence} (the system engine is stopped and disabled, so not root now)",
            group.name,
            severity=LOW,
            title="The Docker socket's group still has members",
            meaning=f"Docker runs rootless here: the system (root) engine is stopped and "
            f"disabled, so membership of {group.name} gives nothing today, and the rootless "
            "engine does not need it. But they get root if the system engine is started "
            "again (by hand, or by going back to a rootful mode): its socket lets them start "
            "a container that mounts the host's / , the same as root without a password. "
            "Empty the group.",
        )
    ]


# ---- certificates ---------------------------------------------------------------------


def _certificates(expired: bool) -> Callable[[HostView], list[Hit]]:
    def check(view: HostView) -> list[Hit]:
        if view.now is None:
            return []
        hits = []
        for cert in view.certificates:
            if cert.not_after is None:
                continue
            left = cert.not_after - view.now
            days = int(left / timedelta(days=1))
            if expired and left <= timedelta(0):
                hits.append(
                    Hit(
                        f"{cert.path} ({cert.subject}) expired on "
                        f"{cert.not_after.date().isoformat()}",
                        cert.path,
                    )
                )
            elif not expired and timedelta(0) < left <= timedelta(days=EXPIRY_WARNING_DAYS):
                hits.append(
                    Hit(
                        f"{cert.path} ({cert.subject}) expires in {days} days, on "
                        f"{cert.not_after.date().isoformat()}",
                        cert.path,
                    )
                )
        return hits

    return check


def _certificate_days(view: HostView) -> list[Hit]:
    if view.now is None:
        return []
    return [
        Hit(
            f"{c.path} ({c.subject}): {int((c.not_after - view.now) / timedelta(days=1))} "
            "days left",
            c.path,
        )
        for c in view.certificates
        if c.not_after is not None and c.not_after - view.now > timedelta(days=EXPIRY_WARNING_DAYS)
    ]


# ---- sshd (sshd -T) -------------------------------------------------------------------


def _sshd(key: str, bad: Callable[[str], bool]) -> Callable[[HostView], list[Hit]]:
    def check(view: HostView) -> list[Hit]:
        value = view.sshd.get(key)
        return [Hit(f"sshd -T: {key} {value}")] if value is not None and bad(value) else []

    return check


def _sshd_unknown(view: HostView) -> list[Hit]:
    return (
        []
        if view.sshd
        else [Hit("sshd -T printed nothing (no sshd, or it cannot read its configuration)")]
    )


def _too_many_tries(value: str) -> bool:
    return value.isdigit() and int(value) > 4


# ---- firewall and forwarding ----------------------------------------------------------


def _no_firewall(view: HostView) -> list[Hit]:
    if view.firewall.filters_input:
        return []
    policy = view.firewall.input_policy or "ACCEPT"
    return [
        Hit(
            f"INPUT policy {policy}, no rule drops or rejects anything, no ufw, firewalld "
            "or nftables firewall"
        )
    ]


def _hostwiz_not_at_boot(view: HostView) -> list[Hit]:
    if view.firewall.hostwiz_chains and not view.boot_registered:
        return [Hit("hostwiz's rules are loaded, but hostwiz-firewall is not started at boot")]
    return []


def _rules_not_saved(view: HostView) -> list[Hit]:
    fw = view.firewall
    if not fw.filters_input or fw.hostwiz_chains or fw.ufw or fw.firewalld:
        return []
    if view.firewall_files:
        return []
    return [
        Hit(
            "firewall rules are loaded, but no /etc/iptables/rules.v4 or nftables.conf "
            "brings them back at boot"
        )
    ]


_DOCKER_FORWARD = (
    " -j DOCKER",
    " -o docker0",
    " -i docker0",
    " -o br-",
    " -i br-",
    " -j HOSTWIZ-",
    " -o docker_gwbridge",
    " -i docker_gwbridge",
)


def _forward_rules_behind_docker(view: HostView) -> list[Hit]:
    rules = view.firewall.forward_rules
    if not any(" -j DOCKER-USER" in r for r in rules):
        return []  # dockerd has not set up its chains (not running, or iptables: false)
    own = [
        r
        for r in rules
        if not any(mark in r for mark in _DOCKER_FORWARD) and (" -j DROP" in r or " -j REJECT" in r)
    ]
    return [Hit(rule, rule) for rule in own]


def _forwarding_open(view: HostView) -> list[Hit]:
    hits = []
    if view.forwarding.ipv4 and view.firewall.forward_policy in {"", "ACCEPT"}:
        hits.append(Hit("net.ipv4.ip_forward = 1 and the FORWARD policy is ACCEPT", "ipv4"))
    if view.forwarding.ipv6 and view.firewall.forward_policy_v6 in {"", "ACCEPT"}:
        hits.append(Hit("IPv6 forwarding is on and the ip6tables FORWARD policy is ACCEPT", "ipv6"))
    return hits


def _forwarding_on(view: HostView) -> list[Hit]:
    if view.forwarding.ipv4 and view.firewall.forward_policy not in {"", "ACCEPT"}:
        return [Hit(f"net.ipv4.ip_forward = 1, FORWARD policy {view.firewall.forward_policy}")]
    return []


# ---- the table ------------------------------------------------------------------------


Reworded = Callable[[HostView], "tuple[Severity, str] | None"]
"""An engine's other severity and meaning for a container rule (None: the rule's own)."""


def _container_rule(
    rule_id: str,
    severity: Severity,
    title: str,
    meaning: str,
    test: Callable[[HostView], Callable[[Container], str]],
    fix: str | None = None,
    manual: str = "",
    reworded: Reworded | None = None,
) -> Rule:
    """A rule judging each running container of every engine (system and rootless) with
    the view of its own engine (its settings, ``docker info``)."""

    def check(view: HostView) -> list[Hit]:
        hits: list[Hit] = []
        for engine_view in view.engine_views():
            found = _each(engine_view, test(engine_view))
            other = reworded(engine_view) if reworded else None
            if other is not None:
                found = [replace(hit, severity=other[0], meaning=other[1]) for hit in found]
            hits += found
        return hits

    return Rule(rule_id, severity, title, meaning, check, fix, manual)


def _same(test: Callable[[Container], str]) -> Callable[[HostView], Callable[[Container], str]]:
    return lambda view: test


RECREATE = (
    "Change how the container is started (docker run options or its compose file) and recreate it."
)

RULES: tuple[Rule, ...] = (
    # --- containers
    _container_rule(
        "container.privileged",
        CRITICAL,
        "Container runs privileged",
        "A privileged container has every capability and every host device: root in it can "
        "take over the host. Work out the few capabilities it really needs (--cap-add) instead.",
        _same(_privileged),
        manual=RECREATE,
    ),
    _container_rule(
        "container.docker-socket",
        CRITICAL,
        "Container holds the Docker socket",
        "Whoever controls the Docker socket can start a container that mounts the host's / and "
        "so is root on the host. Mounting it read-only does not help: the API is still "
        "writable through it. Give it only to tools that truly manage Docker, or use a "
        "filtering socket proxy.",
        _same(_socket_mount),
        manual=RECREATE,
    ),
    _container_rule(
        "container.sensitive-mount",
        HIGH,
        "Container mounts a sensitive host path",
        "Host folders such as /, /etc, /proc or /sys let the container read secrets and change "
        "the host's configuration or kernel settings. Mount only the folder the application "
        "needs, read-only where possible.",
        _same(_sensitive_mounts),
        manual=RECREATE,
    ),
    _container_rule(
        "container.host-pid",
        HIGH,
        "Container shares the host's process list",
        "With --pid=host the container sees every process on the host, can read their "
        "environment (passwords, tokens) and, with enough rights, signal or trace them.",
        _same(_shared("pid")),
        manual=RECREATE,
    ),
    _container_rule(
        "container.host-network",
        HIGH,
        "Container uses the host's network",
        "With --network=host the container can bind any port on every interface and reach "
        "services listening only on localhost; Docker's port publishing and its firewall rules "
        "do not apply to it.",
        _same(_shared("network")),
        manual=RECREATE,
    ),
    _container_rule(
        "container.host-ipc",
        MEDIUM,
        "Container shares the host's IPC namespace",
        "With --ipc=host the container can read and write shared memory of processes on the host.",
        _same(_shared("ipc")),
        manual=RECREATE,
    ),
    _container_rule(
        "container.dangerous-capability",
        HIGH,
        "Container has a powerful capability added",
        "Capabilities such as SYS_ADMIN, NET_ADMIN or SYS_PTRACE give root in the container "
        "powers over the host (mounting, changing the network, tracing processes). Keep only "
        "what the application needs.",
        _same(_dangerous_caps),
        manual=RECREATE,
    ),
    _container_rule(
        "container.capability-added",
        LOW,
        "Container has capabilities added",
        "Each added capability is a little more power for root in the container. Check that it "
        "is really needed.",
        _same(_other_caps),
        manual=RECREATE,
    ),
    _container_rule(
        "container.root-user",
        MEDIUM,
        "Container runs as root",
        "A process running as root in a container is one kernel bug away from root on the "
        "host (less so with userns-remap). Run it as an ordinary user (--user 1000, or USER in "
        "the Dockerfile).",
        _root_user,
        manual=RECREATE,
        reworded=_root_user_rootless,
    ),
    _container_rule(
        "container.capabilities-kept",
        LOW,
        "Container keeps Docker's default capabilities",
        "Docker gives containers about 14 capabilities (CHOWN, NET_RAW, SETUID…) whether they "
        "need them or not. --cap-drop ALL, then --cap-add only what is needed.",
        _same(_no_cap_drop),
        manual=RECREATE,
    ),
    _container_rule(
        "container.no-new-privileges",
        LOW,
        "Container may gain privileges through setuid",
        "Without no-new-privileges, a program like sudo or a setuid binary in the image can "
        "raise a process's privileges inside the container. The Docker engine step makes it "
        "the default for containers created after it; recreate older ones (or give them "
        "--security-opt no-new-privileges).",
        _no_new_privileges,
        fix="docker",
    ),
    _container_rule(
        "container.seccomp-unconfined",
        HIGH,
        "Container runs without seccomp",
        "seccomp blocks dangerous system calls (such as loading kernel modules or changing "
        "the clock); seccomp=unconfined turns that protection off.",
        _same(_seccomp_off),
        manual=RECREATE,
    ),
    _container_rule(
        "container.apparmor-unconfined",
        MEDIUM,
        "Container runs without AppArmor",
        "AppArmor limits which files a container may touch; apparmor=unconfined turns that "
        "protection off.",
        _same(_apparmor_off),
        manual=RECREATE,
    ),
    _container_rule(
        "container.port-open",
        MEDIUM,
        "Container port open on every address",
        "Docker opens published ports on all the host's addresses and its rules skip the "
        "host's INPUT firewall, so the port can be reached from the internet. Publish on one "
        "address (-p 127.0.0.1:8080:80) or let the firewall step filter container ports.",
        _open_ports,
        fix="firewall",
        reworded=_open_ports_rootless,
    ),
    # --- the API over TCP
    Rule(
        "daemon.tcp-no-tls",
        CRITICAL,
        "Docker API open on the network without TLS",
        "Anyone who can reach this port can run any container, including one that mounts the "
        "host's / : it is root on the host without a password. This is how most hijacked "
        "Docker hosts are taken over. Use TLS with client certificates (the TLS step).",
        _tcp_without_tls(local=False),
        fix="tls",
    ),
    Rule(
        "daemon.tcp-local-no-tls",
        HIGH,
        "Docker API on a local TCP port without TLS",
        "Every user and every program on this host can use the API on this port and so "
        "become root; the socket at least checks group membership.",
        _tcp_without_tls(local=True),
        fix="tls",
    ),
    Rule(
        "daemon.tls-no-verify",
        HIGH,
        "Docker API uses TLS but does not check clients",
        "tls without tlsverify encrypts the connection but lets anyone connect: it is as open "
        "as no TLS at all.",
        _tls_without_verify,
        fix="tls",
    ),
    # --- daemon.json
    Rule(
        "daemon.config-unreadable",
        HIGH,
        "daemon.json cannot be read",
        "dockerd refuses to start with a broken daemon.json: the next restart (or reboot) "
        "stops every container.",
        _per_engine(_config_unreadable),
        fix="docker",
    ),
    Rule(
        "daemon.no-userns",
        MEDIUM,
        "Container root is host root",
        "Without userns-remap (or rootless mode), root inside a container is the same user as "
        "root on the host: an escape from any container owns the host.",
        _no_userns,
        fix="docker",
    ),
    Rule(
        "daemon.no-new-privileges",
        MEDIUM,
        "Containers may gain privileges by default",
        "no-new-privileges as the daemon's default stops setuid programs (sudo, su) from "
        "raising privileges inside every container.",
        _per_engine(_setting("no-new-privileges", True, "setuid programs can raise privileges")),
        fix="docker",
    ),
    Rule(
        "daemon.icc",
        LOW,
        "Containers on the default bridge can all talk to each other",
        "With icc on, any container on docker0 can reach every other one's ports: one "
        "compromised container can attack the rest.",
        _per_engine(_setting("icc", False, "inter-container traffic allowed")),
        fix="docker",
    ),
    Rule(
        "daemon.live-restore",
        LOW,
        "Containers stop whenever dockerd restarts",
        "Without live-restore, upgrading or restarting Docker stops every container.",
        _setting("live-restore", True, "containers stop with dockerd", rootless=False),
        fix="docker",
    ),
    Rule(
        "daemon.userland-proxy",
        LOW,
        "The userland proxy is on",
        "docker-proxy runs one process per published port and hides the clients' addresses "
        "from the containers; iptables can do the same job.",
        _per_engine(_setting("userland-proxy", False, "one docker-proxy per port")),
        fix="docker",
    ),
    Rule(
        "daemon.log-limits",
        LOW,
        "Container logs grow without limit",
        "The default json-file driver keeps every log line forever: a chatty container can "
        "fill the disk and stop the host.",
        _per_engine(_log_limits),
        fix="docker",
    ),
    Rule(
        "daemon.experimental",
        LOW,
        "Experimental features are on",
        "Experimental features are not meant for production and change between versions.",
        _per_engine(_experimental),
        manual='Remove "experimental" from /etc/docker/daemon.json.',
    ),
    Rule(
        "daemon.insecure-registries",
        MEDIUM,
        "Images may be pulled without TLS",
        "An insecure registry is reached without checking its certificate: anyone on the way "
        "can hand you a different image.",
        _per_engine(_insecure_registries),
        manual='Remove "insecure-registries" from /etc/docker/daemon.json and give the '
        "registry a certificate.",
    ),
    Rule(
        "daemon.no-seccomp",
        HIGH,
        "Containers run without seccomp",
        "seccomp blocks dangerous system calls for every container; without it a container "
        "can use the whole kernel interface.",
        _per_engine(_no_seccomp),
        manual='Remove "seccomp-profile": "unconfined" from daemon.json; use a kernel with '
        "seccomp.",
    ),
    Rule(
        "daemon.rootless",
        INFO,
        "Docker runs rootless",
        "A rootless engine runs as an ordinary user: root in its containers is that user on "
        "the host, not root, and an escape gets only that user's rights. The audit checks its "
        "containers and its settings as the system engine's.",
        _rootless_engines,
    ),
    Rule(
        "daemon.system-at-boot",
        LOW,
        "The system Docker engine comes back at boot",
        "A rootless engine answers and the system (root) engine is stopped, but it is still "
        "started at boot: after a reboot a second engine runs with its own settings, where "
        "root in its containers is root on the host. Rootless mode (the Docker engine step) "
        "disables it.",
        _system_at_boot,
        fix="docker",
    ),
    Rule(
        "daemon.not-running",
        INFO,
        "Docker could not be asked about containers",
        "The container checks were skipped. Start Docker (or install it) and audit again.",
        _docker_down,
    ),
    # --- files
    Rule(
        "files.permissions",
        MEDIUM,
        "A Docker file is not owned by root or too open",
        "Whoever can change Docker's configuration, units or certificates can change how "
        "dockerd starts, and dockerd runs as root.",
        _loose_files,
        manual="chown root:root the file and chmod it as shown.",
    ),
    Rule(
        "files.tls-key",
        HIGH,
        "The Docker server's private key can be read by others",
        "Whoever reads the server key can pretend to be this Docker host to its clients.",
        _readable_keys,
        manual="chown root:root the key and chmod 600 it.",
    ),
    Rule(
        "socket.group-members",
        MEDIUM,
        "Users in the Docker socket's group are root",
        "Membership of the group that owns /var/run/docker.sock lets a user start a container "
        "that mounts the host's / : it is the same as root without a password. Keep the "
        "group empty and use sudo, or rootless Docker.",
        _socket_group,
        manual="Remove the users: gpasswd -d USER docker.",
    ),
    # --- certificates
    Rule(
        "tls.cert-expired",
        HIGH,
        "A Docker TLS certificate has expired",
        "Clients refuse an expired certificate: the Docker API over TLS no longer works.",
        _certificates(expired=True),
        fix="tls",
    ),
    Rule(
        "tls.cert-expiring",
        MEDIUM,
        "A Docker TLS certificate expires soon",
        f"It expires within {EXPIRY_WARNING_DAYS} days; after that clients refuse to connect. "
        "The TLS step issues a new one.",
        _certificates(expired=False),
        fix="tls",
    ),
    Rule(
        "tls.cert-days",
        INFO,
        "Docker TLS certificate validity",
        "How long the certificate is still valid.",
        _certificate_days,
    ),
    # --- sshd
    Rule(
        "ssh.empty-passwords",
        CRITICAL,
        "SSH accepts empty passwords",
        "An account without a password can log in over the network.",
        _sshd("permitemptypasswords", lambda v: v == "yes"),
        fix="ssh",
    ),
    Rule(
        "ssh.root-password-login",
        HIGH,
        "root may log in over SSH with a password",
        "Bots try root's password on every SSH server all day long; one good guess is the "
        "whole host.",
        _sshd("permitrootlogin", lambda v: v == "yes"),
        fix="ssh",
    ),
    Rule(
        "ssh.password-login",
        MEDIUM,
        "SSH accepts passwords",
        "Passwords can be guessed or phished; keys cannot. Log in with keys only.",
        _sshd("passwordauthentication", lambda v: v == "yes"),
        fix="ssh",
    ),
    Rule(
        "ssh.keyboard-interactive",
        MEDIUM,
        "SSH accepts keyboard-interactive logins",
        "Keyboard-interactive is usually a password prompt under another name.",
        _sshd("kbdinteractiveauthentication", lambda v: v == "yes"),
        fix="ssh",
    ),
    Rule(
        "ssh.root-key-login",
        LOW,
        "root may log in over SSH with a key",
        "Logging in as yourself and using sudo leaves a trace of who did what.",
        _sshd("permitrootlogin", lambda v: v in {"prohibit-password", "without-password"}),
        fix="ssh",
    ),
    Rule(
        "ssh.x11-forwarding",
        LOW,
        "SSH forwards X11",
        "A server rarely needs graphical forwarding; it is one more way in.",
        _sshd("x11forwarding", lambda v: v == "yes"),
        fix="ssh",
    ),
    Rule(
        "ssh.max-auth-tries",
        LOW,
        "SSH allows many login attempts per connection",
        "More tries per connection make guessing cheaper.",
        _sshd("maxauthtries", _too_many_tries),
        fix="ssh",
    ),
    Rule(
        "ssh.unknown",
        INFO,
        "sshd's settings could not be read",
        "The SSH checks were skipped.",
        _sshd_unknown,
    ),
    # --- firewall
    Rule(
        "firewall.none",
        HIGH,
        "No firewall",
        "Every service that listens on this host can be reached from every network it is on. "
        "A firewall lets each network reach only what it should.",
        _no_firewall,
        fix="firewall",
    ),
    Rule(
        "firewall.hostwiz-not-at-boot",
        MEDIUM,
        "hostwiz's firewall does not come back at boot",
        "After a reboot the host would run without its firewall.",
        _hostwiz_not_at_boot,
        fix="firewall",
    ),
    Rule(
        "firewall.not-saved",
        MEDIUM,
        "The firewall rules do not survive a reboot",
        "The rules live only in the kernel: after a reboot the host runs without them.",
        _rules_not_saved,
        fix="firewall",
    ),
    Rule(
        "firewall.forward-behind-docker",
        MEDIUM,
        "Your FORWARD rules do not filter containers",
        "Docker puts its own FORWARD rules first each time dockerd restarts, so rules added "
        "to FORWARD never see container traffic. Rules for containers belong in DOCKER-USER, "
        "which Docker leaves alone (the firewall step puts them there).",
        _forward_rules_behind_docker,
        fix="firewall",
    ),
    Rule(
        "host.forwarding-open",
        HIGH,
        "The host routes traffic for anyone",
        "IP forwarding is on and the FORWARD chain accepts everything: the host passes "
        "packets between all its networks.",
        _forwarding_open,
        fix="firewall",
    ),
    Rule(
        "host.forwarding",
        INFO,
        "IP forwarding is on",
        "Docker needs forwarding for containers to reach the network; the FORWARD policy "
        "drops what is not allowed.",
        _forwarding_on,
    ),
)
