"""recipes/fenced_postgres: writer processes, a real ensemble and a real PostgreSQL.

writer-a leads and appends rows with epoch e1. It is frozen (SIGSTOP) past its session
timeout; writer-b is elected with e2 > e1 and appends rows. writer-a thaws and writes at
once with e1: PostgreSQL refuses it (StaleEpochError), writer-a demotes itself and stays a
follower while writer-b keeps writing. The table holds every e1 row before every e2 row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pg_support import LocalPostgres

from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

REPO = Path(__file__).resolve().parents[2]
WRITER = REPO / "recipes" / "fenced_postgres" / "writer.py"
SESSION_TIMEOUT = 2.0


class Writer:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(WRITER), "--id", name, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def said(self, text: str) -> bool:
        return text in self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def dsn(postgres: LocalPostgres) -> str:
    schema = f"recipe_fenced_{os.getpid()}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres.dsn} options=-csearch_path={schema}"


@pytest.fixture
def writers(
    ensemble: LocalEnsemble, zk_path: str, dsn: str, tmp_path: Path
) -> Iterator[Callable[[str], Writer]]:
    made: list[Writer] = []

    def spawn(name: str) -> Writer:
        args = ["--hosts", ensemble.hosts, "--path", zk_path, "--dsn", dsn, "--every", "0.1"]
        made.append(
            Writer(
                name, [*args, "--session-timeout", str(SESSION_TIMEOUT)], tmp_path / f"{name}.log"
            )
        )
        return made[-1]

    yield spawn
    for writer in made:
        writer.stop()
    assert all(w.proc.poll() is not None for w in made), "a writer was left running"


def rows(dsn: str) -> list[tuple[int, str, int]]:
    with psycopg.connect(dsn) as conn:
        return [
            (int(i), str(w), int(e))
            for i, w, e in conn.execute(
                "SELECT id, writer, epoch FROM ledger ORDER BY id"
            ).fetchall()
        ]


def test_thawed_leader_is_refused_by_postgres_and_demotes(
    writers: Callable[[str], Writer], dsn: str
) -> None:
    a = writers("writer-a")
    wait_for(lambda: a.said("wrote seq 2 "), 15, 0.05, "writer-a leads and writes")
    b = writers("writer-b")
    wait_for(lambda: b.said("candidate in"), 15, 0.05, "writer-b joins")
    (e1,) = {e for _, w, e in rows(dsn) if w == "writer-a"}

    os.kill(a.proc.pid, signal.SIGSTOP)  # frozen past its session timeout
    try:
        wait_for(
            lambda: sum(w == "writer-b" for _, w, _ in rows(dsn)) >= 2,
            10 * SESSION_TIMEOUT,
            0.05,
            "writer-b is elected and writes",
        )
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)

    wait_for(lambda: a.said("refused by the database, demoting"), 10, 0.05, "writer-a refused")
    log = a.log.read_text()
    assert f"epoch {e1:#x} of 'writer-a' is lower than epoch" in log, log
    wait_for(lambda: a.said("follower"), 10, 0.05, "writer-a demotes itself")
    written_by_a = sum(w == "writer-a" for _, w, _ in rows(dsn))
    seen = len(rows(dsn))
    wait_for(lambda: len(rows(dsn)) >= seen + 5, 10, 0.05, "writer-b keeps writing")

    table = rows(dsn)
    a_rows = [(i, e) for i, w, e in table if w == "writer-a"]
    b_rows = [(i, e) for i, w, e in table if w == "writer-b"]
    (e2,) = {e for _, e in b_rows}
    assert e2 > e1
    assert {e for _, e in a_rows} == {e1}
    assert max(i for i, _ in a_rows) < min(i for i, _ in b_rows), table  # no late e1 row
    assert len(a_rows) == written_by_a, "writer-a wrote again after demoting"
    assert "leader with epoch" not in log.split("follower", 1)[1]  # still a follower
