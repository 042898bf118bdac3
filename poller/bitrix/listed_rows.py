"""A list method's rows kept compact while they wait for their write: a tuple of values per row.

A directory refresh holds every user until it stores them in one transaction. As dicts, 50,000
users cost some 40 MB; as one tuple per row over shared keys, with each short text kept once
(zones, positions, user types and first names repeat), about half. A row reads back as the dict
it came as: save_users parses them a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

_ABSENT = object()  # a key this row did not have (another row did)
_SHARED_TEXT = 64  # texts up to this length are kept once per listing


class ListedRows(Sequence[dict[str, Any]]):
    """The rows of one listing, in order; each comes back as a new dict of what it had."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}  # every key seen, by its place in the tuples
        self._rows: list[tuple[Any, ...]] = []
        self._texts: dict[str, str] = {}

    def append(self, row: dict[str, Any]) -> None:
        """Keep `row` (its values; the dict itself can go)."""
        keys, texts = self._keys, self._texts
        for key in row:
            keys.setdefault(key, len(keys))
        values = [_ABSENT] * len(keys)
        for key, value in row.items():
            if type(value) is str and len(value) <= _SHARED_TEXT:
                value = texts.setdefault(value, value)
            values[keys[key]] = value
        self._rows.append(tuple(values))

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._row(values) for values in self._rows[index]]
        return self._row(self._rows[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._row, self._rows)

    def _row(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return {
            key: values[place]
            for key, place in self._keys.items()
            if place < len(values) and values[place] is not _ABSENT
        }
