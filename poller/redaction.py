"""Hide secrets in text before it reaches a log line, an error message or an error row.

A webhook URL carries its secret in the path (`/rest/1/SECRET/`), OAuth requests carry tokens
in query parameters, and any text may quote a configured secret: `redact` covers all three.
Nothing here is installed at import time; `poller.logs` decides which loggers get the filter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_SECRET_IN_URL = re.compile(
    r"(/rest/(?:api/)?\d+/)[^/\s\"']+"
    r"|((?:auth|access_token|refresh_token|client_secret)=)[^&\s\"']+"
)


def redact_urls(text: str) -> str:
    """Hide webhook secrets and token parameters in every URL within `text`."""
    return _SECRET_IN_URL.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret in `text` by `***`, then hide secrets in URLs too.

    Longer secrets go first, so a secret that contains another is hidden whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact_urls(text)


class UrlSecretFilter(logging.Filter):
    """Redact URLs in a logger's records (urllib3's debug lines print every request path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_urls(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
