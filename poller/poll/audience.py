"""Which users a portal's cycle, backfill and reconcile ask for: one rule, in one place.

1. Ids given for this run (`backfill --users`), without repeats.
2. Else the portal's configured list.
3. Else (`users = "all"`) the active users of the stored directory, which the directory
   refresh keeps within `[directory] refresh_hours` of the portal (new hires included):
   then a cycle costs ceil(N/50) requests and no listing.
4. Else (the directory is empty, off, or unreadable) the active users that `user.get` lists
   now, page by page; a stop between two pages raises Stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient, fetch_active_user_ids

logger = logging.getLogger(__name__)


def user_ids_to_ask(
    engine: Engine,
    client: PortalClient,
    given: Sequence[int] | None = None,
    *,
    directory: bool = True,
) -> list[int]:
    """The users to ask for, in the order above; `directory` False skips the stored directory
    (the database is not ready). Raises BitrixError when `user.get` fails, Stopped on a stop."""
    if given is not None:
        return list(dict.fromkeys(given))
    configured = client.portal.users
    if configured != "all":
        return list(dict.fromkeys(configured))
    if directory:
        stored = _directory_user_ids(engine, client.portal.name)
        if stored:
            return stored
    return fetch_active_user_ids(client)


def _directory_user_ids(engine: Engine, portal: str) -> list[int]:
    """The active users the directory holds for `portal`; [] when it is empty or unreadable."""
    try:
        return storage.get_directory_user_ids(engine, portal)
    except storage.DatabaseFailure as exc:
        logger.warning(
            "portal %s: user directory unreadable (%s); listing users with user.get",
            portal,
            storage.describe_db_error(exc),
        )
        return []
