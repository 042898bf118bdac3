"""The docs against the code: the command reference is the parser's, every config key is
documented, and every SQL example in docs/ runs on a migrated database."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, text

from poller import storage
from poller.config import sections

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "config.example.toml"


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_reference_is_the_parsers_own() -> None:
    reference = _reference()
    assert reference.PAGE.read_text() == reference.render(), "run: python docs/reference.py"


def test_the_command_reference_names_every_command_and_option() -> None:
    page = (DOCS / "cli-reference.md").read_text()
    for command in ("poll", "run", "report", "status", "prune", "check", "backfill", "db upgrade", "demo"):
        assert f"## {command}\n" in page
    for option in ("--migrate", "--older-than", "--dry-run", "--since", "--strict", "--fault-hang"):
        assert f"`{option}`" in page


def _undocumented(page: str) -> list[str]:
    """Each command, option and global option of the declarations without a meaning in `page`."""
    from poller.cli_commands import COMMANDS
    from poller.cli_options import GLOBAL_OPTIONS
    from poller.cli_parser import arguments

    chapters = dict(re.findall(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    intro = page.split("\n## ", 1)[0]
    missing = [
        f"{flag}: no help" for option in GLOBAL_OPTIONS.values() for flag in option.flags if not option.help
    ]
    missing += [
        flag for option in GLOBAL_OPTIONS.values() for flag in option.flags if f"`{flag}`" not in intro
    ]
    for command in COMMANDS:
        chapter = chapters.get(command.name)
        if chapter is None or not command.help:
            missing.append(f"## {command.name}")
            continue
        for argument in arguments(command):
            for flag in argument.flags:
                meaning = re.findall(rf"^\| `{re.escape(flag)}`(?:\\\||[^|])* \| (.+) \|$", chapter, re.M)
                if not argument.option.help or not meaning:
                    missing.append(f"{command.name} {flag}")
    return missing


def test_every_command_and_option_has_a_meaning_in_the_reference() -> None:
    assert _undocumented((DOCS / "cli-reference.md").read_text()) == []


def test_an_option_without_help_or_a_row_counts_as_undocumented(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from poller import cli_options

    page = (DOCS / "cli-reference.md").read_text()
    assert _undocumented(page.replace("| `--dry-run` |", "| `--dry-rum` |")) == ["prune --dry-run"]
    monkeypatch.setitem(cli_options.OPTIONS, "strict", replace(cli_options.OPTIONS["strict"], help=""))
    assert _undocumented(page) == ["check --strict"]


def _declared_keys() -> set[str]:
    """Every section and every key the config accepts, as `section.key`, from their declarations."""
    keys = {part.name for part in sections()}
    keys |= {f"{part.name}.{key.name}" for part in sections() for key in part.keys}
    return keys


def _documented(key: str, example: str) -> bool:
    """A section as its `[header]`, a key as a `key =` line (commented out or not)."""
    if "." not in key:
        return re.search(rf"^\[\[?{re.escape(key)}\]\]?$", example, re.M) is not None
    return re.search(rf"^#? ?{re.escape(key.split('.')[-1])} =", example, re.M) is not None


def test_every_config_key_is_documented_in_the_example() -> None:
    keys = _declared_keys()
    assert "schedule.interval_seconds" in keys and "portals.webhook_url" in keys
    example = EXAMPLE.read_text()
    undocumented = sorted(key for key in keys if not _documented(key, example))
    assert undocumented == [], "config keys without an entry in config.example.toml"
    assert '--8<-- "config.example.toml"' in (DOCS / "configuration.md").read_text()


def test_the_config_reference_is_the_declarations_own() -> None:
    reference = _reference()
    assert reference.CONFIG_PAGE.read_text() == reference.render_config(), "run: python docs/reference.py"


def test_the_config_reference_gives_every_key_its_type_default_and_meaning() -> None:
    page = (DOCS / "config-reference.md").read_text()
    chapters = dict(re.findall(r"^## \[\[?(\w+)\]\]?\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    assert list(chapters) == [part.name for part in sections()]
    for part in sections():
        for key in part.keys:
            (row,) = re.findall(rf"^\| `{key.name}` \|(.*)\|$", chapters[part.name], re.M)
            kind, default, meaning = (cell.strip() for cell in row.split(" | "))
            assert kind and default and meaning, f"{part.name}.{key.name}"
    assert "| `spool_max_rows` | integer >= 1 | `200000` |" in chapters["storage"]
    assert '| `at` | time of day, HH:MM | `"03:30"` |' in chapters["reconcile"]


def _sql_examples() -> list[tuple[str, str, bool]]:
    """(page, statement, PostgreSQL only) for every statement in a ```sql block of docs/."""
    examples = []
    for page in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```sql\n(.*?)```", page.read_text(), re.S):
            comment = ""
            for statement in block.split(";"):
                lines = statement.strip().splitlines()
                comments = [line for line in lines if line.lstrip().startswith("--")]
                body = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
                comment = " ".join(comments) or comment
                if body:
                    examples.append((page.name, body, "(PostgreSQL)" in " ".join(comments)))
    return examples


def test_the_docs_have_sql_examples() -> None:
    assert len(_sql_examples()) >= 4


@pytest.mark.parametrize("page, statement, postgres_only", _sql_examples(), ids=lambda v: str(v)[:40])
def test_each_sql_example_runs(engine: Engine, page: str, statement: str, postgres_only: bool) -> None:
    if postgres_only and engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL example")
    with engine.connect() as connection:
        connection.execute(text(statement)).fetchall()


def test_sql_examples_answer_on_a_polled_database(report_database: tuple[Path, Path]) -> None:
    database, _ = report_database
    engine = storage.make_engine(f"sqlite:///{database}")
    answered = 0
    try:
        with engine.connect() as connection:
            for _page, statement, postgres_only in _sql_examples():
                if not postgres_only:
                    answered += bool(connection.execute(text(statement)).fetchall())
    finally:
        engine.dispose()
    assert answered >= 2
