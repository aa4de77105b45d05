"""A recorded history of who believed it led an election, and of the election's nodes.

Three parts, for test_fast_handover.py (and checked by tests/unit/test_history_check.py):

* :class:`Probe`: one per candidate, its metrics recorder *and* its callbacks. A belief ("I
  lead") starts at ``leadership_acquired`` and ends at ``leadership_lost``: the election calls
  both under its lock at the flip itself (standing.py), before the callbacks run on the
  callback thread, so they bound the belief more tightly than ``on_elected``/``on_revoked``
  (which are recorded too, for the node's name and for the log).
* :class:`PathObserver`: a separate kazoo session that watches the election path's children
  and records every node it sees (name, czxid) and when it saw it go. A notice comes after the
  deletion, so the observer's time is an upper bound on it; the driver of a test tightens it
  with :meth:`PathObserver.deleting` (when it started an action that deleted the node), taking
  the earlier of the two. An early deletion time can only *excuse* an overlap, never invent
  one: a forbidden overlap is always real.
* :func:`check`: the invariant, as chaos/checker.py checks I2 and I5 on a chaos run: two
  candidates' beliefs never overlap while both of their nodes existed (one of the two must
  already have been deleted when the overlap began), and believers whose node still existed
  at their flip were elected with epochs that never go back, in flip order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import WatchedEvent

from zkelect import Leadership
from zkelect.metrics import NoopRecorder

__all__ = [
    "Belief",
    "HistoryLog",
    "NodeLife",
    "Overlap",
    "PathObserver",
    "Probe",
    "Verdict",
    "check",
]


# --- the records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Belief:
    """Candidate ``cand`` believed it led with epoch ``epoch`` (its node's czxid) over
    [start, end) (time.monotonic); ``node`` is the node's name when the callback told it."""

    cand: str
    epoch: int
    start: float
    end: float
    node: str | None = None
    reason: str = ""


@dataclass
class NodeLife:
    """A node seen under the election path: ``deleted`` is the earliest moment it is known
    to have been gone (None: it outlived the record)."""

    name: str
    czxid: int | None  # None: deleted before the observer could read it
    seen: float
    deleted: float | None = None

    def alive_at(self, t: float) -> bool:
        return self.deleted is None or self.deleted > t


@dataclass(frozen=True)
class Overlap:
    first: Belief
    second: Belief
    start: float
    end: float
    forbidden: bool

    def describe(self, origin: float) -> str:
        verdict = "FORBIDDEN (both nodes existed)" if self.forbidden else "allowed"
        return (
            f"{verdict}: {self.first.cand} (epoch {self.first.epoch:#x}) and "
            f"{self.second.cand} (epoch {self.second.epoch:#x}) both led over "
            f"[{self.start - origin:.4f}, {self.end - origin:.4f}) s"
        )


@dataclass
class Verdict:
    leaderships: int = 0
    handovers: int = 0
    unobserved: int = 0  # beliefs whose node the observer never saw (counted as deleted)
    overlaps: list[Overlap] = field(default_factory=list)
    epoch_violations: list[str] = field(default_factory=list)

    @property
    def forbidden(self) -> list[Overlap]:
        return [o for o in self.overlaps if o.forbidden]

    @property
    def ok(self) -> bool:
        return not self.forbidden and not self.epoch_violations

    def summary(self, origin: float = 0.0) -> str:
        lines = [
            f"leaderships {self.leaderships}, handovers {self.handovers}, overlaps allowed "
            f"{len(self.overlaps) - len(self.forbidden)}, forbidden {len(self.forbidden)}, "
            f"epoch violations {len(self.epoch_violations)}, unobserved nodes {self.unobserved}"
        ]
        lines += [f"  {o.describe(origin)}" for o in self.overlaps]
        lines += [f"  {v}" for v in self.epoch_violations]
        return "\n".join(lines)


# --- the check -----------------------------------------------------------------------------


def _node_of(belief: Belief, by_czxid: dict[int, NodeLife]) -> NodeLife | None:
    # The epoch is the node's czxid, unique over the whole run (names can repeat after the
    # path is re-created, czxids cannot).
    return by_czxid.get(belief.epoch)


def _existed(node: NodeLife | None, t: float) -> bool:
    # A node the observer never saw lived between two of its listings: count it as gone,
    # which can only excuse an overlap (Verdict.unobserved says how often that happened).
    return node is not None and node.alive_at(t)


def check(beliefs: Sequence[Belief], nodes: Iterable[NodeLife]) -> Verdict:
    """Judge a recorded history (see the module docstring)."""
    by_czxid = {n.czxid: n for n in nodes if n.czxid is not None}
    ordered = sorted(beliefs, key=lambda b: (b.start, b.end))
    verdict = Verdict(leaderships=len(ordered))
    verdict.unobserved = sum(1 for b in ordered if _node_of(b, by_czxid) is None)
    previous: str | None = None
    for belief in ordered:
        if previous is not None and belief.cand != previous:
            verdict.handovers += 1
        previous = belief.cand
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            if second.start >= first.end:
                continue  # sorted by start: later ones may still overlap a long belief
            if second.cand == first.cand:
                continue
            start, end = second.start, min(first.end, second.end)
            if end <= start:
                continue
            both = _existed(_node_of(first, by_czxid), start) and _existed(
                _node_of(second, by_czxid), start
            )
            verdict.overlaps.append(Overlap(first, second, start, end, both))
    _check_epochs(ordered, by_czxid, verdict)
    return verdict


def _check_epochs(
    ordered: Sequence[Belief], by_czxid: dict[int, NodeLife], verdict: Verdict
) -> None:
    """Epochs never go back over believers whose node existed at their flip. A believer
    whose node was already gone learnt late that it had been first (Leadership.granted_zxid
    orders those); the overlap check covers what it may do meanwhile."""
    highest: Belief | None = None
    for belief in ordered:
        if not _existed(_node_of(belief, by_czxid), belief.start):
            continue
        if highest is not None and belief.epoch < highest.epoch:
            verdict.epoch_violations.append(
                f"{belief.cand} was elected with epoch {belief.epoch:#x} after "
                f"{highest.cand} had led with the higher epoch {highest.epoch:#x}"
            )
        if highest is None or belief.epoch > highest.epoch:
            highest = belief


# --- recording ---------------------------------------------------------------------------


@dataclass
class HistoryLog:
    """Every candidate's flips and callbacks, appended from many threads."""

    events: list[tuple[float, str, str, str]] = field(default_factory=list)
    _beliefs: list[Belief] = field(default_factory=list)
    _open: dict[str, tuple[float, int]] = field(default_factory=dict)
    _names: dict[tuple[str, int], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, cand: str, kind: str, detail: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), cand, kind, detail))

    def acquired(self, cand: str, epoch: int) -> None:
        with self.lock:
            self._open[cand] = (time.monotonic(), epoch)

    def lost(self, cand: str, reason: str) -> None:
        with self.lock:
            opened = self._open.pop(cand, None)
            if opened is not None:
                start, epoch = opened
                self._beliefs.append(Belief(cand, epoch, start, time.monotonic(), None, reason))

    def named(self, cand: str, epoch: int, node: str) -> None:
        with self.lock:
            self._names[(cand, epoch)] = node.rsplit("/", 1)[-1]

    def beliefs(self, end: float | None = None) -> list[Belief]:
        """Closed beliefs, and open ones closed at ``end`` (default: now)."""
        with self.lock:
            now = time.monotonic() if end is None else end
            closed = list(self._beliefs) + [
                Belief(cand, epoch, start, now, None, "(still leading)")
                for cand, (start, epoch) in self._open.items()
            ]
            return [
                Belief(
                    b.cand, b.epoch, b.start, b.end, self._names.get((b.cand, b.epoch)), b.reason
                )
                for b in closed
            ]


class Probe(NoopRecorder):
    """One candidate's metrics recorder and callbacks, writing to a shared HistoryLog."""

    def __init__(self, log: HistoryLog, cand: str) -> None:
        self.log = log
        self.cand = cand

    def leadership_acquired(self, election: str, epoch: int, waited_seconds: float) -> None:
        self.log.acquired(self.cand, epoch)

    def leadership_lost(self, election: str, reason: str) -> None:
        self.log.lost(self.cand, reason)

    def on_elected(self, lead: Leadership) -> None:
        self.log.named(self.cand, lead.epoch, lead.node_path)
        self.log.note(self.cand, "elected", f"{lead.epoch:#x} {lead.node_path}")

    def on_revoked(self, reason: str) -> None:
        self.log.note(self.cand, "revoked", reason)


class PathObserver:
    """Records the children of ``path`` (see the module docstring), on its own thread.

    A watch only wakes the thread (nothing blocks kazoo's callback thread); the thread
    re-lists the children and, while the path is missing, watches for its creation.
    """

    def __init__(self, client: KazooClient, path: str) -> None:
        self.client = client
        self.path = path
        self.nodes: list[NodeLife] = []
        self._alive: dict[str, NodeLife] = {}
        self._pending: dict[str, float] = {}  # driver hints for nodes not seen yet
        self._notice: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="path-observer", daemon=True)
        self.listings = 0

    def start(self) -> PathObserver:
        self._wake.set()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(10)

    def alive(self) -> list[str]:
        with self._lock:
            return sorted(self._alive)

    def deleting(self, names: Iterable[str], t: float) -> None:
        """An action started at ``t`` deleted these nodes (names or full paths)."""
        with self._lock:
            for name in (n.rsplit("/", 1)[-1] for n in names):
                node = self._alive.get(name) or self._latest(name)
                if node is None:
                    self._pending[name] = min(t, self._pending.get(name, t))
                elif node.deleted is None or t < node.deleted:
                    node.deleted = t

    def _latest(self, name: str) -> NodeLife | None:
        """The last node of that name seen (names repeat only after the path's re-creation)."""
        return next((n for n in reversed(self.nodes) if n.name == name), None)

    def _on_event(self, event: WatchedEvent) -> None:
        with self._lock:
            if self._notice is None:
                self._notice = time.monotonic()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._wake.wait(0.2):
                continue
            self._wake.clear()
            if self._stopping.is_set():
                return
            sent = time.monotonic()
            with self._lock:
                notice, self._notice = self._notice, None
            self._relist(sent if notice is None else notice)

    def _relist(self, gone_by: float) -> None:
        try:
            children = set(self.client.get_children(self.path, watch=self._on_event))
        except NoNodeError:
            children = set()
            if self.client.exists(self.path, watch=self._on_event) is not None:
                self._wake.set()  # re-created in between: list again
        self.listings += 1
        with self._lock:
            for name in [n for n in self._alive if n not in children]:
                node = self._alive.pop(name)
                node.deleted = gone_by if node.deleted is None else min(node.deleted, gone_by)
        for name in sorted(children - set(self._alive)):
            self._add(name)

    def _add(self, name: str) -> None:
        stat = self.client.exists(f"{self.path}/{name}")
        node = NodeLife(name, None if stat is None else stat.czxid, time.monotonic())
        with self._lock:
            hint = self._pending.pop(name, None)
            node.deleted = hint
            if stat is None and node.deleted is None:
                node.deleted = node.seen  # listed, then gone before we could read it
            self.nodes.append(node)
            if stat is not None:
                self._alive[name] = node
