"""Keeping a session's lease: the heartbeat that renews it, the timer that says it ran out,
and the watchdog for a silent connection that the heartbeat would otherwise blind (R12).

* **The heartbeat** is a ``sync`` (a round trip through the ZooKeeper leader) every
  heartbeat interval, a quarter of the session timeout by default; each answer pairs with
  the one before it to prove a touch (zkelect/_lease.py, rule 2).
* **The lease timer** calls the elections watching the lease when it runs out, and
  **lease waiters** once it is proven again.
* **The watchdog**: kazoo pings only when it has sent nothing for a while, and the heartbeat
  always has; so the session applies kazoo's own rule itself (nothing heard for 2/3 of the
  session timeout: drop the connection and reconnect, other members first, on the same
  session; see hooks.py).

One :class:`Heartbeat` per ``Session``; it shares the session's lock, and reads its timers,
state and figures, which change as the session is acquired, released and reconnected.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from zkelect._dispatch import TimerHandle
from zkelect._zookeeper.outcomes import ConnectionState

if TYPE_CHECKING:
    from zkelect._zookeeper.session import Session

__all__ = ["Heartbeat"]

log = logging.getLogger("zkelect")


class Heartbeat:
    """The lease keeping of one session (see the module docstring)."""

    def __init__(self, session: Session, lock: threading.RLock) -> None:
        self._session = session
        self._lock = lock
        self._expiry_listeners: dict[int, Callable[[], None]] = {}
        self._waiters: dict[int, Callable[[], None]] = {}
        self._timer: TimerHandle | None = None
        self._beats = 0  # the heartbeat chain's number: a released session's chain stops
        self.beat_at: float | None = None  # when the chain last beat (a liveness probe reads it)

    def new_chain(self) -> int:
        """The number of a new heartbeat chain: any earlier chain stops at its next beat."""
        with self._lock:
            self._beats += 1
            return self._beats

    def start(self, beats: int, *, beat_now: bool) -> None:
        """Run chain ``beats`` (the first beat now, or an interval from now; nothing if the
        session was released meanwhile) and the watchdog; called when the session is
        acquired by its first user."""
        self.beat_at = self._session.clock()  # a chain starts now (not when an old one ended)
        if beat_now:
            self._beat(beats)
        else:
            self._schedule(beats)
        self._watch_connection()

    def stop(self) -> None:
        """Forget every listener and end the chain (the session's timers are going away).
        Called with the session's lock held."""
        with self._lock:
            self._expiry_listeners.clear()
            self._waiters.clear()
            self._timer = None  # it belongs to those timers
            self._beats += 1

    # -- the lease timer and waiters --------------------------------------------------------

    def watch(self, key: int, on_expiry: Callable[[], None]) -> None:
        """Call ``on_expiry`` (from the timer thread) once the lease runs out."""
        with self._lock:
            self._expiry_listeners[key] = on_expiry
            armed = self._timer is not None
        if not armed:
            self._arm()

    def unwatch(self, key: int) -> None:
        with self._lock:
            self._expiry_listeners.pop(key, None)

    def rearm(self) -> None:
        """Look at the lease's deadline afresh (a new session may have a new timeout)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._arm()

    def _arm(self) -> None:
        timers = self._session.timers
        if timers is None:
            return
        with self._lock:
            if not self._expiry_listeners:
                self._timer = None
                return
            delay = self._session.lease.remaining()
            self._timer = timers.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        if self._session.lease.remaining() > 0:
            self._arm()  # acknowledgements moved the deadline; look again then
            return
        with self._lock:
            expired = list(self._expiry_listeners.values())
            self._expiry_listeners.clear()
            self._timer = None
        for on_expiry in expired:
            try:
                on_expiry()
            except Exception:
                log.exception("zkelect: lease expiry handler failed")

    def when_valid(self, key: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the lease is proven again (at once if it is now)."""
        with self._lock:
            self._waiters[key] = callback
        if self._session.lease.remaining() > 0:
            self.became_valid()

    def became_valid(self) -> None:
        """The lease may have been proven: call the waiters if it is."""
        if self._session.lease.remaining() <= 0:
            return
        with self._lock:
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for callback in waiters:
            try:
                callback()
            except Exception:
                log.exception("zkelect: lease waiter failed")

    def answered(self, sent_at: float, session_id: int | None, generation: int) -> None:
        """A request that went through the ZooKeeper leader was answered."""
        session = self._session
        session.lease.ack(sent_at, session.clock(), session_id, generation)
        if self._waiters:
            self.became_valid()

    # -- the heartbeat ------------------------------------------------------------------------

    def interval(self) -> float:
        """A quarter of the negotiated timeout, or the configured interval (scaled down in
        proportion if the servers granted a shorter session than was asked for)."""
        config = self._session.config
        timeout = self._session.session_timeout
        if config.heartbeat_interval is None:
            return timeout / 4.0
        return config.heartbeat_interval * min(1.0, timeout / config.session_timeout)

    def _schedule(self, beats: int) -> None:
        session = self._session
        timers = session.timers
        if timers is None or beats != self._beats:
            return
        delay = self.interval()
        if session.lease.remaining() <= 0:
            # Not proven: the answer that can prove it is one sent a report delay after the
            # last answer (zkelect/_lease.py, rule 2); no need to wait a whole interval.
            delay = min(delay, session.report_delay())
        timers.call_later(delay, lambda: self._beat(beats))

    def _beat(self, beats: int) -> None:
        # A sync goes through the ZooKeeper leader: its answer renews the lease. The next
        # one goes a heartbeat interval after this answer, so that each answer pairs with
        # the one before it (zkelect/_lease.py, rule 2).
        if beats != self._beats:
            return
        session = self._session
        self.beat_at = session.clock()
        if session.state is not ConnectionState.CONNECTED:
            self._schedule(beats)
            return
        pending = session.send(lambda: session.client.sync_async("/"), via_leader=True)

        def answered() -> None:
            with contextlib.suppress(Exception):
                pending.result()  # renews the lease if it succeeded
            self._schedule(beats)

        pending.when_done(answered)

    # -- the watchdog (R12) ---------------------------------------------------------------------

    def read_timeout(self) -> float:
        """kazoo's own bound for a silent connection: 2/3 of the session timeout."""
        return self._session.session_timeout * 2.0 / 3.0

    def _watch_connection(self) -> None:
        """Drop a connection on which nothing was heard for ``read_timeout()``.

        This is kazoo's own rule; kazoo applies it only through a ping it sends when it has
        sent nothing for half that time, which never happens while the heartbeat runs. The
        heartbeat is answered every quarter of the session timeout on a healthy link, so a
        silence this long means the member or the link is gone: kazoo then reconnects, other
        members first, on the same session, in time for its ephemeral nodes to survive.
        """
        session = self._session
        timers = session.timers
        if timers is None:
            return
        limit = self.read_timeout()
        silent = session.clock() - session.tap.last_heard
        if session.state is ConnectionState.CONNECTED and silent >= limit:
            member = session.tap.drop_silent()
            if member is not None:
                log.warning(
                    "zkelect: nothing heard from ZooKeeper member %s:%d for %.1f s (2/3 of "
                    "the session timeout): dropping the connection; kazoo reconnects to "
                    "another member on the same session",
                    member[0],
                    member[1],
                    silent,
                )
            session.tap.heard()  # the next connection gets a full window
            silent = 0.0
        timers.call_later(max(0.05, limit - silent), self._watch_connection)
