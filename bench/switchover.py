#!/usr/bin/env python3
"""Planned switchover (issue 17): the request -> the chosen candidate's first fenced write,
with the drain shown apart, beside a plain resign handover measured in the same run.

N in-process ``Election``s on one path (N = 3 and 10), each on its own session, and an
operator's session (``connected_session``, as ``zkelect switchover`` opens) that calls
``request_switchover`` (zkelect/_election/switchover_request.py). Every candidate's
``on_elected`` makes its first fenced write at once (``lead.set_data`` on a data node beside
the election: a multi-op that checks the new leader's node, then sets), and its
``on_draining`` either returns at once (*no-op drain*) or sleeps 50 ms (*50 ms drain*: leader
work that takes its time to stop). Rounds alternate five kinds, which goes first rotating
every round so that load weighs on all alike:

* switchover to the **next in line** (``to=None``), no-op drain and 50 ms drain;
* switchover to the **last in line** (``to=`` its candidate id: the N - 2 candidates ahead
  of it step back first, in order), no-op drain and 50 ms drain;
* **resign**: the leader's ``resign()``; the next in line leads (today's handover, undrained:
  the reference the ratios are taken to).

Measured per round on one clock (``time.perf_counter``; everything is in this process), from
just before the request (or ``resign()``): **accepted**, the requester's ``on_step`` sees the
leader's ``accepted``; **drain**, how long the old leader's ``on_draining`` ran (and the
requester's ``drain_seconds``: from ``draining`` to the old node's deletion, as it saw them);
**elected**, the chosen candidate's ``on_elected`` starts; **first fenced write**, its
``lead.set_data`` has committed. Breakdown (medians): request -> accepted -> ready (the
step-backs) -> draining -> the drain returned -> elected -> written.

Checked every round (the report's verdict): the chosen candidate led, nobody else led in
between, its epoch is higher than the old leader's, and the old leader's ``on_draining`` had
returned before the new leader's ``on_elected`` started (drained before the node went). A
refused or failed switchover is recorded (its error) and counted against the verdict.

Run: ``python bench/switchover.py [--sizes 3,10] [--rounds 20]``; ``--smoke`` (N = 3, 2
rounds). Results: bench/results/switchover.json.
"""

from __future__ import annotations

import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    STEP_TIMEOUT,
    BenchError,
    base_parser,
    default_output,
    describe,
    ensemble_for,
    exit_on_sigterm,
    machine_info,
    ms,
    started_clients,
    wait_children,
    wait_until,
    write_result,
)
from handover_zkelect import stop_in_queue_order
from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, LeaderInfo, Leadership, NoopRecorder, ZkElectError
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect._election.switchover_request import SwitchoverResult, request_switchover
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.tools import connected_session

__all__ = ["KINDS", "Kind", "main"]

CLIENT_TIMEOUT = 10.0  # requested session timeout (s) of every session (zkelect's default)
REQUEUE_DELAY = 0.01  # zkelect's default: a leaver re-joins this long after leaving
DRAIN_50MS = 0.05
SETTLE = 0.02  # quiet time between rounds, once the queue is whole again
BY = "bench/switchover.py"

log = logging.getLogger("bench.switchover")


@dataclass(frozen=True)
class Kind:
    """One kind of round: a switchover (drain, target) or the plain resign reference."""

    action: str  # "switchover" | "resign"
    target: str  # "next" | "last"
    drain: float  # seconds the old leader's on_draining takes (switchover only)

    @property
    def label(self) -> str:
        if self.action == "resign":
            return "resign (undrained)"
        drain = "no-op drain" if self.drain == 0 else f"{self.drain * 1000:g} ms drain"
        return f"switchover to the {self.target} in line, {drain}"


RESIGN = Kind("resign", "next", 0.0)
KINDS = (
    Kind("switchover", "next", 0.0),
    Kind("switchover", "last", 0.0),
    Kind("switchover", "next", DRAIN_50MS),
    Kind("switchover", "last", DRAIN_50MS),
    RESIGN,
)
# The step-by-step split of a switchover (medians), in the order the steps happen.
STEPS = ("accepted", "ready", "draining", "drained", "elected", "written")


@dataclass(frozen=True)
class Elected:
    index: int
    epoch: int
    at: float  # on_elected started
    written: float | None  # its first fenced write committed (None: the write failed)
    error: str | None = None


@dataclass(frozen=True)
class Drained:
    index: int
    began: float
    ended: float


class Events:
    """What the candidates' callbacks (their sessions' callback threads) saw, in order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.elected: list[Elected] = []
        self.drained: list[Drained] = []

    def add(self, item: Elected | Drained) -> None:
        with self._cond:
            if isinstance(item, Elected):
                self.elected.append(item)
            else:
                self.drained.append(item)
            self._cond.notify_all()

    def marks(self) -> tuple[int, int]:
        with self._cond:
            return len(self.elected), len(self.drained)

    def next_elected(self, mark: int, what: str) -> Elected:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.elected) > mark, STEP_TIMEOUT):
                raise BenchError(f"no new leader within {STEP_TIMEOUT:g}s ({what})")
            return self.elected[mark]

    def since(self, marks: tuple[int, int]) -> tuple[list[Elected], list[Drained]]:
        with self._cond:
            return self.elected[marks[0] :], self.drained[marks[1] :]


class SwitchoverMetrics(NoopRecorder):
    """The leaders' own count of switchovers by result, and their drain times (the hooks
    ``switchover`` and ``switchover_drained`` of MetricsRecorder)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, int] = {}
        self.drains: list[float] = []

    def switchover(self, election: str, result: str) -> None:
        with self.lock:
            self.results[result] = self.results.get(result, 0) + 1

    def switchover_drained(self, election: str, seconds: float) -> None:
        with self.lock:
            self.drains.append(seconds)


@dataclass
class Samples:
    """One kind's measured rounds at one N (seconds from the request, or durations)."""

    steps: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    drain: list[float] = field(default_factory=list)  # on_draining's own run time
    requester_drain: list[float] = field(default_factory=list)  # result.drain_seconds
    returned: list[float] = field(default_factory=list)  # the call returned
    failures: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # a round that broke a guarantee
    rounds: int = 0


class Group:
    """N candidates on one path, an operator's session, and the rounds played on them."""

    def __init__(
        self,
        n: int,
        base: str,
        clients: list[KazooClient],
        operator: Session,
        observer: KazooClient,
    ) -> None:
        self.n, self.path, self.data = n, f"{base}/election", f"{base}/data"
        self.clients, self.operator, self.observer = clients, operator, observer
        self.events = Events()
        self.metrics = SwitchoverMetrics()
        self.drain_for = 0.0  # what every on_draining takes this round (set per round)
        self.samples = {kind: Samples() for kind in KINDS}
        self.elections: list[Election] = []

    # -- the candidates ----------------------------------------------------------------------

    def start_all(self) -> None:
        self.observer.ensure_path(self.data)
        config = ElectionConfig(session_timeout=CLIENT_TIMEOUT, requeue_delay=REQUEUE_DELAY)
        for index in range(self.n):
            election = Election(
                self.clients[index],
                self.path,
                candidate_id=f"cand-{index:04d}",
                config=config,
                on_elected=self._on_elected(index),
                on_draining=self._on_draining(index),
                metrics=self.metrics,
            )
            self.elections.append(election)
            election.start()
        self.events.next_elected(0, "the first leader")
        wait_children(self.observer, self.path, self.n)

    def _on_elected(self, index: int) -> Callable[[Leadership], None]:
        def on_elected(lead: Leadership) -> None:
            at = time.perf_counter()  # first thing: the new leader can act from here
            try:
                lead.set_data(self.data, f"{index} {lead.epoch}".encode())
            except ZkElectError as exc:  # fenced out: recorded, the round says so
                self.events.add(Elected(index, lead.epoch, at, None, f"{type(exc).__name__}"))
                return
            self.events.add(Elected(index, lead.epoch, at, time.perf_counter()))

        return on_elected

    def _on_draining(self, index: int) -> Callable[[Leadership, float], None]:
        def on_draining(lead: Leadership, deadline: float) -> None:
            began = time.perf_counter()
            if self.drain_for:
                time.sleep(self.drain_for)  # the leader-only work taking its time to stop
            self.events.add(Drained(index, began, time.perf_counter()))

        return on_draining

    def queue(self) -> list[int]:
        """Candidate indices in election order (the leader first), read now."""
        return [int(info.candidate_id.rsplit("-", 1)[1]) for info in self._candidates()]

    def _candidates(self) -> list[LeaderInfo]:
        return self.elections[0].candidates()

    def close(self) -> None:
        stoppers: dict[str, Callable[[], None]] = {e.candidate_id: e.stop for e in self.elections}
        stop_in_queue_order(stoppers, self.observer, self.path)

    # -- a round -------------------------------------------------------------------------------

    def play(self, kind: Kind, measured: bool) -> None:
        """One round of ``kind``; afterwards the queue is whole and no request is left."""
        order = self.queue()
        leader, target = order[0], order[1] if kind.target == "next" else order[-1]
        epoch = self._epoch_of(leader)
        self.drain_for = kind.drain
        marks = self.events.marks()
        samples = self.samples[kind]
        try:
            if kind.action == "resign":
                began, elected = self._resign(leader, marks)
            else:
                began, elected = self._switchover(kind, target, marks, samples, measured)
        except ZkElectError as exc:
            samples.failures.append(f"{type(exc).__name__}: {exc}")
            print(f"N={self.n}: {kind.label}: {type(exc).__name__}: {exc}", flush=True)
            self._settle(None)
            return
        self._settle(elected.index)
        if measured:
            samples.rounds += 1
            samples.steps["elected"].append(elected.at - began)
            if elected.written is not None:
                samples.steps["written"].append(elected.written - began)
        self._check(kind, marks, leader, target, epoch, elected, samples)

    def _resign(self, leader: int, marks: tuple[int, int]) -> tuple[float, Elected]:
        began = time.perf_counter()
        if not self.elections[leader].resign():
            raise BenchError(f"N={self.n}: candidate {leader} refused to resign")
        return began, self.events.next_elected(marks[0], "resign")

    def _switchover(
        self, kind: Kind, target: int, marks: tuple[int, int], samples: Samples, measured: bool
    ) -> tuple[float, Elected]:
        seen: dict[State, float] = {}

        def on_step(request: SwitchoverRequest) -> None:
            seen.setdefault(request.state, time.perf_counter())

        to = None if kind.target == "next" else self.elections[target].candidate_id
        began = time.perf_counter()
        result: SwitchoverResult = request_switchover(
            self.operator, self.path, to=to, timeout=STEP_TIMEOUT, by=BY, on_step=on_step
        )
        returned = time.perf_counter()
        elected = self.events.next_elected(marks[0], kind.label)
        if measured:
            self._record_steps(samples, began, seen, marks)
            samples.returned.append(returned - began)
            if result.drain_seconds is not None:
                samples.requester_drain.append(result.drain_seconds)
        return began, elected

    def _record_steps(
        self, samples: Samples, began: float, seen: dict[State, float], marks: tuple[int, int]
    ) -> None:
        # The requester sees a state only if it was still there when it read the node: a
        # step that passed quicker than a read round trip leaves no sample of its own.
        for state in (State.ACCEPTED, State.READY, State.DRAINING):
            if state in seen:
                samples.steps[state.value].append(seen[state] - began)
        _, drained = self.events.since(marks)
        if drained:
            samples.drain.append(drained[0].ended - drained[0].began)
            samples.steps["drained"].append(drained[0].ended - began)

    def _settle(self, leader: int | None) -> None:
        """Wait until the queue is whole again, no request is left and ``leader`` leads
        (None: after a failed round, anyone)."""
        request = f"{self.path}/{REQUEST_NODE}"
        wait_until(lambda: self.observer.exists(request) is None, f"{request} deleted")
        wait_children(self.observer, self.path, self.n)
        chosen = self.elections if leader is None else [self.elections[leader]]
        wait_until(lambda: any(e.is_leader for e in chosen), "a leader again")
        time.sleep(SETTLE)

    def _epoch_of(self, index: int) -> int:
        for info in self._candidates():
            if info.candidate_id == self.elections[index].candidate_id:
                return int(info.epoch)
        raise BenchError(f"N={self.n}: candidate {index} has no node")

    def _check(
        self,
        kind: Kind,
        marks: tuple[int, int],
        leader: int,
        target: int,
        epoch: int,
        elected: Elected,
        samples: Samples,
    ) -> None:
        """The guarantees, checked on what the callbacks saw during the round."""
        leaders, drained = self.events.since(marks)
        problems = []
        if [e.index for e in leaders] != [target]:
            problems.append(f"led: {[e.index for e in leaders]}, chosen: {target}")
        if elected.epoch <= epoch:
            problems.append(f"epoch {elected.epoch:#x} not above {epoch:#x}")
        if elected.written is None:
            problems.append(f"first fenced write refused ({elected.error})")
        if kind.action == "switchover":
            mine = [d for d in drained if d.index == leader]
            if not mine:
                problems.append(f"the old leader {leader} never drained")
            elif mine[0].ended > elected.at:
                problems.append("the new leader was elected before the old one drained")
        if problems:
            samples.broken.append(f"{kind.label}: " + "; ".join(problems))
            print(f"N={self.n}: {kind.label}: {'; '.join(problems)}", flush=True)


# --------------------------------------------------------------------------- the run


def rotate(kinds: tuple[Kind, ...], by: int) -> list[Kind]:
    """The kinds in turn, the first one rotating round after round."""
    k = by % len(kinds)
    return [*kinds[k:], *kinds[:k]]


@contextmanager
def group_at(n: int, hosts: str, run_id: str) -> Iterator[Group]:
    """N candidates (a session each), an observer client and the operator's session."""
    with (
        started_clients([hosts] * (n + 1), CLIENT_TIMEOUT) as clients,
        connected_session(
            hosts,
            connect_timeout=STEP_TIMEOUT,
            session_timeout=CLIENT_TIMEOUT,
            request_timeout=CLIENT_TIMEOUT,
        ) as operator,
        ExitStack() as stack,
    ):
        group = Group(n, f"/bench/switchover/{run_id}/n{n}", clients[1:], operator, clients[0])
        stack.callback(group.close)
        group.start_all()
        yield group


def measure_at(n: int, hosts: str, rounds: int, warmup: int, run_id: str) -> list[dict[str, Any]]:
    with group_at(n, hosts, run_id) as group:
        print(f"N={n}: {rounds} measured rounds of each of {len(KINDS)} kinds ...", flush=True)
        for round_no in range(warmup + rounds):
            for kind in rotate(KINDS, round_no):
                group.play(kind, round_no >= warmup)
        metrics = dict(group.metrics.results)
        leader_drains = list(group.metrics.drains)
    return rows_at(n, group.samples, metrics, leader_drains)


def rows_at(
    n: int, samples: dict[Kind, Samples], metrics: dict[str, int], leader_drains: list[float]
) -> list[dict[str, Any]]:
    resign = samples[RESIGN].steps["written"]
    resign_median = statistics.median(resign) if resign else None
    rows = []
    for kind, s in samples.items():
        written = s.steps["written"]
        row: dict[str, Any] = {
            "n": n,
            "kind": kind.action,
            "target": kind.target,
            "drain_s": kind.drain,
            "label": kind.label,
            "rounds": s.rounds,
            "first_write_ms": describe(written) if written else None,
            "elected_ms": describe(s.steps["elected"]) if s.steps["elected"] else None,
            "samples_ms": [ms(x) for x in written],
            "failures": s.failures,
            "broken": s.broken,
        }
        if kind.action == "switchover":
            row |= {
                "accepted_ms": describe(s.steps["accepted"]) if s.steps["accepted"] else None,
                "drain_ms": describe(s.drain) if s.drain else None,
                "requester_drain_ms": describe(s.requester_drain) if s.requester_drain else None,
                "returned_ms": describe(s.returned) if s.returned else None,
                "steps_median_ms": {
                    step: ms(statistics.median(xs)) if xs else None for step, xs in s.steps.items()
                },
                "steps_seen": {step: len(xs) for step, xs in s.steps.items()},
            }
        if written and resign_median:
            row["ratio_to_resign"] = round(statistics.median(written) / resign_median, 3)
        rows.append(row)
    rows.append(
        {
            "n": n,
            "kind": "leader_metrics",
            "switchovers_by_result": metrics,
            "drained_ms": describe(leader_drains) if leader_drains else None,
        }
    )
    return rows


def checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every round kept the guarantees, and none failed (the report's verdict)."""
    measured = [r for r in rows if r["kind"] in ("switchover", "resign")]
    broken = [b for r in measured for b in r["broken"]]
    failures = [f for r in measured for f in r["failures"]]
    return {
        "guarantees_kept": not broken and not failures,
        "rounds": sum(r["rounds"] for r in measured),
        "broken": broken,
        "failures": failures,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    def cell(d: dict[str, Any] | None, key: str) -> str:
        return "-" if not d else f"{d[key]:.2f}"

    print(
        f"{'N':>3} {'round':<45} {'accepted med/p90':>17} {'drain med/p90':>15} "
        f"{'first write med/p90':>20} {'/ resign':>9}"
    )
    for r in rows:
        if r["kind"] == "leader_metrics":
            continue
        pair = [
            f"{cell(r.get(key), 'median')}/{cell(r.get(key), 'p90')}"
            for key in ("accepted_ms", "drain_ms", "first_write_ms")
        ]
        ratio = r.get("ratio_to_resign")
        print(
            f"{r['n']:>3} {r['label']:<45} {pair[0]:>17} {pair[1]:>15} {pair[2]:>20} "
            f"{'-' if ratio is None else f'{ratio:.2f}x':>9}"
        )


def parse_args(argv: list[str] | None) -> Any:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,10", help="candidate counts")
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds of each kind")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.rounds, args.warmup = "3", 2, 1
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) < 3 or args.rounds < 1 or args.warmup < 0:
        parser.error("need sizes >= 3 (a last in line behind the next), --rounds >= 1")
    args.output = args.output or default_output("switchover", args.smoke)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    began = time.perf_counter()
    run_id = f"run-{int(time.time() * 1000)}"
    with ensemble_for(args.hosts) as ensemble:
        machine = machine_info(ensemble)
        rows: list[dict[str, Any]] = []
        for n in args.size_list:
            rows += measure_at(n, ensemble.hosts, args.rounds, args.warmup, run_id)
        verdict = checks(rows)
        print()
        print("from the request (or resign()) to the chosen candidate's first fenced write, ms")
        print_table(rows)
        print(
            f"\nevery round: the chosen candidate led alone, with a higher epoch, after the old "
            f"leader drained: {'yes' if verdict['guarantees_kept'] else 'NO'} "
            f"({verdict['rounds']} rounds)"
        )
        write_result(
            args.output,
            benchmark="switchover",
            description=(
                "planned switchover: request_switchover() -> the chosen candidate's first "
                "fenced write (lead.set_data in on_elected), on_draining a no-op or 50 ms, "
                "target the next or the last in line; resign() -> the successor's first fenced "
                "write as the reference; rounds of the five kinds alternated, one clock"
            ),
            ensemble=ensemble,
            machine=machine,
            params={
                "sizes": args.size_list,
                "rounds": args.rounds,
                "warmup_rounds": args.warmup,
                "kinds": [k.label for k in KINDS],
                "drain_s": DRAIN_50MS,
                "settle_s": SETTLE,
                "requeue_delay_s": REQUEUE_DELAY,
                "client_session_timeout_s": CLIENT_TIMEOUT,
                "smoke": bool(args.smoke),
            },
            results=rows,
            began=began,
            checks=verdict,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
