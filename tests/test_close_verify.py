"""`close --month` freezes a month with a SHA-256 digest; `verify` finds every change since.

A month of an emulated portal (polls and records), on SQLite and PostgreSQL: the digest is the
same on both (the canonical rendering does not depend on the database), a row altered or
deleted by hand is found (exit 1), a correction after the close is kept and flagged, and the
closed figures stay readable.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pytest
import requests
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, select, text

from poller import commands
from poller.bitrix import PortalClient
from poller.cli import main
from poller.clock import ManualClock
from poller.config import Config
from poller.emulator import Emulator
from poller.emulator.world import record_id
from poller.history import closing
from poller.history.canonical import header
from poller.models import closed_rows_table, month_closes_table, workday_revisions_table
from poller.poll.backfill import reconcile
from poller.poll.cycle import poll_portal

NOVEMBER = date(2026, 11, 1)
CLOSED_AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
# The digest of the month below, the same on SQLite and PostgreSQL (computed once, kept here
# the way a company keeps it outside the database).
DIGEST = "80fb7188c2902b087fffdc4abd7e6fa3955597f37d2ca952b1b484f77917c4d5"


def filled(make_emulator: MakeEmulator, engine: Engine) -> tuple[Emulator, Config, PortalClient, ManualClock]:
    """Three users polled every 6 hours from Friday 27 November to Monday 30 November, and the
    records of the last 14 days reconciled: the clock ends on 1 December 10:00 UTC."""
    clock = ManualClock(datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    emulator = make_emulator(clock=clock, users=3, rate=0)
    config = make_config(portal(emulator, [1, 2, 3]))
    client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)
    while clock.now() < datetime(2026, 11, 30, 20, 0, tzinfo=UTC):
        poll_portal(client, engine, clock.now)
        clock.advance(6 * 3600)
    clock.advance((CLOSED_AT - clock.now()).total_seconds() - 3600)
    assert reconcile(config, engine, client, 14, clock.now()).ok
    clock.advance(3600)
    return emulator, config, client, clock


def database(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_closed_month_verifies_and_its_digest_is_the_canonical_texts(
    make_emulator: MakeEmulator, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    filled(make_emulator, engine)
    [close] = closing.close_month(commands.database_only(database(engine)), NOVEMBER, now=CLOSED_AT)
    with engine.connect() as connection:
        lines = connection.execute(select(closed_rows_table.c.line)).scalars().all()
        tables = connection.execute(
            text("SELECT count(*) FROM snapshots WHERE work_date >= '2026-11-01'")
        ).scalar_one()
    canonical_text = "".join(f"{line}\n" for line in [header("emu", NOVEMBER), *sorted(lines)])
    assert close.digest == hashlib.sha256(canonical_text.encode()).hexdigest()
    assert close.row_count == len(lines) and tables > 0
    assert {line.split("\t")[0] for line in lines} == {"workdays", "workday_records", "snapshots"}
    assert close.digest == DIGEST  # the same bytes on SQLite and PostgreSQL
    code, out, _ = run(
        capsys, "verify", "--month", "2026-11", "--database", database(engine), "--digest", DIGEST
    )
    assert code == 0 and out.splitlines()[-1] == "  matches: nothing changed since the close"


def test_rows_altered_or_deleted_by_hand_after_the_close_are_found(
    make_emulator: MakeEmulator, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    filled(make_emulator, engine)
    url = database(engine)
    code, out, _ = run(capsys, "close", "--month", "2026-11", "--database", url, "--format", "json")
    [close] = json.loads(out)["closes"]
    assert code == 0 and (close["portal"], close["month"], close["sequence"]) == ("emu", "2026-11", 1)
    gone = record_id(3, date(2026, 11, 26))
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE workdays SET worked_seconds = worked_seconds + 3600"
                " WHERE user_id = 1 AND work_date = :d"
            ),
            {"d": date(2026, 11, 27)},
        )
        connection.execute(text("DELETE FROM workday_records WHERE record_id = :r"), {"r": gone})
        connection.execute(text("DELETE FROM snapshots WHERE id = (SELECT min(id) FROM snapshots)"))
    code, out, _ = run(capsys, "verify", "--month", "2026-11", "--database", url)
    assert code == 1
    assert out.splitlines()[2:] == [
        "  snapshots user_id=1 polled_at=2026-11-27T06:00:00.000000Z: deleted",
        f"  workday_records record_id={gone}: deleted",
        "  workdays user_id=1 time_start=2026-11-27T06:27:46.000000Z: altered: worked_seconds 31796 -> 35396",
    ]
    assert out.splitlines()[1].startswith("  now sha256 ") and out.splitlines()[1].endswith(": 3 differences")
    with engine.begin() as connection:  # the copy kept with the close, altered too, is found out
        connection.execute(
            text("UPDATE closed_rows SET line = replace(line, '31796', '35396') WHERE line LIKE 'workdays%'")
        )
    code, out, _ = run(capsys, "verify", "--month", "2026-11", "--database", url, "--digest", close["sha256"])
    lines = out.splitlines()
    assert (
        code == 1
        and "  the stored copy of the close was altered: its lines no longer give its digest" in lines
    )
    assert "altered: worked_seconds" not in out  # against the altered copy; the digest still tells
    code, out, _ = run(capsys, "verify", "--month", "2026-11", "--database", url, "--digest", "0" * 64)
    assert code == 1 and "  the digest given is NOT the one this close stored" in out.splitlines()


def test_a_correction_after_the_close_is_kept_flagged_and_the_closed_figures_stay_readable(
    make_emulator: MakeEmulator, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, config, client, clock = filled(make_emulator, engine)
    url = database(engine)
    closing.close_month(commands.database_only(url), NOVEMBER, now=clock.now())
    code, before, _ = run(
        capsys, "report", "timesheet", "--month", "2026-11", "--database", url, "--format", "json"
    )
    rid = record_id(1, date(2026, 11, 27))
    emulator.world.edit_record(rid, break_length=7200)
    clock.advance(3600)
    assert reconcile(config, engine, client, 14, clock.now()).ok

    with engine.connect() as connection:
        flags = connection.execute(
            select(workday_revisions_table.c.source, workday_revisions_table.c.after_close)
        ).all()
    assert flags and all(after for _, after in flags)
    code, out, _ = run(
        capsys, "report", "corrections", "--month", "2026-11", "--database", url, "--format", "json"
    )
    assert code == 0 and {(row["field"], row["after_close"]) for row in json.loads(out)} >= {
        ("break_seconds", True), ("leaks_seconds", True),
    }  # fmt: skip
    code, out, _ = run(
        capsys, "report", "timesheet", "--month", "2026-11", "--database", url, "--format", "json"
    )
    sheet = json.loads(out)
    [user] = [row for row in sheet["rows"] if row["user_id"] == 1]
    day = user["days"]["2026-11-27"]
    assert (day["corrections"], day["corrections_after_close"], user["days_corrected_after_close"]) == (
        1,
        1,
        1,
    )
    code, table, _ = run(capsys, "report", "timesheet", "--month", "2026-11", "--database", url)
    assert "!" in table and "after the month was closed" in table
    code, out, _ = run(
        capsys,
        "report",
        "timesheet",
        "--month",
        "2026-11",
        "--database",
        url,
        "--format",
        "json",
        "--as-closed",
    )
    closed = json.loads(out)
    assert closed["as_closed"].startswith("as closed: emu at ")
    assert closed["rows"] == json.loads(before)["rows"]  # what payroll saw
    assert closed["rows"] != sheet["rows"]
    code, out, _ = run(capsys, "verify", "--month", "2026-11", "--database", url)
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()[2:]] == [
        f"  workday_records record_id={rid}",
        *["  workday_revisions id=" + str(n) for n in range(1, len(flags) + 1)],
        "  workdays user_id=1 time_start=2026-11-27T06",
    ]
    assert all(line.endswith(", after close") for line in out.splitlines()[3 : 3 + len(flags)])


def test_closing_a_month_twice_is_refused_unless_forced_and_keeps_both_closes(
    make_emulator: MakeEmulator, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    filled(make_emulator, engine)
    url = database(engine)
    code, first, _ = run(capsys, "close", "--month", "2026-11", "--database", url)
    assert code == 0 and first.startswith("closed 2026-11 on portal emu: ")
    code, out, err = run(capsys, "close", "--month", "2026-11", "--database", url)
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert line.startswith("timeman-poller: error: 2026-11 on portal emu is closed already (at 20")
    assert line.endswith(
        f"UTC, sha256 {DIGEST}): `verify --month 2026-11` checks it; "
        "--force closes it again and keeps the earlier close"
    )
    code, out, _ = run(capsys, "close", "--month", "2026-11", "--database", url, "--force")
    assert code == 0 and "(close 2; the earlier ones are kept)" in out and DIGEST in out
    with engine.connect() as connection:
        sequences = connection.execute(select(month_closes_table.c.sequence).order_by("id")).scalars().all()
    assert sequences == [1, 2]
    code, out, _ = run(capsys, "verify", "--month", "2026-11", "--database", url)
    assert code == 0 and "close 2 of" in out
    code, _, err = run(capsys, "close", "--month", "2027-01", "--database", url)
    assert code == 2 and "has not begun yet" in err
    code, _, err = run(capsys, "verify", "--month", "2026-10", "--database", url)
    assert code == 2 and err.strip().endswith(
        "--month 2026-10 is not closed on any portal: run `close` first"
    )
