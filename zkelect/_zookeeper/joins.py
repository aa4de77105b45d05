"""Batched joins: the candidate creates of many elections on one session, a few multi-ops.

``Election.start(wait=False)`` hands its create to the session's ``JoinBatcher`` instead of
sending a request of its own. The batcher gathers the creates that arrive while earlier
ones are in flight and sends them as one multi-op (one transaction on the servers, one
request and one answer on the client), creating missing election paths in the same
transaction. A candidate whose election path that transaction created needs no read at
all to know it is first: sequence numbers follow the parent's creation, so nothing can
precede it. Ten thousand elections then cost tens of transactions instead of ten
thousand creates, plus the retries of kazoo's ``makepath`` for every fresh path.

Everything here runs on kazoo's threads, in callbacks that only send requests: nothing
blocks, so the few worker threads of the session are never held by a batch (an election
stopping while its create is in flight waits for its ``JoinTicket`` on a worker thread).

``Election.start()`` (blocking) joins one election on its caller's thread instead
(:meth:`JoinBatcher.join`): a path not known to exist gets its node in the same multi as
the path itself, so a fresh election costs one round trip and no read; on a path known to
exist, the create and the read of the children go out together (a session's requests are
answered in order, so the read sees our node): one round trip too.

A multi is all or nothing. When one create fails, the answer names it: an election path
that exists after all, or was deleted, is learnt again and the batch is re-sent; a
candidate refused for good (NoAuth) is answered with its error and left out. A lost
answer fails every create of the batch as ``Retryable``: each election then looks for
its node by its unique name prefix before creating another (R1), as after any lost
create.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from zkelect._zookeeper.outcomes import NodeExists, NodeStat, NoNode, Retryable, SessionGone
from zkelect._zookeeper.requests import Pending, candidate_created
from zkelect.errors import ZkElectError

__all__ = ["JoinBatcher", "JoinOutcome", "JoinRequests", "JoinTicket"]

#: Creates per multi-op: far below ZooKeeper's ~1 MiB request limit, with
#: ``MAX_BATCH_BYTES`` as the bound for large candidate ids.
MAX_BATCH = 500
MAX_BATCH_BYTES = 512 * 1024
#: Multi-ops in flight at once: one being committed while the next is gathered.
MAX_IN_FLIGHT = 2
#: A batch that keeps failing (paths deleted and created under it) gives up after this
#: many attempts; its elections then join the ordinary way.
MAX_ATTEMPTS = 8
_OP_OVERHEAD = 64  # bytes per create besides its path and data (headers, ACL, flags)


class JoinRequests(Protocol):
    """The requests a batcher sends: what it needs of a ``Session`` (which has them)."""

    def send_children(self, path: str) -> Pending: ...

    def send_ensure_path(self, path: str) -> Pending: ...

    def send_create_candidate(
        self, path: str, data: bytes, *, makepath: bool = True
    ) -> Pending: ...

    def send_listing(self, path: str) -> Pending: ...

    def send_creates(self, creates: list[tuple[str, bytes, bool]]) -> Pending: ...

    def created_entries(
        self, answer: Any, creates: list[tuple[str, bytes, bool]]
    ) -> list[tuple[str, NodeStat] | BaseException | None]: ...


@dataclass(frozen=True)
class JoinOutcome:
    """A created candidate node: its path, its stat, and whether nothing can precede it
    (its election path was created by the same transaction)."""

    node_path: str
    stat: NodeStat
    first: bool


class JoinTicket:
    """The answer to one election's create, once the batch holding it is answered.

    Light on purpose (thousands are made at once): a lock, and an Event only for a caller
    that has to wait before the answer is in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = False
        self._waiter: threading.Event | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._outcome: JoinOutcome | None = None
        self._error: BaseException | None = None

    def _settle(self, outcome: JoinOutcome | None, error: BaseException | None) -> None:
        with self._lock:
            if self._settled:
                return
            self._outcome, self._error, self._settled = outcome, error, True
            callbacks, self._callbacks = self._callbacks, []
            waiter = self._waiter
        if waiter is not None:
            waiter.set()
        for callback in callbacks:
            callback()

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quick; from a kazoo thread) once answered."""
        with self._lock:
            if not self._settled:
                self._callbacks.append(callback)
                return
        callback()

    def result(self, timeout: float) -> JoinOutcome:
        """The created node, or what the create raised (``Retryable`` if not answered in time)."""
        with self._lock:
            if not self._settled and self._waiter is None:
                self._waiter = threading.Event()
            waiter = self._waiter
        if waiter is not None and not waiter.wait(timeout):
            raise Retryable("the batched create was not answered in time")
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome


@dataclass
class _Join:
    path: str  # the election path
    prefix: str  # full path of the node name prefix (sequence appended by the server)
    data: bytes
    ticket: JoinTicket

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.path) + len(self.data) + 2 * _OP_OVERHEAD


class JoinBatcher:
    """Gathers the creates of one session's joining elections into multi-ops."""

    def __init__(self, session: JoinRequests) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._queue: deque[_Join] = deque()
        self._in_flight = 0
        # Election paths known to exist. Learnt by reading their parents' children (one
        # read for many shard paths under one root); forgotten when a create says NoNode.
        self._existing: set[str] = set()
        # Parents whose children were read: a path below one that is not known to exist is
        # taken to be missing without reading again (10,000 shard paths under one root
        # would otherwise cost a 10,000-name read per batch). A create that says otherwise
        # (NodeExists, NoNode) makes the parent be read again.
        self._listed: set[str] = set()
        # Where a create of ours succeeded: election paths we created a node in, and parents
        # we created an election path under (with the same ACL and identities). A create
        # there cannot be refused unless an ACL is changed meanwhile (see ``proven``).
        self._proven: set[str] = set()

    def proven(self, path: str) -> bool:
        """Whether a join of ``path`` cannot end in a terminal error, as far as this session
        knows: it created a node in ``path`` before, or ``path`` is missing (its parent was
        read) under a parent it created an election path in. Then a blocking start() need
        not wait for the create's answer (only a permission changed meanwhile, or a path
        created meanwhile with an ACL refusing us, could refuse it; that is reported by
        ``wait_for_leadership()``)."""
        parent = _parent(path)
        with self._lock:
            if path in self._proven:
                return True
            return parent in self._proven and parent in self._listed and path not in self._existing

    def _proved(self, path: str, *, made_path: bool) -> None:
        with self._lock:
            self._existing.add(path)
            self._proven.add(path)
            if made_path:
                self._proven.add(_parent(path))

    def submit(self, path: str, prefix: str, data: bytes) -> JoinTicket:
        """Queue the create of a candidate node named ``prefix`` + sequence in ``path``."""
        join = _Join(path, prefix, data, JoinTicket())
        with self._lock:
            self._queue.append(join)
        self._pump()
        return join.ticket

    def join(self, path: str, prefix: str, data: bytes) -> tuple[JoinOutcome, Pending | None]:
        """Create one candidate node now, waiting on the calling thread (a blocking start()).

        When ``path`` is not known to exist, the path and the node in one multi: the outcome
        is then ``first`` (nothing can precede a node made with its parent: no read needed).
        Else the create, with the read of the children sent right behind it: that read's
        Pending comes back too (None when ``first``). A create answered with an error made
        nothing, so trying again is safe; a lost answer raises (``Retryable``,
        ``SessionGone``) and the caller finds its node again by the prefix (R1).
        """
        session = self._session
        refused: BaseException | None = None  # we may not create the path: it must exist
        for _ in range(MAX_ATTEMPTS):
            parent = _parent(path)
            with self._lock:
                known = path in self._existing
                listed = parent in self._listed
            if known or refused is not None:
                joined = self._create_in(path, prefix, data)
                if joined is not None:
                    return joined
                if refused is not None:  # missing, and we may not create it
                    raise refused
                continue
            # Read the parent's children once, in the same round trip: what later joins
            # under it need to know that their paths are missing (``proven``).
            siblings = None if listed else session.send_children(parent)
            creates = [(path, b"", False), (prefix, data, True)]
            multi = session.send_creates(creates)
            try:
                answer = multi.result()
            except (Retryable, SessionGone):
                _raise_refusal(siblings)  # a session refused outright (SASL) answers it first
                raise
            entries = session.created_entries(answer, creates)
            if siblings is not None:
                self._listed_children(parent, siblings)
            made_path = not isinstance(entries[0], BaseException)
            error = entries[1] if made_path else entries[0]
            if isinstance(error, tuple):
                self._proved(path, made_path=True)
                return JoinOutcome(error[0], error[1], first=True), None
            if isinstance(error, NodeExists) and not made_path:
                with self._lock:  # the path exists after all: create the node alone
                    self._existing.add(path)
            elif isinstance(error, NoNode) and not made_path:
                session.send_ensure_path(parent).result()  # its parents are missing too
            elif isinstance(error, ZkElectError) and not made_path:
                # Refused on the parent (checked before whether the path exists): a path made
                # by someone else under a parent we may only read is joined all the same.
                refused = error
            else:
                raise error if error is not None else Retryable("a multi answered nothing")
        raise Retryable("the election path kept changing under a join")

    def _create_in(self, path: str, prefix: str, data: bytes) -> tuple[JoinOutcome, Pending] | None:
        """Our node in ``path``, which should exist, with the read of the children sent right
        behind the create (answered in order: it shows our node); None if ``path`` is gone."""
        session = self._session
        created = session.send_create_candidate(prefix, data, makepath=False)
        listing = session.send_listing(path)
        try:
            node_path, stat = candidate_created(created.result())
        except NoNode:  # deleted meanwhile (R10), or never there: create it with the node
            with self._lock:
                self._existing.discard(path)
            return None
        self._proved(path, made_path=False)
        return JoinOutcome(node_path, stat, first=False), listing

    def _listed_children(self, parent: str, pending: Pending) -> None:
        """Learn every child of ``parent`` from a read answered before our multi (so the
        path that multi created is not among them, and is added by ``_proved``)."""
        try:
            names = pending.result()
        except Exception:  # missing, or unreadable: nothing learnt
            return
        with self._lock:
            self._existing.update(f"{parent.rstrip('/')}/{name}" for name in names)
            self._listed.add(parent)

    def _pump(self) -> None:
        batches: list[list[_Join]] = []
        with self._lock:
            while self._queue and self._in_flight < MAX_IN_FLIGHT:
                batch: list[_Join] = []
                size = 0
                while self._queue and len(batch) < MAX_BATCH:
                    size += self._queue[0].size
                    if batch and size > MAX_BATCH_BYTES:
                        break
                    batch.append(self._queue.popleft())
                self._in_flight += 1
                batches.append(batch)
        for batch in batches:
            self._attempt(batch, 1)

    def _finished(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._pump()

    # -- one attempt: learn which election paths exist, then one multi -------------------

    def _attempt(self, batch: list[_Join], attempt: int) -> None:
        by_parent: dict[str, list[str]] = {}
        with self._lock:
            for path in sorted({join.path for join in batch} - self._existing):
                parent = _parent(path)
                if parent not in self._listed:
                    by_parent.setdefault(parent, []).append(path)
        if not by_parent:
            self._send(batch, attempt)
            return
        remaining = [len(by_parent)]
        counter = threading.Lock()

        def learnt() -> None:
            with counter:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._send(batch, attempt)

        for parent, paths in by_parent.items():
            self._learn(parent, paths, learnt)

    def _learn(self, parent: str, paths: list[str], then: Callable[[], None]) -> None:
        """Read ``parent``'s children to see which of ``paths`` exist (creating ``parent``
        and its ancestors if it is missing); then call ``then``. Errors are left to the
        multi: a path wrongly thought missing fails it with NodeExists, and is learnt."""
        session = self._session
        pending = session.send_children(parent)

        def answered() -> None:
            try:
                names = set(pending.result())
            except NoNode:
                session.send_ensure_path(parent).when_done(then)
                return
            except Exception:  # the multi will say what is wrong
                then()
                return
            with self._lock:
                self._existing.update(p for p in paths if p.rsplit("/", 1)[1] in names)
                self._listed.add(parent)
            then()

        pending.when_done(answered)

    def _send(self, batch: list[_Join], attempt: int) -> None:
        creates: list[tuple[str, bytes, bool]] = []
        owners: list[tuple[_Join, bool] | None] = []  # per create: (join, first) or a path
        with self._lock:
            created_here: set[str] = set()
            for join in batch:
                first = False
                if join.path not in self._existing and join.path not in created_here:
                    created_here.add(join.path)
                    creates.append((join.path, b"", False))
                    owners.append(None)
                    first = True
                creates.append((join.prefix, join.data, True))
                owners.append((join, first))
        pending = self._session.send_creates(creates)
        pending.when_done(lambda: self._answered(batch, attempt, creates, owners, pending))

    def _answered(
        self,
        batch: list[_Join],
        attempt: int,
        creates: list[tuple[str, bytes, bool]],
        owners: list[tuple[_Join, bool] | None],
        pending: Pending,
    ) -> None:
        session = self._session
        try:
            entries = session.created_entries(pending.result(), creates)
        except BaseException as exc:  # outcome unknown (lost answer) or refused outright
            self._settle_all(batch, exc)
            return
        failed = next(
            ((i, entry) for i, entry in enumerate(entries) if isinstance(entry, BaseException)),
            None,
        )
        if failed is None:
            with self._lock:
                self._existing.update(join.path for join in batch)
                self._proven.update(join.path for join in batch)
                # The parents of the paths this multi created (``first``): proven too.
                self._proven.update(_parent(o[0].path) for o in owners if o is not None and o[1])
            for owner, entry in zip(owners, entries, strict=True):
                if owner is not None:
                    join, first = owner
                    assert isinstance(entry, tuple)
                    join.ticket._settle(JoinOutcome(entry[0], entry[1], first), None)
            self._finished()
            return
        index, error = failed
        owner = owners[index]
        path = creates[index][0] if owner is None else owner[0].path
        if isinstance(error, NodeExists) and owner is None:
            with self._lock:
                self._existing.add(path)  # created meanwhile by someone else
                self._listed.discard(_parent(path))  # others may have been too
        elif isinstance(error, NoNode):
            with self._lock:
                self._existing.discard(path)  # deleted meanwhile (R10): create it again
                self._listed.discard(_parent(path))
        else:  # refused for good (NoAuth, bad data): those creates fail, the rest go again
            refused = [join for join in batch if join.path == path]
            batch = [join for join in batch if join.path != path]
            self._settle_all(refused, error, finished=False)
        if not batch:
            self._finished()
        elif attempt >= MAX_ATTEMPTS:
            self._settle_all(batch, Retryable("the election paths kept changing under a batch"))
        else:
            self._attempt(batch, attempt + 1)

    def _settle_all(
        self, batch: list[_Join], error: BaseException, *, finished: bool = True
    ) -> None:
        for join in batch:
            join.ticket._settle(None, error)
        if finished:
            self._finished()


def _raise_refusal(pending: Pending | None) -> None:
    """Raise what ``pending`` raised if that is terminal (a ``ZkElectError``)."""
    if pending is None:
        return
    try:
        pending.result()
    except ZkElectError:
        raise
    except Exception:  # transient, or the path's parent missing: the multi's error stands
        return


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"
