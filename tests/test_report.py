"""`report` and `prune` from the command line, on a database the poller filled."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPORT_START
from sqlalchemy import func, insert, select

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
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # not a terminal: every column (pytest-xdist sets 80)
    lines = report(capsys, "-c", config, "--from", DAY, "--to", DAY).splitlines()
    assert lines[0].split()[:6] == ["portal", "user", "name", "department", "work", "date"]
    assert lines[2:-1] and all(DAY in line for line in lines[2:-1])
    assert lines[-1].endswith("rows")
    as_csv = list(csv.DictReader(io.StringIO(report(capsys, "-c", config, "--format", "csv"))))
    as_json = json.loads(report(capsys, "-c", config, "--format", "json"))
    assert len(as_csv) == len(as_json) > len(lines) - 3
    assert {row["user_id"] for row in as_json} == {1, 3, 4, 5, 6, 7, 8}  # user 2 has no workdays
    closed = [row for row in as_json if row["status"] == "CLOSED"]
    assert closed and all(row["worked_is_estimate"] is False for row in closed)
    # CSV for spreadsheets: true/false, ISO 8601 dates and instants, empty for none.
    assert {row["worked_is_estimate"] for row in as_csv} == {"true", "false"}
    assert all(date.fromisoformat(row["work_date"]) for row in as_csv)
    assert all(datetime.fromisoformat(row["time_start"]).tzinfo is not None for row in as_csv)
    assert {row["time_finish"] for row in as_csv if row["status"] != "CLOSED"} == {""}


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
    Path(config).write_text(Path(config).read_text() + "\n[retention]\nkeep_days = 0\n")  # no floor
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


def test_a_table_fits_the_terminal_and_names_the_columns_it_left_out(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    wide = report(capsys, "-c", config).splitlines()
    assert "not shown" not in wide[-1]
    every = " ".join(wide[0].split())
    monkeypatch.setenv("COLUMNS", "80")
    lines = report(capsys, "-c", config).splitlines()
    footer = next(i for i, line in enumerate(lines) if line.startswith("not shown at 80 columns: "))
    assert all(len(line) <= 80 for line in lines)  # the footer wraps too (issue #14, row 9)
    assert lines[footer - 1] == wide[-1]  # the same rows
    left_out = " ".join(line.strip() for line in lines[footer:]).removeprefix("not shown at 80 columns: ")
    named, _, advice = left_out.partition("; ")
    assert advice == "widen the terminal or use --format csv or json"
    shown = " ".join(lines[0].split())
    assert named.split(", ") == ["portal", "department", "start (UTC)", "finish (UTC)", "source"]
    assert shown == "user name work date status worked breaks estimate pending corrections"
    assert sorted(every.replace("work date", "work_date").replace(" (UTC)", "_").split()) == sorted(
        (
            shown.replace("work date", "work_date") + " " + " ".join(named.split(", ")).replace(" (UTC)", "_")
        ).split()
    )


def test_a_narrow_terminal_wraps_names_before_leaving_anything_out() -> None:
    from poller.render.tables import Column, fit_table

    columns = [Column("user", 0, right=True), Column("name", 1, wrap=True), Column("worked", 2, right=True)]
    rows = [["7", "Konstantin Konstantinopolsky-Smith", "8:05"]]
    fitted = fit_table(columns, rows, 30)
    assert fitted.left_out == ()
    assert fitted.text.splitlines() == [
        "user  name              worked",
        "----  ----------------  ------",
        "   7  Konstantin          8:05",
        "      Konstantinopolsk",
        "      y-Smith",
    ]
    assert fit_table(columns, rows, 25).left_out == (columns[2],)  # the name keeps 12 characters


def test_a_report_reads_a_database_url_without_any_config_file(
    report_database: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path / "..")  # no config.toml here
    monkeypatch.delenv("TIMEMAN_POLLER_CONFIG", raising=False)
    url = f"sqlite:///{report_database[0]}"
    latest = json.loads(report(capsys, "latest", "--database", url, "--format", "json"))
    assert [row["user_id"] for row in latest] == list(range(1, 9))
    assert main(["prune", "--older-than", "100000d", "--dry-run", "--database", url]) == 0
    assert capsys.readouterr().out.startswith("would delete 0 snapshots")
    assert main(["report", "--database", "not a url"]) == 2
    assert "'not a url' is not a database URL" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_report_quietly_with_exit_code_0(
    report_database: tuple[Path, Path], config: str
) -> None:
    database = report_database[0]
    engine = storage.make_engine(f"sqlite:///{database}")
    at = REPORT_START
    with engine.begin() as connection:  # 3,000 users: far more than a pipe holds (64 KiB)
        connection.execute(
            insert(Snapshot),
            [
                {"portal": "big", "user_id": user, "polled_at": at, "last_seen_at": at, "seen_count": 1,
                 "status": "OPENED", "time_start": at, "raw": {}}
                for user in range(1, 3001)
            ],
        )  # fmt: skip
    engine.dispose()
    read_end, write_end = os.pipe()
    reader = subprocess.Popen(["head", "-n", "1"], stdin=read_end, stdout=subprocess.PIPE)
    writer = subprocess.Popen(
        [sys.executable, "-m", "poller", "report", "latest", "-c", config],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": ""},
    )
    os.close(read_end)  # only head reads and only the report writes: head's exit closes the pipe
    os.close(write_end)
    first, _ = reader.communicate(timeout=60)
    _, errors = writer.communicate(timeout=60)
    assert first.split()[:2] == [b"portal", b"user"]
    assert writer.returncode == 0, errors
    assert errors == b""
