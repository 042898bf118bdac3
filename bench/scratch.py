"""Scratch databases for the benches: made by the bench, dropped by the bench, nothing else touched.

A bench writes to a temporary SQLite file, or to a PostgreSQL database it creates from a
server URL (`--postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres`) and drops at
the end, even on an error, Ctrl-C or SIGTERM. The server URL's own database is only connected
to: a URL whose database holds tables is refused with one line before anything runs, so a
bench pointed at a real database by mistake changes nothing. No environment variable is read
as a target.
"""

from __future__ import annotations

import argparse
import inspect
import secrets
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

PREFIX = "timeman_bench_"


class ScratchError(Exception):
    """A bench cannot get a scratch database; shown as one line, exit code 2."""


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench's argument parser: its docstring's first line as the description, the rest as is."""
    return argparse.ArgumentParser(
        description=(doc or "").partition("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_server_argument(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """Add --postgres-server: where the bench creates (and drops) its own database."""
    parser.add_argument(
        "--postgres-server",
        metavar="URL",
        required=required,
        help="PostgreSQL server to create a scratch database on, given as the URL of a database "
        "without tables to connect to (e.g. postgresql+psycopg://postgres@127.0.0.1/postgres); "
        f"the bench creates {PREFIX}<random> there and drops it at the end",
    )


def shown(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def first_line(error: BaseException) -> str:
    """The driver's own message of a database error, first line only."""
    message = str(getattr(error, "orig", None) or error)
    return next((line.strip() for line in message.splitlines() if line.strip()), type(error).__name__)


def tables_in(url: str) -> list[str]:
    """The tables of the database at `url`, read without changing it (an absent SQLite file has none)."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).is_file():
            return []
        try:
            with closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as connection:
                names = connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
                ).fetchall()
        except sqlite3.Error as exc:
            raise ScratchError(f"cannot read {shown(parsed)}: {exc}") from None
        return [str(name) for (name,) in names]
    engine = create_engine(parsed, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE c.relkind IN ('r', 'p', 'f', 'm')"
                    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                    " AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1"
                )
            ).all()
    except SQLAlchemyError as exc:
        raise ScratchError(f"cannot connect to {shown(parsed)}: {first_line(exc)}") from None
    finally:
        engine.dispose()
    return [str(name) for (name,) in rows]


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """A bench's arguments, its --postgres-server checked (check_server) before any work."""
    args = parser.parse_args(argv)
    if getattr(args, "postgres_server", None):
        check_server(args.postgres_server)
    return args


def check_server(url: str) -> None:
    """Refuse a server URL whose database holds tables, or that is not PostgreSQL.

    Called before a bench does any work, so a refusal leaves everything as it was.
    """
    tables = tables_in(url)
    if tables:
        listed = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
        raise ScratchError(
            f"refusing {shown(url)}: its database holds tables ({listed}); give the URL of a database "
            "without tables on the server (e.g. .../postgres): the bench creates and drops its own"
        )
    if _parse(url).get_backend_name() != "postgresql":
        raise ScratchError(
            f"--postgres-server {shown(url)}: not a PostgreSQL URL (SQLite runs always use a temporary file)"
        )


@contextmanager
def scratch_database(server_url: str | None, label: str = "bench") -> Iterator[str]:
    """Yield the URL of a new, empty database, removed on the way out.

    None: a SQLite file in a temporary directory. A PostgreSQL server URL: CREATE DATABASE
    timeman_bench_<random> there, and DROP it WITH (FORCE) at the end, ending the bench's
    leftover connections (PostgreSQL 13+).
    """
    if server_url is None:
        with tempfile.TemporaryDirectory(prefix=PREFIX) as directory:
            yield f"sqlite:///{Path(directory) / f'{label}.sqlite3'}"
        return
    check_server(server_url)
    server = _parse(server_url)
    name = f"{PREFIX}{label}_{secrets.token_hex(4)}"
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        raise ScratchError(f"cannot create database {name} on {shown(server)}: {first_line(exc)}") from None
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except SQLAlchemyError as exc:
            print(
                f"bench: could not drop the scratch database {name} on {shown(server)}: {first_line(exc)}; "
                f'drop it by hand: DROP DATABASE "{name}"',
                file=sys.stderr,
            )
        admin.dispose()


def servers(server_url: str | None) -> list[tuple[str, str | None]]:
    """The databases a two-backend bench runs on: SQLite always, PostgreSQL when a server is given."""
    return [("sqlite", None)] + ([("postgresql", server_url)] if server_url else [])


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a bench's main: a ScratchError is one line and exit 2; SIGTERM and Ctrl-C clean up first.

    SIGTERM is turned into SystemExit so that the `finally` blocks that drop scratch databases
    and stop child processes run, as they do for Ctrl-C.
    """
    prog = Path(inspect.getfile(main)).name

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        main(argv)
    except ScratchError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(0)


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise ScratchError(
            "--postgres-server: not a database URL (e.g. postgresql+psycopg://HOST/postgres)"
        ) from None
