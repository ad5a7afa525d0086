"""The nftables backend: the ``inet hostwiz`` table it renders, and telling whether it is loaded.

Mostly assertions on the text. ``nft -c -f`` (check only: the kernel validates the whole
transaction, then aborts it) runs in a new, empty network namespace of an unprivileged user
namespace (``unshare -rn``), so it can never touch this machine's rules and needs no root.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.docker_fixtures import file_output
from wizard.actions import RemoveFile, RunCommand, WriteFile
from wizard.errors import PlanConflict
from wizard.facts import Facts
from wizard.steps.firewall import FILES, FIREWALL, boot, nftables
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.steps.firewall.host import Interface
from wizard.steps.firewall.model import Ruleset, resolve

ADDRESSES = {
    "eth0": ("10.213.0.5/24", "fd00:213::5/64"),
    "lan": ("10.214.2.1/24", "fd00:214:2::1/64"),
    "wan": ("10.214.1.1/24", "fd00:214:1::1/64"),
    "docker0": ("172.17.0.1/16",),
}
INTERFACES = {
    name: Interface(name, tuple(ipaddress.ip_interface(a) for a in addresses), True)
    for name, addresses in ADDRESSES.items()
}
ROUTER = FirewallAnswers(
    enabled=True,
    backend="nftables",
    mgmt_interfaces=("eth0",),
    lan_interfaces=("lan",),
    wan_interfaces=("wan",),
    wan_services=("ping",),
    forward=("lan>wan",),
)
EVERYTHING = replace(
    ROUTER,
    other_interfaces="wan",
    wan_interfaces=(),
    mgmt_services=("ssh", "ping", "docker-tls from 10.213.0.0/24", "2049 from fd00::/8"),
    lan_services=("ssh", "swarm", "dns", "60000-61000/udp", "nfs"),
    wan_services=("ssh from 203.0.113.7", "ping"),
    forward=("lan>wan", "mgmt>lan"),
    containers_reachable_from=("mgmt", "10.9.0.0/16", "8080/tcp from wan", "53 from fd00::/8"),
    container_services=("dns", "proxy"),
    swarm_peers=("10.214.2.20", "fd00:214:2::20"),
)
WORKSTATION = FirewallAnswers(
    enabled=True,
    backend="nftables",
    lan_interfaces=("eth0",),
    other_interfaces="wan",
    forward=(),
    containers_reachable_from=(),
)


def ruleset(answers: FirewallAnswers, ssh_ports: tuple[int, ...] = (22,)) -> Ruleset:
    return resolve(answers, INTERFACES, ssh_ports)


def rendered(answers: FirewallAnswers = ROUTER, **kwargs: Any) -> str:
    return nftables.render(ruleset(answers, **kwargs))


def chains(text: str) -> dict[str, list[str]]:
    """chain name -> its lines (the base chain's type line included), from our file."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        opened = re.fullmatch(r"\tchain (\S+) \{", line)
        if opened:
            current = found.setdefault(opened[1], [])
        elif line == "\t}":
            current = None
        elif current is not None:
            current.append(line.strip())
    return found


def listing(text: str) -> str:
    """Our file as ``nft list table`` shows it, roughly: the table only, blank lines between
    chains (the real listing is tested in test_nft_loads_it_and_its_listing_matches)."""
    table = text[text.index("table inet hostwiz {\n") :]
    return table.replace("\t}\n\tchain", "\t}\n\n\tchain")


# ---- the file --------------------------------------------------------------------------------


def test_render_is_deterministic_and_the_hash_follows_the_rules() -> None:
    first = rendered(EVERYTHING)
    assert first == rendered(EVERYTHING) == nftables.render(ruleset(EVERYTHING))
    digest = nftables.parse_table(first).digest
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert nftables.parse_table(rendered(ROUTER)).digest != digest
    assert nftables.parse_table(rendered(EVERYTHING, ssh_ports=(2222,))).digest != digest


def test_the_file_replaces_the_whole_table_in_one_load() -> None:
    lines = rendered().splitlines()
    commands = [line for line in lines if not line.startswith(("#", "\t", "}"))]
    assert commands == [
        "table inet hostwiz {}",  # exists now, so that the delete never fails
        "delete table inet hostwiz",
        "table inet hostwiz {",
    ]
    assert lines[0] == "#!/usr/sbin/nft -f" and lines[-1] == "}"
    assert "flush ruleset" not in rendered()  # never anybody else's tables
    assert all(" table " not in line for line in lines if line.startswith("\t"))


def test_input_order_and_essential_icmp() -> None:
    table = chains(rendered())
    assert table["input"][:4] == [
        "type filter hook input priority filter; policy drop;",
        'ct state established,related accept comment "hostwiz-rules sha256:'
        + nftables.parse_table(rendered()).digest
        + '"',
        "ct state invalid drop",
        'iifname "lo" accept',
    ]
    rules = table["input"]
    assert "icmp type destination-unreachable icmp code frag-needed accept" in rules
    assert any("packet-too-big" in rule for rule in rules)
    assert "ip6 hoplimit 255 icmpv6 type {" in " ".join(rules)
    assert rules[-7:] == [
        'iifname "docker0" jump in_docker',
        'iifname "br-*" jump in_docker',  # Docker's user-defined networks
        'iifname "docker_gwbridge" jump in_docker',
        'iifname "eth0" jump in_mgmt',
        'iifname "lan" jump in_lan',
        'iifname "wan" jump in_wan',
        "jump in_wan",  # interfaces nobody listed: the catch-all zone (wan by default)
    ]


def test_zone_chains_offer_their_services_then_drop() -> None:
    table = chains(rendered(EVERYTHING, ssh_ports=(22, 2222)))
    assert table["in_mgmt"] == [
        "tcp dport { 22, 2222 } accept",
        "icmp type echo-request accept",
        "icmpv6 type echo-request accept",
        "ip saddr 10.213.0.0/24 tcp dport 2376 accept",
        "ip6 saddr fd00::/8 tcp dport 2049 accept",
        "ip6 saddr fd00::/8 udp dport 2049 accept",
        "drop",
    ]
    lan = table["in_lan"]
    # swarm only from its peers, each in its own address family
    assert "ip saddr 10.214.2.20 tcp dport { 2377, 7946 } accept" in lan
    assert "ip6 saddr fd00:214:2::20 udp dport { 7946, 4789 } accept" in lan
    assert "ip saddr 10.214.2.20 meta l4proto esp accept" in lan
    assert "udp dport 60000-61000 accept" in lan
    assert "tcp dport { 2049, 111, 20048 } accept" in lan and lan[-1] == "drop"
    assert table["in_wan"] == [
        "ip saddr 203.0.113.7 tcp dport { 22, 2222 } accept",
        "icmp type echo-request accept",
        "icmpv6 type echo-request accept",
        "drop",
    ]
    assert table["in_docker"] == [
        "tcp dport 53 accept",
        "udp dport 53 accept",
        "tcp dport 3128 accept",
        "drop",
    ]
    # no docker-tls, no ssh for containers unless asked
    assert chains(rendered(ROUTER))["in_docker"] == ["drop"]


def test_forwarding_only_between_chosen_zones() -> None:
    table = chains(rendered())
    assert table["forward"] == [
        "type filter hook forward priority filter; policy drop;",
        "ct state established,related accept",
        "ct state invalid drop",
        'iifname "docker0" accept',  # containers' own traffic: Docker's rules decide
        'iifname "br-*" accept',
        'iifname "docker_gwbridge" accept',
        'oifname "docker0" jump containers',  # to published ports: the zones decide
        'oifname "br-*" jump containers',
        'oifname "docker_gwbridge" jump containers',
        'iifname "eth0" jump fwd_mgmt',
        'iifname "lan" jump fwd_lan',
        'iifname "wan" jump fwd_wan',
        "jump fwd_wan",
    ]
    assert table["fwd_lan"] == [
        'oifname "eth0" drop',
        'oifname "lan" drop',
        'oifname "wan" accept',
        "accept",  # unlisted interfaces are wan too
    ]
    for zone in ("mgmt", "wan"):
        assert all(rule.endswith("drop") for rule in table[f"fwd_{zone}"])
    no_routing = chains(rendered(WORKSTATION))
    assert all(r.endswith("drop") for z in ("mgmt", "lan", "wan") for r in no_routing[f"fwd_{z}"])


def test_masquerade_towards_wan_is_ipv4_only() -> None:
    table = chains(rendered(replace(ROUTER, other_interfaces="mgmt")))
    assert table["postrouting"] == [
        "type nat hook postrouting priority srcnat; policy accept;",
        'ip saddr 10.214.2.0/24 oifname "wan" masquerade',
    ]
    # wan is the catch-all and has no interface of its own: every other way out returns first
    everything = chains(rendered(EVERYTHING))["postrouting"]
    assert everything[1:] == [
        'oifname "eth0" return',
        'oifname "lan" return',
        'oifname "docker0" return',
        'oifname "br-*" return',
        'oifname "docker_gwbridge" return',
        "ip saddr 10.214.2.0/24 masquerade",
    ]
    assert "postrouting" not in chains(rendered(replace(ROUTER, masquerade=False)))
    assert "postrouting" not in chains(rendered(WORKSTATION))
    no_address = {**INTERFACES, "lan": Interface("lan", (), True)}
    bare = chains(
        nftables.render(resolve(replace(ROUTER, other_interfaces="mgmt"), no_address, (22,)))
    )["postrouting"]
    assert bare[1:] == ['meta nfproto ipv4 oifname "wan" masquerade']


def test_published_ports_limited_by_their_original_port() -> None:
    table = chains(rendered(EVERYTHING))
    assert table["containers"] == [
        "ip saddr 10.9.0.0/16 accept",
        "ip6 saddr fd00::/8 meta l4proto tcp ct original proto-dst 53 accept",
        "ip6 saddr fd00::/8 meta l4proto udp ct original proto-dst 53 accept",
        'iifname "eth0" jump ct_mgmt',
        'iifname "lan" jump ct_lan',
        "jump ct_wan",
    ]
    assert table["ct_mgmt"] == ["accept"]
    assert table["ct_lan"] == ["drop"]
    assert table["ct_wan"] == ["meta l4proto tcp ct original proto-dst 8080 accept", "drop"]


def test_an_interface_name_nft_cannot_quote_is_refused() -> None:
    odd = {'we"ird': Interface('we"ird', (), True)}
    # The answers refuse such a name (tests/unit/test_answers.py); the renderer must refuse it
    # all the same should one ever get this far.
    answers = replace(WORKSTATION, lan_interfaces=("weird",))
    object.__setattr__(answers, "lan_interfaces", ('we"ird',))
    with pytest.raises(PlanConflict, match="cannot be written in an nftables rule") as caught:
        nftables.render(resolve(answers, odd, (22,)))
    assert 'backend = "iptables"' in caught.value.hint


# ---- nft itself, in a throwaway network namespace ------------------------------------------


def in_empty_netns(script: str, *files: tuple[str, str], tmp_path: Path) -> str:
    if not shutil.which("nft") or not shutil.which("unshare"):
        pytest.skip("needs nft and unshare (apt install nftables util-linux)")
    for name, text in files:
        (tmp_path / name).write_text(text)
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged network namespace here: {probe.stderr.decode().strip()}")
    result = subprocess.run(
        ["unshare", "-rn", "sh", "-ec", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("answers", [ROUTER, EVERYTHING, WORKSTATION], ids=["router", "all", "ws"])
def test_nft_check_accepts_it(answers: FirewallAnswers, tmp_path: Path) -> None:
    text = rendered(answers, ssh_ports=(22, 2222))
    out = in_empty_netns(
        "nft -c -f rules.nft; echo checked; nft list ruleset",
        ("rules.nft", text),
        tmp_path=tmp_path,
    )
    assert out == "checked\n"  # checked by the kernel, and nothing was loaded


def test_nft_check_really_asks_the_kernel(tmp_path: Path) -> None:
    """--check is not a parser only: a file the kernel refuses fails the check too."""
    out = in_empty_netns(
        "if nft -c -f bad.nft 2>/dev/null; then echo accepted; else echo refused; fi",
        ("bad.nft", "delete table inet hostwiz\n"),
        tmp_path=tmp_path,
    )
    assert out == "refused\n"


def test_nft_loads_it_and_its_listing_matches(tmp_path: Path) -> None:
    """The real ``nft list table`` output (normalised by nft) matches the file it came from;
    loading the file again (or another version of it) replaces the table."""
    text = rendered(EVERYTHING)
    other = rendered(ROUTER)
    out = in_empty_netns(
        "nft -f old.nft; nft -f rules.nft; nft -f rules.nft; nft list table inet hostwiz; "
        "echo ====; nft list tables",
        ("old.nft", other),
        ("rules.nft", text),
        tmp_path=tmp_path,
    )
    live, tables = out.split("====\n")
    assert tables == "table inet hostwiz\n"
    assert live != listing(text)  # nft normalises (sets sorted, /32 dropped...)...
    assert nftables.live_matches(text, live) == []  # ...and still it is recognised
    problems = nftables.live_matches(other, live)
    assert problems[0] == "the inet hostwiz table was loaded from other rules"
    assert "chain in_wan was changed (rules, hook or policy)" in problems


# ---- is it loaded? (pure) --------------------------------------------------------------------


def test_live_matches_finds_every_kind_of_drift() -> None:
    text = rendered()
    live = listing(text)
    assert nftables.live_matches(text, live) == []
    assert nftables.live_matches(text, "") == ["the inet hostwiz table is not loaded"]
    added = live.replace("\t\tdrop\n\t}\n\n\tchain in_lan", '\t\ttcp dport 80 accept\n\t\tdrop\n\t}\n\n\tchain in_lan', 1)  # fmt: skip
    assert added != live
    assert nftables.live_matches(text, added) == [
        "chain in_mgmt was changed (rules, hook or policy)"
    ]
    opened = live.replace("hook input priority filter; policy drop;", "hook input priority filter; policy accept;")  # fmt: skip
    assert nftables.live_matches(text, opened) == [
        "chain input was changed (rules, hook or policy)"
    ]
    stale = live.replace(
        "\tchain in_mgmt {", "\tchain old_zone {\n\t\tdrop\n\t}\n\n\tchain in_mgmt {"
    )
    assert nftables.live_matches(text, stale) == ["chain old_zone is left over"]
    missing = re.sub(r"\tchain postrouting \{.*?\t\}\n", "", live, flags=re.S)
    assert nftables.live_matches(text, missing) == ["chain postrouting is not loaded"]
    other = live.replace(nftables.parse_table(text).digest, "0" * 32)
    assert nftables.live_matches(text, other) == [
        "the inet hostwiz table was loaded from other rules"
    ]


# ---- the step, with the nftables backend -----------------------------------------------------


def link(name: str, *addresses: str) -> dict[str, Any]:
    info = [
        {"family": "inet6" if ":" in a else "inet", "local": a.split("/")[0],
         "prefixlen": int(a.split("/")[1])}
        for a in addresses
    ]  # fmt: skip
    return {"ifname": name, "flags": ["BROADCAST", "UP"], "addr_info": info}


def step_facts(
    answers: FirewallAnswers,
    *,
    tools: tuple[str, ...] = ("nft", "iptables-restore", "ip6tables-restore", "update-rc.d"),
    nft: str = "",
    v4: str = "",
    files: dict[str, bytes] | None = None,
) -> Facts:
    links = [link(name, *addresses) for name, addresses in ADDRESSES.items()]
    raw: dict[str, tuple[int, str]] = {
        "net_interfaces": (0, json.dumps(links)),
        "ssh_path": (0, "connection 10.213.0.1 40022 10.213.0.5 22\nroute 10.213.0.1 dev eth0\n"),
        "sshd_ports": (0, "port 22\n"),
        "firewall_tools": (0, "\n".join(tools) + "\n"),
        "iptables_v4": (0, v4),
        "iptables_v6": (0, ""),
        "nft_hostwiz": (0, nft),
        "ip_forwarding": (0, "1\n1\n"),
        "service_manager": (0, "sysv\n"),
        "firewall_boot_registered": (0, "init\n"),
        "file:/etc/docker/daemon.json": file_output(None),
    }
    modes = {boot.SCRIPT: 0o755, boot.INIT_SCRIPT: 0o755}
    for path in FILES:
        content = (files or {}).get(path)
        raw[f"file:{path}"] = file_output(content, f"{modes.get(path, 0o644):o} root root")
    return Facts.from_raw(FIREWALL.facts(answers), raw)


def loaded_files(answers: FirewallAnswers) -> dict[str, bytes]:
    return {
        boot.RULES_NFT: rendered(answers).encode(),
        boot.SCRIPT: boot.SCRIPT_TEXT.encode(),
        boot.INIT_SCRIPT: boot.INIT_TEXT.encode(),
        boot.SYSCTL: boot.sysctl_text(answers.wan_interfaces).encode(),
    }


def test_step_writes_the_table_and_loads_it_with_the_boot_script() -> None:
    plan = FIREWALL.plan(ROUTER, step_facts(ROUTER))
    written = {a.path: a.content for a in plan.actions if isinstance(a, WriteFile)}
    assert written[boot.RULES_NFT] == rendered().encode()
    assert boot.RULES_V4 not in written and boot.RULES_V6 not in written
    (load,) = [a for a in plan.actions if isinstance(a, RunCommand) and "start" in a.script]
    assert load.script == f"{boot.SCRIPT} start" and "nft -f" in load.why
    assert "hw_stop_nft" in (load.undo or "")


def test_step_plans_nothing_once_the_table_is_loaded() -> None:
    facts = step_facts(ROUTER, nft=listing(rendered()), files=loaded_files(ROUTER))
    assert FIREWALL.plan(ROUTER, facts).empty
    assert FIREWALL.live_problems(ROUTER, facts) == []


def test_step_reloads_when_the_live_table_drifted_or_iptables_chains_remain() -> None:
    drifted = listing(rendered()).replace("policy drop;", "policy accept;", 1)
    iptables_left = "*filter\n:HOSTWIZ-INPUT - [0:0]\n-A HOSTWIZ-INPUT -j DROP\nCOMMIT\n"
    for facts in (
        step_facts(ROUTER, nft=drifted, files=loaded_files(ROUTER)),
        step_facts(ROUTER, nft=listing(rendered()), v4=iptables_left, files=loaded_files(ROUTER)),
    ):
        plan = FIREWALL.plan(ROUTER, facts)
        assert [type(a) for a in plan.actions] == [RunCommand]


def test_switching_to_nftables_removes_the_iptables_files() -> None:
    files = {**loaded_files(ROUTER), boot.RULES_V4: b"*filter\nCOMMIT\n", boot.RULES_V6: b"x"}
    files.pop(boot.RULES_NFT)
    plan = FIREWALL.plan(ROUTER, step_facts(ROUTER, files=files))
    removed = {a.path for a in plan.actions if isinstance(a, RemoveFile)}
    assert removed == {boot.RULES_V4, boot.RULES_V6}


def test_boot_script_loads_the_table_before_removing_iptables_chains() -> None:
    start = boot.SCRIPT_TEXT.split("start)", 1)[1].split(";;", 1)[0]
    nft_branch, iptables_branch = start.split("else", 1)
    assert nft_branch.index("nft -f") < nft_branch.index("hw_stop_family iptables")
    assert iptables_branch.index("hw_start_family ip6tables") < iptables_branch.index("hw_stop_nft")


def test_step_warns_when_docker_runs_with_the_nftables_backend() -> None:
    with_docker = step_facts(ROUTER, tools=("nft", "update-rc.d", "dockerd"))
    notes = FIREWALL.plan(ROUTER, with_docker).notes
    (warning,) = [n for n in notes if "dockerd runs on this host" in n]
    assert "cannot overrule" in warning and 'Set "Backend" (backend) to iptables' in warning
    assert not any("DOCKER-USER" in n for n in notes)
    plain = FIREWALL.plan(ROUTER, step_facts(ROUTER)).notes
    assert not any("dockerd" in n for n in plain)
    with_iptables = replace(ROUTER, backend="iptables")
    tools = ("iptables-restore", "ip6tables-restore", "update-rc.d", "dockerd")
    iptables_notes = FIREWALL.plan(with_iptables, step_facts(with_iptables, tools=tools)).notes
    assert not any("dockerd runs on this host" in n for n in iptables_notes)


def test_step_needs_nft_on_the_host() -> None:
    with pytest.raises(PlanConflict, match="nft is not installed") as caught:
        FIREWALL.plan(ROUTER, step_facts(ROUTER, tools=("iptables-restore", "update-rc.d")))
    assert "apt install nftables" in caught.value.hint
