"""PrometheusRecorder: the MetricsRecorder (zkelect/metrics/__init__.py) that exposes zkelect's
metrics to Prometheus. It keeps its own small state under one lock and renders it at
scrape time (zkelect/metrics/_families.py); zkelect/metrics/__init__.py says why.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import platform
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import REGISTRY, CollectorRegistry

from zkelect._version import __version__
from zkelect.errors import ConfigurationError
from zkelect.metrics._families import (
    AGGREGATE_LABEL,
    EXIT_CODES,
    SESSION_STATES,
    SWITCHOVER_RESULTS,
    WRITE_RESULTS,
    ChildTotals,
    Row,
    Totals,
    families,
)

__all__ = ["PrometheusRecorder"]

log = logging.getLogger("zkelect")

# Loss reasons that were this process's own choice; every other reason is an involuntary loss.
_VOLUNTARY = frozenset({"resigned", "stopped", "switchover"})
_NAMESPACE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


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


@dataclass
class _Snapshot:
    """A consistent copy of the recorder's state, taken under the lock, rendered outside it."""

    elections: dict[str, _Election] = field(default_factory=dict)
    totals: dict[str, Totals] = field(default_factory=dict)
    child: ChildTotals | None = None


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

    ``supervisor=True`` (``zkelect run``) adds the ``zkelect_child_*`` series of the command
    it supervises (``child_started``, ``child_exited``), present from the start.

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
        supervisor: bool = False,
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
        self._totals: dict[str, Totals] = {}
        if self.aggregate:
            self._totals[AGGREGATE_LABEL] = Totals()
        self._child = ChildTotals() if supervisor else None
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

    def switchover(self, election: str, result: str) -> None:
        if result not in SWITCHOVER_RESULTS:
            log.warning("zkelect: unknown switchover result %r ignored", result)
            return
        with self._lock:
            self._totals_for(election).switchovers[result] += 1

    def switchover_drained(self, election: str, seconds: float) -> None:
        with self._lock:
            self._totals_for(election).observe_drain(max(0.0, seconds))

    def session_state(self, election: str, state: str) -> None:
        if state not in SESSION_STATES:
            log.warning("zkelect: unknown session state %r ignored", state)
            return
        with self._lock:
            current = self._elections.get(election)
            if current is None:
                return
            # The first report (at start) is where the session is, not a change; a state
            # reported again (several candidates of a path share one session) is no change.
            if current.session is not None and current.session != state:
                self._totals_for(election).session_changes[state] += 1
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

    # -- the supervised child (zkelect run) -------------------------------------------------

    def child_started(self) -> None:
        """The supervisor started its command."""
        with self._lock:
            if self._child is not None:
                self._child.starts += 1
                self._child.up = True

    def child_exited(self, code: int, at: float) -> None:
        """The command exited with exit status ``code`` (128+N for signal N) at Unix time ``at``."""
        if code not in EXIT_CODES:
            log.warning("zkelect: child exit status %r out of 0..255 not counted", code)
            code = -1
        with self._lock:
            child = self._child
            if child is None:
                return
            child.up = False
            child.last_exit = float(at)
            if code >= 0:
                child.exits[code] = child.exits.get(code, 0.0) + 1

    # -- collection -------------------------------------------------------------------------

    def _totals_for(self, election: str) -> Totals:
        """Caller holds the lock."""
        key = AGGREGATE_LABEL if self.aggregate else election
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = Totals()
        return totals

    def _snapshot(self) -> _Snapshot:
        with self._lock:
            return _Snapshot(
                elections={name: _copy(state) for name, state in self._elections.items()},
                totals={name: totals.snapshot() for name, totals in self._totals.items()},
                child=None if self._child is None else self._child.snapshot(),
            )

    def collect(self) -> Iterator[Metric]:
        """Every metric family, computed now (prometheus_client's Collector protocol)."""
        snap = self._snapshot()
        rows = self._gauge_rows(snap.elections)
        yield from families(self.namespace, rows, snap.totals, self._build_labels, snap.child)

    def _gauge_rows(self, elections: dict[str, _Election]) -> list[Row]:
        """The gauge values per exported ``election`` label (one row in aggregate mode)."""
        if not self.aggregate:
            return [
                Row(
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
            Row(
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


class _Collector:
    """The object registered in the CollectorRegistry. ``describe`` lists the families
    without sampling them, so registering never calls a lease callable."""

    def __init__(self, recorder: PrometheusRecorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterable[Metric]:
        return self._recorder.collect()

    def describe(self) -> Iterable[Metric]:
        recorder = self._recorder
        child = None if recorder._child is None else ChildTotals()
        return list(families(recorder.namespace, [], {}, recorder._build_labels, child))


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


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
