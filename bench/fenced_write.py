#!/usr/bin/env python3
"""What fencing costs: fenced writes against plain ones, measured side by side in one run.

* ZooKeeper: ``Leadership.set_data`` (a multi-op transaction: check our candidate node, then
  set) against a plain ``set`` on the same session;
* SQLite: ``SQLiteFencedStore.write`` (BEGIN IMMEDIATE, read the resource's epoch, the
  action, upsert the epoch, COMMIT, on a new connection as the store does) against a plain
  transaction doing the same action on a new connection;
* PostgreSQL (a throwaway local server, fsync off): ``PostgresFencedStore.write`` (BEGIN and
  the one-statement fence, an upsert of the epoch row that locks it, in one round trip; the
  action; COMMIT) against a plain transaction doing the same action (BEGIN, the action,
  COMMIT); twice: on one open connection (what a connection pool gives) and with a new
  connection per write (what the store does when given a conninfo string).

Fenced and plain samples alternate (and which goes first alternates too), so load on the
machine weighs on both alike. Warm-up writes are excluded.

Target (DESIGN §7 "fenced writes cost close to plain writes"; read here as at most 1.2x the
plain median, the fencing issue's figure for ZooKeeper).

    python bench/fenced_write.py [--samples 400] [--smoke | --quick]
"""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Ensemble,
    base_parser,
    default_output,
    describe,
    ensemble_for,
    exit_on_sigterm,
    machine_info,
    write_result,
)
from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, FencingToken, SQLiteFencedStore
from zkelect.testing.localpg import LocalPostgres, PostgresUnavailable

TARGET = 1.2
WARMUP = 20


def alternate(
    samples: int, fenced: Callable[[int], None], plain: Callable[[int], None]
) -> tuple[list[float], list[float]]:
    """Time ``fenced(i)`` and ``plain(i)`` alternately (order swapped every other sample)."""
    out_f: list[float] = []
    out_p: list[float] = []
    for i in range(samples + WARMUP):
        pair = [(fenced, out_f), (plain, out_p)]
        if i % 2:
            pair.reverse()
        for action, out in pair:
            started = time.perf_counter()
            action(i)
            took = time.perf_counter() - started
            if i >= WARMUP:
                out.append(took)
    return out_f, out_p


def row(name: str, fenced: list[float], plain: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "fenced_ms": describe(fenced),
        "plain_ms": describe(plain),
        # the first version's keys, kept
        "fenced_median_ms": statistics.median(fenced) * 1000,
        "plain_median_ms": statistics.median(plain) * 1000,
        "ratio": round(statistics.median(fenced) / statistics.median(plain), 3),
        "samples": len(fenced),
        **extra,
    }


def measure_zookeeper(ensemble: Ensemble, samples: int) -> dict[str, Any]:
    client = KazooClient(hosts=ensemble.hosts, timeout=10)
    client.start(timeout=30)
    base = f"/bench/fence/run-{int(time.time() * 1000)}"
    election = Election(
        client, f"{base}/election", candidate_id="bench", config=ElectionConfig(session_timeout=10)
    )
    try:
        election.start()
        lead = election.wait_for_leadership(10)
        assert lead is not None, "not elected"
        data = f"{base}/data"
        client.ensure_path(data)
        fenced, plain = alternate(
            samples,
            lambda i: lead.set_data(data, str(i).encode()),
            lambda i: client.set(data, str(i).encode()),
        )
        return row("zookeeper set", fenced, plain, fenced_op="multi(check, set)", plain_op="set")
    finally:
        election.stop()
        client.stop()
        client.close()


def measure_sqlite(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zkelect-bench-sqlite-") as tmp:
        db = Path(tmp) / "bench.db"
        store = SQLiteFencedStore(db)
        token = FencingToken(0x100000004, "/bench", "bench", 1)
        with contextlib.closing(sqlite3.connect(db)) as setup:
            setup.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
            setup.commit()

        def write(conn: sqlite3.Connection, value: str) -> None:
            conn.execute("INSERT OR REPLACE INTO kv VALUES ('x', ?)", (value,))

        def plain(i: int) -> None:
            conn = sqlite3.connect(db, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                write(conn, str(i))
                conn.execute("COMMIT")
            finally:
                conn.close()

        fenced, plain_t = alternate(
            samples, lambda i: store.write("kv", token, lambda c: write(c, str(i))), plain
        )
        return row("sqlite transaction", fenced, plain_t, connection="new per write (both)")


def measure_postgres(samples: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import psycopg

    from zkelect import PostgresFencedStore

    server = LocalPostgres()
    try:
        server.start()
        info = {"postgresql": server.version(), "psycopg": psycopg.__version__}
        token = FencingToken(0x100000004, "/bench", "bench", 1)
        upsert = (
            "INSERT INTO kv (k, v) VALUES ('x', %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        )
        rows = []
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
            pooled = PostgresFencedStore(lambda: contextlib.nullcontext(conn))

            def plain_pooled(i: int) -> None:
                with conn.transaction():
                    conn.execute(upsert, (str(i),))

            fenced, plain = alternate(
                samples,
                lambda i: pooled.write("kv", token, lambda c: c.execute(upsert, (str(i),))),
                plain_pooled,
            )
            rows.append(
                row(
                    "postgresql transaction (one open connection)",
                    fenced,
                    plain,
                    connection="one open connection (a pool's)",
                    statements=(
                        "fenced: BEGIN + the fence in one round trip, the action, COMMIT; "
                        "plain: BEGIN, the action, COMMIT"
                    ),
                )
            )
        per_write = PostgresFencedStore(server.dsn)

        def plain_new(i: int) -> None:
            with psycopg.connect(server.dsn) as conn, conn.transaction():
                conn.execute(upsert, (str(i),))

        fenced, plain = alternate(
            max(20, samples // 4),
            lambda i: per_write.write("kv", token, lambda c: c.execute(upsert, (str(i),))),
            plain_new,
        )
        rows.append(
            row(
                "postgresql transaction (new connection per write)",
                fenced,
                plain,
                connection="new per write (both; the store's default with a conninfo string)",
            )
        )
        return rows, info
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 samples")
    args = parser.parse_args(argv)
    quick = args.quick or args.smoke
    samples = 30 if quick else args.samples
    output = args.output or default_output("fenced_write", quick)
    exit_on_sigterm()
    began = time.perf_counter()
    with ensemble_for(args.hosts) as ensemble:
        machine = machine_info(ensemble)
        results = [measure_zookeeper(ensemble, samples), measure_sqlite(samples)]
        skipped = None
        try:
            pg_rows, pg_info = measure_postgres(samples)
            results.extend(pg_rows)
            machine.update(pg_info)
        except (PostgresUnavailable, ImportError) as exc:
            skipped = f"PostgreSQL skipped: {exc}"
            print(skipped, file=sys.stderr)
        print(f"{'write':<66} {'fenced ms':>10} {'plain ms':>10} {'ratio':>7}")
        for r in results:
            print(
                f"{r['name']:<66} {r['fenced_median_ms']:>10.3f} "
                f"{r['plain_median_ms']:>10.3f} {r['ratio']:>6.2f}x"
            )
        met = {r["name"]: r["ratio"] <= TARGET for r in results if not r.get("reference")}
        zk = results[0]["ratio"]
        verdict = "target met" if zk <= TARGET else "target NOT met"
        print(f"fenced ZooKeeper write: {zk:.2f}x a plain set (target <= {TARGET}x): {verdict}")
        for name, ok in met.items():
            if name != "zookeeper set":
                print(f"{name}: {'target met' if ok else 'target NOT met'} (<= {TARGET}x)")
        write_result(
            output,
            benchmark="fenced_write",
            description="fenced write vs plain write: ZooKeeper, SQLite, PostgreSQL",
            ensemble=ensemble,
            machine=machine,
            params={"samples": samples, "warmup": WARMUP, "smoke": quick},
            results=results,
            began=began,
            samples=samples,
            skipped=skipped,
            target={"max_ratio": TARGET, "met": met},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
