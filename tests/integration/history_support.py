"""A recorded history of who believed it led an election, and of the election's nodes.

Three parts, for test_fast_handover.py (and checked by tests/unit/test_history_check.py):

* :class:`Probe`: one per candidate, its metrics recorder *and* its callbacks. A belief ("I
  lead") starts at ``leadership_acquired`` and ends at ``leadership_lost``: the election calls
  both under its lock at the flip itself (standing.py), before the callbacks run on the
  callback thread, so they bound the belief more tightly than ``on_elected``/``on_revoked``
  (which are recorded too, for the node's name and for the log).
* :class:`PathObserver`: a separate kazoo session that lists the election path's children
  on every change (a watch wakes it) and at least every POLL_S seconds, and keeps, for each
  node it sees (name, czxid), the interval over which the node *provably* existed: from the
  answer of the first listing that showed it (it was created before) to the start of the
  last one that did (each listing is preceded by a sync, so it reflects a state no older
  than the ZooKeeper leader's when the listing started; a node, once deleted, never comes
  back with the same czxid). Deletion times are never guessed: a notice can be late, and a
  late notice must not turn a legitimate handover into a violation.
* :func:`check`: the invariant, as chaos/checker.py checks I2 and I5 on a chaos run, over
  that proof: two candidates' beliefs never overlap while both of their nodes provably
  existed; a believer whose node provably existed at its flip owned the first of the nodes
  that provably existed then; and such believers were elected with epochs that never go
  back, in flip order. A violation found is real; one between two listings can be missed,
  which the polling keeps short (and a run has hundreds of handovers).
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
from zkelect._election.nodes import election_order
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

SHOWN = 20  # violations listed per kind in a summary
POLL_S = 0.05  # the observer lists at least this often, changes or not


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
    """A node seen under the election path, which provably existed over [seen, last_seen]
    (time.monotonic; see the module docstring)."""

    name: str
    czxid: int
    seen: float
    last_seen: float

    def existed_at(self, t: float) -> bool:
        return self.seen <= t <= self.last_seen


@dataclass(frozen=True)
class Overlap:
    first: Belief
    second: Belief
    start: float
    end: float
    forbidden: bool

    def describe(self, origin: float) -> str:
        verdict = (
            "FORBIDDEN (both nodes existed)" if self.forbidden else "allowed (a node was gone)"
        )
        return (
            f"{verdict}: {self.first.cand} (epoch {self.first.epoch:#x}) and "
            f"{self.second.cand} (epoch {self.second.epoch:#x}) both led over "
            f"[{self.start - origin:.4f}, {self.end - origin:.4f}) s"
        )


@dataclass
class Verdict:
    leaderships: int = 0
    handovers: int = 0
    unobserved: int = 0  # beliefs whose node the observer never saw
    overlaps: list[Overlap] = field(default_factory=list)
    epoch_violations: list[str] = field(default_factory=list)
    not_first: list[str] = field(default_factory=list)

    @property
    def forbidden(self) -> list[Overlap]:
        return [o for o in self.overlaps if o.forbidden]

    @property
    def ok(self) -> bool:
        return not (self.forbidden or self.epoch_violations or self.not_first)

    def summary(self, origin: float = 0.0) -> str:
        lines = [
            f"leaderships {self.leaderships}, handovers {self.handovers}, overlaps allowed "
            f"{len(self.overlaps) - len(self.forbidden)}, forbidden {len(self.forbidden)}, "
            f"epoch violations {len(self.epoch_violations)}, leaders not first "
            f"{len(self.not_first)}, unobserved nodes {self.unobserved}"
        ]
        allowed = [o for o in self.overlaps if not o.forbidden]
        # Every violation, but only the first few allowed overlaps (a run has hundreds
        # when a mutant core is tried).
        lines += [f"  {o.describe(origin)}" for o in self.forbidden[:SHOWN]]
        lines += [f"  {v}" for v in (self.epoch_violations + self.not_first)[:SHOWN]]
        lines += [f"  {o.describe(origin)}" for o in allowed[:5]]
        return "\n".join(lines)


# --- the check -----------------------------------------------------------------------------


def _node_of(belief: Belief, by_czxid: dict[int, NodeLife]) -> NodeLife | None:
    # The epoch is the node's czxid, unique over the whole run (names can repeat after the
    # path is re-created, czxids cannot).
    return by_czxid.get(belief.epoch)


def _existed(node: NodeLife | None, t: float) -> bool:
    # Not proven to exist (never seen, or not listed after t): count it as gone, which can
    # only excuse an overlap, never invent one (Verdict.unobserved counts the never seen).
    return node is not None and node.existed_at(t)


def check(beliefs: Sequence[Belief], nodes: Iterable[NodeLife]) -> Verdict:
    """Judge a recorded history (see the module docstring)."""
    seen = list(nodes)
    by_czxid = {n.czxid: n for n in seen}
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
    _check_first(ordered, by_czxid, seen, verdict)
    return verdict


def _check_epochs(
    ordered: Sequence[Belief], by_czxid: dict[int, NodeLife], verdict: Verdict
) -> None:
    """Epochs never go back over believers whose node provably existed at their flip. A
    believer whose node was already gone learnt late that it had been first (Leadership.granted_zxid
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


def _check_first(
    ordered: Sequence[Belief],
    by_czxid: dict[int, NodeLife],
    seen: Sequence[NodeLife],
    verdict: Verdict,
) -> None:
    """A believer whose node provably existed at its flip owned the first of the nodes that
    provably existed then."""
    for belief in ordered:
        node = _node_of(belief, by_czxid)
        if node is None or not node.existed_at(belief.start):
            continue
        alive = [n for n in seen if n.existed_at(belief.start)]
        order = [c.name for c in election_order({n.name for n in alive} | {node.name})]
        if order and order[0] != node.name:
            ahead = next(n for n in alive if n.name == order[0])
            verdict.not_first.append(
                f"{belief.cand} became leader with {node.name} (epoch {belief.epoch:#x}) while "
                f"{ahead.name}, ahead of it, still existed (listed "
                f"{ahead.last_seen - belief.start:+.4f} s from the flip)"
            )


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
    lists the children and, while the path is missing, watches for its creation.
    """

    def __init__(self, client: KazooClient, path: str) -> None:
        self.client = client
        self.path = path
        self.nodes: list[NodeLife] = []
        self.missed = 0  # listed, then gone before its czxid could be read
        self.listings = 0
        self._alive: dict[str, NodeLife] = {}
        self._incarnation: int | None = None  # the path's czxid at the last listing
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="path-observer", daemon=True)

    def start(self) -> PathObserver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(10)

    def alive(self) -> list[str]:
        with self._lock:
            return sorted(self._alive)

    def _on_event(self, event: WatchedEvent) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.relist()
            self._wake.wait(POLL_S)  # a watch wakes it at once
            self._wake.clear()

    def relist(self) -> None:
        """One listing: extend what it proves, forget what it lacks, read what is new."""
        sent = time.monotonic()
        # Members serve reads from their own, possibly lagging, state: sync first, so the
        # listing is at least as new as the ZooKeeper leader's state after ``sent``.
        self.client.sync("/")
        try:
            listed, parent = self.client.get_children(
                self.path, watch=self._on_event, include_data=True
            )
            children, incarnation = set(listed), parent.czxid
        except NoNodeError:
            children, incarnation = set(), None
            if self.client.exists(self.path, watch=self._on_event) is not None:
                self._wake.set()  # re-created in between: list again
        answered = time.monotonic()
        self.listings += 1
        with self._lock:
            if incarnation != self._incarnation:
                # The path was deleted and re-created: a name may repeat, the node may not.
                self._alive.clear()
                self._incarnation = incarnation
            for name in list(self._alive):
                if name in children:
                    self._alive[name].last_seen = sent
                else:
                    del self._alive[name]
        for name in sorted(children - set(self._alive)):
            self._add(name, answered, sent)

    def _add(self, name: str, answered: float, sent: float) -> None:
        """A new node: created before this listing was answered, still there at ``sent``."""
        stat = self.client.exists(f"{self.path}/{name}")
        if stat is None:
            self.missed += 1
            return
        node = NodeLife(name, stat.czxid, answered, sent)
        with self._lock:
            self.nodes.append(node)
            self._alive[name] = node
