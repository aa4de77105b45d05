"""What fencing costs: a fenced ZooKeeper write against a plain one, measured in one run.

A fenced write is a multi-op transaction (check our candidate node, then set) instead of
a plain set; both go through the ZooKeeper leader and a quorum, so the check should add
little. Samples alternate fenced and plain on the same session, so load on the machine
weighs on both alike. Also: a fenced SQLite write against a plain SQLite transaction.

    python bench/fenced_write.py [--samples 400] [--quick]

Target (issue 3): fenced ZooKeeper median at most 1.2x the plain median.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, FencingToken, SQLiteFencedStore
from zkelect.ensemble import LocalEnsemble

TARGET = 1.2


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, fenced: list[float], plain: list[float]) -> dict[str, Any]:
    return {
        "name": name,
        "fenced_median_ms": statistics.median(fenced) * 1000,
        "plain_median_ms": statistics.median(plain) * 1000,
        "fenced_p90_ms": percentile(fenced, 0.9) * 1000,
        "plain_p90_ms": percentile(plain, 0.9) * 1000,
        "ratio": statistics.median(fenced) / statistics.median(plain),
        "samples": len(fenced),
    }


def measure_zookeeper(ensemble: LocalEnsemble, samples: int) -> dict[str, Any]:
    client = KazooClient(hosts=ensemble.hosts, timeout=10)
    client.start(timeout=30)
    election = Election(
        client,
        "/bench/fence/election",
        candidate_id="bench",
        config=ElectionConfig(session_timeout=10),
    )
    try:
        election.start()
        lead = election.wait_for_leadership(10)
        assert lead is not None, "not elected"
        client.ensure_path("/bench/fence/data")
        fenced: list[float] = []
        plain: list[float] = []
        for i in range(samples + 20):
            value = str(i).encode()
            start = time.perf_counter()
            lead.set_data("/bench/fence/data", value)
            middle = time.perf_counter()
            client.set("/bench/fence/data", value)
            end = time.perf_counter()
            if i >= 20:  # warm-up excluded
                fenced.append(middle - start)
                plain.append(end - middle)
        return summary("zookeeper set", fenced, plain)
    finally:
        election.stop()
        client.stop()
        client.close()


def measure_sqlite(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = SQLiteFencedStore(db)
        token = FencingToken(0x100000004, "/bench", "bench", 1)
        setup = sqlite3.connect(db)
        setup.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
        setup.commit()
        setup.close()

        def write(conn: sqlite3.Connection, value: str) -> None:
            conn.execute("INSERT OR REPLACE INTO kv VALUES ('x', ?)", (value,))

        fenced: list[float] = []
        plain: list[float] = []
        for i in range(samples + 20):
            start = time.perf_counter()
            store.write("kv", token, lambda conn, v=str(i): write(conn, v))
            middle = time.perf_counter()
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            write(conn, str(i))
            conn.execute("COMMIT")
            conn.close()
            end = time.perf_counter()
            if i >= 20:
                fenced.append(middle - start)
                plain.append(end - middle)
        return summary("sqlite transaction", fenced, plain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 samples")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    samples = 30 if args.quick else args.samples
    with LocalEnsemble(3, tick_time_ms=200) as ensemble:
        results = [measure_zookeeper(ensemble, samples)]
    results.append(measure_sqlite(samples))
    print(f"{'write':<20} {'fenced ms':>10} {'plain ms':>10} {'ratio':>7}")
    for row in results:
        print(
            f"{row['name']:<20} {row['fenced_median_ms']:>10.3f} "
            f"{row['plain_median_ms']:>10.3f} {row['ratio']:>6.2f}x"
        )
    zk = results[0]["ratio"]
    verdict = "target met" if zk <= TARGET else "target NOT met"
    print(f"fenced ZooKeeper write: {zk:.2f}x a plain set (target <= {TARGET}x): {verdict}")
    output = args.output or (
        Path(__file__).parent / "results" / ("tmp" if args.quick else "") / "fenced_write.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"samples": samples, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
