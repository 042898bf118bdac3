"""The suite's tiers: which tests start real processes, which are slow, which need PostgreSQL.

`conftest.pytest_collection_modifyitems` calls `mark(items)` so the markers are given in one
place rather than by hand in every module:

- `postgres`: the PostgreSQL side of the `database_url`/`engine` parametrisation, tests that take
  a module's own PostgreSQL fixture, and the tests listed in `POSTGRES`;
- `process`: tests whose code (the test, a fixture it takes, or a helper of its module that either
  calls) starts a process: found by reading the module's syntax tree for `subprocess`, `Popen`
  or `sys.executable`;
- `slow`: the tests in `SLOW`, measured over ~3 s with `pytest --durations=60`.

The quick tier is `pytest -m "not slow and not process"`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

# Names that start a process wherever a function mentions them.
PROCESS_NAMES = frozenset({"subprocess", "Popen", "executable", "check_output"})

# Fixtures of single modules that hand out the scratch PostgreSQL database.
POSTGRES_FIXTURES = frozenset({"pg_engine", "pg_url", "needs_postgres"})

# "module" or "module::test" (parameters left off) for PostgreSQL tests no fixture reveals.
POSTGRES = frozenset(
    {
        "test_outage.py",
        "test_soak.py",
        "test_operations.py::test_a_postgresql_outage_loses_and_doubles_nothing",
        "test_views.py::test_the_views_agree_on_sqlite_and_postgresql_in_both_modes",
    }
)

# "module" or "module::test": tests that took over ~3 s on a 2-core machine.
SLOW: frozenset[str] = frozenset()


def _key(item: pytest.Item) -> tuple[str, str]:
    module = Path(str(item.fspath)).name
    name = getattr(item, "originalname", None) or item.name.split("[")[0]
    return module, f"{module}::{name}"


def _listed(item: pytest.Item, names: frozenset[str]) -> bool:
    module, test = _key(item)
    return module in names or test in names


@cache
def _spawning_functions(path: str) -> frozenset[str]:
    """The module-level functions of `path` that start a process, directly or through another
    function of the same module."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    functions = {
        node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    calls: dict[str, set[str]] = {}
    spawning: set[str] = set()
    for name, node in functions.items():
        used = set()
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                used.add(child.id)
            elif isinstance(child, ast.Attribute):
                used.add(child.attr)
        if used & PROCESS_NAMES:
            spawning.add(name)
        calls[name] = used & functions.keys()
    changed = True
    while changed:
        changed = False
        for name, used in calls.items():
            if name not in spawning and used & spawning:
                spawning.add(name)
                changed = True
    return frozenset(spawning)


def _starts_processes(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    if function is None:
        return False
    spawning = _spawning_functions(str(item.fspath))
    return function.__name__ in spawning or bool(spawning & set(getattr(item, "fixturenames", ())))


def _uses_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("database_url") == "postgresql":
        return True
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    return _listed(item, POSTGRES)


def mark(items: list[pytest.Item]) -> None:
    """Give each collected test the tier markers that fit it."""
    for item in items:
        if _uses_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if _starts_processes(item):
            item.add_marker(pytest.mark.process)
        if _listed(item, SLOW):
            item.add_marker(pytest.mark.slow)
