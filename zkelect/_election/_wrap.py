"""Reporting ZooKeeper's sequence-counter wrap as the candidacy sees it (docs/safety.md)."""

from __future__ import annotations

import logging

from zkelect._election.nodes import CandidateNode, sequence_wrap
from zkelect.metrics import MetricsRecorder

__all__ = ["WrapReport"]

log = logging.getLogger("zkelect")


class WrapReport:
    """The gauge at every look, the log once per change of the verdict (it lasts until the
    path is recreated)."""

    def __init__(self, path: str, metrics: MetricsRecorder) -> None:
        self._path = path
        self._metrics = metrics
        self._verdict = (False, False)  # (wrapped, orders_differ) last reported

    def report(self, order: list[CandidateNode]) -> None:
        """Every look pays only a scan for a negative sequence (this is on the handover's
        path, with thousands of candidates); the orders are compared only once one is found."""
        wrapped = any(node.sequence < 0 for node in order)
        self._metrics.sequence_wrapped(self._path, wrapped)
        if not wrapped and self._verdict == (False, False):
            return
        wrap = sequence_wrap(order)
        verdict = (wrap.wrapped, wrap.orders_differ)
        if verdict == self._verdict:
            return
        self._verdict = verdict
        warning = wrap.warning(self._path)
        if warning is not None:
            log.warning("zkelect %s", warning)
        else:
            log.info(
                "zkelect %s: no negative sequence number any more; zkelect's, Curator's and "
                "kazoo's orders agree",
                self._path,
            )
