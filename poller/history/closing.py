"""`close` and `verify`: freeze a portal's month with a SHA-256 digest, and check it since.

A close stores the digest of the month's canonical rendering (poller.history.canonical), the lines
themselves (closed_rows: what verify compares, row by row) and the workdays as they stood
(closed_workdays: `report timesheet --as-closed`). The digest printed can be kept outside the
database; `verify --digest` checks the stored close against it. What `close` and `verify` print
is poller.render.closing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from poller.config import Config
from poller.errors import ConfigError
from poller.history import canonical
from poller.storage import closes, maintenance
from poller.storage.closes import MonthClose


def close_month(
    config: Config,
    month: date,
    *,
    portals: Sequence[str] = (),
    force: bool = False,
    now: datetime | None = None,
) -> list[MonthClose]:
    """Close a month (--month YYYY-MM): freeze its timesheet and print the SHA-256 of its rows.

    Per portal (every portal with rows in the month unless --portal is given): the digest
    covers the month's workdays, workday records, their revisions and the snapshots polled so
    far, rendered canonically; keep it outside the database, `verify --digest` checks it.
    A month is closed once: closing it again is refused unless --force, which adds a new close
    and keeps the earlier one (verify and --as-closed then use the newest). Corrections that
    arrive after a close are kept and flagged "after close". --format json prints the closes.
    """
    now = now or datetime.now(UTC)
    first = month.replace(day=1)
    if first > now.date():
        raise ConfigError(f"--month {first:%Y-%m} has not begun yet: nothing to close")
    with maintenance.open_database(config.database_url) as engine, closes.consistent(engine) as connection:
        names = list(dict.fromkeys(portals)) or closes.month_portals(connection, first)
        if not names:
            raise ConfigError(
                f"--month {first:%Y-%m}: no portal has rows in it; give --portal to close an empty month"
            )
        return [
            closes.save_close(
                connection, name, first, now, closes.month_lines(connection, name, first, now), again=force
            )
            for name in names
        ]


# -- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A row that differs from the close: "altered" (with its columns), "deleted" or "added"."""

    table: str
    key: dict[str, str]
    change: str
    columns: tuple[tuple[str, str, str], ...] = ()  # name, at the close, now
    fields: dict[str, str] | None = None  # the whole row (added: now; deleted: at the close)


@dataclass(frozen=True)
class Verified:
    """One portal's month against its newest close."""

    close: MonthClose
    digest_now: str
    differences: tuple[Difference, ...]
    copy_intact: bool  # the close's stored lines still give its digest
    given_matches: bool | None  # --digest: whether the close's digest is the one given

    @property
    def ok(self) -> bool:
        return (
            self.digest_now == self.close.digest
            and self.copy_intact
            and not self.differences
            and self.given_matches is not False
        )


def verify_month(
    config: Config, month: date, *, portals: Sequence[str] = (), digest: str | None = None
) -> list[Verified]:
    """Verify a closed month (--month YYYY-MM): recompute its digest and list every difference.

    Compares the month's rows now with the rows its newest close stored, per portal (every
    portal that closed the month unless --portal is given): a later correction, a row
    deleted or altered by hand, a row added. --digest HEX checks the close against a digest
    kept outside the database (one portal). Exit code 0 when nothing differs, 1 otherwise.
    """
    first = month.replace(day=1)
    with maintenance.open_database(config.database_url) as engine, closes.consistent(engine) as connection:
        names = list(dict.fromkeys(portals)) or closes.closed_portals(connection, first)
        if not names:
            raise ConfigError(f"--month {first:%Y-%m} is not closed on any portal: run `close` first")
        if digest is not None and len(names) > 1:
            raise ConfigError("--digest checks one portal's close: give --portal too")
        found = []
        for name in names:
            made = closes.get_closes(connection, name, first)
            if not made:
                raise ConfigError(f"--month {first:%Y-%m} is not closed on portal {name}: run `close` first")
            close = made[-1]
            stored = closes.get_closed_lines(connection, close.id)
            now = closes.month_lines(connection, name, first, close.closed_at)
            found.append(_compare(close, stored, now, digest))
    return found


def _compare(close: MonthClose, stored: dict[str, str], now: list[str], given: str | None) -> Verified:
    current = {canonical.row_key(text): text for text in now}
    differences = []
    for key in sorted(set(stored) | set(current)):
        was, is_now = stored.get(key), current.get(key)
        if was == is_now:
            continue
        table = key.partition("\t")[0]
        shown = canonical.fields_of(is_now if is_now is not None else was)  # type: ignore[arg-type]
        key_fields = dict(list(shown.items())[: canonical.KEY_WIDTH[table]])
        if was is None:
            differences.append(Difference(table, key_fields, "added", fields=shown))
        elif is_now is None:
            differences.append(Difference(table, key_fields, "deleted", fields=shown))
        else:
            old = canonical.fields_of(was)
            columns = tuple((n, old[n], shown[n]) for n in shown if old[n] != shown[n])
            differences.append(Difference(table, key_fields, "altered", columns))
    intact = len(stored) == close.row_count and (
        canonical.digest(close.portal, close.month, stored.values()) == close.digest
    )
    matches = None if given is None else given.strip().lower() == close.digest
    return Verified(
        close, canonical.digest(close.portal, close.month, now), tuple(differences), intact, matches
    )


# -- the timesheet as closed -------------------------------------------------------------------


def closed_workdays(
    engine: Engine, first: date, portals: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], str]:
    """The workdays each portal's newest close of `first`'s month froze (every portal that closed
    it unless `portals` names some), and a note naming those closes (when, digest) for
    `report timesheet --as-closed`: the rows as payroll saw them then, unfiltered, so the plain
    and the closed timesheet keep their people by one rule (poller.history.reports)."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with engine.connect() as connection:
        names = list(dict.fromkeys(portals)) or closes.closed_portals(connection, first)
        if not names:
            raise ConfigError(f"--as-closed: {first:%Y-%m} is not closed on any portal")
        for name in names:
            made = closes.get_closes(connection, name, first)
            if not made:
                raise ConfigError(f"--as-closed: {first:%Y-%m} is not closed on portal {name}")
            rows += closes.get_closed_workdays(connection, made[-1])
            notes.append(f"{name} at {made[-1].closed_at:%Y-%m-%d %H:%M} UTC, sha256 {made[-1].digest[:16]}")
    return rows, "as closed: " + "; ".join(notes)
