"""Test databases that wait for no disk flush, and a PostgreSQL database per pytest-xdist worker.

A poll commits a few times, and on a shared machine each SQLite commit waits ~10 ms for fsync
and each PostgreSQL commit for its WAL flush: that was most of the suite's time. No test pulls
the power, so durability is not what they check:

- tmp_path (where every SQLite test file lives) is put on the memory filesystem /dev/shm when
  there is one and no --basetemp was given (pytest's PYTEST_DEBUG_TEMPROOT);
- the scratch PostgreSQL database commits without waiting for the WAL flush
  (`ALTER DATABASE ... SET synchronous_commit = off`: every session gets it, the CLI's and a
  replica's subprocesses too);
- under pytest-xdist each worker takes a database of its own beside the scratch one
  (`<scratch>_gw0`, ...), created at its start and dropped at its end, so workers never empty or
  migrate each other's tables. The scratch URL's variable is pointed at it for the worker, so
  fixtures, helpers and subprocesses all follow.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from poller import storage

POSTGRES_ENV = "TIMEMAN_POLLER_TEST_POSTGRES_URL"
TEMPROOT_ENV = "PYTEST_DEBUG_TEMPROOT"
MEMORY_ROOT = Path("/dev/shm")


def use_memory_temp_root(config: pytest.Config) -> None:
    """Put tmp_path on /dev/shm unless --basetemp or PYTEST_DEBUG_TEMPROOT says otherwise."""
    if config.option.basetemp or os.environ.get(TEMPROOT_ENV):
        return
    if MEMORY_ROOT.is_dir() and os.access(MEMORY_ROOT, os.W_OK | os.X_OK):
        os.environ[TEMPROOT_ENV] = str(MEMORY_ROOT)


def worker_url(url: str, worker: str) -> str:
    """The URL of `worker`'s own database on the scratch database's server."""
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


def _admin(url: str) -> Engine:
    return storage.make_engine(url).execution_options(isolation_level="AUTOCOMMIT")


def _quoted(url: str) -> str:
    return '"' + str(make_url(url).database).replace('"', '""') + '"'


def prepare_postgres(worker: str | None) -> None:
    """Give this process its database (a worker's own, or the scratch one) without synchronous
    commits; nothing to do without the scratch URL."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return
    target = worker_url(url, worker) if worker else url
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            if worker:
                connection.execute(text(f"DROP DATABASE IF EXISTS {_quoted(target)} WITH (FORCE)"))
                connection.execute(text(f"CREATE DATABASE {_quoted(target)}"))
            connection.execute(text(f"ALTER DATABASE {_quoted(target)} SET synchronous_commit = off"))
    finally:
        admin.dispose()
    os.environ[POSTGRES_ENV] = target


def drop_worker_postgres(scratch_url: str | None, worker: str | None) -> None:
    """Drop the worker's database at its end (the scratch one is the caller's to drop)."""
    if not (scratch_url and worker):
        return
    admin = _admin(scratch_url)
    try:
        with admin.connect() as connection:
            target = worker_url(scratch_url, worker)
            connection.execute(text(f"DROP DATABASE IF EXISTS {_quoted(target)} WITH (FORCE)"))
    finally:
        admin.dispose()
