#!/usr/bin/env python3
"""Per-shard leaders at scale: zkelect's 10,000 elections on one session vs kazoo's Election.

    python recipes/shard_leaders/bench_scale.py            # starts a local 3-member ensemble
    python recipes/shard_leaders/bench_scale.py --quick    # 1,000 vs 200, for tests

Each side runs in its own subprocess (``--worker``) so that its thread count and peak RSS
(VmHWM) are its own. zkelect: one KazooClient, N elections joined with start(wait=False)
(recipe shard_leaders.py). kazoo: M ``client.Election(path).run(func)``, a thread each.
Reported: seconds from the first start until every election has a leader, threads
(threading.active_count and /proc/self/status Threads) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import shard_leaders  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402


def proc_status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Threads", "VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0])
    return fields


def worker(impl: str, hosts: str, count: int) -> dict[str, object]:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    root = f"/bench/shard_leaders/{impl}-{uuid.uuid4().hex[:8]}"
    lock, led, done = threading.Lock(), [0], threading.Event()

    def hit() -> None:
        with lock:
            led[0] += 1
            if led[0] == count:
                done.set()

    began = time.perf_counter()
    if impl == "zkelect":
        shards = shard_leaders.ShardLeaders(client, count, "bench", root=root)
        shards.start()
        ok = shards.all_led.wait(600)
        led[0] = len(shards.leading())
    else:
        release = threading.Event()

        def lead() -> None:
            hit()
            release.wait()

        for i in range(count):
            election = client.Election(shard_leaders.shard_path(root, i), "bench")
            threading.Thread(target=election.run, args=(lead,), daemon=True).start()
        ok = done.wait(600)
    elapsed = time.perf_counter() - began
    status = proc_status()
    return {
        "impl": impl,
        "elections": count,
        "all_led": ok,
        "led": led[0],
        "time_to_all_led_s": round(elapsed, 3),
        "threads_active_count": threading.active_count(),
        "threads_proc": status["Threads"],
        "peak_rss_mib": round(status["VmHWM"] / 1024, 1),
    }


def run_worker(impl: str, hosts: str, count: int) -> dict[str, object]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", impl, "--hosts", hosts, "--count", str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"{impl} worker gave no result (exit {proc.returncode})")
    result: dict[str, object] = json.loads(lines[-1][7:])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", help="an existing ensemble (default: start a local one)")
    parser.add_argument("--zkelect-elections", type=int, default=10_000)
    parser.add_argument("--kazoo-elections", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="1,000 vs 200")
    parser.add_argument("--worker", choices=["zkelect", "kazoo"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.hosts, args.count)), flush=True)
        os._exit(0)  # kazoo's side has thousands of threads blocked in run()
    if args.quick:
        args.zkelect_elections, args.kazoo_elections = 1_000, 200
    ensemble = None
    hosts = args.hosts
    if hosts is None:
        from zkelect.testing.ensemble import LocalEnsemble

        ensemble = LocalEnsemble(3).start()
        hosts = ensemble.hosts
    try:
        results = [
            run_worker("zkelect", hosts, args.zkelect_elections),
            run_worker("kazoo", hosts, args.kazoo_elections),
        ]
    finally:
        if ensemble is not None:
            ensemble.stop()
    print(
        f"{'':10} {'elections':>9} {'all led (s)':>11} {'threads':>8} {'/proc':>6} {'peak RSS':>9}"
    )
    for r in results:
        print(
            f"{r['impl']:10} {r['elections']:>9} {r['time_to_all_led_s']:>11} "
            f"{r['threads_active_count']:>8} {r['threads_proc']:>6} {r['peak_rss_mib']:>6} MiB"
        )
    print("JSON " + json.dumps(results))
    return 0 if all(r["all_led"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
