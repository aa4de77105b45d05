"""The handover benchmark's two references, sampled on the same ensemble, interleaved.

* The **re-reading floor**: what a handover costs a recipe whose successor re-reads the
  children (kazoo, Curator, etcd's range read): one ``delete`` of an ephemeral node (the
  leader leaving) plus one ``get_children`` of a path with N children (the successor checking
  it is first), synchronous kazoo round trips from one client.
* The **notification floor**: a ``delete`` on one session -> the data-watch notice (the
  watch callback starting, on kazoo's callback thread) on another session connected to
  another member. No ZooKeeper recipe can hand over sooner: the successor learns that its
  predecessor left from this notice (or from a read after it).

Both are taken at a handover's pace (after the same quiet time the rounds have, ``SETTLE``),
rotating over one client per ensemble member: an idle batch first, then a few samples after
every measured round of every implementation, one of each kind in turn, so load from
elsewhere on the machine weighs on them as on the handovers. A *back-to-back* re-reading
floor (no pause before the delete) is kept for reference only: a write right after another
is faster than one after a pause, which is not the situation a handover is in.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common import STEP_TIMEOUT, BenchError, ms, percentile, wait_children
from kazoo.client import KazooClient

__all__ = ["SETTLE", "Floor", "FloorProbe", "Notification"]

SETTLE = 0.02  # quiet time between rounds, after the queue is whole again


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


@dataclass
class Floor:
    """Re-reading floor samples: the delete's and the get_children's round trips, paired."""

    delete: list[float] = field(default_factory=list)
    children: list[float] = field(default_factory=list)

    def pairs(self) -> list[float]:
        return [d + c for d, c in zip(self.delete, self.children, strict=True)]

    @property
    def median(self) -> float:
        return median(self.delete) + median(self.children)

    @property
    def p90(self) -> float:
        """p90 of (delete + get_children) pairs taken together (not a sum of p90s)."""
        return percentile(self.pairs(), 90)

    @property
    def p99(self) -> float:
        return percentile(self.pairs(), 99)

    def summary(self) -> dict[str, Any]:
        return {
            "median_ms": ms(self.median),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "delete_median_ms": ms(median(self.delete)),
            "delete_p90_ms": ms(percentile(self.delete, 90)),
            "get_children_median_ms": ms(median(self.children)),
            "get_children_p90_ms": ms(percentile(self.children, 90)),
            "samples_per_op": len(self.delete),
        }


@dataclass
class Notification:
    """Notification floor samples: delete sent -> the other session's watch callback starts."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    def summary(self, floor: Floor) -> dict[str, Any]:
        """The row of the results table, with its ratios to the re-reading floor."""
        return {
            "median_ms": ms(self.median),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "median_ratio": round(self.median / floor.median, 3),
            "p90_ratio": round(self.p90 / floor.p90, 3),
            "p99_ratio": round(self.p99 / floor.p99, 3),
            "samples_per_op": len(self.samples),
        }


class FloorProbe:
    """Samples both floors: one client per ensemble member, a path with N ephemeral children."""

    def __init__(self, clients: list[KazooClient], n: int) -> None:
        self._clients = clients
        self._n = n
        self._base = f"/bench/floor/n{n}"
        self.paced = Floor()
        self.back_to_back = Floor()
        self.notification = Notification()
        self._turn = 0
        owner = clients[0]
        owner.ensure_path(f"{self._base}/children")
        owner.ensure_path(f"{self._base}/doomed")
        for _ in range(n):
            owner.create_async(f"{self._base}/children/c-", b"x" * 8, ephemeral=True, sequence=True)
        wait_children(owner, f"{self._base}/children", n)
        for _ in range(max(5, len(clients) * 3)):  # warm-up, not kept
            self._reread(pause=0.0, into=None)
            self._notice(pause=0.0, into=None)

    def _next(self) -> int:
        self._turn += 1
        return self._turn

    def _reread(self, pause: float, into: Floor | None) -> None:
        client = self._clients[self._next() % len(self._clients)]
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

    def _notice(self, pause: float, into: Notification | None) -> None:
        """One sample: the deleter and the watcher are on different members (turn, turn + 1)."""
        turn = self._next()
        deleter = self._clients[turn % len(self._clients)]
        watcher = self._clients[(turn + 1) % len(self._clients)]
        node = deleter.create(f"{self._base}/doomed/w-", ephemeral=True, sequence=True)
        watcher.sync(node)  # the watcher's member has applied the create: the watch is a data watch
        heard = threading.Event()
        at: list[float] = []

        def fired(event: Any) -> None:
            at.append(time.perf_counter())  # first thing: the end of the measurement
            heard.set()

        if watcher.exists(node, watch=fired) is None:
            raise BenchError(f"notification floor: {node} not visible to the watcher")
        if pause:
            time.sleep(pause)
        started = time.perf_counter()
        deleter.delete(node)
        if not heard.wait(STEP_TIMEOUT):
            raise BenchError(f"notification floor: no watch notice for {node}")
        if into is not None:
            into.samples.append(at[0] - started)

    def sample(self, count: int) -> None:
        """``count`` samples of each kind, interleaved, rotating over the members."""
        for _ in range(count):
            self._reread(pause=SETTLE, into=self.paced)
            self._notice(pause=SETTLE, into=self.notification)
            self._reread(pause=0.0, into=self.back_to_back)

    def between_rounds(self) -> None:
        self.sample(len(self._clients))
