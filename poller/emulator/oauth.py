"""The OAuth server's refresh endpoint (`/oauth/token/`), as oauth.bitrix.info answers it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from poller.emulator.wire import Answer, envelope

if TYPE_CHECKING:
    from poller.emulator.server import Emulator


def refresh(emulator: Emulator, params: dict[str, str]) -> Answer:
    """Spend a refresh token for a new pair; the answer names the portal's REST address."""
    s = emulator.settings
    if params.get("grant_type") != "refresh_token":
        return 400, envelope("unsupported_grant_type", "Only refresh_token is emulated")
    if params.get("client_id") != s.client_id or params.get("client_secret") != s.client_secret:
        return 401, envelope("invalid_client", "Client authentication failed")
    pair = emulator.rules.refresh(params.get("refresh_token", ""))
    if pair is None:
        return 400, envelope("invalid_grant", "Invalid refresh token")
    emulator.stats.add_token_refresh()
    base = emulator.base_url
    return 200, {
        "access_token": pair[0],
        "refresh_token": pair[1],
        "expires_in": int(s.token_lifetime),
        "expires": int(emulator.clock.time() + s.token_lifetime),
        "scope": ",".join(
            ["timeman", "user"] + ["department"] * s.department_scope + ["calendar"] * s.calendar_scope
        ),
        "domain": urlsplit(base).netloc,
        "server_endpoint": f"{base}/oauth/rest/",
        "client_endpoint": s.client_endpoint or f"{base}/rest/",
        "member_id": "emulated-member",
        "user_id": s.webhook_user,
        "status": "L",
    }
