"""The commands as functions: the results the CLI prints, and errors that name the problem."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, insert, select

from poller import commands, storage, views
from poller.clients import make_clients
from poller.config import Config, RetentionConfig
from poller.daemon.metrics import Metrics
from poller.emulator import Emulator, EmulatorSettings
from poller.errors import ConfigError, StorageError
from poller.models import PollError, PollRun, Snapshot
from poller.poll.cycle import poll_once
from poller.render.demo import demo_line, latest_table
from poller.render.results import prune_summary, upgrade_line
from poller.render.status import status_json, status_summary
from poller.storage import maintenance
from poller.storage.tasks import get_task

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# `database_url` at head without migrating: a copy of the session's SQLite file, or the
# PostgreSQL tables emptied (see conftest's `engine`). Tests of the upgrade itself start empty.
AT_HEAD = pytest.mark.usefixtures("engine")


def config_for(database_url: str, emulator: Emulator | None = None, users: list[int] | None = None) -> Config:
    """A config on `database_url`: the emulator's webhook portal, or one that is never called."""
    table: dict[str, object] = (
        portal(emulator, users or [1], requests_per_second=100)
        if emulator
        else {"name": "emu", "webhook_url": "https://acme.example/rest/1/abc/", "users": [1]}
    )
    return make_config(table, database_url=database_url, storage={"spool_path": ""})


def test_db_upgrade_says_created_then_up_to_date(database_url: str) -> None:
    config = config_for(database_url)
    head = maintenance.get_head_revision()
    first = commands.db_upgrade(config)
    assert (first.outcome, first.before, first.after) == ("created", None, head)
    second = commands.db_upgrade(config)
    assert (second.outcome, second.before, second.after) == ("up to date", head, head)
    assert upgrade_line(second).endswith(f"schema already up to date (revision {head})")


def test_db_upgrade_says_from_which_revision_it_upgraded(tmp_path: Path) -> None:
    config = config_for(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    engine = storage.make_engine(config.database_url)
    storage.upgrade_database(engine, "0001")
    engine.dispose()
    result = commands.db_upgrade(config)
    head = maintenance.get_head_revision()
    assert (result.outcome, result.before, result.after) == ("upgraded", "0001", head)
    assert upgrade_line(result) == (
        f"SQLite file {tmp_path / 'old.sqlite3'}: schema upgraded from revision 0001 to {head}"
    )


def test_open_database_refuses_a_missing_sqlite_file_without_creating_it(tmp_path: Path) -> None:
    database = tmp_path / "never.sqlite3"
    with pytest.raises(StorageError) as refused, maintenance.open_database(f"sqlite:///{database}"):
        pass
    assert str(refused.value) == (
        f"SQLite file {database}: does not exist: run `timeman-poller db upgrade` first"
    )
    assert not database.exists()


def test_open_database_refuses_a_database_behind_the_newest_revision(tmp_path: Path) -> None:
    config = config_for(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    engine = storage.make_engine(config.database_url)
    storage.upgrade_database(engine, "0002")
    engine.dispose()
    with pytest.raises(StorageError, match="schema is at revision 0002") as refused:
        commands.poll(config)
    assert str(refused.value).startswith(f"SQLite file {tmp_path / 'old.sqlite3'}: ")
    with maintenance.open_database(config.database_url, migrate=True) as engine:
        assert maintenance.get_schema_revision(engine) == maintenance.get_head_revision()


@AT_HEAD
def test_status_shows_the_cycles_and_the_errors_of_the_last_day(
    database_url: str, emulator: Emulator
) -> None:
    config = config_for(database_url, emulator, [1, 2, 777])
    assert commands.db_upgrade(config).outcome == "up to date"  # created in its own test above
    report = commands.poll(config)
    assert not report.ok and (report.users_ok, report.users_failed) == (2, 1)
    info = commands.status(config)
    (run,) = info.runs
    (cycle,) = report.portals  # a run row per portal cycle
    assert cycle.started_at is not None and cycle.finished_at is not None
    seconds = (cycle.finished_at - cycle.started_at).total_seconds()
    assert run == commands.RunInfo(
        run.id, cycle.started_at, cycle.finished_at, 2, 1, seconds, "emu", "finished", None
    )
    assert f"emu       2 ok       1 failed  {seconds:.2f} s" in status_summary(info)
    (error,) = info.errors
    assert isinstance(error.last_at, datetime) and error.last_at.tzinfo is not None
    assert "User not found" in error.last_message
    assert replace(error, last_at=None, last_message="") == commands.ErrorInfo(
        "emu", "USER_NOT_FOUND", 1, 1, None, ""
    )
    assert not info.ok and info.spool_waiting is None
    as_json = json.loads(json.dumps(status_json(info)))
    assert as_json["ok"] is False
    assert [(r["id"], r["users_ok"], r["users_failed"]) for r in as_json["runs"]] == [(run.id, 2, 1)]
    assert as_json["errors"][0]["code"] == "USER_NOT_FOUND"


def add_history(engine: Engine) -> dict[str, int]:
    """Three runs (500, 450 and 1 day old), errors of each and of an outage, snapshots of two users."""
    day = timedelta(days=1)
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        for name, age in (("old", 500), ("older-than-400", 450), ("recent", 1)):
            started = NOW - age * day
            ids[name] = connection.execute(
                insert(PollRun)
                .values(started_at=started, finished_at=started, users_ok=1, users_failed=1)
                .returning(PollRun.id)
            ).scalar_one()
        errors = [(ids["old"], 500), (ids["older-than-400"], 450), (None, 420), (ids["recent"], 1)]
        connection.execute(
            insert(PollError),
            [
                {"run_id": run, "portal": "emu", "user_id": 9, "occurred_at": NOW - age * day,
                 "code": "USER_NOT_FOUND", "http_status": None, "message": "User not found",
                 "error_key": f"{run}/{age}"}
                for run, age in errors
            ],
        )  # fmt: skip
        connection.execute(
            insert(Snapshot),
            [
                {"portal": "emu", "user_id": user, "polled_at": NOW - age * day,
                 "last_seen_at": NOW - age * day, "seen_count": 1, "raw": {}}
                for user, age in ((1, 500), (1, 450), (1, 1), (2, 500))
            ],
        )  # fmt: skip
    return ids


def history(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            "runs": [tuple(r) for r in connection.execute(select(PollRun.id).order_by(PollRun.id))],
            "errors": [
                (run_id, at.astimezone(UTC))
                for run_id, at in connection.execute(
                    select(PollError.run_id, PollError.occurred_at).order_by(PollError.occurred_at)
                )
            ],
            "snapshots": [
                (user, at.astimezone(UTC))
                for user, at in connection.execute(
                    select(Snapshot.user_id, Snapshot.polled_at).order_by(
                        Snapshot.user_id, Snapshot.polled_at
                    )
                )
            ],
        }


@AT_HEAD
def test_prune_deletes_old_history_and_a_dry_run_counts_the_same(database_url: str) -> None:
    config = replace(config_for(database_url), retention=RetentionConfig(keep_days=400))
    with maintenance.open_database(config.database_url) as engine:
        ids = add_history(engine)
        before = history(engine)
    dry = commands.prune(config, timedelta(days=400), dry_run=True, now=NOW)
    assert dry.counts == maintenance.PruneCounts(snapshots=2, poll_runs=2, poll_errors=3)
    assert prune_summary(dry) == (
        "would delete 2 snapshots, 0 workday records, 0 workday revisions, 2 poll runs and 3 poll errors "
        "from before 2025-10-21 12:00 UTC"
    )
    with maintenance.open_database(config.database_url) as engine:
        assert history(engine) == before
    done = commands.prune(config, timedelta(days=400), now=NOW)
    assert done.counts == dry.counts
    assert prune_summary(done).startswith("deleted 2 snapshots, 0 workday records, 0 workday revisions")
    with maintenance.open_database(config.database_url) as engine:
        assert history(engine) == {
            "runs": [(ids["recent"],)],
            "errors": [(ids["recent"], NOW - timedelta(days=1))],
            "snapshots": [(1, NOW - timedelta(days=1)), (2, NOW - timedelta(days=500))],
        }


@AT_HEAD
def test_prune_keeps_the_newest_run_and_each_users_newest_snapshot_whatever_their_age(
    database_url: str,
) -> None:
    config = replace(config_for(database_url), retention=RetentionConfig(keep_days=0))  # no floor
    with maintenance.open_database(config.database_url) as engine:
        ids = add_history(engine)
    result = commands.prune(config, timedelta(hours=1), now=NOW)
    assert result.counts == maintenance.PruneCounts(snapshots=2, poll_runs=2, poll_errors=4)
    with maintenance.open_database(config.database_url) as engine:
        assert history(engine) == {
            "runs": [(ids["recent"],)],
            "errors": [],
            "snapshots": [(1, NOW - timedelta(days=1)), (2, NOW - timedelta(days=500))],
        }


def test_prune_refuses_an_age_before_the_calendar_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--older-than: 7000000 days reaches back before the year 1"):
        commands.prune(config_for(f"sqlite:///{tmp_path / 'x.sqlite3'}"), timedelta(weeks=1_000_000))


def test_report_refuses_an_unknown_report_and_an_inverted_date_range(tmp_path: Path) -> None:
    config = config_for(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ConfigError, match="report 'weekly': expected one of workdays, latest, daily"):
        commands.report(config, "weekly")
    with pytest.raises(ConfigError, match="--from 2026-11-20 is after --to 2026-11-01"):
        commands.report(config, date_from=datetime(2026, 11, 20).date(), date_to=datetime(2026, 11, 1).date())


def test_get_status_names_the_option_not_a_config_key() -> None:
    with pytest.raises(ConfigError) as bad:
        commands.get_status("notaurl")
    assert str(bad.value).startswith("--url: not an incoming-webhook URL")


def test_start_emulator_on_a_busy_port_is_a_config_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"^--port {port}: cannot listen on 127.0.0.1: "):
            commands.start_emulator(EmulatorSettings(users=1), "127.0.0.1", port)


def test_the_demo_returns_what_it_stored(tmp_path: Path) -> None:
    lines: list[str] = []
    result = commands.demo(
        tmp_path / "demo.sqlite3",
        duration=0.001,  # one cycle, no real-time wait for the next
        interval=1,
        users=5,
        progress=lambda event: lines.append(demo_line(event)),
    )
    assert result.ok and result.cycles >= 1
    assert lines[0].startswith("Emulated Bitrix24 portal with 5 users")
    assert [line.split(" (")[0] for line in lines[1:]] == [f"cycle {n}" for n in range(1, result.cycles + 1)]
    assert len(latest_table(result.latest).splitlines()) == 2 + 5  # heading, rule, one row per user
    with pytest.raises(ConfigError, match="--duration and --interval: expected seconds > 0"):
        commands.demo(tmp_path / "demo.sqlite3", duration=0)


def test_load_config_leaves_unset_portal_variables_as_written_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_SECRET", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        '[database]\nurl = "sqlite:///x.sqlite3"\n[[portals]]\nname = "acme"\n'
        'webhook_url = "https://acme.example/rest/1/${ACME_SECRET}/"\nusers = [1]\n'
    )
    path.chmod(0o600)
    config = commands.load_config(path, portal_secrets=False)
    assert config.database_url == f"sqlite:///{tmp_path / 'x.sqlite3'}"  # the config file's directory
    assert config.portals[0].webhook_path == "/rest/1/${ACME_SECRET}/"
    with pytest.raises(ConfigError, match="environment variable ACME_SECRET is not set"):
        commands.load_config(path)
    monkeypatch.setenv("ACME_SECRET", "s3cret")
    assert commands.load_config(path).portals[0].webhook_path == "/rest/1/s3cret/"


@pytest.mark.parametrize(("written", "warned"), [("s3cret", True), ("${ACME_SECRET}", False)])
def test_a_readable_config_file_is_warned_about_only_when_it_holds_a_secret(
    written: str,
    warned: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ACME_SECRET", "s3cret")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[[portals]]\nname = "acme"\nwebhook_url = "https://acme.example/rest/1/{written}/"\nusers = [1]\n'
    )
    path.chmod(0o644)
    commands.load_config(path)
    assert ("can be read by other users" in caplog.text) is warned


def test_a_database_only_config_has_no_portal_and_no_spool() -> None:
    config = commands.database_only("postgresql+psycopg://reader@db/worktime")
    assert (config.database_url, config.portals, config.spool_path) == (
        "postgresql+psycopg://reader@db/worktime",
        (),
        None,
    )


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/rest/1/secret0123/"


@AT_HEAD
@pytest.mark.parametrize("cause", ["a wrong webhook secret", "a closed port"])
def test_a_cycle_that_cannot_list_users_all_is_failed_in_poll_runs_status_and_metrics(
    database_url: str, emulator: Emulator, cause: str
) -> None:
    url = f"{emulator.base_url}/rest/1/wrong0123/" if "secret" in cause else closed_port_url()
    config = make_config(
        portal(url, "all"),
        database_url=database_url,
        storage={"spool_path": ""},
        http={"max_retries": 0},
        directory={"refresh_hours": 0},
    )
    metrics = Metrics(["emu"])
    with maintenance.open_database(config.database_url) as engine:
        report = poll_once(make_clients(config, engine), engine, metrics=metrics)
        with engine.connect() as connection:
            (error,) = connection.execute(select(PollError.user_id, PollError.code)).all()
    assert not report.ok and report.portals[0].portal_failed
    assert error.user_id is None  # the portal's row: its users could not be listed
    info = commands.status(config)
    (run,) = info.runs
    assert (run.users_ok, run.users_failed, run.outcome) == (0, 0, "failed")
    assert not info.ok and "(failed)" in status_summary(info)
    value = metrics.registry.get_sample_value
    assert value("timeman_poller_cycles_total", {"portal": "emu", "outcome": "failed"}) == 1
    assert value("timeman_poller_cycles_total", {"portal": "emu", "outcome": "finished"}) == 0
    assert value("timeman_poller_last_success_timestamp_seconds", {"portal": "emu"}) is None  # alerts: stale


def test_status_goes_by_each_portals_newest_cycle() -> None:
    def run(run_id: int, outcome: str, failed: int = 0) -> commands.RunInfo:
        return commands.RunInfo(run_id, NOW, NOW, 3, failed, 0.1, "emu", outcome)

    def status(*runs: commands.RunInfo) -> commands.StatusInfo:
        return commands.StatusInfo(runs, (), NOW, None)

    assert status(run(2, "finished"), run(1, "failed")).ok  # newest first
    assert not status(run(2, "failed"), run(1, "finished")).ok
    assert status(run(2, "interrupted"), run(1, "failed")).ok
    assert not status(run(2, "finished", failed=1)).ok


@AT_HEAD
def test_the_poll_command_refreshes_the_directory_and_reconciles_when_due(
    database_url: str, make_emulator: MakeEmulator
) -> None:
    emulator = make_emulator(users=30, rate=0)
    config = make_config(
        portal(emulator, "all", requests_per_second=100),
        database_url=database_url,
        storage={"spool_path": ""},
        reconcile={"days": 1},
    )
    first = commands.poll(config)
    assert first.ok and first.users_ok == 30  # every user, ids from the directory
    with maintenance.open_database(config.database_url) as engine:
        names = storage.get_view_rows(engine, views.latest_status)
        assert all(row["user_name"] for row in names) and any(row["department"] for row in names)
        assert get_task(engine, "emu", "directory").last_done_at is not None
        assert get_task(engine, "emu", "reconcile").last_done_at is not None
    listed, reads = emulator.stats.calls["user.get"], emulator.stats.calls["timeman.record.list"]
    assert listed == 1 and reads >= 1
    second = commands.poll(config)
    assert second.ok and second.requests == 1  # one batch: no listing, no reconcile
    assert (emulator.stats.calls["user.get"], emulator.stats.calls["timeman.record.list"]) == (listed, reads)
