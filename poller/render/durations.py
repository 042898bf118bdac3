"""A duration as people read it: `8:05` for hours and minutes, declared once.

Reports, the demo's table and backfill's progress line all show durations this way.
"""

from __future__ import annotations


def hours_minutes(seconds: int) -> str:
    """`8:05` for 29100 seconds; negative values keep their sign; seconds are cut off."""
    sign = "-" if seconds < 0 else ""
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"
