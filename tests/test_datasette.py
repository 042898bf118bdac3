"""Datasette's canned queries (deploy/datasette/metadata.yml) on a seeded SQLite database.

Datasette's own test client runs each query with its parameters against the month of
tests/worktime_seed.py and gets the rows worked out here; every query reads only tables and
views the migrations create; the token table and arbitrary SQL stay closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from datasette.app import Datasette
from datasette.utils import derive_named_parameters
from helpers import seeded_copy
from sql_relations import relations, schema_relations
from worktime_seed import MONTH, seed_worktime

from poller import storage

METADATA = Path(__file__).resolve().parent.parent / "deploy" / "datasette" / "metadata.yml"
DATABASE = "timeman"  # the key in the metadata; Datasette names a database after its file's stem
ANNA, BORIS, CARL = "Anna Petrova", "Boris Ivanov", "Carl Smith"
NOON, TEN = "2026-11-30 06:00:00.000000", "2026-10-01 00:00:00.000000"
NO_SHOWS_OF_ANNA = [  # the workdays of November she neither worked nor was absent (the 4th a holiday)
    ("acme", 1, f"2026-11-{day:02d}", None, None, None, None, 1)
    for day in (5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 23, 24, 25, 26, 27, 30)
]

# Each canned query: the parameters given (the others left empty) and the rows it answers.
EXPECTED: dict[str, tuple[dict[str, str], list[tuple[Any, ...]]]] = {
    "working_now": ({}, [
        ("acme", 3, CARL, "Support", "OPENED", NOON, "2026-11-30 07:00:00.000000"),
    ]),
    "pending_approvals": ({"portal": "acme"}, [
        ("acme", 3, CARL, "Support", "2026-11-02", "CLOSED", 8.0, 0, "polls"),
    ]),
    "month_totals": ({"month": MONTH, "department": "support"}, [
        # days worked, hours worked and on breaks, days estimated
        ("acme", 2, BORIS, "Support", 3, 17.5, 0.5, 0),
        ("acme", 3, CARL, "Support", 1, 8.0, 1.0, 0),
    ]),
    "hours_per_day": ({"month": MONTH, "user_id": "1"}, [
        ("acme", 1, ANNA, "Sales", "2026-11-02", 8.33, 0.5, 1, 0),
        ("acme", 1, ANNA, "Sales", "2026-11-03", 7.5, 0.5, 1, 0),
    ]),
    "hours_per_department_week": ({"month": MONTH}, [
        ("acme", "Sales", "2026-11-02", 15.8),
        ("acme", "Support", "2026-11-02", 25.5),  # Saturday the 7th in the week of Monday the 2nd
    ]),
    "late_early_no_show": ({"month": MONTH, "user_id": "1"}, [
        ("acme", 1, "2026-11-02", "09:40:00", "18:30:00", 40, None, 0),
        ("acme", 1, "2026-11-03", "09:00:00", "17:00:00", None, 60, 0),
        *NO_SHOWS_OF_ANNA,
    ]),
    "attendance_month": ({"month": MONTH}, [
        # workdays, absent, late, early, short, no-shows, overtime hours, hours on days off, unclosed
        ("acme", 1, 20, 0, 1, 1, 1, 18, 0.33, 0.0, 0),
        ("acme", 2, 20, 0, 0, 0, 0, 19, 2.5, 7.0, 0),
        ("acme", 3, 19, 1, 0, 0, 0, 18, 0.0, 0.0, 0),
    ]),
    "overtime_per_department": ({"month": MONTH}, [
        ("acme", "Support", 1, 2.5, 7.0),
        ("acme", "Sales", 1, 0.33, 0.0),
    ]),
    "corrections": ({"month": MONTH}, [
        ("acme", 1, ANNA, "2026-11-03", "workday", "worked_seconds", "25200", "27000",
         "2026-11-05 08:00:00.000000", 0),
    ]),
    "norms_on_day": ({"day": "2026-09-15"}, [  # before the first read: the first version stands
        ("acme", user, "09:00:00", "18:00:00", 8.0, 15, 1, TEN, None) for user in (1, 2, 3)
    ]),
    "absences": ({"month": MONTH, "portal": "acme"}, [
        ("acme", 3, "2026-11-03", "Vacation", 1, TEN, None),
    ]),
}  # fmt: skip


def canned_queries() -> dict[str, dict[str, Any]]:
    queries: dict[str, dict[str, Any]] = yaml.safe_load(METADATA.read_text())["databases"][DATABASE][
        "queries"
    ]
    return queries


@pytest.fixture(scope="module")
def seeded(head_sqlite_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file named as the metadata expects, holding the seeded month."""
    return seeded_copy(
        head_sqlite_file, tmp_path_factory.mktemp("datasette") / f"{DATABASE}.sqlite3", seed_worktime
    )


def get_all(database: Path, paths: list[str]) -> list[tuple[int, Any]]:
    """(status, JSON body) of each path, asked of a Datasette over `database` with the metadata."""

    async def ask() -> list[tuple[int, Any]]:
        datasette = Datasette([str(database)], metadata=yaml.safe_load(METADATA.read_text()))
        await datasette.invoke_startup()
        answers = []
        for path in paths:
            response = await datasette.client.get(path)
            is_json = response.headers.get("content-type", "").startswith("application/json")
            answers.append((response.status_code, response.json() if is_json else None))
        return answers

    return asyncio.run(ask())


def query_path(name: str, params: Mapping[str, str]) -> str:
    return f"/{DATABASE}/{name}.json?" + urlencode({"_shape": "array", **params})


def test_every_canned_query_has_a_title_a_description_and_declares_its_parameters() -> None:
    queries = canned_queries()
    assert len(queries) >= 8
    for name, query in queries.items():
        assert query["title"] and query["description"], name
        used = asyncio.run(derive_named_parameters(None, query["sql"]))
        assert sorted(set(used)) == sorted(query["params"]), name
        assert set(query["params"]) <= {"month", "day", "portal", "user_id", "department"}, name


def test_every_canned_query_reads_only_tables_and_views_the_migrations_create(head_sqlite_file: Path) -> None:
    engine = storage.make_engine(f"sqlite:///{head_sqlite_file}")
    try:
        known = schema_relations(engine)
    finally:
        engine.dispose()
    assert {"attendance", "daily_worktime", "latest_status", "workday_revisions"} <= known
    read = {name: relations(query["sql"]) for name, query in canned_queries().items()}
    assert all(read.values()), read
    unknown = {name: names - known for name, names in read.items() if names - known}
    assert not unknown, f"canned queries reading what no migration creates: {unknown}"


def test_each_canned_query_answers_the_seeded_month_through_datasette(seeded: Path) -> None:
    assert set(EXPECTED) == set(canned_queries()), "every canned query needs its expected rows here"
    names = list(EXPECTED)
    answers = get_all(seeded, [query_path(name, EXPECTED[name][0]) for name in names])
    for name, (status, body) in zip(names, answers, strict=True):
        assert status == 200, (name, body)
        assert [tuple(row.values()) for row in body] == EXPECTED[name][1], name


def test_an_unknown_portal_or_user_leaves_every_filtered_query_empty(seeded: Path) -> None:
    filtered = {
        name: {"month": MONTH, "day": "2026-11-15", "portal": "nobody", "user_id": "99"}
        for name, query in canned_queries().items()
        if {"portal", "user_id"} & set(query["params"])
    }
    assert len(filtered) == len(canned_queries())
    answers = get_all(seeded, [query_path(name, params) for name, params in filtered.items()])
    assert [body for _, body in answers] == [[]] * len(filtered)


def test_the_token_table_and_arbitrary_sql_are_closed(seeded: Path) -> None:
    answers = get_all(
        seeded,
        [
            f"/{DATABASE}/oauth_tokens.json",
            f"/{DATABASE}.json?" + urlencode({"sql": "SELECT * FROM oauth_tokens"}),
            f"/{DATABASE}/workdays.json?_shape=array",
        ],
    )
    assert [status for status, _ in answers] == [403, 403, 200]
    assert len(answers[2][1]) == 6
