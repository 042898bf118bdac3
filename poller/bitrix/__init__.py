"""Bitrix24 REST: transport (one HTTP exchange), limits, oauth, client (one `call`), methods (fetch_*)."""

from __future__ import annotations

from poller.bitrix.client import PortalClient
from poller.bitrix.methods import (
    StatusBatch,
    fetch_active_user_ids,
    fetch_departments,
    fetch_statuses,
    fetch_users,
    get_timekeeping_status,
)

__all__ = [
    "PortalClient",
    "StatusBatch",
    "fetch_active_user_ids",
    "fetch_departments",
    "fetch_statuses",
    "fetch_users",
    "get_timekeeping_status",
]
