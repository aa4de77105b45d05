"""The local lease (R7): until when this process may assume its session lives on the servers.

kazoo reports a lost session only after it reconnects, so a leader cut off from every
server would believe it leads for as long as the partition lasts. The lease ends it
earlier: at ``touched + timeout * (1 - margin_ratio)``, where ``touched`` is the latest
moment the ZooKeeper *leader* provably heard from this session. The leader expires a
session ``timeout`` after the last touch it knows of (at a tick boundary, so never sooner),
so the lease ends ``timeout * margin_ratio`` before the earliest moment another candidate
could be elected (:meth:`Lease.successor_possible_at`).

What proves a touch (the arithmetic is stated, and unit-tested, in docs/safety.md):

1. **A connection made.** A new session is created by the leader; a known session is
   revalidated with the leader when a client reconnects (with any member). Either way the
   leader touched the session after the ConnectRequest was sent: ``touched >= sent``.
2. **Two answered requests that went through the leader** (writes, ``sync``) on one
   connection, the second sent at least ``report_delay`` after the first was answered.
   A request to a follower touches the session *there*; the follower reports its touches
   to the leader in its answer to the leader's ping, every half tick, on the same TCP
   connection that later carries the second request to the leader. So when the leader
   handles the second request it knows of the first one's touch, made after the first was
   sent: ``touched >= sent(first)``. ``report_delay`` bounds half a tick: ZooKeeper grants
   sessions of at least 2 ticks (its default ``minSessionTimeout``), so half a tick is at
   most a quarter of the session timeout.

One answer alone proves nothing: its request may have waited in a buffer (a silent link,
a frozen member) and reached the servers just before they expired the session, long after
it was sent. Rule 2 needs an answer first and a *new* request after it, so a late answer
can never stretch the lease of a dying session.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from zkelect.clock import Clock

__all__ = ["STOP_SAFETY", "Lease", "LeaseFigures", "lease_figures", "report_delay"]

#: The share of the margin kept between ``Leadership.stop_by`` and a possible successor.
STOP_SAFETY = 0.1
#: The most answers kept per connection as candidates for rule 2's first request.
_KEPT_ANSWERS = 64


def report_delay(session_timeout: float) -> float:
    """How late a follower may report a touch to the leader: half a tick, at most a quarter
    of the session timeout (sessions are at least 2 ticks long)."""
    return session_timeout / 4.0


@dataclass(frozen=True)
class LeaseFigures:
    """The lease's arithmetic for one session timeout, in seconds.

    In a healthy steady state the heartbeat is answered every ``heartbeat`` (plus a round
    trip), and each answer pairs (rule 2) with one ``partner_age`` older: right after a
    renewal the lease has ``after_renewal`` left, and ``before_renewal`` just before the next.
    A leader cut off from the servers revokes itself at most ``after_renewal`` after the last
    answer it got, ``margin`` before the servers could elect anyone else.
    """

    session_timeout: float
    margin_ratio: float
    heartbeat: float
    report_delay: float

    @property
    def margin(self) -> float:
        """From the lease's end to the earliest moment the servers could expire the session."""
        return self.session_timeout * self.margin_ratio

    @property
    def stop_within(self) -> float:
        """After the lease ran out, how long leader-only work may take to stop: the margin,
        less a tenth of it kept for the stop itself (a SIGKILL, a cancellation) to land
        before the servers could elect a successor (``Leadership.stop_by``)."""
        return self.margin * (1.0 - STOP_SAFETY)

    @property
    def partner_age(self) -> float:
        """How much older than the newest answered heartbeat its rule-2 partner is."""
        if self.heartbeat <= 0:  # only for absurdly short sessions: the limit
            return self.report_delay
        return math.ceil(self.report_delay / self.heartbeat - 1e-9) * self.heartbeat

    @property
    def after_renewal(self) -> float:
        return self.session_timeout * (1.0 - self.margin_ratio) - self.partner_age

    @property
    def before_renewal(self) -> float:
        return self.after_renewal - self.heartbeat


def lease_figures(
    session_timeout: float, margin_ratio: float, heartbeat: float | None = None
) -> LeaseFigures:
    """The figures for a session timeout, a margin ratio and a heartbeat interval (default:
    a quarter of the session timeout, as the session sends it)."""
    beat = session_timeout / 4.0 if heartbeat is None else heartbeat
    return LeaseFigures(session_timeout, margin_ratio, beat, report_delay(session_timeout))


class Lease:
    """The lease of one session, apart from threads and I/O so it can be unit-tested.

    ``timeout`` and ``report_delay`` are read at each use: kazoo learns the negotiated
    session timeout only while connecting.
    """

    def __init__(
        self,
        clock: Clock,
        margin_ratio: float,
        timeout: Callable[[], float],
        report_delay: Callable[[], float],
    ) -> None:
        self._clock = clock
        self._margin_ratio = margin_ratio
        self._timeout = timeout
        self._report_delay = report_delay
        self._lock = threading.Lock()
        self._session: int | None = None
        self._generation: int | None = None
        self._touched: float | None = None
        self._answers: list[tuple[float, float]] = []  # (sent, answered), this connection

    def reset(self, session_id: int | None) -> None:
        """A new (or no) session: what proved the old one's touches no longer counts."""
        with self._lock:
            if session_id != self._session:
                self._session = session_id
                self._generation = None
                self._touched = None
                self._answers.clear()

    def connected(self, session_id: int | None, generation: int, sent_at: float | None) -> None:
        """Connection ``generation`` was made for ``session_id`` by a ConnectRequest sent at
        ``sent_at`` (None if unknown: a client that was connected before we saw it)."""
        self.reset(session_id)
        with self._lock:
            self._generation = generation
            self._answers.clear()  # rule 2 pairs answers of one connection only
            if session_id is not None and sent_at is not None:
                self._touch(sent_at)

    def ack(
        self, sent_at: float, answered_at: float, session_id: int | None, generation: int
    ) -> None:
        """A request sent at ``sent_at`` on connection ``generation`` went through the leader
        and was answered at ``answered_at``."""
        with self._lock:
            if session_id is None or session_id != self._session:
                return
            if generation != self._generation:
                return  # sent on another connection (or before we knew this one)
            latest = sent_at - self._report_delay()
            partners = [sent for sent, answered in self._answers if answered <= latest]
            if partners:
                self._touch(max(partners))
            touched = self._touched
            self._answers = [a for a in self._answers if touched is None or a[0] > touched]
            self._answers.append((sent_at, answered_at))
            del self._answers[:-_KEPT_ANSWERS]

    def _touch(self, at: float) -> None:
        if self._touched is None or at > self._touched:
            self._touched = at

    @property
    def touched_at(self) -> float | None:
        """The latest moment the ZooKeeper leader provably heard from this session."""
        with self._lock:
            return self._touched

    def deadline(self) -> float | None:
        touched = self.touched_at
        timeout = self._timeout()
        if touched is None or timeout <= 0:
            return None
        return touched + timeout * (1.0 - self._margin_ratio)

    def successor_possible_at(self) -> float | None:
        """The earliest moment the servers could expire the session (and elect another
        leader): ``touched + timeout``. None while nothing is proven."""
        touched = self.touched_at
        return None if touched is None else touched + self._timeout()

    def remaining(self) -> float:
        deadline = self.deadline()
        return 0.0 if deadline is None else max(0.0, deadline - self._clock())
