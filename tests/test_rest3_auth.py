"""Where an OAuth token travels under REST 3.0, end to end through a backfill.

REST 3.0 reads `auth` from the JSON body only; its batch body is a bare array, so the poller
sends that token as an `Authorization: Bearer` header. The emulator refuses `?auth=` under
`/rest/api/` (as a portal reading the body only would), so a token in the URL fails here.
"""

from __future__ import annotations

from datetime import date

import requests
from conftest import MakeEmulator, make_config, on_sqlite_only, portal
from sqlalchemy import Engine, select

from poller.bitrix import PortalClient
from poller.bitrix.records import batch_support, record_window
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.models import workday_records_table
from poller.poll.backfill import backfill

# Where the token travels is the point, not storage: once, on SQLite.
pytestmark = on_sqlite_only

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def users_with_records(emulator: Emulator, users: range) -> list[int]:
    start, end = record_window(*OCTOBER)
    return [
        u for u in users if any(r.start_time < end for r in emulator.world.records_started(u, start, end))
    ]


def stored_users(engine: Engine) -> list[int]:
    column = workday_records_table.c.user_id
    with engine.connect() as connection:
        return list(connection.execute(select(column).distinct().order_by(column)).scalars())


def test_an_oauth_backfill_sends_the_rest_3_batch_token_as_a_bearer_header(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(clock=clock, users=30, rate=0)
    config = make_config(portal(emulator, list(range(1, 31)), oauth=True))
    client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)

    report = backfill(config, engine, [client], since=OCTOBER[0], until=OCTOBER[1])

    (state,) = report.portals
    assert state.ok and state.requests == 1 and batch_support(client) is True
    # the body (REST 1): the directory read first (user.get, department.get), then backfill's
    # calendar and absences (poller.poll.backfill_calendar)
    assert emulator.stats.auth_placements == {"header": 1, "body": 2 + 2}
    assert stored_users(engine) == users_with_records(emulator, range(1, 31)) != []


def test_an_oauth_backfill_without_the_batch_sends_each_token_in_the_json_body(
    make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(clock=clock, users=3, rate=0, rest_v3_batch=False)
    config = make_config(portal(emulator, [1, 2, 3], oauth=True))
    client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)

    report = backfill(config, engine, [client], since=OCTOBER[0], until=OCTOBER[1])

    (state,) = report.portals
    assert state.ok and state.requests == 1 + 3  # the refused batch, then one call per user
    # + the directory (user.get, department.get), the calendar and the absences
    assert emulator.stats.auth_placements == {"header": 1, "body": 3 + 2 + 2}
    assert stored_users(engine) == users_with_records(emulator, range(1, 4)) != []
