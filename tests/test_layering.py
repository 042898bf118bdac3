"""Storage owns the database and its failures; render is a leaf only the command line uses.

No module outside poller/storage/ imports or catches SQLAlchemy's exceptions: storage raises the
project's own (poller.errors.DatabaseFailure and its kinds). The daemon's and the history's
packages take at most an Engine or a URL from SQLAlchemy, for typing: their SQL is storage's.
Every storage function that code outside storage calls with an Engine translates its failures.

poller/render/ turns results into text (tables, CSV, JSON, summaries, the progress bar): only the
command line (poller/cli*.py) imports it. At run time render imports nothing but the data it
words (RENDER_LOADS: views, models, fields, errors, clock, the demo's events, the program's
name); the result classes it takes it names for annotations only (under TYPE_CHECKING), and
never from the modules that call it (the CLI) or run the poller (daemon, runtime).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy.exc

from poller import storage

PACKAGE = Path(__file__).resolve().parent.parent / "poller"
STORAGE = PACKAGE / "storage"
RENDER = PACKAGE / "render"
# The modules render may load when it runs (and what they load): data, not doers.
RENDER_LOADS = (
    "poller.render",
    "poller.views",
    "poller.models",
    "poller.fields",
    "poller.errors",
    "poller.clock",
    "poller.logs",  # PROGRAM, the command's name in a resume line
    "poller.redaction",  # loaded by poller.logs
    "poller.demo_events",
)
# What render never imports, not even for annotations: what calls it and what runs the poller.
RENDER_NEVER = ("poller.cli", "poller.__main__", "poller.daemon", "poller.runtime")
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


def _nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of `path`'s tree in `ast.walk` order, parsed once per content: each check
    below reads the whole package and only reads the trees (a file changed on disk is parsed
    again)."""
    stat = path.stat()
    return _walked(path, stat.st_mtime_ns, stat.st_size)


@cache
def _walked(path: Path, _mtime_ns: int, _size: int) -> tuple[ast.AST, ...]:
    return tuple(ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))))


@pytest.fixture(autouse=True, scope="module")
def _forget_the_trees() -> Iterator[None]:
    """Drop the parsed trees when this module is done: the package's ~140,000 nodes kept for the
    rest of the session would make every later full garbage collection walk them again."""
    yield
    _walked.cache_clear()


def _exception_imports(path: Path) -> list[str]:
    """Each import of sqlalchemy.exc in `path`, in any of its spellings, with its line."""
    found = []
    for node in _nodes(path):
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
    for node in _nodes(path):
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
    for node in _nodes(path):
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
        for node in _nodes(path):
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


# -- render ------------------------------------------------------------------------------------


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `module` is one of `prefixes` or inside one (poller.cli also covers poller.cli_types)."""
    return any(module == p or module.startswith((f"{p}.", f"{p}_")) for p in prefixes)


def _poller_imports(path: Path) -> list[tuple[int, str, bool]]:
    """Each poller module `path` imports: its line, its name, and whether only under TYPE_CHECKING."""
    typing_only = {
        id(node)
        for block in _nodes(path)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = []
    for node in _nodes(path):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names = [node.module]
            if node.module == "poller":  # `from poller import render`
                names = [f"poller.{a.name}" for a in node.names]
        else:
            continue
        found += [(node.lineno, n, id(node) in typing_only) for n in names if _within(n, ("poller",))]
    return found


def _imports_render(path: Path) -> list[str]:
    return [
        f"line {line}: {name}" for line, name, _ in _poller_imports(path) if _within(name, ("poller.render",))
    ]


def _render_overreach(path: Path) -> list[str]:
    """Imports of a render module beyond RENDER_LOADS at run time, or of RENDER_NEVER at all."""
    return [
        f"line {line}: {name}" + (" (for annotations)" if typing_only else "")
        for line, name, typing_only in _poller_imports(path)
        if _within(name, RENDER_NEVER) or not (typing_only or _within(name, RENDER_LOADS))
    ]


def test_only_the_command_line_imports_render() -> None:
    outside = sorted(
        p for p in PACKAGE.rglob("*.py") if RENDER not in p.parents and not p.name.startswith("cli")
    )
    assert _offenders(sorted(PACKAGE.glob("cli*.py")), _imports_render) != {}  # the CLI does
    assert _offenders(outside, _imports_render) == {}


def test_render_imports_only_the_data_it_words() -> None:
    assert _offenders(sorted(RENDER.rglob("*.py")), _render_overreach) == {}


def test_loading_every_render_module_loads_no_poll_cycle_storage_or_daemon() -> None:
    """What render pulls in through its imports' own imports, in an interpreter of its own."""
    names = sorted(f"poller.render.{p.stem}" for p in RENDER.glob("*.py") if p.stem != "__init__")
    assert len(names) > 5
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(n for n in sys.modules if n.startswith('poller.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert "poller.render.progress" in loaded
    assert [name for name in loaded if not _within(name, RENDER_LOADS)] == []


def test_the_render_checks_see_every_spelling(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nimport poller.render.report\nfrom poller import render, views\n"
        "from poller.poll.recent import StatusInfo\nif TYPE_CHECKING:\n    from poller.poll import outcomes\n"
        "    from poller.cli_types import Month\ndef f():\n    from poller.render.status import counted\n",
        encoding="utf-8",
    )
    assert [hit.split(": ")[1] for hit in _imports_render(module)] == [
        "poller.render.report",
        "poller.render",
        "poller.render.status",
    ]
    assert [hit.split(": ")[1] for hit in _render_overreach(module)] == [
        "poller.poll.recent",
        "poller.cli_types (for annotations)",
    ]
