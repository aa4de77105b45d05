"""A small recorder interface between elections and whatever collects metrics, and its
Prometheus implementation.

Elections report transitions here; the default recorder does nothing. Keeping the
interface apart from any metrics library (as client-go's ``LeaderMetric`` does) lets
tests pass their own recorder and lets a process choose Prometheus or nothing.

``PrometheusRecorder`` keeps its own small state and renders it at scrape time (a custom
collector) rather than driving prometheus_client's Gauge/Counter objects, because:

* a stopped election's series must disappear *atomically* with its state, so a callback
  racing with ``election_stopped`` can never leave ``is_leader=1`` behind;
* aggregate mode needs values (number of elections led, minimum lease among leaders)
  that are functions of every election's state, computed when Prometheus asks;
* the lease gauge is read from a callable at collection time, never pushed.

The metric names are a contract with the shipped alert rules and dashboard
(docs/observability.md lists them); do not rename them.
"""

from __future__ import annotations

import bisect
import importlib.metadata
import logging
import math
import platform
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, CollectorRegistry

from zkelect._version import __version__
from zkelect.errors import ConfigurationError

__all__ = [
    "AGGREGATE_LABEL",
    "DURATION_BUCKETS",
    "SESSION_STATES",
    "TRANSITION_EVENTS",
    "WRITE_RESULTS",
    "MetricsRecorder",
    "NoopRecorder",
    "PrometheusRecorder",
]

log = logging.getLogger("zkelect")


class MetricsRecorder(Protocol):
    """What an election reports. Methods must be quick and must not raise."""

    def election_started(self, election: str) -> None:
        """A candidate joined ``election``: create its series so dashboards see no gap."""

    def leadership_acquired(self, election: str, epoch: int, waited_seconds: float) -> None:
        """This process now leads ``election`` with ``epoch``, after waiting that long."""

    def leadership_lost(self, election: str, reason: str) -> None:
        """This process no longer leads ``election`` (reason: resigned, suspended, ...)."""

    def candidates_seen(self, election: str, count: int) -> None:
        """The number of contenders read on the last look at the election path."""

    def sequence_wrapped(self, election: str, wrapped: bool) -> None:
        """Whether the last look at the election path found a contender with a negative
        sequence number (``zkelect._election.nodes.sequence_wrap``): ZooKeeper's counter wrapped."""

    def fenced_write(self, election: str, result: str) -> None:
        """A fenced write finished with ``result``: 'accepted' or 'rejected'."""

    def session_state(self, election: str, state: str) -> None:
        """The session ``election`` runs on is now 'connected', 'suspended' or 'lost'."""

    def lease_source(self, election: str, remaining: Callable[[], float]) -> None:
        """``remaining()`` gives the seconds of lease left while leading (0 otherwise);
        read it when metrics are collected."""

    def election_stopped(self, election: str) -> None:
        """The candidate left ``election``: drop or zero its series."""


class NoopRecorder:
    """The default: records nothing."""

    def election_started(self, election: str) -> None:
        pass

    def leadership_acquired(self, election: str, epoch: int, waited_seconds: float) -> None:
        pass

    def leadership_lost(self, election: str, reason: str) -> None:
        pass

    def candidates_seen(self, election: str, count: int) -> None:
        pass

    def sequence_wrapped(self, election: str, wrapped: bool) -> None:
        pass

    def fenced_write(self, election: str, result: str) -> None:
        pass

    def session_state(self, election: str, state: str) -> None:
        pass

    def lease_source(self, election: str, remaining: Callable[[], float]) -> None:
        pass

    def election_stopped(self, election: str) -> None:
        pass


# ----------------------------------------------------------------------------- Prometheus

#: Upper bounds of the election-duration histogram: a loopback handover takes about a
#: millisecond, a crash failover a session timeout (seconds), a queue of slow leaders
#: a minute or more (those land in +Inf).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Values of the ``event`` label of the transitions counter.
TRANSITION_EVENTS: tuple[str, ...] = ("acquired", "lost", "resigned")
#: Values of the ``state`` label of the session-state gauge (``ConnectionState``).
SESSION_STATES: tuple[str, ...] = ("connected", "suspended", "lost")
#: Values of the ``result`` label of the fenced-writes counter.
WRITE_RESULTS: tuple[str, ...] = ("accepted", "rejected")
#: The ``election`` label value of every series in aggregate mode.
AGGREGATE_LABEL = "*"

# Loss reasons that were this process's own choice; every other reason is an involuntary loss.
_VOLUNTARY = frozenset({"resigned", "stopped"})
_NAMESPACE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Totals:
    """Counters and the duration histogram: per election, or one shared set in aggregate mode."""

    def __init__(self) -> None:
        self.transitions = dict.fromkeys(TRANSITION_EVENTS, 0.0)
        self.writes = dict.fromkeys(WRITE_RESULTS, 0.0)
        self.bucket_counts = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf
        self.duration_sum = 0.0

    def observe(self, seconds: float) -> None:
        self.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def snapshot(self) -> _Totals:
        copy = _Totals()
        copy.transitions = dict(self.transitions)
        copy.writes = dict(self.writes)
        copy.bucket_counts = list(self.bucket_counts)
        copy.duration_sum = self.duration_sum
        return copy


@dataclass
class _Election:
    """What the gauges of one started election are computed from."""

    refs: int = 1  # candidates in this process on this path that are started
    leading: bool = False
    epoch: int = 0
    candidates: int = 0
    wrapped: bool = False
    session: str | None = None  # None until the first session_state: all three series are 0
    lease: Callable[[], float] | None = None


class _Row(NamedTuple):
    """The gauge values of one exported ``election`` label."""

    election: str
    is_leader: float
    epoch: float
    candidates: float
    wrapped: float
    lease: float
    sessions: dict[str, float]


@dataclass
class _Snapshot:
    """A consistent copy of the recorder's state, taken under the lock, rendered outside it."""

    elections: dict[str, _Election] = field(default_factory=dict)
    totals: dict[str, _Totals] = field(default_factory=dict)


class PrometheusRecorder:
    """A MetricsRecorder that exposes zkelect's metrics to Prometheus.

    Pass it as ``Election(..., metrics=recorder)``; one recorder serves every election of
    a process. Series of an election exist from ``election_started`` on (counters at 0,
    all three session states), so dashboards and ``rate()`` see no gaps. A stopped
    election's series are *removed*: a process that leaves an election stops reporting on
    it, and nothing it reports afterwards (a late callback from another thread) can bring
    back ``is_leader=1``. Counters restart at 0 if the election is joined again, which
    ``rate()``/``increase()`` treat as an ordinary counter reset.

    ``aggregate=True`` is for a process in thousands of elections: every series carries
    ``election="*"`` and values are combined (is_leader = number of elections led,
    candidates = sum, sequence_wrapped = number of elections whose counter wrapped,
    lease = minimum among the elections led, epoch = highest, counters
    and the duration histogram shared, session_state = number of elections per state), so
    the number of series does not grow with the number of elections.

    ``registry`` defaults to prometheus_client's global REGISTRY; tests pass a fresh
    ``CollectorRegistry()``. Callbacks may come from any thread: every method takes one
    lock for a few dictionary operations; the lease callables are called at scrape time,
    outside the lock.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        aggregate: bool = False,
        namespace: str = "zkelect",
    ) -> None:
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise ConfigurationError(
                f"namespace must be a Prometheus name prefix like 'zkelect' "
                f"([a-zA-Z_][a-zA-Z0-9_]*), got {namespace!r}"
            )
        self.registry = REGISTRY if registry is None else registry
        self.aggregate = bool(aggregate)
        self.namespace = namespace
        self._lock = threading.Lock()
        self._elections: dict[str, _Election] = {}
        self._totals: dict[str, _Totals] = {}
        if self.aggregate:
            self._totals[AGGREGATE_LABEL] = _Totals()
        self._build_labels = (__version__, _package_version("kazoo"), platform.python_version())
        self._collector = _Collector(self)
        try:
            self.registry.register(self._collector)
        except ValueError as exc:
            raise ConfigurationError(
                f"this registry already has metrics named {namespace}_*: share one "
                "PrometheusRecorder between all elections of a process, pass another "
                "registry (CollectorRegistry()) or another namespace"
            ) from exc

    def unregister(self) -> None:
        """Remove this recorder's metrics from its registry (they are no longer exported)."""
        self.registry.unregister(self._collector)

    # -- MetricsRecorder --------------------------------------------------------------------

    def election_started(self, election: str) -> None:
        with self._lock:
            state = self._elections.get(election)
            if state is not None:
                state.refs += 1
            else:
                self._elections[election] = _Election()
            self._totals_for(election)  # counters exist at 0 from the start

    def leadership_acquired(self, election: str, epoch: int, waited_seconds: float) -> None:
        with self._lock:
            state = self._elections.get(election)
            if state is None:
                return  # not started, or already stopped: a late callback
            totals = self._totals_for(election)
            totals.transitions["acquired"] += 1
            totals.observe(max(0.0, float(waited_seconds)))
            # Epoch 0 means the leadership ended before the election read its epoch (the
            # loss may already have been reported): count the acquisition, keep is_leader.
            if epoch > 0:
                state.leading = True
                state.epoch = int(epoch)

    def leadership_lost(self, election: str, reason: str) -> None:
        event = "resigned" if reason in _VOLUNTARY else "lost"
        with self._lock:
            state = self._elections.get(election)
            if state is None:
                return
            state.leading = False
            self._totals_for(election).transitions[event] += 1

    def candidates_seen(self, election: str, count: int) -> None:
        with self._lock:
            state = self._elections.get(election)
            if state is not None:
                state.candidates = max(0, int(count))

    def sequence_wrapped(self, election: str, wrapped: bool) -> None:
        with self._lock:
            state = self._elections.get(election)
            if state is not None:
                state.wrapped = bool(wrapped)

    def fenced_write(self, election: str, result: str) -> None:
        # Counted even for an election that is not started here: a fenced store may run in
        # a process that takes part in no election.
        key = "rejected" if result == "rejected" else "accepted"
        if result not in WRITE_RESULTS:
            log.warning("zkelect: unknown fenced-write result %r counted as %r", result, key)
        with self._lock:
            self._totals_for(election).writes[key] += 1

    def session_state(self, election: str, state: str) -> None:
        if state not in SESSION_STATES:
            log.warning("zkelect: unknown session state %r ignored", state)
            return
        with self._lock:
            current = self._elections.get(election)
            if current is not None:
                current.session = state

    def lease_source(self, election: str, remaining: Callable[[], float]) -> None:
        with self._lock:
            state = self._elections.get(election)
            if state is not None:
                state.lease = remaining

    def election_stopped(self, election: str) -> None:
        with self._lock:
            state = self._elections.get(election)
            if state is None:
                return
            state.refs -= 1
            if state.refs > 0:
                return
            del self._elections[election]
            if not self.aggregate:
                self._totals.pop(election, None)

    # -- collection -------------------------------------------------------------------------

    def _totals_for(self, election: str) -> _Totals:
        """Caller holds the lock."""
        key = AGGREGATE_LABEL if self.aggregate else election
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = _Totals()
        return totals

    def _snapshot(self) -> _Snapshot:
        with self._lock:
            return _Snapshot(
                elections={name: _copy(state) for name, state in self._elections.items()},
                totals={name: totals.snapshot() for name, totals in self._totals.items()},
            )

    def collect(self) -> Iterator[Metric]:
        """Every metric family, computed now (prometheus_client's Collector protocol)."""
        snap = self._snapshot()
        yield from self._families(self._gauge_rows(snap.elections), snap.totals)

    def _gauge_rows(self, elections: dict[str, _Election]) -> list[_Row]:
        """The gauge values per exported ``election`` label (one row in aggregate mode)."""
        if not self.aggregate:
            return [
                _Row(
                    election=name,
                    is_leader=1.0 if state.leading else 0.0,
                    epoch=float(state.epoch),
                    candidates=float(state.candidates),
                    wrapped=1.0 if state.wrapped else 0.0,
                    lease=_read_lease(name, state),
                    sessions={s: 1.0 if state.session == s else 0.0 for s in SESSION_STATES},
                )
                for name, state in sorted(elections.items())
            ]
        states = list(elections.values())
        # Only leaders' leases matter here: with 10,000 elections, do not call 10,000 sources.
        leases = [_read_lease(name, e) for name, e in elections.items() if e.leading]
        return [
            _Row(
                election=AGGREGATE_LABEL,
                is_leader=float(len(leases)),
                epoch=float(max((e.epoch for e in states), default=0)),
                candidates=float(sum(e.candidates for e in states)),
                wrapped=float(sum(1 for e in states if e.wrapped)),
                lease=min(leases, default=0.0),
                sessions={
                    s: float(sum(1 for e in states if e.session == s)) for s in SESSION_STATES
                },
            )
        ]

    def _families(
        self,
        gauges: list[_Row],
        totals: dict[str, _Totals],
    ) -> Iterator[Metric]:
        ns, by_election = self.namespace, ["election"]
        is_leader = GaugeMetricFamily(
            f"{ns}_is_leader",
            "1 while this process leads the election, else 0.",
            labels=by_election,
        )
        epoch = GaugeMetricFamily(
            f"{ns}_leader_epoch",
            "Epoch (czxid of the candidate node) of this process's current or most recent "
            "leadership of the election; 0 if it never led.",
            labels=by_election,
        )
        candidates = GaugeMetricFamily(
            f"{ns}_candidates",
            "Contenders seen on this candidate's last read of the election path.",
            labels=by_election,
        )
        wrapped = GaugeMetricFamily(
            f"{ns}_sequence_wrapped",
            "1 while this candidate's last read of the election path found a contender with a "
            "negative sequence number (ZooKeeper's counter wrapped: Curator and kazoo order "
            "such nodes differently), else 0.",
            labels=by_election,
        )
        lease = GaugeMetricFamily(
            f"{ns}_lease_remaining_seconds",
            "Seconds the leader may still assume it leads without hearing from ZooKeeper; "
            "0 when not leading.",
            labels=by_election,
        )
        session = GaugeMetricFamily(
            f"{ns}_session_state",
            "1 for the current state of the election's ZooKeeper session, 0 for the others.",
            labels=["election", "state"],
        )
        for row in gauges:
            is_leader.add_metric([row.election], row.is_leader)
            epoch.add_metric([row.election], row.epoch)
            candidates.add_metric([row.election], row.candidates)
            wrapped.add_metric([row.election], row.wrapped)
            lease.add_metric([row.election], row.lease)
            for state_name in SESSION_STATES:
                session.add_metric([row.election, state_name], row.sessions[state_name])

        transitions = CounterMetricFamily(
            f"{ns}_leadership_transitions",
            "Leadership changes of this process: acquired, lost (involuntarily) or resigned "
            "(resign() or stop()).",
            labels=["election", "event"],
        )
        writes = CounterMetricFamily(
            f"{ns}_fenced_writes",
            "Fenced writes by result: accepted, or rejected for a stale epoch.",
            labels=["election", "result"],
        )
        duration = HistogramMetricFamily(
            f"{ns}_election_duration_seconds",
            "Time from joining (or the predecessor leaving) to being elected.",
            labels=by_election,
        )
        for name, total in sorted(totals.items()):
            for event in TRANSITION_EVENTS:
                transitions.add_metric([name, event], total.transitions[event])
            for result in WRITE_RESULTS:
                writes.add_metric([name, result], total.writes[result])
            duration.add_metric([name], _buckets(total.bucket_counts), total.duration_sum)

        build = GaugeMetricFamily(
            f"{ns}_build_info",
            "Always 1; the labels say which zkelect, kazoo and Python this process runs.",
            labels=["version", "kazoo_version", "python_version"],
        )
        build.add_metric(list(self._build_labels), 1.0)
        yield from (
            is_leader, epoch, transitions, duration, candidates, wrapped, session, lease, writes,
        )  # fmt: skip
        yield build


class _Collector:
    """The object registered in the CollectorRegistry. ``describe`` lists the families
    without sampling them, so registering never calls a lease callable."""

    def __init__(self, recorder: PrometheusRecorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterable[Metric]:
        return self._recorder.collect()

    def describe(self) -> Iterable[Metric]:
        return list(self._recorder._families([], {}))


def _copy(state: _Election) -> _Election:
    return _Election(
        refs=state.refs,
        leading=state.leading,
        epoch=state.epoch,
        candidates=state.candidates,
        wrapped=state.wrapped,
        session=state.session,
        lease=state.lease,
    )


def _read_lease(name: str, state: _Election) -> float:
    """The lease of one election, read now; 0 (never trust it) if the callable fails."""
    if state.lease is None:
        return 0.0
    try:
        value = float(state.lease())
    except Exception:
        log.debug("zkelect: lease source of %s failed", name, exc_info=True)
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def _buckets(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs, +Inf last, as the exposition format wants them."""
    rows, running = [], 0
    for bound, count in zip((*DURATION_BUCKETS, math.inf), counts, strict=True):
        running += count
        rows.append(("+Inf" if math.isinf(bound) else repr(bound), float(running)))
    return rows


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
