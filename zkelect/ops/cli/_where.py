"""Where each session is connected, from the members' ``cons`` answers (``zkelect status``).

A member lists every client connection it serves, with the client's address and the session
on it (zkelect._zookeeper.words.connections). Asked of every member of the connect string,
in parallel threads, each within a short deadline, the answers say for a session: the host
it runs on and the member it is connected to, or that no member serves it (a SIGKILLed or
partitioned candidate keeps its node until its session expires), or that nobody can tell.

What it never does is guess: a session is "not connected" only when every member answered
(or had nothing listening: a member that refuses connections serves no client); a member
that refused ``cons`` or did not answer makes the verdict "unknown", and says why. So does a
connect string that names fewer members than ``/zookeeper/config`` lists (a load balancer in
front of the ensemble answers for one member at a time); with a chroot that node cannot be
read, and the connect string is taken to name every member.
"""

from __future__ import annotations

import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from zkelect._zookeeper.outcomes import NoNode, Retryable
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.words import (
    ClientConnection,
    MemberSilent,
    WordNotAllowed,
    connections,
)
from zkelect.config import format_member, split_connect_string
from zkelect.errors import PermissionDeniedError
from zkelect.ops.doctor.parse import parse_membership

__all__ = [
    "Asking",
    "Located",
    "MemberAnswer",
    "Whereabouts",
    "ask_members",
    "configured_members",
]

#: The most a member gets to answer ``cons`` (less if the command's --timeout is shorter):
#: a healthy member answers in milliseconds, a paused one never.
MEMBER_TIMEOUT = 3.0
_NOT_LISTENING = "connection refused"


@dataclass(frozen=True)
class MemberAnswer:
    """One member's ``cons``: ``status`` "answered", "refused" (not in its 4lw whitelist),
    "down" (nothing listening: it serves no client) or "silent" (no answer: ``detail``)."""

    member: str
    status: str
    detail: str = ""
    connections: tuple[ClientConnection, ...] = ()


@dataclass(frozen=True)
class Located:
    """Where one session is: ``connected`` True (on ``member``, from ``host``), False (no
    member serves it) or None (unknown); ``reason`` says why when it is not True."""

    connected: bool | None
    host: str | None = None
    client: str | None = None
    member: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Whereabouts:
    """Every member's ``cons`` answer (or why there is none)."""

    members: tuple[MemberAnswer, ...]
    #: How many members ``/zookeeper/config`` lists (None: not read).
    configured: int | None = None

    def locate(self, session_id: int) -> Located:
        """Where ``session_id`` is connected, or why that is not known (module docstring)."""
        for answer in self.members:
            for conn in answer.connections:
                if conn.session_id == session_id:
                    return Located(True, conn.host, conn.client, answer.member)
        answered = [a.member for a in self.members if a.status == "answered"]
        unsure = [a for a in self.members if a.status in ("refused", "silent")]
        if self.configured is not None and len(self.members) < self.configured:
            return Located(
                None,
                reason=f"not connected to {', '.join(answered) or 'the members asked'}, but the "
                f"connect string names {len(self.members)} of the {self.configured} members "
                "/zookeeper/config lists; name them all in --hosts",
            )
        if answered and not unsure:
            return Located(False, reason="session not connected to any member")
        if not answered:
            why = "; ".join(f"{a.member} {a.detail}" for a in self.members)
            return Located(None, reason=f"no member answered 'cons': {why}")
        why = "; ".join(f"{a.member} {a.detail}" for a in unsure)
        return Located(None, reason=f"not connected to {', '.join(answered)}; but {why}")


class Asking:
    """``cons`` asked of every member, each in its own thread (see :func:`ask_members`)."""

    def __init__(self, asked: list[Future[MemberAnswer]]) -> None:
        self._asked = asked

    def result(self, configured: int | None = None) -> Whereabouts:
        """Every answer, once all are in (each is bounded by its own deadline);
        ``configured``: how many members the ensemble has (:func:`configured_members`)."""
        return Whereabouts(tuple(future.result() for future in self._asked), configured)


def configured_members(session: Session) -> int | None:
    """How many servers ``/zookeeper/config`` lists (1 for a standalone server, which lists
    none); None when it cannot be read (a chroot, an ACL, ZooKeeper before 3.5)."""
    try:
        data, _stat = session.get("/zookeeper/config")
    except (NoNode, PermissionDeniedError, Retryable):
        return None
    return len(parse_membership(data.decode("utf-8", errors="replace"))) or 1


def ask_members(hosts: str, timeout: float, tls: ssl.SSLContext | None = None) -> Asking:
    """Ask every member of ``hosts`` for ``cons`` now, each in its own thread, each within
    ``min(timeout, MEMBER_TIMEOUT)``, while the caller reads the election."""
    members, _chroot = split_connect_string(hosts)
    limit = min(timeout, MEMBER_TIMEOUT)
    pool = ThreadPoolExecutor(max_workers=len(members), thread_name_prefix="zkelect-cons")
    asked = [pool.submit(_ask, member, limit, tls) for member in members]
    pool.shutdown(wait=False)  # each thread ends by its deadline
    return Asking(asked)


def _ask(address: tuple[str, int], timeout: float, tls: ssl.SSLContext | None) -> MemberAnswer:
    member = format_member(*address)
    try:
        found = connections(address, timeout=timeout, tls=tls)
    except WordNotAllowed:
        return MemberAnswer(member, "refused", "refused 'cons' (not in 4lw.commands.whitelist)")
    except MemberSilent as exc:
        status = "down" if exc.reason == _NOT_LISTENING else "silent"
        return MemberAnswer(member, status, f"did not answer 'cons': {exc.reason}")
    return MemberAnswer(member, "answered", connections=tuple(found))
