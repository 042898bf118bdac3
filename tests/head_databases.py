"""A PostgreSQL database at the migrations' head, built once per session and copied per test.

Beside the scratch database `X` (TIMEMAN_POLLER_TEST_POSTGRES_URL) on the same server: `X_head`
is upgraded once; each test that takes `engine` gets `X_copy`, made again from it with
`CREATE DATABASE ... TEMPLATE`, which is faster than running every migration. Both are dropped
when the session ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from poller import storage


@dataclass(frozen=True)
class HeadPostgres:
    scratch_url: str
    head: str
    copy_name: str
    copy_url: str

    @classmethod
    def create(cls, scratch_url: str) -> HeadPostgres | None:
        """Build `X_head` at head; None when the server does not let us create databases."""
        url = make_url(scratch_url)
        head, copy_name = f"{url.database}_head", f"{url.database}_copy"
        made = cls(
            scratch_url,
            head,
            copy_name,
            url.set(database=copy_name).render_as_string(hide_password=False),
        )
        try:
            made._run(
                f'DROP DATABASE IF EXISTS "{copy_name}" WITH (FORCE)',
                f'DROP DATABASE IF EXISTS "{head}" WITH (FORCE)',
                f'CREATE DATABASE "{head}"',
            )
        except SQLAlchemyError:
            return None
        built = storage.make_engine(url.set(database=head).render_as_string(hide_password=False))
        try:
            storage.upgrade_database(built)
        finally:
            built.dispose()
        return made

    def copy(self) -> str:
        """A fresh copy of the head database (any earlier copy is dropped); its URL."""
        self._run(
            f'DROP DATABASE IF EXISTS "{self.copy_name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.copy_name}" TEMPLATE "{self.head}"',
        )
        return self.copy_url

    def drop(self) -> None:
        self._run(
            f'DROP DATABASE IF EXISTS "{self.copy_name}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.head}" WITH (FORCE)',
        )

    def _run(self, *statements: str) -> None:
        admin = create_engine(self.scratch_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            admin.dispose()
