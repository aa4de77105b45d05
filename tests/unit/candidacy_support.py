"""A scripted ZooKeeper for the candidacy's unit tests (tests/unit/test_candidacy.py).

``FakeZooKeeper`` holds the servers' view (nodes, sequence numbers, watches); each
``FakeSession`` is one client's session on it and implements the candidacy's
``SessionPort`` (zkelect/_election/ports.py). Requests answer at once; a test scripts a
failure with ``session.fail(operation, error)`` (raised by the next such request) and
reads what was sent in ``session.sent``. Timers run on a ManualClock: nothing fires until
the test advances it. ``Candidate`` runs one candidacy's actor by hand: ``pump()``
handles queued messages (and then the user callbacks) until none is left.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from zkelect._election._joining import FirstJoin
from zkelect._election.candidacy import Candidacy
from zkelect._election.messages import Lifecycle, Message, SessionChanged, Start
from zkelect._election.nodes import LEADER_MARKER_PREFIX
from zkelect._election.standing import Standing
from zkelect._election.switchover import REQUEST_NODE
from zkelect._lease import LeaseFigures
from zkelect._zookeeper.joins import JoinOutcome
from zkelect._zookeeper.outcomes import (
    BadVersion,
    ConnectionState,
    EventWatcher,
    Listing,
    NodeExists,
    NodeStat,
    NoNode,
    Retryable,
    WatchEvent,
)
from zkelect.clock import ManualClock
from zkelect.config import ElectionConfig
from zkelect.errors import PermissionDeniedError
from zkelect.fencing.leadership import Leadership
from zkelect.metrics import NoopRecorder

PATH = "/election"
Callback = Callable[[], None]


@dataclass
class _Stat:
    """What ``listing_of`` reads from a children answer."""

    pzxid: int


class FakeZooKeeper:
    """The servers: one election path, its candidate nodes, and one-shot watches."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[bytes, NodeStat]] = {}
        self.zxid = 100
        self.pzxid = 0
        self.sequence = 0
        self.data_watches: dict[str, list[tuple[int, EventWatcher]]] = defaultdict(list)
        self.child_watches: list[tuple[int, Callback]] = []
        self.deny_delete = False  # the election path's ACL lacks DELETE for candidates

    def candidates(self) -> list[str]:
        """The candidate nodes (not the leader markers)."""
        return [path for path in self.nodes if LEADER_MARKER_PREFIX not in path]

    def names(self) -> list[str]:
        return sorted(path.rsplit("/", 1)[1] for path in self.nodes)

    def create(self, prefix_path: str, data: bytes, owner: int) -> tuple[str, NodeStat]:
        self.zxid += 1
        path = f"{prefix_path}{self.sequence:010d}"
        self.sequence += 1
        stat = NodeStat(self.zxid, self.zxid, 0, owner)
        self.nodes[path] = (data, stat)
        self.pzxid = self.zxid
        self._fire_children()
        return path, stat

    def create_plain(self, path: str, owner: int, data: bytes = b"") -> None:
        """A node created by name (a leader marker, a switchover request): fires the exists
        watches on it."""
        if path in self.nodes:
            raise NodeExists(path)
        self.zxid += 1
        self.nodes[path] = (data, NodeStat(self.zxid, self.zxid, 0, owner))
        self.pzxid = self.zxid
        for _, watch in self.data_watches.pop(path, []):
            watch(WatchEvent.CREATED)
        self._fire_children()

    def set_data(self, path: str, data: bytes, version: int = -1) -> NodeStat:
        """A version-checked write: fires the data watches on the node."""
        if path not in self.nodes:
            raise NoNode(path)
        old = self.nodes[path][1]
        if version not in (-1, old.version):
            raise BadVersion(path)
        self.zxid += 1
        stat = NodeStat(old.czxid, self.zxid, old.version + 1, old.ephemeral_owner)
        self.nodes[path] = (data, stat)
        for _, watch in self.data_watches.pop(path, []):
            watch(WatchEvent.CHANGED)
        return stat

    def delete(self, path: str) -> None:
        if path not in self.nodes:
            raise NoNode(path)
        self.zxid += 1
        del self.nodes[path]
        self.pzxid = self.zxid
        for _, watch in self.data_watches.pop(path, []):
            watch(WatchEvent.DELETED)
        self._fire_children()

    def expire(self, session_id: int) -> None:
        """The servers expire a session: its ephemeral nodes go."""
        for path in [p for p, (_, s) in self.nodes.items() if s.ephemeral_owner == session_id]:
            self.delete(path)

    def _fire_children(self) -> None:
        watches, self.child_watches = self.child_watches, []
        for _, watch in watches:
            watch()


def _ignoring_event(watch: Callback) -> EventWatcher:
    return lambda _event: watch()


def _stat_answer(got: tuple[bytes, NodeStat] | None) -> Any:
    """What kazoo's exists answers (a ZnodeStat-like object, or None) as ``stat_of`` reads it."""
    if got is None:
        return None
    stat = got[1]
    return SimpleNamespace(
        czxid=stat.czxid,
        mzxid=stat.mzxid,
        version=stat.version,
        ephemeralOwner=stat.ephemeral_owner,
        ctime=stat.ctime,
    )


class FakePending:
    """A request answered at once (``Pending``)."""

    def __init__(self, run: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        try:
            self._value = run()
        except Exception as exc:
            self._error = exc

    def when_done(self, callback: Callback) -> None:
        callback()

    def succeeded(self) -> bool:
        return self._error is None

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class FakeTicket:
    """A batched create (``JoinTicket``), answered when the test says ``settle()``."""

    def __init__(self, run: Callable[[], JoinOutcome]) -> None:
        self._run = run
        self._callbacks: list[Callback] = []
        self._outcome: JoinOutcome | None = None
        self._error: BaseException | None = None
        self.settled = False

    def settle(self) -> None:
        try:
            self._outcome = self._run()
        except Exception as exc:
            self._error = exc
        self.settled = True
        for callback in self._callbacks:
            callback()

    def when_done(self, callback: Callback) -> None:
        if self.settled:
            callback()
        else:
            self._callbacks.append(callback)

    def result(self, timeout: float) -> JoinOutcome:
        if not self.settled:
            raise Retryable("not answered in time")
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome


class FakeJoins:
    def __init__(self, session: FakeSession) -> None:
        self._session = session
        self.tickets: list[FakeTicket] = []

    def submit(self, path: str, prefix: str, data: bytes) -> FakeTicket:
        session = self._session

        def create() -> JoinOutcome:
            first = not session.zk.nodes
            created, stat = session.zk.create(prefix, data, session.session_id or 0)
            return JoinOutcome(created, stat, first)

        ticket = FakeTicket(create)
        self.tickets.append(ticket)
        return ticket

    def join(self, path: str, prefix: str, data: bytes) -> tuple[JoinOutcome, FakePending | None]:
        """A blocking start()'s join: with the path (no read) when nobody is there yet."""
        session = self._session
        first = not session.zk.nodes
        created, stat = session.create_candidate(prefix, data)
        if first:
            return JoinOutcome(created, stat, True), None
        return JoinOutcome(created, stat, False), session.send_listing(path)


class FakeTimers:
    """``Timers`` on a ManualClock, fired by ``fire_due()``."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.pending: list[tuple[float, Callback]] = []

    def call_later(self, delay: float, fn: Callback) -> object:
        self.pending.append((self._clock() + delay, fn))
        return None

    def fire_due(self) -> int:
        due = [entry for entry in self.pending if entry[0] <= self._clock()]
        self.pending = [entry for entry in self.pending if entry[0] > self._clock()]
        for _, fn in due:
            fn()
        return len(due)


class FakeNotifier:
    def __init__(self) -> None:
        self.queue: deque[Callback] = deque()

    def post(self, fn: Callback) -> None:
        self.queue.append(fn)


class FakeLease:
    def successor_possible_at(self) -> float | None:
        return None


@dataclass
class FakeSession:
    """One client's session on ``zk``; satisfies ``SessionPort``."""

    zk: FakeZooKeeper
    clock: ManualClock
    session_id: int | None = 1
    state: ConnectionState = ConnectionState.CONNECTED
    owned: bool = False
    lease_left: float = 10.0
    sent: list[tuple[str, str]] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    lease_listeners: dict[int, Callback] = field(default_factory=dict)
    lease_waiters: dict[int, Callback] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.timers = FakeTimers(self.clock)
        self.notifier = FakeNotifier()
        self.join_slots = threading.BoundedSemaphore(8)
        self.joins = FakeJoins(self)
        self.lease = FakeLease()
        self._failures: dict[str, deque[BaseException]] = defaultdict(deque)

    def fail(self, operation: str, error: BaseException, *, landed: bool = False) -> None:
        """The next ``operation`` raises ``error`` (for a create: after creating the node if
        ``landed``, as when the answer of a create that did land is lost)."""
        self._failures[operation + ("+landed" if landed else "")].append(error)

    def _request(self, operation: str, path: str) -> None:
        self.sent.append((operation, path))
        if self._failures[operation]:
            raise self._failures[operation].popleft()

    def _watch(self, fired: Callback | None) -> Callback | None:
        return fired

    # -- SessionPort ----------------------------------------------------------------------------

    def create_candidate(self, path: str, data: bytes) -> tuple[str, NodeStat]:
        self._request("create", path)
        created = self.zk.create(path, data, self.session_id or 0)
        if self._failures["create+landed"]:
            raise self._failures["create+landed"].popleft()
        return created

    def listing(self, path: str) -> Listing:
        self._request("listing", path)
        return Listing(self.zk.names(), self.zk.pzxid)

    def send_listing(self, path: str) -> FakePending:
        return FakePending(lambda: (self.listing(path).names, _Stat(self.zk.pzxid)))

    def children(self, path: str, watch: Callback | None = None) -> list[str]:
        self._request("children", path)
        if watch is not None:
            self.zk.child_watches.append((self.session_id or 0, watch))
        return self.zk.names()

    def get(self, path: str, watch: Callback | None = None) -> tuple[bytes, NodeStat]:
        plain = None if watch is None else _ignoring_event(watch)
        return self.watching_get(path, plain) if plain else self._get(path)

    def _get(self, path: str) -> tuple[bytes, NodeStat]:
        self._request("get", path)
        if path not in self.zk.nodes:
            raise NoNode(path)
        return self.zk.nodes[path]

    def watching_get(self, path: str, watch: EventWatcher | None) -> tuple[bytes, NodeStat]:
        got = self._get(path)
        if watch is not None:
            self.zk.data_watches[path].append((self.session_id or 0, watch))
        return got

    def send_watching_exists(self, path: str, watch: EventWatcher) -> FakePending:
        def run() -> NodeStat | None:
            self._request("exists", path)
            self.zk.data_watches[path].append((self.session_id or 0, watch))
            return _stat_answer(self.zk.nodes.get(path))

        return FakePending(run)

    def send_exists(self, path: str) -> FakePending:
        return FakePending(lambda: _stat_answer(self.zk.nodes.get(path)))

    def send_create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> FakePending:
        def run() -> str:
            self._request("create_marker", path)
            self.zk.create_plain(path, self.session_id or 0)
            return path

        return FakePending(run)

    def send_delete(self, path: str) -> FakePending:
        return FakePending(lambda: self.delete(path))

    def forget_watch(self, path: str, *, if_alone: bool = False) -> None:
        self.sent.append(("forget_watch", path))
        watches = self.zk.data_watches.get(path, [])
        watches[:] = [(owner, w) for owner, w in watches if owner != (self.session_id or 0)]

    def send_get(self, path: str, watch: Callback | None = None) -> FakePending:
        return FakePending(lambda: self.get(path, watch))

    def get_many(self, paths: list[str]) -> list[tuple[bytes, NodeStat] | None]:
        return [self.zk.nodes.get(path) for path in paths]

    def exists(self, path: str, watch: Callback | None = None) -> NodeStat | None:
        self._request("exists", path)
        got = self.zk.nodes.get(path)
        return None if got is None else got[1]

    def delete(self, path: str, version: int = -1) -> None:
        self._request("delete", path)
        if self.zk.deny_delete:
            raise PermissionDeniedError(f"no DELETE on {path}")
        self.zk.delete(path)

    def sync(self, path: str = "/") -> None:
        self._request("sync", path)

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> str:
        self._request("create_plain", path)
        self.zk.create_plain(path, self.session_id or 0, data)
        return path

    def set_data(self, path: str, value: bytes, version: int = -1) -> NodeStat:
        self._request("set_data", path)
        return self.zk.set_data(path, value, version)

    def abandon(self, paths: list[str]) -> None:
        self.abandoned.extend(paths)

    def lease_remaining(self) -> float:
        return self.lease_left

    def lease_figures(self) -> LeaseFigures:
        raise AssertionError("not used: successor_possible_at() is None")

    def watch_lease(self, key: int, on_expiry: Callback) -> None:
        self.lease_listeners[key] = on_expiry

    def unwatch_lease(self, key: int) -> None:
        self.lease_listeners.pop(key, None)

    def when_lease_valid(self, key: int, callback: Callback) -> None:
        if self.lease_left > 0:
            callback()
        else:
            self.lease_waiters[key] = callback


class NullObserver:
    last: object = object()

    def invalidate(self) -> None: ...

    def refresh(self) -> None: ...

    def on_fired(self, generation: int) -> None: ...


class Candidate:
    """One candidacy on its own session, its actor run by hand."""

    def __init__(
        self,
        zk: FakeZooKeeper,
        clock: ManualClock,
        session_id: int,
        config: ElectionConfig | None = None,
    ) -> None:
        self.session = FakeSession(zk, clock, session_id)
        self.clock = clock
        self.mailbox: deque[Message] = deque()
        self.handled: list[Message] = []
        self.elected: list[Leadership] = []
        self.revoked: list[str] = []
        self.standing = Standing(
            self.session,
            PATH,
            f"c{session_id}",
            clock=clock,
            metrics=NoopRecorder(),
            on_elected=self.elected.append,
            on_revoked=self.revoked.append,
            request_timeout=1.0,
            revoke_on_suspend=True,
        )
        self.standing.lifecycle = Lifecycle.STARTED
        self.candidacy = Candidacy(
            self.session,
            PATH,
            f"c{session_id}".encode(),
            config=config or ElectionConfig(),
            clock=clock,
            metrics=NoopRecorder(),
            standing=self.standing,
            observer=NullObserver(),
            observing=False,
        )
        self.candidacy.attach(self.mailbox.append, self.mailbox.append)

    def start(self) -> Future[None]:
        first: Future[None] = Future()
        self.mailbox.append(Start(first))
        self.pump()
        return first

    def start_blocking(self) -> FirstJoin:
        """A blocking start(): the first join on the caller's thread, then its Start."""
        joined = self.candidacy.join_first()
        self.mailbox.append(Start(Future(), joined))
        self.pump()
        return joined

    def post(self, message: Message) -> None:
        self.mailbox.append(message)
        self.pump()

    def pump(self) -> None:
        while self.mailbox or self.session.notifier.queue:
            while self.mailbox:
                message = self.mailbox.popleft()
                self.handled.append(message)
                self.candidacy.handle(message)
            while self.session.notifier.queue:
                self.session.notifier.queue.popleft()()

    def advance(self, seconds: float) -> None:
        """Move the clock, fire the timers that came due, and run what they posted."""
        self.clock.advance(seconds)
        self.session.timers.fire_due()
        self.pump()

    def session_state(self, state: ConnectionState, session_id: int | None = None) -> None:
        """The session's listener is told of ``state`` (as kazoo's thread would)."""
        self.session.state = state
        if session_id is not None:
            self.session.session_id = session_id
        self.standing.on_session_state(state, self.session.session_id)
        assert isinstance(self.mailbox[-1], SessionChanged)
        self.pump()

    @property
    def node_path(self) -> str | None:
        node = self.candidacy.node
        return None if node is None else f"{PATH}/{node}"

    def watched(self) -> list[str]:
        """The candidate nodes this candidate's session holds a data watch on."""
        return [
            path
            for path in self._watches()
            if LEADER_MARKER_PREFIX not in path and not path.endswith(REQUEST_NODE)
        ]

    def request_watched(self) -> bool:
        """Whether this candidate holds the switchover request's watch (leader, deputy: R14)."""
        return any(path.endswith(f"/{REQUEST_NODE}") for path in self._watches())

    def marker_watches(self) -> list[str]:
        """The leader markers this candidate's session holds an exists watch on (R13)."""
        return [path for path in self._watches() if LEADER_MARKER_PREFIX in path]

    def _watches(self) -> list[str]:
        sid = self.session.session_id
        watches = self.session.zk.data_watches.items()
        return sorted(path for path, ws in watches for owner, _ in ws if owner == sid)

    def listings(self) -> int:
        """How many times this candidate read the children."""
        return sum(1 for operation, _ in self.session.sent if operation == "listing")
