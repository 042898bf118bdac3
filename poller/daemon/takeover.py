"""What a replica does when it takes a portal another replica polled until now.

1. It starts from the newest stored OAuth pair: the other replica may have refreshed the pair
   (spending the refresh token this replica loaded at start).
2. It skips this trigger when the portal's last cycle, by any replica, started less than half
   an interval ago: a jittered or late trigger right after the other replica's cycle would
   poll the portal twice within one interval. It polls at the next trigger.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.config import Config
from poller.spool.tokenstore import TokenStore
from poller.storage.cycles import get_last_cycle_start

logger = logging.getLogger(__name__)


def take_over(config: Config, engine: Engine, tokens: TokenStore, client: PortalClient) -> bool:
    """Prepare `client`'s portal, freshly taken; return whether to poll it at this trigger."""
    name = client.portal.name
    if not client.portal.uses_webhook:
        stored = tokens.load(name)
        if stored is not None and stored[0] != client.access_token:
            client.use_tokens(*stored)
            logger.info("portal %s: taken over with the newest stored OAuth pair", name)
    schedule = config.schedule_of(client.portal)
    half = timedelta(seconds=(schedule.interval_seconds or 60) / 2)
    try:
        last = get_last_cycle_start(engine, name)
    except storage.DatabaseFailure:
        return True  # the database cannot say: poll (a gap is worse than a duplicate)
    if last is None or client.clock.now() - last >= half:
        return True
    logger.info(
        "portal %s: taken over just after another replica's cycle: polled from the next trigger", name
    )
    return False
