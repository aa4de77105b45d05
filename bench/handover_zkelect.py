"""zkelect's handover rounds: the threaded ``Election`` and ``AsyncElection``, alternated.

Each implementation's N candidates join their own path; candidate i of each is on session
i mod S (the same sessions for both, so both see the same clients, threads and servers).
When both are measured, their rounds alternate (one of each in turn, which goes first
alternating too) and the floors are sampled after every measured round of each: the two
rows differ by the API only.

* ``zkelect``: from just before ``resign()`` (the main thread) to the moment the
  successor's ``on_elected`` starts (the session's callback thread).
* ``zkelect-async``: every candidate is an ``AsyncElection`` on an event loop of its
  session's (one loop per session, each in a thread of its own, as the threaded row has a
  callback thread per session: the successor's loop is not the leaver's, as in a real
  deployment, where each service has its loop). From just before ``await leader.resign()``
  on the leader's loop to the moment the successor's ``on_elected`` starts running on its
  loop: the first moment code on that loop can act as the leader. It is a plain function,
  the twin of the threaded row's callback; a coroutine callback, a ``wait_for_leadership``
  waiter or ``run_while_leader``'s work task starts one loop turn later.

Both record the successor's flip to leader (the metrics hook ``leadership_acquired``, on
the worker thread), which splits each handover into ZooKeeper's part and the hop from the
flip to the callback (callback thread, or event loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import timeit
from collections.abc import Callable, Coroutine
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from common import (
    STEP_TIMEOUT,
    BenchError,
    Recorder,
    candidate_names,
    ms,
    started_clients,
    wait_children,
)
from floor import SETTLE, FloorProbe, median
from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, Leadership, NoopRecorder, ZkElectError
from zkelect._election.nodes import election_order, parse_node, serial_order

__all__ = ["ASYNC", "THREADED", "ZKELECT_IMPLS", "Run", "run_zkelect", "stop_in_queue_order"]

THREADED = "zkelect"
ASYNC = "zkelect-async"
ZKELECT_IMPLS = (THREADED, ASYNC)

T = TypeVar("T")

log = logging.getLogger("bench.handover")


@dataclass
class Run:
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class FlipClock(NoopRecorder):
    """zkelect's metrics hook ``leadership_acquired`` runs at the flip, under the lock."""

    def __init__(self, index: int, flipped: dict[int, float]) -> None:
        self.index = index
        self.flipped = flipped

    def leadership_acquired(self, election: str, epoch: int, waited: float) -> None:
        self.flipped[self.index] = time.perf_counter()


class LoopThread:
    """An asyncio event loop serving in a thread of its own; other threads submit coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="bench-aio-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], what: str, timeout: float = STEP_TIMEOUT) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BenchError(f"{what}: not within {timeout:g}s") from None

    def close(self) -> None:
        """Cancel what still runs on the loop, stop it, and wait for its thread."""

        async def wind_down() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), STEP_TIMEOUT)
            await asyncio.wait_for(self.loop.shutdown_default_executor(), STEP_TIMEOUT)

        with suppress(Exception):
            self.call(wind_down(), "winding the event loop down", 2 * STEP_TIMEOUT + 1)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(STEP_TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()


class Group:
    """N candidates of one implementation on one path, handing over round after round."""

    impl = ""

    def __init__(self, path: str, n: int, clients: list[KazooClient], config: Any) -> None:
        self.path, self.n, self.clients, self.config = path, n, clients, config
        self.recorder = Recorder()
        self.run = Run()
        self.flipped: dict[int, float] = {}
        self.resign_calls: list[float] = []
        self.flips: list[float] = []  # resign called -> the successor's flip (worker thread)
        self.hops: list[float] = []  # that flip -> its on_elected starts
        self.lapses = 0

    def client(self, index: int) -> KazooClient:
        return self.clients[index % len(self.clients)]

    def candidate_id(self, index: int) -> str:
        return f"cand-{index:04d}"

    # The implementation's part.
    def start_all(self) -> None:
        raise NotImplementedError

    def is_leader(self, index: int) -> bool:
        raise NotImplementedError

    def resign(self, index: int) -> Callable[[], tuple[float, float]]:
        """Have the leader resign; returns what tells, once the successor leads, (just
        before resign was called, when it returned), or raises BenchError if it refused."""
        raise NotImplementedError

    def stoppers(self) -> dict[str, Callable[[], None]]:
        raise NotImplementedError

    def close(self, observer: KazooClient) -> None:
        stop_in_queue_order(self.stoppers(), observer, self.path)

    def play(self, round_no: int, measured: bool, observer: KazooClient) -> None:
        """One round: the leader resigns, the successor leads; the queue is whole again after."""
        mark = self.recorder.count()
        leader, _ = self.recorder.events[-1]
        if not self.is_leader(leader):
            # Its lease ran out meanwhile (R7): on this 2-core machine the join storm of
            # N=1,000 can leave a session unanswered for longer than the lease. It leads
            # again once the lease is proven; a round starts from a leader.
            self.lapses += 1
            print(f"N={self.n}: {self.impl}'s leader lost its lease before round {round_no}")
            again, _ = self.recorder.wait_beyond(mark, "the leader leading again")
            if again != leader:
                raise BenchError(f"candidate {leader} was elected but {again} leads")
            mark = self.recorder.count()
        resigned_at = self.resign(leader)
        successor, at = self.recorder.wait_beyond(mark, f"{self.impl} handover")
        started, resigned = resigned_at()
        if successor == leader:
            raise BenchError(f"{self.impl}: the resigned leader was elected again at once")
        if measured:
            self.run.samples.append(at - started)
            self.resign_calls.append(resigned - started)
            flip = self.flipped.get(successor, 0.0)
            if started < flip <= at:
                self.flips.append(flip - started)
                self.hops.append(at - flip)
        wait_children(observer, self.path, self.n)

    def result(self, where: str) -> Run:
        def med(xs: list[float]) -> float | None:
            return ms(median(xs)) if xs else None

        self.run.extra["resign_call_median_ms"] = med(self.resign_calls)
        self.run.extra["leases_lost_between_rounds"] = self.lapses
        self.run.extra["breakdown"] = {
            "what": (
                "resign_returned: resign() returns (the actor deleted the node); flipped: the "
                "successor's election step flips to leader (worker thread); callback_hop: from "
                f"that flip to on_elected starting ({where}); medians, ms"
            ),
            "resign_returned_median_ms": med(self.resign_calls),
            "flipped_median_ms": med(self.flips),
            "callback_hop_median_ms": med(self.hops),
        }
        return self.run


class Threaded(Group):
    impl = THREADED

    def start_all(self) -> None:
        self.elections: list[Election] = []
        for index in range(self.n):
            election = Election(
                self.client(index),
                self.path,
                candidate_id=self.candidate_id(index),
                config=self.config,
                on_elected=self._elected(index),
                metrics=FlipClock(index, self.flipped),
            )
            self.elections.append(election)
            election.start()

    def _elected(self, index: int) -> Callable[[Leadership], None]:
        def on_elected(lead: Leadership) -> None:
            self.recorder.record(index)

        return on_elected

    def is_leader(self, index: int) -> bool:
        return self.elections[index].is_leader

    def resign(self, index: int) -> Callable[[], tuple[float, float]]:
        started = time.perf_counter()
        if not self.elections[index].resign():
            raise BenchError(f"candidate {index} refused to resign")
        resigned = time.perf_counter()
        return lambda: (started, resigned)

    def stoppers(self) -> dict[str, Callable[[], None]]:
        return {e.candidate_id: e.stop for e in getattr(self, "elections", [])}

    def order_costs(self, observer: KazooClient) -> None:
        """What ordering the election's children costs zkelect on every look (the successor
        does it once per handover), and what it would cost from cached parses (not
        zkelect's code), timed in this run on this machine."""
        names = candidate_names(observer.get_children(self.path))
        self.run.extra["election_order_ms"] = ms(
            min(timeit.repeat(lambda: election_order(names), number=20, repeat=5)) / 20
        )
        parsed = {name: parse_node(name) for name in names}
        cached = min(
            timeit.repeat(
                lambda: serial_order([parsed[n] for n in names if parsed[n]]), number=20, repeat=5
            )
        )
        self.run.extra["election_order_cached_ms"] = ms(cached / 20)


class Async(Group):
    """AsyncElections, one event loop per session (candidate i on session i and loop i mod S,
    as the threaded row's candidate i has that session's callback thread): each candidate
    is started, resigned and stopped on its loop."""

    impl = ASYNC

    def loop(self, index: int) -> LoopThread:
        return self.loops[index % len(self.loops)]

    def start_all(self) -> None:
        from zkelect.aio import AsyncElection  # only this row needs it

        self.elections: list[AsyncElection] = []
        self.loops = [LoopThread() for _ in self.clients]

        async def join(index: int) -> None:
            election = AsyncElection(
                self.client(index),
                self.path,
                candidate_id=self.candidate_id(index),
                config=self.config,
                on_elected=self._elected(index),
                metrics=FlipClock(index, self.flipped),
            )
            self.elections.append(election)
            await election.start()

        for index in range(self.n):  # one after another, as the threaded row's
            self.loop(index).call(join(index), f"AsyncElection {index} joining")

    def _elected(self, index: int) -> Callable[[Any], Coroutine[Any, Any, None]]:
        def on_elected(lead: Any) -> None:
            self.recorder.record(index)  # first thing on the loop: the end of the measurement

        return on_elected

    def is_leader(self, index: int) -> bool:
        return bool(self.elections[index].is_leader)

    def resign(self, index: int) -> Callable[[], tuple[float, float]]:
        """Resigns on the leader's loop; this thread asks how it went only after the
        successor led (a thread woken by the leaver's loop meanwhile would be the
        benchmark's, not the API's: an asyncio service has no such thread)."""
        election = self.elections[index]

        async def resign() -> tuple[bool, float, float]:
            started = time.perf_counter()
            done = await election.resign()
            return done, started, time.perf_counter()

        pending = asyncio.run_coroutine_threadsafe(resign(), self.loop(index).loop)

        def outcome() -> tuple[float, float]:
            try:
                done, started, resigned = pending.result(STEP_TIMEOUT)
            except concurrent.futures.TimeoutError:
                raise BenchError(
                    f"candidate {index}: resign() not within {STEP_TIMEOUT:g}s"
                ) from None
            if not done:
                raise BenchError(f"async candidate {index} refused to resign")
            return started, resigned

        return outcome

    def stoppers(self) -> dict[str, Callable[[], None]]:
        def stopper(index: int) -> Callable[[], None]:
            election = self.elections[index]
            return lambda: self.loop(index).call(election.stop(), f"stopping {index}")

        return {e.candidate_id: stopper(i) for i, e in enumerate(getattr(self, "elections", []))}

    def close(self, observer: KazooClient) -> None:
        try:
            super().close(observer)
        finally:
            for loop in getattr(self, "loops", []):
                loop.close()


def run_zkelect(
    hosts: str,
    n: int,
    sessions: int,
    rounds: int,
    warmup: int,
    probe: FloorProbe,
    impls: list[str],
    session_timeout: float,
    requeue_delay: float,
) -> dict[str, Run]:
    """The zkelect rows at one N: each of ``impls`` on its own path, on the same sessions,
    their rounds alternated, the floors sampled after every measured round of each."""
    config = ElectionConfig(session_timeout=session_timeout, requeue_delay=requeue_delay)
    kinds = {THREADED: Threaded, ASYNC: Async}
    with (
        started_clients([hosts] * (sessions + 1), session_timeout) as clients,
        ExitStack() as stack,
    ):
        observer, candidate_clients = clients[0], clients[1:]
        groups: list[Group] = []
        for impl in impls:
            group = kinds[impl](f"/bench/handover/{impl}-n{n}", n, candidate_clients, config)
            stack.callback(group.close, observer)
            groups.append(group)
            group.start_all()
        for group in groups:
            group.recorder.wait_beyond(0, f"first {group.impl} leader")
            wait_children(observer, group.path, n)
        for round_no in range(warmup + rounds):
            # Who goes first alternates too: neither row always follows the other's round.
            for group in groups if round_no % 2 == 0 else groups[::-1]:
                group.play(round_no, round_no >= warmup, observer)
                if round_no >= warmup:
                    probe.between_rounds()
                time.sleep(SETTLE)
        for group in groups:
            if isinstance(group, Threaded):
                group.order_costs(observer)
        return {
            g.impl: g.result("the callback thread" if g.impl == THREADED else "the event loop")
            for g in groups
        }


def stop_in_queue_order(
    stoppers: dict[str, Callable[[], None]], observer: KazooClient, path: str
) -> None:
    """Stop the last in the queue first, so no stop wakes anybody (and nobody is elected)."""
    pending_ids = dict(stoppers)
    order: list[tuple[str, Callable[[], None]]] = []
    with suppress(Exception):
        children = candidate_names(observer.get_children(path))
        names = [node.name for node in election_order(children)]
        reads = [observer.get_async(f"{path}/{name}") for name in names]
        for result in reads:
            data, _ = result.get(timeout=STEP_TIMEOUT)
            cid = bytes(data).decode()
            stop = pending_ids.pop(cid, None)
            if stop is not None:
                order.append((cid, stop))
    for cid, stop in [*reversed(order), *pending_ids.items()]:
        try:
            stop()
        except (ZkElectError, BenchError) as exc:
            log.warning("stopping %s: %s", cid, exc)
