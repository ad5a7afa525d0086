"""Answers inside a site: a site step's answers made from a one-host step's, and where a
setting is written there.

A site step (the proxy's, the swarm's) plans with its one-host step's functions: its answers
take the questions of the one-host answers that make sense in a site (:func:`same_field`) and
give the one-host answers back for those functions (:func:`one_host_answers`).

The one-host steps' refusals advise ``--set STEP.KEY=VALUE``. Inside a site that is the wrong
advice: a site step's setting lives in the site file's ``[steps.STEP]`` table, a host's own
step's in that host's preset. :func:`site_hint` rewrites such advice for the site.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from wizard.answers import fields_of

T = TypeVar("T")


def same_field(one_host: type[Any], name: str, **metadata: Any) -> Any:
    """A site answers' field that is the one-host answers' ``name``: the same default and
    question (``metadata``, e.g. ``help``, changes what the site says differently)."""
    item = next(f for f in dataclasses.fields(one_host) if f.name == name)
    meta = {**item.metadata, **metadata}
    if item.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=item.default_factory, metadata=meta)
    return dataclasses.field(default=item.default, metadata=meta)


def one_host_answers(one_host: type[T], site_answers: Any, **overrides: Any) -> T:
    """The one-host step's answers for a site step's: every field of ``one_host`` that the
    site answers have, then ``overrides``; the others keep the one-host defaults (a question
    the site does not ask, such as the proxy's container settings)."""
    have = {item.name for item in dataclasses.fields(site_answers)}
    values = {item.name: getattr(site_answers, item.name) for item in dataclasses.fields(one_host)  # type: ignore[arg-type]
              if item.init and item.name in have}  # fmt: skip
    values.update(overrides)
    return one_host(**values)


SETS = re.compile(r"--set [\w-]+\.[\w-]+=\S+(?:,? (?:and )?--set [\w-]+\.[\w-]+=\S+)*")
ONE = re.compile(r"--set ([\w-]+)\.([\w-]+)=(\S+)")
END = ".,;:)"
"""Punctuation that ends a sentence after a value, not part of it."""


def _kinds(answers_type: type[Any] | None) -> dict[str, str]:
    return {info.name: info.kind for info in fields_of(answers_type)} if answers_type else {}


def toml_value(value: str, kind: str) -> str:
    """``value`` as a TOML value of a field of ``kind`` ("" when unknown: guessed)."""
    if kind in {"bool", "int", "port"} or (not kind and (value in {"true", "false"}
                                                         or value.isdigit())):  # fmt: skip
        return value
    if kind == "list":
        return json.dumps([part for part in value.split(",") if part])
    return json.dumps(value)


def site_hint(
    text: str,
    source: str,
    site_steps: Mapping[str, type[Any]],
    host: str = "",
    preset: str | None = None,
    host_steps: Mapping[str, type[Any]] | None = None,
) -> str:
    """``text`` with each run of ``--set STEP.KEY=VALUE`` advice said the way a site sets it.

    ``site_steps``: the site's steps (name -> answers type), whose settings are in
    ``[steps.NAME]`` of the site file ``source``. Any other step's setting belongs to ``host``'s
    preset (``preset``, its file, or None when the host has none); ``host_steps`` gives those
    steps' answers types, for writing the value as TOML.
    """

    def rewrite(run: re.Match[str]) -> str:
        found = run.group(0)
        tail = found[len(found.rstrip(END)) :]
        places: dict[str, list[str]] = {}
        for step, key, value in ONE.findall(found.rstrip(END)):
            value = value.rstrip(END)
            key = key.replace("-", "_")
            if step in site_steps and key in _kinds(site_steps[step]):
                kind = _kinds(site_steps[step])[key]
                place = f"[steps.{step}] of the site file {source}"
            else:
                kind = _kinds((host_steps or {}).get(step)).get(key, "")
                who = f"{host}'s" if host else "the host's"
                place = (f"[{step}] of {who} preset {preset}" if preset else
                         f"[{step}] of a preset for {host or 'the host'} (preset = \"FILE\" "
                         f"in its [hosts.…] table of {source})")  # fmt: skip
            places.setdefault(place, []).append(f"{key} = {toml_value(value, kind)}")
        said = "; ".join(f"{', '.join(settings)} in {place}" for place, settings in places.items())
        return said + tail

    return SETS.sub(rewrite, text)
