"""The SQLite text of a UTC instant, kept across writes: the text SQLAlchemy stores, whatever the
zone the instant came in, a naive one refused even when an equal aware one is kept, and no more
kept than the bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from poller.models import snapshots_table
from poller.storage import bulk

_PROCESSOR = snapshots_table.c.polled_at.type._cached_bind_processor(sqlite.dialect())
assert _PROCESSOR is not None
SQLALCHEMY = _PROCESSOR  # what SQLAlchemy sends SQLite for a UTCDateTime


def test_an_instant_gets_sqlalchemys_text_whatever_its_zone_and_however_often() -> None:
    utc = datetime(2026, 3, 29, 0, 30, 0, 5, tzinfo=UTC)
    same = [utc, utc.astimezone(ZoneInfo("Europe/Berlin")), utc.astimezone(timezone(timedelta(hours=-5)))]
    for instant in same * 2:  # the second round reads what the first kept
        assert bulk._sqlite_instant(instant) == SQLALCHEMY(instant) == "2026-03-29 00:30:00.000005"
    convert = bulk.row_converter([bulk._sqlite_instant, None])
    assert convert is not None
    assert convert((same[1], "x")) == ("2026-03-29 00:30:00.000005", "x")
    assert convert((None, "x")) == (None, "x")


def test_a_naive_instant_is_refused_even_when_an_equal_aware_one_is_kept() -> None:
    aware = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
    bulk._sqlite_instant(aware)
    convert = bulk.row_converter([bulk._sqlite_instant])
    assert convert is not None
    with pytest.raises(ValueError, match="naive datetime"):
        convert((aware.replace(tzinfo=None),))


def test_no_more_instants_are_kept_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_INSTANTS_KEPT", 8)
    start = datetime(2026, 11, 16, tzinfo=UTC)
    for minute in range(100):
        instant = start + timedelta(minutes=minute)
        assert bulk._sqlite_instant(instant) == SQLALCHEMY(instant)
        assert len(bulk._INSTANT_TEXTS) <= 8
