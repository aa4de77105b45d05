"""The candidacy's states and the messages its actor handles.

A candidacy is in one ``Phase`` at a time; ``Lifecycle`` is the public, coarser view of
an Election (built, started, closed). Every event that reaches the candidacy (a call of
the public API, a watch, a timer, a session change) is one of the frozen ``Message``
classes below, posted to its actor and handled in order by ``Candidacy.handle``, whose
``match`` the type checker proves exhaustive (``assert_never``).
"""

from __future__ import annotations

import enum
from concurrent.futures import Future
from dataclasses import dataclass
from typing import NoReturn, Protocol, TypeAlias

from zkelect._election._joining import FirstJoin
from zkelect._election.ports import Children, PendingPort, TicketPort
from zkelect._zookeeper.outcomes import ConnectionState, NodeStat

__all__ = [
    "PRIORITY_CHECK",
    "RECHECK",
    "REJOIN",
    "RETRY",
    "Drained",
    "Inbox",
    "Joined",
    "Lifecycle",
    "MarkerSeen",
    "Message",
    "ObserverFired",
    "OwnNodeAnswered",
    "Phase",
    "PredecessorFired",
    "PredecessorGone",
    "PriorityCheck",
    "Recheck",
    "Rejoin",
    "RequestSeen",
    "Resign",
    "ResignSent",
    "Retry",
    "SessionChanged",
    "Start",
    "Stop",
    "Subscribe",
    "assert_never",
]


class Lifecycle(str, enum.Enum):
    LATENT = "latent"  # built, not started
    STARTED = "started"  # a candidate (leading or not)
    CLOSED = "closed"  # stopped, or failed with a terminal error


class Phase(enum.Enum):
    """Where our candidacy stands (``Candidacy.phase``)."""

    NO_NODE = "no node"  # no candidate node: before the first join, or between two
    CREATING = "creating"  # a create sent, its answer not taken yet (or lost: R1)
    WAITING = "waiting"  # our node exists, behind others: a watch on the predecessor (R3)
    LEADING = "leading"  # our node is first and ours: the watch is on our own node
    STOPPED = "stopped"  # stopping, stopped, or failed: every message but Stop is refused


class Inbox(Protocol):
    """Where an observer of the election gets the leader, then each change (``observe()``:
    a queue; an AsyncElection's: a hand-over to its event loop)."""

    def put(self, item: object) -> None: ...


# -- messages: one class per kind; fields are what the step needs ------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """``start()``: join. ``first`` (if any) is answered after the first attempt.
    ``joined``: the first attempt, made already on the caller's thread. ``batched``: the
    create goes to the session's batcher (``start(wait=False)``, ``AsyncElection.start``),
    holding one of the session's join slots."""

    first: Future[None] | None
    joined: FirstJoin | None = None
    batched: bool = False


@dataclass(frozen=True, slots=True)
class Joined:
    """A batched create was answered; ``children`` are read ahead (or known) for the step."""

    guid: str
    ticket: TicketPort
    children: Children


@dataclass(frozen=True, slots=True)
class PredecessorFired:
    """Watch ``generation`` fired; the children's re-read is already in flight."""

    generation: int
    children: PendingPort


@dataclass(frozen=True, slots=True)
class PredecessorGone:
    """Watch ``generation`` told that our predecessor's node was deleted (nothing read)."""

    generation: int


@dataclass(frozen=True, slots=True)
class MarkerSeen:
    """Our predecessor's leader marker exists, owned by session ``owner``, created in
    transaction ``czxid`` (R13)."""

    generation: int
    owner: int
    czxid: int


@dataclass(frozen=True, slots=True)
class OwnNodeAnswered:
    """The get that set the leader's watch on its own node did not succeed."""

    generation: int
    answer: PendingPort


@dataclass(frozen=True, slots=True)
class Retry:
    """The back-off after a transient error is over: look again."""


@dataclass(frozen=True, slots=True)
class Rejoin:
    """Look again (and join if we have no node): after a resign, or the lease is proven."""


@dataclass(frozen=True, slots=True)
class Recheck:
    """Leadership was revoked from outside the actor: re-check (after a sync) before leading."""


@dataclass(frozen=True, slots=True)
class SessionChanged:
    state: ConnectionState


@dataclass(frozen=True, slots=True)
class Resign:
    done: Future[bool]


@dataclass(frozen=True, slots=True)
class ResignSent:
    """Resign's second half: our node's delete was sent (``answer``); settle ``done``."""

    node: str
    stat: NodeStat
    answer: PendingPort
    done: Future[bool]


@dataclass(frozen=True, slots=True)
class Stop:
    done: Future[None]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """An ``observe()`` began: send it the last leader seen, and start observing."""

    inbox: Inbox


@dataclass(frozen=True, slots=True)
class ObserverFired:
    """The leader observer's watch ``generation`` fired (or its retry came due)."""

    generation: int


@dataclass(frozen=True, slots=True)
class RequestSeen:
    """The switchover request's watch ``generation`` fired, or found the request there."""

    generation: int


@dataclass(frozen=True, slots=True)
class Drained:
    """The leader's drain for switchover ``request_id`` is over: the callback returned, or
    (``timed_out``) its deadline passed."""

    request_id: str
    timed_out: bool


@dataclass(frozen=True, slots=True)
class PriorityCheck:
    """Time to see whether to ask for leadership by priority (and to tidy our request)."""


Message: TypeAlias = (
    Start
    | Joined
    | PredecessorFired
    | PredecessorGone
    | MarkerSeen
    | OwnNodeAnswered
    | Retry
    | Rejoin
    | Recheck
    | SessionChanged
    | Resign
    | ResignSent
    | Stop
    | Subscribe
    | ObserverFired
    | RequestSeen
    | Drained
    | PriorityCheck
)

# The messages without fields are posted as these instances: nothing to allocate.
RETRY = Retry()
REJOIN = Rejoin()
RECHECK = Recheck()
PRIORITY_CHECK = PriorityCheck()


def assert_never(value: NoReturn) -> NoReturn:
    """The type checker proves this unreachable: a ``match`` that forgets a case fails it."""
    raise AssertionError(f"unhandled message: {value!r}")
