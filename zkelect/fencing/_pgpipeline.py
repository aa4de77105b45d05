"""BEGIN and one prepared statement in a single round trip, on a psycopg 3 connection.

psycopg begins a transaction with its own ``BEGIN`` and waits for the answer before it sends
the first statement, so a transaction that starts with a fence pays two round trips before
the caller's first write. With libpq's pipeline mode (libpq >= 14) this module writes
``BEGIN``, the statement and a ``Sync`` in one packet and reads both answers: one round trip.
The statement is prepared once per connection, under a name derived from its text, so the
server does not parse and plan it again on every write (planning an ``INSERT ... ON
CONFLICT`` costs about as much as the round trip saved); the ``Parse`` rides in the same
packet the first time.

Guarantees: ``begin_and_run`` is called on a connection outside a transaction; it begins
one as psycopg would (the connection's isolation level, read-only and deferrable settings);
when it returns, the connection is in the transaction it began, the statement has run in it, and
the caller ends it (``conn.commit()`` / ``conn.rollback()``). When the statement fails, the
transaction is rolled back and psycopg's own exception for the error is raised. A prepared
statement the connection lost (``DEALLOCATE ALL``, ``DISCARD ALL``, psycopg's clean-up after
a rollback) or one it holds unknown to us is noticed from the server's error and the round
trip is retried once, with ``ROLLBACK`` in the same packet. If the wait is interrupted
(Ctrl-C) mid-pipeline, the connection is closed: its state is unknown, and a pool drops a
closed connection. A connection with ``prepare_threshold=None`` (the setting for PgBouncer
in transaction mode before 1.21) gets the unnamed statement, planned on every call.
"""

from __future__ import annotations

import functools
import hashlib
import select
import weakref
from collections.abc import Sequence

import psycopg
from psycopg import errors, pq

__all__ = ["BeginAndRun", "can_begin", "in_transaction"]

_INVALID_NAME = b"26000"  # invalid_sql_statement_name: the named statement is gone
_DUPLICATE_NAME = b"42P05"  # duplicate_prepared_statement: it was there after all


_PIPELINE = psycopg.Pipeline.is_supported()  # libpq >= 14: fixed for the process


def can_begin(conn: psycopg.Connection[object]) -> bool:
    """Whether ``begin_and_run`` applies: libpq has pipeline mode and ``conn`` is outside
    any transaction (inside one, the caller's transaction is nested with a savepoint)."""
    pgconn = conn.pgconn
    return (
        _PIPELINE
        and pgconn.transaction_status == pq.TransactionStatus.IDLE
        and pgconn.pipeline_status == pq.PipelineStatus.OFF
    )


def in_transaction(conn: psycopg.Connection[object]) -> bool:
    """Whether ``conn``'s transaction is still open (not committed or rolled back)."""
    return conn.pgconn.transaction_status != pq.TransactionStatus.IDLE


class BeginAndRun:
    """``BEGIN`` plus one statement (``$1``.. placeholders, text parameters), one round trip."""

    def __init__(self, sql: str, param_types: Sequence[int]) -> None:
        self._sql = sql.encode()
        self._types = list(param_types)
        self._name = b"zkelect_" + hashlib.sha1(self._sql).hexdigest()[:16].encode()
        # Connections known to hold the prepared statement (it lives as long as the session).
        self._prepared: weakref.WeakSet[psycopg.Connection[object]] = weakref.WeakSet()

    def forget(self, conn: psycopg.Connection[object]) -> None:
        """``conn`` may have lost the statement (psycopg deallocates all on a rollback)."""
        self._prepared.discard(conn)

    def begin_and_run(self, conn: psycopg.Connection[object], params: Sequence[object]) -> int:
        """Begin a transaction on ``conn`` and run the statement in it; the rows it returned."""
        encoding = conn.info.encoding
        values: list[bytes | None] = [str(value).encode(encoding) for value in params]
        named = conn.prepare_threshold is not None
        rollback_first = False
        for attempt in (1, 2):
            prepare = named and conn not in self._prepared
            results = self._round_trip(conn, values, named, prepare, rollback_first)
            failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
            if failed is None:
                if prepare:
                    self._prepared.add(conn)
                return results[-1].ntuples
            state = failed.error_field(pq.DiagnosticField.SQLSTATE)
            if attempt == 1 and named and state in (_INVALID_NAME, _DUPLICATE_NAME):
                if state == _INVALID_NAME:
                    self._prepared.discard(conn)
                else:
                    self._prepared.add(conn)
                rollback_first = True  # our BEGIN's transaction is aborted: end it first
                continue
            self._prepared.discard(conn)  # psycopg's rollback may deallocate every statement
            conn.rollback()
            raise errors.error_from_result(failed, encoding=encoding)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _round_trip(
        self,
        conn: psycopg.Connection[object],
        values: list[bytes | None],
        named: bool,
        prepare: bool,
        rollback_first: bool,
    ) -> list[pq.abc.PGresult]:
        pgconn = conn.pgconn
        try:
            with conn.lock:
                pgconn.enter_pipeline_mode()
                if rollback_first:
                    pgconn.send_query_params(b"ROLLBACK", None)
                pgconn.send_query_params(_begin(conn), None)
                if not named:
                    pgconn.send_query_params(self._sql, values, self._types)
                else:
                    if prepare:
                        pgconn.send_prepare(self._name, self._sql, self._types)
                    pgconn.send_query_prepared(self._name, values)
                pgconn.pipeline_sync()
                results = _collect(pgconn)
                pgconn.exit_pipeline_mode()
        except BaseException:
            pgconn.finish()  # interrupted mid-pipeline: close rather than reuse an unknown state
            raise
        return results


def _begin(conn: psycopg.Connection[object]) -> bytes:
    """``BEGIN`` with the connection's transaction settings, as psycopg itself begins."""
    return _begin_statement(conn.isolation_level, conn.read_only, conn.deferrable)


@functools.cache  # at most 4 x 3 x 3 settings
def _begin_statement(
    isolation: psycopg.IsolationLevel | None, read_only: bool | None, deferrable: bool | None
) -> bytes:
    parts = [b"BEGIN"]
    if isolation is not None:
        level = psycopg.IsolationLevel(isolation).name.replace("_", " ")
        parts.append(b"ISOLATION LEVEL " + level.encode())
    if read_only is not None:
        parts.append(b"READ ONLY" if read_only else b"READ WRITE")
    if deferrable is not None:
        parts.append(b"DEFERRABLE" if deferrable else b"NOT DEFERRABLE")
    return b" ".join(parts)


def _collect(pgconn: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """Send what is queued and read every result up to the pipeline's Sync."""
    fd = pgconn.socket
    while pgconn.flush():  # the socket buffer is full: wait, reading meanwhile
        _wait(fd, write=True)
        pgconn.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            _wait(fd, write=False)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the end of one statement's results
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


def _wait(fd: int, *, write: bool) -> None:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | (select.POLLOUT if write else 0))
        poller.poll()
    else:  # Windows
        select.select([fd], [fd] if write else [], [])
