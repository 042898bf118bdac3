"""What `status` prints: columns aligned across portal names, counts in the right number."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime

import pytest

from poller.commands import ErrorInfo, RunInfo, StatusInfo
from poller.daemon import shutdown
from poller.render.status import counted, status_summary

NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)


def test_status_columns_line_up_whatever_the_portal_names() -> None:
    runs = (
        RunInfo(12, NOW, NOW, 3, 0, 0.5, "a", "finished"),
        RunInfo(11, NOW, NOW, 1500, 20, 12.25, "a-much-longer-portal", "finished"),
        RunInfo(10, NOW, None, 0, 0, None, "mid-size", None),
    )
    errors = (
        ErrorInfo("a", "USER_NOT_FOUND", 1, 1, NOW, "User not found"),
        ErrorInfo("a-much-longer-portal", "QUERY_LIMIT_EXCEEDED", 4, 2, NOW, "Too many requests"),
    )
    info = StatusInfo(runs, errors, NOW, None, {"a": "host:1", "mid-size": None})
    lines = status_summary(info).splitlines()
    cycles = lines[1:4]
    assert lines[0] == "last 3 cycles (UTC):"
    assert len({line.index(" ok ") for line in cycles}) == 1  # the counts in one column
    assert len({line.index(" failed ") for line in cycles}) == 1
    assert lines[4:7] == [
        "errors in the last 24 hours:",
        "  a:                    USER_NOT_FOUND x1 (1 user), last 2026-10-05 12:00:00: User not found",
        "  a-much-longer-portal: QUERY_LIMIT_EXCEEDED x4 (2 users), last 2026-10-05 12:00:00: "
        "Too many requests",
    ]
    assert lines[7:] == [
        "portals by replica (live locks):",
        "  a:        host:1",
        "  mid-size: not held (no live replica has taken it)",
    ]


def test_one_cycle_is_a_cycle() -> None:
    info = StatusInfo((RunInfo(1, NOW, NOW, 1, 0, 0.1, "emu", "finished"),), (), NOW, None)
    assert status_summary(info).splitlines()[0] == "last 1 cycle (UTC):"
    assert [counted(n, "request") for n in (0, 1, 2, 1500)] == [
        "0 requests", "1 request", "2 requests", "1,500 requests",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "advice"),
    [(signal.SIGINT, "Ctrl-C again to stop now"), (signal.SIGTERM, "another SIGTERM to stop now")],
)
def test_the_stop_advice_names_the_signal_that_came(
    signum: int, advice: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="poller.daemon.shutdown")
    exits: list[int] = []
    stopper = shutdown.Shutdown(60, exit=exits.append)
    stopper.handle(signum)
    stopper.cancel()
    [line] = [record.getMessage() for record in caplog.records]
    name = signal.Signals(signum).name
    assert line == f"{name} received: finishing the cycle; {advice} (stopping within 60 s)"
    assert ("Ctrl-C" in line) == (signum == signal.SIGINT) and exits == []
