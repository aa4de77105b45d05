"""The one module that talks to kazoo (R6, R7).

It gives the rest of zkelect a typed view of a ZooKeeper session:

* ``ConnectionState`` instead of kazoo's string states, delivered to listeners;
* typed requests (``create_candidate``, ``children``, ``get``, ``exists``, ...) with a
  deadline each, and kazoo's exceptions turned into a few internal ones here and the
  public ``PermissionDeniedError`` (NoAuth is terminal, not retried);
* the local *lease* (lease.py): the last moment this process may still assume its
  session is alive on the servers, renewed by a ``sync`` heartbeat. kazoo reports LOST
  only after it reconnects, so a partitioned leader relies on this lease;
* failure detection that the heartbeat does not blind (R12): kazoo pings only when it has
  sent nothing for a while, and the heartbeat always has; so the session applies kazoo's
  own rule itself (nothing heard for 2/3 of the session timeout: drop the connection and
  reconnect, other members first, on the same session; see kazoo_hooks.py);
* the few threads every election on this session shares (see dispatch.py).

Many elections may share one session: ``Session.for_client`` returns the same object
for the same KazooClient.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from kazoo.client import KazooClient
from kazoo.exceptions import (
    EXCEPTIONS,
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    InvalidACLError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionClosedRequireSaslError,
    SessionExpiredError,
    SessionMovedError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.paths import _prefix_root
from kazoo.protocol.serialization import (
    Create,
    Create2,
    MultiHeader,
    int_struct,
    read_string,
)
from kazoo.protocol.serialization import Transaction as KazooMulti
from kazoo.protocol.states import KazooState, WatchedEvent
from kazoo.security import OPEN_ACL_UNSAFE

from zkelect._dispatch import Notifier, TimerHandle, Timers, WorkerPool
from zkelect._zookeeper.connect import start_client
from zkelect._zookeeper.hooks import ConnectionTap
from zkelect._zookeeper.lease import Lease, LeaseFigures, report_delay
from zkelect.clock import Clock, monotonic_clock
from zkelect.config import ElectionConfig, validate_connect_string
from zkelect.errors import (
    ChrootMissingError,
    ConfigurationError,
    PermissionDeniedError,
)

if TYPE_CHECKING:
    from zkelect._zookeeper.joins import JoinBatcher

__all__ = ["ConnectionState", "NodeStat", "Session"]

log = logging.getLogger("zkelect")

JOIN_WINDOW = 256
_PERSISTENT, _EPHEMERAL_SEQUENTIAL = 0, 3  # ZooKeeper's create flags
_OPEN_ACL = OPEN_ACL_UNSAFE[0]


class ConnectionState(str, enum.Enum):
    """The session as an election sees it."""

    CONNECTED = "connected"  # requests flow; the session is alive
    SUSPENDED = "suspended"  # connection lost; the session may or may not survive
    LOST = "lost"  # the session ended (expired or closed); its ephemeral nodes are gone


@dataclass(frozen=True)
class NodeStat:
    """The parts of a znode's Stat that zkelect uses."""

    czxid: int
    mzxid: int
    version: int
    ephemeral_owner: int
    ctime: int = 0  # milliseconds since the epoch (0 where a create's answer has none)


class NoNode(Exception):
    """The node (or a parent) does not exist."""


class NodeExists(Exception):
    """The node already exists."""


class BadVersion(Exception):
    """A version check failed."""


class Retryable(Exception):
    """The request's outcome is unknown (connection loss or timeout); try again later."""


class SessionGone(Exception):
    """The session expired or the client was closed."""


_SessionListener = Callable[[ConnectionState, int | None], None]
Watcher = Callable[[], None]


def _stat(raw: Any) -> NodeStat:
    return NodeStat(
        czxid=int(raw.czxid),
        mzxid=int(raw.mzxid),
        version=int(raw.version),
        ephemeral_owner=int(raw.ephemeralOwner),
        ctime=int(raw.ctime),
    )


def translate(exc: BaseException) -> BaseException:
    """Map a kazoo exception to zkelect's internal or public ones."""
    if isinstance(exc, NoNodeError):
        return NoNode(str(exc))
    if isinstance(exc, NodeExistsError):
        return NodeExists(str(exc))
    if isinstance(exc, BadVersionError):
        return BadVersion(str(exc))
    if isinstance(exc, SessionClosedRequireSaslError):
        return PermissionDeniedError(
            "ZooKeeper requires SASL authentication (enforce.auth) and this session has none: "
            "set sasl=SaslOptions(user, password) (CLI: --sasl-user); not retried"
        )
    if isinstance(exc, (NoAuthError, AuthFailedError, InvalidACLError)):
        return PermissionDeniedError(
            f"ZooKeeper refused the request ({type(exc).__name__}): this session's identity "
            "may not do that on the election path; check the path's ACL and the credentials "
            "(auth=DigestAuth(...) or sasl=SaslOptions(...); CLI --auth / --sasl-user); "
            "not retried"
        )
    if isinstance(exc, BadArgumentsError):
        return ConfigurationError(f"ZooKeeper rejected the arguments: {exc!r}")
    if isinstance(exc, (SessionExpiredError, ConnectionClosedError)):
        return SessionGone(type(exc).__name__)
    if isinstance(
        exc, (ConnectionLoss, OperationTimeoutError, KazooTimeoutError, SessionMovedError)
    ):
        return Retryable(type(exc).__name__)
    return exc


# One Session per shared KazooClient, held only as long as some election holds it.
_registry: weakref.WeakValueDictionary[int, Session] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


class Session:
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
        self.lease = Lease(
            clock, config.lease_margin_ratio, lambda: self.session_timeout, self.report_delay
        )
        self._lock = threading.RLock()
        # At most this many start(wait=False) creates in flight: kazoo's connection thread
        # writes and reads on one thread, and with thousands of requests outstanding the
        # server stops reading (its outstanding limit) while kazoo is blocked writing, until
        # the connection drops. Callers of start(wait=False) wait here for a slot instead.
        self.join_slots = threading.BoundedSemaphore(JOIN_WINDOW)
        self._refs = 0
        # A dict as an ordered set: thousands of elections may share one session, and each
        # one's stop() removes its listener (a list would make that quadratic).
        self._listeners: dict[_SessionListener, None] = {}
        self._lease_listeners: dict[int, Callable[[], None]] = {}
        self._lease_waiters: dict[int, Callable[[], None]] = {}
        self._lease_timer: TimerHandle | None = None
        self._beats = 0  # the heartbeat chain's number: a released session's chain stops
        self._min_session: float | None = None  # the servers' minSessionTimeout, if probed
        self._state = self._translate_state(client.state)
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
            self.timers = Timers(name)
            self.notifier = Notifier(name)
            # Listen only while in use: an election built but never started leaves no trace
            # on the client. Read the state afresh: it may have changed since construction.
            self._state = self._translate_state(self.client.state)
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
        with self._lock:
            self._beats += 1
            beats = self._beats
        if preconnected and self.lease.remaining() <= 0:
            # Its connect was not seen, so the lease needs two answers a report delay apart
            # (lease.py); learn how short that may be, and send the first one now.
            self._min_session = self.tap.probe_min_session(min(2.0, self.config.request_timeout))
            self._heartbeat(beats)
        else:
            self._schedule_heartbeat(beats)
        self._watch_connection()

    def release(self) -> None:
        """Unregister one user; the last one stops the threads (and an owned client)."""
        with self._lock:
            self._refs -= 1
            if self._refs > 0:
                return
            pool, timers, notifier = self.pool, self.timers, self.notifier
            self.pool = self.timers = self.notifier = None
            self._lease_listeners.clear()
            self._lease_waiters.clear()
            self._lease_timer = None  # it belongs to those timers
            self._beats += 1  # ends the heartbeat chain
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

    @staticmethod
    def _translate_state(state: str) -> ConnectionState:
        if state == KazooState.CONNECTED:
            return ConnectionState.CONNECTED
        if state == KazooState.SUSPENDED:
            return ConnectionState.SUSPENDED
        return ConnectionState.LOST

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
        return float(self.client._session_timeout) / 1000.0

    def report_delay(self) -> float:
        """How late a follower may report our touches to the ZooKeeper leader (lease.py):
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
        state = self._translate_state(kazoo_state)
        session_id = self._read_session_id() if state is ConnectionState.CONNECTED else None
        if state is ConnectionState.SUSPENDED:
            session_id = self._session_id
        self._state = state
        self._session_id = session_id
        if state is ConnectionState.CONNECTED:
            # Called from inside kazoo's connect: the new socket is in place, and the
            # ConnectRequest's send time proves a touch by the ZooKeeper leader (lease.py).
            self.tap.connected()
            self.lease.connected(session_id, self.tap.generation, self.tap.connect_sent_at)
            self._lease_became_valid()
            self._delete_orphans()
        elif state is ConnectionState.LOST:
            self.lease.reset(None)
            with self._lock:
                self._orphans.clear()  # ephemeral: gone with the session
        if state is not ConnectionState.SUSPENDED:
            self._rearm_lease_timer()  # a new session may have a different timeout
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
                if error is None or isinstance(error, NoNodeError):
                    with self._lock:
                        self._orphans.discard(path)
                        finished = not self._orphans and self._refs == 0
                    if finished:  # released meanwhile: stop listening (see release)
                        self.client.remove_listener(self._on_kazoo_state)
                elif isinstance(error, (NoAuthError, AuthFailedError)):
                    with self._lock:
                        self._orphans.discard(path)
                    log.error(
                        "zkelect: cannot delete %s (no DELETE permission): it stays in the "
                        "election until this session ends; grant DELETE on the election path",
                        path,
                    )

            with contextlib.suppress(Exception):
                self.client.delete_async(path).rawlink(done)

    # -- the lease ------------------------------------------------------------------------------

    def lease_remaining(self) -> float:
        return self.lease.remaining()

    def watch_lease(self, key: int, on_expiry: Callable[[], None]) -> None:
        """Call ``on_expiry`` (from the timer thread) once the lease runs out."""
        with self._lock:
            self._lease_listeners[key] = on_expiry
            armed = self._lease_timer is not None
        if not armed:
            self._arm_lease_timer()

    def unwatch_lease(self, key: int) -> None:
        with self._lock:
            self._lease_listeners.pop(key, None)

    def _rearm_lease_timer(self) -> None:
        with self._lock:
            if self._lease_timer is not None:
                self._lease_timer.cancel()
                self._lease_timer = None
        self._arm_lease_timer()

    def _arm_lease_timer(self) -> None:
        timers = self.timers
        if timers is None:
            return
        with self._lock:
            if not self._lease_listeners:
                self._lease_timer = None
                return
            delay = self.lease.remaining()
            self._lease_timer = timers.call_later(delay, self._on_lease_timer)

    def _on_lease_timer(self) -> None:
        if self.lease.remaining() > 0:
            self._arm_lease_timer()  # acknowledgements moved the deadline; look again then
            return
        with self._lock:
            expired = list(self._lease_listeners.values())
            self._lease_listeners.clear()
            self._lease_timer = None
        for on_expiry in expired:
            try:
                on_expiry()
            except Exception:
                log.exception("zkelect: lease expiry handler failed")

    def when_lease_valid(self, key: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the lease is proven again (at once if it is now)."""
        with self._lock:
            self._lease_waiters[key] = callback
        if self.lease.remaining() > 0:
            self._lease_became_valid()

    def _lease_became_valid(self) -> None:
        if self.lease.remaining() <= 0:
            return
        with self._lock:
            waiters = list(self._lease_waiters.values())
            self._lease_waiters.clear()
        for callback in waiters:
            try:
                callback()
            except Exception:
                log.exception("zkelect: lease waiter failed")

    def _answered(self, sent_at: float, session_id: int | None, generation: int) -> None:
        """A request that went through the ZooKeeper leader was answered (see Pending)."""
        self.lease.ack(sent_at, self.clock(), session_id, generation)
        if self._lease_waiters:
            self._lease_became_valid()

    def lease_figures(self) -> LeaseFigures:
        """The lease arithmetic this session applies now (what ``zkelect doctor`` prints)."""
        return LeaseFigures(
            self.session_timeout,
            self.config.lease_margin_ratio,
            self.heartbeat_interval(),
            self.report_delay(),
        )

    # -- the heartbeat, and failure detection it must not blind (R12) ---------------------

    def heartbeat_interval(self) -> float:
        """A quarter of the negotiated timeout, or the configured interval (scaled down in
        proportion if the servers granted a shorter session than was asked for)."""
        configured = self.config.heartbeat_interval
        timeout = self.session_timeout
        if configured is None:
            return timeout / 4.0
        return configured * min(1.0, timeout / self.config.session_timeout)

    def _schedule_heartbeat(self, beats: int) -> None:
        timers = self.timers
        if timers is None or beats != self._beats:
            return
        delay = self.heartbeat_interval()
        if self.lease.remaining() <= 0:
            # Not proven: the answer that can prove it is one sent a report delay after the
            # last answer (lease.py, rule 2); no need to wait a whole interval.
            delay = min(delay, self.report_delay())
        timers.call_later(delay, lambda: self._heartbeat(beats))

    def _heartbeat(self, beats: int) -> None:
        # A sync goes through the ZooKeeper leader: its answer renews the lease. The next
        # one goes a heartbeat interval after this answer, so that each answer pairs with
        # the one before it (lease.py, rule 2).
        if beats != self._beats:
            return
        if self._state is not ConnectionState.CONNECTED:
            self._schedule_heartbeat(beats)
            return
        pending = self.send(lambda: self.client.sync_async("/"), via_leader=True)

        def answered() -> None:
            with contextlib.suppress(Exception):
                pending.result()  # renews the lease if it succeeded
            self._schedule_heartbeat(beats)

        pending.when_done(answered)

    def read_timeout(self) -> float:
        """kazoo's own bound for a silent connection: 2/3 of the session timeout."""
        return self.session_timeout * 2.0 / 3.0

    def _watch_connection(self) -> None:
        """Drop a connection on which nothing was heard for ``read_timeout()``.

        This is kazoo's own rule; kazoo applies it only through a ping it sends when it has
        sent nothing for half that time, which never happens while the heartbeat runs. The
        heartbeat is answered every quarter of the session timeout on a healthy link, so a
        silence this long means the member or the link is gone: kazoo then reconnects, other
        members first, on the same session, in time for its ephemeral nodes to survive.
        """
        timers = self.timers
        if timers is None:
            return
        limit = self.read_timeout()
        silent = self.clock() - self.tap.last_heard
        if self._state is ConnectionState.CONNECTED and silent >= limit:
            member = self.tap.drop_silent()
            if member is not None:
                log.warning(
                    "zkelect: nothing heard from ZooKeeper member %s:%d for %.1f s (2/3 of "
                    "the session timeout): dropping the connection; kazoo reconnects to "
                    "another member on the same session",
                    member[0],
                    member[1],
                    silent,
                )
            self.tap.heard()  # the next connection gets a full window
            silent = 0.0
        timers.call_later(max(0.05, limit - silent), self._watch_connection)

    # -- requests -------------------------------------------------------------------------------

    def _call(self, start: Callable[[], Any], *, via_leader: bool = False) -> Any:
        return self.send(start, via_leader=via_leader).result()

    def send(self, start: Callable[[], Any], *, via_leader: bool = False) -> Pending:
        """Send a request now; wait for its answer later with ``Pending.result()``.

        ``via_leader``: the request is answered only after the ZooKeeper leader handled
        it (a write or a sync), so its answer renews the lease. Reads are answered by
        whichever member we are connected to, even one cut off from the quorum, so they
        prove nothing about the session on the leader.
        """
        return Pending(self, start, via_leader)

    def send_get(self, path: str, watch: Watcher | None = None) -> Pending:
        """``get(path, watch)`` sent now; ``result()`` gives the raw (data, stat)."""
        return self.send(lambda: self.client.get_async(path, _wrap_watch(watch)))

    def send_children(self, path: str) -> Pending:
        """``children(path)`` sent now, without a watch; ``result()`` gives the names."""
        return self.send(lambda: self.client.get_children_async(path))

    def create_candidate(self, path: str, data: bytes) -> tuple[str, NodeStat]:
        """Create an EPHEMERAL_SEQUENTIAL node (parents as needed); its full path and stat."""
        return candidate_created(self.send_create_candidate(path, data).result())

    def send_create_candidate(self, path: str, data: bytes) -> Pending:
        """``create_candidate`` sent now; ``candidate_created(pending.result())`` reads it."""
        return self.send(
            lambda: self.client.create_async(
                path, data, ephemeral=True, sequence=True, makepath=True, include_data=True
            ),
            via_leader=True,
        )

    def ensure_path(self, path: str) -> None:
        with contextlib.suppress(NodeExists):
            self._call(lambda: self.client.ensure_path_async(path), via_leader=True)

    def send_listing(self, path: str) -> Pending:
        """The children and the path's pzxid, sent now; ``listing_of(pending.result())``."""
        return self.send(lambda: self.client.get_children_async(path, include_data=True))

    def listing(self, path: str) -> Listing:
        """The children of ``path`` and the zxid of the state they were read in."""
        return listing_of(self.send_listing(path).result())

    def children(self, path: str, watch: Watcher | None = None) -> list[str]:
        kazoo_watch = _wrap_watch(watch)
        names = self._call(lambda: self.client.get_children_async(path, kazoo_watch))
        return [str(name) for name in names]

    def get(self, path: str, watch: Watcher | None = None) -> tuple[bytes, NodeStat]:
        """Data and stat; with ``watch`` a data watch is left only if the node exists."""
        data, raw = self._call(lambda: self.client.get_async(path, _wrap_watch(watch)))
        return bytes(data or b""), _stat(raw)

    def exists(self, path: str, watch: Watcher | None = None) -> NodeStat | None:
        raw = self._call(lambda: self.client.exists_async(path, _wrap_watch(watch)))
        return None if raw is None else _stat(raw)

    def sync(self, path: str = "/") -> None:
        """A round trip through the ZooKeeper leader: renews the lease."""
        self._call(lambda: self.client.sync_async(path), via_leader=True)

    def default_acl(self) -> list[tuple[str, str, int]]:
        """The client's ``default_acl`` (what kazoo creates nodes with) as entries;
        kazoo's own default is world:anyone with every permission."""
        acl = self.client.default_acl or [_OPEN_ACL]
        return [(str(e.id.scheme), str(e.id.id), int(e.perms)) for e in acl]

    def get_acl(self, path: str) -> list[tuple[str, str, int]]:
        """The ACL of ``path`` as (scheme, id, perms) entries."""
        entries, _stat = self._call(lambda: self.client.get_acls_async(path))
        return [(str(e.id.scheme), str(e.id.id), int(e.perms)) for e in entries]

    def delete(self, path: str, version: int = -1) -> None:
        self._call(lambda: self.client.delete_async(path, version), via_leader=True)

    def get_many(self, paths: list[str]) -> list[tuple[bytes, NodeStat] | None]:
        """Data and stat of many nodes in one pipelined burst; None where a node is gone."""
        try:
            pending = [self.client.get_async(path) for path in paths]
        except Exception as exc:
            raise translate(exc) from exc
        results: list[tuple[bytes, NodeStat] | None] = []
        for async_result in pending:
            try:
                data, raw = async_result.get(timeout=self.config.request_timeout)
            except NoNodeError:
                results.append(None)
                continue
            except Exception as exc:
                raise translate(exc) from exc
            results.append((bytes(data or b""), _stat(raw)))
        return results

    def transaction(self) -> Transaction:
        return Transaction(self)

    @property
    def joins(self) -> JoinBatcher:
        """This session's batcher of candidate creates (see joins.py), made on first use."""
        with self._lock:
            if self._joins is None:
                from zkelect._zookeeper.joins import JoinBatcher  # joins.py builds on this module

                self._joins = JoinBatcher(self)
            return self._joins

    def send_creates(self, creates: list[tuple[str, bytes, bool]]) -> Pending:
        """Many creates in one multi-op, sent now: all are applied or none is.

        ``creates``: ``(path, data, candidate)``; a candidate is EPHEMERAL_SEQUENTIAL (``path``
        is its name prefix), anything else a persistent node. ``result()`` gives one entry
        per create: ``(full path, NodeStat)`` when all were applied; otherwise the failing
        create's translated error, and ``None`` for the creates that were rolled back.
        One request instead of one per node: what lets thousands of elections join at once.
        """
        chroot = self.client.chroot
        acl = self.client.default_acl or OPEN_ACL_UNSAFE
        request = _CreateMulti(
            [
                Create(_prefix_root(chroot, path, trailing=candidate), data, acl, flags)
                for path, data, candidate in creates
                for flags in (_EPHEMERAL_SEQUENTIAL if candidate else _PERSISTENT,)
            ],
            self.client,
        )

        def start() -> Any:
            answer = self.client.handler.async_result()
            self.client._call(request, answer)
            return answer

        return self.send(start, via_leader=True)

    def created_entries(
        self, answer: Any, creates: list[tuple[str, bytes, bool]]
    ) -> list[tuple[str, NodeStat] | BaseException | None]:
        """Read the answer of ``send_creates(creates)``: one entry per create, in order.

        All applied: ``(full path without the chroot, NodeStat)`` each. Otherwise the failing
        create's translated error, and ``None`` for the creates rolled back with it.
        """
        zxid, session_id, results = answer
        if all(isinstance(item, str) for item in results):
            return [
                (
                    self.client.unchroot(str(path)),
                    NodeStat(zxid, zxid, 0, session_id if candidate else 0),
                )
                for path, (_, _, candidate) in zip(results, creates, strict=True)
            ]
        not_the_cause = (str, RolledBackError, RuntimeInconsistency)
        return [None if isinstance(item, not_the_cause) else translate(item) for item in results]


class _CreateMulti:
    """A multi-op of creates whose answer also says the transaction's zxid.

    Servers answer every create in a multi with its path only (no stat, even for create2),
    but all of a multi's nodes are created by one transaction, so each node's czxid is
    that transaction's zxid: the zxid of the reply header, which kazoo stores in
    ``client.last_zxid`` just before it reads the body (on its connection thread). The
    answer is ``(zxid, session id, per-create results)``.
    """

    type = KazooMulti.type  # what kazoo dispatches on

    def __init__(self, operations: list[Any], client: Any) -> None:
        self.operations = operations
        self.client = client

    def serialize(self) -> bytearray:
        return cast(bytearray, KazooMulti.serialize(self))

    def deserialize(self, data: bytes, offset: int) -> tuple[int, int, list[object]]:
        zxid, session_id = int(self.client.last_zxid), int(self.client._session_id or 0)
        results: list[object] = []
        header, offset = MultiHeader.deserialize(data, offset)
        while not header.done:
            if header.type in (Create.type, Create2.type):
                path, offset = read_string(data, offset)
                results.append(path)
            elif header.type == -1:
                code = int_struct.unpack_from(data, offset)[0]
                offset += int_struct.size
                results.append(EXCEPTIONS[code]())
            else:
                raise ValueError(f"unexpected answer type {header.type} in a multi of creates")
            header, offset = MultiHeader.deserialize(data, offset)
        return zxid, session_id, results


class Pending:
    """A request in flight. Sending is separate from waiting so that a watch callback can
    send the next read at once, while the step that needs it is still being scheduled."""

    def __init__(self, session: Session, start: Callable[[], Any], via_leader: bool) -> None:
        self._session = session
        self._via_leader = via_leader
        self._sent_at, self._session_id = session.clock(), session.session_id
        self._generation = session.tap.generation
        self._error: BaseException | None = None
        self._async: Any = None
        try:
            self._async = start()
        except Exception as exc:
            self._error = translate(exc)

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from a kazoo thread; it must be quick) once answered."""
        if self._async is None:
            callback()
        else:
            self._async.rawlink(lambda _result: callback())

    def succeeded(self) -> bool:
        """Answered, without an error (does not wait)."""
        return self._error is None and self._async is not None and bool(self._async.successful())

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        try:
            value = self._async.get(timeout=self._session.config.request_timeout)
        except Exception as exc:
            raise translate(exc) from exc
        if self._via_leader:
            self._session._answered(self._sent_at, self._session_id, self._generation)
        return value


@dataclass(frozen=True)
class Listing:
    """An election path's children as read, and ``pzxid``: the zxid of the last child
    created or deleted before the read, so the listing shows ZooKeeper's state as of it."""

    names: list[str]
    pzxid: int


def listing_of(answer: Any) -> Listing:
    names, stat = answer
    return Listing([str(name) for name in names], int(stat.pzxid))


def candidate_created(answer: Any) -> tuple[str, NodeStat]:
    """The full path and stat from the answer of ``send_create_candidate``."""
    created, raw = answer
    return str(created), _stat(raw)


def _wrap_watch(watch: Watcher | None) -> Callable[[WatchedEvent], None] | None:
    if watch is None:
        return None

    def kazoo_watch(event: WatchedEvent) -> None:
        watch()

    return kazoo_watch


class Transaction:
    """A typed multi-op transaction: all operations commit together or none does."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._request = session.client.transaction()
        self._ops: list[str] = []

    def check(self, path: str, version: int) -> Transaction:
        self._request.check(path, version)
        self._ops.append(f"check {path}")
        return self

    def create(
        self, path: str, value: bytes = b"", *, ephemeral: bool = False, sequence: bool = False
    ) -> Transaction:
        self._request.create(path, value, ephemeral=ephemeral, sequence=sequence)
        self._ops.append(f"create {path}")
        return self

    def set_data(self, path: str, value: bytes, version: int = -1) -> Transaction:
        self._request.set_data(path, value, version)
        self._ops.append(f"set {path}")
        return self

    def delete(self, path: str, version: int = -1) -> Transaction:
        self._request.delete(path, version)
        self._ops.append(f"delete {path}")
        return self

    def commit(self) -> list[object]:
        """Results per operation; raises ``TransactionFailed`` naming the failing op."""
        results = cast(
            list[object], self._session._call(self._request.commit_async, via_leader=True)
        )
        failures = [
            (index, result)
            for index, result in enumerate(results)
            if isinstance(result, Exception) and not isinstance(result, RolledBackError)
        ]
        if failures:
            index, error = failures[0]
            raise TransactionFailed(index, self._ops[index], translate(error))
        return results


class TransactionFailed(Exception):
    """Operation ``index`` of a transaction failed with ``error``; nothing was applied."""

    def __init__(self, index: int, op: str, error: BaseException) -> None:
        super().__init__(f"operation {index} ({op}) failed: {error!r}")
        self.index = index
        self.op = op
        self.error = error
