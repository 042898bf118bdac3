"""`report corrections --month YYYY-MM`: what changed in a month's workdays after they were stored.

One row per changed field (workday_revisions): the record's or the day's value before and
after, when each was seen, and whether it came after the month was closed
(poller.views.CORRECTION_COLUMNS); poller.render.corrections lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from poller.config import Config
from poller.storage import maintenance
from poller.storage.revisions import get_revisions
from poller.views import CORRECTION_COLUMNS


def corrections(
    config: Config, month: date, *, portals: Sequence[str] = (), users: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """The revisions of the workdays of `month` (what `report corrections` lists)."""
    with maintenance.open_database(config.database_url) as engine:
        rows = get_revisions(engine, month, portals=portals, users=users)
    return [{name: row[name] for name in CORRECTION_COLUMNS} for row in rows]
