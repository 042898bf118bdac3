"""Fit a text table into a terminal's width: wrap name columns, leave out the least needed.

Plain string work, shared by every table the CLI prints (reports, the timesheet, check).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

WIDER = "widen the terminal or use --format csv or json"


@dataclass(frozen=True)
class Column:
    """A column of a terminal table.

    `keep` ranks it: when the terminal is too narrow, the highest ranks go first. A `wrap`
    column may wrap onto more lines (names); the others are shown whole or not at all.
    """

    heading: str
    keep: int
    wrap: bool = False
    right: bool = False


@dataclass(frozen=True)
class FittedTable:
    """A rendered table and the columns that did not fit (in display order)."""

    text: str
    left_out: tuple[Column, ...]


WRAP_MIN = 12  # a wrapping column is never made narrower than this (or its widest cell)
GAP = "  "


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    *,
    totals: Sequence[str] | None = None,
) -> FittedTable:
    """Render `rows` (and a `totals` row under a rule) in at most `width` characters a line.

    Columns are taken in `keep` order while they fit, at their full width, or at WRAP_MIN for
    wrapping ones; the first that does not fit and every later one are left out, so what is
    missing is always the least needed. Width left over widens the wrapping columns back.
    `width` None: as wide as the table needs. (Plain string work: a month of workdays is
    tens of thousands of rows, which a rich Table takes half a minute to lay out.)
    """
    every_row = [*rows, *([totals] if totals is not None else [])]
    natural = [
        max([len(column.heading), *(len(row[i]) for row in every_row)]) for i, column in enumerate(columns)
    ]
    least = [
        min(natural[i], max(WRAP_MIN, _longest_word(column.heading))) if column.wrap else natural[i]
        for i, column in enumerate(columns)
    ]
    kept: list[int] = []
    used = -len(GAP)
    for index in sorted(range(len(columns)), key=lambda i: columns[i].keep):
        needed = least[index] + len(GAP)
        if kept and width is not None and used + needed > width:
            break
        kept.append(index)
        used += needed
    shown = sorted(kept)
    widths = _widen({i: least[i] for i in shown}, natural, width - used if width is not None else None)
    shown_columns = [columns[i] for i in shown]
    lines = _cells_lines(shown_columns, [c.heading for c in shown_columns], [widths[i] for i in shown])
    rule = GAP.join("-" * widths[i] for i in shown)
    lines.append(rule)
    for row in rows:
        lines += _cells_lines(shown_columns, [row[i] for i in shown], [widths[i] for i in shown])
    if totals is not None:
        lines.append(rule)
        lines += _cells_lines(shown_columns, [totals[i] for i in shown], [widths[i] for i in shown])
    left_out = tuple(column for i, column in enumerate(columns) if i not in kept)
    return FittedTable("\n".join(lines), left_out)


def _widen(widths: dict[int, int], natural: Sequence[int], spare: int | None) -> dict[int, int]:
    """Give `spare` characters back to the columns narrower than their natural width, evenly."""
    if spare is None:
        return {i: natural[i] for i in widths}
    narrowed = [i for i in widths if widths[i] < natural[i]]
    while spare > 0 and narrowed:
        share = max(1, spare // len(narrowed))
        for i in narrowed:
            grow = min(share, natural[i] - widths[i], spare)
            widths[i] += grow
            spare -= grow
        narrowed = [i for i in narrowed if widths[i] < natural[i]]
    return widths


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width`: broken at spaces; a word longer than a line is cut."""
    if len(text) <= width:
        return [text]
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    return [line[i : i + width] for line in lines for i in range(0, len(line), width)]


def _cells_lines(columns: Sequence[Column], cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One table row as lines: wrapping cells wrap at words (long words are cut), others fit."""
    parts = [_wrap(text, width) for text, width in zip(cells, widths, strict=True)]
    lines = []
    for number in range(max(len(part) for part in parts)):
        pieces = [
            (part[number] if number < len(part) else "").rjust(width)
            if column.right
            else (part[number] if number < len(part) else "").ljust(width)
            for column, part, width in zip(columns, parts, widths, strict=True)
        ]
        lines.append(GAP.join(pieces).rstrip())
    return lines


def left_out_line(headings: Sequence[str], width: int | None) -> str:
    """The footer that names what a table left out, wrapped at `width` like the table above it.

    Lines break between words, never inside a heading ("start (UTC)"); the lines after the
    first are indented by two spaces. `width` None: one line.
    """
    glued = [heading.replace(" ", _GLUE) for heading in headings]
    text = f"not shown at {width} columns: {', '.join(glued)}; {WIDER}"
    if width is None:
        return text.replace(_GLUE, " ")
    lines = textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=True, break_on_hyphens=False)
    return "\n".join(line.replace(_GLUE, " ") for line in lines)


_GLUE = "\u00a0"  # a space inside a heading while the footer is wrapped: textwrap keeps it


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)
