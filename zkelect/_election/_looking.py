"""Our looks at the queue: the election path's children in election order.

A look uses the children read ahead when there are some (a watch's callback sends the
re-read before its step is even scheduled; a batched create knows them, or reads them the
moment it is answered), else reads them now, after a sync when a recheck asks for it.
Each look also reports ZooKeeper's sequence-counter wrap as it shows it (docs/safety.md).
"""

from __future__ import annotations

import logging

from zkelect._election._watching import Watches
from zkelect._election.nodes import Contender, ParsedNames, sequence_wrap
from zkelect._election.ports import Children, SessionPort
from zkelect._zookeeper.outcomes import Listing, NoNode
from zkelect._zookeeper.requests import listing_of
from zkelect.metrics import MetricsRecorder

__all__ = ["Looks", "WrapReport"]

log = logging.getLogger("zkelect")


class Looks:
    """One candidacy's reads of the children; its fields belong to the candidacy's actor."""

    def __init__(
        self, session: SessionPort, path: str, metrics: MetricsRecorder, watches: Watches
    ) -> None:
        self._session = session
        self._path = path
        self._metrics = metrics
        self._watches = watches
        self._wrap = WrapReport(path, metrics)
        self._parsed = ParsedNames()
        #: The children, read (or known) ahead of the step that needs them.
        self.prefetched: Children = None
        self.zxid = 0  # the state our last look at the children showed

    def order(self, recheck: bool) -> list[Contender]:
        """The candidates in election order, foreign nodes skipped (and the wrap reported)."""
        try:
            children = self._children(recheck)
        except NoNode:
            children = []  # the election path itself was deleted (R10)
        order = self._watches.skip_foreign(self._parsed.order(children), children)
        self._metrics.candidates_seen(self._path, len(order))
        self._wrap.report(order)
        return order

    def _children(self, recheck: bool) -> list[str]:
        """The children, read ahead or now; remembers the zxid of the state they show.

        Read now after a revocation or a reconnect (``recheck``): after a sync, so that a
        member that lags behind the leader cannot show us first in a stale queue.
        """
        prefetched, self.prefetched = self.prefetched, None
        if isinstance(prefetched, Listing):
            listing = prefetched
        elif prefetched is not None:
            listing = listing_of(prefetched.result())
        else:
            if recheck:
                self._session.sync()
            listing = self._session.listing(self._path)
        self.zxid = listing.pzxid
        return listing.names


class WrapReport:
    """The gauge at every look, the log once per change of the verdict (it lasts until the
    path is recreated)."""

    def __init__(self, path: str, metrics: MetricsRecorder) -> None:
        self._path = path
        self._metrics = metrics
        self._verdict = (False, False)  # (wrapped, orders_differ) last reported

    def report(self, order: list[Contender]) -> None:
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
