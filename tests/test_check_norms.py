"""`check` reports the rights the norms refresh needs (poller.check_norms): timeman.settings and
timeman.schedule.get (scope timeman), calendar.settings.get and calendar.accessibility.get (scope
calendar), and what is missing, as warnings: polling works without them."""

from __future__ import annotations

from pathlib import Path

from conftest import MakeEmulator, make_config, portal

from poller.check import check_config


def test_without_the_calendar_scope_check_warns_names_the_scope_and_skips_the_absences(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = make_emulator(calendar_scope=False)
    config = make_config(
        portal(emulator, [1, 2], schedule_ids=[1, 9], holidays_country="DE"),
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    report = check_config(config)
    found = {f.check: (f.outcome, f.detail, f.advice) for f in report.findings if f.subject == "emu"}
    assert report.ok and not report.clean
    assert found["norms"] == ("ok", "timeman.settings answers for user 2 (scope timeman)", "")
    assert found["schedules"] == (
        "warning",
        "the portal has no schedule 9",
        "fix schedule_ids or the schedules map (the ids are in the schedule's address in Bitrix24)",
    )
    outcome, detail, advice = found["scope calendar"]
    assert (outcome, detail) == (
        "warning",
        "HTTP 403 insufficient_scope: The request requires higher privileges than provided by the "
        "webhook token",
    )
    assert advice == (
        "add the calendar (Calendar) scope to the webhook; without it no absences are read "
        "(holidays of DE (holidays package) stand in)"
    )
    assert found["absences"] == ("skipped", "needs the calendar scope (see above)", "")
    assert emulator.stats.calls["calendar.accessibility.get"] == 0


def test_with_every_scope_the_norm_methods_are_ok_and_no_schedules_is_skipped(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = make_emulator()
    config = make_config(portal(emulator, [1, 2]), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    found = {f.check: f.outcome for f in check_config(config).findings if f.subject == "emu"}
    assert [found[name] for name in ("norms", "schedules", "scope calendar", "absences")] == [
        "ok", "skipped", "ok", "ok",
    ]  # fmt: skip
    assert emulator.stats.calls["calendar.accessibility.get"] == 1
