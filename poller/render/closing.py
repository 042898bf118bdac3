"""What `close` and `verify` print: a line per close, a verdict per portal and its differences,
or the same as JSON (`--format json`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poller.history.closing import Difference, Verified
    from poller.storage.closes import MonthClose


def close_line(close: MonthClose) -> str:
    """`closed 2026-10 on portal acme: 1,234 rows, sha256 ...`; a second close says so."""
    again = f" (close {close.sequence}; the earlier ones are kept)" if close.sequence > 1 else ""
    return (
        f"closed {close.month:%Y-%m} on portal {close.portal}{again}: {close.row_count:,} rows, "
        f"sha256 {close.digest}"
    )


def close_json(done: Sequence[MonthClose]) -> dict[str, Any]:
    return {"closes": [_close_json(close) for close in done]}


def _close_json(close: MonthClose) -> dict[str, Any]:
    return {
        "portal": close.portal,
        "month": f"{close.month:%Y-%m}",
        "sequence": close.sequence,
        "closed_at": close.closed_at.isoformat(),
        "sha256": close.digest,
        "rows": close.row_count,
        "canonical_version": close.canonical_version,
    }


def verify_summary(verified: Verified) -> str:
    """The close checked, what failed, then a line per difference (or that nothing changed)."""
    close = verified.close
    head = (
        f"verify {close.month:%Y-%m} on portal {close.portal}: close {close.sequence} of "
        f"{close.closed_at:%Y-%m-%d %H:%M} UTC, sha256 {close.digest}"
    )
    lines = [head]
    if verified.given_matches is False:
        lines.append("  the digest given is NOT the one this close stored")
    if not verified.copy_intact:
        lines.append("  the stored copy of the close was altered: its lines no longer give its digest")
    if verified.ok:
        lines.append("  matches: nothing changed since the close")
        return "\n".join(lines)
    count = len(verified.differences)
    lines.append(f"  now sha256 {verified.digest_now}: {count} difference{'s' * (count != 1)}")
    lines += [f"  {difference_line(difference)}" for difference in verified.differences]
    return "\n".join(lines)


def verify_json(verified: Verified) -> dict[str, Any]:
    return {
        **_close_json(verified.close),
        "ok": verified.ok,
        "sha256_now": verified.digest_now,
        "stored_copy_intact": verified.copy_intact,
        "given_digest_matches": verified.given_matches,
        "differences": [difference_json(difference) for difference in verified.differences],
    }


def difference_line(difference: Difference) -> str:
    """The row's key and how it changed; a revision added or deleted says what it revised."""
    key = " ".join(f"{name}={value}" for name, value in difference.key.items())
    table, change = difference.table, difference.change
    if change == "altered":
        what = "; ".join(f"{name} {was} -> {now}" for name, was, now in difference.columns)
        return f"{table} {key}: altered: {what}"
    if table == "workday_revisions" and difference.fields is not None:
        f = difference.fields
        late = ", after close" if f["after_close"] == "true" else ""
        return (
            f"{table} {key}: {change}: {f['source']} {f['field']} of user {f['user_id']} "
            f"on {f['work_date']}: {f['old_value']} -> {f['new_value']}{late}"
        )
    return f"{table} {key}: {change}"


def difference_json(difference: Difference) -> dict[str, Any]:
    return {
        "table": difference.table,
        "key": difference.key,
        "change": difference.change,
        "columns": [{"column": n, "at_close": was, "now": now} for n, was, now in difference.columns],
        "row": difference.fields,
    }
