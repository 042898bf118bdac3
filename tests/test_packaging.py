"""The wheel lists its packages by name (migrations live outside poller/): none may be forgotten."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_of_poller_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "poller").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert {"poller.migrations", "poller.migrations.versions"} <= listed


def test_the_example_config_ships_inside_the_package() -> None:
    """`pip install` users get the example too: the top-level file is the package's, not a copy."""
    from importlib.resources import files

    shipped = files("poller.config").joinpath("example.toml").read_text()
    assert shipped == (ROOT / "config.example.toml").read_text()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "example.toml" in package_data["poller.config"]


def test_metadata_names_its_authors_and_where_to_read_and_report() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["authors"] and project["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    assert {"Homepage", "Documentation", "Issues"} <= set(project["urls"])


def test_the_sdist_carries_every_top_level_path_the_tests_read() -> None:
    """A test that reads `ROOT / "deploy"` fails in an unpacked sdist unless MANIFEST.in takes it."""
    import re

    read = set()
    for test in (ROOT / "tests").glob("*.py"):
        read |= set(re.findall(r'(?:ROOT|parent\.parent) / "([^"/]+)"', test.read_text()))
    assert read, "no test reads a top-level path: the pattern above no longer matches"
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    packaged = {"pyproject.toml", "poller", "migrations", "MANIFEST.in"}  # always in an sdist
    assert sorted(read - packaged - set(manifest)) == []
