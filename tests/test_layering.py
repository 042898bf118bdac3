"""Storage owns the database and its failures.

No module outside poller/storage/ imports or catches SQLAlchemy's exceptions: storage raises the
project's own (poller.errors.DatabaseFailure and its kinds). The daemon's and the history's
packages take at most an Engine or a URL from SQLAlchemy, for typing: their SQL is storage's.
Every storage function that code outside storage calls with an Engine translates its failures.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from pathlib import Path

import sqlalchemy.exc

from poller import storage

PACKAGE = Path(__file__).resolve().parent.parent / "poller"
STORAGE = PACKAGE / "storage"
# What poller/daemon and poller/history may take from SQLAlchemy: types to annotate with.
TYPING_ONLY = {"Engine", "URL"}
# SQLAlchemy's exception names (those that are no builtin's name too).
EXCEPTION_NAMES = frozenset(
    name
    for name, value in vars(sqlalchemy.exc).items()
    if isinstance(value, type) and issubclass(value, BaseException) and not hasattr(builtins, name)
)
# Storage functions that take an Engine but run no statement of their own.
NO_STATEMENT = {"make_engine", "shorten_lock_waits", "describe_database", "check_sqlite_directory"}
# Those called only inside maintenance.open_database or .database_errors, which translate the block.
IN_A_TRANSLATED_BLOCK = {"database_errors", "open_database", "consistent", "get_revisions"}


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _exception_imports(path: Path) -> list[str]:
    """Each import of sqlalchemy.exc in `path`, in any of its spellings, with its line."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("sqlalchemy.exc")]
            found += [f"line {node.lineno}: import {name}" for name in names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("sqlalchemy.exc"):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            elif node.module == "sqlalchemy" and any(a.name == "exc" for a in node.names):
                found.append(f"line {node.lineno}: from sqlalchemy import exc")
    return found


def _sqlalchemy_catches(path: Path) -> list[str]:
    """Each `except` (or isinstance/suppress argument is not looked at) naming a SQLAlchemy error."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            for part in ast.walk(node.type):
                name = (
                    part.id
                    if isinstance(part, ast.Name)
                    else part.attr
                    if isinstance(part, ast.Attribute)
                    else None
                )
                if name in EXCEPTION_NAMES:
                    found.append(f"line {node.lineno}: except {name}")
    return found


def _sqlalchemy_imports(path: Path) -> list[str]:
    """Each name `path` imports from SQLAlchemy beyond TYPING_ONLY, with its line."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("sqlalchemy")
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [f"line {node.lineno}: {a.name}" for a in node.names if a.name not in TYPING_ONLY]
    return found


def _outside_storage() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if STORAGE not in p.parents)


def _offenders(paths: list[Path], check: object) -> dict[str, list[str]]:
    assert len(paths) > 5  # the walk found the package, not an empty directory
    return {str(p.relative_to(PACKAGE.parent)): hits for p in paths if (hits := check(p))}  # type: ignore[operator]


def test_no_module_outside_storage_imports_sqlalchemy_exceptions() -> None:
    assert len(_outside_storage()) > 20
    assert _offenders(_outside_storage(), _exception_imports) == {}


def test_no_module_outside_storage_catches_sqlalchemy_exceptions() -> None:
    assert _offenders(_outside_storage(), _sqlalchemy_catches) == {}


def test_the_daemon_and_the_history_take_only_types_from_sqlalchemy() -> None:
    paths = sorted([*(PACKAGE / "daemon").rglob("*.py"), *(PACKAGE / "history").rglob("*.py")])
    assert _offenders(paths, _sqlalchemy_imports) == {}


def test_the_checks_see_every_spelling(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import sqlalchemy.exc\nfrom sqlalchemy.exc import SQLAlchemyError\n"
        "from sqlalchemy import exc, text, Engine\ndef f():\n    from sqlalchemy.exc import ArgumentError\n"
        "try:\n    pass\nexcept (exc.OperationalError, ValueError):\n    pass\n"
        "except DBAPIError:\n    pass\nexcept TimeoutError:\n    pass\n",
        encoding="utf-8",
    )
    assert len(_exception_imports(module)) == 4
    assert [hit.split(": ")[1] for hit in _sqlalchemy_catches(module)] == [
        "except OperationalError",
        "except DBAPIError",
    ]
    assert [hit.split(": ")[1] for hit in _sqlalchemy_imports(module)] == [
        "import sqlalchemy.exc",
        "SQLAlchemyError",
        "exc",
        "text",
        "ArgumentError",
    ]


def _storage_calls_from_outside() -> dict[str, object]:
    """Every storage function code outside storage names: `storage.f`, `maintenance.f`, or
    `from poller.storage.m import f`."""
    modules = {"storage": storage}
    found: dict[str, object] = {}
    for path in _outside_storage():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("poller.storage"):
                for alias in node.names:
                    parent = importlib.import_module(node.module or "")
                    value = getattr(parent, alias.name, None) or importlib.import_module(
                        f"{node.module}.{alias.name}"
                    )
                    if inspect.ismodule(value):
                        modules[alias.asname or alias.name] = value
                    else:
                        found[f"{node.module}.{alias.name}"] = value
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                module = modules.get(node.value.id)
                if module is not None and hasattr(module, node.attr):
                    found[f"{module.__name__}.{node.attr}"] = getattr(module, node.attr)
    return found


def _takes_an_engine(function: object) -> bool:
    if not inspect.isfunction(function):
        return False
    return any("Engine" in str(p.annotation) for p in inspect.signature(function).parameters.values())


def test_every_storage_function_called_with_an_engine_from_outside_translates_its_failures() -> None:
    called = _storage_calls_from_outside()
    with_engine = {name for name, function in called.items() if _takes_an_engine(function)}
    assert "poller.storage.save_portal_cycle" in with_engine  # the walk found the calls
    untranslated = sorted(
        name
        for name in with_engine
        if not getattr(called[name], "database_call", False)
        and name.rsplit(".", 1)[1] not in NO_STATEMENT | IN_A_TRANSLATED_BLOCK
    )
    assert untranslated == []
