"""The tables and views a SQL query reads, and those a migrated database has: for the tests that
hold the dashboard's panels and Datasette's canned queries to the schema the migrations create."""

from __future__ import annotations

import re

from sqlalchemy import Engine, inspect

_STRING = re.compile(r"'(?:[^']|'')*'")
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')
_COMMENT = re.compile(r"--[^\n]*")
_NAMED = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)(\s*\()?", re.IGNORECASE)
_CTE = re.compile(r"(?:\bWITH(?:\s+RECURSIVE)?|,)\s*([A-Za-z_]\w*)\s+AS\s*\(", re.IGNORECASE)


def relations(sql: str) -> set[str]:
    """Names after FROM and JOIN, less the query's own CTEs and table-valued functions.

    A quoted identifier becomes one word (`"days from records"`: days_from_records), so a
    column alias never reads as a FROM and `FROM "workdays"` still names its table.
    """
    plain = _COMMENT.sub(" ", _STRING.sub("''", sql))
    plain = _QUOTED.sub(lambda quoted: re.sub(r"\W", "_", quoted.group(1)) or "_", plain)
    own = {name.lower() for name in _CTE.findall(plain)}
    return {
        match.group(1).lower()
        for match in _NAMED.finditer(plain)
        if not match.group(2) and match.group(1).lower() not in own
    }


def schema_relations(engine: Engine) -> set[str]:
    """The tables and views of the database's default schema."""
    found = inspect(engine)
    return set(found.get_table_names()) | set(found.get_view_names())
