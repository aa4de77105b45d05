"""What a Prometheus scrape of zkelect shows: the metric families, rendered from a
snapshot of a PrometheusRecorder's state (zkelect/metrics/_prometheus.py).

The metric names are a contract with the shipped alert rules and dashboard
(docs/observability.md lists them); do not rename them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

__all__ = [
    "AGGREGATE_LABEL",
    "DURATION_BUCKETS",
    "EXIT_CODES",
    "SESSION_STATES",
    "TRANSITION_EVENTS",
    "WRITE_RESULTS",
    "ChildTotals",
    "Row",
    "Totals",
    "families",
]

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
#: Values of the ``result`` label of the switchovers counter, as the leader counts them:
#: handed over (drained, then its node deleted), refused, or withdrawn by the requester
#: before the drain began.
SWITCHOVER_RESULTS: tuple[str, ...] = ("handed_over", "refused", "withdrawn")
#: Upper bounds of the switchover drain histogram: a no-op drain, a quick flush, a child
#: stopped within --grace (10 s by default), a slow drain cut at its deadline.
DRAIN_BUCKETS: tuple[float, ...] = (0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: The ``election`` label value of every series in aggregate mode.
AGGREGATE_LABEL = "*"
#: Values the ``code`` label of the child-exits counter can take: an exit status as a shell
#: reports it (128+N for signal N), so at most 256 series.
EXIT_CODES = range(256)


class Totals:
    """Counters and the duration histogram: per election, or one shared set in aggregate mode."""

    def __init__(self) -> None:
        self.transitions = dict.fromkeys(TRANSITION_EVENTS, 0.0)
        self.session_changes = dict.fromkeys(SESSION_STATES, 0.0)  # by the state entered
        self.writes = dict.fromkeys(WRITE_RESULTS, 0.0)
        self.bucket_counts = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf
        self.duration_sum = 0.0
        self.switchovers = dict.fromkeys(SWITCHOVER_RESULTS, 0.0)
        self.drain_counts = [0] * (len(DRAIN_BUCKETS) + 1)
        self.drain_sum = 0.0

    def observe(self, seconds: float) -> None:
        self.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def observe_drain(self, seconds: float) -> None:
        self.drain_counts[bisect.bisect_left(DRAIN_BUCKETS, seconds)] += 1
        self.drain_sum += seconds

    def snapshot(self) -> Totals:
        copy = Totals()
        copy.transitions = dict(self.transitions)
        copy.session_changes = dict(self.session_changes)
        copy.writes = dict(self.writes)
        copy.bucket_counts = list(self.bucket_counts)
        copy.duration_sum = self.duration_sum
        copy.switchovers = dict(self.switchovers)
        copy.drain_counts = list(self.drain_counts)
        copy.drain_sum = self.drain_sum
        return copy


class ChildTotals:
    """The child of ``zkelect run``'s supervisor: whether it runs, its starts and exits."""

    def __init__(self) -> None:
        self.up = False
        self.starts = 0.0
        self.exits: dict[int, float] = {}  # by exit status; a code's series appears with it
        self.last_exit = 0.0  # Unix time of the last exit; 0 before the first

    def snapshot(self) -> ChildTotals:
        copy = ChildTotals()
        copy.up, copy.starts, copy.last_exit = self.up, self.starts, self.last_exit
        copy.exits = dict(self.exits)
        return copy


class Row(NamedTuple):
    """The gauge values of one exported ``election`` label."""

    election: str
    is_leader: float
    epoch: float
    candidates: float
    wrapped: float
    lease: float
    sessions: dict[str, float]


def families(
    namespace: str,
    gauges: list[Row],
    totals: dict[str, Totals],
    build_labels: tuple[str, str, str],
    child: ChildTotals | None = None,
) -> Iterator[Metric]:
    """Every metric family, in the order zkelect has always exported them, then the
    session-transitions counter and (``child`` given: ``zkelect run``) the child's families."""
    by_gauge = _gauge_families(namespace, gauges)
    transitions, writes, duration, sessions = _counter_families(namespace, totals)
    build = GaugeMetricFamily(
        f"{namespace}_build_info",
        "Always 1; the labels say which zkelect, kazoo and Python this process runs.",
        labels=["version", "kazoo_version", "python_version"],
    )
    build.add_metric(list(build_labels), 1.0)
    yield from (by_gauge["is_leader"], by_gauge["epoch"], transitions, duration)
    yield from (by_gauge["candidates"], by_gauge["wrapped"], by_gauge["session"])
    yield from (by_gauge["lease"], writes, build, sessions)
    yield from _switchover_families(namespace, totals)
    if child is not None:
        yield from _child_families(namespace, child)


def _gauge_families(ns: str, gauges: list[Row]) -> dict[str, GaugeMetricFamily]:
    by_election = ["election"]
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
    return {
        "is_leader": is_leader,
        "epoch": epoch,
        "candidates": candidates,
        "wrapped": wrapped,
        "lease": lease,
        "session": session,
    }


def _counter_families(
    ns: str, totals: dict[str, Totals]
) -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily]:
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
        labels=["election"],
    )
    sessions = CounterMetricFamily(
        f"{ns}_session_transitions",
        "Changes of the election's ZooKeeper session state, by the state entered: "
        "suspended (connection lost), connected (reconnected, or a new session after a "
        "loss), lost (the session expired or was closed). In aggregate mode each election "
        "on a session that changes state counts once.",
        labels=["election", "state"],
    )
    for name, total in sorted(totals.items()):
        for event in TRANSITION_EVENTS:
            transitions.add_metric([name, event], total.transitions[event])
        for state in SESSION_STATES:
            sessions.add_metric([name, state], total.session_changes[state])
        for result in WRITE_RESULTS:
            writes.add_metric([name, result], total.writes[result])
        duration.add_metric([name], _buckets(total.bucket_counts), total.duration_sum)
    return transitions, writes, duration, sessions


def _switchover_families(ns: str, totals: dict[str, Totals]) -> Iterator[Metric]:
    switchovers = CounterMetricFamily(
        f"{ns}_switchovers",
        "Planned switchovers this process's leader took part in, by result: handed_over "
        "(drained, then its node deleted), refused, withdrawn (the request went before the "
        "drain began).",
        labels=["election", "result"],
    )
    drain = HistogramMetricFamily(
        f"{ns}_switchover_drain_seconds",
        "How long the leader's work took to drain in a planned switchover (on_draining; "
        "zkelect run: the child's stop), up to the deadline.",
        labels=["election"],
    )
    for name, total in sorted(totals.items()):
        for result in SWITCHOVER_RESULTS:
            switchovers.add_metric([name, result], total.switchovers[result])
        buckets = _buckets(total.drain_counts, DRAIN_BUCKETS)
        drain.add_metric([name], buckets, total.drain_sum)
    yield from (switchovers, drain)


def _child_families(ns: str, child: ChildTotals) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        f"{ns}_child_up",
        "1 while the command zkelect run supervises is running, else 0.",
        value=1.0 if child.up else 0.0,
    )
    starts = CounterMetricFamily(
        f"{ns}_child_starts",
        "Times zkelect run started its command (on election, and on --on-exit restart).",
        value=child.starts,
    )
    exits = CounterMetricFamily(
        f"{ns}_child_exits",
        "Exits of the command zkelect run supervises, on its own or stopped by the "
        "supervisor, by exit status as a shell reports it (128+N: killed by signal N).",
        labels=["code"],
    )
    for code, count in sorted(child.exits.items()):
        exits.add_metric([str(code)], count)
    last = GaugeMetricFamily(
        f"{ns}_child_last_exit_timestamp_seconds",
        "Unix time of the supervised command's last exit; 0 before the first.",
        value=child.last_exit,
    )
    yield from (up, starts, exits, last)


def _buckets(
    counts: Sequence[int], bounds: Sequence[float] = DURATION_BUCKETS
) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs, +Inf last, as the exposition format wants them."""
    rows, running = [], 0
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        running += count
        rows.append(("+Inf" if math.isinf(bound) else repr(bound), float(running)))
    return rows
