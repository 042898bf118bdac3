"""Each rule of the shipped packs, kept exactly at its limit and broken by one second.

Days are written by hand in Berlin time; one rule is judged at a time (`only`), so a test sees
that rule's findings and nothing else. A month of generated days is in test_compliance_month.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from compliance_days import only, worked_day

from poller.compliance import DayKind, DayStatus, Violation, WorkedDay, find_violations, load_pack

H = 3600
MONTH = "2026-03"


def found(days: list[WorkedDay], pack: str, rule_id: str, month: str = MONTH) -> list[Violation]:
    return find_violations(days, only(pack, rule_id), month)


def one(
    user: int, on: date, rule: str, figure: float, limit: float, source: str, **more: object
) -> Violation:
    """The expected finding, dated on a single day unless `period` says otherwise."""
    fields: dict[str, object] = {"period": on.isoformat(), "unit": "s", "estimated": False}
    fields.update(more)
    return Violation(user, on, rule_id=rule, figure=figure, limit=limit, source=source, **fields)  # type: ignore[arg-type]


def _wall(seconds: int) -> str:
    return f"{seconds // H:02d}:{seconds % H // 60:02d}:{seconds % 60:02d}"


D1, D2 = date(2026, 3, 10), date(2026, 3, 11)  # a Tuesday and a Wednesday


@pytest.mark.parametrize("pack", ["de", "eu"])
def test_a_rest_of_11_hours_between_two_days_is_kept_and_one_second_less_is_not(pack: str) -> None:
    evening = worked_day(7, D1, ("08:00", "17:00"))
    assert found([evening, worked_day(7, D2, ("04:00", "12:00"))], pack, "daily_rest") == []
    short = found([evening, worked_day(7, D2, ("03:59:59", "12:00"))], pack, "daily_rest")
    source = "ArbZG §5(1)" if pack == "de" else "Directive 2003/88/EC, art. 3"
    assert short == [one(7, D2, "daily_rest", 11 * H - 1, 11 * H, source)]


def test_the_rest_before_the_first_day_of_the_month_counts_and_the_day_before_is_not_reported() -> None:
    days = [
        worked_day(7, date(2026, 2, 28), ("14:00", "23:00")),
        worked_day(7, date(2026, 3, 1), ("09:00", "12:00")),
    ]
    assert [v.on for v in found(days, "de", "daily_rest")] == [date(2026, 3, 1)]
    assert found(days, "de", "daily_rest", "2026-02") == []


def test_the_rest_across_the_spring_dst_change_is_an_hour_shorter_than_the_clock_says() -> None:
    days = [
        worked_day(7, date(2026, 3, 28), ("12:00", "21:00")),
        worked_day(7, date(2026, 3, 29), ("08:00", "09:00")),
    ]
    assert [v.figure for v in found(days, "de", "daily_rest")] == [10 * H]


@pytest.mark.parametrize(
    ("rule", "over", "needed"), [("break_30m_over_6h", 6 * H, 1800), ("break_45m_over_9h", 9 * H, 2700)]
)
def test_a_day_over_the_threshold_needs_its_break_to_the_second(rule: str, over: int, needed: int) -> None:
    def day_with(pause: int, worked: int) -> WorkedDay:
        """Three hours from 08:00, a pause, then the rest of `worked`."""
        resume = 11 * H + pause
        return worked_day(7, D1, ("08:00", "11:00"), (_wall(resume), _wall(resume + worked - 3 * H)))

    assert day_with(needed, over + 1).worked_seconds == over + 1
    assert found([day_with(needed, over + 1)], "de", rule) == []
    assert found([day_with(0, over)], "de", rule) == [], "exactly at the threshold no break is due"
    broken = found([day_with(needed - 1, over + 1)], "de", rule)
    assert broken == [one(7, D1, rule, needed - 1, needed, "ArbZG §4 sentence 1 and 2")]


def test_breaks_count_in_parts_of_at_least_15_minutes() -> None:
    parts = worked_day(7, D1, ("08:00", "11:00"), ("11:15", "14:00"), ("14:15", "15:00"))
    assert found([parts], "de", "break_30m_over_6h") == []
    short_part = worked_day(7, D1, ("08:00", "11:00"), ("11:15", "14:00"), ("14:14:59", "15:00"))
    assert [v.figure for v in found([short_part], "de", "break_30m_over_6h")] == [900]


def test_the_eu_break_is_due_above_6_hours() -> None:
    kept = worked_day(7, D1, ("08:00", "12:00"), ("12:15", "14:15:01"))
    assert found([kept], "eu", "break_after_6h") == []
    broken = worked_day(7, D1, ("08:00", "12:00"), ("12:14:59", "14:15:01"))
    assert [(v.figure, v.limit) for v in found([broken], "eu", "break_after_6h")] == [(899, 900)]


def test_six_hours_in_a_row_are_allowed_and_one_second_more_is_not() -> None:
    kept = worked_day(7, D1, ("08:00", "14:00"), ("14:15", "16:00"))
    assert found([kept], "de", "no_6h_without_break") == []
    broken = worked_day(7, D1, ("08:00", "14:00:01"), ("14:15:01", "16:00"))
    assert found([broken], "de", "no_6h_without_break") == [
        one(7, D1, "no_6h_without_break", 6 * H + 1, 6 * H, "ArbZG §4 sentence 3")
    ]


def test_a_pause_under_15_minutes_does_not_end_a_stretch() -> None:
    short_pause = worked_day(7, D1, ("08:00", "11:00"), ("11:14:59", "14:00:01"))
    assert [v.figure for v in found([short_pause], "de", "no_6h_without_break")] == [6 * H + 1]
    a_break = worked_day(7, D1, ("08:00", "11:00"), ("11:15", "14:00:01"))
    assert found([a_break], "de", "no_6h_without_break") == []


def test_a_stretch_known_from_polls_only_is_judged_and_marked_estimated() -> None:
    day = worked_day(7, D1, ("08:00", "17:00"), break_seconds=1800, longest_stretch=6 * H + 1, estimated=True)
    assert found([day], "de", "no_6h_without_break") == [
        one(7, D1, "no_6h_without_break", 6 * H + 1, 6 * H, "ArbZG §4 sentence 3", estimated=True)
    ]
    assert found([day], "de", "break_30m_over_6h") == [], "the break total stands in for the gaps"


def test_a_break_total_without_its_parts_is_a_finding_only_when_the_parts_cannot_reach_the_limit() -> None:
    """Records give a day's break total, not its pauses; only pauses of 15 minutes count."""

    def total_only(break_seconds: int) -> WorkedDay:
        # 08:00-15:30 with the breaks somewhere in it: the span, the total, a stretch from polls.
        worked = int(7.5 * H) - break_seconds
        figures = {"worked_seconds": worked, "break_seconds": break_seconds, "longest_stretch": 4 * H}
        return worked_day(7, D1, ("08:00", "15:30"), **figures)

    def breaks(day: WorkedDay) -> list[tuple[float, bool]]:
        return [(v.figure, v.estimated) for v in found([day], "de", "break_30m_over_6h")]

    # Under 15 minutes in all: every part was short, so no break counts, exactly.
    assert breaks(total_only(899)) == [(0, False)]
    # 20 minutes: whatever its parts, under 30 count; the figure is the total (an upper bound).
    assert breaks(total_only(1200)) == [(1200, False)]
    # 40 minutes may be four pauses of 10, which would count 0: not provable either way, and
    # not reported (docs/compliance.md: such a day may be missed).
    assert breaks(total_only(2400)) == []
    # Where the pauses are known, the same 40 minutes in short parts is a finding.
    short_parts = worked_day(7, D1, *[(f"{8 + n}:00", f"{8 + n}:50") for n in range(4)], ("12:00", "16:00"))
    assert [(v.figure, v.estimated) for v in found([short_parts], "de", "break_30m_over_6h")] == [(0, False)]


def test_ten_hours_a_day_are_allowed_and_one_second_more_is_not() -> None:
    assert found([worked_day(7, D1, ("08:00", "18:00"))], "de", "daily_10h") == []
    broken = found([worked_day(7, D1, ("08:00", "18:00:01"), status=DayStatus.EXPIRED)], "de", "daily_10h")
    assert broken == [one(7, D1, "daily_10h", 10 * H + 1, 10 * H, "ArbZG §3 sentence 2", estimated=True)]


def _plus(days: list[WorkedDay], extra: int) -> list[WorkedDay]:
    """`days` with `extra` seconds more on the last of them."""
    last = days[-1]
    return [
        *days[:-1],
        WorkedDay(last.user_id, last.date, last.kind, worked_seconds=last.worked_seconds + extra),
    ]


def _every(first: date, last: date, weekdays: int, seconds: int) -> list[WorkedDay]:
    """User 7 works `seconds` on the first `weekdays` days of each week from `first` to `last`."""
    days, day = [], first
    while day <= last:
        if day.weekday() < weekdays:
            days.append(WorkedDay(7, day, DayKind.WORKDAY, worked_seconds=seconds))
        day += timedelta(days=1)
    return days


def test_8_hours_per_werktag_on_average_over_24_weeks_is_kept_and_one_second_more_is_not() -> None:
    days = _every(date(2025, 9, 1), date(2026, 3, 28), 6, 8 * H)  # up to the last Saturday of March
    assert found(days, "de", "daily_8h_average") == []
    over = found(_plus(days, 1), "de", "daily_8h_average")
    sunday = date(2026, 3, 29)
    total = 144 * 8 * H + 1
    assert over == [
        one(
            7,
            sunday,
            "daily_8h_average",
            total / 144,
            8 * H,
            "ArbZG §3 sentence 2",
            period="2026-W13",
            unit="s/workday",
        )
    ]


def test_48_hours_a_week_on_average_over_17_weeks_is_kept_and_one_second_more_is_not() -> None:
    days = _every(date(2025, 10, 1), date(2026, 3, 13), 5, 48 * H // 5)  # up to Friday of week 11
    assert found(days, "eu", "weekly_48h_average") == []
    over = found(_plus(days, 1), "eu", "weekly_48h_average")
    figures = [(v.period, v.figure, v.unit) for v in over]
    assert figures == [("2026-W11", (17 * 48 * H + 1) / 17, "s/week")]


def _weekly_rest_days(monday_start: str) -> list[WorkedDay]:
    """Work every day from 2 to 14 March, 08:00-17:00, then Monday 16 March from `monday_start`."""
    days = [worked_day(7, date(2026, 3, d), ("08:00", "17:00")) for d in range(2, 15)]
    return [*days, worked_day(7, date(2026, 3, 16), (monday_start, "12:00"))]


def test_a_weekly_rest_of_35_hours_is_kept_and_one_second_less_is_not() -> None:
    assert found(_weekly_rest_days("04:00"), "eu", "weekly_rest") == []
    assert found(_weekly_rest_days("03:59:59"), "eu", "weekly_rest") == [
        one(
            7,
            date(2026, 3, 15),
            "weekly_rest",
            35 * H - 1,
            35 * H,
            "Directive 2003/88/EC, art. 5",
            period="2026-W11",
        )
    ]


def test_the_weekly_rest_over_the_spring_dst_change_loses_an_hour() -> None:
    days = [worked_day(7, date(2026, 3, d), ("08:00", "17:00")) for d in range(16, 29)]
    days.append(worked_day(7, date(2026, 3, 30), ("04:00", "12:00")))  # 35 h on the clock, 34 h lived
    assert [(v.period, v.figure) for v in found(days, "eu", "weekly_rest")] == [("2026-W13", 34 * H)]


def test_a_sunday_or_holiday_with_one_second_of_work_is_a_finding_and_one_without_is_not() -> None:
    sunday, holiday = date(2026, 3, 15), date(2026, 3, 18)
    days = [
        WorkedDay(7, sunday, DayKind.WEEKEND, worked_seconds=1),
        WorkedDay(7, holiday, DayKind.HOLIDAY, worked_seconds=1),
        WorkedDay(7, date(2026, 3, 22), DayKind.WEEKEND),
        WorkedDay(7, date(2026, 3, 21), DayKind.WEEKEND, worked_seconds=5 * H),  # Saturday: allowed
    ]
    source = "ArbZG §9(1)"
    assert found(days, "de", "no_sunday_holiday_work") == [
        one(7, sunday, "no_sunday_holiday_work", 1, 0, source),
        one(7, holiday, "no_sunday_holiday_work", 1, 0, source),
    ]


def test_four_hours_of_overtime_in_two_days_are_allowed_and_one_second_more_is_not() -> None:
    first = WorkedDay(7, D1, DayKind.WORKDAY, worked_seconds=10 * H)
    kept = [first, WorkedDay(7, D2, DayKind.WORKDAY, worked_seconds=10 * H)]
    assert found(kept, "ru", "overtime_4h_in_2_days") == []
    broken = [first, WorkedDay(7, D2, DayKind.WORKDAY, worked_seconds=10 * H + 1, estimated=True)]
    assert found(broken, "ru", "overtime_4h_in_2_days") == [
        one(
            7,
            D2,
            "overtime_4h_in_2_days",
            4 * H + 1,
            4 * H,
            "TK RF art. 99",
            period=f"{D1}/{D2}",
            estimated=True,
        )
    ]


def test_weekend_work_is_not_overtime() -> None:
    saturday = WorkedDay(7, date(2026, 3, 14), DayKind.WEEKEND, worked_seconds=14 * H)
    assert found([saturday], "ru", "overtime_4h_in_2_days") == []


def test_120_hours_of_overtime_a_year_are_allowed_and_one_second_more_is_found_in_its_month() -> None:
    days = [
        WorkedDay(7, date(2026, 1, 1) + timedelta(days=n), DayKind.WORKDAY, worked_seconds=10 * H)
        for n in range(60)
    ]
    assert days[-1].date == date(2026, 3, 1)
    assert found(days, "ru", "overtime_120h_a_year") == []
    days.append(WorkedDay(7, date(2026, 3, 2), DayKind.WORKDAY, worked_seconds=8 * H + 1))
    days.append(WorkedDay(7, date(2026, 3, 3), DayKind.WORKDAY, worked_seconds=9 * H))
    over = found(days, "ru", "overtime_120h_a_year")
    assert over == [
        one(7, date(2026, 3, 2), "overtime_120h_a_year", 121 * H + 1, 120 * H, "TK RF art. 99", period="2026")
    ]
    assert found(days, "ru", "overtime_120h_a_year", "2026-04") == [], "April added no overtime"
    assert found(days, "ru", "overtime_120h_a_year", "2026-02") == [], (
        "the year was under its limit in February"
    )


def test_findings_come_by_user_then_date_then_the_packs_order() -> None:
    days = [
        worked_day(9, D1, ("08:00", "19:00")),
        worked_day(3, D2, ("08:00", "19:00")),
        worked_day(3, D1, ("08:00", "19:00")),
    ]
    order = [(v.user_id, v.on, v.rule_id) for v in find_violations(days, load_pack("de"), MONTH)]
    rules = ["break_30m_over_6h", "break_45m_over_9h", "no_6h_without_break", "daily_10h"]
    assert order == [(u, d, r) for u, d in [(3, D1), (3, D2), (9, D1)] for r in rules]


def test_two_days_of_one_user_on_one_date_are_refused() -> None:
    day = WorkedDay(7, D1, DayKind.WORKDAY, worked_seconds=H)
    with pytest.raises(ValueError, match="more than one day per date"):
        find_violations([day, day], only("de", "daily_10h"), MONTH)
