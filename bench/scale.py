#!/usr/bin/env python3
"""Scale: many elections on one session, and many candidates joining one election at once.

Each measurement runs in a fresh subprocess (``--worker``), so threads and peak RSS belong
to it alone; the parent starts it, reads one ``RESULT {json}`` line, and stops it by PID.

* Elections per session: one KazooClient, E elections on E fresh paths, one candidate each,
  so every election resolves to a leader. zkelect, default ``ElectionConfig`` (the session's
  2 worker threads, one timer and one callback thread), from the main thread: 10,000
  ``Election.start(wait=False)`` calls, and a loop of 2,000 plain blocking ``start()`` calls.
  zkelect-async: 10,000 ``AsyncElection``s on one event loop (the worker's main thread),
  joined with ``await asyncio.gather(*(e.start() for e in elections))``; each has led when
  its ``on_elected`` (a plain function, run on the loop) ran. kazoo: 2,000
  ``Election.run(func)`` calls, a thread each (that is how kazoo's recipe works: ``run``
  blocks while leading). Measured: time from the first start until every election
  has a leader (``on_elected`` / ``func`` called), threads and peak RSS (VmHWM) of the
  process at rest, its idle CPU with all elections held, and ZooKeeper requests per election.
* Candidates per election: C candidates (1,000) on one path, over S sessions (100), joining
  at once: one starter thread per session, released together; zkelect's ``start()`` calls
  run back to back on each; kazoo runs C threads. Measured: time to the first leader, time
  until every candidate has joined and holds its watch, ZooKeeper requests per candidate
  (``mntr`` zk_packets_received deltas over the members, net of our own four-letter words).

Targets (issue 14), in one run: the 10,000 ``start(wait=False)`` elections all led in less
time than kazoo's 2,000 with a thread each, with <= 10 threads; the loop of 2,000 blocking
``start()`` calls all led no slower than kazoo's 2,000 threads. Issue 16: the 10,000
AsyncElections all led within 1.1x the time of the 10,000 ``start(wait=False)`` (the two
run ``--join-trials`` times each, alternated; medians), with <= 10 threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLOCK_TICKS,
    BenchError,
    Children,
    Ensemble,
    base_parser,
    candidate_names,
    cpu_ticks,
    default_output,
    ensemble_for,
    exit_on_sigterm,
    machine_info,
    proc_status,
    python_command,
    started_clients,
    wait_until,
    write_result,
)
from kazoo.client import KazooClient

SESSION_TIMEOUT = 10.0
WORKER_TIMEOUT = 600.0
MAX_THREADS = 10  # issue 14: the 10,000 pipelined elections' process, at rest
ASYNC_MAX_RATIO = 1.1  # issue 16: the AsyncElections' join time <= this x start(wait=False)'s
KAZOO_VARIANT = "run(func), a thread each"
ASYNC_VARIANT = "await gather(start())"

log = logging.getLogger("bench.scale")


# --------------------------------------------------------------------------- workers


class Counter:
    def __init__(self, target: int) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.target = target
        self.done = threading.Event()

    def hit(self) -> None:
        now = time.perf_counter()
        with self._lock:
            self.count += 1
            if self.first is None:
                self.first = now
            if self.count >= self.target:
                self.last = now
                self.done.set()


def idle_cpu(seconds: float) -> float:
    """This process's CPU over ``seconds`` of rest, in clock ticks per second."""
    before = cpu_ticks(os.getpid())
    time.sleep(seconds)
    return round((cpu_ticks(os.getpid()) - before) / seconds, 3)


def supports_async() -> bool:
    """Whether this zkelect has ``zkelect.aio`` (AsyncElection)."""
    import importlib.util

    return importlib.util.find_spec("zkelect.aio") is not None


def supports_no_wait() -> bool:
    """Whether this zkelect has ``Election.start(wait=False)`` (pipelined joins)."""
    import inspect

    from zkelect import Election

    return "wait" in inspect.signature(Election.start).parameters


def worker_elections(
    impl: str, hosts: str, count: int, idle_s: float, no_wait: bool = False
) -> dict[str, Any]:
    ensemble = Ensemble(hosts)
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    client.start(timeout=30)
    base = f"/bench/scale/{impl}-{uuid.uuid4().hex[:12]}"
    counter = Counter(count)
    rest_before = proc_status()
    holders: list[Any] = []
    before = ensemble.mntr_all()
    calls = ensemble.fourlw_calls
    began = time.perf_counter()
    if impl == "zkelect":
        from zkelect import Election, ElectionConfig

        config = ElectionConfig(session_timeout=SESSION_TIMEOUT)
        for i in range(count):
            election = Election(
                client,
                f"{base}/e{i:05d}",
                candidate_id=f"c{i}",
                config=config,
                on_elected=lambda lead: counter.hit(),
            )
            if no_wait:
                election.start(wait=False)
            else:
                election.start()
            holders.append(election)
    else:
        release = threading.Event()

        def lead() -> None:
            counter.hit()
            release.wait()

        for i in range(count):
            election = client.Election(f"{base}/e{i:05d}", f"c{i}")
            thread = threading.Thread(target=election.run, args=(lead,), daemon=True)
            thread.start()
            holders.append((election, thread))
    started = time.perf_counter()
    if not counter.done.wait(WORKER_TIMEOUT):
        raise BenchError(f"only {counter.count}/{count} {impl} elections resolved")
    resolved = time.perf_counter()
    after = ensemble.mntr_all()
    own = ensemble.fourlw_calls - calls
    time.sleep(0.5)  # let in-flight watch registrations land before counting threads
    variant = "start(wait=False)" if no_wait else "start()" if impl == "zkelect" else KAZOO_VARIANT
    return {
        "impl": impl,
        "variant": variant,
        **per_session_row(count, began, started, resolved, rest_before, proc_status()),
        "requests_per_election": round(
            (after["zk_packets_received"] - before["zk_packets_received"] - own) / count, 2
        ),
        "idle_cpu_ticks_per_s": idle_cpu(idle_s),
        "idle_window_s": idle_s,
    }


def per_session_row(
    count: int,
    began: float,
    started: float,
    resolved: float,
    rest_before: dict[str, int],
    rest: dict[str, int],
) -> dict[str, Any]:
    """The figures every elections-per-session row has: times, threads, memory."""
    return {
        "elections": count,
        "sessions": 1,
        "time_to_all_resolved_s": round(resolved - began, 3),
        "start_calls_s": round(started - began, 3),
        "elections_per_s": round(count / (resolved - began), 1),
        "threads": rest["Threads"],
        "threads_before": rest_before["Threads"],
        "python_threads": threading.active_count(),
        "peak_rss_mb": round(rest["VmHWM"] / 1024, 1),
        "rss_before_mb": round(rest_before["VmRSS"] / 1024, 1),
        "rss_mb": round(rest["VmRSS"] / 1024, 1),
        "rss_per_election_kb": round((rest["VmRSS"] - rest_before["VmRSS"]) / count, 2),
    }


async def worker_async_elections(hosts: str, count: int, idle_s: float) -> dict[str, Any]:
    """``count`` AsyncElections on one session, from one event loop (this thread):
    ``await asyncio.gather(*(e.start() for e in elections))``, each on a fresh path. An
    election has led when its ``on_elected`` (a plain function: it runs on the loop) ran."""
    from zkelect import ElectionConfig
    from zkelect.aio import AsyncElection

    ensemble = Ensemble(hosts)
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    client.start(timeout=30)  # blocks the loop, before anything runs on it
    base = f"/bench/scale/zkelect-async-{uuid.uuid4().hex[:12]}"
    config = ElectionConfig(session_timeout=SESSION_TIMEOUT)
    led = 0
    all_led = asyncio.Event()

    def on_elected(lead: Any) -> None:
        nonlocal led
        led += 1
        if led >= count:
            all_led.set()

    rest_before = proc_status()
    before = ensemble.mntr_all()
    calls = ensemble.fourlw_calls
    began = time.perf_counter()
    elections = [
        AsyncElection(
            client, f"{base}/e{i:05d}", candidate_id=f"c{i}", config=config, on_elected=on_elected
        )
        for i in range(count)
    ]
    await asyncio.gather(*(e.start() for e in elections))
    started = time.perf_counter()
    try:
        await asyncio.wait_for(all_led.wait(), WORKER_TIMEOUT)
    except asyncio.TimeoutError:
        raise BenchError(f"only {led}/{count} AsyncElections led") from None
    resolved = time.perf_counter()  # as the threaded worker: when the waiter wakes
    after = ensemble.mntr_all()
    own = ensemble.fourlw_calls - calls
    await asyncio.sleep(0.5)  # let in-flight watch registrations land before counting threads
    rest = proc_status()
    ticks = cpu_ticks(os.getpid())
    await asyncio.sleep(idle_s)  # idle with every election held, the loop free to serve
    return {
        "impl": "zkelect-async",
        "variant": ASYNC_VARIANT,
        **per_session_row(count, began, started, resolved, rest_before, rest),
        "requests_per_election": round(
            (after["zk_packets_received"] - before["zk_packets_received"] - own) / count, 2
        ),
        "idle_cpu_ticks_per_s": round((cpu_ticks(os.getpid()) - ticks) / idle_s, 3),
        "idle_window_s": idle_s,
    }


def worker_join(impl: str, hosts: str, count: int, sessions: int) -> dict[str, Any]:
    ensemble = Ensemble(hosts)
    path = f"/bench/scale/join-{impl}-{uuid.uuid4().hex[:12]}"
    counter = Counter(1)
    with started_clients([hosts] * (sessions + 1), SESSION_TIMEOUT) as clients:
        observer, candidate_clients = clients[0], clients[1:]
        observer.ensure_path(path)
        watches_before = ensemble.mntr_sum("zk_watch_count")
        rest_before = proc_status()
        gate = threading.Barrier(sessions + 1)
        errors: list[BaseException] = []
        holders: list[Any] = []
        lock = threading.Lock()
        release = threading.Event()
        if impl == "zkelect":
            from zkelect import Election, ElectionConfig

            config = ElectionConfig(session_timeout=SESSION_TIMEOUT)

            def starter(s: int) -> None:
                mine = [
                    Election(
                        candidate_clients[s],
                        path,
                        candidate_id=f"c{i}",
                        config=config,
                        on_elected=lambda lead: counter.hit(),
                    )
                    for i in range(s, count, sessions)
                ]
                with lock:
                    holders.extend(mine)
                gate.wait()
                try:
                    for election in mine:
                        election.start()
                except BaseException as exc:
                    errors.append(exc)
        else:

            def lead() -> None:
                counter.hit()
                release.wait()

            def starter(s: int) -> None:
                mine = [
                    candidate_clients[s].Election(path, f"c{i}") for i in range(s, count, sessions)
                ]
                threads = [threading.Thread(target=e.run, args=(lead,), daemon=True) for e in mine]
                with lock:
                    holders.extend(zip(mine, threads, strict=True))
                gate.wait()
                for thread in threads:
                    thread.start()

        starters = [threading.Thread(target=starter, args=(s,)) for s in range(sessions)]
        for thread in starters:
            thread.start()
        before = ensemble.mntr_all()
        calls = ensemble.fourlw_calls
        gate.wait()
        began = time.perf_counter()
        for thread in starters:
            thread.join(WORKER_TIMEOUT)
        if errors:
            raise BenchError(f"a candidate failed to start: {errors[0]!r}")
        if not counter.done.wait(WORKER_TIMEOUT):
            raise BenchError("no leader")
        first = counter.first
        # Everyone joined: the path has every node and every candidate holds its one watch
        # (kazoo's leader holds none; two neighbours on one session share one server watch).
        polls = 0

        def listed() -> bool:
            nonlocal polls
            polls += 1
            return len(candidate_names(observer.get_children(path))) == count

        wait_until(listed, f"{count} candidates joining", WORKER_TIMEOUT)
        wait_until(
            lambda: ensemble.mntr_sum("zk_watch_count") - watches_before >= count - 1,
            f"{count} candidates holding their watch",
            WORKER_TIMEOUT,
        )
        settled = time.perf_counter()
        after = ensemble.mntr_all()
        own = ensemble.fourlw_calls - calls + polls  # our 4lw words and the observer's reads
        rest = proc_status()
        result = {
            "impl": impl,
            "candidates": count,
            "sessions": sessions,
            "time_to_first_leader_s": round((first or settled) - began, 4),
            "time_to_all_joined_s": round(settled - began, 3),
            "requests_per_candidate": round(
                (after["zk_packets_received"] - before["zk_packets_received"] - own) / count, 2
            ),
            "server_watches": after["zk_watch_count"] - watches_before,
            "threads": rest["Threads"],
            "threads_before": rest_before["Threads"],
            "peak_rss_mb": round(rest["VmHWM"] / 1024, 1),
        }
        release.set()
    return result


def run_worker(args: Any) -> int:
    logging.basicConfig(level=logging.ERROR)
    try:
        if args.worker == "zkelect-async-elections":
            # Not asyncio.run: its clean-up would unwind every election; we exit at once.
            loop = asyncio.new_event_loop()
            result = loop.run_until_complete(
                worker_async_elections(args.hosts, args.count, args.idle_seconds)
            )
        elif args.worker in ("zkelect-elections", "kazoo-elections"):
            result = worker_elections(
                args.worker.split("-")[0],
                args.hosts,
                args.count,
                args.idle_seconds,
                args.no_wait,
            )
        else:
            result = worker_join(args.worker.split("-")[0], args.hosts, args.count, args.sessions)
    except Exception as exc:
        sys.stdout.write(f"ERROR {' '.join(repr(exc).split())}\n")
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    # Exit at once: closing the session deletes every candidate node on the servers; no
    # need to unwind thousands of elections (or kazoo threads blocked in run()) one by one.
    os._exit(0)


# --------------------------------------------------------------------------- parent


def alternated(runs: list[Callable[[], dict[str, Any]]], trials: int) -> list[dict[str, Any]]:
    """Each of ``runs`` ``trials`` times, alternated (which goes first alternating too), so
    load from elsewhere weighs on both alike. A row is its first trial's, with its time
    until all led the median over its trials (each listed)."""
    done: list[list[dict[str, Any]]] = [[] for _ in runs]
    for k in range(trials):
        for i in range(len(runs)) if k % 2 == 0 else reversed(range(len(runs))):
            done[i].append(runs[i]())
    rows = []
    for mine in done:
        times = [t["time_to_all_resolved_s"] for t in mine]
        row = dict(mine[0])
        row["time_to_all_resolved_s"] = round(statistics.median(times), 3)
        row["elections_per_s"] = round(row["elections"] / row["time_to_all_resolved_s"], 1)
        row["trials_time_to_all_resolved_s"] = times
        rows.append(row)
    return rows


def spawn_worker(
    children: Children, ensemble: Ensemble, worker: str, *extra: str
) -> dict[str, Any]:
    print(f"{worker} {' '.join(extra)} ...", flush=True)
    child = children.start(
        python_command("scale.py", "--worker", worker, "--hosts", ensemble.hosts, *extra),
        name=worker,
    )
    try:
        line = child.expect("RESULT", timeout=WORKER_TIMEOUT)
    finally:
        child.stop()
    result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    print("  " + ", ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("Scale: elections per session and candidates per election.")
    parser.add_argument(
        "--zkelect-elections", type=int, default=10_000, help="start(wait=False) elections"
    )
    parser.add_argument(
        "--async-elections", type=int, default=10_000, help="AsyncElections, starts gathered"
    )
    parser.add_argument(
        "--blocking-elections", type=int, default=2_000, help="blocking start() elections"
    )
    parser.add_argument("--kazoo-elections", type=int, default=2_000)
    parser.add_argument(
        "--join-trials",
        type=int,
        default=2,
        help="start(wait=False) and AsyncElection runs, alternated; the median is reported",
    )
    parser.add_argument("--join-candidates", type=int, default=1_000)
    parser.add_argument("--join-sessions", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--worker", help=argparse_hidden())
    parser.add_argument("--count", type=int, default=0, help=argparse_hidden())
    parser.add_argument("--sessions", type=int, default=1, help=argparse_hidden())
    parser.add_argument("--no-wait", action="store_true", help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.join_trials < 1:
        parser.error("--join-trials must be >= 1")
    if args.worker:
        return run_worker(args)
    if args.smoke:
        args.zkelect_elections, args.blocking_elections, args.kazoo_elections = 200, 100, 100
        args.async_elections, args.join_trials = 200, 1
        args.join_candidates, args.join_sessions, args.idle_seconds = 20, 5, 1.0
    output = args.output or default_output("scale", args.smoke)
    exit_on_sigterm()
    began = time.perf_counter()
    children = Children()
    try:
        with ensemble_for(args.hosts) as ensemble:
            machine = machine_info(ensemble)
            idle = f"{args.idle_seconds:g}"

            def elections(worker: str, count: int, *extra: str) -> dict[str, Any]:
                return spawn_worker(
                    children,
                    ensemble,
                    worker,
                    "--count",
                    str(count),
                    "--idle-seconds",
                    idle,
                    *extra,
                )

            compared: list[Callable[[], dict[str, Any]]] = []
            if supports_no_wait():
                compared.append(
                    lambda: elections("zkelect-elections", args.zkelect_elections, "--no-wait")
                )
            if supports_async():  # alternated with the row it is compared with
                # A smoke run's idle window proves nothing: kept short (the test suite's time).
                brief = ("--idle-seconds", "0.3") if args.smoke else ()
                compared.append(
                    lambda: elections("zkelect-async-elections", args.async_elections, *brief)
                )
            per_session = alternated(compared, args.join_trials if len(compared) > 1 else 1)
            per_session += [
                elections("zkelect-elections", args.blocking_elections),
                elections("kazoo-elections", args.kazoo_elections),
            ]
            join = [
                spawn_worker(
                    children,
                    ensemble,
                    f"{impl}-join",
                    "--count",
                    str(args.join_candidates),
                    "--sessions",
                    str(args.join_sessions),
                )
                for impl in ("zkelect", "kazoo")
            ]
            target = verdicts(per_session)
            for line in target.pop("lines"):
                print(line)
            write_result(
                output,
                benchmark="scale",
                description=(
                    "elections per session (zkelect 10,000 start(wait=False), 10,000 "
                    "AsyncElections started with await asyncio.gather(*(e.start() ...)) on one "
                    "loop, and 2,000 blocking start() vs kazoo 2,000 threads on one session: "
                    "time to all led, threads, peak RSS) and candidates per election (1,000 "
                    "joining at once: time to first leader, requests per candidate)"
                ),
                ensemble=ensemble,
                machine=machine,
                params={
                    "zkelect_elections": args.zkelect_elections,
                    "async_elections": args.async_elections,
                    "blocking_elections": args.blocking_elections,
                    "join_trials": args.join_trials,
                    "kazoo_elections": args.kazoo_elections,
                    "join_candidates": args.join_candidates,
                    "join_sessions": args.join_sessions,
                    "session_timeout_s": SESSION_TIMEOUT,
                    "idle_window_s": args.idle_seconds,
                    "clock_ticks_per_s": CLOCK_TICKS,
                    "smoke": bool(args.smoke),
                },
                results={"elections_per_session": per_session, "join": join},
                began=began,
                target=target,
            )
    except KeyboardInterrupt:
        print("interrupted: workers and the ensemble were stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"scale benchmark failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    return 0


def verdicts(per_session: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 14's two join targets, computed from this run's rows (None: not measured)."""
    by = {(r["impl"], r["variant"]): r for r in per_session}
    nowait = by.get(("zkelect", "start(wait=False)"))
    blocking = by.get(("zkelect", "start()"))
    kazoo = next((r for r in per_session if r["impl"] == "kazoo"), None)
    pipelined = blocked = None
    lines = []
    if nowait and kazoo:
        pipelined = (
            nowait["time_to_all_resolved_s"] < kazoo["time_to_all_resolved_s"]
            and nowait["threads"] <= MAX_THREADS
        )
        lines.append(
            f"{nowait['elections']} x start(wait=False): all led in "
            f"{nowait['time_to_all_resolved_s']:.2f} s with {nowait['threads']} threads; kazoo "
            f"{kazoo['elections']} threads: {kazoo['time_to_all_resolved_s']:.2f} s (target: "
            f"less, <= {MAX_THREADS} threads): {'target met' if pipelined else 'target NOT met'}"
        )
    if blocking and kazoo:
        blocked = blocking["time_to_all_resolved_s"] <= kazoo["time_to_all_resolved_s"]
        lines.append(
            f"{blocking['elections']} x blocking start(): all led in "
            f"{blocking['time_to_all_resolved_s']:.2f} s; kazoo {kazoo['elections']} threads: "
            f"{kazoo['time_to_all_resolved_s']:.2f} s (target: no slower): "
            f"{'target met' if blocked else 'target NOT met'}"
        )
    gathered = by.get(("zkelect-async", ASYNC_VARIANT))
    async_met = None
    if gathered and nowait:
        ratio = gathered["time_to_all_resolved_s"] / nowait["time_to_all_resolved_s"]
        async_met = ratio <= ASYNC_MAX_RATIO and gathered["threads"] <= MAX_THREADS
        lines.append(
            f"{gathered['elections']} AsyncElections, starts gathered on one loop: all led in "
            f"{gathered['time_to_all_resolved_s']:.2f} s with {gathered['threads']} threads, "
            f"{ratio:.2f}x start(wait=False)'s {nowait['time_to_all_resolved_s']:.2f} s for "
            f"{nowait['elections']} (target: <= {ASYNC_MAX_RATIO}x, <= {MAX_THREADS} threads): "
            f"{'target met' if async_met else 'target NOT met'}"
        )
    return {
        "max_threads": MAX_THREADS,
        "pipelined_met": pipelined,
        "blocking_met": blocked,
        "async_max_ratio": ASYNC_MAX_RATIO,
        "async_met": async_met,
        "lines": lines,
    }


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
