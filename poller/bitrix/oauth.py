"""Trade an OAuth refresh token for a new pair at the Bitrix24 OAuth server.

The old refresh token is spent by the trade: whoever calls this must store the new pair
before anything else can fail, or a person has to authorize the application again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from poller.bitrix.transport import Transport
from poller.config import PortalConfig
from poller.errors import BitrixError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    """What a refresh hands over: the new tokens and the portal's REST address, if sent."""

    access_token: str
    refresh_token: str
    client_endpoint: str | None = None

    def __repr__(self) -> str:  # never print tokens, not even in a traceback's locals
        return f"TokenPair(client_endpoint={self.client_endpoint!r})"


def fetch_token_pair(transport: Transport, portal: PortalConfig, refresh_token: str | None) -> TokenPair:
    """Refresh the portal's tokens; raise a BitrixError that says what to do when refused.

    `invalid_grant` (the refresh token is dead) and `PAYMENT_REQUIRED` (the application's
    subscription lapsed) are permanent: no retry can help, a person must act.
    """
    if not (refresh_token and portal.client_id and portal.client_secret):
        raise BitrixError(
            f"portal {portal.name}: access token expired and no refresh_token, client_id "
            "and client_secret are configured to renew it",
            code="expired_token",
            http_status=401,
            portal_wide=True,
        )
    params = {
        "grant_type": "refresh_token",
        "client_id": portal.client_id,
        "client_secret": portal.client_secret,
        "refresh_token": refresh_token,
    }
    what = f"token refresh at {urlsplit(portal.oauth_url).hostname or 'the OAuth server'}"
    try:
        body = transport.get_json(portal.oauth_url, params, host=portal.host, what=what)
    except BitrixError as error:
        _explain(error, portal)
        raise
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise BitrixError(
            f"portal {portal.name}: {what} answered without an access token",
            code="BAD_RESPONSE",
            http_status=200,
            retryable=True,
        )
    refresh = body.get("refresh_token")
    endpoint = body.get("client_endpoint")
    return TokenPair(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else refresh_token,
        client_endpoint=endpoint if isinstance(endpoint, str) and endpoint else None,
    )


def _explain(error: BitrixError, portal: PortalConfig) -> None:
    code = error.code.upper()
    if code == "INVALID_GRANT":
        error.reword(
            f"portal {portal.name}: the refresh token was refused (invalid_grant); "
            "a person must re-authorize the application"
        )
    elif code == "PAYMENT_REQUIRED":
        error.reword(
            f"portal {portal.name}: the OAuth server refused the refresh with PAYMENT_REQUIRED: "
            "the application's subscription has lapsed; renew it, then restart the poller"
        )
    elif code == "INVALID_CLIENT":
        error.reword(
            f"portal {portal.name}: the OAuth server refused client_id/client_secret (invalid_client); "
            "check them in the config"
        )


def rest_base_url(client_endpoint: str) -> str | None:
    """The scheme and host of a `client_endpoint` (`https://acme.bitrix24.com/rest/`), or None."""
    parts = urlsplit(client_endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def follow_client_endpoint(portal: PortalConfig, pair: TokenPair) -> PortalConfig:
    """The portal at the REST address a refresh named, when it differs; else `portal` itself.

    A portal that moves keeps its OAuth application, and the refresh answer's
    `client_endpoint` says where it is now. A move from https to plain http is refused.
    """
    new_base = rest_base_url(pair.client_endpoint) if pair.client_endpoint else None
    if new_base is None or new_base == portal.base_url.rstrip("/").lower():
        return portal
    if new_base.startswith("http://") and portal.base_url.startswith("https://"):
        logger.warning(
            "portal %s: the OAuth server names a plain http:// address; staying on %s",
            portal.name,
            portal.host,
        )
        return portal
    moved = replace(portal, base_url=new_base)
    logger.warning(
        "portal %s: the OAuth server says the portal's REST address is now %s (was %s); using it",
        portal.name,
        moved.host,
        portal.host,
    )
    return moved
