"""What an answer of `timeman.record.list` means: a user's items, or an error; and which errors
say that the portal cannot serve the method at all."""

from __future__ import annotations

from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.record_query import RECORDS_METHOD
from poller.errors import V3_PREFIX, BitrixError

_MISSING_METHOD = {"ERROR_METHOD_NOT_FOUND", V3_PREFIX + "UNKNOWNMETHODEXCEPTION"}
_MISSING_SCOPE = {"INSUFFICIENT_SCOPE", V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION"}
_MISSING_RIGHT = {"ACCESS_DENIED", V3_PREFIX + "ACCESSDENIEDEXCEPTION"}


class RecordsUnavailable(BitrixError):
    """The portal cannot serve timeman.record.list: REST 3.0, the right or the scope is missing."""


def record_items(result: Any, client: PortalClient, user_id: int) -> list[dict[str, Any]] | BitrixError:
    """The records of one answer's `result` (`{"items": [...]}`), or the error it stands for."""
    items = result.get("items") if isinstance(result, dict) else None
    if isinstance(items, list) and all(isinstance(item, dict) for item in items):
        return items
    return BitrixError(
        f"portal {client.portal.host}: {RECORDS_METHOD} answer for user {user_id} has no list of items",
        code="BAD_RESPONSE",
        http_status=200,
        retryable=True,
    )


def records_unavailable(
    client: PortalClient, error: BitrixError, anything_read: bool
) -> RecordsUnavailable | None:
    """The one line for an error that says the portal cannot serve the method, else None.

    A missing right is the portal's only while nothing was read: with rights "by
    subordination", one user can be refused while the others are read.
    """
    code = error.code.upper()
    name = client.portal.name
    what = f"{error.code or 'no code'}, HTTP {error.http_status}" if error.http_status else error.code
    if code in _MISSING_METHOD:
        message = (
            f"portal {name}: {RECORDS_METHOD} is not available (REST 3.0 missing: {error.code}); "
            "backfill needs a Bitrix24 build with REST 3.0"
        )
    elif code in _MISSING_SCOPE:
        message = (
            f"portal {name}: {RECORDS_METHOD} refused ({what}): the webhook or app lacks the "
            "timeman scope; add it to read work time records"
        )
    elif code in _MISSING_RIGHT and not anything_read:
        message = (
            f"portal {name}: {RECORDS_METHOD} refused ({what}): the webhook's or app's user lacks "
            "the right to read work time records (read all records, or by subordination)"
        )
    else:
        return None
    return RecordsUnavailable(message, code=error.code, http_status=error.http_status, portal_wide=True)
