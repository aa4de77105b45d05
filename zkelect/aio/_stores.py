"""The fenced stores (fencing/stores.py), awaitable: each fenced transaction runs whole in a
worker thread, so a database round trip never blocks the loop.

There is no ``fenced()`` block here: a database connection is used on the thread that opened
it, so the transaction's work goes in ``action``, which runs in that thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from zkelect.errors import ConfigurationError
from zkelect.fencing.stores import FencedStore
from zkelect.fencing.token import FencingToken

__all__ = ["AsyncFencedStore"]

T = TypeVar("T")


class AsyncFencedStore:
    """``await store.write(resource, lead.token, action)`` for any FencedStore."""

    def __init__(self, store: FencedStore) -> None:
        if not callable(getattr(store, "write", None)):
            raise ConfigurationError(
                f"store must be a fenced store (SQLiteFencedStore, PostgresFencedStore), "
                f"got {store!r}"
            )
        self.store = store

    async def write(self, resource: str, token: FencingToken, action: Callable[[Any], T]) -> T:
        """``store.write`` in a worker thread: ``action(connection)`` inside the fenced
        transaction; StaleEpochError (nothing written) if a newer epoch already wrote."""
        return await asyncio.to_thread(self.store.write, resource, token, action)

    async def highest_epoch(self, resource: str) -> int | None:
        """The highest epoch accepted for ``resource`` (None if none yet)."""
        return await asyncio.to_thread(self.store.highest_epoch, resource)

    def __repr__(self) -> str:
        return f"<AsyncFencedStore {self.store!r}>"
