"""Worked days written by hand for the compliance tests: wall times in Berlin, figures derived."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from poller.compliance import DayKind, Interval, WorkedDay, load_pack
from poller.compliance.packs import RulePack

BERLIN = ZoneInfo("Europe/Berlin")


def at(day: date, wall: str) -> datetime:
    """'HH:MM' or 'HH:MM:SS' on `day`, Berlin time."""
    parts = [int(p) for p in wall.split(":")] + [0]
    return datetime(day.year, day.month, day.day, parts[0], parts[1], parts[2], tzinfo=BERLIN)


def real(a: datetime, b: datetime) -> int:
    """Seconds from a to b on the real timeline."""
    return int((b.astimezone(UTC) - a.astimezone(UTC)).total_seconds())


def worked_day(user: int, day: date, *spans: tuple[str, str], **fields: Any) -> WorkedDay:
    """A day of work stretches; an end not after its start is on the next day. Figures follow the spans."""
    intervals = []
    for start, end in spans:
        begins = at(day, start)
        ends = at(day, end)
        if ends <= begins:
            ends = at(day + timedelta(days=1), end)
        intervals.append(Interval(begins, ends))
    fields.setdefault("kind", DayKind.WORKDAY if day.weekday() < 5 else DayKind.WEEKEND)
    fields.setdefault("worked_seconds", sum(real(i.start, i.end) for i in intervals))
    gaps = [real(a.end, b.start) for a, b in pairwise(intervals)]
    fields.setdefault("break_seconds", sum(gaps))
    return WorkedDay(user_id=user, date=day, intervals=tuple(intervals), **fields)


def only(pack: str, rule_id: str) -> RulePack:
    """A shipped pack cut down to one rule, so a test sees that rule's findings alone."""
    shipped = load_pack(pack)
    return RulePack(shipped.name, shipped.title, tuple(r for r in shipped.rules if r.id == rule_id))
