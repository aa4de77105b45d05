"""One test suite for both fenced SQL stores: SQLite (a file) and a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import LocalPostgres

from zkelect import ConfigurationError, FencingToken, StaleEpochError
from zkelect.fencing.stores import FencedStore, PostgresFencedStore, SQLiteFencedStore
from zkelect.metrics import NoopRecorder
from zkelect.testing import wait_for


class WriteCounter(NoopRecorder):
    def __init__(self) -> None:
        self.results: Counter[str] = Counter()

    def fenced_write(self, election: str, result: str) -> None:
        self.results[result] += 1


def token(epoch: int, who: str = "node") -> FencingToken:
    return FencingToken(epoch, "/e/x", who, 0x10)


class Backend:
    """A store plus plain-SQL access to the same database, for setting up and checking."""

    def __init__(
        self, kind: str, make: Callable[..., FencedStore], sql: Callable[..., Any], param: str
    ) -> None:
        self.kind, self.make, self.sql, self.param = kind, make, sql, param

    def log_action(self, value: str, pause: float = 0.0) -> Callable[[Any], str]:
        def action(conn: Any) -> str:
            if pause:
                time.sleep(pause)  # hold the transaction open: invites a racing writer
            conn.execute(f"INSERT INTO log (value) VALUES ({self.param})", (value,))
            return value

        return action

    def logged(self) -> list[str]:
        return [row[0] for row in self.sql("SELECT value FROM log ORDER BY id")]


def fresh_schema(pg: LocalPostgres, test_name: str) -> str:
    """A dsn whose tables land in a new, empty schema named after the test."""
    import psycopg

    schema = f"t_{test_name.replace('[', '_').replace(']', '').replace('-', '_')}"[:60]
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{pg.dsn} options=-csearch_path={schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        import sqlite3

        db = tmp_path / "fence.db"

        def sql(query: str, *args: Any) -> list[Any]:
            with sqlite3.connect(db) as conn:
                return conn.execute(query, *args).fetchall()

        sql("CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, value TEXT)")
        yield Backend("sqlite", lambda **kw: SQLiteFencedStore(db, **kw), sql, "?")
        return
    import psycopg

    dsn = fresh_schema(request.getfixturevalue("postgres"), request.node.name)

    def pg_sql(query: str, *args: Any) -> list[Any]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cursor = conn.execute(query, *args)
            return cursor.fetchall() if cursor.description else []

    pg_sql("CREATE TABLE log (id BIGSERIAL PRIMARY KEY, value TEXT)")
    yield Backend("postgres", lambda **kw: PostgresFencedStore(dsn, **kw), pg_sql, "%s")


def test_epochs_not_lower_are_accepted_and_lower_rejected(backend: Backend) -> None:
    counter = WriteCounter()
    store = backend.make(metrics=counter)
    assert store.highest_epoch("orders") is None
    assert store.write("orders", token(5, "a"), backend.log_action("a1")) == "a1"
    assert store.write("orders", token(5, "a"), backend.log_action("a2")) == "a2"  # same leader
    assert store.write("orders", token(9, "b"), backend.log_action("b1")) == "b1"
    with pytest.raises(StaleEpochError) as caught:
        store.write("orders", token(5, "a"), backend.log_action("a3"))
    error = caught.value
    assert (error.resource, error.epoch, error.current_epoch) == ("orders", 5, 9)
    assert "0x5" in str(error) and "0x9" in str(error)
    assert backend.logged() == ["a1", "a2", "b1"]  # the stale write left nothing behind
    assert store.highest_epoch("orders") == 9
    assert counter.results == {"accepted": 3, "rejected": 1}


def test_resources_are_fenced_independently(backend: Backend) -> None:
    store = backend.make()
    store.write("shard-1", token(9), backend.log_action("s1"))
    store.write("shard-2", token(3), backend.log_action("s2"))
    assert (store.highest_epoch("shard-1"), store.highest_epoch("shard-2")) == (9, 3)


def test_failed_action_rolls_back_and_does_not_advance_the_epoch(backend: Backend) -> None:
    store = backend.make()
    store.write("orders", token(5), backend.log_action("ok"))

    def failing(conn: Any) -> None:
        backend.log_action("partial")(conn)
        raise RuntimeError("the caller's write failed")

    with pytest.raises(RuntimeError):
        store.write("orders", token(8), failing)
    assert backend.logged() == ["ok"]
    assert store.highest_epoch("orders") == 5


def test_racing_writers_never_commit_an_older_epoch_after_a_newer(backend: Backend) -> None:
    store = backend.make()
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def writer(epoch: int) -> None:
        start.wait()
        for i in range(15):
            try:
                store.write("race", token(epoch), backend.log_action(f"{epoch}-{i}", 0.002))
                result = "ok"
            except StaleEpochError:
                result = "stale"
            with lock:
                outcomes.append((epoch, result))

    threads = [threading.Thread(target=writer, args=(e,)) for e in (5, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    committed = [int(value.split("-")[0]) for value in backend.logged()]
    assert committed.count(7) == 15  # the newer leader is never refused
    first_new = committed.index(7)
    assert all(epoch == 7 for epoch in committed[first_new:]), committed
    assert store.highest_epoch("race") == 7
    stale = sum(1 for epoch, result in outcomes if result == "stale")
    assert stale == 15 - committed.count(5)


def test_bad_arguments_are_typed_errors(backend: Backend) -> None:
    with pytest.raises(ConfigurationError, match="identifier"):
        backend.make(table="fence; DROP TABLE log")
    store = backend.make()
    with pytest.raises(ConfigurationError, match="resource"):
        store.write("", token(1), backend.log_action("x"))
    with pytest.raises(ConfigurationError, match="FencingToken"):
        store.write("r", 5, backend.log_action("x"))  # type: ignore[arg-type]
    assert backend.logged() == []


# -- PostgreSQL: the one-statement fence, sent with BEGIN ------------------------------------


@pytest.fixture
def pg_dsn(postgres: LocalPostgres, request: pytest.FixtureRequest) -> str:
    import psycopg

    dsn = fresh_schema(postgres, request.node.name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE log (id BIGSERIAL PRIMARY KEY, value TEXT)")
    return dsn


def pg_rows(dsn: str, query: str) -> list[Any]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def pg_log(value: str) -> Callable[[Any], str]:
    def action(conn: Any) -> str:
        conn.execute("INSERT INTO log (value) VALUES (%s)", (value,))
        return value

    return action


def waiting_on_a_lock(dsn: str) -> bool:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'INSERT INTO zkelect_fence%'"
    )
    return bool(pg_rows(dsn, query)[0][0])


@pytest.mark.parametrize("first", [5, 6])
def test_postgres_concurrent_epochs_5_and_6_never_commit_5_after_6(pg_dsn: str, first: int) -> None:
    store = PostgresFencedStore(pg_dsn)
    second = 11 - first
    outcome: list[str] = []

    def racer() -> None:
        try:
            outcome.append(store.write("r", token(second), pg_log(str(second))))
        except StaleEpochError as exc:
            outcome.append(f"stale, current {exc.current_epoch}")

    with store.fenced("r", token(first)) as conn:  # holds the row until this block commits
        pg_log(str(first))(conn)
        thread = threading.Thread(target=racer)
        thread.start()
        wait_for(lambda: waiting_on_a_lock(pg_dsn), 10, 0.02, "the racer waits on the row lock")
        assert outcome == []  # it cannot decide before we commit
    thread.join(10)
    assert not thread.is_alive()
    committed = [row[0] for row in pg_rows(pg_dsn, "SELECT value FROM log ORDER BY id")]
    if first == 6:  # the older epoch waited for the newer one, then was refused
        assert outcome == ["stale, current 6"] and committed == ["6"]
    else:  # the newer epoch waited for the older one and committed after it
        assert outcome == ["6"] and committed == ["5", "6"]
    assert store.highest_epoch("r") == 6


def test_postgres_fence_travels_with_begin_in_one_round_trip(pg_dsn: str) -> None:
    import tempfile

    import psycopg
    from psycopg import pq

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store = PostgresFencedStore(lambda: contextlib.nullcontext(conn))
        for epoch in (5, 5):  # the first write prepares the statement, the second reuses it
            with tempfile.TemporaryFile("w+") as trace:
                conn.pgconn.trace(trace.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

                def action(c: Any) -> None:
                    c.pgconn.untrace()  # what went over the wire before the block runs

                store.write("r", token(epoch), action)
                trace.seek(0)
                messages = [line.split("\t")[2].strip() for line in trace if line.strip()]
            sent = messages[: messages.index("ParseComplete")]  # before the first reply
            assert sent[-1] == "Sync" and sent.count("Execute") == 2, messages  # BEGIN, fence
            assert messages.count("Sync") == 1 and messages[-1] == "ReadyForQuery", messages
        prepared = conn.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'zkelect_%'"
        ).fetchone()
        assert prepared == (1,)


def test_postgres_fence_recovers_a_lost_prepared_statement(pg_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store = PostgresFencedStore(lambda: contextlib.nullcontext(conn))
        store.write("r", token(5), pg_log("a"))
        conn.execute("DEALLOCATE ALL")  # what a pool's reset or DISCARD ALL does
        assert store.write("r", token(5), pg_log("b")) == "b"
        with pytest.raises(StaleEpochError):
            store.write("r", token(4), pg_log("stale"))
        assert store.write("r", token(6), pg_log("c")) == "c"  # after psycopg's rollback
    committed = [row[0] for row in pg_rows(pg_dsn, "SELECT value FROM log ORDER BY id")]
    assert committed == ["a", "b", "c"]


def test_postgres_fence_without_prepared_statements(pg_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True, prepare_threshold=None) as conn:
        store = PostgresFencedStore(lambda: contextlib.nullcontext(conn))  # e.g. PgBouncer
        store.write("r", token(5), pg_log("a"))
        store.write("r", token(7), pg_log("b"))
        with pytest.raises(StaleEpochError, match="0x7 already accepted"):
            store.write("r", token(5), pg_log("x"))
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert prepared == (0,)
    assert PostgresFencedStore(pg_dsn).highest_epoch("r") == 7


def test_postgres_fence_inside_the_callers_transaction_uses_a_savepoint(pg_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn) as conn:  # not autocommit: the caller's transaction begins
        conn.execute("INSERT INTO log (value) VALUES ('before')")
        store = PostgresFencedStore(lambda: contextlib.nullcontext(conn))
        store.write("r", token(5), pg_log("fenced"))
        with pytest.raises(StaleEpochError):
            store.write("r", token(4), pg_log("stale"))  # rolls back to its savepoint only
        assert pg_rows(pg_dsn, "SELECT value FROM log") == []  # nothing committed yet
        conn.commit()
    committed = [row[0] for row in pg_rows(pg_dsn, "SELECT value FROM log ORDER BY id")]
    assert committed == ["before", "fenced"]
    assert PostgresFencedStore(pg_dsn).highest_epoch("r") == 5


def test_postgres_block_that_ends_the_transaction_itself_is_refused(pg_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store = PostgresFencedStore(lambda: contextlib.nullcontext(conn))
        refused = pytest.raises(ConfigurationError, match="committed or rolled back inside")
        with refused, store.fenced("r", token(5)) as fenced_conn:
            fenced_conn.rollback()
        assert store.highest_epoch("r") is None
        store.write("r", token(5), pg_log("after"))  # the connection is still usable
    assert PostgresFencedStore(pg_dsn).highest_epoch("r") == 5


def test_postgres_fence_begins_with_the_connections_transaction_settings(pg_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        store = PostgresFencedStore(lambda: contextlib.nullcontext(conn))
        with store.fenced("r", token(5)) as fenced_conn:
            level = fenced_conn.execute("SHOW transaction_isolation").fetchone()
        assert level == ("serializable",)
