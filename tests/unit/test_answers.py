"""Answers are checked per kind and, for lists, entry by entry: nothing a preset, ``--set`` or a
form says can carry a line break (or a scope id) into a configuration file. Pure tables."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from presets import apply_overrides, load_preset, parse_preset
from wizard.answers import FieldInfo, build, check_value, fields_of
from wizard.errors import InvalidAnswer, PresetError
from wizard.steps import STEPS
from wizard.steps.docker import DockerEngineAnswers
from wizard.steps.firewall.answers import FirewallAnswers
from wizard.steps.firewall.services import parse_service
from wizard.steps.ssh.answers import SshAnswers
from wizard.steps.ssh.plan import drop_in_text
from wizard.steps.tls.answers import DockerTlsAnswers

INJECTION = "root\nMatch all\n  PasswordAuthentication yes"


def info(kind: str, item: str = "", choices: tuple[str, ...] = ()) -> FieldInfo:
    return FieldInfo("field", "Field", "", kind, None, choices, item=item)


# ---- every kind, good and bad -----------------------------------------------------------

GOOD: list[tuple[FieldInfo, Any, Any]] = [
    (info("str"), "Jane Doe", "Jane Doe"),
    (info("str"), "", ""),
    (info("user"), "admin", "admin"),
    (info("user"), "", ""),
    (info("user"), "svc_web-1", "svc_web-1"),
    (info("size"), "10m", "10m"),
    (info("size"), "512", "512"),
    (info("ip"), "192.168.1.10", "192.168.1.10"),
    (info("ip"), "::", "::"),
    (info("cidr"), "10.0.0.0/8", "10.0.0.0/8"),
    (info("cidr"), "fd00::/64", "fd00::/64"),
    (info("int"), "30", 30),
    (info("int"), " 30 ", 30),
    (info("int"), 7, 7),
    (info("port"), "2222", 2222),
    (info("choice", choices=("a", "b")), "b", "b"),
    (info("bool"), "yes", True),
    (info("list"), "a, b ,c", ("a", "b", "c")),
    (info("list"), ["ssh from 10.0.0.0/8"], ("ssh from 10.0.0.0/8",)),
    (
        info("list", "user_pattern"),
        "root, admin, ops-*, deploy@10.0.0.0/8",
        ("root", "admin", "ops-*", "deploy@10.0.0.0/8"),
    ),
    (
        info("list", "user_pattern"),
        ["!guest", "host$", "a?c@*.example.org"],
        ("!guest", "host$", "a?c@*.example.org"),
    ),
    (info("list", "group_pattern"), "sudo, ssh-users", ("sudo", "ssh-users")),
    (
        info("list", "interface"),
        "eth0, ens3, enp0s3, br-1a2b, eth0.100",
        ("eth0", "ens3", "enp0s3", "br-1a2b", "eth0.100"),
    ),
    (info("list", "network"), "10.0.0.5, fd00::/64", ("10.0.0.5", "fd00::/64")),
    (
        info("list", "word"),
        "ed25519, rsa, chacha20-poly1305@openssh.com",
        ("ed25519", "rsa", "chacha20-poly1305@openssh.com"),
    ),
]


@pytest.mark.parametrize(("field", "value", "expected"), GOOD)
def test_good_values_of_every_kind_are_taken(field, value, expected):
    assert check_value(field, value) == expected


BAD: list[tuple[FieldInfo, Any, str]] = [
    # (field, value, what the error must say)
    (info("str"), "one\ntwo", "a line break; expected one line of text"),
    (info("str"), "one\rtwo", "a line break"),
    (info("str"), "tab\there", "a tab"),
    (info("str"), "bell\x07", "control character (U+0007)"),
    (info("str"), "line\u2028sep", "(U+2028)"),
    (info("str"), "nbsp\u00a0x", "(U+00A0)"),
    (info("user"), "admin\n", "a line break"),
    (info("user"), "Admin", "expected a Linux user name"),
    (info("user"), "ad min", "expected a Linux user name"),
    (info("size"), "10m\n", "a line break"),
    (info("size"), "10 m", "expected a size"),
    (info("ip"), "fe80::1%eth0", "scope id"),
    (info("ip"), "fe80::1%eth0\nMatch all", "a line break"),
    (info("ip"), "10.0.0.300", "not an IP address"),
    (info("cidr"), "fe80::1%x", "scope id"),
    (info("cidr"), "10.0.0.0/33", "not a network"),
    (info("int"), "30\n", "expected a whole number"),
    (info("int"), "1_000", "expected a whole number"),
    (info("int"), "-1", "0 or more"),
    (info("port"), "70000", "from 1 to 65535"),
    (info("choice", choices=("a", "b")), "a\n", "a line break"),
    (info("list"), "a\nb", "a line break"),
    (info("list"), ["ok", "bad\nline"], "entry 'bad\\nline' contains a line break"),
    (info("list", "user_pattern"), [INJECTION], "contains a line break"),
    (info("list", "user_pattern"), ["ad min"], "'ad min' is not a user or group name"),
    (info("list", "user_pattern"), ["root,admin"], "is not a user or group name"),
    (info("list", "user_pattern"), ["admin@host name"], "host part"),
    (info("list", "user_pattern"), ["admin@fe80::1%eth0"], "host part"),
    (info("list", "group_pattern"), ["sudo@10.0.0.1"], "names a host"),
    (info("list", "group_pattern"), ["wheel\n"], "a line break"),
    (info("list", "interface"), ["eth0\n"], "a line break"),
    (info("list", "interface"), ['we"ird'], "not an interface name"),
    (info("list", "interface"), ["averyveryverylongname"], "not an interface name"),
    (info("list", "network"), ["fe80::1%eth0"], "scope id"),
    (info("list", "network"), ["10.0.0.0/8 10.1.0.0/16"], "contains spaces"),
    (info("list", "network"), ["lan"], "not a network"),
    (info("list", "word"), ["rsa ecdsa"], "is not a single word"),
    (info("list", "word"), ["rsa\nMatch all"], "a line break"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_bad_values_of_every_kind_say_what_is_wrong_and_expected(field, value, message):
    with pytest.raises(ValueError) as caught:
        check_value(field, value)
    assert message in str(caught.value)
    assert "expected" in str(caught.value)


# ---- every text and list field of every step ----------------------------------------------


def text_fields() -> list[tuple[str, FieldInfo]]:
    return [
        (name, field)
        for name, step in STEPS.items()
        for field in fields_of(step.answers_type)
        if field.kind not in {"bool", "multiline"}  # a banner's text has lines of its own
    ]


@pytest.mark.parametrize(("step", "field"), text_fields(), ids=lambda x: getattr(x, "name", x))
def test_no_field_of_any_step_takes_a_line_break(step, field):
    answers_type = STEPS[step].answers_type
    good = field.default if field.kind != "list" else list(field.default)
    value: Any = f"{good}\nMatch all" if field.kind != "list" else [*good, INJECTION]
    with pytest.raises(InvalidAnswer) as caught:
        build(answers_type, {field.name: value}, where=f"--set {step}")
    assert field.name in caught.value.message
    # Answers made in code are checked the same way.
    if field.kind == "list":
        with pytest.raises(InvalidAnswer) as made:
            answers_type(**{field.name: (*field.default, INJECTION)})
        assert made.value.message.startswith(f"{step}.{field.name}: ")


def test_the_injection_through_set_is_refused_naming_field_problem_and_expectation():
    with pytest.raises(PresetError) as caught:
        apply_overrides(load_preset("hardened"), [f"ssh.allow_users={INJECTION}"])
    message = caught.value.message
    assert "allow_users" in message and "line break" in message and "user names" in message


def test_the_injection_through_a_preset_is_refused_with_its_line():
    text = '[ssh]\nallow_users = ["root\\nMatch all\\n PasswordAuthentication yes"]\n'
    with pytest.raises(PresetError, match=r"line 2: allow_users = .* line break"):
        parse_preset("site.toml", text)


def test_the_drop_in_never_gets_more_lines_than_hostwiz_writes():
    answers = SshAnswers(allow_users=("root", "admin"), allow_groups=("sudo",))
    text = drop_in_text(answers)
    assert "AllowUsers root admin\n" in text and "Match" not in text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"swarm_peers": ("fe80::1%eth0\nfoo",)}, "firewall.swarm_peers: 'fe80::1%eth0\\nfoo'"),
        ({"swarm_peers": ("fe80::1%eth0",)}, "scope id"),
        ({"containers_reachable_from": ("fe80::1%x",)}, "neither a zone nor a network"),
        ({"wan_services": ("ssh from fe80::1%eth0",)}, "scope id"),
        ({"wan_services": ("ssh\nfrom 10.0.0.0/8",)}, "line break"),
        ({"forward": ("lan>wan\n",)}, "names no zone"),
        ({"lan_interfaces": ("eth0\n",)}, "not an interface name"),
    ],
)
def test_firewall_answers_refuse_scope_ids_and_line_breaks(values, message):
    with pytest.raises(InvalidAnswer) as caught:
        FirewallAnswers(**values)
    assert message in caught.value.message


def test_parse_service_refuses_a_scope_id_in_its_source():
    with pytest.raises(InvalidAnswer, match="scope id"):
        parse_service("dns from fe80::1%eth0", "firewall.lan_services")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"listen_address": "fe80::1%eth0"}, "scope id"),
        ({"extra_sans": ("fe80::1%eth0",)}, "neither a DNS name nor an IP address"),
        ({"address": "fe80::1%eth0\nx"}, "line break"),
        ({"address": "fe80::1%eth0"}, "neither a DNS name nor an IP address"),
        ({"site": "office\n"}, "line break"),
        ({"site": "office/x"}, "cannot name a CA folder"),
        ({"client_name": "jane\nCN=root"}, "line break"),
        ({"bundle_dir": "/tmp/x\n/etc"}, "line break"),
    ],
)
def test_tls_answers_refuse_scope_ids_and_line_breaks(values, message):
    with pytest.raises(InvalidAnswer) as caught:
        DockerTlsAnswers(**values)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rootless_user": "admin\n"}, "docker.rootless_user: 'admin\\n' is not valid"),
        ({"log_max_size": "10m\n"}, "docker.log_max_size"),
        ({"mode": "rootles"}, "expected one of"),
    ],
)
def test_docker_answers_made_in_code_are_checked(values, message):
    with pytest.raises(InvalidAnswer) as caught:
        DockerEngineAnswers(**values)
    assert message in caught.value.message


def test_every_answers_class_checks_itself():
    """A class added later gets the same checks: each one calls check_fields."""
    for step in STEPS.values():
        defaults = step.answers_type()
        first_list = next(
            (
                f
                for f in dataclasses.fields(defaults)
                if isinstance(getattr(defaults, f.name), tuple)
            ),
            None,
        )
        if first_list is None:
            continue
        with pytest.raises(InvalidAnswer):
            dataclasses.replace(defaults, **{first_list.name: ("x\ny",)})


@pytest.mark.parametrize("name", list(STEPS))
def test_switch_help_speaks_of_on_and_off_as_the_form_shows_them(name: str) -> None:
    """The form shows a switch as On/Off and plain mode asks y/n: help that says "true:" or
    "false:" leaves a newcomer translating."""
    for field in fields_of(STEPS[name].answers_type):
        if field.kind == "bool":
            words = field.help.replace("(", " ").split()
            assert "true:" not in words and "false:" not in words, (name, field.name, field.help)
