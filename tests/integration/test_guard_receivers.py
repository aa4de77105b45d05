"""Two receiver processes, one FencingGuard(PostgresFencedStore) database: writes apply in
epoch order, whichever receiver is admitted first.

Receiver a is admitted and holds its block open (before its write) until the test says go;
receiver b then presents the other epoch. b must wait for a's transaction (its backend
waits on a lock in pg_stat_activity), then either write after a (newer epoch) or be refused
with StaleEpochError (older epoch). Each applied write appends its epoch to ``applied``
inside the guarded block, so the table must never go down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_support import LocalPostgres

from zkelect import FencingToken, PostgresFencedStore
from zkelect._lifeline import popen_tied
from zkelect.testing import wait_for

REPO = Path(__file__).resolve().parents[2]
RECEIVER = Path(__file__).with_name("guard_receiver.py")
OLDER, NEWER = 0x1_0000_0005, 0x2_0000_0003  # czxids of two leaders' nodes
DEADLINE = 30.0  # generous: two receivers start Python and psycopg on a loaded machine


class Receiver:
    """One guard_receiver.py process; its events are JSON lines in its log."""

    def __init__(self, name: str, dsn: str, epoch: int, hold: bool, log: Path) -> None:
        self.name, self.log = name, log
        header = str(FencingToken(epoch, "/elections/orders", name, 0x1))
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        args = [sys.executable, str(RECEIVER), "--dsn", f"{dsn} application_name={name}"]
        with open(log, "wb") as out:
            self.proc = popen_tied(
                [*args, "--header", header, *(["--hold"] if hold else [])],
                stdin=subprocess.PIPE,
                bufsize=0,  # the go-signal reaches the receiver when written
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def said(self, event: str) -> dict[str, Any] | None:
        return next((e for e in self.events() if e["event"] == event), None)

    def outcome(self) -> dict[str, Any] | None:
        return next((e for e in self.events() if e["event"] in {"applied", "stale", "error"}), None)

    def go(self) -> None:
        assert self.proc.stdin is not None
        # A receiver that has already ended needs no signal: its outcome says what happened.
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(b"go\n")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # a held transaction dies with its backend
        self.proc.wait(10)
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # unbuffered: nothing left to flush into a dead pipe


@pytest.fixture
def dsn(postgres: LocalPostgres, request: pytest.FixtureRequest) -> str:
    """A fresh schema with the fence table and ``applied``, shared by the receivers."""
    schema = f"guard_{request.node.callspec.id.replace('-', '_')}_{os.getpid()}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    dsn = f"{postgres.dsn} options=-csearch_path={schema}"
    PostgresFencedStore(dsn)  # the fence table, before any receiver holds a lock on it
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE applied (id BIGSERIAL PRIMARY KEY, epoch BIGINT NOT NULL)")
    return dsn


@pytest.fixture
def receivers(dsn: str, tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """``receivers(name, epoch, hold=False)`` starts one; each is stopped, pass or fail."""
    made: list[Receiver] = []
    # An ExitStack runs every stop, even after one of them raised.
    with contextlib.ExitStack() as stopping:

        def start(name: str, epoch: int, hold: bool = False) -> Receiver:
            app_name = f"{name}_{tmp_path.name}"[:60]  # unique among the session's backends
            made.append(Receiver(app_name, dsn, epoch, hold, tmp_path / f"{name}.log"))
            stopping.callback(made[-1].stop)
            return made[-1]

        yield start
    assert all(r.proc.poll() is not None for r in made), "a receiver was left running"


def applied(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [int(row[0]) for row in conn.execute("SELECT epoch FROM applied ORDER BY id")]


def waits_on_lock_or_done(receiver: Receiver, dsn: str) -> str | None:
    """What the receiver does while another holds the resource: waits (right) or finishes."""
    if receiver.outcome() is not None:
        return "finished"
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = %s",
            (receiver.name,),
        ).fetchone()
    return "waits on a lock" if row is not None and row[0] == "Lock" else None


@pytest.mark.parametrize(
    ("first", "second"), [(OLDER, NEWER), (NEWER, OLDER)], ids=["older-first", "newer-first"]
)
def test_receivers_sharing_a_store_apply_writes_in_epoch_order(
    receivers: Callable[..., Receiver], dsn: str, first: int, second: int
) -> None:
    a = receivers("a", first, hold=True)
    wait_for(lambda: a.said("admitted") or a.outcome(), DEADLINE, 0.05, "a is in its block")
    b = receivers("b", second)
    wait_for(lambda: b.said("ready") or b.outcome(), DEADLINE, 0.05, "b has built its store")
    while_a_holds = wait_for(
        lambda: waits_on_lock_or_done(b, dsn), DEADLINE, 0.05, "b waits for a's lock or finishes"
    )
    a.go()
    outcomes = [wait_for(r.outcome, DEADLINE, 0.05, f"{r.name} finishes") for r in (a, b)]

    epochs = applied(dsn)
    assert epochs == sorted(epochs), f"applied out of epoch order: {epochs}; {outcomes}"
    assert outcomes[0] == {"event": "applied"}, outcomes
    if second > first:
        assert (epochs, outcomes[1]) == ([first, second], {"event": "applied"})
    else:
        stale = {"event": "stale", "epoch": second, "current_epoch": first}
        assert (epochs, outcomes[1]) == ([first], stale)
    assert while_a_holds == "waits on a lock", "b was not held back by a's open transaction"
