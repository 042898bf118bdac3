"""`report` and `prune` from the command line, on a database the poller filled."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPORT_START
from sqlalchemy import func, select

from poller import storage
from poller.cli import main
from poller.models import Snapshot

DAY = REPORT_START.date().isoformat()


@pytest.fixture
def config(report_database: tuple[Path, Path]) -> str:
    """The config file of a copy of the shared 72-poll database (conftest's report_database)."""
    config_file = report_database[1]
    config_file.chmod(0o600)  # it names a (dead) webhook secret: no warning about its mode
    return str(config_file)


def report(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["report", *args]) == 0
    return capsys.readouterr().out


def test_report_prints_workdays_as_a_table_csv_and_json(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = report(capsys, "-c", config, "--from", DAY, "--to", DAY).splitlines()
    assert lines[0].split()[:4] == ["portal", "user", "work", "date"]
    assert lines[2:-1] and all(DAY in line for line in lines[2:-1])
    assert lines[-1].endswith("rows")
    as_csv = list(csv.DictReader(io.StringIO(report(capsys, "-c", config, "--format", "csv"))))
    as_json = json.loads(report(capsys, "-c", config, "--format", "json"))
    assert len(as_csv) == len(as_json) > len(lines) - 3
    assert {row["user_id"] for row in as_json} == {1, 3, 4, 5, 6, 7, 8}  # user 2 has no workdays
    closed = [row for row in as_json if row["status"] == "CLOSED"]
    assert closed and all(row["worked_is_estimate"] in (False, 0) for row in closed)


def test_report_filters_by_user_and_shows_latest_and_daily(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = json.loads(report(capsys, "latest", "-c", config, "--format", "json"))
    assert [row["user_id"] for row in latest] == list(range(1, 9))
    daily = json.loads(report(capsys, "daily", "--user", "5", "--format", "json", "-c", config))
    assert daily and {row["user_id"] for row in daily} == {5}
    assert all(row["workdays"] >= 1 for row in daily)


def test_report_rejects_an_inverted_date_range(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "-c", config, "--from", "2026-11-20", "--to", "2026-11-01"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "timeman-poller: error: --from 2026-11-20 is after --to 2026-11-01"
    ]


def count_snapshots(database: Path) -> tuple[int, int]:
    """All rows, and the users that have one."""
    engine = storage.make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(Snapshot)).scalar_one()
        users = connection.execute(select(func.count(func.distinct(Snapshot.user_id)))).scalar_one()
    engine.dispose()
    return rows, users


def test_prune_deletes_old_rows_but_keeps_each_users_newest(
    report_database: tuple[Path, Path], config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    database = report_database[0]
    before, _ = count_snapshots(database)
    age = f"{(datetime.now(UTC) - (REPORT_START + timedelta(days=1))).days}d"  # keeps half a day or less
    assert main(["prune", "-c", config, "--older-than", age, "--dry-run"]) == 0
    promised = int(capsys.readouterr().out.split()[2])  # "would delete N snapshots, ..."
    assert count_snapshots(database) == (before, 8)
    assert main(["prune", "-c", config, "--older-than", age]) == 0
    deleted = int(capsys.readouterr().out.split()[1])  # "deleted N snapshots, ..."
    assert deleted == promised > 0
    assert count_snapshots(database) == (before - deleted, 8)  # every user's newest row survives


def test_prune_refuses_a_bad_or_endless_age_in_one_line(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prune", "-c", config, "--older-than", "soon"]) == 2
    assert "argument --older-than: 'soon' is not an age such as 400d, 12w or 36h" in capsys.readouterr().err
    assert main(["prune", "-c", config, "--older-than", "1000000w"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "timeman-poller: error: --older-than: 7000000 days reaches back before the year 1; give a smaller age"
    ]
