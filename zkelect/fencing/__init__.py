"""Fencing: the token every leader-only write carries, and the places that check it.

Importable without kazoo: a service that only *receives* tokens (over HTTP, or in a
database it writes to) needs ``FencingToken``, ``FencingGuard`` and the stores, and none of
the ZooKeeper client.
"""

from zkelect.fencing.guard import FENCING_HEADER, Admission, FencingGuard, fencing_headers
from zkelect.fencing.leadership import FencedTransaction, Leadership
from zkelect.fencing.stores import FencedStore, PostgresFencedStore, SQLiteFencedStore
from zkelect.fencing.token import FencingToken

__all__ = [
    "FENCING_HEADER",
    "Admission",
    "FencedStore",
    "FencedTransaction",
    "FencingGuard",
    "FencingToken",
    "Leadership",
    "PostgresFencedStore",
    "SQLiteFencedStore",
    "fencing_headers",
]
