#!/usr/bin/env python3
"""Handover latency: the leader resigns -> the successor starts leading (DESIGN.md §7).

Everything runs in one process against one local 3-member ZooKeeper ensemble (tickTime
200 ms), and the results are reported as ratios to a *floor* measured in the same run on
the same ensemble, because absolute times on a shared machine are noise.

* zkelect: N ``Election`` objects, each on its own KazooClient (own session). Per round the
  leader calls ``resign()`` (it re-queues at the back by itself). Measured: from just
  before ``resign()`` is called to the moment the successor's ``on_elected`` callback starts.
* kazoo: N ``kazoo.recipe.election.Election`` objects, each on its own client, each
  blocking a thread in ``run(func)``. The leader's ``func`` waits on an Event; per round it
  is told to return (which releases the lock) and its thread calls ``run`` again (back of
  the queue). Measured: from telling the leader to return to the moment the next leader's
  ``func`` starts.
* floor: what any handover must cost at least: one ``delete`` of an existing ephemeral node
  (the leader leaving) plus one ``get_children`` of a path with N children (the successor
  checking it is first), each the median of many synchronous kazoo round trips, taken from
  one client per ensemble member so the mix of members matches the candidates'. Sampled
  idle first, then a few samples after every measured round of both implementations, so
  load from elsewhere on the machine weighs on the floor as on the handovers.

Target (DESIGN §7): zkelect's median handover <= 1.3x the floor.

Run: ``make bench`` or ``python bench/handover.py [--sizes 10,100] [--rounds 30]``;
``--quick`` for a smoke run (N=5, 5 rounds). Results: bench/results/handover.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

import kazoo  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import CancelledError  # noqa: E402

from zkelect import Election, Leadership, ZkElectError  # noqa: E402
from zkelect.candidate import election_order  # noqa: E402
from zkelect.ensemble import LocalEnsemble  # noqa: E402

TARGET_RATIO = 1.3
TICK_MS = 200
MIN_SESSION_MS = 400
MAX_SESSION_MS = 20_000
CLIENT_TIMEOUT = 10.0  # requested session timeout (s); generous: 2 cores, up to 100 clients
STEP_TIMEOUT = 15.0  # any single wait (a handover, clients connecting) fails after this
SETTLE = 0.02  # quiet time between rounds, after the queue is whole again

log = logging.getLogger("bench.handover")


class BenchError(Exception):
    """Something in the benchmark did not happen in time (reported in one line)."""


# --------------------------------------------------------------------------- statistics


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p90(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[8]


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


# --------------------------------------------------------------------------- clients


@contextmanager
def started_clients(hosts: Sequence[str]) -> Iterator[list[KazooClient]]:
    """One started KazooClient per entry of ``hosts`` (connected in parallel); all stopped
    and closed on exit, whatever happens."""
    clients = [KazooClient(hosts=h, timeout=CLIENT_TIMEOUT) for h in hosts]
    try:
        events = [client.start_async() for client in clients]
        deadline = time.monotonic() + STEP_TIMEOUT + len(clients) * 0.1
        for client, event in zip(clients, events, strict=True):
            event.wait(max(0.0, deadline - time.monotonic()))
            if not client.connected:
                raise BenchError(f"a client did not connect to {client.hosts} in time")
        yield clients
    finally:
        for client in clients:
            with suppress(Exception):
                client.stop()
            with suppress(Exception):
                client.close()


def wait_children(client: KazooClient, path: str, count: int) -> None:
    """Poll until ``path`` has ``count`` children (the queue is whole again)."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while len(client.get_children(path)) != count:
        if time.monotonic() > deadline:
            raise BenchError(f"{path} did not get back to {count} candidates in time")
        time.sleep(0.002)


class Recorder:
    """Where the callbacks (other threads) note who started leading, and when."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[tuple[int, float]] = []  # (candidate index, perf_counter)

    def record(self, index: int) -> None:
        now = time.perf_counter()  # first thing: this is the end of the measurement
        with self._cond:
            self.events.append((index, now))
            self._cond.notify_all()

    def count(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_beyond(self, mark: int, what: str) -> tuple[int, float]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events) > mark, STEP_TIMEOUT):
                raise BenchError(f"no new leader within {STEP_TIMEOUT:g}s ({what})")
            return self.events[mark]


# --------------------------------------------------------------------------- the floor


@dataclass
class Floor:
    delete: list[float] = field(default_factory=list)
    children: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.delete) + median(self.children)

    @property
    def p90(self) -> float:
        """p90 of (delete + get_children) pairs taken together (not a sum of p90s)."""
        return p90([d + c for d, c in zip(self.delete, self.children, strict=True)])

    def summary(self) -> dict[str, Any]:
        return {
            "median_ms": ms(self.median),
            "p90_ms": ms(self.p90),
            "delete_median_ms": ms(median(self.delete)),
            "delete_p90_ms": ms(p90(self.delete)),
            "get_children_median_ms": ms(median(self.children)),
            "get_children_p90_ms": ms(p90(self.children)),
            "samples_per_op": len(self.delete),
        }


class FloorProbe:
    """Samples the floor: one client per ensemble member, a path with N ephemeral children.

    A sample is what a handover minimally does, at a handover's pace: after the same
    quiet time the rounds have (``SETTLE``), delete an ephemeral node, then at once read
    the N children. Samples are taken in an idle batch first, then a few after every
    measured round of both implementations, so load from elsewhere on the machine weighs
    on the floor as on the handovers. A *back-to-back* variant (create, delete at once,
    no pause) is kept for reference only: a write right after another is faster than one
    after a pause, which is not the situation a handover is in.
    """

    def __init__(self, clients: list[KazooClient], n: int) -> None:
        self._clients = clients
        self._n = n
        self._base = f"/bench/floor/n{n}"
        self.paced = Floor()
        self.back_to_back = Floor()
        self._turn = 0
        owner = clients[0]
        owner.ensure_path(f"{self._base}/children")
        owner.ensure_path(f"{self._base}/doomed")
        for _ in range(n):
            owner.create(f"{self._base}/children/c-", b"x" * 8, ephemeral=True, sequence=True)
        for _ in range(max(5, len(clients) * 3)):  # warm-up, not kept
            self._one(pause=0.0, into=None)

    def _one(self, pause: float, into: Floor | None) -> None:
        client = self._clients[self._turn % len(self._clients)]
        self._turn += 1
        node = client.create(f"{self._base}/doomed/d-", ephemeral=True, sequence=True)
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        client.delete(node)
        deleted = time.perf_counter()
        got = client.get_children(f"{self._base}/children")
        listed = time.perf_counter()
        if len(got) != self._n:
            raise BenchError(f"floor path has {len(got)} children, expected {self._n}")
        if into is not None:
            into.delete.append(deleted - started)
            into.children.append(listed - deleted)

    def sample(self, count: int) -> None:
        """``count`` paced samples (and as many back-to-back ones), rotating over members."""
        for _ in range(count):
            self._one(pause=SETTLE, into=self.paced)
            self._one(pause=0.0, into=self.back_to_back)

    def between_rounds(self) -> None:
        self.sample(len(self._clients))


# --------------------------------------------------------------------------- zkelect


@dataclass
class Run:
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def run_zkelect(
    ensemble: LocalEnsemble, n: int, rounds: int, warmup: int, probe: FloorProbe
) -> Run:
    path = f"/bench/handover/zkelect-n{n}"
    recorder = Recorder()
    run = Run()
    resign_calls: list[float] = []
    with started_clients([ensemble.hosts] * (n + 1)) as clients:
        observer, candidate_clients = clients[0], clients[1:]
        elections: list[Election] = []

        def elected(index: int) -> Callable[[Leadership], None]:
            def on_elected(lead: Leadership) -> None:
                recorder.record(index)

            return on_elected

        try:
            for index, client in enumerate(candidate_clients):
                election = Election(
                    client, path, candidate_id=f"cand-{index:03d}", on_elected=elected(index)
                )
                elections.append(election)
                election.start()
            recorder.wait_beyond(0, "first zkelect leader")
            wait_children(observer, path, n)
            for round_no in range(warmup + rounds):
                mark = recorder.count()
                leader, _ = recorder.events[-1]
                if not elections[leader].is_leader:
                    raise BenchError(f"candidate {leader} was elected but does not lead")
                started = time.perf_counter()
                if not elections[leader].resign():
                    raise BenchError(f"candidate {leader} refused to resign")
                resigned = time.perf_counter()
                successor, at = recorder.wait_beyond(mark, "zkelect handover")
                if successor == leader:
                    raise BenchError("the resigned leader was elected again at once")
                if round_no >= warmup:
                    run.samples.append(at - started)
                    resign_calls.append(resigned - started)
                wait_children(observer, path, n)
                if round_no >= warmup:
                    probe.between_rounds()
                time.sleep(SETTLE)
        finally:
            stop_in_queue_order(elections, observer, path)
    run.extra["resign_call_median_ms"] = ms(median(resign_calls)) if resign_calls else None
    return run


def stop_in_queue_order(elections: list[Election], observer: KazooClient, path: str) -> None:
    """Stop the last in the queue first, so no stop wakes anybody (and nobody is elected)."""
    by_id = {e.candidate_id: e for e in elections}
    order: list[Election] = []
    with suppress(Exception):
        for node in election_order(observer.get_children(path)):
            data, _ = observer.get(f"{path}/{node.name}")
            election = by_id.pop(bytes(data).decode(), None)
            if election is not None:
                order.append(election)
    order = list(reversed(order)) + list(by_id.values())
    for election in order:
        try:
            election.stop()
        except ZkElectError as exc:
            log.warning("stopping %s: %s", election.candidate_id, exc)


# --------------------------------------------------------------------------- kazoo


def run_kazoo(ensemble: LocalEnsemble, n: int, rounds: int, warmup: int, probe: FloorProbe) -> Run:
    path = f"/bench/handover/kazoo-n{n}"
    recorder = Recorder()
    run = Run()
    stopping = threading.Event()
    release = [threading.Event() for _ in range(n)]
    with started_clients([ensemble.hosts] * (n + 1)) as clients:
        observer, candidate_clients = clients[0], clients[1:]
        elections = [c.Election(path, f"cand-{i:03d}") for i, c in enumerate(candidate_clients)]
        errors: list[BaseException] = []

        def lead(index: int) -> None:
            recorder.record(index)
            release[index].wait()
            release[index].clear()

        def contend(index: int) -> None:
            try:
                while not stopping.is_set():
                    elections[index].run(lead, index)  # returns after lead() returns
            except CancelledError:
                pass
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [
            threading.Thread(target=contend, args=(i,), name=f"kazoo-cand-{i}", daemon=True)
            for i in range(n)
        ]
        try:
            for thread in threads:
                thread.start()
            recorder.wait_beyond(0, "first kazoo leader")
            wait_children(observer, path, n)
            for round_no in range(warmup + rounds):
                if errors:
                    raise BenchError(f"a kazoo candidate failed: {errors[0]!r}")
                mark = recorder.count()
                leader, _ = recorder.events[-1]
                started = time.perf_counter()
                release[leader].set()
                successor, at = recorder.wait_beyond(mark, "kazoo handover")
                if successor == leader:
                    raise BenchError("the released kazoo leader was elected again at once")
                if round_no >= warmup:
                    run.samples.append(at - started)
                wait_children(observer, path, n)
                if round_no >= warmup:
                    probe.between_rounds()
                time.sleep(SETTLE)
        finally:
            stopping.set()
            for election in elections:
                with suppress(Exception):
                    election.cancel()
            for event in release:
                event.set()
            for thread in threads:
                thread.join(timeout=STEP_TIMEOUT)
            stuck = [t.name for t in threads if t.is_alive()]
            if stuck:
                log.warning("kazoo candidate threads still running: %s", ", ".join(stuck))
    return run


# --------------------------------------------------------------------------- reporting


def summarize(name: str, run: Run, floor: Floor, hot: Floor) -> dict[str, Any]:
    med, p = median(run.samples), p90(run.samples)
    return {
        "implementation": name,
        "median_ms": ms(med),
        "p90_ms": ms(p),
        "median_ratio": round(med / floor.median, 3),
        "p90_ratio": round(p / floor.median, 3),
        "median_ratio_to_back_to_back_floor": round(med / hot.median, 3),
        "rounds": len(run.samples),
        "samples_ms": [ms(s) for s in run.samples],
        **run.extra,
    }


def zookeeper_version(ensemble: LocalEnsemble) -> str:
    try:
        reply = ensemble.four_letter(0, "srvr")
    except ZkElectError as exc:
        return f"unknown ({exc})"
    for line in reply.splitlines():
        if line.lower().startswith("zookeeper version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'implementation':<15}{'N':>5}{'median ms':>12}{'p90 ms':>10}"
    header += f"{'median/floor':>15}{'p90/floor':>12}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['implementation']:<15}{row['n']:>5}{row['median_ms']:>12.2f}"
            f"{row['p90_ms']:>10.2f}{row['median_ratio']:>14.2f}x{row['p90_ratio']:>11.2f}x"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Leader handover latency of zkelect and kazoo vs the ZooKeeper floor."
    )
    parser.add_argument("--sizes", default="10,100", help="candidate counts (default 10,100)")
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds per size")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    parser.add_argument(
        "--floor-samples", type=int, default=60, help="idle floor samples before the rounds"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: N=5, 5 rounds")
    parser.add_argument("--output", type=Path, help="JSON results file")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.warmup, args.floor_samples = "5", 5, 1, 10
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) < 2 or args.rounds < 1 or args.warmup < 0:
        parser.error("need sizes >= 2, --rounds >= 1 and --warmup >= 0")
    if args.output is None:  # a smoke run must not overwrite the real results
        name = "tmp/handover-quick.json" if args.quick else "handover.json"
        args.output = ROOT / "bench" / "results" / name
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        with LocalEnsemble(
            3,
            tick_time_ms=TICK_MS,
            min_session_timeout_ms=MIN_SESSION_MS,
            max_session_timeout_ms=MAX_SESSION_MS,
        ) as ensemble:
            zk_version = zookeeper_version(ensemble)
            pids = [ensemble.pid(i) for i in range(ensemble.size)]
            print("ensemble pids: " + " ".join(str(pid) for pid in pids if pid), flush=True)
            print(
                f"ensemble: 3 members on 127.0.0.1, tickTime {TICK_MS} ms, ZooKeeper {zk_version}"
            )
            print(
                f"rounds per size: {args.rounds} measured after {args.warmup} warm-up; "
                f"cpus: {os.cpu_count()}; python {platform.python_version()}; "
                f"kazoo {kazoo.version.__version__}"
            )
            for n in args.size_list:
                members = [ensemble.member_hosts(i) for i in range(ensemble.size)]
                with started_clients(members) as floor_clients:
                    probe = FloorProbe(floor_clients, n)
                    probe.sample(args.floor_samples)
                    print(f"N={n}: zkelect ...", flush=True)
                    zk = run_zkelect(ensemble, n, args.rounds, args.warmup, probe)
                    print(f"N={n}: kazoo ...", flush=True)
                    kz = run_kazoo(ensemble, n, args.rounds, args.warmup, probe)
                floor, hot = probe.paced, probe.back_to_back
                rows.append(
                    {
                        "implementation": "floor",
                        "n": n,
                        **floor.summary(),
                        "median_ratio": 1.0,
                        "p90_ratio": round(floor.p90 / floor.median, 3),
                        "back_to_back": hot.summary(),
                    }
                )
                rows.append({"n": n, **summarize("zkelect", zk, floor, hot)})
                rows.append({"n": n, **summarize("kazoo", kz, floor, hot)})
    except KeyboardInterrupt:
        print("interrupted: clients, threads and the ensemble were stopped", file=sys.stderr)
        return 130
    except (BenchError, ZkElectError) as exc:
        print(f"handover benchmark failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1

    print()
    print("handover: leader resigns -> successor starts leading; floor = delete + get_children")
    print_table(rows)
    print()
    for row in rows:
        if row["implementation"] == "floor":
            hot_ms = row["back_to_back"]["median_ms"]
            others = ", ".join(
                f"{r['implementation']} {r['median_ratio_to_back_to_back_floor']:.2f}x"
                for r in rows
                if r["n"] == row["n"] and r["implementation"] != "floor"
            )
            print(
                f"reference, N={row['n']}: back-to-back floor (no pause before the delete) "
                f"{hot_ms:.2f} ms; medians over it: {others}"
            )
    met: dict[str, bool] = {}
    for row in rows:
        if row["implementation"] != "zkelect":
            continue
        ok = row["median_ratio"] <= TARGET_RATIO
        met[str(row["n"])] = ok
        verdict = "target met" if ok else "target NOT met"
        print(
            f"N={row['n']}: zkelect median {row['median_ratio']:.2f}x floor "
            f"(target <= {TARGET_RATIO}x): {verdict}"
        )
    elapsed = time.perf_counter() - began
    result = {
        "benchmark": "handover",
        "description": (
            "leader resigns -> successor starts leading (zkelect: resign() -> on_elected; "
            "kazoo: leader func told to return -> next func starts); floor = median delete "
            "+ median get_children with N children, same run, same ensemble"
        ),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(elapsed, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "kazoo": kazoo.version.__version__,
            "zookeeper": zk_version,
        },
        "ensemble": {
            "size": 3,
            "tick_time_ms": TICK_MS,
            "min_session_timeout_ms": MIN_SESSION_MS,
            "max_session_timeout_ms": MAX_SESSION_MS,
            "client_session_timeout_s": CLIENT_TIMEOUT,
            "loopback": True,
        },
        "params": {
            "sizes": args.size_list,
            "rounds": args.rounds,
            "warmup_rounds": args.warmup,
            "floor_idle_samples": args.floor_samples,
            "floor_samples_after_each_measured_round": 3,
            "settle_s": SETTLE,
            "quick": args.quick,
        },
        "target": {"zkelect_median_ratio_max": TARGET_RATIO, "met": met},
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {args.output} ({elapsed:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
