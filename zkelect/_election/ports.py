"""What the candidacy state machine needs from the ZooKeeper boundary, and nothing more.

``Session`` (zkelect/_zookeeper/session.py) satisfies these protocols structurally (the
type checker verifies it where an Election hands its Session to the Candidacy), and the
unit tests drive the state machine with a scripted fake of them (tests/unit/test_candidacy.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from zkelect._lease import LeaseFigures
from zkelect._zookeeper.joins import JoinOutcome
from zkelect._zookeeper.outcomes import ConnectionState, EventWatcher, Listing, NodeStat

__all__ = [
    "Children",
    "JoinsPort",
    "LeasePort",
    "NotifierPort",
    "ObserverPort",
    "PendingPort",
    "SessionPort",
    "SlotsPort",
    "TicketPort",
    "TimersPort",
]

Callback = Callable[[], None]


class PendingPort(Protocol):
    """A request in flight (``Pending``)."""

    def when_done(self, callback: Callback) -> None: ...

    def succeeded(self) -> bool: ...

    def result(self) -> Any: ...


#: The election path's children for the next look: known (a batched create that made the
#: path too), read ahead (in flight), or not yet (read them then).
Children: TypeAlias = "PendingPort | Listing | None"


class TicketPort(Protocol):
    """A batched create in flight (``JoinTicket``)."""

    def when_done(self, callback: Callback) -> None: ...

    def result(self, timeout: float) -> JoinOutcome: ...


class JoinsPort(Protocol):
    """The session's batcher of creates (``JoinBatcher``)."""

    def submit(self, path: str, prefix: str, data: bytes) -> TicketPort: ...

    def join(
        self, path: str, prefix: str, data: bytes
    ) -> tuple[JoinOutcome, PendingPort | None]: ...


class TimersPort(Protocol):
    def call_later(self, delay: float, fn: Callback) -> object: ...


class NotifierPort(Protocol):
    def post(self, fn: Callback) -> None: ...


class SlotsPort(Protocol):
    def release(self) -> None: ...


class LeasePort(Protocol):
    def successor_possible_at(self) -> float | None: ...


class SessionPort(Protocol):
    """The calls a candidacy makes on its session: reads and writes of the election path,
    the lease, and the session's timer, callback thread and create batcher."""

    @property
    def state(self) -> ConnectionState: ...

    @property
    def session_id(self) -> int | None: ...

    @property
    def owned(self) -> bool: ...

    @property
    def timers(self) -> TimersPort | None: ...

    @property
    def notifier(self) -> NotifierPort | None: ...

    @property
    def join_slots(self) -> SlotsPort: ...

    @property
    def joins(self) -> JoinsPort: ...

    @property
    def lease(self) -> LeasePort: ...

    # -- the election path ----------------------------------------------------------------------

    def create_candidate(self, path: str, data: bytes) -> tuple[str, NodeStat]: ...

    def listing(self, path: str) -> Listing: ...

    def send_listing(self, path: str) -> PendingPort: ...

    def children(self, path: str, watch: Callback | None = None) -> list[str]: ...

    def get(self, path: str, watch: Callback | None = None) -> tuple[bytes, NodeStat]: ...

    def send_get(self, path: str, watch: Callback | None = None) -> PendingPort: ...

    def get_many(self, paths: list[str]) -> list[tuple[bytes, NodeStat] | None]: ...

    def exists(self, path: str, watch: Callback | None = None) -> NodeStat | None: ...

    def watching_get(self, path: str, watch: EventWatcher) -> tuple[bytes, NodeStat]: ...

    def send_watching_exists(self, path: str, watch: EventWatcher) -> PendingPort: ...

    def send_exists(self, path: str) -> PendingPort: ...

    def send_create(
        self, path: str, data: bytes = b"", *, ephemeral: bool = False
    ) -> PendingPort: ...

    def send_delete(self, path: str) -> PendingPort: ...

    def forget_watch(self, path: str, *, if_alone: bool = False) -> None: ...

    def delete(self, path: str, version: int = -1) -> None: ...

    def create(self, path: str, data: bytes = b"", *, ephemeral: bool = False) -> str: ...

    def set_data(self, path: str, value: bytes, version: int = -1) -> NodeStat: ...

    def sync(self, path: str = "/") -> None: ...

    def abandon(self, paths: list[str]) -> None: ...

    # -- the lease ------------------------------------------------------------------------------

    def lease_remaining(self) -> float: ...

    def lease_figures(self) -> LeaseFigures: ...

    def watch_lease(self, key: int, on_expiry: Callback) -> None: ...

    def unwatch_lease(self, key: int) -> None: ...

    def when_lease_valid(self, key: int, callback: Callback) -> None: ...


class ObserverPort(Protocol):
    """The leader observer (``LeaderObserver``), driven from the candidacy's actor."""

    @property
    def last(self) -> object: ...

    def invalidate(self) -> None: ...

    def refresh(self) -> None: ...

    def on_fired(self, generation: int) -> None: ...
