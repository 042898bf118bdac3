"""workday_records: the portal's own workday records (`timeman.record.list`), and backfill progress.

Items are taken as the portal sends them and parsed with the status parser's rules. A record
is stored once per portal and id; a changed one takes its newest values in place and what it
was is kept as workday_revisions rows (poller.storage.revisions: the table keeps the history,
this one the present; only an open day of today going on leaves none); an unchanged one is
left alone, so saving the same answer twice adds nothing. The workdays table takes each saved
record in the same transaction (poller.storage.workdays.apply_records).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, bindparam, select, update

from poller.fields import RECORD_FIELDS
from poller.models import backfill_progress_table, workday_records_table
from poller.status import parse_fields
from poller.storage import workdays
from poller.storage.bulk import insert_rows
from poller.storage.raw_json import storable_raw
from poller.storage.revisions import record_revisions, save_revisions
from poller.storage.statements import chunks, one_of, upsert
from poller.storage.statistics import note_rows_added

logger = logging.getLogger(__name__)

_COMPARED = (*(spec.column for spec in RECORD_FIELDS), "work_date", "raw")


@dataclass(frozen=True)
class RecordsSaved:
    """What save_records did with one answer's items."""

    inserted: int
    updated: int  # stored before with other values: changed in place
    unchanged: int
    skipped: int = 0  # items without a usable id, userId or startTime (logged)


def save_records(
    engine: Engine, portal: str, items: Sequence[Mapping[str, Any]], now: datetime
) -> RecordsSaved:
    """Store `timeman.record.list` items of `portal` fetched at `now`, and their workdays."""
    started = time.perf_counter()
    parsed: dict[int, dict[str, Any]] = {}  # by id: an id repeated in the answer counts once, the last wins
    skipped = 0
    for item in items:
        values = parse_record(portal, item)
        if values is None:
            skipped += 1
        else:
            parsed[values["record_id"]] = values
    table = workday_records_table.c
    with engine.begin() as connection:
        stored: dict[int, RowMapping] = {}
        for ids in chunks(sorted(parsed), 1000):
            query = select(workday_records_table).where(
                table.portal == portal, one_of(connection, table.record_id, ids)
            )
            stored.update((row["record_id"], row) for row in connection.execute(query).mappings())
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        moved: set[tuple[int, datetime]] = set()
        revisions: list[dict[str, Any]] = []
        revised: set[tuple[int, datetime]] = set()  # the days of records that left revisions
        for record_id, values in parsed.items():
            before = stored.get(record_id)
            row = {"portal": portal, **values, "fetched_at": now}
            if before is None:
                inserts.append(row)
            elif any(before[column] != values[column] for column in _COMPARED):
                updates.append(row)
                moved.add((before["user_id"], before["start_time"]))
                found = record_revisions(portal, before, values, now)  # not a day going on
                if found:
                    revisions += found
                    revised.add((values["user_id"], values["start_time"]))
        insert_rows(connection, workday_records_table, inserts, keys=("portal", "record_id"))
        note_rows_added(connection, "workday_records", len(inserts))
        if updates:
            connection.execute(
                update(workday_records_table)
                .where(table.portal == bindparam("b_portal"), table.record_id == bindparam("b_record_id"))
                .values(
                    {name: bindparam(name) for name in (*_COMPARED, "fetched_at") if name != "record_id"}
                ),
                [{**row, "b_portal": portal, "b_record_id": row["record_id"]} for row in updates],
            )
        save_revisions(connection, portal, revisions)
        workdays.apply_records(connection, portal, [*inserts, *updates], moved, revised)
    saved = RecordsSaved(len(inserts), len(updates), len(parsed) - len(inserts) - len(updates), skipped)
    logger.debug(
        "portal %s: stored %d records (%d new, %d changed, %d unchanged, %d skipped) in %.3f s",
        portal,
        len(parsed),
        saved.inserted,
        saved.updated,
        saved.unchanged,
        saved.skipped,
        time.perf_counter() - started,
    )
    return saved


def parse_record(portal: str, item: object) -> dict[str, Any] | None:
    """The workday_records values of one item (raw included), or None (logged) when it has no
    usable id, userId or startTime. work_date is startTime's date in its own offset."""
    if not isinstance(item, Mapping):
        logger.warning("portal %s: a timeman.record.list item that is not an object skipped", portal)
        return None
    values, warnings = parse_fields(RECORD_FIELDS, item)
    for warning in warnings:
        logger.warning("portal %s record %s: %s", portal, values["record_id"] or "?", warning)
    if values["record_id"] is None or values["user_id"] is None or values["start_time"] is None:
        logger.warning("portal %s: a record without a valid id, userId or startTime skipped", portal)
        return None
    values["work_date"] = datetime.fromisoformat(str(item["startTime"])).date()
    values["raw"] = storable_raw(dict(item))
    return values


def save_backfill_done(
    engine: Engine, portal: str, user_id: int, date_from: date, date_to: date, now: datetime
) -> None:
    """Note that the backfill of [date_from, date_to] has every record of `user_id` stored."""
    with engine.begin() as connection:
        connection.execute(
            upsert(connection, backfill_progress_table, ("portal", "user_id", "date_from", "date_to")),
            {
                "portal": portal,
                "user_id": user_id,
                "date_from": date_from,
                "date_to": date_to,
                "finished_at": now,
            },
        )


def get_backfill_done(engine: Engine, portal: str, date_from: date, date_to: date) -> set[int]:
    """The users a backfill of exactly [date_from, date_to] has finished: a resumed run skips them."""
    table = backfill_progress_table.c
    query = select(table.user_id).where(
        table.portal == portal, table.date_from == date_from, table.date_to == date_to
    )
    with engine.connect() as connection:
        return set(connection.execute(query).scalars())
