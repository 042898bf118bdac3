"""Paths in the config: relative to the config file's directory, checked before any command runs.

A config read from a file takes the relative paths written in it (a SQLite database, the
spool, a CA bundle) from the file's directory, so `-c /srv/poller/config.toml report` run from
anywhere finds the database the daemon writes. A key left out keeps its default relative to the
working directory: the systemd unit and the image keep the config in a read-only /etc and their
state in the working directory. A SQLite file in a directory that does not exist is a configuration
error (exit 2: the systemd unit does not restart it), not a database one. A `postgres://` URL,
which SQLAlchemy does not know, is read as `postgresql+psycopg://` with one INFO line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poller.config.values import name_key
from poller.errors import ConfigError

logger = logging.getLogger(__name__)

_SQLITE = re.compile(r"(?P<scheme>sqlite(?:\+\w+)?):///(?P<database>[^?]*)(?P<query>\?.*)?", re.S)
_POSTGRES_WITHOUT_DRIVER = re.compile(r"(?P<scheme>postgres|postgresql)://")
POSTGRES_SCHEME = "postgresql+psycopg"


def database_url(url: str, where: str, base: Path | None) -> str:
    """`url` with a relative SQLite path made absolute against `base` and a driver for PostgreSQL.

    `where` names the value in errors (`database.url`, or `--database` as it is). Without
    `base` a relative path stays relative: to the working directory.
    """
    bare = _POSTGRES_WITHOUT_DRIVER.match(url)
    if bare:
        logger.info(
            "%s: %s:// read as %s:// (PostgreSQL through psycopg 3, installed with the poller); "
            "write that to silence this line",
            where,
            bare.group("scheme"),
            POSTGRES_SCHEME,
        )
        return f"{POSTGRES_SCHEME}://{url[bare.end() :]}"
    sqlite = _SQLITE.fullmatch(url)
    database = sqlite.group("database") if sqlite else ""
    if not sqlite or database in ("", ":memory:") or database.startswith("file:"):
        return url  # not SQLite, in memory, or a SQLite URI: nothing to resolve
    path = Path(database)
    if base is not None and not path.is_absolute():
        path = base / path
        url = f"{sqlite.group('scheme')}:///{path}{sqlite.group('query') or ''}"
    directory = path.absolute().parent
    if not directory.is_dir():
        raise ConfigError(
            f"{name_key(where)}: directory {directory} does not exist; create it or give another path"
        )
    return url


def relative_to(value: str, base: Path | None) -> Path:
    """A path from the config, relative to the config file's directory when there is one."""
    path = Path(value)
    return base / path if base is not None and not path.is_absolute() else path


@dataclass(frozen=True)
class DatabaseUrl:
    text: str = "SQLAlchemy URL"

    def read(self, value: Any, key: str, base: Path | None) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key}: expected a string, got {value!r}")
        return database_url(value, key, base)


@dataclass(frozen=True)
class SpoolPath:
    """A file path; the empty string is None (no spool file)."""

    text: str = 'file path ("" = memory only)'

    def read(self, value: Any, key: str, base: Path | None) -> Path | None:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key}: expected a string, got {value!r}")
        return relative_to(value, base) if value else None


@dataclass(frozen=True)
class ReadableFile:
    """A file that must exist and be readable when the config is read; held as a string."""

    text: str = "path of a readable file"

    def read(self, value: Any, key: str, base: Path | None) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key}: expected a string, got {value!r}")
        path = relative_to(value, base)
        if not path.is_file():
            shown = f"{value!r}" if str(path) == value else f"{value!r} ({path})"
            raise ConfigError(f"config key {key}: {shown} is not a readable file")
        return str(path)
