"""Declare each config key once, as a field of poller.config's objects, and read tables by it.

A key's declaration is `setting(default, kind, doc)` on a dataclass field: its TOML name (the
field's, unless `key=` says otherwise), its kind (the expected TOML type and the check, which
also phrases the error), its default and one sentence of meaning. The parser reads a table by
these declarations, the unknown-key check takes its list from them, and
docs/config-reference.md is written from them, so none of the four can drift from the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from poller.errors import ConfigError

_SETTING = "timeman_poller.setting"
_SECTION = "timeman_poller.section"


class Kind(Protocol):
    """How one value is read: its TOML type and its check, which raise ConfigError naming `key`."""

    @property
    def text(self) -> str:
        """What the value is, for the docs: "integer >= 1", "crontab expression"."""
        ...

    def read(self, value: Any, key: str, base: Path | None) -> Any:
        """The value as the config object holds it; `base` is the config file's directory."""
        ...


@dataclass(frozen=True)
class Key:
    """One declared key: `name` in TOML, `attr` on the config object."""

    name: str
    attr: str
    kind: Kind
    doc: str
    default: Any  # MISSING: the key is required
    missing: str = ""  # for a required key: what to give, after "missing; "

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class Section:
    """A `[name]` table (or `[[name]]` tables when `many`) and the keys it allows."""

    name: str
    doc: str
    keys: tuple[Key, ...]
    many: bool = False
    attr: str | None = None  # the Config field holding the section's object; None: Config's own fields
    cls: type | None = None  # the section's object

    def names(self) -> set[str]:
        return {key.name for key in self.keys}


@dataclass(frozen=True)
class _Setting:
    kind: Kind
    doc: str
    key: str | None
    table: str | None
    missing: str


def setting(default: Any, kind: Kind, doc: str, *, key: str | None = None, table: str | None = None) -> Any:
    """Declare a config key on a dataclass field, with its default.

    `key` is its TOML name when it differs from the field's; `table` puts a field of the
    top-level Config into a section ("database" for `database_url`).
    """
    return field(default=default, metadata={_SETTING: _Setting(kind, doc, key, table, "")})


def required(kind: Kind, doc: str, missing: str) -> dict[str, Any]:
    """Metadata of a required key: `field(metadata=required(...))`; `missing` says what to give."""
    return {_SETTING: _Setting(kind, doc, None, None, missing)}


@dataclass(frozen=True)
class _Nested:
    doc: str
    cls: type
    many: bool
    inputs: tuple[Key, ...]


def section(doc: str, cls: type, *, many: bool = False, inputs: tuple[Key, ...] = ()) -> dict[str, Any]:
    """Metadata of a Config field that holds a section: a `cls` object, or a tuple of them (`many`).

    `inputs` are keys read into derived fields rather than into a field of their own (a
    portal's `webhook_url` becomes its `base_url` and `webhook_path`).
    """
    return {_SECTION: _Nested(doc, cls, many, inputs)}


def keys_of(cls: type, table: str | None = None) -> tuple[Key, ...]:
    """The keys declared on `cls`'s fields (those of `table` only, for the top-level Config)."""
    found = []
    for item in fields(cls):
        declared = item.metadata.get(_SETTING)
        if declared is None or declared.table != table:
            continue
        default = item.default if item.default_factory is MISSING else item.default_factory()
        found.append(
            Key(declared.key or item.name, item.name, declared.kind, declared.doc, default, declared.missing)
        )
    return tuple(found)


def sections_of(cls: type, table_docs: dict[str, str]) -> Iterator[Section]:
    """The sections of the top-level config class, in the order of its fields.

    A field with `setting(..., table=T)` belongs to section T (described by `table_docs[T]`);
    a field with `section(...)` metadata is a section of its own, read into its nested object.
    """
    seen: set[str] = set()
    for item in fields(cls):
        declared = item.metadata.get(_SETTING)
        nested = item.metadata.get(_SECTION)
        if declared is not None and declared.table and declared.table not in seen:
            seen.add(declared.table)
            yield Section(declared.table, table_docs[declared.table], keys_of(cls, declared.table), attr=None)
        elif nested is not None:
            own = keys_of(nested.cls)
            first = tuple(key for key in own if key.required)
            rest = tuple(key for key in own if not key.required)
            keys = first + nested.inputs + rest
            yield Section(item.name, nested.doc, keys, nested.many, item.name, nested.cls)


def read_keys(table: dict[str, Any], keys: tuple[Key, ...], where: str, base: Path | None) -> dict[str, Any]:
    """Every key of `table` read by its declaration, defaults for the rest, by attribute name."""
    values = {}
    for key in keys:
        place = f"{where}.{key.name}" if where else key.name
        if key.name not in table:
            if key.required:
                raise ConfigError(f"config key {place}: missing; {key.missing}")
            values[key.attr] = key.default
        else:
            values[key.attr] = key.kind.read(table[key.name], place, base)
    return values


def reject_unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            place = f"{where}.{key}" if where else key
            raise ConfigError(
                f"config key {place}: unknown key; expected one of {', '.join(sorted(allowed))}"
            )
