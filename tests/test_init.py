"""`init` writes the shipped example config: new users after `pip install` have no checkout."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from poller.cli import main
from poller.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_init_writes_the_example_owner_only_and_it_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "config.toml"
    assert main(["init", str(target)]) == 0
    assert target.read_text() == (ROOT / "config.example.toml").read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert f"wrote {target}" in capsys.readouterr().out
    assert load_config(target, portal_secrets=False).portals  # the example is a config, not prose


def test_init_keeps_an_existing_file_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "config.toml"
    target.write_text("# mine\n")
    assert main(["init", str(target)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "already exists" in error and str(target) in error
    assert target.read_text() == "# mine\n"
    assert main(["init", "--force", str(target)]) == 0
    assert "replaced" in capsys.readouterr().out
    assert target.read_text().startswith((ROOT / "config.example.toml").read_text()[:40])


def test_init_into_a_missing_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "nowhere" / "config.toml")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "does not exist" in error
