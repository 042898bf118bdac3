"""The daemon's jobs as the config gives them (`jobs.job_specs`): read without a scheduler or threads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import make_config, portal

from poller.config import Config
from poller.daemon.jobs import DATABASE_JOB_MAX_SECONDS, JobSpec, job_specs, pool_sizes
from poller.daemon.triggers import GridTrigger

WINTER, SUMMER = datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC)


def entry(name: str, **schedule: str | int) -> dict[str, object]:
    """A portal of the config (never reached: specs make no request)."""
    return {**portal(f"https://{name}.example/rest/1/secret/", [1], name=name), **schedule}


def by_id(config: Config) -> dict[str, JobSpec]:
    specs = job_specs(config)
    assert len({spec.id for spec in specs}) == len(specs), "job ids are unique"
    return {spec.id: spec for spec in specs}


def next_fire(spec: JobSpec, now: datetime) -> datetime:
    fire: datetime = spec.trigger.get_next_fire_time(None, now)
    return fire


def test_each_portal_polls_at_once_then_on_its_own_schedule_and_the_others_keep_the_global_one() -> None:
    config = make_config(
        entry("nightly", cron="0 3 * * *"),
        entry("own", interval_seconds=90),
        entry("global"),
        schedule={"interval_seconds": 600, "timezone": "Europe/Berlin"},
        reconcile={"days": 0},
    )
    jobs = by_id(config)
    assert list(jobs) == ["poll:nightly", "poll:own", "poll:global", "database"]
    polls = [jobs[f"poll:{name}"] for name in ("nightly", "own", "global")]
    assert all(spec.at_start and spec.body == "poll" and spec.executor == "default" for spec in polls)
    assert [spec.portal for spec in polls] == ["nightly", "own", "global"]
    assert all((spec.max_instances, spec.coalesce) == (1, True) for spec in jobs.values())
    own, glob = jobs["poll:own"].trigger, jobs["poll:global"].trigger
    assert isinstance(own, GridTrigger) and own.interval == timedelta(seconds=90)
    assert isinstance(glob, GridTrigger) and glob.interval == timedelta(seconds=600)
    # A run may start half an interval late (a minute for cron) and still count.
    assert [spec.misfire_grace_seconds for spec in polls] == [60, 45, 300]
    assert jobs["poll:own"].name == "poll own"


def test_a_cron_poll_fires_in_the_schedule_timezone_across_dst() -> None:
    config = make_config(
        entry("nightly", cron="0 3 * * *"),
        entry("yearly", cron="0 0 1 1 *"),
        schedule={"timezone": "Europe/Berlin"},
    )
    nightly, yearly = by_id(config)["poll:nightly"], by_id(config)["poll:yearly"]
    assert next_fire(nightly, WINTER) == datetime(2026, 1, 16, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert next_fire(nightly, SUMMER) == datetime(2026, 7, 16, 1, 0, tzinfo=UTC)  # 03:00 CEST
    spring_forward = datetime(2026, 3, 28, 12, tzinfo=UTC)  # clocks go 02:00 -> 03:00 on 29 March
    assert next_fire(nightly, spring_forward) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert next_fire(yearly, SUMMER) == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # after the run at start


def test_the_daily_reconcile_of_each_portal_fires_at_its_local_time_on_its_own_pool() -> None:
    config = make_config(
        entry("nightly", cron="0 3 * * *"),
        entry("own", interval_seconds=90),
        entry("global"),
        schedule={"interval_seconds": 600, "timezone": "Europe/Berlin"},
        reconcile={"days": 2, "at": "03:30"},
    )
    jobs = by_id(config)
    for name in ("nightly", "own", "global"):
        spec = jobs[f"reconcile:{name}"]
        assert (spec.body, spec.portal, spec.executor, spec.at_start) == (
            "reconcile",
            name,
            "reconcile",
            False,
        )
        assert spec.misfire_grace_seconds == 3600
        assert next_fire(spec, WINTER) == datetime(2026, 1, 16, 2, 30, tzinfo=UTC)
        assert next_fire(spec, SUMMER) == datetime(2026, 7, 16, 1, 30, tzinfo=UTC)


def test_reconcile_days_0_schedules_no_reconcile() -> None:
    jobs = by_id(make_config(entry("a"), entry("b"), reconcile={"days": 0}))
    assert not [spec for spec in jobs.values() if spec.body == "reconcile"]


def test_the_database_job_runs_at_once_then_at_the_shortest_interval_at_most_every_10_s() -> None:
    often = by_id(make_config(entry("often", interval_seconds=3), entry("slow", interval_seconds=600)))[
        "database"
    ]
    assert (often.body, often.portal, often.at_start) == ("database", None, True)
    assert often.trigger.get_next_fire_time(WINTER, WINTER) == WINTER + timedelta(seconds=3)
    rare = by_id(make_config(entry("slow", interval_seconds=600)))["database"]
    assert rare.trigger.get_next_fire_time(WINTER, WINTER) == WINTER + timedelta(
        seconds=DATABASE_JOB_MAX_SECONDS
    )
    cron = by_id(make_config(entry("nightly", cron="0 3 * * *")))["database"]
    assert cron.trigger.get_next_fire_time(WINTER, WINTER) == WINTER + timedelta(
        seconds=DATABASE_JOB_MAX_SECONDS
    )


def test_the_specs_cover_only_the_portals_asked_for() -> None:
    config = make_config(entry("a"), entry("b"), reconcile={"days": 1})
    specs = job_specs(config, [config.portals[1]])
    assert [spec.id for spec in specs] == ["poll:b", "reconcile:b", "database"]


def test_a_thread_per_portal_and_the_database_job_and_a_few_for_reconciles() -> None:
    assert pool_sizes(1) == {"default": 2, "reconcile": 1}
    assert pool_sizes(12) == {"default": 13, "reconcile": 4}
