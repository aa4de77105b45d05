"""One test suite for both fenced SQL stores: SQLite (a file) and a real PostgreSQL server."""

from __future__ import annotations

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

    pg: LocalPostgres = request.getfixturevalue("postgres")
    schema = f"t_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"[:60]
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    dsn = f"{pg.dsn} options=-csearch_path={schema}"

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
