"""A workday record as the emulated portal holds it, and Bitrix24's time formats it is sent in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any


@dataclass(frozen=True)
class Record:
    """One `timeman.record.list` item as the portal knows it at some moment."""

    id: int
    user_id: int
    work_date: date
    start_time: datetime
    end_time: datetime | None
    duration: int
    break_length: int
    status: str
    approved: bool
    offset: int  # seconds east of UTC the times are rendered in

    def item(self) -> dict[str, Any]:
        """The REST 3.0 item, every field selected."""
        return {
            "id": self.id,
            "userId": self.user_id,
            "startTime": render_time(self.start_time, self.offset),
            "endTime": render_time(self.end_time, self.offset) if self.end_time else None,
            "duration": self.duration,
            "breakLength": self.break_length,
            "state": {"status": self.status},
            "isApproved": self.approved,
        }


def render_time(instant: datetime, offset_seconds: int) -> str:
    """`2024-07-30T07:10:51+03:00`: Bitrix24's timestamp format."""
    zone = timezone(timedelta(seconds=offset_seconds))
    return instant.astimezone(zone).replace(microsecond=0).isoformat()


def render_hms(seconds: int) -> str:
    """`HH:MM:SS` with uncapped hours."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
