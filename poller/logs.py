"""Logging for the command line: one stderr handler, text or JSON lines, secrets redacted.

Only the CLI installs it (`installed(...)`); importing a module of the package configures
nothing, so a program that embeds the poller keeps its own logging.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

from poller.redaction import UrlSecretFilter, redact

LogFormat = Literal["text", "json"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PROGRAM = "timeman-poller"

# Libraries that talk too much below WARNING, and what they may say at --log-level DEBUG:
# urllib3 every request line (redacted: a webhook path holds its secret), apscheduler each
# run, alembic each migration. SQLAlchemy never: its statement parameters can hold a freshly
# refreshed OAuth token that no filter knows yet.
_LIBRARIES = {
    "urllib3": logging.DEBUG,
    "apscheduler": logging.INFO,
    "alembic": logging.INFO,
    "sqlalchemy": logging.WARNING,
}


class RedactingFilter(logging.Filter):
    """Hide known secrets, and secrets inside any URL, in every record the handler writes.

    A last line of defence: messages of ours are built without secrets, but urllib3's debug
    lines print request paths, and an exception's text may quote what it was given.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact these too (the CLI adds each portal's secrets once the config is read)."""
        self.secrets.update(s for s in secrets if s)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as logging does
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info:  # another handler may have cached the text unredacted already
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (`time`, `level`, `logger`, `message`), for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (tests swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def make_handler(log_format: LogFormat, redactor: RedactingFilter) -> logging.Handler:
    """A stderr handler writing `log_format` lines, every record passed through `redactor`."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(redactor)
    return handler


@contextmanager
def installed(level: str = "INFO", log_format: LogFormat = "text") -> Iterator[RedactingFilter]:
    """Send every log record at `level` and above to stderr while the block runs.

    Yields the handler's RedactingFilter, to add secrets to once they are known. On exit the
    root logger and the library loggers are as they were, so `main()` can run in-process.
    """
    redactor = RedactingFilter()
    handler = make_handler(log_format, redactor)
    root = logging.getLogger()
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    saved = {name: logging.getLogger(name).level for name in ("", *_LIBRARIES)}
    # urllib3's request lines are cleaned where they are made, so that every handler (a test's
    # log capture too) gets them without secrets, not only ours.
    url_filter = UrlSecretFilter()
    urllib3_requests = logging.getLogger("urllib3.connectionpool")
    urllib3_requests.addFilter(url_filter)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, verbose in _LIBRARIES.items():
        logging.getLogger(name).setLevel(verbose if numeric <= logging.DEBUG else logging.WARNING)
    try:
        yield redactor
    finally:
        root.removeHandler(handler)
        urllib3_requests.removeFilter(url_filter)
        for name, previous in saved.items():
            logging.getLogger(name).setLevel(previous)


def fatal_line(message: str, log_format: LogFormat = "text") -> str:
    """The one line that ends a command that failed: `timeman-poller: error: ...`, or JSON."""
    if log_format == "json":
        return json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "level": "ERROR",
                "logger": PROGRAM,
                "message": message,
            },
            ensure_ascii=False,
        )
    return f"{PROGRAM}: error: {message}"
