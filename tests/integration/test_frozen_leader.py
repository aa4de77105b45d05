"""The frozen-leader scenario, with candidates as separate OS processes (SIGSTOP freezes
the whole process, as a GC pause or VM stall would):

node-A leads with epoch e1 and writes. node-A freezes longer than its session timeout.
node-B is elected with e2 > e1 and writes. node-A thaws and at once writes with e1: the
store rejects it (naming e1 and e2), node-A learns it was deposed and rejoins as a follower.
Run against ZooKeeper-side fencing, SQLite and a real PostgreSQL server, five times each.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from json_child import JsonChild, event
from kazoo.client import KazooClient
from pg_support import LocalPostgres

from zkelect.testing.ensemble import LocalEnsemble

CHILD = Path(__file__).with_name("fencing_child.py")
SESSION_TIMEOUT = 2.0


class Child(JsonChild):
    """A candidate process (fencing_child.py); its JSON events are collected as they come."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(CHILD, args)

    def poll_status(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        """Ask for the status until it matches (a deadline, not a guess)."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = [e for e in self.events if e["event"] == "status"]
        while True:
            self.send("status")
            status = self.expect(lambda e: e["event"] == "status" and e not in seen, 10)
            seen.append(status)
            if match(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"status never matched; last: {status}")
            time.sleep(0.1)


@pytest.fixture
def spawn() -> Iterator[Callable[[list[str]], Child]]:
    children: list[Child] = []

    def make(args: list[str]) -> Child:
        child = Child(args)
        children.append(child)
        return child

    yield make
    for child in children:
        child.stop()
    for child in children:
        assert child.proc.poll() is not None, "a candidate process was left running"


@pytest.mark.parametrize("run", range(5))
@pytest.mark.parametrize("store", ["zk", "sqlite", "postgres"])
def test_frozen_leader_late_write_is_rejected(
    store: str,
    run: int,
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    tmp_path: Path,
    spawn: Callable[[list[str]], Child],
    request: pytest.FixtureRequest,
) -> None:
    if store == "zk":
        target = f"{zk_path}-data"
        kazoo_client.create(target, b"", makepath=True)
    elif store == "sqlite":
        target = str(tmp_path / "fence.db")
    else:
        import psycopg

        pg: LocalPostgres = request.getfixturevalue("postgres")
        schema = f"frozen_{run}_{os.getpid()}"
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
        target = f"{pg.dsn} options=-csearch_path={schema}"
    common = [
        "--hosts",
        ensemble.hosts,
        "--path",
        zk_path,
        "--store",
        store,
        "--target",
        target,
        "--session-timeout",
        str(SESSION_TIMEOUT),
    ]

    a = spawn([*common, "--id", "node-A"])
    e1 = a.expect(event("elected"))["epoch"]
    a_joined = a.expect(event("joined"))
    b = spawn([*common, "--id", "node-B"])
    b.expect(event("joined"))

    a.send("write a1")
    assert a.expect(event("write", text="a1"))["ok"] is True

    a.signal(signal.SIGSTOP)  # node-A freezes longer than its session timeout
    try:
        e2 = b.expect(event("elected"), timeout=10 * SESSION_TIMEOUT)["epoch"]
        assert e2 > e1
        b.send("write b1")
        assert b.expect(event("write", text="b1"))["ok"] is True
        a.send("write a2")  # queued in the pipe: the first thing node-A does on waking
    finally:
        a.signal(signal.SIGCONT)

    late = a.expect(event("write", text="a2"))
    assert late["ok"] is False, late
    assert late["epoch"] == e1 and late["current"] == e2, json.dumps(late)
    assert f"{e1:#x}" in late["error"] and f"{e2:#x}" in late["error"]
    assert late["error"].startswith("StaleEpochError")
    # node-A learns it was deposed, steps down and rejoins as a follower on a new session.
    a.expect(event("revoked"))
    status = a.poll_status(lambda e: e["node"] not in (None, a_joined["node"]))
    assert status["leader"] is False and status["session"] != a_joined["session"]
    assert b.poll_status(lambda e: True)["leader"] is True

    # The store holds both legitimate writes and not the late one.
    if store == "zk":
        assert kazoo_client.get(target)[0] == b"b1"
    elif store == "sqlite":
        with sqlite3.connect(target) as conn:
            rows = conn.execute("SELECT value, epoch FROM writes").fetchall()
        assert rows == [("a1", e1), ("b1", e2)]
    else:
        import psycopg

        with psycopg.connect(target) as conn:
            rows = conn.execute("SELECT value, epoch FROM writes").fetchall()
        assert rows == [("a1", e1), ("b1", e2)]
