"""Tables fit the terminal, and so does the footer that names what they left out."""

from __future__ import annotations

import pytest

from poller.render.tables import WIDER, Column, fit_table, left_out_line

HEADINGS = ["portal", "department", "start (UTC)", "finish (UTC)", "source"]


def test_the_left_out_footer_wraps_at_the_width_and_keeps_each_heading_on_one_line() -> None:
    footer = left_out_line(HEADINGS, 80).splitlines()
    assert footer == [
        "not shown at 80 columns: portal, department, start (UTC), finish (UTC), source;",
        f"  {WIDER}",
    ]
    narrow = left_out_line(HEADINGS, 40).splitlines()
    assert all(len(line) <= 40 for line in narrow)
    assert [line.startswith("  ") for line in narrow] == [False] + [True] * (len(narrow) - 1)
    assert any(line.strip().startswith("start (UTC)") or "start (UTC)," in line for line in narrow)
    assert " ".join(line.strip() for line in narrow) == left_out_line(HEADINGS, None).replace("None", "40")


def test_a_short_footer_stays_one_line() -> None:
    assert left_out_line(["source"], 100) == f"not shown at 100 columns: source; {WIDER}"


@pytest.mark.parametrize("width", [30, 50, 80])
def test_a_fitted_table_and_its_footer_are_no_wider_than_the_terminal(width: int) -> None:
    columns = [Column(heading, keep=rank) for rank, heading in enumerate(["user", *HEADINGS, "worked"])]
    row = [
        "17",
        "acme.bitrix24.de",
        "Sales and Marketing",
        "2026-10-25 00:30",
        "2026-10-25 09:00",
        "polls",
        "8:30",
    ]
    fitted = fit_table(columns, [row], width)
    text = "\n".join([fitted.text, left_out_line([c.heading for c in fitted.left_out], width)])
    assert fitted.left_out
    assert max(len(line) for line in text.splitlines()) <= width
