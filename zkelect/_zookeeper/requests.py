"""The typed requests of a session, and kazoo's exceptions turned into zkelect's.

Every request has a deadline (the configured request timeout) and ends in a value, one of
the outcomes of outcomes.py, or a public ``ZkElectError`` (NoAuth is terminal, never
retried: ``PermissionDeniedError``). Sending is separate from waiting (:class:`Pending`):
a watch callback can send the next read at once, while the step that needs it is still
being scheduled. A request that went through the ZooKeeper leader (a write, a ``sync``)
renews the lease when it is answered.

:class:`Requests` is mixed into ``Session``; it holds no state of its own.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from kazoo.exceptions import (
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
from kazoo.protocol.states import EventType, KazooState, WatchedEvent
from kazoo.security import OPEN_ACL_UNSAFE

from zkelect._zookeeper.outcomes import (
    BadVersion,
    ConnectionState,
    EventWatcher,
    Listing,
    NodeExists,
    NodeStat,
    NoNode,
    Retryable,
    SessionGone,
    TransactionFailed,
    Watcher,
    WatchEvent,
)
from zkelect._zookeeper.raw_requests import (
    call_raw,
    create_multi,
    data_watchers,
    forget_data_watch,
)
from zkelect.errors import ConfigurationError, PermissionDeniedError

if TYPE_CHECKING:
    from zkelect._zookeeper.hooks import ConnectionTap
    from zkelect.clock import Clock
    from zkelect.config import ElectionConfig

__all__ = [
    "Pending",
    "Requests",
    "Transaction",
    "candidate_created",
    "connection_state",
    "listing_of",
    "node_stat",
    "stat_of",
    "translate",
]

_OPEN_ACL = OPEN_ACL_UNSAFE[0]


def node_stat(raw: Any) -> NodeStat:
    """The parts of kazoo's ZnodeStat that zkelect uses."""
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


def connection_state(state: str) -> ConnectionState:
    """kazoo's state of a client as zkelect's."""
    if state == KazooState.CONNECTED:
        return ConnectionState.CONNECTED
    if state == KazooState.SUSPENDED:
        return ConnectionState.SUSPENDED
    return ConnectionState.LOST


def is_no_node(exc: BaseException | None) -> bool:
    """Whether a raw kazoo error says the node does not exist."""
    return isinstance(exc, NoNodeError)


def is_refused(exc: BaseException | None) -> bool:
    """Whether a raw kazoo error says this session may not do that (not retried)."""
    return isinstance(exc, (NoAuthError, AuthFailedError))


class Requests(abc.ABC):
    """The typed requests of a ``Session`` (mixed into it; see the module docstring)."""

    # Provided by Session.
    client: Any
    config: ElectionConfig
    clock: Clock
    tap: ConnectionTap

    @property
    @abc.abstractmethod
    def session_id(self) -> int | None:
        """The current session's id (None before the first connection)."""

    @abc.abstractmethod
    def _answered(self, sent_at: float, session_id: int | None, generation: int) -> None:
        """A request sent at ``sent_at`` was answered: the lease may count it as a touch."""

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

    def send_watching_get(self, path: str, watch: EventWatcher) -> Pending:
        """``get(path)`` sent now, leaving a watch that is told what fired it (a deletion
        or a change of data); ``result()`` gives the raw (data, stat)."""
        return self.send(lambda: self.client.get_async(path, _wrap_event_watch(watch)))

    def watching_get(self, path: str, watch: EventWatcher) -> tuple[bytes, NodeStat]:
        """``send_watching_get`` waited for: data and stat (raises ``NoNode``, no watch left)."""
        data, raw = self.send_watching_get(path, watch).result()
        return bytes(data or b""), node_stat(raw)

    def send_watching_exists(self, path: str, watch: EventWatcher) -> Pending:
        """``exists(path)`` sent now, leaving a watch that fires when the node is created
        (or, if it exists, changed or deleted); ``stat_of(pending.result())``."""
        return self.send(lambda: self.client.exists_async(path, _wrap_event_watch(watch)))

    def send_exists(self, path: str) -> Pending:
        """``exists(path)`` sent now, without a watch; ``stat_of(pending.result())``."""
        return self.send(lambda: self.client.exists_async(path))

    def send_create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> Pending:
        """A plain create (no parents made), sent now; ``result()`` gives the path."""
        return self.send(
            lambda: self.client.create_async(path, data, ephemeral=ephemeral), via_leader=True
        )

    def send_delete(self, path: str) -> Pending:
        """``delete(path)`` sent now; ``result()`` raises ``NoNode`` if it was gone."""
        return self.send(lambda: self.client.delete_async(path, -1), via_leader=True)

    def forget_watch(self, path: str, *, if_alone: bool = False) -> None:
        """Drop our data watch on ``path`` (set by ``send_watching_exists`` on a node that
        was never created): best effort, not waited for. ``if_alone``: only if no other
        user of this session watches the path too (a removeWatches drops them all); else
        ours is left to fire once, stale."""
        try:
            if if_alone and data_watchers(self.client, path) > 1:
                return
            forget_data_watch(self.client, path)
        except Exception:  # a lost connection drops it with the session
            return

    def send_children(self, path: str) -> Pending:
        """``children(path)`` sent now, without a watch; ``result()`` gives the names."""
        return self.send(lambda: self.client.get_children_async(path))

    def create_candidate(self, path: str, data: bytes) -> tuple[str, NodeStat]:
        """Create an EPHEMERAL_SEQUENTIAL node (parents as needed); its full path and stat."""
        return candidate_created(self.send_create_candidate(path, data).result())

    def send_create_candidate(self, path: str, data: bytes, *, makepath: bool = True) -> Pending:
        """``create_candidate`` sent now; ``candidate_created(pending.result())`` reads it.
        Without ``makepath`` a missing parent is an answer (NoNode) rather than kazoo's
        chain of requests to create it, so a read sent behind the create stays valid."""
        return self.send(
            lambda: self.client.create_async(
                path, data, ephemeral=True, sequence=True, makepath=makepath, include_data=True
            ),
            via_leader=True,
        )

    def send_ensure_path(self, path: str) -> Pending:
        """``ensure_path(path)`` sent now (creating missing parents)."""
        return self.send(lambda: self.client.ensure_path_async(path), via_leader=True)

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
        return bytes(data or b""), node_stat(raw)

    def exists(self, path: str, watch: Watcher | None = None) -> NodeStat | None:
        raw = self._call(lambda: self.client.exists_async(path, _wrap_watch(watch)))
        return None if raw is None else node_stat(raw)

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

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> str:
        """A plain create, waited for (``NodeExists`` if it is there): the path made."""
        return str(self.send_create(path, data, ephemeral=ephemeral).result())

    def set_data(self, path: str, value: bytes, version: int = -1) -> NodeStat:
        """Set a node's data, checked against ``version`` (-1: any); ``BadVersion`` if it
        moved on, ``NoNode`` if it is gone. The node's new stat."""
        raw = self._call(lambda: self.client.set_async(path, value, version), via_leader=True)
        return node_stat(raw)

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
            results.append((bytes(data or b""), node_stat(raw)))
        return results

    def transaction(self) -> Transaction:
        return Transaction(self)

    def send_creates(self, creates: list[tuple[str, bytes, bool]]) -> Pending:
        """Many creates in one multi-op, sent now: all are applied or none is.

        ``creates``: ``(path, data, candidate)``; a candidate is EPHEMERAL_SEQUENTIAL (``path``
        is its name prefix), anything else a persistent node. ``result()`` gives one entry
        per create: ``(full path, NodeStat)`` when all were applied; otherwise the failing
        create's translated error, and ``None`` for the creates that were rolled back.
        One request instead of one per node: what lets thousands of elections join at once.
        """
        request = create_multi(self.client, creates)
        return self.send(lambda: call_raw(self.client, request), via_leader=True)

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


class Pending:
    """A request in flight. Sending is separate from waiting so that a watch callback can
    send the next read at once, while the step that needs it is still being scheduled."""

    def __init__(self, session: Requests, start: Callable[[], Any], via_leader: bool) -> None:
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


def listing_of(answer: Any) -> Listing:
    names, stat = answer
    return Listing([str(name) for name in names], int(stat.pzxid))


def stat_of(answer: Any) -> NodeStat | None:
    """The stat from the answer of ``send_exists``/``send_watching_exists`` (None: no node)."""
    return None if answer is None else node_stat(answer)


def candidate_created(answer: Any) -> tuple[str, NodeStat]:
    """The full path and stat from the answer of ``send_create_candidate``."""
    created, raw = answer
    return str(created), node_stat(raw)


def _wrap_watch(watch: Watcher | None) -> Callable[[WatchedEvent], None] | None:
    if watch is None:
        return None

    def kazoo_watch(event: WatchedEvent) -> None:
        watch()

    return kazoo_watch


_EVENTS = {
    EventType.CREATED: WatchEvent.CREATED,
    EventType.DELETED: WatchEvent.DELETED,
    EventType.CHANGED: WatchEvent.CHANGED,
    EventType.CHILD: WatchEvent.CHILD,
}


def _wrap_event_watch(watch: EventWatcher) -> Callable[[WatchedEvent], None]:
    def kazoo_watch(event: WatchedEvent) -> None:
        watch(_EVENTS.get(event.type, WatchEvent.OTHER))

    return kazoo_watch


class Transaction:
    """A typed multi-op transaction: all operations commit together or none does."""

    def __init__(self, session: Requests) -> None:
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
        return self.results(self.send())

    def send(self) -> Pending:
        """The commit, sent now; its outcome from ``results`` (an event loop waits for it
        with ``Pending.when_done`` instead of a thread)."""
        return self._session.send(self._request.commit_async, via_leader=True)

    def results(self, pending: Pending) -> list[object]:
        """The results of ``send``'s commit (waiting for them if need be)."""
        results = cast(list[object], pending.result())
        failures = [
            (index, result)
            for index, result in enumerate(results)
            if isinstance(result, Exception) and not isinstance(result, RolledBackError)
        ]
        if failures:
            index, error = failures[0]
            raise TransactionFailed(index, self._ops[index], translate(error))
        return results
