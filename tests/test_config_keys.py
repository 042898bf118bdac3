"""The config keys' declarations are the parser's: the allowed keys, the defaults and the checks."""

from __future__ import annotations

from dataclasses import MISSING
from typing import Any

import pytest

from poller.config import Config, parse_config, sections
from poller.config.keys import Key, Section
from poller.config.sections import PORTAL_ADDRESS
from poller.errors import ConfigError

PORTAL = {"name": "acme", "webhook_url": "https://acme.example/rest/1/s3cr3t/", "users": [1]}


def error_of(document: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def with_value(part: Section, name: str, value: object) -> dict[str, Any]:
    """A valid document whose key `name` of section `part` is `value`."""
    if part.many:
        return {"portals": [{**PORTAL, name: value}]}
    return {part.name: {name: value}, "portals": [PORTAL]}


def every_key() -> list[tuple[Section, Key]]:
    return [(part, key) for part in sections() for key in part.keys]


def test_the_sections_are_those_of_the_example_in_its_order() -> None:
    assert [part.name for part in sections()] == [
        "database",
        "storage",
        "metrics",
        "schedule",
        "http",
        "directory",
        "reconcile",
        "retention",
        "absences",
        "portals",
    ]
    assert len(every_key()) == 40


@pytest.mark.parametrize("part", sections(), ids=lambda part: part.name)
def test_an_unknown_key_is_refused_with_the_declared_keys(part: Section) -> None:
    message = error_of(with_value(part, "colour", "red"))
    where = "portals['acme']" if part.many else part.name
    expected = ", ".join(sorted(key.name for key in part.keys))
    assert message == f"config key {where}.colour: unknown key; expected one of {expected}"


def test_an_unknown_section_is_refused_with_the_declared_sections() -> None:
    message = error_of({"portals": [PORTAL], "databse": {}})
    assert message.endswith("expected one of " + ", ".join(sorted(part.name for part in sections())))


@pytest.mark.parametrize(("part", "key"), every_key(), ids=lambda v: getattr(v, "name", ""))
def test_a_value_of_the_wrong_type_names_its_key(part: Section, key: Key) -> None:
    """No kind takes a table, so each key's own check must answer, naming that key."""
    message = error_of(with_value(part, key.name, {"a": 1}))
    where = ("portals[0]" if key.name == "name" else "portals['acme']") if part.many else part.name
    assert message.startswith(f"config key {where}.{key.name}: ")


def test_a_key_left_out_takes_its_declared_default() -> None:
    config = parse_config({"portals": [PORTAL]}, {})
    (portal,) = config.portals
    for part, key in every_key():
        if key.default is MISSING or key in PORTAL_ADDRESS:  # read into base_url, not a field
            continue
        holder = portal if part.many else config if part.attr is None else getattr(config, part.attr)
        assert getattr(holder, key.attr) == key.default, f"{part.name}.{key.name}"
    assert Config().spool_max_rows == 200_000 and Config().reconcile.at == "03:30"


@pytest.mark.parametrize(
    ("part", "key"), [pk for pk in every_key() if pk[1].required], ids=lambda v: getattr(v, "name", "")
)
def test_a_required_key_left_out_says_what_to_give(part: Section, key: Key) -> None:
    entry = {name: value for name, value in PORTAL.items() if name != key.name}
    message = error_of({"portals": [entry]})
    where = "portals[0]" if key.name == "name" else "portals['acme']"
    assert message == f"config key {where}.{key.name}: missing; {key.missing}"
