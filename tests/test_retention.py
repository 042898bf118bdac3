"""[retention] keep_days: prune never deletes evidence younger than the floor (ArbZG §16(2))."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config
from sqlalchemy import Engine, func, insert, select

from poller import commands, storage
from poller.cli import main
from poller.config import Config, RetentionConfig, parse_config
from poller.errors import ConfigError
from poller.models import Base, PollError, PollRun, Snapshot, workday_records_table, workdays_table
from poller.render.results import prune_summary
from poller.status import parse_status
from poller.storage import maintenance

DAY = timedelta(days=1)
AGES = (1000, 740, 500, 1)  # days: past the floor, just past it, inside it, yesterday
REFUSAL = (
    "prune --older-than 400d would delete snapshots, workday records and revisions younger than "
    "[retention] keep_days = 730; give --older-than 730d or more (--dry-run shows what would go), "
    "or lower retention.keep_days where the law allows"
)


def config_on(url: str, **retention: Any) -> Config:
    table = {"name": "acme", "webhook_url": "https://acme.example/rest/1/abc/", "users": [1]}
    sections: dict[str, Any] = {"storage": {"spool_path": ""}}
    if retention:
        sections["retention"] = retention
    return make_config(table, database_url=url, **sections)


def add_evidence(engine: Engine, now: datetime) -> None:
    """At each age: a run with an error, a snapshot of user 1, a closed workday record of user 2
    (its day and its fetch), and a revision when the table exists."""
    for age in AGES:
        at = now - age * DAY
        run_id = storage.save_run_started(engine, at, portal="acme")
        storage.save_run_finished(engine, run_id, at, 1, 1, outcome="finished")
        answer = {"STATUS": "CLOSED", "TIME_START": (at - timedelta(hours=9)).isoformat(), "ID": age}
        storage.save_portal_cycle(
            engine,
            run_id,
            [storage.SnapshotRow("acme", 1, at, parse_status(answer))],
            [storage.ErrorRow("acme", 9, at, "USER_NOT_FOUND", 400, "gone")],
        )
        item = {"id": age, "userId": 2, "startTime": (at - timedelta(hours=9)).isoformat(),
                "endTime": at.isoformat(), "duration": 30000, "breakLength": 0,
                "state": {"status": "CLOSED"}, "isApproved": True}  # fmt: skip
        storage.save_records(engine, "acme", [item], at)
        revisions = Base.metadata.tables.get("workday_revisions")
        if revisions is not None:
            with engine.begin() as connection:
                connection.execute(
                    insert(revisions).values(
                        portal="acme", user_id=2, time_start=at - timedelta(hours=9), record_id=age,
                        source="record", field="duration_seconds", old_value="29000", new_value="30000",
                        old_seen_at=at - timedelta(hours=1), changed_at=at, after_close=False,
                    )
                )  # fmt: skip


def counts(engine: Engine) -> dict[str, int]:
    tables = {
        "snapshots": Snapshot.__table__,
        "records": workday_records_table,
        "runs": PollRun.__table__,
        "errors": PollError.__table__,
        "workdays": workdays_table,
    }
    revisions = Base.metadata.tables.get("workday_revisions")
    if revisions is not None:
        tables["revisions"] = revisions
    with engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()  # type: ignore[arg-type]
            for name, table in tables.items()
        }


def every(n: int, engine: Engine, **others: int) -> dict[str, int]:
    """n rows in every evidence table (the revisions where they exist), `others` as given."""
    names = [
        "snapshots",
        "records",
        "runs",
        "errors",
        *(["revisions"] if "revisions" in counts(engine) else []),
    ]
    return {**{name: n for name in names}, **others}


@pytest.fixture
def filled(database_url: str, engine: Engine) -> tuple[str, datetime]:
    """The database at head (conftest's `engine`) with old and new evidence; its URL and now."""
    now = datetime.now(UTC).replace(microsecond=0)
    add_evidence(engine, now)
    engine.dispose()
    return database_url, now


def test_retention_keep_days_defaults_to_two_years_and_a_bad_value_names_the_key() -> None:
    portals = [{"name": "acme", "webhook_url": "https://acme.example/rest/1/abc/", "users": [1]}]
    assert parse_config({"portals": portals}, {}).retention == RetentionConfig(keep_days=730)
    assert parse_config({"portals": portals, "retention": {"keep_days": 0}}, {}).retention.keep_days == 0
    for bad in ("two years", -1, 3.5, True):
        with pytest.raises(ConfigError) as caught:
            parse_config({"portals": portals, "retention": {"keep_days": bad}}, {})
        assert str(caught.value) == (
            f"config key retention.keep_days: expected whole days >= 0 (730 = two years, 0 = no floor), "
            f"got {bad!r}"
        )
    with pytest.raises(
        ConfigError, match=r"^config key retention.keep: unknown key; expected one of keep_days$"
    ):
        parse_config({"portals": portals, "retention": {"keep": 1}}, {})


def test_prune_inside_the_floor_is_refused_in_one_line_and_deletes_nothing(
    filled: tuple[str, datetime],
) -> None:
    url, now = filled
    engine = storage.make_engine(url)
    before = counts(engine)
    assert before == every(4, engine, workdays=8)
    with pytest.raises(ConfigError) as caught:
        commands.prune(config_on(url), timedelta(days=400), now=now)
    assert str(caught.value) == REFUSAL
    assert counts(engine) == before
    engine.dispose()


def test_prune_past_the_floor_deletes_the_old_evidence_and_keeps_the_rest_and_the_workdays(
    filled: tuple[str, datetime],
) -> None:
    url, now = filled
    engine = storage.make_engine(url)
    dry = commands.prune(config_on(url), timedelta(days=730), dry_run=True, now=now)
    revisions = 2 if "revisions" in counts(engine) else 0
    assert dry.counts == maintenance.PruneCounts(
        snapshots=2, poll_runs=2, poll_errors=2, workday_records=2, workday_revisions=revisions
    )
    assert dry.refused is None
    done = commands.prune(config_on(url), timedelta(days=730), now=now)
    assert done.counts == dry.counts
    assert counts(engine) == every(2, engine, workdays=8)  # 500 days and yesterday stay
    with engine.connect() as connection:
        ages = sorted(
            (now - at).days for at in connection.execute(select(workday_records_table.c.fetched_at)).scalars()
        )
    assert ages == [1, 500]
    engine.dispose()


def test_a_record_of_an_old_day_fetched_recently_stays(filled: tuple[str, datetime]) -> None:
    url, now = filled
    engine = storage.make_engine(url)
    old_day = now - 900 * DAY
    end = old_day + timedelta(hours=8)
    item = {"id": 5, "userId": 3, "startTime": old_day.isoformat(), "endTime": end.isoformat(),
            "duration": 28800, "breakLength": 0, "state": {"status": "CLOSED"},
            "isApproved": True}  # fmt: skip
    storage.save_records(engine, "acme", [item], now - 10 * DAY)  # a backfill ten days ago
    done = commands.prune(config_on(url), timedelta(days=800), now=now)
    assert done.counts.workday_records == 1  # the 1000-day-old one only
    assert counts(engine)["records"] == 4
    engine.dispose()


def test_a_dry_run_inside_the_floor_shows_what_goes_at_the_floor_and_what_it_protects(
    filled: tuple[str, datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    url, now = filled
    engine = storage.make_engine(url)
    before = counts(engine)
    result = commands.prune(config_on(url), timedelta(days=400), dry_run=True, now=now)
    revisions = 1 if "revisions" in before else 0
    assert result.refused == REFUSAL
    assert result.counts == maintenance.PruneCounts(2, 2, 2, 2, 2 * revisions)  # past 730 days
    assert result.protected == maintenance.PruneCounts(1, 1, 1, 1, revisions)  # the 500-day-old rows
    floor = now - 730 * DAY
    asked = now - 400 * DAY
    assert prune_summary(result).splitlines() == [
        f"would delete 2 snapshots, 2 workday records, {2 * revisions} workday revisions, 2 poll runs and "
        f"2 poll errors from before {floor:%Y-%m-%d %H:%M} UTC (the retention floor)",
        f"protected by the floor: 1 snapshots, 1 workday records, {revisions} workday revisions, 1 poll runs "
        f"and 1 poll errors from {asked:%Y-%m-%d %H:%M} UTC on",
    ]
    # The command line: the counts on stdout, the refusal on stderr, exit 2, nothing deleted.
    assert main(["prune", "--older-than", "400d", "--dry-run", "--database", url]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].startswith("protected by the floor: 1 snapshots")
    assert captured.err.splitlines() == [f"timeman-poller: error: {REFUSAL}"]
    assert main(["prune", "--older-than", "400d", "--database", url]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err.splitlines()) == ("", [f"timeman-poller: error: {REFUSAL}"])
    assert counts(engine) == before
    engine.dispose()


def test_the_floor_comes_from_the_config_file_and_zero_turns_it_off(
    filled: tuple[str, datetime], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = filled
    config = tmp_path / "config.toml"
    portal = '[[portals]]\nname = "acme"\nwebhook_url = "https://acme.example/rest/1/abc/"\nusers = [1]\n'
    config.write_text(f'[database]\nurl = "{url}"\n[retention]\nkeep_days = 450\n{portal}')
    config.chmod(0o600)
    assert main(["prune", "-c", str(config), "--older-than", "64w"]) == 2  # 448 days
    assert "younger than [retention] keep_days = 450; give --older-than 450d" in capsys.readouterr().err
    assert main(["prune", "-c", str(config), "--older-than", "450d"]) == 0
    assert capsys.readouterr().out.startswith("deleted 3 snapshots, 3 workday records")
    config.write_text(f'[database]\nurl = "{url}"\n[retention]\nkeep_days = 0\n{portal}')
    assert main(["prune", "-c", str(config), "--older-than", "1h"]) == 0
    assert capsys.readouterr().out.startswith(
        "deleted 0 snapshots, 1 workday records"
    )  # the newest snapshot stays
