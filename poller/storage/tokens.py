"""oauth_tokens: the newest OAuth pair of each portal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from poller.models import OAuthToken
from poller.storage.failures import database_call


@database_call
def save_tokens(
    engine: Engine, portal: str, access_token: str, refresh_token: str | None, now: datetime
) -> None:
    """Store a portal's new token pair at once: the old refresh token is already dead."""
    with Session(engine) as session, session.begin():
        session.merge(
            OAuthToken(
                portal=portal,
                access_token=access_token,
                refresh_token=refresh_token,
                updated_at=now,
            )
        )


@database_call
def get_tokens(engine: Engine, portal: str) -> tuple[str, str | None] | None:
    """The stored token pair of `portal`, or None when it was never refreshed."""
    with Session(engine) as session:
        row = session.get(OAuthToken, portal)
        return None if row is None else (row.access_token, row.refresh_token)


@dataclass(frozen=True)
class StoredTokens:
    """A portal's stored pair and when it was stored: of two pairs, the newer one wins."""

    access_token: str
    refresh_token: str | None
    updated_at: datetime

    def __repr__(self) -> str:  # never print tokens, not even in a traceback's locals
        return f"StoredTokens(updated_at={self.updated_at!r})"


@database_call
def get_stored_tokens(engine: Engine, portal: str) -> StoredTokens | None:
    """The stored token pair of `portal` with its updated_at, or None when it was never refreshed."""
    with Session(engine) as session:
        row = session.get(OAuthToken, portal)
        return None if row is None else StoredTokens(row.access_token, row.refresh_token, row.updated_at)
