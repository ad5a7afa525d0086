"""The audit's parsers and rules, from tables of real outputs.

A hardened host (every rule silent) is the base; each case changes one fact's output and
names the rule that must fire. Every rule has at least one case.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from wizard.audit import (
    AUDIT_FACTS,
    Finding,
    HostView,
    Severity,
    change,
    compare,
    failing,
    findings,
    findings_in,
    host_view,
)
from wizard.audit.facts import (
    PROCESS_MARK,
    ROOTLESS_ENGINES,
    SYSTEM_ENABLED,
    container_from,
    containers_waiting_for,
    parse_certificates,
    parse_containers,
    parse_listeners,
    parse_paths,
    parse_rootless_engines,
    parse_socket_group,
    parse_system_enabled,
)
from wizard.audit.report import as_json, as_text
from wizard.audit.rules import RULES
from wizard.audit.table import container_row
from wizard.audit.view import audit_facts
from wizard.errors import InvalidAnswer
from wizard.facts import Facts
from wizard.pki import CertificateAuthority

NOW = datetime(2026, 6, 1, tzinfo=UTC)
INFO_RULES = {"tls.cert-days", "host.forwarding"}
"""Rules that always report on a host with TLS and Docker (for information only)."""


@cache
def cert_pem(days_left: int) -> str:
    """A CA certificate (10 years) that expires ``days_left`` days after NOW, base64."""
    ca = CertificateAuthority.create("audit", now=NOW + timedelta(days=days_left - 3650))
    return base64.b64encode(ca.cert_pem).decode()


def inspect(name: str = "web", **changes: Any) -> dict[str, Any]:
    """A hardened container as ``docker inspect`` prints it (docker 20.10)."""
    data: dict[str, Any] = {
        "Id": "af8fd007ef69" + "0" * 52,
        "Name": f"/{name}",
        "AppArmorProfile": "docker-default",
        "State": {"Status": "running", "Pid": 4242},
        "Config": {"User": "1000", "Image": "hostwiz/busybox:latest"},
        "HostConfig": {
            "CapAdd": None,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Privileged": False,
            "PidMode": "",
            "NetworkMode": "default",
            "IpcMode": "private",
            "ReadonlyRootfs": True,
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
        },
        "Mounts": [
            {"Type": "volume", "Source": "/var/lib/docker/volumes/x/_data",
             "Destination": "/data", "RW": True},
            {"Type": "bind", "Source": "/srv/www", "Destination": "/www", "RW": False},
        ],
    }  # fmt: skip
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return data


DAEMON = {
    "icc": False, "live-restore": True, "no-new-privileges": True, "userland-proxy": False,
    "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "5"},
    "userns-remap": "default", "tls": True, "tlsverify": True,
    "tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/server-cert.pem",
    "tlskey": "/etc/docker/tls/server-key.pem",
    "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
}  # fmt: skip
IPTABLES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
:HOSTWIZ-INPUT - [0:0]
:HOSTWIZ-FORWARD - [0:0]
-A INPUT -j HOSTWIZ-INPUT
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -j HOSTWIZ-FORWARD
-A DOCKER-USER -j HOSTWIZ-FORWARD
-A DOCKER-USER -j RETURN
-A HOSTWIZ-INPUT -i lo -j ACCEPT
-A HOSTWIZ-INPUT -j DROP
COMMIT
"""
SSHD = """port 22
permitrootlogin no
passwordauthentication no
kbdinteractiveauthentication no
permitemptypasswords no
x11forwarding no
maxauthtries 3
"""
STAT = (
    "755|root|root|directory|/etc/docker\n"
    "644|root|root|regular file|/etc/docker/daemon.json\n"
    "660|root|docker|socket|/var/run/docker.sock\n"
    "644|root|root|regular file|/lib/systemd/system/docker.service\n"
    "700|root|root|directory|/etc/docker/tls\n"
    "644|root|root|regular file|/etc/docker/tls/ca.pem\n"
    "644|root|root|regular file|/etc/docker/tls/server-cert.pem\n"
    "600|root|root|regular file|/etc/docker/tls/server-key.pem\n"
)
INFO = {
    "ServerVersion": "20.10.24+dfsg1", "Containers": 1, "Images": 1,
    "SecurityOptions": ["name=apparmor", "name=seccomp,profile=default", "name=userns"],
}  # fmt: skip
ROOTLESS_INFO = {
    "ServerVersion": "20.10.24+dfsg1", "Containers": 1, "Images": 1,
    "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
}  # fmt: skip
ROOTLESS_CONFIG = {
    "icc": False, "no-new-privileges": True, "userland-proxy": False,
    "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "5"},
}  # fmt: skip
"""What the docker step's rootless mode writes to /etc/docker/rootless-admin.json."""


def daemon_file(config: dict[str, Any] | str) -> tuple[int, str]:
    text = config if isinstance(config, str) else json.dumps(config)
    return 0, "644 root root\n" + base64.b64encode(text.encode()).decode()


def good_raw() -> dict[str, tuple[int, str]]:
    """A host hardened by every hostwiz step, running one hardened container."""
    return {
        "file:/etc/docker/daemon.json": daemon_file(DAEMON),
        "dockerd": (0, "pid 98\narg /usr/sbin/dockerd\narg -p\narg /var/run/docker.pid\n"),
        "docker_info": (0, json.dumps(INFO) + "\n"),
        "audit:containers": containers(inspect(), process="4242 NoNewPrivs:\t1\n4242 Seccomp:\t2\n"),
        "audit:listeners": (0, 'LISTEN 0 4096 *:2376 *:* users:(("dockerd",pid=98,fd=9))\n'
                               'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=86,fd=3))\n'),
        "audit:paths": (0, STAT),
        "audit:certificates": (0, f"/etc/docker/tls/ca.pem {cert_pem(3000)}\n"),
        "audit:socket_group": (0, "group docker:x:105:\n"),
        "audit:now": (0, f"{int(NOW.timestamp())}\n"),
        "sshd_effective": (0, SSHD),
        "iptables_v4": (0, IPTABLES),
        "iptables_v6": (0, IPTABLES),
        "audit:nft_tables": (0, "table ip filter\ntable ip nat\n"),
        "firewall_tools": (0, "iptables-restore\ndockerd\n"),
        "firewall_boot_registered": (0, "init\n"),
        "audit:firewall_files": (0, ""),
        "ip_forwarding": (0, "1\n0\n"),
        "service_manager": (0, "sysv\n"),
        "audit:rootless_engines": (0, ""),
        "audit:system_enabled": (0, ""),
    }  # fmt: skip


def audit_of(**changes: tuple[int, str]) -> list[Finding]:
    raw = good_raw()
    raw.update(changes)
    return findings(Facts.from_raw(AUDIT_FACTS, raw))


def ids(found: list[Finding]) -> set[str]:
    return {f.id for f in found}


def containers(*items: dict[str, Any], process: str = "") -> tuple[int, str]:
    """``docker inspect`` output of ``items``, then their main processes' status lines."""
    return 0, json.dumps(list(items), indent=4) + f"\n{PROCESS_MARK}\n{process}"


def config(**changes: Any) -> tuple[int, str]:
    settings = copy.deepcopy(DAEMON)
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return daemon_file(settings)


def sshd(**changes: str) -> tuple[int, str]:
    lines = [line for line in SSHD.splitlines() if line.split()[0] not in changes]
    return 0, "\n".join(lines + [f"{k} {v}" for k, v in changes.items()]) + "\n"


BIND_ROOT = [{"Type": "bind", "Source": "/", "Destination": "/host", "RW": False}]
SOCKET = [{"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock",
           "RW": False}]  # fmt: skip
EVERYWHERE = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
NO_FIREWALL = ":INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\n"

BAD: list[tuple[str, dict[str, tuple[int, str]]]] = [
    (
        "container.privileged",
        {"audit:containers": containers(inspect(HostConfig__Privileged=True))},
    ),
    ("container.docker-socket", {"audit:containers": containers(inspect(Mounts=SOCKET))}),
    ("container.sensitive-mount", {"audit:containers": containers(inspect(Mounts=BIND_ROOT))}),
    ("container.host-pid", {"audit:containers": containers(inspect(HostConfig__PidMode="host"))}),
    (
        "container.host-network",
        {"audit:containers": containers(inspect(HostConfig__NetworkMode="host"))},
    ),
    ("container.host-ipc", {"audit:containers": containers(inspect(HostConfig__IpcMode="host"))}),
    (
        "container.dangerous-capability",
        {"audit:containers": containers(inspect(HostConfig__CapAdd=["CAP_SYS_ADMIN"]))},
    ),
    (
        "container.capability-added",
        {"audit:containers": containers(inspect(HostConfig__CapAdd=["NET_BIND_SERVICE"]))},
    ),
    ("container.root-user", {"audit:containers": containers(inspect(Config__User=""))}),
    (
        "container.capabilities-kept",
        {"audit:containers": containers(inspect(HostConfig__CapDrop=None))},
    ),
    (
        "container.no-new-privileges",
        {
            "audit:containers": containers(inspect(HostConfig__SecurityOpt=None)),
            "file:/etc/docker/daemon.json": config(no_new_privileges=None),
        },
    ),
    (
        "container.no-new-privileges",
        {  # created before the daemon's default was set
            "audit:containers": containers(
                inspect(HostConfig__SecurityOpt=None),
                process="4242 NoNewPrivs:\t0\n4242 Seccomp:\t2\n",
            )
        },
    ),
    (
        "container.seccomp-unconfined",
        {
            "audit:containers": containers(
                inspect(), process="4242 NoNewPrivs:\t1\n4242 Seccomp:\t0\n"
            )
        },
    ),
    (
        "container.seccomp-unconfined",
        {
            "audit:containers": containers(
                inspect(HostConfig__SecurityOpt=["no-new-privileges", "seccomp=unconfined"])
            )
        },
    ),
    (
        "container.apparmor-unconfined",
        {
            "audit:containers": containers(
                inspect(HostConfig__SecurityOpt=["no-new-privileges", "apparmor:unconfined"])
            )
        },
    ),
    (
        "container.port-open",
        {
            "audit:containers": containers(inspect(HostConfig__PortBindings=EVERYWHERE)),
            "iptables_v4": (0, IPTABLES.replace("-A DOCKER-USER -j HOSTWIZ-FORWARD\n", "")),
        },
    ),
    (
        "daemon.tcp-no-tls",
        {
            "file:/etc/docker/daemon.json": config(
                tls=None,
                tlsverify=None,
                hosts=["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"],
            )
        },
    ),
    (
        "daemon.tcp-no-tls",
        {  # on dockerd's command line instead of daemon.json
            "file:/etc/docker/daemon.json": config(tls=None, tlsverify=None, hosts=None),
            "dockerd": (0, "pid 98\narg /usr/sbin/dockerd\narg -H\narg tcp://0.0.0.0:2375\n"),
        },
    ),
    (
        "daemon.tcp-no-tls",
        {  # only seen listening (socket activation, another config)
            "file:/etc/docker/daemon.json": config(tls=None, tlsverify=None, hosts=None),
            "audit:listeners": (0, 'LISTEN 0 4096 *:2375 *:* users:(("dockerd",pid=9,fd=9))\n'),
        },
    ),
    (
        "daemon.tcp-local-no-tls",
        {
            "file:/etc/docker/daemon.json": config(
                tls=None, tlsverify=None, hosts=["tcp://127.0.0.1:2375"]
            )
        },
    ),
    ("daemon.tls-no-verify", {"file:/etc/docker/daemon.json": config(tlsverify=False)}),
    ("daemon.config-unreadable", {"file:/etc/docker/daemon.json": daemon_file('{"icc": false,}')}),
    (
        "daemon.no-userns",
        {
            "file:/etc/docker/daemon.json": config(userns_remap=None),
            "docker_info": (0, json.dumps({**INFO, "SecurityOptions": ["name=seccomp"]})),
        },
    ),
    ("daemon.no-new-privileges", {"file:/etc/docker/daemon.json": config(no_new_privileges=None)}),
    ("daemon.icc", {"file:/etc/docker/daemon.json": config(icc=None)}),
    ("daemon.live-restore", {"file:/etc/docker/daemon.json": config(live_restore=False)}),
    ("daemon.userland-proxy", {"file:/etc/docker/daemon.json": config(userland_proxy=None)}),
    ("daemon.log-limits", {"file:/etc/docker/daemon.json": config(log_opts=None)}),
    ("daemon.experimental", {"file:/etc/docker/daemon.json": config(experimental=True)}),
    (
        "daemon.insecure-registries",
        {"file:/etc/docker/daemon.json": config(insecure_registries=["10.0.0.5:5000"])},
    ),
    (
        "daemon.no-seccomp",
        {"docker_info": (0, json.dumps({**INFO, "SecurityOptions": ["name=userns"]}))},
    ),
    ("daemon.no-seccomp", {"file:/etc/docker/daemon.json": config(seccomp_profile="unconfined")}),
    (
        "daemon.not-running",
        {"audit:containers": (1, ""), "docker_info": (1, ""), "dockerd": (0, "")},
    ),
    (
        "daemon.rootless",
        {
            "audit:rootless_engines": (
                0,
                "@@engine 1000 admin /run/user/1000/docker.sock\n@@info\n"
                + json.dumps(ROOTLESS_INFO)
                + "\n@@containers 0\n",
            )
        },
    ),
    (
        "daemon.system-at-boot",
        {
            "audit:containers": (1, ""),
            "docker_info": (1, ""),
            "dockerd": (0, ""),
            "audit:rootless_engines": (
                0,
                "@@engine 1000 admin /run/user/1000/docker.sock\n@@info\n"
                + json.dumps(ROOTLESS_INFO)
                + "\n@@containers 0\n@@system\nenabled /etc/rc2.d/S01docker\n",
            ),
            "audit:system_enabled": (0, "@@system\nenabled /etc/rc2.d/S01docker\n"),
        },
    ),
    (
        "files.permissions",
        {
            "audit:paths": (
                0,
                STAT.replace(
                    "644|root|root|regular file|/etc/docker/daemon.json",
                    "666|root|root|regular file|/etc/docker/daemon.json",
                ),
            )
        },
    ),
    (
        "files.permissions",
        {"audit:paths": (0, STAT.replace("660|root|docker|socket", "660|root|admin|socket"))},
    ),
    (
        "files.tls-key",
        {
            "audit:paths": (
                0,
                STAT.replace(
                    "600|root|root|regular file|/etc/docker/tls/server-key.pem",
                    "644|root|root|regular file|/etc/docker/tls/server-key.pem",
                ),
            )
        },
    ),
    ("socket.group-members", {"audit:socket_group": (0, "group docker:x:105:admin,bob\n")}),
    ("socket.group-members", {"audit:socket_group": (0, "group docker:x:105:\nprimary ci\n")}),
    ("tls.cert-expired", {"audit:certificates": (0, f"/etc/docker/tls/ca.pem {cert_pem(-2)}\n")}),
    ("tls.cert-expiring", {"audit:certificates": (0, f"/etc/docker/tls/ca.pem {cert_pem(10)}\n")}),
    ("tls.cert-days", {}),
    ("ssh.empty-passwords", {"sshd_effective": sshd(permitemptypasswords="yes")}),
    ("ssh.root-password-login", {"sshd_effective": sshd(permitrootlogin="yes")}),
    ("ssh.password-login", {"sshd_effective": sshd(passwordauthentication="yes")}),
    ("ssh.keyboard-interactive", {"sshd_effective": sshd(kbdinteractiveauthentication="yes")}),
    ("ssh.root-key-login", {"sshd_effective": sshd(permitrootlogin="without-password")}),
    ("ssh.x11-forwarding", {"sshd_effective": sshd(x11forwarding="yes")}),
    ("ssh.max-auth-tries", {"sshd_effective": sshd(maxauthtries="6")}),
    ("ssh.unknown", {"sshd_effective": (1, "")}),
    ("firewall.none", {"iptables_v4": (0, "*filter\n" + NO_FIREWALL + "COMMIT\n")}),
    ("firewall.hostwiz-not-at-boot", {"firewall_boot_registered": (0, "")}),
    (
        "firewall.not-saved",
        {
            "iptables_v4": (
                0,
                IPTABLES.replace("HOSTWIZ-INPUT", "MINE")
                .replace("HOSTWIZ-FORWARD", "OTHER")
                .replace("-j MINE", "-j DROP"),
            )
        },
    ),
    (
        "firewall.forward-behind-docker",
        {
            "iptables_v4": (
                0,
                IPTABLES.replace(
                    "-A FORWARD -j HOSTWIZ-FORWARD", "-A FORWARD -s 10.9.0.0/16 -j DROP"
                ),
            )
        },
    ),
    (
        "host.forwarding-open",
        {"iptables_v4": (0, IPTABLES.replace(":FORWARD DROP", ":FORWARD ACCEPT"))},
    ),
    ("host.forwarding", {}),
]


def test_the_hardened_host_has_only_information() -> None:
    found = audit_of()
    assert ids(found) == INFO_RULES, [f.evidence for f in found]
    assert all(f.severity is Severity.INFO for f in found)


@pytest.mark.parametrize(("rule", "changes"), BAD, ids=[case[0] for case in BAD])
def test_each_rule_fires_on_its_bad_input(rule: str, changes: dict[str, tuple[int, str]]) -> None:
    found = audit_of(**changes)
    assert rule in ids(found), [f.id for f in found]
    finding = next(f for f in found if f.id == rule)
    assert finding.evidence and finding.meaning and finding.title
    assert finding.fix or finding.manual or finding.severity is Severity.INFO


def test_every_rule_has_a_bad_case_and_words() -> None:
    assert {rule.id for rule in RULES} <= {case[0] for case in BAD}
    assert len({rule.id for rule in RULES}) == len(RULES)
    fixes = {rule.fix for rule in RULES} - {None}
    assert fixes <= {"docker", "tls", "firewall", "ssh"}


def test_the_hardened_container_stays_silent_beside_a_risky_one() -> None:
    risky = inspect(
        "risky", Config__User="", HostConfig__CapAdd=["CAP_NET_ADMIN"], HostConfig__CapDrop=None,
        HostConfig__PidMode="host", HostConfig__PortBindings=EVERYWHERE,
        HostConfig__SecurityOpt=["label=disable"], Mounts=SOCKET,
    )  # fmt: skip
    no_filter = IPTABLES.replace("-A DOCKER-USER -j HOSTWIZ-FORWARD\n", "")
    found = audit_of(**{"audit:containers": containers(inspect("hard"), risky),
                        "iptables_v4": (0, no_filter)})  # fmt: skip
    about = {(f.id, f.subject) for f in found if f.id.startswith("container.")}
    assert {subject for _, subject in about} == {"risky"}
    assert about == {
        ("container.docker-socket", "risky"), ("container.dangerous-capability", "risky"),
        ("container.host-pid", "risky"), ("container.port-open", "risky"),
        ("container.root-user", "risky"), ("container.capabilities-kept", "risky"),
    }  # fmt: skip


def test_severity_order_and_threshold() -> None:
    found = audit_of(**{"sshd_effective": sshd(passwordauthentication="yes", x11forwarding="yes")})
    assert [f.severity for f in found] == sorted((f.severity for f in found),
                                                 key=lambda s: -s.rank)  # fmt: skip
    assert failing(found, Severity.HIGH) == []
    assert {f.id for f in failing(found, Severity.MEDIUM)} == {"ssh.password-login"}
    assert Severity.named(" High ") is Severity.HIGH
    with pytest.raises(InvalidAnswer, match="not a severity"):
        Severity.named("severe")


def test_compare_tells_what_a_change_fixed_and_what_it_brought() -> None:
    before = audit_of(**{"sshd_effective": sshd(passwordauthentication="yes"),
                         "file:/etc/docker/daemon.json": config(icc=None)})  # fmt: skip
    after = audit_of(**{"sshd_effective": sshd(x11forwarding="yes"),
                        "file:/etc/docker/daemon.json": config(icc=None)})  # fmt: skip
    diff = compare(before, after)
    assert [f.id for f in diff.fixed] == ["ssh.password-login"]
    assert [f.id for f in diff.new] == ["ssh.x11-forwarding"]
    assert "daemon.icc" in {f.id for f in diff.remaining}
    assert diff.lines()[0].startswith("fixed: [medium] SSH accepts passwords")
    with_tls = compare(audit_of(**{"audit:certificates": (0, "")}), audit_of())
    assert "tls.cert-days" in {f.id for f in with_tls.new}
    assert not any(line.startswith("new:") for line in with_tls.lines())  # information only
    assert not compare(after, after).changed
    assert compare(after, after).lines() == ["The audit finds the same things as before."]


def test_report_text_and_json() -> None:
    raw = good_raw()
    raw["audit:containers"] = containers(inspect("risky", Config__User=""))
    facts = Facts.from_raw(AUDIT_FACTS, raw)
    view, found = host_view(facts), findings(facts)
    data = as_json("web1", view, found, Severity.MEDIUM)
    assert data["failed"] and data["counts"]["medium"] == 1
    assert data["containers"][0]["cells"]["user"] == {"value": "root (image default)",
                                                      "risky": True}  # fmt: skip
    assert json.loads(json.dumps(data)) == data
    text = as_text("web1", view, found)
    assert "Container runs as root  [risky]" in text and "Why it matters:" in text


# ---- parsers -------------------------------------------------------------------------------


def test_parse_containers() -> None:
    assert parse_containers(1, "Cannot connect to the Docker daemon") is None
    assert parse_containers(0, "") == ()
    assert parse_containers(0, "not json") is None
    (c,) = parse_containers(0, json.dumps([inspect(HostConfig__CapAdd=["CAP_NET_ADMIN"])])) or ()
    assert c.name == "web" and c.cap_add == ("NET_ADMIN",) and c.cap_drop == ("ALL",)
    assert [m.source for m in c.binds] == ["/srv/www"]  # volumes are not bind mounts
    assert c.ports[0].describe() == "127.0.0.1:8080 -> 80/tcp" and not c.ports[0].all_addresses
    assert c.no_new_privileges and not c.runs_as_root


def test_the_kernel_says_how_the_process_really_runs() -> None:
    out = containers(
        inspect("a"),
        inspect("b", State={"Pid": 77}),
        process="4242 NoNewPrivs:\t0\n4242 Seccomp:\t2\n77 Seccomp:\t0\n",
    )[1]
    a, b = parse_containers(0, out) or ()
    assert (a.pid, a.process_no_new_privs, a.process_seccomp) == (4242, False, 2)
    assert (b.pid, b.process_no_new_privs, b.process_seccomp) == (77, None, 0)
    assert a.no_new_privileges  # what it was asked for, not what it got


@pytest.mark.parametrize(
    ("user", "root"), [("", True), ("0", True), ("root:root", True), ("1000:1000", False),
                       ("nobody", False)],
)  # fmt: skip
def test_root_user(user: str, root: bool) -> None:
    assert container_from(inspect(Config__User=user)).runs_as_root is root


def test_security_options_in_both_spellings() -> None:
    c = container_from(inspect(HostConfig__SecurityOpt=["seccomp:unconfined",
                                                         "no-new-privileges:true"]))  # fmt: skip
    assert c.option("seccomp") == "unconfined" and c.no_new_privileges


def test_parse_listeners() -> None:
    out = (
        'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=86,fd=3))\n'
        'LISTEN 0 4096 [::]:2375 [::]:* users:(("dockerd",pid=98,fd=7))\n'
        "LISTEN 0 4096 127.0.0.1%lo:631 0.0.0.0:*\n"
        "garbage\n"
    )
    found = parse_listeners(0, out)
    assert [(x.address, x.port, x.process) for x in found] == [
        ("0.0.0.0", 22, "sshd"), ("::", 2375, "dockerd"), ("127.0.0.1", 631, "")]  # fmt: skip


def test_parse_paths_socket_group_and_certificates() -> None:
    (info,) = parse_paths(0, "660|root|docker|socket|/var/run/docker.sock\nbroken line\n")
    assert (info.mode, info.owner, info.group, info.kind) == (0o660, "root", "docker", "socket")
    group = parse_socket_group(0, "group docker:x:105:admin,bob\nprimary ci\nprimary admin\n")
    assert group.name == "docker" and group.members == ("admin", "bob", "ci")
    assert parse_socket_group(0, "").members == ()
    certs = parse_certificates(0, f"/a.pem {cert_pem(100)}\n/b.pem bm90IGEgY2VydA==\n")
    assert certs[0].not_after is not None and certs[0].subject == "hostwiz CA audit"
    assert certs[1].not_after is None


def test_table_marks_risky_cells() -> None:
    view = host_view(Facts.from_raw(AUDIT_FACTS, good_raw()))
    hard = container_row(container_from(inspect()), view)
    assert not any(cell.risky for cell in hard), hard
    risky = container_row(container_from(inspect(Mounts=SOCKET, HostConfig__PidMode="host")),
                          view)  # fmt: skip
    marked = {cell.column for cell in risky if cell.risky}
    assert marked == {"bind mounts", "host namespaces"}


# ---- the audit after a change: containers that do not run (yet) -------------------------------

OLD = inspect("old", Config__User="", HostConfig__CapDrop=None, HostConfig__SecurityOpt=None,
              HostConfig__RestartPolicy={"Name": "always", "MaximumRetryCount": 0},
              State={"Status": "running", "Pid": 4243})  # fmt: skip
"""A container running as root with Docker's default capabilities, whose process may gain
privileges (created before the daemon's default), restarted by dockerd."""
OLD_PROCESS = "4243 NoNewPrivs:\t0\n4243 Seccomp:\t2\n"


def view_of(**changes: tuple[int, str]) -> HostView:
    raw = good_raw()
    raw.update(changes)
    return host_view(Facts.from_raw(AUDIT_FACTS, raw))


def test_a_container_that_does_not_run_at_the_second_audit_is_not_fixed() -> None:
    """dockerd's restart stops the containers and starts those with a restart policy again a
    moment later: an audit in between does not see them. Their findings were not checked, so
    they are not "fixed" (this used to list all three as fixed)."""
    before = view_of(**{"audit:containers": containers(inspect(), OLD, process=OLD_PROCESS)})
    about_old = {f.id for f in findings_in(before) if f.subject == "old"}
    assert about_old == {"container.root-user", "container.capabilities-kept",
                         "container.no-new-privileges"}  # fmt: skip
    assert all(f.container == "old" for f in findings_in(before) if f.subject == "old")
    after = view_of()  # only "web" runs
    diff = change(before, after)
    assert not diff.fixed and not diff.new
    assert {(f.id, f.container) for f in diff.not_running} == {(i, "old") for i in about_old}
    lines = diff.lines()
    assert "not running now: [medium] Container runs as root (old)" in lines
    assert not any(line.startswith(("fixed:", "new:")) for line in lines)
    assert "old did not run when the host was audited again" in lines[-1]
    assert "not fixed" in lines[-1]
    # compare itself: without the second audit's running containers (unknown, or Docker could
    # not be asked), no container finding that is gone is called fixed either.
    plain = compare(findings_in(before), findings_in(after))
    assert not plain.fixed and len(plain.not_running) == 3
    docker_down = view_of(**{"audit:containers": (1, ""), "docker_info": (1, "")})
    assert about_old <= {f.id for f in change(before, docker_down).not_running}


def test_a_running_container_whose_finding_is_gone_is_fixed() -> None:
    before = view_of(**{"audit:containers": containers(inspect(), OLD, process=OLD_PROCESS)})
    recreated = copy.deepcopy(OLD)
    recreated["Config"]["User"] = "1000"
    after = view_of(**{"audit:containers": containers(inspect(), recreated, process=OLD_PROCESS)})
    diff = change(before, after)
    assert [(f.id, f.subject) for f in diff.fixed] == [("container.root-user", "old")]
    assert not diff.not_running
    assert diff.lines() == ["fixed: [medium] Container runs as root (old)"]


def test_who_the_audit_after_a_change_waits_for() -> None:
    view = view_of(**{"audit:containers": containers(
        inspect("web"), OLD, inspect("later", HostConfig__RestartPolicy={"Name": "unless-stopped"}),
        inspect("once", HostConfig__RestartPolicy={"Name": "on-failure"}),
        inspect("looping", HostConfig__RestartPolicy={"Name": "always"},
                State={"Status": "restarting", "Pid": 0}),
    )})  # fmt: skip
    assert view.restarted_with_dockerd == ("old", "later")  # not "looping": it does not run
    assert view.running == {"web", "old", "later", "once", "looping"}
    assert view_of(**{"audit:containers": (1, "")}).running is None
    assert audit_facts() == AUDIT_FACTS  # nothing to wait for: the plain audit
    waiting = audit_facts(["old"])
    assert [f.name for f in waiting] == [f.name for f in AUDIT_FACTS]
    (listing,) = [f for f in waiting if f.name == "audit:containers"]
    assert listing.command.endswith(containers_waiting_for(()).command)
    assert "timeout 10 " in listing.command and " old " in listing.command


FAKE_DOCKER = """#!/bin/sh
# dockerd after its restart: it answers, but lists the container only from the 2nd call on.
calls=$(($(cat "$STATE/calls" 2>/dev/null || echo 0) + 1)); echo "$calls" > "$STATE/calls"
echo "$*" >> "$STATE/log"
[ "$3" = inspect ] && exec cat "$STATE/inspect.json"
[ "$calls" -ge 2 ] || exit 0
[ "$4" = -q ] && echo af8fd007ef69 || echo old
"""


@pytest.mark.parametrize("waits", [False, True])
def test_the_container_list_waits_for_a_container_docker_restarts(
    tmp_path: Path, waits: bool
) -> None:
    """The real shell command, with a fake ``docker`` that lists the container only from its
    second call: the plain listing misses it, the listing of the audit after a change waits
    (polling ``docker ps``) until it runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "inspect.json").write_text(json.dumps([inspect("old", State={"Pid": 0})]))
    fact = containers_waiting_for(["old"] if waits else [])
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(tmp_path)}
    ran = subprocess.run(["sh", "-c", fact.command], capture_output=True, text=True, env=env,
                         timeout=60, check=False)  # fmt: skip
    listed = fact.parse(ran.returncode, ran.stdout)
    assert [c.name for c in listed or ()] == (["old"] if waits else [])
    calls = (tmp_path / "log").read_text().splitlines()
    poll = "-H unix:///var/run/docker.sock ps --filter status=running --format {{.Names}}"
    assert calls.count(poll) == (2 if waits else 0)  # not listed yet, then listed


# ---- rootless engines ----------------------------------------------------------------------

ADMIN = "admin's rootless engine"


def rootless_engine(
    *items: dict[str, Any],
    user: str = "admin",
    uid: int = 1000,
    settings: dict[str, Any] | str | None = None,
    process: str = "",
) -> str:
    """One engine's block of the rootless-engines fact, as its command prints it."""
    config = ROOTLESS_CONFIG if settings is None else settings
    text = config if isinstance(config, str) else json.dumps(config)
    _, inspected = containers(*items, process=process) if items else (0, "")
    return (
        f"@@engine {uid} {user} /run/user/{uid}/docker.sock\n@@info\n{json.dumps(ROOTLESS_INFO)}\n"
        f"@@containers 0\n{inspected}\n"
        f"@@config /etc/docker/rootless-{user}.json\ndata\n{base64.b64encode(text.encode()).decode()}\n"
    )


def rootless_mode(*engines: str, enabled: str = "", **changes: tuple[int, str]) -> HostView:
    """The host as the docker step's rootless mode leaves it: the system engine stopped
    (and disabled unless ``enabled`` names what starts it), the rootless ``engines``
    answering; the system daemon.json is left from a rootful mode, without userns-remap."""
    out = "".join(engines) + (f"@@system\n{enabled}\n" if engines else "")
    raw = {
        "dockerd": (0, "shell_nofile 1048576\n"),
        "docker_info": (1, ""),
        "audit:containers": (1, ""),
        "file:/etc/docker/daemon.json": config(userns_remap=None, icc=None, live_restore=None),
        "audit:rootless_engines": (0, out),
        "audit:system_enabled": (0, out),
        **changes,
    }
    return view_of(**raw)


def about(found: list[Finding], subject: str) -> set[str]:
    return {f.id for f in found if f.subject == subject}


def test_rootless_mode_audits_the_engine_that_runs() -> None:
    """Rootless mode stopped and disabled the system engine: no "could not ask Docker", its
    old settings are not judged, and the rootless engine is named with its settings file."""
    view = rootless_mode(rootless_engine(inspect()))
    found = findings_in(view)
    assert "daemon.not-running" not in ids(found)
    assert not {"daemon.no-userns", "daemon.icc", "daemon.live-restore"} & ids(found)
    (engine,) = [f for f in found if f.id == "daemon.rootless"]
    assert engine.severity is Severity.INFO and engine.subject == ADMIN and engine.engine == ADMIN
    assert "/run/user/1000/docker.sock" in engine.evidence
    assert "/etc/docker/rootless-admin.json" in engine.evidence
    assert "the system (root) engine is off and disabled" in engine.evidence
    assert "daemon.system-at-boot" not in ids(found)
    # the hardened container under it is silent, as under the system engine
    assert not [f for f in found if f.container]
    assert view.running == frozenset({"web (admin's rootless engine)"})


def test_before_rootless_engines_were_audited() -> None:
    """What the audit said of the same host before it asked rootless engines: the stopped
    system engine only (kept as the case the new facts change)."""
    view = rootless_mode(rootless_engine(inspect("app", Config__User="")))
    plain = replace(view, rootless_engines=())
    assert "daemon.not-running" in ids(findings_in(plain))
    assert "daemon.not-running" not in ids(findings_in(view))


def test_root_in_a_rootless_container_is_milder_and_says_why() -> None:
    root = inspect("app", Config__User="")
    found = findings_in(rootless_mode(rootless_engine(root)))
    (finding,) = [f for f in found if f.id == "container.root-user"]
    assert finding.severity is Severity.LOW
    assert finding.subject == finding.container == "app (admin's rootless engine)"
    assert finding.engine == ADMIN
    assert "root in the container is admin (uid 1000) on the host, not root" in finding.evidence
    assert "not the whole host" in finding.meaning
    # the same container under a system engine without userns-remap stays medium
    system = findings_in(view_of(**{
        "audit:containers": containers(root),
        "file:/etc/docker/daemon.json": config(userns_remap=None),
        "docker_info": (0, json.dumps({**INFO, "SecurityOptions": ["name=seccomp"]})),
    }))  # fmt: skip
    (rootful,) = [f for f in system if f.id == "container.root-user"]
    assert rootful.severity is Severity.MEDIUM and rootful.engine == ""
    assert "daemon.no-userns" in ids(system)
    assert "daemon.no-userns" not in ids(found)


def test_a_rootless_engines_containers_get_the_same_rules() -> None:
    risky = inspect(
        "risky", HostConfig__Privileged=True, HostConfig__CapAdd=["CAP_SYS_ADMIN"],
        HostConfig__PidMode="host", Mounts=BIND_ROOT, HostConfig__SecurityOpt=None,
        HostConfig__CapDrop=None,
    )  # fmt: skip
    view = rootless_mode(
        rootless_engine(risky, settings={**ROOTLESS_CONFIG, "no-new-privileges": None})
    )
    found = findings_in(view)
    assert {
        "container.privileged", "container.dangerous-capability", "container.host-pid",
        "container.sensitive-mount", "container.no-new-privileges",
    } <= about(found, "risky (admin's rootless engine)")  # fmt: skip
    assert all(f.engine == ADMIN for f in found if f.container)
    privileged = next(f for f in found if f.id == "container.privileged")
    assert privileged.severity is Severity.CRITICAL


def test_a_rootless_engines_settings_are_its_own_file() -> None:
    settings = {"log-driver": "json-file", "experimental": True}
    found = findings_in(rootless_mode(rootless_engine(settings=settings)))
    judged = about(found, ADMIN)
    assert {"daemon.icc", "daemon.no-new-privileges", "daemon.userland-proxy",
            "daemon.log-limits", "daemon.experimental"} <= judged  # fmt: skip
    # what rootless mode does not support or already solves is not asked of it
    assert not {"daemon.live-restore", "daemon.no-userns"} & judged
    icc = next(f for f in found if f.id == "daemon.icc")
    assert icc.evidence.startswith("/etc/docker/rootless-admin.json: icc: not set")
    assert icc.engine == ADMIN and icc.fix == "docker"
    broken = findings_in(rootless_mode(rootless_engine(settings='{"icc": false,}')))
    (unreadable,) = [f for f in broken if f.id == "daemon.config-unreadable"]
    assert unreadable.subject == ADMIN
    assert unreadable.evidence.startswith("/etc/docker/rootless-admin.json cannot be parsed")


def test_a_rootless_engines_port_goes_through_the_hosts_input_firewall() -> None:
    """rootlesskit opens published ports on the host itself: the INPUT chain filters them
    (DOCKER-USER does not see them), so only a host without an INPUT firewall is open."""
    web = inspect("web", HostConfig__PortBindings=EVERYWHERE)
    no_docker_user = IPTABLES.replace("-A DOCKER-USER -j HOSTWIZ-FORWARD\n", "")
    filtered = rootless_mode(rootless_engine(web), iptables_v4=(0, no_docker_user))
    assert "container.port-open" not in ids(findings_in(filtered))
    (row,) = as_json("h", filtered, [], None)["containers"]
    assert not row["cells"]["ports"]["risky"]
    open_host = rootless_mode(
        rootless_engine(web), iptables_v4=(0, "*filter\n" + NO_FIREWALL + "COMMIT\n")
    )
    (port,) = [f for f in findings_in(open_host) if f.id == "container.port-open"]
    assert port.subject == "web (admin's rootless engine)" and "rootlesskit" in port.meaning


def test_a_system_engine_that_comes_back_at_boot() -> None:
    found = findings_in(rootless_mode(rootless_engine(), enabled="enabled docker.service"))
    (boot,) = [f for f in found if f.id == "daemon.system-at-boot"]
    assert boot.severity is Severity.LOW and "docker.service" in boot.evidence
    info = next(f for f in found if f.id == "daemon.rootless")
    assert "starts again at boot" in info.evidence


def test_the_docker_group_under_rootless_mode_is_root_only_once_the_system_engine_runs() -> None:
    """Rootless mode stopped and disabled the system engine: its group's members are not root
    now (nothing root listens on its socket), but they are the moment it is started again."""
    members = {"audit:socket_group": (0, "group docker:x:105:admin,bob\n")}
    (group,) = [f for f in findings_in(rootless_mode(rootless_engine(), **members))
                if f.id == "socket.group-members"]  # fmt: skip
    assert group.severity is Severity.LOW and group.subject == "docker"
    assert group.title == "The Docker socket's group still has members"
    assert "group docker: admin, bob" in group.evidence and "not root now" in group.evidence
    assert "they get root if the system engine is started again" in group.meaning
    assert group.manual == "Remove the users: gpasswd -d USER docker."
    # It comes back at boot, or it runs: they are root (the rule's own words and severity).
    at_boot = rootless_mode(rootless_engine(), enabled="enabled docker.service", **members)
    rootful = view_of(**members)
    for view in (at_boot, rootful):
        (root,) = [f for f in findings_in(view) if f.id == "socket.group-members"]
        assert root.severity is Severity.MEDIUM
        assert root.title == "Users in the Docker socket's group are root"
        assert root.meaning.startswith("Membership of the group that owns /var/run/docker.sock")
        assert root.evidence == "group docker: admin, bob"


def test_both_engines_run_and_each_is_judged() -> None:
    """The system engine still runs beside a rootless one: both are audited, and a container
    called web under each is two containers."""
    view = view_of(**{
        "audit:containers": containers(inspect("web", Config__User="")),
        "audit:rootless_engines": (0, rootless_engine(inspect("web", Config__User=""))),
    })  # fmt: skip
    found = findings_in(view)
    roots = {(f.subject, f.severity) for f in found if f.id == "container.root-user"}
    assert roots == {("web", Severity.MEDIUM), ("web (admin's rootless engine)", Severity.LOW)}
    info = next(f for f in found if f.id == "daemon.rootless")
    assert "the system (root) engine runs too" in info.evidence
    assert "daemon.system-at-boot" not in ids(found)


def test_parse_rootless_engines() -> None:
    assert parse_rootless_engines(0, "") == ()
    assert parse_system_enabled(0, "") == ()
    down = "@@engine 1001 bob /run/user/1001/docker.sock\n@@info\n@@containers 1\n"
    no_config = (
        "@@engine 1002 carol /run/user/1002/docker.sock\n@@info\n"
        + json.dumps(ROOTLESS_INFO)
        + "\n@@containers 1\nCannot connect\n@@config /home/carol/.config/docker/daemon.json\nmissing\n"
    )
    out = rootless_engine(inspect(), process="4242 NoNewPrivs:\t1\n") + down + no_config
    out += "@@system\nenabled docker.socket\n"
    admin, carol = parse_rootless_engines(0, out)  # bob's engine did not answer
    assert (admin.user, admin.uid, admin.socket) == ("admin", 1000, "/run/user/1000/docker.sock")
    assert admin.info.reachable and any(o == "name=rootless" for o in admin.info.security_options)
    (web,) = admin.containers or ()
    assert web.engine == ADMIN and web.label == "web (admin's rootless engine)"
    assert web.process_no_new_privs is True
    assert admin.config_path == "/etc/docker/rootless-admin.json"
    assert json.loads(admin.config_text or "") == ROOTLESS_CONFIG
    assert carol.containers is None and carol.config_text == ""
    assert parse_system_enabled(0, out) == ("docker.socket",)
    # carol's engine answered docker info but not docker ps: said, about her engine
    view = rootless_mode(rootless_engine(), no_config)
    (down_finding,) = [f for f in findings_in(view) if f.id == "daemon.not-running"]
    assert down_finding.subject == "carol's rootless engine"
    assert "daemon.config-unreadable" not in ids(findings_in(view))  # missing is {}


FAKE_ROOTLESS_DOCKER = """#!/bin/sh
echo "$*" >> "$STATE/log"
case "$*" in
  *" info "*) cat "$STATE/info.json" ;;
  *" ps -q"*) echo af8fd007ef69 ;;
  *" inspect "*) cat "$STATE/inspect.json" ;;
  *) exit 1 ;;
esac
"""
FAKE_SETPRIV = """#!/bin/sh
echo "setpriv $*" >> "$STATE/log"
while [ "$1" != env ]; do shift; done
exec "$@"
"""


def run_rootless_command(state: Path, command: str = "") -> subprocess.CompletedProcess[str]:
    """The real command over ``state``/run (its sockets), with a fake ``docker``, ``pidof``
    and ``setpriv``; nothing of this machine's engines, users or boot links is asked."""
    bin_dir = state / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("docker", FAKE_ROOTLESS_DOCKER), ("setpriv", FAKE_SETPRIV),
                       ("pidof", '#!/bin/sh\ncat "$STATE/pids" 2>/dev/null\n')):  # fmt: skip
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = (
        (command or ROOTLESS_ENGINES.command)
        .replace("/run/user/*/docker.sock", f"{state}/run/*/docker.sock")
        .replace("/run/systemd/system", f"{state}/no-systemd")
        .replace("/etc/rc[2345].d/S[0-9][0-9]docker", f"{state}/rc[2345].d/S[0-9][0-9]docker")
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state)}
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip


def test_the_rootless_command_without_rootless_engines_asks_nothing() -> None:
    """In the audit's one round trip, once (the boot links share the command), and without a
    rootless socket it runs nothing but its glob."""
    assert ROOTLESS_ENGINES in AUDIT_FACTS and SYSTEM_ENABLED in AUDIT_FACTS
    assert SYSTEM_ENABLED.command == ROOTLESS_ENGINES.command
    state = Path(tempfile.mkdtemp(prefix="ra", dir="/tmp"))
    try:
        ran = run_rootless_command(state)
        assert ran.returncode == 0 and ran.stdout == "", ran.stderr
        assert not (state / "log").exists()  # no docker, no setpriv
    finally:
        shutil.rmtree(state)


def test_the_rootless_command_reads_each_engine_and_its_config_as_its_user() -> None:
    """The real shell command: a socket answering ``docker info`` is an engine; its config
    path comes from its dockerd's command line (which its user chooses, so the file is read
    as the user, never as root); the boot links are read once an engine answered."""
    state = Path(tempfile.mkdtemp(prefix="ra", dir="/tmp"))
    uid = os.getuid()
    engine_dir = state / "run" / str(uid)
    engine_dir.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(engine_dir / "docker.sock"))
    settings = state / "rootless-admin.json"
    settings.write_text(json.dumps(ROOTLESS_CONFIG))
    (state / "info.json").write_text(json.dumps(ROOTLESS_INFO))
    (state / "inspect.json").write_text(json.dumps([inspect(State={"Pid": 0})], indent=4))
    (state / "rc2.d").mkdir()
    (state / "rc2.d" / "S01docker").write_text("")
    dockerd = subprocess.Popen(  # stands for the engine's dockerd: its command line matters
        [sys.executable, "-c", "import time; time.sleep(60)", "--config-file", str(settings)]
    )
    try:
        (state / "pids").write_text(f"{dockerd.pid}\n")
        ran = run_rootless_command(state)
        assert ran.returncode == 0, ran.stderr
        (engine,) = parse_rootless_engines(ran.returncode, ran.stdout)
        assert engine.uid == uid and engine.socket == f"{engine_dir}/docker.sock"
        assert [c.name for c in engine.containers or ()] == ["web"]
        assert engine.config_path == str(settings)
        assert json.loads(engine.config_text or "") == ROOTLESS_CONFIG
        assert parse_system_enabled(ran.returncode, ran.stdout) == (f"{state}/rc2.d/S01docker",)
        log = (state / "log").read_text().splitlines()
        reads = [line for line in log if line.startswith("setpriv")]
        assert reads and all(f"--reuid={uid}" in line for line in reads)
        assert any(line.endswith(f"cat -- {settings}") for line in reads)
        # a socket that does not answer is no engine, and nothing else is asked of it
        (state / "info.json").unlink()
        (state / "log").unlink()
        ran = run_rootless_command(state)
        assert ran.stdout == "" and (state / "log").read_text().count("\n") == 1
    finally:
        dockerd.kill()
        dockerd.wait()
        listener.close()
        shutil.rmtree(state)


def test_json_keeps_its_keys_and_adds_the_engines() -> None:
    view = rootless_mode(rootless_engine(inspect("app", Config__User="")))
    found = findings_in(view)
    data = as_json("h", view, found, Severity.HIGH)
    assert {"host", "fail_on", "failed", "counts", "containers", "findings"} <= set(data)
    finding = next(f for f in data["findings"] if f["id"] == "container.root-user")
    assert {"id", "severity", "title", "meaning", "evidence", "fix", "manual", "subject"} <= set(
        finding
    )
    assert finding["engine"] == ADMIN and finding["severity"] == "low"
    (row,) = data["containers"]
    assert row["name"] == "app" and row["engine"] == ADMIN
    system, admin = data["engines"]
    assert system["name"] == "system" and not system["answers"] and system["enabled_at_boot"] == []
    assert admin["name"] == ADMIN and admin["rootless"] and admin["containers"] == 1
    assert admin["config"] == "/etc/docker/rootless-admin.json"
    assert json.loads(json.dumps(data)) == data
    text = as_text("h", view, found)
    assert "app  (hostwiz/busybox:latest, under admin's rootless engine)" in text
    assert "Container runs as root  [app (admin's rootless engine)]" in text


def test_a_rootless_containers_fix_is_seen_across_two_audits() -> None:
    before = rootless_mode(rootless_engine(inspect("app", Config__User="")))
    after = rootless_mode(rootless_engine(inspect("app")))
    diff = change(before, after)
    assert [(f.id, f.subject) for f in diff.fixed] == [
        ("container.root-user", "app (admin's rootless engine)")
    ]
    assert not diff.not_running
