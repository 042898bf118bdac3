"""The SQLite text of a UTC instant, kept across writes: the text SQLAlchemy stores, whatever the
zone the instant came in (the repeated hour of a zone included), a naive one refused even when an
equal aware one is kept, no more kept than the bound; and what is no datetime at all is refused
for its value, as SQLAlchemy refuses it, on either database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError
from test_bulk import snapshot

from poller import storage
from poller.models import snapshots_table
from poller.storage import driver_values
from poller.storage.bulk import insert_rows

_PROCESSOR = snapshots_table.c.polled_at.type._cached_bind_processor(sqlite.dialect())
assert _PROCESSOR is not None
SQLALCHEMY = _PROCESSOR  # what SQLAlchemy sends SQLite for a UTCDateTime


def test_an_instant_gets_sqlalchemys_text_whatever_its_zone_and_however_often() -> None:
    utc = datetime(2026, 3, 29, 0, 30, 0, 5, tzinfo=UTC)
    same = [utc, utc.astimezone(ZoneInfo("Europe/Berlin")), utc.astimezone(timezone(timedelta(hours=-5)))]
    for instant in same * 2:  # the second round reads what the first kept
        assert driver_values._sqlite_instant(instant) == SQLALCHEMY(instant) == "2026-03-29 00:30:00.000005"
    convert = driver_values.row_converter([driver_values._sqlite_instant, None])
    assert convert is not None
    assert convert((same[1], "x")) == ("2026-03-29 00:30:00.000005", "x")
    assert convert((None, "x")) == (None, "x")


def test_a_naive_instant_is_refused_even_when_an_equal_aware_one_is_kept() -> None:
    aware = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
    driver_values._sqlite_instant(aware)
    convert = driver_values.row_converter([driver_values._sqlite_instant])
    assert convert is not None
    with pytest.raises(ValueError, match="naive datetime"):
        convert((aware.replace(tzinfo=None),))


def test_no_more_instants_are_kept_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_values, "_INSTANTS_KEPT", 8)
    driver_values._INSTANT_TEXTS.clear()  # an earlier test's instants, kept, are found without a store
    start = datetime(2026, 11, 16, tzinfo=UTC)
    for minute in range(100):
        instant = start + timedelta(minutes=minute)
        assert driver_values._sqlite_instant(instant) == SQLALCHEMY(instant)
        assert len(driver_values._INSTANT_TEXTS) <= 8


def test_the_two_instants_of_a_repeated_hour_get_their_own_texts() -> None:
    """Clocks going back: 01:30 in New York happens twice; the two compare equal in their zone."""
    zone = ZoneInfo("America/New_York")
    first, second = (datetime(2026, 11, 1, 1, 30, tzinfo=zone, fold=fold) for fold in (0, 1))
    convert = driver_values.row_converter([driver_values._sqlite_instant])
    assert convert is not None
    for instant in (first, second, first.astimezone(UTC), second, first):  # kept or not, each its own
        assert convert((instant,)) == (SQLALCHEMY(instant),)
    assert SQLALCHEMY(first) == "2026-11-01 05:30:00.000000"
    assert SQLALCHEMY(second) == "2026-11-01 06:30:00.000000"


@pytest.mark.parametrize("value", ["2026-11-16 09:30:00", date(2026, 11, 16)])
def test_what_is_no_datetime_for_an_instant_is_refused_for_its_value(engine: Engine, value: object) -> None:
    """As SQLAlchemy's own insert refuses it: a refused value (its user's BAD_VALUE), not a crash."""
    for write in (
        lambda connection, row: connection.execute(insert(snapshots_table), [row]),
        lambda connection, row: insert_rows(connection, snapshots_table, [row]),
    ):
        with pytest.raises(StatementError) as caught, engine.begin() as connection:
            write(connection, snapshot(1, time_finish=value))
        assert storage.is_refused_for_data(caught.value)
