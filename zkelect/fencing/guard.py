"""Fencing for services that receive writes over HTTP (or gRPC metadata).

The leader sends its token with every request::

    requests.post(url, data=..., headers=fencing_headers(lead))

and the receiver admits a request only if its epoch is not lower than the highest it
has seen for that resource::

    guard = FencingGuard(PostgresFencedStore(dsn))   # or FencingGuard() for one process
    with guard.admit("orders", request.headers.get(FENCING_HEADER)) as admitted:
        admitted.connection.execute("INSERT ...")    # same transaction as the epoch check

A stale or malformed token raises (StaleEpochError → answer 409; InvalidTokenError →
400). With a FencedStore the block runs inside the store's fenced transaction, which
holds the resource's epoch lock in the database: receivers in any number of processes
sharing that database apply writes in epoch order. Without a store the high-water marks
and the lock live in this process only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zkelect.errors import ConfigurationError, InvalidTokenError, StaleEpochError
from zkelect.fencing.leadership import Leadership
from zkelect.fencing.stores import FencedStore
from zkelect.fencing.token import FencingToken, describe_epoch
from zkelect.metrics import MetricsRecorder, NoopRecorder

__all__ = ["FENCING_HEADER", "Admission", "FencingGuard", "fencing_headers"]

FENCING_HEADER = "Fencing-Token"

# What the guard calls on its store: the fenced transaction and the read of the mark.
_STORE_METHODS = ("fenced", "highest_epoch")


def fencing_headers(lead_or_token: Leadership | FencingToken) -> dict[str, str]:
    """The header a leader sends with each write."""
    token = lead_or_token.token if isinstance(lead_or_token, Leadership) else lead_or_token
    return {FENCING_HEADER: str(token)}


class Admission:
    """What ``FencingGuard.admit`` yields: the admitted ``token`` and, when the guard has
    a store, the ``connection`` of the fenced transaction the block runs in."""

    __slots__ = ("_connection", "token")

    def __init__(self, token: FencingToken, connection: Any) -> None:
        self.token = token
        self._connection = connection

    @property
    def connection(self) -> Any:
        """The store's connection, inside the transaction that checked the epoch."""
        if self._connection is None:
            raise ConfigurationError(
                "this FencingGuard keeps its high-water marks in memory and has no database "
                "transaction: build it with a store, FencingGuard(SQLiteFencedStore(...)) or "
                "FencingGuard(PostgresFencedStore(...)), to write through admitted.connection"
            )
        return self._connection

    def __repr__(self) -> str:
        return f"Admission(token={self.token!r})"


class FencingGuard:
    """Admits requests whose fencing epoch is not lower than any seen for the resource.

    ``FencingGuard(store)`` keeps the high-water marks in a FencedStore and runs each
    admitted block inside ``store.fenced(resource, token)``: the epoch check, the block's
    writes on ``admitted.connection`` and the new mark commit as one database transaction,
    and a receiver in another process waits for it, so several receivers may share the
    database. ``metrics=`` is not used then: the store reports through its own.

    ``FencingGuard()`` keeps the marks in memory and serialises the blocks of one resource
    with a lock of this process: it orders the writes of ONE receiver process only (two
    processes each keep their own marks), and it forgets the marks on restart.
    """

    def __init__(
        self, store: FencedStore | None = None, *, metrics: MetricsRecorder | None = None
    ) -> None:
        if store is not None:
            _check_store(store)
        self._store = store
        self._metrics: MetricsRecorder = metrics or NoopRecorder()
        self._lock = threading.Lock()
        self._highest: dict[str, int] = {}
        self._resource_locks: dict[str, threading.Lock] = {}

    def highest_epoch(self, resource: str) -> int | None:
        if self._store is not None:
            return self._store.highest_epoch(resource)
        with self._lock:
            return self._highest.get(resource)

    def check(self, resource: str, header: str | None) -> FencingToken:
        """Validate and record a token; the caller's write is *not* serialised with it."""
        with self.admit(resource, header) as admitted:
            return admitted.token

    @contextmanager
    def admit(self, resource: str, header: str | None) -> Iterator[Admission]:
        """Admit a request and hold the resource until the block ends, so no request with
        an older epoch is admitted while this one writes; with a store, write through
        ``admitted.connection`` to commit in the same transaction as the check.

        The high-water mark moves to the token's epoch when the block ends cleanly; if it
        raises, nothing is recorded (and with a store, its writes roll back)."""
        token = _parse_header(resource, header)
        if self._store is None:
            with self._admitted_in_memory(resource, token):
                yield Admission(token, None)
        else:
            with self._store.fenced(resource, token) as connection:
                yield Admission(token, connection)

    @contextmanager
    def _admitted_in_memory(self, resource: str, token: FencingToken) -> Iterator[None]:
        with self._lock:
            resource_lock = self._resource_locks.setdefault(resource, threading.Lock())
        with resource_lock:
            current = self.highest_epoch(resource)
            if current is not None and token.epoch < current:
                self._metrics.fenced_write(token.path, "rejected")
                raise StaleEpochError(
                    f"stale request for {resource!r} refused: epoch "
                    f"{describe_epoch(token.epoch)} is lower than epoch "
                    f"{describe_epoch(current)} already seen",
                    resource=resource,
                    epoch=token.epoch,
                    current_epoch=current,
                )
            yield
            with self._lock:
                self._highest[resource] = token.epoch
        self._metrics.fenced_write(token.path, "accepted")


def _check_store(store: object) -> None:
    missing = [name for name in _STORE_METHODS if not callable(getattr(store, name, None))]
    if missing:
        raise ConfigurationError(
            "store must be a FencedStore (SQLiteFencedStore, PostgresFencedStore): "
            f"{store!r} has no {' or '.join(name + '()' for name in missing)}. The guard "
            "runs each admitted block inside store.fenced(resource, token), one database "
            "transaction holding the epoch check and the write, so receivers sharing the "
            "database cannot apply an older epoch after a newer one; implement fenced() "
            "as the FencedStore protocol describes, or use a store zkelect ships"
        )


def _parse_header(resource: object, header: object) -> FencingToken:
    if not isinstance(resource, str) or not resource:
        raise ConfigurationError(f"resource must be a non-empty str, got {resource!r}")
    if header is not None and not isinstance(header, str):
        raise InvalidTokenError(
            f"the {FENCING_HEADER} header must be text, got {type(header).__name__}"
        )
    if not header:
        raise InvalidTokenError(
            f"missing {FENCING_HEADER} header: writes to {resource!r} must carry the "
            "leader's fencing token"
        )
    return FencingToken.parse(header.strip())
