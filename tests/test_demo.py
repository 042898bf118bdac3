"""`demo` starts from an empty database each time, and never removes a file it did not make."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from poller.cli import main
from poller.demo import DEMO_APPLICATION_ID, is_demo_database

# The shortest run: one cycle, no real-time wait for a second (test_cli's slow demo test waits).
DEMO = ["demo", "--duration", "0.001", "--interval", "0.001", "--users", "3"]


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def test_a_second_demo_starts_from_an_empty_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "timeman-demo.sqlite3"
    assert main([*DEMO, "--database", str(database)]) == 0
    first = capsys.readouterr().out
    assert "Removed the previous demo" not in first
    assert query(database, "PRAGMA application_id") == [(DEMO_APPLICATION_ID,)]  # kept by the schema
    assert query(database, "SELECT count(*) FROM poll_runs") == [
        (len(re.findall(r"^cycle \d+", first, re.M)),)
    ]

    assert main([*DEMO, "--database", str(database)]) == 0
    second = capsys.readouterr().out
    assert second.splitlines()[0] == (
        f"Removed the previous demo's {database}: every demo starts from an empty database"
    )
    cycles = len(re.findall(r"^cycle \d+", second, re.M))
    assert query(database, "SELECT count(*) FROM poll_runs") == [(cycles,)]  # this demo's cycles only
    assert query(database, "SELECT count(DISTINCT polled_at) FROM snapshots") == [(cycles,)]


def test_a_file_the_demo_did_not_make_is_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], head_sqlite_file: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    poller_database = tmp_path / "timeman.sqlite3"
    shutil.copyfile(head_sqlite_file, poller_database)  # a poller's database at head (conftest's)
    before = poller_database.read_bytes()
    capsys.readouterr()
    for path in (notes, poller_database, tmp_path):
        assert main([*DEMO, "--database", str(path)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"timeman-poller: error: --database {path}: the file exists and was not made by "
            "`timeman-poller demo`; the demo starts from an empty file: give another --database"
        ]
    assert notes.read_text() == "my notes\n"
    assert poller_database.read_bytes() == before


def test_a_companion_that_is_not_a_file_is_refused_before_anything_is_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "timeman-demo.sqlite3"
    assert main([*DEMO, "--database", str(database)]) == 0
    journal = tmp_path / "timeman-demo.sqlite3-journal"
    journal.mkdir()
    capsys.readouterr()
    assert main([*DEMO, "--database", str(database)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"timeman-poller: error: --database {database}: {journal} is not a file; "
        "remove it or give another --database"
    ]
    assert is_demo_database(database), "the old demo kept"


def test_the_demo_judges_its_month_and_prints_the_commands_of_the_full_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*DEMO, "--database", "timeman-demo.sqlite3"]) == 0
    out = capsys.readouterr().out.splitlines()
    summary = next(line for line in out if line.startswith("Working-time compliance: "))
    printed = [line.split()[1:] for line in out if "timeman-poller report" in line]
    assert [words[:2] for words in printed] == [["report", "compliance"], ["report", "timesheet"]]
    code = main(printed[0])
    report = capsys.readouterr().out.splitlines()
    assert code == (0 if "no violations" in summary else 1)  # 1: something found, as a timer would alert
    assert summary.removeprefix("Working-time compliance: ") in report  # the same month, the same pack
    assert re.search(r"(no violations|\d+ violations?) of de \(Germany", summary)
    assert main(printed[1]) == 0
    assert "regular" in capsys.readouterr().out
