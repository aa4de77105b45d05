"""What the exporter observed of each election path, and its Prometheus metrics.

``ObservedElection`` is one path's view (the leader as reader.py read it, and counts the
exporter keeps); ``MetricsCollector`` turns the views into metric families at each scrape.
The metrics are documented in ElectionExporter's docstring and docs/exporter.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from zkelect._election.nodes import Contender, ContenderKind
from zkelect._election.reader import Snapshot

__all__ = ["MAX_LEADER_ID_CHARS", "MetricsCollector", "ObservedElection"]

MAX_LEADER_ID_CHARS = 256  # a label value, not a document: node data may be up to ~1 MiB


@dataclass(frozen=True)
class ObservedElection:
    """What the observer last read for one election path.

    ``leader``: the leader's contender as read (None while there is none); ``leader_id``,
    ``epoch`` (the czxid of its node), ``node``, ``session_id`` and ``kind`` are its parts.
    ``last_epoch`` keeps the last leader's epoch (0 before any), which is what the epoch
    metric shows while there is no leader, so that it never goes backwards. ``changes``
    counts each *new* leader observed after the first look (a leader node with a different
    czxid than the previous leader's); changes that happen faster than the observer can read
    are not all seen, so it is a lower bound. ``reads`` counts successful reads of the path
    (each watch event, reconnect and periodic refresh makes one). ``error`` is the last
    read's failure, None after a successful read. ``sequence_wrapped``: a contender's
    sequence number is negative (ZooKeeper's counter wrapped); ``orders_differ``: Curator's
    and kazoo's string order puts another node first than the leader reported here
    (``zkelect._election.nodes.sequence_wrap``).
    """

    path: str
    leader: Contender | None = None
    candidates: int = 0
    changes: int = 0
    last_epoch: int = 0
    path_exists: bool = False
    observed: bool = False
    reads: int = 0
    error: str | None = None
    sequence_wrapped: bool = False
    orders_differ: bool = False

    @property
    def has_leader(self) -> bool:
        return self.leader is not None

    @property
    def leader_id(self) -> str | None:
        """The leader node's data as UTF-8, cut at MAX_LEADER_ID_CHARS (a label value)."""
        leader = self.leader
        return None if leader is None else leader.candidate_id[:MAX_LEADER_ID_CHARS]

    @property
    def epoch(self) -> int | None:
        return None if self.leader is None else self.leader.epoch

    @property
    def node(self) -> str | None:
        return None if self.leader is None else self.leader.name

    @property
    def session_id(self) -> int | None:
        return None if self.leader is None else self.leader.session_id

    @property
    def kind(self) -> ContenderKind | None:
        return None if self.leader is None else self.leader.kind

    def after(self, snapshot: Snapshot) -> ObservedElection:
        """This view after a successful read of the path."""
        leader = snapshot.leader
        wrap = snapshot.sequence_wrap
        new_leader = leader is not None and leader.epoch != self.last_epoch
        return replace(
            self,
            leader=leader,
            candidates=len(snapshot.contenders),
            changes=self.changes + (1 if new_leader and self.observed else 0),
            last_epoch=self.last_epoch if leader is None else leader.epoch,
            path_exists=snapshot.exists,
            observed=True,
            reads=self.reads + 1,
            error=None,
            sequence_wrapped=wrap.wrapped,
            orders_differ=wrap.orders_differ,
        )


class MetricsCollector:
    """Builds the metric families from the exporter's state at each scrape, so that series
    exist from the start and an old leader's series disappears with it."""

    def __init__(
        self, views: Callable[[], dict[str, ObservedElection]], connected: Callable[[], bool]
    ) -> None:
        self._views = views
        self._connected = connected

    def describe(self) -> list[Metric]:
        return self._families({}, connected=None)

    def collect(self) -> list[Metric]:
        return self._families(self._views(), connected=self._connected())

    @staticmethod
    def _families(views: dict[str, ObservedElection], *, connected: bool | None) -> list[Metric]:
        has_leader = GaugeMetricFamily(
            "zkelect_observed_has_leader",
            "1 while the observed election path has a leader, else 0.",
            labels=["election"],
        )
        leader = GaugeMetricFamily(
            "zkelect_observed_leader",
            "1 for the current leader of the observed election; leader_id is its node's data.",
            labels=["election", "leader_id"],
        )
        epoch = GaugeMetricFamily(
            "zkelect_observed_leader_epoch",
            "czxid of the leader's node (of the last leader while there is none; 0 before).",
            labels=["election"],
        )
        candidates = GaugeMetricFamily(
            "zkelect_observed_candidates",
            "Contenders under the observed election path (refreshed at leader changes and "
            "periodically).",
            labels=["election"],
        )
        wrapped = GaugeMetricFamily(
            "zkelect_observed_sequence_wrapped",
            "1 while a contender under the observed election path has a negative sequence "
            "number (ZooKeeper's counter wrapped: Curator and kazoo order such nodes "
            "differently), else 0.",
            labels=["election"],
        )
        changes = CounterMetricFamily(
            "zkelect_observed_leader_changes",
            "New leaders observed since the exporter started.",
            labels=["election"],
        )
        up = GaugeMetricFamily(
            "zkelect_observer_connected",
            "1 while the exporter's ZooKeeper session is connected (else values are stale).",
        )
        for path, view in views.items():
            has_leader.add_metric([path], 1.0 if view.has_leader else 0.0)
            if view.has_leader and view.leader_id is not None:
                leader.add_metric([path, view.leader_id], 1.0)
            epoch.add_metric([path], float(view.last_epoch))
            candidates.add_metric([path], float(view.candidates))
            wrapped.add_metric([path], 1.0 if view.sequence_wrapped else 0.0)
            changes.add_metric([path], float(view.changes))
        if connected is not None:
            up.add_metric([], 1.0 if connected else 0.0)
        return [has_leader, leader, epoch, candidates, wrapped, changes, up]
