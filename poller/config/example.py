"""The example config shipped inside the package, so `init` works after a plain `pip install`.

The repository's `config.example.toml` is a link to the same file: one text, every key
documented (tests/test_docs.py checks that each declared key has its entry).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from poller.errors import ConfigError


def example_text() -> str:
    """The example config as shipped."""
    return files("poller.config").joinpath("example.toml").read_text(encoding="utf-8")


@dataclass(frozen=True)
class WrittenExample:
    """Where `init` wrote the example, and whether it replaced a file."""

    path: Path
    replaced: bool


def write_example(path: Path, *, force: bool = False) -> WrittenExample:
    """Write the example to `path` with mode 0600; an existing file stays unless `force`."""
    existed = path.exists()
    if existed and not force:
        raise ConfigError(f"{path} already exists; keep it, pick another path, or pass --force")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: directory {path.parent} does not exist")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; keep it, pick another path, or pass --force") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(example_text())
    os.chmod(path, 0o600)
    return WrittenExample(path, replaced=existed)
