"""A simulated ZooKeeper for the model-based test of the candidacy (test_candidacy_model.py).

Unlike the scripted fake of candidacy_support.py, nothing here happens at once unless the
real client would do it at once: the test (hypothesis) decides when each thing happens.

* ``Server``: one ensemble as one consistent state. Sequential children are numbered with
  the parent's counter (its cversion: bumped by every child create AND delete, printed
  ``%010d``, wrapping as a signed 32-bit integer); a deleted and re-created parent starts
  again at 0. Watches are one-shot per (session, path, kind): a data or exists watch fires
  CREATED/DELETED, a children watch CHILD (or DELETED for its own node). An expiry deletes
  the session's ephemeral nodes in one transaction.
* ``ModelSession``: one client and its session; implements the candidacy's ``SessionPort``
  (zkelect/_election/ports.py). Asynchronous requests (``send_*``, the batched join) wait in
  the session's ``outbound`` queue until the server processes them (``process_one``; the
  server takes one session's requests in order), and their answer is computed from the
  state at that moment. The answer's ``when_done`` callbacks, and the watch notifications,
  go to two FIFO queues, as kazoo's two callback threads do (``completions`` and
  ``events``: ordered within each, not with each other); ``deliver`` runs the head of one.
  A synchronous call (get, children, create_candidate, delete, sync, ...) first has the
  server process everything this session sent before it (FIFO), then answers at once.
* Connection: ``disconnect`` (SUSPENDED: requests in flight fail as ConnectionLoss, the
  first ``landed`` of them having been applied all the same), ``expire`` (the server ends
  the session), ``reconnect`` (the same session CONNECTED; or, if it expired, LOST, every
  watch fired with OTHER as kazoo's reset of its watchers does, then a new session id
  CONNECTED). Notifications the server sends while the client is away are held until it is
  connected again. The lease is valid (``lease_remaining() > 0``) exactly while CONNECTED;
  ``lease_runs_out`` fires the lease's listeners.
* ``ModelTimers``: the sessions' timers on one ManualClock, fired by ``fire_due``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from zkelect._election.nodes import parse_node, serial_order
from zkelect._lease import LeaseFigures
from zkelect._zookeeper.joins import JoinOutcome
from zkelect._zookeeper.outcomes import (
    ConnectionState,
    EventWatcher,
    Listing,
    NodeExists,
    NodeStat,
    NoNode,
    Retryable,
    SessionGone,
    WatchEvent,
)
from zkelect.clock import ManualClock

__all__ = [
    "PATH",
    "ModelPending",
    "ModelSession",
    "ModelTicket",
    "ModelTimers",
    "Server",
    "wrap32",
]

PATH = "/election"
Callback = Callable[[], None]
StateListener = Callable[[ConnectionState, "int | None"], None]
_SPACE = 1 << 32
_HALF = 1 << 31


def wrap32(value: int) -> int:
    """``value`` as ZooKeeper's signed 32-bit counter holds it."""
    return (value + _HALF) % _SPACE - _HALF


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


@dataclass
class ZNode:
    data: bytes
    stat: NodeStat
    counter: int = 0  # cversion: the sequence number of the next sequential child
    pzxid: int = 0  # the zxid of the last child created or deleted


def raw_stat(stat: NodeStat) -> SimpleNamespace:
    """A stat as kazoo answers it (what ``node_stat``/``stat_of`` read)."""
    return SimpleNamespace(
        czxid=stat.czxid,
        mzxid=stat.mzxid,
        version=stat.version,
        ephemeralOwner=stat.ephemeral_owner,
        ctime=stat.ctime,
    )


class Server:
    """The ensemble's state. Every public write is one transaction."""

    def __init__(self, counter_start: int = 0) -> None:
        self.zxid = 1
        self.nodes: dict[str, ZNode] = {}
        self.sessions: dict[int, ModelSession] = {}  # live sessions, by id
        self._next_session = 0x100
        #: Candidate nodes that were first in zkelect's order when created: elected at their
        #: join, whatever happens later (the only leaders that may leave no marker, R13).
        self.first_at_creation: set[str] = set()
        self.create(PATH, b"", 0)
        self.nodes[PATH].counter = wrap32(counter_start)

    def open_session(self, client: ModelSession) -> int:
        self._next_session += 1
        self.sessions[self._next_session] = client
        return self._next_session

    # -- reads ----------------------------------------------------------------------------------

    def node(self, path: str) -> ZNode:
        try:
            return self.nodes[path]
        except KeyError:
            raise NoNode(path) from None

    def children(self, path: str) -> list[str]:
        self.node(path)
        prefix = path.rstrip("/") + "/"
        return [p[len(prefix) :] for p in self.nodes if p.startswith(prefix) and p != prefix]

    def candidate_order(self) -> list[str]:
        """The live candidates' names in zkelect's order: children named like candidates,
        persistent ones excluded (they are not candidates)."""
        if PATH not in self.nodes:
            return []
        live = [
            node
            for name in self.children(PATH)
            if (node := parse_node(name)) is not None
            and self.nodes[f"{PATH}/{name}"].stat.ephemeral_owner != 0
        ]
        return [node.name for node in serial_order(live)]

    # -- writes ---------------------------------------------------------------------------------

    def create(
        self, path: str, data: bytes, owner: int, *, sequential: bool = False
    ) -> tuple[str, NodeStat]:
        parent = _parent(path)
        if parent != "/" and parent not in self.nodes:
            raise NoNode(parent)
        if sequential:
            path = f"{path}{self.nodes[parent].counter:010d}"
        if path in self.nodes:
            raise NodeExists(path)
        self.zxid += 1
        stat = NodeStat(self.zxid, self.zxid, 0, owner, ctime=self.zxid)
        self.nodes[path] = ZNode(data, stat)
        if parent == PATH and owner and self.candidate_order()[:1] == [path[len(PATH) + 1 :]]:
            self.first_at_creation.add(path)
        self._child_changed(parent)
        self._fire_data(path, WatchEvent.CREATED)
        return path, stat

    def delete(self, path: str) -> None:
        self.delete_many([path])

    def delete_many(self, paths: list[str]) -> None:
        """One transaction (a multi, an expiry): all deleted, or none (NoNode)."""
        for path in paths:
            self.node(path)
            if self.children(path):
                raise NoNode(f"{path} is not empty")  # NotEmpty: never sent by the model
        self.zxid += 1
        for path in paths:
            del self.nodes[path]
            self._child_changed(_parent(path))
            self._fire_data(path, WatchEvent.DELETED)
            self._fire_children(path, WatchEvent.DELETED)

    def expire(self, session_id: int) -> None:
        """The servers end a session: its ephemeral nodes go, in one transaction."""
        self.sessions.pop(session_id, None)
        owned = [p for p, n in self.nodes.items() if n.stat.ephemeral_owner == session_id]
        if owned:
            self.delete_many(owned)

    def delete_path(self) -> None:
        """An operator deletes the election: its children in one transaction, then it."""
        if PATH not in self.nodes:
            return
        children = [f"{PATH}/{name}" for name in self.children(PATH)]
        if children:
            self.delete_many(children)
        self.delete(PATH)

    def _child_changed(self, parent: str) -> None:
        if parent == "/":
            return
        node = self.nodes[parent]
        node.counter = wrap32(node.counter + 1)
        node.pzxid = self.zxid
        self._fire_children(parent, WatchEvent.CHILD)

    def _fire_data(self, path: str, event: WatchEvent) -> None:
        for session in list(self.sessions.values()):
            session.notify(session.data_watchers, path, event)

    def _fire_children(self, path: str, event: WatchEvent) -> None:
        for session in list(self.sessions.values()):
            session.notify(session.child_watchers, path, event)


class ModelPending:
    """An asynchronous request (``Pending``): applied when the server processes it."""

    def __init__(self, session: ModelSession, run: Callable[[bool], Any]) -> None:
        self._session = session
        self._run = run  # run(answered): the request's effect; answered=False: reply lost
        self._callbacks: list[Callback] = []
        self.processed = False
        self._value: Any = None
        self._error: BaseException | None = None

    def process(self, *, applied: bool = True, answered: bool = True) -> None:
        """The server takes the request (``applied``); its reply reaches the client
        (``answered``) or is lost with the connection (ConnectionLoss)."""
        try:
            if applied:
                self._value = self._run(answered)
        except Exception as exc:
            self._error = exc
        if not answered:
            self._error = Retryable("ConnectionLoss")
        self.processed = True
        callbacks, self._callbacks = self._callbacks, []
        self._session.completions.extend(callbacks)

    def when_done(self, callback: Callback) -> None:
        if self.processed:
            self._session.completions.append(callback)  # kazoo: to the completion thread
        else:
            self._callbacks.append(callback)

    def succeeded(self) -> bool:
        return self.processed and self._error is None

    def result(self) -> Any:
        if not self.processed:
            self._session.flush(self)  # blocks until answered: the server works in order
        if self._error is not None:
            raise self._error
        return self._value


class ModelTicket:
    """A batched create (``JoinTicket``), settled on the completion thread."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self.settled = False
        self._outcome: JoinOutcome | None = None
        self._error: BaseException | None = None

    def settle(self, pending: ModelPending) -> None:
        try:
            self._outcome = pending.result()
        except Exception as exc:
            self._error = exc
        self.settled = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def when_done(self, callback: Callback) -> None:
        if self.settled:
            callback()
        else:
            self._callbacks.append(callback)

    def result(self, timeout: float) -> JoinOutcome:
        if not self.settled:
            # The model does not block a step on another thread's delivery: an answer not
            # delivered yet is one that did not come in time (the create may have landed).
            raise Retryable("the batched create was not answered in time")
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome


class ModelJoins:
    """The session's ``JoinBatcher``: one multi per join, creating the path if missing."""

    def __init__(self, session: ModelSession) -> None:
        self._session = session

    def submit(self, path: str, prefix: str, data: bytes) -> ModelTicket:
        session = self._session
        server = session.server

        def run(answered: bool) -> JoinOutcome:
            first = path not in server.nodes
            if first:  # one transaction with the node: nothing can precede it
                server.create(path, b"", 0)
            created, stat = server.create(prefix, data, session.owner(), sequential=True)
            return JoinOutcome(created, stat, first)

        ticket = ModelTicket()
        pending = session.send(run)
        pending.when_done(lambda: ticket.settle(pending))
        return ticket


class ModelTimers:
    """``Timers`` on a ManualClock: nothing fires until ``fire_due``."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, int, Callback]] = []
        self._count = 0

    def call_later(self, delay: float, fn: Callback) -> object:
        self._count += 1
        self.pending.append((self.clock() + delay, self._count, fn))
        return None

    def next_due(self) -> float | None:
        return min((due for due, _, _ in self.pending), default=None)

    def fire_due(self) -> int:
        now = self.clock()
        due = sorted(entry for entry in self.pending if entry[0] <= now)
        self.pending = [entry for entry in self.pending if entry[0] > now]
        for _, _, fn in due:
            fn()
        return len(due)


class _Notes:
    """The session's callback thread for user callbacks (the model's candidates set none)."""

    def post(self, fn: Callback) -> None:
        fn()


class _NoBound:
    def successor_possible_at(self) -> float | None:
        return None


@dataclass
class _Event:
    """A notification in the events queue; ``held`` while its client is away."""

    watchers: list[EventWatcher]
    event: WatchEvent
    held: bool


@dataclass(eq=False)
class ModelSession:
    """One client and its session on ``server``; satisfies ``SessionPort``."""

    server: Server
    timers: ModelTimers
    owned: bool = False
    state: ConnectionState = ConnectionState.CONNECTED
    session_id: int | None = None
    expired: bool = False  # the server ended the session; the client is not told yet
    outbound: deque[ModelPending] = field(default_factory=deque)
    events: deque[_Event] = field(default_factory=deque)
    completions: deque[Callback] = field(default_factory=deque)
    data_watchers: dict[str, list[EventWatcher]] = field(default_factory=dict)
    child_watchers: dict[str, list[EventWatcher]] = field(default_factory=dict)
    listeners: list[StateListener] = field(default_factory=list)
    lease_listeners: dict[int, Callback] = field(default_factory=dict)
    lease_waiters: dict[int, Callback] = field(default_factory=dict)
    orphans: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.session_id = self.server.open_session(self)
        self.notifier = _Notes()
        self.join_slots = threading.BoundedSemaphore(1000)
        self.joins = ModelJoins(self)
        self.lease = _NoBound()

    def owner(self) -> int:
        assert self.session_id is not None
        return self.session_id

    # -- the channel ----------------------------------------------------------------------------

    def notify(self, watchers: dict[str, list[EventWatcher]], path: str, event: WatchEvent) -> None:
        """The server fires this session's one watch of that kind on ``path``."""
        fired = watchers.pop(path, None)
        if fired:
            held = self.state is not ConnectionState.CONNECTED
            self.events.append(_Event(fired, event, held))

    def send(self, run: Callable[[bool], Any]) -> ModelPending:
        pending = ModelPending(self, run)
        if self.state is ConnectionState.CONNECTED:
            self.outbound.append(pending)
        else:
            pending.process(applied=False, answered=False)  # kazoo: not connected
        return pending

    def process_one(self) -> bool:
        """The server takes this session's oldest request."""
        if not self.outbound:
            return False
        self.outbound.popleft().process()
        return True

    def flush(self, until: ModelPending | None = None) -> None:
        """The server takes this session's requests up to ``until`` (all of them)."""
        while self.outbound and (until is None or not until.processed):
            self.outbound.popleft().process()

    def deliverable(self) -> list[str]:
        """Which of this session's queues has a head to deliver."""
        ready = []
        if self.events and (not self.events[0].held or self.state is ConnectionState.CONNECTED):
            ready.append("events")
        if self.completions:
            ready.append("completions")
        return ready

    def deliver(self, queue: str) -> None:
        if queue == "completions":
            self.completions.popleft()()
            return
        item = self.events.popleft()
        for watcher in item.watchers:
            watcher(item.event)

    def _call(self, run: Callable[[bool], Any]) -> Any:
        """A synchronous request: after this session's earlier ones, answered at once."""
        if self.state is not ConnectionState.CONNECTED:
            raise Retryable("not connected")
        self.flush()
        return run(True)

    def _watch(
        self, watchers: dict[str, list[EventWatcher]], path: str, watch: EventWatcher | None
    ) -> None:
        if watch is not None:
            watchers.setdefault(path, []).append(watch)

    # -- the connection -------------------------------------------------------------------------

    def disconnect(self, landed: int = 0) -> None:
        """The connection drops: requests in flight fail (the first ``landed`` applied)."""
        if self.state is not ConnectionState.CONNECTED:
            return
        self.state = ConnectionState.SUSPENDED
        in_flight, self.outbound = self.outbound, deque()
        for index, pending in enumerate(in_flight):
            pending.process(applied=index < landed and not self.expired, answered=False)
        self._tell(ConnectionState.SUSPENDED, self.session_id)

    def expire(self, landed: int = 0) -> None:
        self.disconnect(landed)
        if not self.expired and self.session_id is not None:
            self.expired = True
            self.server.expire(self.owner())

    def lease_runs_out(self) -> None:
        if self.state is ConnectionState.CONNECTED:
            return
        listeners, self.lease_listeners = self.lease_listeners, {}
        for listener in listeners.values():
            listener()

    def reconnect(self) -> None:
        """Connected again: the same session; or, if it expired, first LOST (one call),
        then a new session (the next call)."""
        if self.state is ConnectionState.CONNECTED:
            return
        if self.expired:
            self._lost()
            self.expired = False
            return
        if self.state is ConnectionState.LOST:
            self.session_id = self.server.open_session(self)
        self.state = ConnectionState.CONNECTED
        self._tell(ConnectionState.CONNECTED, self.session_id)
        waiters, self.lease_waiters = self.lease_waiters, {}
        for waiter in waiters.values():
            waiter()
        for path in sorted(self.orphans):
            self._delete_orphan(path)

    def _lost(self) -> None:
        """kazoo learns the session expired: LOST, then every watch it holds fires (None
        event: OTHER), the held notifications with them (the servers never send those)."""
        self.state = ConnectionState.LOST
        self.session_id = None
        self.orphans.clear()
        self.lease_listeners.clear()
        self._tell(ConnectionState.LOST, None)
        watchers = [w for ws in self.data_watchers.values() for w in ws]
        watchers += [w for ws in self.child_watchers.values() for w in ws]
        watchers += [w for item in self.events if item.held for w in item.watchers]
        self.data_watchers, self.child_watchers = {}, {}
        self.events = deque(item for item in self.events if not item.held)
        if watchers:
            self.events.append(_Event(watchers, WatchEvent.OTHER, held=False))

    def _tell(self, state: ConnectionState, session_id: int | None) -> None:
        for listener in list(self.listeners):
            listener(state, session_id)

    # -- SessionPort: the election path ---------------------------------------------------------

    def create_candidate(self, path: str, data: bytes) -> tuple[str, NodeStat]:
        def run(answered: bool) -> tuple[str, NodeStat]:
            parent = _parent(path)
            if parent not in self.server.nodes:  # makepath: the parents first
                self.server.create(parent, b"", 0)
            return self.server.create(path, data, self.owner(), sequential=True)

        created: tuple[str, NodeStat] = self._call(run)
        return created

    def listing(self, path: str) -> Listing:
        names, stat = self._call(lambda answered: self._listing(path))
        return Listing(names, stat.pzxid)

    def _listing(self, path: str) -> tuple[list[str], SimpleNamespace]:
        names = self.server.children(path)
        return names, SimpleNamespace(pzxid=self.server.nodes[path].pzxid)

    def send_listing(self, path: str) -> ModelPending:
        return self.send(lambda answered: self._listing(path))

    def children(self, path: str, watch: Callback | None = None) -> list[str]:
        def run(answered: bool) -> list[str]:
            names = self.server.children(path)
            if answered:
                self._watch(self.child_watchers, path, _plain(watch))
            return names

        names: list[str] = self._call(run)
        return names

    def _get(self, path: str, watch: EventWatcher | None, answered: bool) -> Any:
        node = self.server.node(path)  # NoNode: no watch left
        if answered:
            self._watch(self.data_watchers, path, watch)
        return node.data, raw_stat(node.stat)

    def get(self, path: str, watch: Callback | None = None) -> tuple[bytes, NodeStat]:
        data, _ = self._call(lambda answered: self._get(path, _plain(watch), answered))
        return data, self.server.nodes[path].stat

    def send_get(self, path: str, watch: Callback | None = None) -> ModelPending:
        return self.send(lambda answered: self._get(path, _plain(watch), answered))

    def watching_get(self, path: str, watch: EventWatcher) -> tuple[bytes, NodeStat]:
        data, _ = self._call(lambda answered: self._get(path, watch, answered))
        return data, self.server.nodes[path].stat

    def get_many(self, paths: list[str]) -> list[tuple[bytes, NodeStat] | None]:
        def run(answered: bool) -> list[tuple[bytes, NodeStat] | None]:
            nodes = [self.server.nodes.get(path) for path in paths]
            return [None if node is None else (node.data, node.stat) for node in nodes]

        got: list[tuple[bytes, NodeStat] | None] = self._call(run)
        return got

    def _exists(self, path: str, watch: EventWatcher | None, answered: bool) -> Any:
        node = self.server.nodes.get(path)
        if answered:
            self._watch(self.data_watchers, path, watch)  # set whether or not it exists
        return None if node is None else raw_stat(node.stat)

    def exists(self, path: str, watch: Callback | None = None) -> NodeStat | None:
        self._call(lambda answered: self._exists(path, _plain(watch), answered))
        node = self.server.nodes.get(path)
        return None if node is None else node.stat

    def send_watching_exists(self, path: str, watch: EventWatcher) -> ModelPending:
        return self.send(lambda answered: self._exists(path, watch, answered))

    def send_exists(self, path: str) -> ModelPending:
        return self.send(lambda answered: self._exists(path, None, answered))

    def send_create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> ModelPending:
        def run(answered: bool) -> str:
            return self.server.create(path, data, self.owner() if ephemeral else 0)[0]

        return self.send(run)

    def send_delete(self, path: str) -> ModelPending:
        return self.send(lambda answered: self.server.delete(path))

    def forget_watch(self, path: str, *, if_alone: bool = False) -> None:
        self.data_watchers.pop(path, None)  # kazoo drops its record at once (removeWatches)

    def delete(self, path: str, version: int = -1) -> None:
        self._call(lambda answered: self.server.delete(path))

    def sync(self, path: str = "/") -> None:
        self._call(lambda answered: None)

    def abandon(self, paths: list[str]) -> None:
        if not paths or self.state is ConnectionState.LOST:
            return
        self.orphans.update(paths)
        if self.state is ConnectionState.CONNECTED:
            for path in paths:
                self._delete_orphan(path)

    def _delete_orphan(self, path: str) -> None:
        pending = self.send_delete(path)

        def done() -> None:
            if pending.succeeded() or not self._refused_by_connection(pending):
                self.orphans.discard(path)

        pending.when_done(done)

    @staticmethod
    def _refused_by_connection(pending: ModelPending) -> bool:
        try:
            pending.result()
        except (Retryable, SessionGone):
            return True
        except Exception:
            return False
        return False

    # -- SessionPort: the lease -----------------------------------------------------------------

    def lease_remaining(self) -> float:
        return 10.0 if self.state is ConnectionState.CONNECTED else 0.0

    def lease_figures(self) -> LeaseFigures:
        raise AssertionError("not used: the model's lease has no successor bound")

    def watch_lease(self, key: int, on_expiry: Callback) -> None:
        self.lease_listeners[key] = on_expiry

    def unwatch_lease(self, key: int) -> None:
        self.lease_listeners.pop(key, None)

    def when_lease_valid(self, key: int, callback: Callback) -> None:
        if self.state is ConnectionState.CONNECTED:
            callback()
        else:
            self.lease_waiters[key] = callback


def _plain(watch: Callback | None) -> EventWatcher | None:
    """A watch that is not told what fired it, as one that is."""
    if watch is None:
        return None
    return lambda _event: watch()
