"""The benches make, use and drop their own scratch databases, and refuse a database holding tables."""

from __future__ import annotations

import hashlib
import importlib
import os
import secrets
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

BENCH = Path(__file__).resolve().parent.parent / "bench"
POSTGRES_ENV = "TIMEMAN_POLLER_TEST_POSTGRES_URL"  # only the tests read it: to make their own databases

# Arguments that would make each bench do a tiny run, were it not refused.
BENCH_ARGS = {
    "throughput": ["--mode", "storage", "--users", "5,10"],
    "report_speed": ["--users", "5", "--days", "2"],
    "soak": ["--seconds", "1", "--users", "5", "--outage", "block"],
    "backfill": ["--users", "5"],
    "replicas": ["--portals", "2", "--replicas", "1"],
    "hung": ["--portals", "2", "--users", "5", "--seconds", "1"],
    "write_ratio": ["--users", "20", "--cycles", "2", "--part", "10"],
    "directory_refresh": ["--users", "5"],
}


@pytest.fixture
def bench_modules(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    """The bench scripts and bench/scratch.py, imported as the scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCH))
    return {name: importlib.import_module(name) for name in ["scratch", *BENCH_ARGS]}


def needs_postgres() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    return url


def database_names(admin_url: str, like: str) -> set[str]:
    engine = create_engine(admin_url, poolclass=NullPool)
    with engine.connect() as connection:
        names = connection.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": like})
        found = {str(name) for (name,) in names}
    engine.dispose()
    return found


@pytest.fixture
def own_postgres_database() -> Iterator[str]:
    """A database this test creates (and drops) on the test server; yields its URL."""
    admin_url = needs_postgres()
    name = f"timeman_test_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_bench(module: ModuleType, scratch: ModuleType, argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        scratch.run(module.main, argv)
    return int(exited.value.code or 0)


@pytest.mark.parametrize("bench", list(BENCH_ARGS))
def test_a_bench_refuses_a_sqlite_file_holding_a_table_and_leaves_it_as_it_was(
    bench: str, bench_modules: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "payroll.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE payroll (id INTEGER PRIMARY KEY, hours REAL)")
        connection.executemany("INSERT INTO payroll VALUES (?, ?)", [(1, 8.5), (2, 7.25)])
    connection.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    code = run_bench(
        bench_modules[bench],
        bench_modules["scratch"],
        [*BENCH_ARGS[bench], "--postgres-server", f"sqlite:///{path}"],
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(
        f"{bench}.py: error: refusing sqlite:///{path}: its database holds tables (payroll)"
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT * FROM payroll ORDER BY id").fetchall() == [(1, 8.5), (2, 7.25)]
    connection.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payroll.sqlite3"]


@pytest.mark.parametrize("bench", list(BENCH_ARGS))
def test_a_bench_refuses_a_postgres_database_holding_a_table_and_creates_nothing(
    bench: str,
    bench_modules: dict[str, ModuleType],
    own_postgres_database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = create_engine(own_postgres_database, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE payroll (id integer PRIMARY KEY, hours numeric)"))
        connection.execute(text("INSERT INTO payroll VALUES (1, 8.5), (2, 7.25)"))
    server_url = needs_postgres()
    scratch_before = database_names(server_url, "timeman_bench_%")

    code = run_bench(
        bench_modules[bench],
        bench_modules["scratch"],
        [*BENCH_ARGS[bench], "--postgres-server", own_postgres_database],
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert "its database holds tables (public.payroll)" in err
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, hours::float FROM payroll ORDER BY id")).all()
        tables = connection.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [(1, 8.5), (2, 7.25)]
    assert [name for (name,) in tables] == ["payroll"]
    assert database_names(server_url, "timeman_bench_%") == scratch_before


def write_ratio_rows(out: str) -> dict[str, list[float]]:
    """The figures of each database's line of bench/write_ratio.py: raw s, poller s, raw/poller
    (the median of the cycles'), and the lowest and highest of the cycles' raw/poller."""
    lines = [line.split() for line in out.splitlines() if line.startswith(("sqlite ", "postgresql "))]
    return {
        words[0]: [*(float(word) for word in words[1:4]), *(float(end) for end in words[4].split("-"))]
        for words in lines
    }


def test_the_write_ratio_bench_prints_the_ratio_on_sqlite(
    bench_modules: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_bench(bench_modules["write_ratio"], bench_modules["scratch"], BENCH_ARGS["write_ratio"])

    out = capsys.readouterr().out
    assert code == 0
    assert "one cycle of 20 users in parts of 10, median of 2 cycles" in out
    rows = write_ratio_rows(out)
    assert list(rows) == ["sqlite"]
    raw, ours, ratio, lowest, highest = rows["sqlite"]
    assert raw > 0 and ours > 0 and ratio > 0 and 0 < lowest <= highest
    assert "postgresql: skipped (give --postgres-server)" in out
    assert "goal raw/poller >= 0.35:" in out


def test_the_write_ratio_bench_prints_the_ratio_on_both_databases_and_drops_its_own(
    bench_modules: dict[str, ModuleType], own_postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch_before = database_names(own_postgres_database, "timeman_bench_%")

    code = run_bench(
        bench_modules["write_ratio"],
        bench_modules["scratch"],
        [*BENCH_ARGS["write_ratio"], "--postgres-server", own_postgres_database],
    )

    out = capsys.readouterr().out
    assert code == 0
    rows = write_ratio_rows(out)
    assert list(rows) == ["sqlite", "postgresql"]
    assert all(
        len(figures) == 5 and figures[1] > 0 and 0 < figures[3] <= figures[4] for figures in rows.values()
    )
    assert "goal raw/poller >= 0.35:" in out
    assert database_names(own_postgres_database, "timeman_bench_%") == scratch_before


def test_the_benches_never_take_the_test_database_variable_as_a_target(
    bench_modules: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(POSTGRES_ENV, "postgresql+psycopg://postgres@127.0.0.1/somebody_elses")
    assert bench_modules["throughput"].parse_args(["--mode", "storage"]).postgres_server is None
    assert bench_modules["report_speed"].parse_args([]).postgres_server is None
    with pytest.raises(SystemExit):
        bench_modules["soak"].parse_args([])
    assert "the following arguments are required: --postgres-server" in capsys.readouterr().err


def test_a_scratch_sqlite_database_is_a_new_file_removed_at_the_end(
    bench_modules: dict[str, ModuleType],
) -> None:
    with bench_modules["scratch"].scratch_database(None, "unit") as url:
        path = Path(make_url(url).database or "")
        assert not path.exists()
        engine = create_engine(url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x integer)"))
        engine.dispose()
        assert path.is_file()
    assert not path.parent.exists()


def test_a_scratch_postgres_database_is_created_on_the_server_and_dropped_after_an_error(
    bench_modules: dict[str, ModuleType], own_postgres_database: str
) -> None:
    with (
        pytest.raises(RuntimeError, match="bench failed"),
        bench_modules["scratch"].scratch_database(own_postgres_database, "unit") as url,
    ):
        name = make_url(url).database or ""
        assert name.startswith("timeman_bench_unit_")
        engine = create_engine(url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x integer)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        held_open = engine.connect()  # a connection the bench forgot: the drop ends it
        assert database_names(own_postgres_database, name) == {name}
        raise RuntimeError("bench failed")
    held_open.close()
    engine.dispose()
    assert database_names(own_postgres_database, name) == set()
    assert bench_modules["scratch"].tables_in(own_postgres_database) == []


def test_a_bench_stopped_by_sigterm_drops_its_postgres_database(own_postgres_database: str) -> None:
    script = (
        "import sys, time\n"
        "import scratch\n"
        "def main(argv):\n"
        "    with scratch.scratch_database(argv[0], 'sigterm') as url:\n"
        "        print(url.rsplit('/', 1)[1], flush=True)\n"
        "        time.sleep(60)\n"
        "scratch.run(main, sys.argv[1:])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, own_postgres_database],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(BENCH)},
    )
    try:
        name = read_line(process, seconds=30)
        assert database_names(own_postgres_database, name) == {name}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.wait()
    assert name.startswith("timeman_bench_sigterm_")
    assert database_names(own_postgres_database, name) == set()


def read_line(process: subprocess.Popen[str], seconds: float) -> str:
    """The child's first line of output, waiting at most `seconds`."""
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                return process.stdout.readline().strip()
    raise AssertionError(f"no output from the child within {seconds} s")
