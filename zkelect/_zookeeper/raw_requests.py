"""Requests kazoo does not offer, sent on its connection as objects of our own.

* **a multi-op of creates that says its zxid** (:func:`create_multi`, :func:`call_raw`):
  kazoo's own multi answers paths only, so batched joins send a request of their own;
* **removeWatches** (ZooKeeper 3.5+): a candidate that moves on from a leader marker that
  never appeared drops its watch on it (:func:`forget_data_watch`), in kazoo's record too,
  so that no watch on a never-created path outlives its use.

Like hooks.py, this reaches into kazoo's private parts (``_call``, ``_data_watchers``,
``_session_id``, ``last_zxid``); pyproject.toml pins kazoo to the versions read.
"""

from __future__ import annotations

from typing import Any, cast

from kazoo.exceptions import EXCEPTIONS
from kazoo.protocol.paths import _prefix_root
from kazoo.protocol.serialization import (
    Create,
    Create2,
    MultiHeader,
    int_struct,
    read_string,
    write_string,
)
from kazoo.protocol.serialization import Transaction as KazooMulti
from kazoo.security import OPEN_ACL_UNSAFE

__all__ = ["call_raw", "create_multi", "data_watchers", "forget_data_watch"]

# -- a multi-op of creates that says its zxid (batched joins) --------------------------------

_PERSISTENT, _EPHEMERAL_SEQUENTIAL = 0, 3  # ZooKeeper's create flags


def create_multi(client: Any, creates: list[tuple[str, bytes, bool]]) -> _CreateMulti:
    """One multi-op of ``creates`` (``(path, data, candidate)``; a candidate is
    EPHEMERAL_SEQUENTIAL), with the client's chroot and default ACL; send it with
    :func:`call_raw`."""
    chroot = client.chroot
    acl = client.default_acl or OPEN_ACL_UNSAFE
    return _CreateMulti(
        [
            Create(_prefix_root(chroot, path, trailing=candidate), data, acl, flags)
            for path, data, candidate in creates
            for flags in (_EPHEMERAL_SEQUENTIAL if candidate else _PERSISTENT,)
        ],
        client,
    )


def call_raw(client: Any, request: Any) -> Any:
    """Send a request object of our own on ``client``'s connection; its async result."""
    answer = client.handler.async_result()
    client._call(request, answer)
    return answer


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


class _RemoveWatches:
    """ZooKeeper's removeWatches request (opcode 18) for the data watches of one path."""

    type = 18
    _DATA = 2  # WatcherType.Data

    def __init__(self, client: Any, path: str) -> None:
        self.client = client
        self.path = path

    def serialize(self) -> bytearray:
        # On kazoo's connection thread, as it sends: the only thread that changes kazoo's
        # record of watches (it pops a path when its watch fires, and clears them all when
        # the session ends), so dropping ours here races none of that.
        self.client._data_watchers.pop(self.path, None)
        request = bytearray(write_string(self.path))
        request.extend(int_struct.pack(self._DATA))
        return request

    @classmethod
    def deserialize(cls, data: bytes, offset: int) -> None:
        return None  # the answer has no body


def data_watchers(client: Any, path: str) -> int:
    """How many callbacks kazoo keeps for this client's data watch on ``path`` (several
    users of one session may watch one path: the server holds one watch for them all)."""
    return len(client._data_watchers.get(_prefix_root(client.chroot, path), ()))


def forget_data_watch(client: Any, path: str) -> Any:
    """Drop this client's data watches on ``path``: from kazoo's record (``_data_watchers``,
    which would otherwise keep the callback for ever) and on the server; the request's
    async result.

    The server answers NoWatcher if the watch fired meanwhile: harmless, as is a failure
    (the session's end drops the watch anyway)."""
    return call_raw(client, _RemoveWatches(client, _prefix_root(client.chroot, path)))
