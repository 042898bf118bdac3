"""The suite's tiers: which tests start real processes, which are slow, which need PostgreSQL.

`conftest.pytest_collection_modifyitems` calls `mark(items)` so the markers are given in one
place rather than by hand in every module:

- `postgres`: the PostgreSQL side of the `database_url`/`engine` parametrisation, tests that take
  a module's own PostgreSQL fixture, and the tests listed in `POSTGRES`;
- `process`: tests whose code (the test, a fixture it takes, or a helper of its module that either
  calls) starts a process: found by reading the module's syntax tree for `subprocess`, `Popen`
  or `sys.executable`;
- `slow`: the tests in `SLOW`, measured over ~1 s with `pytest --durations=100`;
- `xdist_group`: tests that share something beyond their worker's own databases run on one
  pytest-xdist worker (`--dist loadgroup`): the modules in `GROUPS`.

The quick tier is `pytest -m "not slow and not process"`; the whole suite
`pytest -n 2 --dist loadgroup`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

# Names that start a process wherever a function mentions them.
PROCESS_NAMES = frozenset({"subprocess", "Popen", "executable", "check_output"})

# Fixtures of single modules that hand out the scratch PostgreSQL database.
POSTGRES_FIXTURES = frozenset({"pg_engine", "pg_url", "needs_postgres"})

# "module" or "module::test" (parameters left off) for PostgreSQL tests no fixture reveals.
POSTGRES = frozenset(
    {
        "test_outage.py",
        "test_soak.py",
        "test_suite_tiers.py::test_the_postgresql_head_is_emptied_when_intact_and_rebuilt_when_altered",
        "test_operations.py::test_a_postgresql_outage_loses_and_doubles_nothing",
        "test_views.py::test_the_views_agree_on_sqlite_and_postgresql_in_both_modes",
    }
)

# Modules whose tests must not run at once on two workers, and why.
GROUPS = {
    "test_bench.py": "bench",  # lists the server's timeman_bench_* databases before and after
    "test_soak.py": "bench",  # makes a timeman_bench_* database of its own
}

# "module::test" (parameters left off): tests that took over ~1 s in a full run on a shared
# 2-core machine (`pytest --durations=100`), or over ~0.6 s alone in the quick tier
# (`pytest -m "not slow and not process" --durations=20`). A renamed test only falls back into
# the quick tier.
SLOW = frozenset(
    {
        "test_irregular_days.py::test_irregular_days_are_stored_as_the_portal_tells_them",
        "test_limits.py::test_the_standard_bucket_is_used_to_its_ceiling_and_never_overflows",
        "test_backfill.py::test_users_with_more_than_50_records_get_their_next_pages_in_the_next_batch",
        "test_backfill.py::test_a_stop_request_ends_the_backfill_after_the_current_request",
        "test_backfill.py::test_one_month_of_120_users_costs_one_request_per_50_users",
        "test_timesheet.py::test_the_csv_is_ready_for_a_spreadsheet_with_a_totals_line",
        "test_compliance_end_to_end.py::test_the_de_report_of_the_month_equals_the_worlds_truth",
        "test_outage_sqlite.py::test_poll_on_a_database_another_writer_holds_keeps_the_rows_in_the_spool_and_exits_1",
        "test_outage_sqlite.py::test_a_locked_database_is_polled_through_and_written_when_the_lock_goes",
        "test_outage_sqlite.py::test_a_read_only_database_file_is_written_to_once_writable_again_without_a_restart",
        "test_deploy.py::test_the_images_install_and_entry_commands_work_in_a_fresh_virtualenv",
        "test_backfill.py::test_ctrl_c_stops_the_backfill_after_the_current_request_and_says_how_to_resume",
        "test_backfill.py::test_single_calls_within_a_strict_bucket_never_hit_query_limit_exceeded",
        "test_operations.py::test_the_daemon_with_every_fault_leaks_no_secret_and_serves_health",
        "test_operations.py::test_a_sigkill_mid_cycle_leaves_no_partial_or_doubled_rows",
        "test_views.py::test_a_simulated_week_polled_every_30_minutes_matches_the_truth",
        "test_stops.py::test_poll_stops_the_reconcile_at_ctrl_c_and_does_it_again_next_time",
        "test_daemon.py::test_run_stops_within_the_request_deadline_with_a_hung_portal_and_a_second_ctrl_c_at_once",
        "test_daemon.py::test_a_hung_portal_delays_neither_a_healthy_one_nor_the_stop",
        "test_daemon.py::test_a_portal_with_its_own_schedule_keeps_it",
        "test_daemon.py::test_a_database_down_at_start_is_waited_for_while_polling_into_the_spool",
        "test_daemon.py::test_the_daemon_api_for_tests_and_replicas",
        "test_client.py::test_a_stop_during_a_retry_backoff_ends_the_wait_and_sends_no_retry",
        "test_workdays.py::test_a_polled_week_matches_the_worlds_truth_in_both_modes_and_a_rebuild",
        "test_transport.py::test_a_client_gives_up_on_a_hung_portal_after_its_retries",
        "test_transport.py::test_a_misbehaving_portal_ends_with_a_timeout_at_the_deadline",
        "test_replicas.py::test_a_second_daemon_on_one_sqlite_file_exits_2_with_one_line",
        "test_cli.py::test_run_polls_on_schedule_and_exits_0_on_sigterm",
        "test_cli.py::test_the_demo_polls_and_prints_real_seconds",
        "test_timesheet.py::test_a_timesheet_adds_up_to_the_sum_of_its_days_and_to_the_truth",
    }
)


def _key(item: pytest.Item) -> tuple[str, str]:
    module = Path(str(item.fspath)).name
    name = getattr(item, "originalname", None) or item.name.split("[")[0]
    return module, f"{module}::{name}"


def _listed(item: pytest.Item, names: frozenset[str]) -> bool:
    module, test = _key(item)
    return module in names or test in names


@cache
def spawning_functions(path: str) -> frozenset[str]:
    """The module-level functions of `path` that start a process, directly or through another
    function of the same module."""
    source = Path(path).read_text(encoding="utf-8")
    if not any(name in source for name in PROCESS_NAMES):
        return frozenset()  # no such name anywhere: nothing to parse (most modules)
    tree = ast.parse(source)
    functions = {
        node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    calls: dict[str, set[str]] = {}
    spawning: set[str] = set()
    for name, node in functions.items():
        used = set()
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                used.add(child.id)
            elif isinstance(child, ast.Attribute):
                used.add(child.attr)
        if used & PROCESS_NAMES:
            spawning.add(name)
        calls[name] = used & functions.keys()
    changed = True
    while changed:
        changed = False
        for name, used in calls.items():
            if name not in spawning and used & spawning:
                spawning.add(name)
                changed = True
    return frozenset(spawning)


def _starts_processes(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    if function is None:
        return False
    spawning = spawning_functions(str(item.fspath))
    return function.__name__ in spawning or bool(spawning & set(getattr(item, "fixturenames", ())))


def _uses_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("database_url") == "postgresql":
        return True
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    return _listed(item, POSTGRES)


def mark(items: list[pytest.Item]) -> None:
    """Give each collected test the tier markers that fit it, and put the slow ones first.

    Under pytest-xdist a worker takes the next test in collection order when it is free, so a
    slow test collected last runs alone at the end while the other worker waits; collected first,
    it runs beside the many short ones (the order is stable otherwise)."""
    for item in items:
        if _uses_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if _starts_processes(item):
            item.add_marker(pytest.mark.process)
        if _listed(item, SLOW):
            item.add_marker(pytest.mark.slow)
        group = GROUPS.get(_key(item)[0])
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
