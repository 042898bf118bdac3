"""Replicas: portal locks on real PostgreSQL, the one-daemon lock of a SQLite file, and (at the
end) real daemon processes sharing one database while one of them is killed."""

from __future__ import annotations

import itertools
import math
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MakeEmulator,
    end_replica_session,
    postgres_url,
    replica_sessions,
    reset_postgres,
    wait_until,
)
from sqlalchemy import Engine, Row, text
from tcp_proxy import TcpProxy

from poller import storage
from poller.daemon import replicas
from poller.daemon.replicas import PortalLocks, SingleDaemonLock
from poller.errors import ConfigError
from poller.render.status import status_json, status_summary

PORTALS = [f"portal-{n}" for n in range(10)]

MakeLocks = Callable[..., PortalLocks]


class Ticks:
    """A monotonic clock for PortalLocks that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pg_url() -> str:
    url = postgres_url()
    if not url:
        pytest.skip("replica tests need TIMEMAN_POLLER_TEST_POSTGRES_URL")
    return url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the scratch database, once no replica session is left from before."""
    engine = storage.make_engine(pg_url)
    wait_until(lambda: replica_sessions(engine) == 0, what="no replica sessions left")
    yield engine
    engine.dispose()


@pytest.fixture
def make_locks(pg_engine: Engine) -> Iterator[MakeLocks]:
    """PortalLocks on the scratch database, counting replicas afresh on every call by default."""
    made: list[PortalLocks] = []

    def make(name: str, portals: list[str] = PORTALS, **options: Any) -> PortalLocks:
        options.setdefault("refresh_seconds", 0)
        locks = PortalLocks(pg_engine.url, portals, name, **options)
        made.append(locks)
        return locks

    yield make
    for locks in made:
        locks.close()


def _cycle(locks: PortalLocks, portals: list[str] = PORTALS) -> None:
    """What a daemon does at each portal's trigger: claim, (poll,) rebalance."""
    for portal in portals:
        if locks.claim(portal):
            locks.rebalance(portal)


def _assert_disjoint(*all_locks: PortalLocks) -> None:
    seen: dict[str, str] = {}
    for locks in all_locks:
        for portal in locks.held:
            assert portal not in seen, f"{portal} held by {seen[portal]} and {locks.name}"
            seen[portal] = locks.name


# -- PostgreSQL: portal locks --------------------------------------------------------------


def test_two_replicas_never_hold_the_same_portal(make_locks: MakeLocks, pg_engine: Engine) -> None:
    first, second = make_locks("first"), make_locks("second")
    for _ in range(4):
        for locks in (first, second):
            _cycle(locks)
            _assert_disjoint(first, second)
    assert first.held | second.held == set(PORTALS)
    holders = replicas.get_portal_holders(pg_engine, PORTALS)
    assert holders == {p: "first" for p in first.held} | {p: "second" for p in second.held}


def test_a_closed_replica_frees_its_portals_for_the_next_claim(make_locks: MakeLocks) -> None:
    first, second = make_locks("first", ["only"]), make_locks("second", ["only"])
    assert first.claim("only")
    assert not second.claim("only")
    first.close()
    assert second.claim("only")
    assert second.held == {"only"}


@pytest.mark.parametrize("count", [2, 3])
def test_ten_portals_spread_over_the_live_replicas(make_locks: MakeLocks, count: int) -> None:
    all_locks = [make_locks(f"replica-{n}") for n in range(count)]
    for _ in range(3):
        for locks in all_locks:
            _cycle(locks)
    _assert_disjoint(*all_locks)
    assert set().union(*(locks.held for locks in all_locks)) == set(PORTALS)
    assert all(1 <= len(locks.held) <= math.ceil(10 / count) for locks in all_locks)


def test_a_replica_alone_takes_everything_and_gives_the_excess_up_when_others_start(
    make_locks: MakeLocks,
) -> None:
    first = make_locks("first")
    _cycle(first)
    assert first.held == set(PORTALS)
    others = [make_locks("second"), make_locks("third")]
    _cycle(first)  # after each portal's cycle, over its share of 4: gives it up
    assert len(first.held) == 4
    for locks in others:
        _cycle(locks)
    _assert_disjoint(first, *others)
    assert sorted(len(locks.held) for locks in (first, *others)) == [2, 4, 4]


def test_a_replica_counts_replicas_only_every_refresh_period(make_locks: MakeLocks) -> None:
    ticks = Ticks()
    first = make_locks("first", refresh_seconds=5, clock=ticks)
    second = make_locks("second")
    _cycle(first)
    _cycle(second)
    assert len(first.held) == len(second.held) == 5
    second.close()
    _cycle(first)
    assert len(first.held) == 5, "the count of two replicas is still fresh"
    ticks.now += 5
    _cycle(first)
    assert first.held == set(PORTALS)


def test_a_replica_whose_session_ends_polls_its_lease_and_hands_over_what_another_took(
    make_locks: MakeLocks, pg_engine: Engine
) -> None:
    first, second = make_locks("first"), make_locks("second")
    _cycle(first)
    _cycle(second)
    _cycle(first)  # first's last count sees every portal held (a free one is polled through an outage)
    lease = set(first.held)
    assert len(lease) == 5
    end_replica_session(pg_engine, "first")
    assert first.claim(sorted(lease)[0]), "the lost session is noticed; the portal is still polled"
    assert first.held == lease and not first.coordinated
    assert not first.claim(sorted(set(PORTALS) - lease)[0]), "nothing outside the lease"
    wait_until(lambda: replica_sessions(pg_engine) == 1, what="the ended session gone")
    _cycle(second)  # second can see the database, first cannot: both poll first's portals now
    assert second.held == set(PORTALS)
    assert all(first.claim(portal) for portal in lease)
    assert first.renew() and first.coordinated
    assert first.held == set(), "every leased portal handed over to the replica that took it"
    _cycle(first)
    assert first.held == set() and second.held == set(PORTALS)


def test_replicas_back_from_an_outage_take_their_own_portals_again_before_any_other(
    make_locks: MakeLocks, pg_engine: Engine
) -> None:
    ticks = Ticks()
    first = make_locks("first", clock=ticks, settle_seconds=5)
    second = make_locks("second", clock=ticks, settle_seconds=5)
    _cycle(first)
    _cycle(second)
    _cycle(first)  # first's last count sees every portal held
    leases = set(first.held), set(second.held)
    for name in ("first", "second"):
        end_replica_session(pg_engine, name)
    _cycle(first)
    _cycle(second)
    assert (first.held, second.held) == leases and not first.coordinated and not second.coordinated
    wait_until(lambda: replica_sessions(pg_engine) == 0, what="the ended sessions gone")
    assert first.renew()
    assert first.held == leases[0]
    _cycle(first)  # alone on the database, but settling: second's portals wait for second
    assert first.held == leases[0]
    assert second.renew()
    assert second.held == leases[1]
    ticks.now += 5
    _cycle(first)
    _cycle(second)
    assert (first.held, second.held) == leases
    _assert_disjoint(first, second)


def test_a_replica_started_with_the_database_away_polls_every_portal_then_hands_over(
    make_locks: MakeLocks, pg_engine: Engine
) -> None:
    """A lone daemon polls all until it reaches the database; then never a portal another holds."""
    first = make_locks("first", PORTALS[:4])
    _cycle(first, PORTALS[:4])
    assert first.held == set(PORTALS[:4])
    with TcpProxy(pg_engine.url.port or 5432, pg_engine.url.host or "127.0.0.1") as proxy:
        proxy.cut()
        url = pg_engine.url.set(host="127.0.0.1", port=proxy.port)
        late = PortalLocks(url, PORTALS[:4], "late", refresh_seconds=0, connect_timeout=1)
        try:
            assert not late.coordinated
            assert all(late.claim(portal) for portal in PORTALS[:4]), "polled as a lone daemon would"
            proxy.restore()
            assert late.renew()
            assert late.held == set(), "every portal is held by a connected replica"
            for _ in range(3):  # then the portals spread, one holder each at every step
                _cycle(late, PORTALS[:4])
                _assert_disjoint(first, late)
                _cycle(first, PORTALS[:4])
                _assert_disjoint(first, late)
            assert len(first.held) == len(late.held) == 2
        finally:
            late.close()


def test_holders_are_read_from_the_database(make_locks: MakeLocks, pg_engine: Engine) -> None:
    first = make_locks("web-1-4242")
    assert first.claim("portal-3")
    assert replicas.get_portal_holders(pg_engine, PORTALS) == {"portal-3": "web-1-4242"}
    first.release("portal-3")
    assert replicas.get_portal_holders(pg_engine, PORTALS) == {}


def test_a_long_replica_name_keeps_its_pid() -> None:
    name = replicas.clean_replica_name("a-very-long-host-name-of-some-cloud-provider.internal-31337")
    assert len(name) == 48
    assert name.endswith("-31337")
    assert replicas.clean_replica_name("héllo") == "h?llo"


def test_concurrent_upgrades_of_one_database_both_succeed(pg_url: str, tmp_path: Path) -> None:
    """Two replicas starting on an empty database at once (this failed 4 times in 5 before)."""
    reset_postgres(pg_url)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{pg_url}"\n[[portals]]\nname = "emu"\n'
        'webhook_url = "http://127.0.0.1:9/rest/1/secret/"\nusers = [1]\n'
    )
    config.chmod(0o600)
    command = [sys.executable, "-m", "poller", "-c", str(config), "db", "upgrade"]
    upgrades = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in upgrades]
    assert results == [(0, ""), (0, "")]


# -- SQLite: one daemon per file -----------------------------------------------------------


def test_a_second_daemon_on_one_sqlite_file_is_refused_with_one_line(tmp_path: Path) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'poller.sqlite3'}")
    first = replicas.for_engine(engine, PORTALS, "first")
    try:
        assert first.claim("portal-0") and first.held == {"portal-0"}
        with pytest.raises(ConfigError) as refused:
            replicas.for_engine(engine, PORTALS, "second")
        message = str(refused.value)
        assert "\n" not in message
        assert f"SQLite file {tmp_path / 'poller.sqlite3'} is in use" in message
        assert "(first," in message
    finally:
        first.close()
    replicas.for_engine(engine, PORTALS, "third").close()


def test_in_memory_sqlite_locks_nothing() -> None:
    locks = replicas.for_engine(storage.make_engine("sqlite://"), PORTALS)
    assert isinstance(locks, SingleDaemonLock) and locks.path is None
    assert locks.claim("portal-1")
    assert not locks.rebalance("portal-1")
    locks.close()


# -- real daemons --------------------------------------------------------------------------

INTERVAL = 2
SHOPS = [f"shop-{n}" for n in range(6)]
SHOP_USERS = [1, 2, 3]


def _daemon_config(tmp_path: Path, index: int, database_url: str, webhook: str, shops: list[str]) -> Path:
    """A config for replica `index`: every shop on one emulator, a spool of its own."""
    config = tmp_path / f"replica-{index}.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[schedule]\ninterval_seconds = {INTERVAL}\n'
        "[directory]\nrefresh_hours = 0\n[reconcile]\ndays = 0\n"
        f'[storage]\nspool_path = "{tmp_path / f"spool-{index}.jsonl"}"\n'
        + "".join(
            f'[[portals]]\nname = "{shop}"\nwebhook_url = "{webhook}"\nusers = {SHOP_USERS}\n'
            for shop in shops
        )
    )
    config.chmod(0o600)
    return config


def _start_daemon(config: Path, log: Path) -> subprocess.Popen[str]:
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "poller", "-c", str(config), "run"],
            stdout=output,
            stderr=output,
            text=True,
        )


def _stop_daemons(daemons: list[subprocess.Popen[str]]) -> list[int]:
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
    codes = []
    for daemon in daemons:
        try:
            codes.append(daemon.wait(timeout=60))
        except subprocess.TimeoutExpired:
            daemon.kill()
            codes.append(daemon.wait())
    return codes


def _spread(holders: dict[str, str], replicas_alive: int) -> bool:
    counts = Counter(holders.values())
    return (
        set(holders) == set(SHOPS)
        and len(counts) == replicas_alive
        and max(counts.values()) <= math.ceil(len(SHOPS) / replicas_alive)
    )


def _runs(engine: Engine) -> list[Row[Any]]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT id, portal, replica, started_at, finished_at, users_ok FROM poll_runs"
                    " ORDER BY portal, started_at"
                )
            ).all()
        )


def test_replicas_share_the_portals_and_one_takes_over_from_a_killed_one(
    pg_engine: Engine, pg_url: str, make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    """Three `run` processes, one killed: every poll stored once, its portals taken within two intervals.

    Two steady windows (three replicas spread, then the two survivors spread) show one poller
    per portal at its interval; the whole history shows no overlapping cycles and no poll
    stored twice.
    """
    reset_postgres(pg_url)
    webhook = make_emulator(users=len(SHOP_USERS), rate=0, operating_limit=0).webhook_url
    daemons = [
        _start_daemon(_daemon_config(tmp_path, n, pg_url, webhook, SHOPS), tmp_path / f"replica-{n}.log")
        for n in range(3)
    ]
    try:
        first_window = _steady_window(pg_engine, 3)
        victim_name = first_window.holders[SHOPS[0]]
        (victim,) = [d for d in daemons if victim_name.endswith(f"-{d.pid}")]
        killed_at = datetime.now(UTC)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        second_window = _steady_window(pg_engine, 2)
        assert _stop_daemons([d for d in daemons if d is not victim]) == [0, 0]
        second_window.end = datetime.now(UTC)
    finally:
        _stop_daemons(daemons)
    first_window.end = killed_at

    first_after = _check_history(pg_engine, killed_at, victim_name)
    for window in (first_window, second_window):
        _check_steady(pg_engine, window)
    assert len({r.replica for r in _runs(pg_engine)}) == 3, "every replica polled"
    orphans = sorted(shop for shop, name in first_window.holders.items() if name == victim_name)
    takeovers = {shop: round(first_after[shop], 2) for shop in orphans}
    print(f"interval {INTERVAL} s; seconds from the kill to the next cycle of the killed replica's portals:")
    print(f"  {takeovers}")
    assert max(takeovers.values()) <= 2 * INTERVAL, f"takeover after {takeovers} s"


@dataclass
class Window:
    """A time when the portals stayed with the same replicas."""

    holders: dict[str, str]
    start: datetime
    end: datetime | None = None


def _steady_window(engine: Engine, alive: int) -> Window:
    """Wait for the spread over `alive` replicas, then for two cycles of every shop after it."""
    wait_until(
        lambda: _spread(replicas.get_portal_holders(engine, SHOPS), alive),
        timeout=60,
        what=f"the shops spread over {alive} replicas",
    )
    window = Window(replicas.get_portal_holders(engine, SHOPS), datetime.now(UTC))

    def two_cycles() -> bool:
        done = Counter(r.portal for r in _runs(engine) if r.started_at > window.start and r.finished_at)
        return all(done[shop] >= 2 for shop in SHOPS)

    wait_until(two_cycles, timeout=60, what="two cycles of every shop")
    assert replicas.get_portal_holders(engine, SHOPS) == window.holders, "the spread moved"
    return window


def _check_steady(engine: Engine, window: Window) -> None:
    """In a steady window only the holder polls each shop, about once per interval."""
    assert window.end is not None
    for shop, holder in window.holders.items():
        runs = [r for r in _runs(engine) if r.portal == shop and window.start < r.started_at < window.end]
        assert {r.replica for r in runs} == {holder}, f"{shop}: polled by {[r.replica for r in runs]}"
        gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(runs)]
        assert min(gaps) >= INTERVAL / 2, f"{shop}: cycles {gaps} s apart"


def _check_history(engine: Engine, killed_at: datetime, victim_name: str) -> dict[str, float]:
    """Assert every poll was stored once, by one replica at a time, none by the victim after its
    death; return the seconds from the kill to each portal's first cycle after it."""
    runs = _runs(engine)
    with engine.connect() as connection:
        snapshots = connection.execute(text("SELECT portal, user_id, polled_at FROM snapshots")).all()
    first_after: dict[str, float] = {}
    for shop in SHOPS:
        shop_runs = [r for r in runs if r.portal == shop]
        # One replica at a time: a portal's cycles never overlap (a killed cycle ends with its process).
        ends = [r.finished_at or (killed_at if r.replica == victim_name else None) for r in shop_runs]
        assert None not in ends, f"{shop}: a cycle of a live replica was left open"
        for run, end, following in zip(shop_runs, ends, shop_runs[1:], strict=False):
            assert end <= following.started_at, f"{shop}: cycles {run.id} and {following.id} overlap"
        # Every poll stored once: a finished cycle wrote one row per user, all inside its window;
        # the killed cycle at most one per user; no row outside the cycles.
        in_cycles = 0
        for run, end in zip(shop_runs, ends, strict=True):
            users = sorted(
                s.user_id for s in snapshots if s.portal == shop and run.started_at <= s.polled_at <= end
            )
            in_cycles += len(users)
            if run.finished_at is not None:
                assert (users, run.users_ok) == (SHOP_USERS, len(SHOP_USERS)), f"{shop}: cycle {run.id}"
            else:
                assert len(users) == len(set(users)), f"{shop}: killed cycle {run.id} stored a user twice"
        assert in_cycles == sum(s.portal == shop for s in snapshots), f"{shop}: rows outside any cycle"
        after = [r for r in shop_runs if r.started_at > killed_at]
        assert after and all(r.replica != victim_name for r in after)
        first_after[shop] = (after[0].started_at - killed_at).total_seconds()
    return first_after


def test_a_second_daemon_on_one_sqlite_file_exits_2_with_one_line(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    database = tmp_path / "poller.sqlite3"
    webhook = make_emulator(users=3, rate=0).webhook_url
    first_config = _daemon_config(tmp_path, 0, f"sqlite:///{database}", webhook, ["shop-0"])
    second_config = _daemon_config(tmp_path, 1, f"sqlite:///{database}", webhook, ["shop-0"])
    first = _start_daemon(first_config, tmp_path / "first.log")
    lock = tmp_path / "poller.sqlite3.lock"
    try:
        wait_until(
            lambda: lock.exists() and lock.read_text().strip().endswith(f"-{first.pid}"),
            timeout=30,
            what="the first daemon's lock",
        )
        second = subprocess.run(
            [sys.executable, "-m", "poller", "-c", str(second_config), "run"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert first.poll() is None
    finally:
        assert _stop_daemons([first]) == [0]
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1, second.stderr
    assert f"SQLite file {database} is in use by another timeman-poller daemon" in second.stderr


def test_status_names_the_replica_holding_each_portal(pg_url: str, make_locks: MakeLocks) -> None:
    from poller import commands
    from poller.config import Config, PortalConfig

    reset_postgres(pg_url)
    engine = storage.make_engine(pg_url)
    storage.upgrade_database(engine)
    engine.dispose()
    portals = tuple(
        PortalConfig(name=name, base_url="https://a.example", webhook_path="/rest/1/s/", users=(1,))
        for name in ("emu", "idle")
    )
    config = Config(database_url=pg_url, spool_path=None, portals=portals)
    locks = make_locks("web-1", ["emu", "idle"])
    assert locks.claim("emu")
    shown = commands.status(config)
    assert shown.holders == {"emu": "web-1", "idle": None}
    assert "  emu:  web-1" in status_summary(shown).splitlines()  # aligned with the longer name
    assert "  idle: not held (no live replica has taken it)" in status_summary(shown).splitlines()
    assert status_json(shown)["holders"] == {"emu": "web-1", "idle": None}
    locks.close()
    assert commands.status(config).holders == {"emu": None, "idle": None}
