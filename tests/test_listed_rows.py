"""ListedRows: a listing's rows kept as tuples read back as the dicts that came, in order."""

from __future__ import annotations

from typing import Any

from poller.bitrix.listed_rows import ListedRows


def test_rows_read_back_as_they_came_whatever_keys_each_has() -> None:
    came: list[dict[str, Any]] = [
        {"ID": "1", "NAME": "Anna", "UF_DEPARTMENT": [3, 1], "TIME_ZONE": "Europe/Berlin"},
        {"ID": "2", "NAME": None, "TIME_ZONE": "Europe/Berlin"},  # None kept, a key missing stays missing
        {"ID": "3", "EXTRA": {"nested": True}, "NAME": "x" * 100},  # a key only this row has, a long text
        {},
    ]
    rows = ListedRows()
    for row in came:
        rows.append(dict(row))

    assert len(rows) == 4
    assert list(rows) == came
    assert [rows[index] for index in range(4)] == came
    assert rows[1:3] == came[1:3]
    assert rows[-1] == {} and "UF_DEPARTMENT" not in rows[1] and "EXTRA" not in rows[0]


def test_a_row_read_back_is_a_new_dict_and_a_short_text_is_kept_once() -> None:
    rows = ListedRows()
    rows.append({"TIME_ZONE": "".join(["Europe/", "Berlin"])})
    rows.append({"TIME_ZONE": "".join(["Europe/", "Berlin"])})  # an equal text, another object
    first, second = rows[0], rows[1]
    first["TIME_ZONE"] = "changed"
    assert rows[0] == {"TIME_ZONE": "Europe/Berlin"}
    assert rows[1]["TIME_ZONE"] is second["TIME_ZONE"] is rows[0]["TIME_ZONE"]
