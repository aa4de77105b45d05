"""A small recorder interface between elections and whatever collects metrics.

Elections report transitions here; the default recorder does nothing. Keeping the
interface apart from any metrics library (as client-go's ``LeaderMetric`` does) lets
tests pass their own recorder and lets a process choose Prometheus or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["MetricsRecorder", "NoopRecorder"]


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

    def fenced_write(self, election: str, result: str) -> None:
        pass

    def session_state(self, election: str, state: str) -> None:
        pass

    def lease_source(self, election: str, remaining: Callable[[], float]) -> None:
        pass

    def election_stopped(self, election: str) -> None:
        pass
