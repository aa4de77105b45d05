"""Fencing for services that receive writes over HTTP (or gRPC metadata).

The leader sends its token with every request::

    requests.post(url, data=..., headers=fencing_headers(lead))

and the receiver admits a request only if its epoch is not lower than the highest it
has seen for that resource::

    guard = FencingGuard()
    with guard.admit("orders", request.headers.get(FENCING_HEADER)) as token:
        apply_the_write(...)          # runs while no older leader can be admitted

A stale or malformed token raises (StaleEpochError → answer 409; InvalidTokenError →
400). The high-water marks live in memory by default; pass a FencedStore to keep them in
a database shared by several receivers (then the write itself should go through that
store's ``write`` to be atomic with the check).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ConfigurationError, InvalidTokenError, StaleEpochError
from .fencing import FencingToken, Leadership, describe_epoch
from .metrics import MetricsRecorder, NoopRecorder
from .stores import FencedStore

__all__ = ["FENCING_HEADER", "FencingGuard", "fencing_headers"]

FENCING_HEADER = "Fencing-Token"


def fencing_headers(lead_or_token: Leadership | FencingToken) -> dict[str, str]:
    """The header a leader sends with each write."""
    token = lead_or_token.token if isinstance(lead_or_token, Leadership) else lead_or_token
    return {FENCING_HEADER: str(token)}


class FencingGuard:
    """Admits requests whose fencing epoch is not lower than any seen for the resource."""

    def __init__(
        self, store: FencedStore | None = None, *, metrics: MetricsRecorder | None = None
    ) -> None:
        if store is not None and not (
            callable(getattr(store, "write", None))
            and callable(getattr(store, "highest_epoch", None))
        ):
            raise ConfigurationError(
                "store must be a FencedStore (SQLiteFencedStore, PostgresFencedStore), "
                f"got {store!r}"
            )
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
        with self.admit(resource, header) as token:
            return token

    @contextmanager
    def admit(self, resource: str, header: str | None) -> Iterator[FencingToken]:
        """Admit a request and hold the resource until the block ends, so no request
        with an older epoch can be admitted while this one writes."""
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
        token = FencingToken.parse(header.strip())
        with self._lock:
            resource_lock = self._resource_locks.setdefault(resource, threading.Lock())
        with resource_lock:
            if self._store is not None:
                self._admit_in_store(resource, token)
            else:
                self._admit_in_memory(resource, token)
            yield token

    def _admit_in_memory(self, resource: str, token: FencingToken) -> None:
        with self._lock:
            current = self._highest.get(resource)
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
            self._highest[resource] = token.epoch
        self._metrics.fenced_write(token.path, "accepted")

    def _admit_in_store(self, resource: str, token: FencingToken) -> None:
        assert self._store is not None
        self._store.write(resource, token, lambda connection: None)
