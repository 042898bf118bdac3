"""Portal locks when the database misbehaves under them: a statement that hangs, a portal nobody
held when the connection broke, a connection lost while the lease is settled, a host that
vanishes (the keepalives of both sides), and the statement time limit of the main engine. On real
PostgreSQL, through the loopback proxy."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import end_replica_session, postgres_url, replica_sessions, wait_until
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from tcp_proxy import TcpProxy

from poller import storage
from poller.daemon.replicas import PortalLocks
from poller.storage.deadline import limit_statement_time, no_time_limit

MakeLocks = Callable[..., PortalLocks]


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    url = postgres_url()
    if not url:
        pytest.skip("lock outage tests need TIMEMAN_POLLER_TEST_POSTGRES_URL")
    engine = storage.make_engine(url)
    wait_until(lambda: replica_sessions(engine) == 0, what="no replica sessions left")
    yield engine
    engine.dispose()


@pytest.fixture
def proxy(pg_engine: Engine) -> Iterator[TcpProxy]:
    with TcpProxy(pg_engine.url.port or 5432, pg_engine.url.host or "127.0.0.1") as running:
        yield running


@pytest.fixture
def make_locks(pg_engine: Engine, proxy: TcpProxy) -> Iterator[MakeLocks]:
    """PortalLocks through the proxy, counting replicas afresh on every call."""
    made: list[PortalLocks] = []

    def make(name: str, portals: list[str], **options: Any) -> PortalLocks:
        options.setdefault("refresh_seconds", 0)
        options.setdefault("connect_timeout", 1)
        url = pg_engine.url.set(host="127.0.0.1", port=proxy.port)
        locks = PortalLocks(url, portals, name, **options)
        made.append(locks)
        return locks

    yield make
    proxy.restore()
    for locks in made:
        locks.close()


def test_a_hung_statement_holds_up_no_other_portal_and_counts_as_a_lost_connection(
    make_locks: MakeLocks, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    locks = make_locks("frozen", ["a", "b"], statement_seconds=3)
    assert locks.claim("a") and locks.claim("b")
    proxy.freeze()  # the database stops answering; every socket stays open
    answers: list[bool] = []
    hung = threading.Thread(target=lambda: answers.append(locks.claim("a")), daemon=True)
    hung.start()
    wait_until(lambda: locks._statements.locked(), what="a's claim waiting for its statement")
    assert locks.claim("b"), "b's job decides from what is known, without waiting for a's statement"
    assert hung.is_alive() and locks.coordinated, "a's statement still waits"
    hung.join(30)
    assert answers == [True], "past its time limit the statement failed, and a is polled on its lease"
    assert not locks.coordinated and locks.held == {"a", "b"}
    assert "lock connection lost" in caplog.text
    proxy.thaw()
    assert locks.renew() and locks.coordinated and locks.held == {"a", "b"}


def test_a_portal_nobody_held_when_the_connection_broke_is_polled_through_the_outage(
    make_locks: MakeLocks, proxy: TcpProxy
) -> None:
    portals = ["p1", "p2", "p3", "p4"]
    first = make_locks("first", portals, settle_seconds=0)
    assert all(first.claim(portal) for portal in portals[:3])  # p4: claimed by nobody yet
    second = make_locks("second", portals, settle_seconds=0)
    assert not second.claim("p1"), "second counts: p1 to p3 held, p4 free"
    assert first.rebalance("p3"), "two replicas: first gives p3 up after its cycle"
    proxy.cut()  # before second's next trigger for p3
    assert first.claim("p1")
    assert first.claim("p3"), "given up just before the cut: first polls it through the outage"
    assert first.claim("p4"), "held by nobody at first's last count"
    assert not second.claim("p3"), "first held it at second's last count"
    assert second.claim("p4"), "held by nobody at second's last count either: both poll it"
    proxy.restore()
    assert first.renew() and second.renew()
    assert first.held == {"p1", "p2", "p3", "p4"}, "nobody took them meanwhile: first keeps them"
    assert second.held == set(), "p4 handed over to first"
    for _ in range(2):  # then they spread again, one holder each
        for portal in portals:
            for locks in (first, second):
                if locks.claim(portal):
                    locks.rebalance(portal)
    assert not first.held & second.held and first.held | second.held == set(portals)


def test_a_connection_lost_while_the_lease_is_settled_keeps_every_leased_portal(
    make_locks: MakeLocks, pg_engine: Engine
) -> None:
    locks = make_locks("settle", ["x", "y", "z"])
    assert locks.coordinated
    with locks._statements:  # what renew does after connecting: settle what was polled meanwhile
        locks._locks.lease.portals = {"x", "y", "z"}
        end_replica_session(pg_engine, "settle")  # the new session ends before the first lock
        wait_until(lambda: replica_sessions(pg_engine) == 0, what="the session gone")
        locks._locks.settle()
    assert not locks.coordinated
    assert locks.held == {"x", "y", "z"}, "no leased portal dropped"
    assert locks.renew() and locks.coordinated and locks.held == {"x", "y", "z"}


def test_the_lock_session_has_server_side_keepalives(make_locks: MakeLocks) -> None:
    """A replica whose host vanishes loses its session (and its portals) in ~20 s, not 2 hours."""
    locks = make_locks("keepalive", ["a"])
    assert locks._locks.session is not None
    names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
    settings = {
        name: locks._locks.session.connection.execute(text(f"SHOW {name}")).scalar_one() for name in names
    }
    assert settings == {  # seconds, and milliseconds for tcp_user_timeout
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "2",
        "tcp_user_timeout": "20000",
    }


def test_the_main_engine_notices_a_vanished_database_host_within_seconds(pg_engine: Engine) -> None:
    """Keepalives and a TCP user timeout: a cycle's write to a host gone silent fails (and the
    cycle spools) after ~10 s instead of the system's 15 minutes of retransmissions."""
    with pg_engine.connect() as connection:
        parameters = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    assert {name: parameters.get(name) for name in ("keepalives", "keepalives_idle", "tcp_user_timeout")} == {
        "keepalives": "1",
        "keepalives_idle": "5",
        "tcp_user_timeout": "10000",
    }


def test_a_statement_past_the_time_limit_fails_but_a_migration_may_take_its_time(pg_engine: Engine) -> None:
    engine = storage.make_engine(pg_engine.url.render_as_string(hide_password=False))
    undo = limit_statement_time(engine, 0.5)
    try:
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(3)"))
        with no_time_limit(), engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(1)"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1, "a new connection"
    finally:
        undo()
        engine.dispose()


def test_driver_work_that_bypasses_the_dialect_is_held_to_the_same_limit_when_guarded(
    pg_engine: Engine,
) -> None:
    """COPY goes to psycopg directly (storage/copy_in.py): `guarded` arms the same watch for it."""
    from poller.storage.deadline import guarded

    engine = storage.make_engine(pg_engine.url.render_as_string(hide_password=False))
    undo = limit_statement_time(engine, 0.5)
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cursor:  # unguarded: the limit does not see it
                cursor.execute("SELECT pg_sleep(1)")
            lost = r"(?i)connection|closed|server|socket"
            with pytest.raises(Exception, match=lost), guarded(connection), raw.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(3)")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1, "a new connection"
    finally:
        undo()
        engine.dispose()
