"""Sessions for the operator tools, which read elections and never take part in one.

``zkelect status``, ``watch``, ``resign`` and the exporter read election paths through a
``Session`` (and zkelect/_election/reader.py) that is never acquired: no heartbeat, no
threads of its own. What they would otherwise take from kazoo is here:

* ``connected_session``: a client for a connect string, started and authenticated (its
  connect failures already typed by connect.py), wrapped in such a session, and stopped
  and closed on exit;
* ``read_only_session``: such a session over a caller's own KazooClient (the exporter's
  documented argument), or ConfigurationError for anything else;
* ``client_state`` and ``listen_to_states``: the client's connection state as
  ``ConnectionState``, which ``Session.state`` follows only while the session is acquired;
* ``sasl_was_required`` and ``credentials_were_refused``: which refusal a
  PermissionDeniedError stands for, so that a tool can say what to do about it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, SessionClosedRequireSaslError

from zkelect._zookeeper.connect import start_client
from zkelect._zookeeper.outcomes import ConnectionState
from zkelect._zookeeper.requests import connection_state
from zkelect._zookeeper.session import Session
from zkelect.config import ElectionConfig
from zkelect.errors import ChrootMissingError, ConfigurationError

__all__ = [
    "KazooClient",
    "StateListener",
    "check_client",
    "client_state",
    "connected_session",
    "credentials_were_refused",
    "listen_to_states",
    "read_only_session",
    "sasl_was_required",
]

#: Called on kazoo's connection thread with each state the client enters: quick, no I/O.
StateListener = Callable[[ConnectionState], None]


@contextmanager
def connected_session(
    hosts: str,
    *,
    connect_timeout: float,
    session_timeout: float,
    request_timeout: float = 10.0,
    client_options: Mapping[str, Any] | None = None,
    check_chroot: bool = False,
) -> Iterator[Session]:
    """A session (never acquired) over a new client of ``hosts``, connected and
    authenticated within ``connect_timeout``; the client is stopped and closed on exit.

    Raises what ``start_client`` raises when it cannot connect (TLSError,
    PermissionDeniedError, ConnectionFailedError), and with ``check_chroot``
    ChrootMissingError when the connect string's chroot does not exist.
    """
    client = KazooClient(hosts=hosts, timeout=session_timeout, **dict(client_options or {}))
    start_client(client, connect_timeout, hosts)  # stops and closes the client on failure
    try:
        session = read_only_session(client, request_timeout)
        if check_chroot and client.chroot and session.exists("/") is None:
            raise ChrootMissingError(f"the chroot {client.chroot} does not exist on {hosts}")
        yield session
    finally:
        client.stop()
        client.close()


def check_client(client: object) -> None:
    """ConfigurationError unless ``client`` is a KazooClient."""
    if not isinstance(client, KazooClient):
        raise ConfigurationError(
            f"client must be a kazoo.client.KazooClient, got {type(client).__name__}"
        )


def read_only_session(client: object, request_timeout: float) -> Session:
    """A session over the caller's ``client`` for reading, never acquired: no heartbeat or
    threads, and not the shared one of ``Session.for_client``, whose config belongs to the
    elections on that client. ConfigurationError unless ``client`` is a KazooClient."""
    check_client(client)
    return Session(client, ElectionConfig(request_timeout=request_timeout), owned=False)


def client_state(session: Session) -> ConnectionState:
    """The state of the session's client now, acquired or not."""
    return connection_state(session.client.state)


def listen_to_states(session: Session, listener: StateListener) -> Callable[[], None]:
    """Call ``listener`` with each state the session's client enters, acquired or not;
    returns the function that stops it."""

    def on_kazoo_state(kazoo_state: str) -> None:
        listener(connection_state(kazoo_state))

    session.client.add_listener(on_kazoo_state)
    return lambda: session.client.remove_listener(on_kazoo_state)


def sasl_was_required(exc: BaseException) -> bool:
    """Whether ``exc`` (a PermissionDeniedError) says the servers require SASL
    authentication (enforce.auth) and closed this session for having none."""
    return isinstance(exc.__cause__, SessionClosedRequireSaslError)


def credentials_were_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (a PermissionDeniedError) says the servers refused the session's
    credentials, rather than that the credentials lack a permission."""
    return isinstance(exc.__cause__, AuthFailedError)
