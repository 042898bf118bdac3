"""Rule packs: the shipped ones load, a user's copy is read from its path, and every mistake is one line
naming the file and the key."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from poller.compliance import DayKind, Rule, load_pack, parse_pack
from poller.compliance.engine import CHECKS
from poller.compliance.packs import KINDS
from poller.errors import ConfigError

GOOD = """
name = "mine"
[rules.rest]
kind = "daily_rest"
limit = "11:00"
source = "Directive 2003/88/EC, art. 3"
"""


def test_the_shipped_packs_load_and_cite_a_source_for_every_rule() -> None:
    for name in ("eu", "de", "ru"):
        pack = load_pack(name)
        assert pack.name == name and pack.rules
        assert all(rule.source and rule.title for rule in pack.rules)


def test_a_pack_reads_durations_counts_and_lists_into_a_typed_rule() -> None:
    rules = {rule.id: rule for rule in load_pack("de").rules}
    assert rules["break_30m_over_6h"] == Rule(
        id="break_30m_over_6h",
        kind="min_break",
        limit=1800,
        source="ArbZG §4 sentence 1 and 2",
        title="at least 30 minutes of breaks when working more than 6 hours",
        over=21600,
        min_part=900,
    )
    assert rules["daily_8h_average"].weeks == 24 and rules["daily_8h_average"].days_per_week == 6
    assert rules["no_sunday_holiday_work"].weekdays == ("SU",)
    assert rules["no_sunday_holiday_work"].kinds == (DayKind.HOLIDAY,)


def test_every_kind_a_pack_may_name_has_a_check() -> None:
    assert set(KINDS) == set(CHECKS)


def test_a_copy_of_a_shipped_pack_is_read_from_its_path_with_its_edits(tmp_path: Path) -> None:
    text = files("poller.compliance").joinpath("packs", "eu.toml").read_text(encoding="utf-8")
    copy = tmp_path / "company.toml"
    copy.write_text(
        text.replace('limit = "48:00"', 'limit = "40:00"').replace('name = "eu"', 'name = "company"')
    )
    pack = load_pack(str(copy))
    assert pack.name == "company"
    assert [rule.limit for rule in pack.rules if rule.kind == "weekly_average"] == [40 * 3600]


def test_a_missing_file_is_named_with_the_shipped_choices(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^rules .*nope\.toml: neither a shipped pack \(eu, de, ru\) nor a readable file"
    ):
        load_pack(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('kind = "daily_rest"', 'kind = "daily_rset"'),
            "p.toml: rules.rest.kind: unknown rule kind 'daily_rset', expected one of daily_rest, ",
        ),
        (('limit = "11:00"\n', ""), "p.toml: rules.rest.limit: missing, kind daily_rest needs it"),
        (
            ('limit = "11:00"', "limit = 11"),
            'p.toml: rules.rest.limit: expected a duration "HH:MM" or "HH:MM:SS", got 11',
        ),
        (
            ('limit = "11:00"', 'limit = "11:60"'),
            'p.toml: rules.rest.limit: expected a duration "HH:MM" or "HH:MM:SS", got \'11:60\'',
        ),
        (
            ('source = "Directive 2003/88/EC, art. 3"\n', ""),
            "p.toml: rules.rest.source: missing, every rule cites its source",
        ),
        (
            ('source = "Directive', 'sauce = "Directive'),
            "p.toml: rules.rest.sauce: unknown key for kind daily_rest, expected kind, limit, source, title",
        ),
        (('name = "mine"', "name = 3"), "p.toml: name: expected a string, got 3"),
        (
            ('name = "mine"', 'nmae = "mine"'),
            "p.toml: nmae: unknown key, expected name, title and [rules.<id>] tables",
        ),
        (("[rules.rest]", "[rules.rest"), "p.toml: not valid TOML: "),
    ],
)
def test_a_mistake_in_a_pack_is_one_line_naming_the_file_and_the_key(
    edit: tuple[str, str], message: str
) -> None:
    assert edit[0] in GOOD
    with pytest.raises(ConfigError) as raised:
        parse_pack(GOOD.replace(*edit), "p.toml")
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('kind = "weekly_average"\nlimit = "48:00"', "rules.x.weeks: missing, kind weekly_average needs it"),
        (
            'kind = "weekly_average"\nlimit = "48:00"\nweeks = "17"',
            "rules.x.weeks: expected a whole number of at least 1, got '17'",
        ),
        (
            'kind = "weekly_average"\nlimit = "48:00"\nweeks = 0',
            "rules.x.weeks: expected a whole number of at least 1, got 0",
        ),
        (
            'kind = "no_work_on"\nlimit = "00:00"\nweekdays = ["SUN"]',
            "rules.x.weekdays: expected a list of MO, TU, WE, TH, FR, SA, SU, got ['SUN']",
        ),
        (
            'kind = "no_work_on"\nlimit = "00:00"\nkinds = "holiday"',
            "rules.x.kinds: expected a list of workday, weekend, holiday, absent, got 'holiday'",
        ),
        ('kind = "min_break"\nlimit = "00:30"', "rules.x.over: missing, kind min_break needs it"),
    ],
)
def test_a_kinds_own_parameters_are_checked(extra: str, message: str) -> None:
    text = f'[rules.x]\n{extra}\nsource = "s"\n'
    with pytest.raises(ConfigError, match="^" + re.escape(f"x.toml: {message}")):
        parse_pack(text, "x.toml")


def test_a_pack_without_rules_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^empty\.toml: rules: expected at least one \[rules.<id>\] table"):
        parse_pack('name = "empty"\n', "empty.toml")
