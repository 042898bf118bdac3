"""Pay categories: the four exclusive parts add up to the worked time; night is measured across them,
on the real timeline of the user's own wall clock, across midnight and the DST changes (Berlin)."""

from __future__ import annotations

from datetime import date, time

from compliance_days import worked_day

from poller.compliance import DayKind, PayCategories, WorkedDay, pay_categories

H = 3600


def categories(*days: WorkedDay, **options: object) -> list[PayCategories]:
    return pay_categories(days, **options)  # type: ignore[arg-type]


def test_night_work_across_midnight_counts_from_22_to_the_end_in_the_month_the_day_began() -> None:
    late = worked_day(5, date(2026, 3, 31), ("20:00", "02:00"))  # ends on 1 April
    assert categories(late) == [
        PayCategories(
            5,
            "2026-03",
            worked=6 * H,
            regular=6 * H,
            overtime=0,
            weekend=0,
            holiday=0,
            night=4 * H,
            estimated=False,
        )
    ]


def test_early_morning_work_counts_as_night_until_6() -> None:
    early = worked_day(5, date(2026, 3, 10), ("04:30", "07:00"))
    assert [c.night for c in categories(early)] == [int(1.5 * H)]


def test_the_spring_dst_night_is_an_hour_shorter() -> None:
    night = worked_day(
        5, date(2026, 3, 28), ("21:00", "07:00"), kind=DayKind.WORKDAY
    )  # 21:00 CET to 07:00 CEST
    [month] = categories(night)
    assert (month.worked, month.night, month.overtime) == (9 * H, 7 * H, 1 * H)


def test_the_autumn_dst_night_is_an_hour_longer() -> None:
    night = worked_day(
        5, date(2026, 10, 24), ("21:00", "07:00"), kind=DayKind.WORKDAY
    )  # 21:00 CEST to 07:00 CET
    [month] = categories(night)
    assert (month.worked, month.night, month.overtime) == (11 * H, 9 * H, 3 * H)


def test_a_night_window_that_does_not_cross_midnight() -> None:
    day = worked_day(5, date(2026, 3, 10), ("23:00", "07:00"))
    assert [c.night for c in categories(day, night=(time(0), time(6)))] == [6 * H]


def test_the_four_parts_add_up_to_the_worked_time_and_split_by_kind_of_day() -> None:
    days = [
        worked_day(5, date(2026, 3, 9), ("08:00", "18:00")),  # workday, 2 h over the norm
        worked_day(5, date(2026, 3, 10), ("08:00", "12:00"), ("12:30", "16:30")),  # 8 h: no overtime
        worked_day(5, date(2026, 3, 14), ("10:00", "22:30")),  # Saturday: weekend, half an hour of night
        worked_day(5, date(2026, 3, 18), ("09:00", "13:00"), kind=DayKind.HOLIDAY),
        worked_day(5, date(2026, 3, 19), ("09:00", "19:00"), kind=DayKind.ABSENT),  # regular, not overtime
        worked_day(5, date(2026, 4, 1), ("09:00", "10:00"), estimated=True),
        worked_day(2, date(2026, 3, 9), ("08:00", "09:00")),
    ]
    assert pay_categories(days) == [
        PayCategories(
            2, "2026-03", worked=H, regular=H, overtime=0, weekend=0, holiday=0, night=0, estimated=False
        ),
        PayCategories(
            5,
            "2026-03",
            worked=(10 + 8 + 12.5 + 4 + 10) * H,
            regular=(8 + 8 + 10) * H,
            overtime=2 * H,
            weekend=int(12.5 * H),
            holiday=4 * H,
            night=H // 2,
            estimated=False,
        ),
        PayCategories(
            5, "2026-04", worked=H, regular=H, overtime=0, weekend=0, holiday=0, night=0, estimated=True
        ),
    ]
    for month in pay_categories(days):
        assert month.regular + month.overtime + month.weekend + month.holiday == month.worked


def test_the_daily_norm_is_a_parameter() -> None:
    day = worked_day(5, date(2026, 3, 9), ("08:00", "16:00"))
    assert [c.overtime for c in categories(day, daily_norm=int(7.2 * H))] == [int(0.8 * H)]


def test_a_day_known_only_by_its_span_and_break_total_is_marked_estimated() -> None:
    day = worked_day(
        5, date(2026, 3, 9), ("08:00", "17:00"), worked_seconds=8 * H, break_seconds=H, longest_stretch=5 * H
    )
    assert [c.estimated for c in categories(day)] == [True]
