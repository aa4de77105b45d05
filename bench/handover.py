#!/usr/bin/env python3
"""Handover latency: the leader resigns -> the successor starts leading (DESIGN.md §7).

One local 3-member ZooKeeper ensemble (tickTime 200 ms, loopback); results are ratios to a
*floor* measured in the same run on the same ensemble, because absolute times on a shared
machine are noise.

* zkelect: N ``Election`` objects. Per round the leader calls ``resign()`` (it re-queues at
  the back by itself, ``requeue_delay`` = 10 ms later). Measured: from just before
  ``resign()`` to the moment the successor's ``on_elected`` callback starts.
* zkelect-async: N ``zkelect.aio.AsyncElection`` objects on one event loop (a thread of
  this process), on the same sessions as zkelect's, their rounds alternated with zkelect's
  (bench/handover_zkelect.py). Measured: from just before ``await resign()`` on the loop to
  the moment the successor's ``on_elected`` coroutine starts running on the loop.
* kazoo: N ``kazoo.recipe.election.Election`` objects, each blocking a thread in
  ``run(func)``. The leader's ``func`` waits on an Event; per round it is told to return
  (which releases the lock); 10 ms later its thread calls ``run`` again (back of the queue).
  Measured: from telling the leader to return to the moment the next leader's ``func`` starts.
* curator: Apache Curator's ``LeaderLatch`` (Debian's Curator 5.x), N latches in one JVM
  (bench/java/CuratorDriver.java, compiled at run time). Per round the leader closes its
  latch; 10 ms later it re-joins with a new latch. Measured inside the JVM: from just before
  ``close()`` to the moment the next participant's ``isLeader()`` starts.
* floor (the re-reading floor): what a handover costs a recipe whose successor re-reads the
  children: one ``delete`` of an existing ephemeral node (the leader leaving) plus one
  ``get_children`` of a path with N children (the successor checking it is first), each the
  median of many synchronous kazoo round trips, taken from one client per ensemble member.
* notification (the notification floor): a ``delete`` on one session -> the data-watch
  notice on another session connected to another member: the physical limit for any
  ZooKeeper recipe. Both floors (bench/floor.py) are sampled idle first, then a few of each,
  interleaved, after every measured round of every implementation, so load from elsewhere
  on the machine weighs on them as on the handovers.

Sessions: up to ``--max-sessions`` (100) candidates each have their own ZooKeeper session
(own KazooClient / CuratorFramework). Above that, candidates share that many sessions
round-robin, for all three implementations alike (1,000 sessions of 7 threads each for
zkelect, 3 for kazoo, is more than a 2-core machine should be asked to run beside the
servers). Every implementation re-joins 10 ms after leaving, so the re-join does not compete
with the handover being measured, for all three alike.

Targets (issue 14), at every N: zkelect's median handover <= 0.85x the re-reading floor;
<= 0.8x both kazoo's and Curator's medians (at least 20% below each); <= 1.2x the
notification floor. Issue 16, at N <= 100: zkelect-async's median within +0.3 ms of zkelect's.

Run: ``python bench/handover.py [--sizes 10,100,1000] [--rounds 60]``; ``--quick`` for the
old smoke run (N=5, 5 rounds, zkelect and kazoo only); ``--smoke`` (N=5, 3 rounds, all
four). ``--impls zkelect,zkelect-async`` for the two zkelect rows alone. Results:
bench/results/handover.json.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    STEP_TIMEOUT,
    BenchError,
    Children,
    Ensemble,
    JavaProgram,
    Recorder,
    base_parser,
    curator_driver,
    default_output,
    ensemble_for,
    exit_on_sigterm,
    machine_info,
    ms,
    percentile,
    started_clients,
    wait_children,
    write_result,
)
from floor import SETTLE, Floor, FloorProbe, Notification, median
from handover_zkelect import ASYNC, THREADED, ZKELECT_IMPLS, Run, run_zkelect
from kazoo.exceptions import CancelledError

from zkelect import ZkElectError

# Issue 14's targets for zkelect's median handover, at every N, in one run.
TARGET_FLOOR_RATIO = 0.85  # <= this x the re-reading floor (delete + get_children)
TARGET_PEER_RATIO = 0.8  # <= this x kazoo's and Curator's medians (at least 20% below each)
TARGET_NOTIFICATION_RATIO = 1.2  # <= this x the notification floor
# Issue 16: zkelect-async's median handover <= zkelect's + this, at N <= ASYNC_TARGET_MAX_N.
TARGET_ASYNC_EXTRA_MS = 0.3
ASYNC_TARGET_MAX_N = 100
CLIENT_TIMEOUT = 10.0  # requested session timeout (s) of every candidate's session
REQUEUE_DELAY = 0.01  # every implementation re-joins this long after leaving (zkelect default)
IMPLEMENTATIONS = (THREADED, ASYNC, "kazoo", "curator")

log = logging.getLogger("bench.handover")


# --------------------------------------------------------------------------- kazoo


def run_kazoo(
    ensemble: Ensemble, n: int, sessions: int, rounds: int, warmup: int, probe: FloorProbe
) -> Run:
    path = f"/bench/handover/kazoo-n{n}"
    recorder = Recorder()
    run = Run()
    stopping = threading.Event()
    release = [threading.Event() for _ in range(n)]
    with started_clients([ensemble.hosts] * (sessions + 1), CLIENT_TIMEOUT) as clients:
        observer, candidate_clients = clients[0], clients[1:]
        elections = [
            candidate_clients[i % sessions].Election(path, f"cand-{i:04d}") for i in range(n)
        ]
        errors: list[BaseException] = []

        def lead(index: int) -> None:
            recorder.record(index)
            release[index].wait()
            release[index].clear()

        def contend(index: int) -> None:
            try:
                while not stopping.is_set():
                    elections[index].run(lead, index)  # returns after lead() returns
                    time.sleep(REQUEUE_DELAY)  # re-join at the back, like the others
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
            deadline = time.monotonic() + STEP_TIMEOUT
            for thread in threads:
                thread.join(timeout=max(0.1, deadline - time.monotonic()))
            stuck = [t.name for t in threads if t.is_alive()]
            if stuck:
                log.warning("%d kazoo candidate threads still running", len(stuck))
    return run


# --------------------------------------------------------------------------- Curator


def run_curator(
    ensemble: Ensemble,
    n: int,
    sessions: int,
    rounds: int,
    warmup: int,
    probe: FloorProbe,
    java: JavaProgram,
    children: Children,
    logs: Path,
) -> Run:
    path = f"/bench/handover/curator-n{n}"
    run = Run()
    argv = [
        *java.command,
        ensemble.hosts,
        path,
        str(n),
        str(sessions),
        str(int(CLIENT_TIMEOUT * 1000)),
        str(int(REQUEUE_DELAY * 1000)),
    ]
    log_file = logs / f"curator-n{n}.log"
    driver = children.start(argv, name=f"curator driver N={n}", log=log_file)
    try:
        driver.expect("READY", timeout=STEP_TIMEOUT + n * 0.05)
        with started_clients([ensemble.hosts], CLIENT_TIMEOUT) as (observer,):
            wait_children(observer, path, n)
            for round_no in range(warmup + rounds):
                driver.send("ROUND")
                line = driver.expect("SAMPLE")
                _, nanos, old, new = line.split()
                if old == new:
                    raise BenchError("the closed Curator participant was elected again at once")
                if round_no >= warmup:
                    run.samples.append(int(nanos) / 1e9)
                wait_children(observer, path, n)
                if round_no >= warmup:
                    probe.between_rounds()
                time.sleep(SETTLE)
        with suppress(Exception):
            driver.send("QUIT")
            driver.expect("CLOSED", timeout=STEP_TIMEOUT)
    except BenchError as exc:
        tail = log_file.read_text(errors="replace")[-600:] if log_file.exists() else ""
        raise BenchError(f"{exc}; driver stderr: {tail.strip()}") from None
    finally:
        driver.stop()
    return run


# --------------------------------------------------------------------------- reporting


def summarize(
    name: str, run: Run, floor: Floor, hot: Floor, notice: Notification
) -> dict[str, Any]:
    med, p9, p99 = median(run.samples), percentile(run.samples, 90), percentile(run.samples, 99)
    return {
        "implementation": name,
        "median_ms": ms(med),
        "p90_ms": ms(p9),
        "p99_ms": ms(p99),
        "median_ratio": round(med / floor.median, 3),
        "p90_ratio": round(p9 / floor.p90, 3),
        "p99_ratio": round(p99 / floor.p99, 3),
        "median_ratio_to_notification": round(med / notice.median, 3),
        "median_ratio_to_back_to_back_floor": round(med / hot.median, 3),
        "rounds": len(run.samples),
        "samples_ms": [ms(s) for s in run.samples],
        **run.extra,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    # The first table's columns are kept as in the first version of this script (its smoke
    # test parses them): ratios to the re-reading floor.
    header = f"{'implementation':<15}{'N':>5}{'median ms':>12}{'p90 ms':>10}"
    header += f"{'median/floor':>15}{'p90/floor':>12}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['implementation']:<15}{row['n']:>5}{row['median_ms']:>12.2f}"
            f"{row['p90_ms']:>10.2f}{row['median_ratio']:>14.2f}x{row['p90_ratio']:>11.2f}x"
        )
    print()
    print(
        f"{'implementation':<15}{'N':>5}{'p99 ms':>10}{'p99/floor p99':>16}"
        f"{'median/notification':>22}{'sessions':>10}"
    )
    for row in rows:
        to_notice = row.get("median_ratio_to_notification")
        print(
            f"{row['implementation']:<15}{row['n']:>5}{row['p99_ms']:>10.2f}"
            f"{row['p99_ratio']:>15.2f}x"
            + (f"{to_notice:>21.2f}x" if to_notice is not None else f"{'':>22}")
            + f"{row.get('sessions', ''):>10}"
        )


def parse_args(argv: list[str] | None) -> Any:
    parser = base_parser(
        "Leader handover latency of zkelect (threaded and asyncio), kazoo and Curator vs the "
        "ZooKeeper floor."
    )
    parser.add_argument("--sizes", default="10,100,1000", help="candidate counts")
    parser.add_argument("--rounds", type=int, default=60, help="measured rounds, N <= 100")
    parser.add_argument("--rounds-large", type=int, default=20, help="measured rounds, N > 100")
    parser.add_argument("--warmup", type=int, default=4, help="unmeasured rounds first")
    parser.add_argument(
        "--floor-samples", type=int, default=60, help="idle floor samples before the rounds"
    )
    parser.add_argument(
        "--max-sessions", type=int, default=100, help="above this N candidates share sessions"
    )
    parser.add_argument(
        "--impls", default=None, help=f"comma-separated subset of {','.join(IMPLEMENTATIONS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="old smoke run: N=5, 5 rounds, zkelect and kazoo"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.warmup, args.floor_samples = "5", 5, 1, 10
        args.impls = args.impls or "zkelect,kazoo"
    if args.smoke:
        args.sizes, args.rounds, args.rounds_large, args.warmup = "5", 3, 3, 1
        args.floor_samples = 6
    args.impl_list = (args.impls or ",".join(IMPLEMENTATIONS)).split(",")
    if not set(args.impl_list) <= set(IMPLEMENTATIONS):
        parser.error(f"--impls must be a subset of {','.join(IMPLEMENTATIONS)}")
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) < 2 or args.rounds < 1 or args.warmup < 0:
        parser.error("need sizes >= 2, --rounds >= 1 and --warmup >= 0")
    if args.output is None:  # a smoke run must not overwrite the real results
        name = "handover-quick" if args.quick else "handover"
        args.output = default_output(name, args.quick or args.smoke)
    return args


def measure_at(
    n: int,
    args: Any,
    ensemble: Ensemble,
    java: JavaProgram | None,
    children: Children,
    logs: Path,
) -> list[dict[str, Any]]:
    """Every implementation's row at one N, with both floors sampled between their rounds."""
    rounds = args.rounds if n <= 100 else args.rounds_large
    sessions = min(n, args.max_sessions)
    members = ensemble.members
    runs: dict[str, Run] = {}
    with started_clients(members, CLIENT_TIMEOUT) as floor_clients:
        probe = FloorProbe(floor_clients, n)
        probe.sample(args.floor_samples)
        for impl in args.impl_list:
            if impl in runs:
                continue  # measured with the other zkelect row, rounds alternated
            if impl in ZKELECT_IMPLS:
                pair = [i for i in args.impl_list if i in ZKELECT_IMPLS]
                print(f"N={n}: {' + '.join(pair)} ({sessions} sessions) ...", flush=True)
                runs.update(
                    run_zkelect(
                        ensemble.hosts,
                        n,
                        sessions,
                        rounds,
                        args.warmup,
                        probe,
                        pair,
                        CLIENT_TIMEOUT,
                        REQUEUE_DELAY,
                    )
                )
                continue
            print(f"N={n}: {impl} ({sessions} sessions) ...", flush=True)
            if impl == "kazoo":
                runs[impl] = run_kazoo(ensemble, n, sessions, rounds, args.warmup, probe)
            else:
                assert java is not None
                runs[impl] = run_curator(
                    ensemble, n, sessions, rounds, args.warmup, probe, java, children, logs
                )
    floor, hot, notice = probe.paced, probe.back_to_back, probe.notification
    rows = [
        {
            "implementation": "floor",
            "n": n,
            "sessions": len(members),
            **floor.summary(),
            "median_ratio": 1.0,
            "p90_ratio": 1.0,
            "p99_ratio": 1.0,
            "back_to_back": hot.summary(),
        },
        {
            "implementation": "notification",
            "n": n,
            "sessions": len(members),
            **notice.summary(floor),
            "median_ratio_to_notification": 1.0,
        },
    ]
    for impl, run in runs.items():
        rows.append({"n": n, "sessions": sessions, **summarize(impl, run, floor, hot, notice)})
    if THREADED in runs and ASYNC in runs:
        extra = over_threaded(runs[ASYNC].samples, runs[THREADED].samples)
        next(r for r in rows if r["implementation"] == ASYNC).update(extra)
    return rows


def over_threaded(async_samples: list[float], threaded: list[float]) -> dict[str, Any]:
    """zkelect-async's median over zkelect's, and the median of the per-round differences
    (their rounds alternate: round i of each ran back to back, under the same load)."""
    pairs = [a - t for a, t in zip(async_samples, threaded, strict=False)]
    return {
        "median_over_zkelect_ms": ms(median(async_samples) - median(threaded)),
        "paired_difference_median_ms": ms(median(pairs)) if pairs else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    children = Children()
    try:
        with (
            ensemble_for(args.hosts) as ensemble,
            tempfile.TemporaryDirectory(prefix="zkelect-bench-") as logs,
        ):
            machine = machine_info(ensemble)
            print(f"ensemble: {ensemble.hosts}, ZooKeeper {machine['zookeeper']}", flush=True)
            java_ctx = curator_driver() if "curator" in args.impl_list else None
            java = java_ctx.__enter__() if java_ctx is not None else None
            try:
                for n in args.size_list:
                    rows += measure_at(n, args, ensemble, java, children, Path(logs))
            finally:
                children.stop_all()
                if java_ctx is not None:
                    java_ctx.__exit__(None, None, None)
            target = verdicts(rows)
            print()
            print(
                "handover: leader resigns -> successor starts leading; floor = delete + "
                "get_children; notification = delete -> watch notice on another member"
            )
            print_table(rows)
            print()
            for line in target["lines"]:
                print(line)
            write_result(
                args.output,
                benchmark="handover",
                description=(
                    "leader resigns -> successor starts leading (zkelect: resign() -> "
                    "on_elected; zkelect-async: await resign() on the loop -> the successor's "
                    "on_elected coroutine starts on the loop, rounds alternated with "
                    "zkelect's on the same sessions; kazoo: leader func told to return -> "
                    "next func starts; curator: LeaderLatch.close() -> next isLeader()); "
                    "floor = median delete + median get_children with N children (the "
                    "re-reading floor); "
                    "notification = delete on one session -> data-watch notice on another "
                    "session on another member (the notification floor); same run, same "
                    "ensemble, sampled interleaved"
                ),
                ensemble=ensemble,
                machine=machine,
                params={
                    "sizes": args.size_list,
                    "rounds": args.rounds,
                    "rounds_large": args.rounds_large,
                    "warmup_rounds": args.warmup,
                    "floor_idle_samples": args.floor_samples,
                    "floor_samples_after_each_measured_round": 3,
                    "notification_samples_after_each_measured_round": 3,
                    "settle_s": SETTLE,
                    "requeue_delay_s": REQUEUE_DELAY,
                    "client_session_timeout_s": CLIENT_TIMEOUT,
                    "max_sessions": args.max_sessions,
                    "implementations": args.impl_list,
                    "quick": bool(args.quick),
                    "smoke": bool(args.smoke),
                },
                results=rows,
                began=began,
                target={
                    "zkelect_median_ratio_max": TARGET_FLOOR_RATIO,
                    "zkelect_median_to_peers_max": TARGET_PEER_RATIO,
                    "zkelect_median_to_notification_max": TARGET_NOTIFICATION_RATIO,
                    "met": target["met"],
                    "below_peers": target["below_peers"],
                    "near_notification": target["near_notification"],
                    "async_extra_max_ms": TARGET_ASYNC_EXTRA_MS,
                    "async_target_max_n": ASYNC_TARGET_MAX_N,
                    "async_within": target["async_within"],
                },
            )
    except KeyboardInterrupt:
        print(
            "interrupted: clients, threads, processes and the ensemble were stopped",
            file=sys.stderr,
        )
        return 130
    except (BenchError, ZkElectError) as exc:
        print(f"handover benchmark failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 14's three targets per N, each computed from this run's rows."""
    met: dict[str, bool] = {}
    below: dict[str, bool] = {}
    near: dict[str, bool] = {}
    lines: list[str] = []
    for row in rows:
        if row["implementation"] == "floor":
            hot_ms = row["back_to_back"]["median_ms"]
            others = ", ".join(
                f"{r['implementation']} {r['median_ratio_to_back_to_back_floor']:.2f}x"
                for r in rows
                if r["n"] == row["n"] and "median_ratio_to_back_to_back_floor" in r
            )
            lines.append(
                f"reference, N={row['n']}: back-to-back floor (no pause before the delete) "
                f"{hot_ms:.2f} ms; medians over it: {others}"
            )
    for row in rows:
        if row["implementation"] != "zkelect":
            continue
        n = str(row["n"])
        met[n] = row["median_ratio"] <= TARGET_FLOOR_RATIO
        near[n] = row["median_ratio_to_notification"] <= TARGET_NOTIFICATION_RATIO
        lines.append(
            f"N={n}: zkelect median {row['median_ratio']:.2f}x floor (the re-reading floor; "
            f"target <= {TARGET_FLOOR_RATIO}x): {met_text(met[n])}"
        )
        lines.append(
            f"N={n}: zkelect median {row['median_ratio_to_notification']:.2f}x the "
            f"notification floor (target <= {TARGET_NOTIFICATION_RATIO}x): {met_text(near[n])}"
        )
        peers = [
            r for r in rows if r["n"] == row["n"] and r["implementation"] in ("kazoo", "curator")
        ]
        if peers:
            below[n] = all(row["median_ms"] <= TARGET_PEER_RATIO * p["median_ms"] for p in peers)
            ratios = ", ".join(
                f"{p['implementation']}'s {row['median_ms'] / p['median_ms']:.2f}x" for p in peers
            )
            lines.append(
                f"N={n}: zkelect median over {ratios} (target <= {TARGET_PEER_RATIO}x each): "
                f"{met_text(below[n])}"
            )
    within, async_lines = async_verdicts(rows)
    return {
        "met": met,
        "below_peers": below,
        "near_notification": near,
        "async_within": within,
        "lines": lines + async_lines,
    }


def async_verdicts(rows: list[dict[str, Any]]) -> tuple[dict[str, bool], list[str]]:
    """Issue 16's target per N <= 100: zkelect-async's median <= zkelect's + 0.3 ms."""
    within: dict[str, bool] = {}
    lines: list[str] = []
    for row in rows:
        if row["implementation"] != ASYNC or row.get("median_over_zkelect_ms") is None:
            continue
        n, extra = str(row["n"]), row["median_over_zkelect_ms"]
        text = (
            f"N={n}: zkelect-async median {row['median_ms']:.2f} ms, {extra:+.2f} ms over "
            f"zkelect's (per-round differences: median {row['paired_difference_median_ms']:+.2f}"
            f" ms; target <= +{TARGET_ASYNC_EXTRA_MS} ms at N <= {ASYNC_TARGET_MAX_N}): "
        )
        if row["n"] <= ASYNC_TARGET_MAX_N:
            within[n] = extra <= TARGET_ASYNC_EXTRA_MS
            lines.append(text + met_text(within[n]))
        else:
            lines.append(text + "no target at this N")
    return within, lines


def met_text(ok: bool) -> str:
    return "target met" if ok else "target NOT met"


if __name__ == "__main__":
    raise SystemExit(main())
