"""Alembic environment: the models' metadata, and a connection handed in when there is one."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from poller.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("TIMEMAN_POLLER_DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database URL: run `timeman-poller db upgrade`, or set TIMEMAN_POLLER_DATABASE_URL"
        )
    return url


if context.is_offline_mode():
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        engine = create_engine(_database_url())
        with engine.begin() as new_connection:
            _run(new_connection)
        engine.dispose()
