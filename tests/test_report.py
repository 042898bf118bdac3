"""`report` and `prune` from the command line, on a database the poller filled."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from poller import storage
from poller.config import parse_config
from poller.daemon import make_clients, poll_portal
from poller.emulator import Emulator, EmulatorSettings
from poller.models import Snapshot

WEDNESDAY = datetime(2026, 11, 18, tzinfo=UTC)


def filled_database(tmp_path: Path) -> tuple[Path, Path]:
    """A day and a half of polls every 30 simulated minutes for 8 users."""
    database = tmp_path / "report.sqlite3"
    config_file = tmp_path / "config.toml"
    emulator = Emulator(
        EmulatorSettings(users=8, rate=0, operating_limit=0, speed=0, start=WEDNESDAY)
    ).start()
    try:
        config_file.write_text(
            f'[database]\nurl = "sqlite:///{database}"\n'
            f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\n'
            "users = [1, 2, 3, 4, 5, 6, 7, 8]\n"
        )
        engine = storage.make_engine(f"sqlite:///{database}")
        storage.upgrade_database(engine)
        config = parse_config(
            {
                "portals": [
                    {
                        "name": "emu",
                        "webhook_url": emulator.webhook_url,
                        "users": list(range(1, 9)),
                        "requests_per_second": 1000,
                    }
                ]
            },
            {},
        )
        (client,) = make_clients(config, engine, wall_clock=lambda: emulator.clock.now().timestamp())
        for _ in range(72):
            poll_portal(client, engine, None, emulator.clock.now)
            emulator.clock.advance(1800)
        engine.dispose()
    finally:
        emulator.stop()
    return database, config_file


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "poller", *args], capture_output=True, text=True, timeout=60)


def test_report_prints_workdays_as_a_table_csv_and_json(tmp_path: Path) -> None:
    _, config = filled_database(tmp_path)
    table = cli("report", "-c", str(config), "--from", "2026-11-18", "--to", "2026-11-18")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["portal", "user", "work", "date"]
    assert all("2026-11-18" in line for line in lines[2:-1])
    assert lines[-1].endswith("rows")
    as_csv = list(csv.DictReader(io.StringIO(cli("report", "-c", str(config), "--format", "csv").stdout)))
    as_json = json.loads(cli("report", "-c", str(config), "--format", "json").stdout)
    assert len(as_csv) == len(as_json) > len(lines) - 3
    assert {row["user_id"] for row in as_json} == {1, 3, 4, 5, 6, 7, 8}  # user 2 has no workdays
    closed = [row for row in as_json if row["status"] == "CLOSED"]
    assert closed and all(row["worked_is_estimate"] in (False, 0) for row in closed)


def test_report_filters_by_user_and_shows_latest_and_daily(tmp_path: Path) -> None:
    _, config = filled_database(tmp_path)
    latest = json.loads(cli("report", "latest", "-c", str(config), "--format", "json").stdout)
    assert [row["user_id"] for row in latest] == list(range(1, 9))
    daily = json.loads(cli("report", "daily", "-c", str(config), "--user", "5", "--format", "json").stdout)
    assert daily and {row["user_id"] for row in daily} == {5}
    assert all(row["workdays"] >= 1 for row in daily)


def test_report_rejects_an_inverted_date_range(tmp_path: Path) -> None:
    _, config = filled_database(tmp_path)
    result = cli("report", "-c", str(config), "--from", "2026-11-20", "--to", "2026-11-01")
    assert result.returncode == 2
    assert "--from 2026-11-20 is after --to 2026-11-01" in result.stderr


def test_prune_deletes_old_rows_but_keeps_each_users_newest(tmp_path: Path) -> None:
    database, config = filled_database(tmp_path)
    engine = storage.make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(Snapshot)).scalar_one()
    age = datetime.now(UTC) - (WEDNESDAY + timedelta(days=1))  # keeps the last half day
    result = cli("prune", "-c", str(config), "--older-than", f"{age.days}d")
    assert result.returncode == 0, result.stderr
    deleted = int(result.stdout.split()[1])
    with engine.connect() as connection:
        after = connection.execute(select(func.count()).select_from(Snapshot)).scalar_one()
        users = connection.execute(select(func.count(func.distinct(Snapshot.user_id)))).scalar_one()
    assert deleted > 0 and after == before - deleted
    assert users == 8  # every user's newest row survives
    bad = cli("prune", "-c", str(config), "--older-than", "soon")
    assert bad.returncode == 2 and "is not an age" in bad.stderr
