"""Storage owns the database's failures: no module outside poller/storage/ imports SQLAlchemy's exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from poller import storage

PACKAGE = Path(__file__).resolve().parent.parent / "poller"
STORAGE = PACKAGE / "storage"


def _exception_imports(path: Path) -> list[str]:
    """Each import of sqlalchemy.exc in `path`, in any of its spellings, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("sqlalchemy.exc")]
            found += [f"line {node.lineno}: import {name}" for name in names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("sqlalchemy.exc"):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            elif node.module == "sqlalchemy" and any(a.name == "exc" for a in node.names):
                found.append(f"line {node.lineno}: from sqlalchemy import exc")
    return found


def _outside_storage() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if STORAGE not in p.parents)


def test_no_module_outside_storage_imports_sqlalchemy_exceptions() -> None:
    modules = _outside_storage()
    assert len(modules) > 20  # the walk found the package, not an empty directory
    offenders = {
        str(path.relative_to(PACKAGE.parent)): hits for path in modules if (hits := _exception_imports(path))
    }
    assert offenders == {}


def test_the_check_sees_every_spelling_of_the_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import sqlalchemy.exc\nfrom sqlalchemy.exc import SQLAlchemyError\n"
        "from sqlalchemy import exc, text\ndef f():\n    from sqlalchemy.exc import ArgumentError\n",
        encoding="utf-8",
    )
    assert len(_exception_imports(module)) == 4


def test_an_outage_and_a_refusal_are_told_apart_in_storage(engine: Engine) -> None:
    """A missing table is an outage (the entry waits); a duplicate key is the rows' own fault."""
    with pytest.raises(storage.DatabaseFailure) as missing, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table_here"))
    assert isinstance(storage.classify(missing.value), storage.DatabaseUnavailable)
    with pytest.raises(storage.DatabaseFailure) as duplicate, engine.begin() as connection:
        connection.execute(text("CREATE TEMPORARY TABLE t_layering (k INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t_layering VALUES (1), (1)"))
    refused = storage.classify(duplicate.value)
    assert isinstance(refused, storage.RowsRefused)
    assert refused.reason and "INSERT" not in refused.reason
    assert storage.classify(RuntimeError("a bug")) is None


def test_a_database_url_is_checked_by_storage() -> None:
    assert storage.is_database_url("sqlite:///x.db")
    assert storage.is_database_url("postgresql+psycopg://u@h/db")
    assert not storage.is_database_url("not a url")
