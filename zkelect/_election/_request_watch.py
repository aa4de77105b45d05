"""The one ``exists`` watch on a switchover's request (R14), held by the leader and by its
deputy (the candidate just behind it), and nobody else: a request wakes two candidates,
whatever the election's size. Its fields belong to the candidacy's actor; kazoo's threads
only post ``RequestSeen``."""

from __future__ import annotations

from collections.abc import Callable

from zkelect._election.messages import Message, RequestSeen
from zkelect._election.ports import SessionPort
from zkelect._election.switchover import REQUEST_NODE, SwitchoverRequest
from zkelect._zookeeper.outcomes import NoNode
from zkelect._zookeeper.requests import stat_of

__all__ = ["RequestWatch"]


class RequestWatch:
    """The one ``exists`` watch on the request's path, held while leading or deputy. Its
    fields belong to the candidacy's actor; kazoo's threads only post ``RequestSeen``."""

    def __init__(self, session: SessionPort, path: str) -> None:
        self._session = session
        self.path = f"{path}/{REQUEST_NODE}"
        self.post: Callable[[Message], None] = lambda message: None  # the actor's, at start
        self.held = False
        self.generation = 0

    def hold(self) -> None:
        """Watch the request's path (once): told when it is made, moved or deleted."""
        if self.held:
            return
        self.held = True
        self.generation += 1
        generation, post = self.generation, self.post
        pending = self._session.send_watching_exists(
            self.path, lambda _event: post(RequestSeen(generation))
        )

        def answered() -> None:
            if not pending.succeeded() or stat_of(pending.result()) is not None:
                post(RequestSeen(generation))  # there already (or unknown): read it

        pending.when_done(answered)

    def read(self, generation: int) -> tuple[SwitchoverRequest | None, int] | None:
        """After watch ``generation`` spoke: the request and its version, with the watch left
        again; None if the news is stale. A request that is not ours to read is ``(None,
        version)``: ignored."""
        if generation != self.generation:
            return None
        self.held = False
        self.generation += 1
        generation, post = self.generation, self.post
        try:
            data, stat = self._session.get(self.path, watch=lambda: post(RequestSeen(generation)))
        except NoNode:
            self.hold()
            return None
        self.held = True
        return SwitchoverRequest.decode(data), stat.version

    def drop(self) -> None:
        """Neither leader nor deputy any more: the watch's news is for nobody now, so it is
        removed (R3: a former deputy must not be woken by the next request), unless another
        election or a requester on the same session watches the path too (a removeWatches
        drops every watch of the path on the session): then ours fires once, stale, and is
        ignored without a read."""
        if self.held:
            self.held = False
            self.generation += 1
            self._session.forget_watch(self.path, if_alone=True)

    def lost(self) -> None:
        """The session ended: its watches went with it."""
        self.held = False
        self.generation += 1
