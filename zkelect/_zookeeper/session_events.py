"""The session's lifecycle events, as log records (zkelect/_logs.py).

One record per transition of a session's connection, logged on kazoo's connection thread
as the transition is reported, with the member it concerns and, for a lost connection, why
(hooks.py notes the cause on the same thread just before). Nothing here changes state:
``Session`` calls :func:`log_transition` and carries on.
"""

from __future__ import annotations

from typing import Any

from zkelect._logs import emit
from zkelect._zookeeper.hooks import ConnectionTap
from zkelect._zookeeper.outcomes import ConnectionState

__all__ = ["log_transition"]


def _hex(session_id: int | None) -> str:
    return "none" if session_id is None else f"{session_id:#x}"


def log_transition(
    client: Any,
    tap: ConnectionTap,
    state: ConnectionState,
    before: ConnectionState,
    session_id: int | None,
    timeout: float,
) -> None:
    """Log ``before`` -> ``state`` of ``session_id`` (the old id for a lost session):
    connected / reconnected (same session after a suspension), connection_lost and
    suspended, session_expired or session_closed."""
    session = _hex(session_id)
    if state is ConnectionState.CONNECTED:
        event = "reconnected" if before is ConnectionState.SUSPENDED else "connected"
        emit(
            event,
            "%s to ZooKeeper member %s (session %s, timeout %gs)",
            event,
            tap.member,
            session,
            timeout,
            member=tap.member,
            session=session_id,
        )
    elif state is ConnectionState.SUSPENDED:
        reason = tap.take_drop_reason()  # taken even unlogged: it belongs to this loss only
        emit(
            "connection_lost",
            "connection to ZooKeeper member %s lost (%s)",
            tap.member,
            reason,
            member=tap.member,
            reason=reason,
            session=session_id,
        )
        emit(
            "suspended",
            "session %s suspended: reconnecting; it lives on the servers until they expire it",
            session,
            session=session_id,
        )
    elif state is ConnectionState.LOST:
        # kazoo's KeeperState says which end: EXPIRED_SESSION, CLOSED, AUTH_FAILED.
        why = str(getattr(client, "client_state", "")).lower()
        if why == "expired_session":
            emit(
                "session_expired",
                "session %s expired (its ephemeral nodes are gone)",
                session,
                session=session_id,
                reason="expired",
            )
        else:
            emit("session_closed", "session %s ended (%s)", session, why, reason=why)
