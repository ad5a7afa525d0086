"""Presets: shipped ones load, mistakes are named with file and line, saving keeps comments."""

from __future__ import annotations

import pytest

from presets import Preset, apply_overrides, load_preset, parse_preset, save_preset, shipped
from wizard.errors import PresetError
from wizard.steps.docker import DockerEngineAnswers


@pytest.mark.parametrize("name", shipped())
def test_shipped_presets_load(name):
    assert "docker" in load_preset(name).answers


def test_unknown_field_is_named_with_file_and_line():
    text = '# top\n[docker]\nmode = "rootful"\nicc_enabled = true\n'
    with pytest.raises(PresetError) as caught:
        parse_preset("site.toml", text)
    assert "site.toml [docker], line 4" in caught.value.message
    assert "icc_enabled" in caught.value.message
    assert "icc" in caught.value.hint


def test_wrong_type_says_what_was_expected():
    with pytest.raises(PresetError) as caught:
        parse_preset("site.toml", '[docker]\nlog_max_file = "five"\n')
    assert "line 2" in caught.value.message and "whole number" in caught.value.message


def test_unknown_step_is_named():
    with pytest.raises(PresetError, match=r"line 3: unknown step \[dokcer\]"):
        parse_preset("x.toml", "[docker]\n\n[dokcer]\nmode = 'rootful'\n")


def test_bad_choice_lists_the_choices():
    with pytest.raises(PresetError, match="expected one of: userns-remap, rootless, rootful"):
        parse_preset("x.toml", "[docker]\nmode = 'rootles'\n")


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(PresetError, match="no preset file"):
        load_preset(str(tmp_path / "nope.toml"))


def test_overrides_convert_types():
    preset = apply_overrides(load_preset("hardened"), ["docker.icc=true", "docker.log_max_file=9"])
    assert preset.answers["docker"].icc is True and preset.answers["docker"].log_max_file == 9
    with pytest.raises(PresetError, match=r"step\.key=value"):
        apply_overrides(preset, ["docker-icc"])


def test_save_keeps_comments_and_order(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('# my site\n[docker]\n# keep me\nmode = "rootful"\nicc = true\n')
    save_preset(path, {"docker": DockerEngineAnswers(mode="userns-remap", icc=False)})
    text = path.read_text()
    assert text.startswith('# my site\n[docker]\n# keep me\nmode = "userns-remap"\nicc = false\n')
    assert "log_max_size" in text  # new keys are added, with their help as a comment
    assert parse_preset(str(path), text).answers["docker"].mode == "userns-remap"


def test_a_misspelt_setting_gets_a_suggestion():
    with pytest.raises(PresetError) as caught:
        parse_preset("site.toml", "[ssh]\npasword_authentication = false\n")
    assert "line 2" in caught.value.message
    assert caught.value.hint.startswith("Did you mean 'password_authentication'?")


def test_an_ssh_port_out_of_range_is_refused_when_the_preset_loads():
    """Not only when planning: a preset, --set, the form and plain mode all build answers."""
    with pytest.raises(PresetError) as caught:
        parse_preset("site.toml", "[ssh]\nport = 70000\n")
    assert "site.toml [ssh]" in caught.value.message
    assert "70000 is not a port number" in caught.value.message
    assert "1 to 65535" in caught.value.hint and "0 to keep" in caught.value.hint
    assert parse_preset("site.toml", "[ssh]\nport = 2222\n").answers["ssh"].port == 2222


def test_a_bad_value_in_a_preset_says_what_is_accepted_and_where_not_the_help() -> None:
    text = "[ssh]\npassword_authentication = 'maybe'\n"
    with pytest.raises(PresetError) as raised:
        parse_preset("/tmp/mine.toml", text)
    assert raised.value.hint == (
        "Set password_authentication to true or false (without quotes) in /tmp/mine.toml "
        "[ssh], line 2, e.g. password_authentication = false."
    )


def test_a_bad_value_given_with_set_says_what_is_accepted() -> None:
    with pytest.raises(PresetError) as raised:
        apply_overrides(Preset("defaults", {}), ["ssh.port=abc"])
    assert raised.value.hint == "Set port to a whole number on the command line."
