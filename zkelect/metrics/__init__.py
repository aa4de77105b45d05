"""A small recorder interface between elections and whatever collects metrics, and its
Prometheus implementation.

Elections report transitions here; the default recorder does nothing. Keeping the
interface apart from any metrics library (as client-go's ``LeaderMetric`` does) lets
tests pass their own recorder and lets a process choose Prometheus or nothing.

``PrometheusRecorder`` (``_prometheus.py`` here; what a scrape shows: ``_families.py``)
keeps its own small state and renders it at scrape time (a custom collector) rather than
driving prometheus_client's Gauge/Counter objects, because:

* a stopped election's series must disappear *atomically* with its state, so a callback
  racing with ``election_stopped`` can never leave ``is_leader=1`` behind;
* aggregate mode needs values (number of elections led, minimum lease among leaders)
  that are functions of every election's state, computed when Prometheus asks;
* the lease gauge is read from a callable at collection time, never pushed.

The metric names are a contract with the shipped alert rules and dashboard
(docs/observability.md lists them); do not rename them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from zkelect.metrics._families import (
    AGGREGATE_LABEL,
    DURATION_BUCKETS,
    EXIT_CODES,
    SESSION_STATES,
    TRANSITION_EVENTS,
    WRITE_RESULTS,
)
from zkelect.metrics._prometheus import PrometheusRecorder

__all__ = [
    "AGGREGATE_LABEL",
    "DURATION_BUCKETS",
    "EXIT_CODES",
    "SESSION_STATES",
    "TRANSITION_EVENTS",
    "WRITE_RESULTS",
    "MetricsRecorder",
    "NoopRecorder",
    "PrometheusRecorder",
]


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
        """The session ``election`` runs on is now 'connected', 'suspended' or 'lost' (the
        first call, at start, says where it is; later ones are counted as transitions)."""

    def lease_source(self, election: str, remaining: Callable[[], float]) -> None:
        """``remaining()`` gives the seconds of lease left while leading (0 otherwise);
        read it when metrics are collected."""

    def election_stopped(self, election: str) -> None:
        """The candidate left ``election``: drop or zero its series."""

    def switchover(self, election: str, result: str) -> None:
        """This leader ended a planned switchover with ``result``: 'handed_over', 'refused'
        or 'withdrawn'. (Optional: a recorder without it is not told.)"""

    def switchover_drained(self, election: str, seconds: float) -> None:
        """This leader's work took ``seconds`` to drain for a switchover. (Optional.)"""


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

    def switchover(self, election: str, result: str) -> None:
        pass

    def switchover_drained(self, election: str, seconds: float) -> None:
        pass
