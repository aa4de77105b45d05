"""Fenced SQL stores: a write lands only if its epoch is not lower than any seen before.

The store keeps, per *resource* (any name you choose: a table, a shard, a job), the
highest epoch it has accepted. ``with store.fenced(resource, token) as connection:``
opens one database transaction that locks that high-water mark, checks the epoch, runs
the block's writes on ``connection`` and records the epoch on commit;
``write(resource, token, action)`` is the same with ``action(connection)`` as the block.
The check and the write cannot be separated by a pause, and writers racing with
different epochs, from any thread or process, are serialised by the database (a row
lock in PostgreSQL, the write lock in SQLite): once epoch e2 has been accepted, no write
with e1 < e2 can commit after it. An equal epoch is accepted (the same leader writing
again).

Schema (one table, created if missing; the name is configurable)::

    CREATE TABLE zkelect_fence (
        resource   TEXT PRIMARY KEY,
        epoch      BIGINT NOT NULL,   -- highest accepted epoch (czxid of the leader's node)
        holder     TEXT NOT NULL,     -- candidate id that wrote it
        updated_at <timestamp>
    );

A store that does not check tokens cannot be protected: every writer must go through it.
"""

from __future__ import annotations

import abc
import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from zkelect.config import check_seconds
from zkelect.errors import ConfigurationError, StaleEpochError
from zkelect.fencing.token import FencingToken, describe_epoch
from zkelect.metrics import MetricsRecorder, NoopRecorder

__all__ = ["FencedStore", "PostgresFencedStore", "SQLiteFencedStore"]

T = TypeVar("T")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_MAX_EPOCH = (1 << 63) - 1
_PG_CLAIM_TYPES = (25, 20, 25)  # the fence's parameters: text, bigint, text (type OIDs)


class FencedStore(Protocol):
    """What every fenced store offers."""

    def fenced(self, resource: str, token: FencingToken) -> AbstractContextManager[Any]:
        """One fenced transaction: ``with store.fenced(resource, token) as connection:``.

        Entering begins a transaction, locks ``resource``'s high-water mark (other
        transactions on it, from any thread or process, wait until this one ends) and
        raises StaleEpochError if ``token``'s epoch is lower. The block writes through
        ``connection``. A clean exit records the epoch and commits, an exception rolls
        everything back. The block must not commit or roll back itself.
        """
        ...

    def write(self, resource: str, token: FencingToken, action: Callable[[Any], T]) -> T:
        """Run ``action(connection)`` inside ``fenced(resource, token)``; its result."""
        ...

    def highest_epoch(self, resource: str) -> int | None:
        """The highest epoch accepted for ``resource`` (None if none yet)."""
        ...


def _table_name(table: str) -> str:
    if not isinstance(table, str) or not _IDENTIFIER.match(table):
        raise ConfigurationError(
            f"table must be a plain SQL identifier (letters, digits, _), got {table!r}"
        )
    return table


def _check_resource(resource: object) -> str:
    if not isinstance(resource, str) or not resource:
        raise ConfigurationError(f"resource must be a non-empty str, got {resource!r}")
    return resource


def _check_fenced_args(resource: object, token: object) -> FencingToken:
    _check_resource(resource)
    if not isinstance(token, FencingToken):
        raise ConfigurationError(
            f"token must be a FencingToken (lead.token or FencingToken.parse), got {token!r}"
        )
    if not 0 < token.epoch <= _MAX_EPOCH:
        raise ConfigurationError(f"epoch out of range for a fenced store: {token.epoch}")
    return token


def _stale(resource: str, token: FencingToken, current: int) -> StaleEpochError:
    return StaleEpochError(
        f"stale write to {resource!r} refused: epoch {describe_epoch(token.epoch)} of "
        f"{token.candidate_id!r} is lower than epoch {describe_epoch(current)} already "
        "accepted (a newer leader wrote); stop leader-only work: this process was deposed",
        resource=resource,
        epoch=token.epoch,
        current_epoch=current,
    )


class _FencedTransactions(abc.ABC):
    """The fenced transaction's contract, written once for every store: argument checks,
    metrics, ``write``; each store supplies the transaction in its SQL dialect."""

    _metrics: MetricsRecorder

    @contextlib.contextmanager
    def fenced(self, resource: str, token: FencingToken) -> Iterator[Any]:
        token = _check_fenced_args(resource, token)
        try:
            with self._fence(resource, token) as conn:
                yield conn
        except StaleEpochError:
            self._metrics.fenced_write(token.path, "rejected")
            raise
        self._metrics.fenced_write(token.path, "accepted")

    def write(self, resource: str, token: FencingToken, action: Callable[[Any], T]) -> T:
        if not callable(action):
            raise ConfigurationError(
                f"action must be a callable taking the connection, got {action!r}"
            )
        with self.fenced(resource, token) as conn:
            return action(conn)

    @abc.abstractmethod
    def _fence(self, resource: str, token: FencingToken) -> AbstractContextManager[Any]:
        """A connection in an open transaction that holds ``resource``'s high-water mark
        locked (StaleEpochError, rolled back, if ``token``'s epoch is lower); a clean exit
        commits the writes with the mark at ``token``'s epoch, an exception rolls back."""


class SQLiteFencedStore(_FencedTransactions):
    """A fenced store in a SQLite file (standard library; the embedded default).

    Each fenced transaction opens its own connection and takes SQLite's write lock first
    (``BEGIN IMMEDIATE``), so concurrent writers from threads or processes are
    serialised; the lock covers the whole file, so it holds up every resource until the
    block ends (a waiter gives up after ``busy_timeout``). The block (or ``action``)
    receives the ``sqlite3.Connection``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        table: str = "zkelect_fence",
        busy_timeout: float = 30.0,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        if not isinstance(path, (str, Path)) or not str(path):
            raise ConfigurationError(f"path must be a file name (str or Path), got {path!r}")
        self.path = str(path)
        self.table = _table_name(table)
        self._busy_timeout = check_seconds("busy_timeout", busy_timeout, allow_zero=True)
        self._metrics: MetricsRecorder = metrics or NoopRecorder()
        try:
            conn = self._connect()
        except sqlite3.OperationalError as exc:
            raise ConfigurationError(
                f"cannot open the SQLite store {self.path!r}: {exc} (does its directory exist?)"
            ) from None
        with contextlib.closing(conn), conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "resource TEXT PRIMARY KEY, epoch INTEGER NOT NULL, holder TEXT NOT NULL, "
                "updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so the lock is taken up front.
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)

    @contextlib.contextmanager
    def _fence(self, resource: str, token: FencingToken) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:
            current = self._lock_mark(conn, resource)
            if token.epoch < current:
                raise _stale(resource, token, current)
            yield conn
            self._record_mark(conn, resource, token)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # SQLite's write lock, up front: writers queue here
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def _lock_mark(self, conn: Any, resource: str) -> int:
        # BEGIN IMMEDIATE already holds the write lock for the whole file.
        row = conn.execute(f"SELECT epoch FROM {self.table} WHERE resource = ?", (resource,))
        found = row.fetchone()
        return 0 if found is None else int(found[0])

    def _record_mark(self, conn: Any, resource: str, token: FencingToken) -> None:
        if not conn.in_transaction:
            # Without isolation_level, sqlite3 would commit this upsert on its own while
            # the caller's writes were already committed without the lock.
            raise ConfigurationError(
                f"the fenced transaction on {resource!r} was committed or rolled back inside "
                "its block: leave that to the store, so the epoch check and the write commit "
                "together"
            )
        conn.execute(
            f"INSERT INTO {self.table} (resource, epoch, holder) VALUES (?, ?, ?) "
            "ON CONFLICT(resource) DO UPDATE SET epoch = excluded.epoch, "
            "holder = excluded.holder, updated_at = CURRENT_TIMESTAMP",
            (resource, token.epoch, token.candidate_id),
        )

    def highest_epoch(self, resource: str) -> int | None:
        _check_resource(resource)
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT epoch FROM {self.table} WHERE resource = ?", (resource,)
            ).fetchone()
        return None if row is None else int(row[0])


class PostgresFencedStore(_FencedTransactions):
    """A fenced store in PostgreSQL (psycopg 3: ``pip install 'zkelect[postgres]'``).

    ``connect`` is a conninfo string or a callable returning a psycopg connection (e.g.
    from your pool). The fence is one statement: an upsert of the resource's epoch row that
    updates it only if the stored epoch is not higher, and locks the row either way until
    the transaction ends, so racing writers on that resource are serialised by the database.
    It travels in the same round trip as the transaction's ``BEGIN`` (libpq's pipeline
    mode), prepared once per connection; the current epoch is read only for the error of a
    refused write. On a connection already inside a transaction the fence runs in a
    savepoint of it and commits with it. The block (or ``action``) receives the connection.
    """

    def __init__(
        self,
        connect: str | Callable[[], AbstractContextManager[Any]],
        *,
        table: str = "zkelect_fence",
        metrics: MetricsRecorder | None = None,
    ) -> None:
        try:
            import psycopg

            from zkelect.fencing import _pgpipeline
        except ImportError:
            raise ConfigurationError(
                "PostgresFencedStore needs psycopg 3: pip install 'zkelect[postgres]'"
            ) from None
        if isinstance(connect, str):
            conninfo = connect
            self._connect: Callable[[], AbstractContextManager[Any]] = lambda: psycopg.connect(
                conninfo
            )
        elif callable(connect):
            self._connect = connect
        else:
            raise ConfigurationError(f"connect must be a conninfo str or a callable: {connect!r}")
        self.table = _table_name(table)
        self._metrics: MetricsRecorder = metrics or NoopRecorder()
        # The row lock is taken even when the WHERE refuses the update (ON CONFLICT DO
        # UPDATE locks the conflicting row first), so a refused writer holds it too.
        claim = (
            f"INSERT INTO {self.table} (resource, epoch, holder) VALUES ({{0}}, {{1}}, {{2}}) "
            f"ON CONFLICT (resource) DO UPDATE SET epoch = excluded.epoch, "
            f"holder = excluded.holder, updated_at = now() "
            f"WHERE {self.table}.epoch <= excluded.epoch RETURNING epoch"
        )
        self._claim_sql = claim.format("%s", "%s", "%s")
        # psycopg is optional: the module that needs it is imported here, not at the top.
        self._can_begin = _pgpipeline.can_begin
        self._in_transaction = _pgpipeline.in_transaction
        self._begin_and_claim = _pgpipeline.BeginAndRun(
            claim.format("$1", "$2", "$3"), _PG_CLAIM_TYPES
        )
        with self._connect() as conn, conn.transaction():
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "resource TEXT PRIMARY KEY, epoch BIGINT NOT NULL, holder TEXT NOT NULL, "
                "updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )

    @contextlib.contextmanager
    def _fence(self, resource: str, token: FencingToken) -> Iterator[Any]:
        claim = (resource, token.epoch, token.candidate_id)
        with self._connect() as conn:
            if not self._can_begin(conn):  # in the caller's transaction (or no pipeline mode)
                with conn.transaction():
                    if conn.execute(self._claim_sql, claim).fetchone() is None:
                        raise _stale(resource, token, self._current_epoch(conn, resource))
                    yield conn
                return
            if self._begin_and_claim.begin_and_run(conn, claim) == 0:
                try:
                    current = self._current_epoch(conn, resource)
                finally:
                    self._rollback(conn)
                raise _stale(resource, token, current)
            try:
                yield conn
            except BaseException:
                self._rollback(conn)
                raise
            self._commit(conn, resource)

    def _current_epoch(self, conn: Any, resource: str) -> int:
        # Our transaction holds the row's lock: no writer can change it before we end.
        row = conn.execute(
            f"SELECT epoch FROM {self.table} WHERE resource = %s", (resource,)
        ).fetchone()
        return int(row[0])

    def _commit(self, conn: Any, resource: str) -> None:
        if not self._in_transaction(conn):
            raise ConfigurationError(
                f"the fenced transaction on {resource!r} was committed or rolled back inside "
                "its block: leave that to the store, so the epoch check and the write commit "
                "together"
            )
        conn.commit()

    def _rollback(self, conn: Any) -> None:
        self._begin_and_claim.forget(conn)  # psycopg's rollback may deallocate statements
        if conn.closed:
            return
        try:
            conn.rollback()
        except Exception:  # a broken connection: the exception in flight says more
            if not conn.closed:
                raise

    def highest_epoch(self, resource: str) -> int | None:
        _check_resource(resource)
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT epoch FROM {self.table} WHERE resource = %s", (resource,)
            ).fetchone()
        # 0 is no epoch: accepted epochs start at 1 (the first version's placeholder row).
        return None if row is None or int(row[0]) == 0 else int(row[0])
