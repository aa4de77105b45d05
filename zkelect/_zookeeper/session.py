"""A typed, shared view of one ZooKeeper session: its lifecycle and its states (R6, R7).

``Session`` gives the rest of zkelect:

* ``ConnectionState`` instead of kazoo's string states, delivered to listeners;
* typed requests with a deadline each, and kazoo's exceptions turned into a few outcomes
  (requests.py, outcomes.py);
* the local *lease* (zkelect/_lease.py): the last moment this process may still assume its
  session is alive on the servers, renewed by a ``sync`` heartbeat. kazoo reports LOST
  only after it reconnects, so a partitioned leader relies on this lease;
* failure detection that the heartbeat does not blind (R12; heartbeat.py, hooks.py);
* the few threads every election on this session shares (see _dispatch.py);
* batched joins (joins.py) and the deletion of nodes an election had to abandon (R11).

Many elections may share one session: ``Session.for_client`` returns the same object
for the same KazooClient.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient

from zkelect._dispatch import Notifier, Timers, WorkerPool
from zkelect._lease import Lease, LeaseFigures, report_delay
from zkelect._logs import emit, protect_kazoo_logs
from zkelect._zookeeper.connect import start_client
from zkelect._zookeeper.heartbeat import Heartbeat
from zkelect._zookeeper.hooks import ConnectionTap, requested_timeout
from zkelect._zookeeper.join_slots import JoinSlots
from zkelect._zookeeper.joins import JoinBatcher
from zkelect._zookeeper.outcomes import (
    ConnectionState,
    Retryable,
)
from zkelect._zookeeper.requests import (
    Requests,
    connection_state,
    is_no_node,
    is_refused,
)
from zkelect._zookeeper.session_events import log_transition
from zkelect.clock import Clock, monotonic_clock
from zkelect.config import ElectionConfig, validate_connect_string
from zkelect.errors import ChrootMissingError, ConfigurationError

__all__ = ["JOIN_WINDOW", "Session"]

log = logging.getLogger("zkelect")

JOIN_WINDOW = 256

_SessionListener = Callable[[ConnectionState, int | None], None]


# One Session per shared KazooClient, held only as long as some election holds it.
_registry: weakref.WeakValueDictionary[int, Session] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


class Session(Requests):
    """A typed, shared view of one KazooClient; see the module docstring."""

    def __init__(
        self,
        client: Any,
        config: ElectionConfig,
        *,
        owned: bool,
        clock: Clock = monotonic_clock,
    ) -> None:
        self.client = client
        self.config = config
        self.owned = owned
        self.clock = clock
        self.tap = ConnectionTap.of(client, clock)
        protect_kazoo_logs(getattr(client, "logger", None))  # no session password in logs
        self.lease = Lease(
            clock, config.lease_margin_ratio, lambda: self.session_timeout, self.report_delay
        )
        self._lock = threading.RLock()
        # At most JOIN_WINDOW batched creates in flight (join_slots.py says why).
        self.join_slots = JoinSlots(JOIN_WINDOW)
        self._refs = 0
        # A dict as an ordered set: thousands of elections may share one session, and each
        # one's stop() removes its listener (a list would make that quadratic).
        self._listeners: dict[_SessionListener, None] = {}
        self._heartbeat = Heartbeat(self, self._lock)
        self._min_session: float | None = None  # the servers' minSessionTimeout, if probed
        self._state = connection_state(client.state)
        self._session_id: int | None = self._read_session_id()
        self.pool: WorkerPool | None = None
        self.timers: Timers | None = None
        self.notifier: Notifier | None = None
        self._joins: JoinBatcher | None = None
        self._orphans: set[str] = set()  # our nodes to delete once connected (abandon)
        self.lease.reset(self._session_id)

    # -- construction and sharing ----------------------------------------------------------

    @classmethod
    def for_client(
        cls, client: object, config: ElectionConfig, clock: Clock = monotonic_clock
    ) -> Session:
        """The shared Session of an existing KazooClient (created on first use)."""
        if not isinstance(client, KazooClient):
            raise ConfigurationError(
                "client must be a kazoo.client.KazooClient or a connect string like "
                f"'h1:2181,h2:2181/chroot'; got {type(client).__name__}"
            )
        with _registry_lock:
            session = _registry.get(id(client))
            if session is None or session.client is not client:
                session = cls(client, config, owned=False, clock=clock)
                _registry[id(client)] = session
            return session

    @classmethod
    def owned_by_election(
        cls, hosts: str, config: ElectionConfig, clock: Clock = monotonic_clock, **kazoo: Any
    ) -> Session:
        """A private client for one election, connected in ``acquire``."""
        validate_connect_string(hosts)
        client = KazooClient(hosts=hosts, timeout=config.session_timeout, **kazoo)
        return cls(client, config, owned=True, clock=clock)

    def acquire(self) -> None:
        """Register one user (an election); connect and start threads on first use."""
        with self._lock:
            self._refs += 1
            if self._refs > 1:
                return
            name = "zkelect"
            self.pool = WorkerPool(self.config.worker_threads, name)
            self.timers = Timers(name, self.clock)
            self.notifier = Notifier(name)
            # Listen only while in use: an election built but never started leaves no trace
            # on the client. Read the state afresh: it may have changed since construction.
            self._state = connection_state(self.client.state)
            self._session_id = self._read_session_id()
            preconnected = self._state is ConnectionState.CONNECTED
            if preconnected:  # a shared client, already started
                self.tap.connected()
                self.lease.connected(
                    self._session_id, self.tap.generation, self.tap.connect_sent_at
                )
            else:
                self.lease.reset(self._session_id)
            self.client.add_listener(self._on_kazoo_state)
        try:
            if self.owned:
                self._connect()
            self._check_chroot()
        except BaseException:
            self.release()
            raise
        beats = self._heartbeat.new_chain()
        beat_now = preconnected and self.lease.remaining() <= 0
        if beat_now:
            # Its connect was not seen, so the lease needs two answers a report delay apart
            # (zkelect/_lease.py); learn how short that may be, and send the first one now.
            self._min_session = self.tap.probe_min_session(min(2.0, self.config.request_timeout))
        self._heartbeat.start(beats, beat_now=beat_now)

    def acquire_if_running(self) -> bool:
        """``acquire()`` if it cannot block (another election holds the session: no connect,
        no thread to start); False, having done nothing, otherwise."""
        with self._lock:
            if self._refs == 0:
                return False
            self._refs += 1
            return True

    def release(self) -> None:
        """Unregister one user; the last one stops the threads (and an owned client)."""
        with self._lock:
            self._refs -= 1
            if self._refs > 0:
                return
            pool, timers, notifier = self.pool, self.timers, self.notifier
            self.pool = self.timers = self.notifier = None
            self._heartbeat.stop()  # its timer belongs to those timers; ends the chain
        with self._lock:
            keep_listening = bool(self._orphans) and not self.owned
        if not keep_listening:  # else it stays until the orphans are deleted (abandon)
            self.client.remove_listener(self._on_kazoo_state)
        if self.owned:
            try:
                self.client.stop()
                self.client.close()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("zkelect: error while closing the ZooKeeper client")
        if timers is not None:
            timers.shutdown()
        if pool is not None:
            pool.shutdown()
        if notifier is not None:
            notifier.shutdown()

    def _connect(self) -> None:
        emit(
            "connecting",
            "connecting to ZooKeeper %s (session timeout %gs)",
            self.hosts,
            requested_timeout(self.client),
        )
        # Waits for the session to be established and authenticated (SASL, digest), and
        # fails early with TLSError / PermissionDeniedError when retrying cannot help.
        start_client(self.client, self.config.connect_timeout, self.hosts)

    def _check_chroot(self) -> None:
        chroot = self.client.chroot
        if not chroot or not self.client.connected:
            return
        try:
            present = self.exists("/")
        except Retryable:
            return  # cannot tell now; requests will fail and be retried
        if present is None:
            raise ChrootMissingError(
                f"the chroot {chroot!r} of the connect string does not exist on the ensemble: "
                "create it first (e.g. zkCli.sh create "
                f"{chroot}) or drop it from the connect string"
            )

    @property
    def hosts(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.client.hosts) + (
            self.client.chroot or ""
        )

    # -- state --------------------------------------------------------------------------------

    def _read_session_id(self) -> int | None:
        client_id = self.client.client_id
        return int(client_id[0]) if client_id else None

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def session_id(self) -> int | None:
        return self._session_id

    @property
    def session_timeout(self) -> float:
        """The negotiated session timeout in seconds (the requested one until known)."""
        negotiated = self.tap.negotiated_timeout
        if negotiated is not None:
            return negotiated
        return requested_timeout(self.client)

    def report_delay(self) -> float:
        """How late a follower may report our touches to the ZooKeeper leader (zkelect/_lease.py):
        half a tick, bounded by a quarter of the shortest session the servers grant (the
        probed minSessionTimeout, else the session timeout itself)."""
        timeout = self.session_timeout
        shortest = self._min_session
        return report_delay(timeout if shortest is None else min(shortest, timeout))

    def add_state_listener(self, listener: _SessionListener) -> None:
        with self._lock:
            self._listeners[listener] = None

    def remove_state_listener(self, listener: _SessionListener) -> None:
        with self._lock:
            self._listeners.pop(listener, None)

    def _on_kazoo_state(self, kazoo_state: str) -> None:
        # Runs on kazoo's connection thread: only bookkeeping and posting, never I/O.
        state = connection_state(kazoo_state)
        session_id = self._read_session_id() if state is ConnectionState.CONNECTED else None
        if state is ConnectionState.SUSPENDED:
            session_id = self._session_id
        before, before_session = self._state, self._session_id
        self._state = state
        self._session_id = session_id
        if state is ConnectionState.CONNECTED:
            # Called from inside kazoo's connect: the new socket is in place, and the
            # ConnectRequest's send time proves a touch by the ZooKeeper leader (zkelect/_lease.py).
            self.tap.connected()
        log_transition(
            self.client,
            self.tap,
            state,
            before,
            session_id if session_id is not None else before_session,
            self.session_timeout,
        )
        if state is ConnectionState.CONNECTED:
            self.lease.connected(session_id, self.tap.generation, self.tap.connect_sent_at)
            self._heartbeat.became_valid()
            self._delete_orphans()
        elif state is ConnectionState.LOST:
            self.lease.reset(None)
            with self._lock:
                self._orphans.clear()  # ephemeral: gone with the session
        if state is not ConnectionState.SUSPENDED:
            self._heartbeat.rearm()  # a new session may have a different timeout
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(state, session_id)
            except Exception:
                log.exception("zkelect: session listener failed")

    def abandon(self, paths: list[str]) -> None:
        """This session's candidate nodes that an election could not delete itself.

        A node left behind would stand in the queue, and block everyone behind it once
        first, for as long as the session lives. An owned session is closed now (ephemeral
        nodes go with it); a shared one deletes them as soon as it is connected, and after
        every reconnect until that succeeded (R11).
        """
        if not paths or self._state is ConnectionState.LOST:
            return  # nothing to do: ephemeral nodes went with the session
        if self.owned:
            with contextlib.suppress(Exception):
                self.client.stop()
            return
        with self._lock:
            self._orphans.update(paths)
        if self._state is ConnectionState.CONNECTED:
            self._delete_orphans()

    def _delete_orphans(self) -> None:
        # Sent without waiting (this may run on kazoo's connection thread).
        with self._lock:
            paths = list(self._orphans)
        for path in paths:

            def done(result: Any, path: str = path) -> None:
                error = result.exception
                if error is None or is_no_node(error):
                    with self._lock:
                        self._orphans.discard(path)
                        finished = not self._orphans and self._refs == 0
                    if finished:  # released meanwhile: stop listening (see release)
                        self.client.remove_listener(self._on_kazoo_state)
                elif is_refused(error):
                    with self._lock:
                        self._orphans.discard(path)
                    log.error(
                        "zkelect: cannot delete %s (no DELETE permission): it stays in the "
                        "election until this session ends; grant DELETE on the election path",
                        path,
                    )

            with contextlib.suppress(Exception):
                self.client.delete_async(path).rawlink(done)

    # -- the lease and the heartbeat (heartbeat.py) ---------------------------------------------

    def lease_remaining(self) -> float:
        return self.lease.remaining()

    def watch_lease(self, key: int, on_expiry: Callable[[], None]) -> None:
        """Call ``on_expiry`` (from the timer thread) once the lease runs out."""
        self._heartbeat.watch(key, on_expiry)

    def unwatch_lease(self, key: int) -> None:
        self._heartbeat.unwatch(key)

    def when_lease_valid(self, key: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the lease is proven again (at once if it is now)."""
        self._heartbeat.when_valid(key, callback)

    def _answered(self, sent_at: float, session_id: int | None, generation: int) -> None:
        """A request that went through the ZooKeeper leader was answered (see Pending)."""
        self._heartbeat.answered(sent_at, session_id, generation)

    def lease_figures(self) -> LeaseFigures:
        """The lease arithmetic this session applies now (what ``zkelect doctor`` prints)."""
        return LeaseFigures(
            self.session_timeout,
            self.config.lease_margin_ratio,
            self.heartbeat_interval(),
            self.report_delay(),
        )

    def last_beat(self) -> float | None:
        """When the heartbeat chain last ran (None before it did): it beats every interval,
        connected or not, so a liveness probe can tell a stuck chain."""
        return self._heartbeat.beat_at

    def heartbeat_interval(self) -> float:
        """See ``Heartbeat.interval``: a quarter of the session timeout by default."""
        return self._heartbeat.interval()

    def read_timeout(self) -> float:
        """kazoo's own bound for a silent connection: 2/3 of the session timeout."""
        return self._heartbeat.read_timeout()

    # -- batched joins ------------------------------------------------------------------------

    @property
    def joins(self) -> JoinBatcher:
        """This session's batcher of candidate creates (see joins.py), made on first use."""
        with self._lock:
            if self._joins is None:
                self._joins = JoinBatcher(self)
            return self._joins
