"""What zkelect needs from inside kazoo's connection thread, and the one place it reaches in.

kazoo keeps a few facts to itself that an election needs to be safe and live, and does one
thing that zkelect's own heartbeat would otherwise defeat:

* **the negotiated session timeout** lives in a local variable of the connection loop; the
  lease must follow it, not the requested one (a server that shortens the session must not
  be able to stretch the lease);
* **when a connection was asked for**: a successful (re)connect proves the ZooKeeper leader
  touched the session after that moment (a new session is created by the leader; a known
  one is revalidated with it), which is what the lease counts from after a reconnect;
* **when anything was last heard** on the connection: kazoo detects a silent connection only
  through its own ping, which it sends only after ``read_timeout / 2`` without sending
  anything. zkelect's lease heartbeat sends a ``sync`` more often than that, so kazoo never
  pings and never notices a member that went silent (frozen by a GC pause or a VM stall, a
  black-holed link): the client would sit on the dead socket until TCP gives up, ~15 min,
  while its session expires. :class:`ConnectionTap` gives the session the time of the last
  packet read, so it can apply kazoo's own rule (nothing heard for ``read_timeout`` = 2/3 of
  the session timeout: the connection is dead) and :meth:`ConnectionTap.drop_silent` the
  connection, after which kazoo tries the *other* members first, on the same session;
* **the servers' shortest session** (``minSessionTimeout``, 2 ticks by default), which
  bounds how late a follower reports a touch to the leader (half a tick): asked of the
  member with a ConnectRequest of our own for a 1 ms session
  (:meth:`ConnectionTap.probe_min_session`), so that a client connected before zkelect saw
  it proves its lease in half a tick, not a quarter of the session timeout (zkelect/_lease.py);
* kazoo's threading handler builds and closes an epoll object for every wait of its
  connection thread; :func:`_plain_select` does the same wait in one ``select()``;
* **every connection attempt's outcome**, which kazoo swallows and retries: connect.py
  turns a TLS or SASL failure into a verdict (:func:`watch_connect_attempts`);
* the requested session timeout and the SASL options, which kazoo keeps private.

Requests kazoo does not offer (a multi-op of creates that says its zxid, removeWatches) are
in raw_requests.py. Every private name of kazoo's connection that zkelect uses is listed in
:data:`_PRIVATE_NAMES` and checked when a client is first hooked
(:class:`KazooIncompatibleError` names the missing one), and pyproject.toml pins kazoo to
the versions these hooks were read against (2.9-2.11).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import Any, cast

import kazoo
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.handlers.utils import selector_select
from kazoo.protocol.serialization import (
    Connect,
)

from zkelect._zookeeper.probe import probe_min_session
from zkelect.clock import Clock
from zkelect.errors import ZkElectError

__all__ = [
    "TESTED_KAZOO",
    "ConnectionTap",
    "KazooIncompatibleError",
    "requested_timeout",
    "sasl_options",
    "watch_connect_attempts",
]

log = logging.getLogger("zkelect")

#: The kazoo releases whose connection loop these hooks were read against.
TESTED_KAZOO = ((2, 9), (2, 11))
#: kazoo's private methods of ``client._connection`` that zkelect wraps.
_PRIVATE_NAMES = ("_connect", "_invoke", "_read_socket", "_expand_client_hosts")
_ATTRIBUTE = "_zkelect_tap"
# minSessionTimeout per ensemble (its members' sorted host:port), probed once per process.
_probed: dict[tuple[tuple[str, int], ...], float | None] = {}
_probe_lock = threading.Lock()


class KazooIncompatibleError(ZkElectError):
    """This kazoo lacks a private method zkelect's connection hooks need."""


def _kazoo_version() -> tuple[int, int]:
    text = str(getattr(getattr(kazoo, "version", None), "__version__", "0.0"))
    parts = [*text.split("."), "0", "0"][:2]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return (0, 0)


_warned_version = False


def _check_kazoo(connection: Any, names: tuple[str, ...] = _PRIVATE_NAMES) -> None:
    """The version guard: raise if ``connection`` lacks one of ``names``; warn (once) if this
    kazoo is outside the tested range."""
    global _warned_version
    missing = [name for name in names if not callable(getattr(connection, name, None))]
    if missing:
        raise KazooIncompatibleError(
            f"this kazoo ({'.'.join(map(str, _kazoo_version()))}) has no "
            f"ConnectionHandler.{missing[0]}, which zkelect's failure detection needs: install "
            f"a kazoo between {TESTED_KAZOO[0][0]}.{TESTED_KAZOO[0][1]} and "
            f"{TESTED_KAZOO[1][0]}.{TESTED_KAZOO[1][1]}"
        )
    version = _kazoo_version()
    if not TESTED_KAZOO[0] <= version <= TESTED_KAZOO[1] and not _warned_version:
        _warned_version = True
        log.warning(
            "zkelect: kazoo %d.%d is outside the tested range %d.%d-%d.%d; its connection "
            "hooks may not fit this version",
            *version,
            *TESTED_KAZOO[0],
            *TESTED_KAZOO[1],
        )


class ConnectionTap:
    """zkelect's view into one KazooClient's connection thread (see the module docstring).

    One per client, shared by every Session built on it (:meth:`of`). Times are read from
    ``clock`` (the lease's clock). Written by kazoo's connection thread, read anywhere:
    single attribute stores, so readers see either the old or the new value.
    """

    def __init__(self, client: Any, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        connection = client._connection
        _check_kazoo(connection)
        #: The session timeout the servers granted on the latest connect (seconds).
        self.negotiated_timeout: float | None = None
        #: When the latest ConnectRequest was sent, and the connection's serial number
        #: (incremented on every attempt, so answers can be matched to their connection).
        self.connect_sent_at: float | None = None
        self.generation = 0
        #: When a packet was last read from the server (or the connection was made).
        self.last_heard = clock()
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._peer: tuple[str, int] | None = None
        self._avoid: tuple[str, int] | None = None
        # Why the current connection ended, noted on kazoo's thread before it reports the
        # loss (SUSPENDED): what the session's connection_lost line says.
        self._drop_reason: str | None = None
        self._wrap(connection)
        _use_plain_select(client)

    @classmethod
    def of(cls, client: Any, clock: Clock) -> ConnectionTap:
        """The tap of ``client``, installed on first use (hooks are installed once)."""
        tap = getattr(client, _ATTRIBUTE, None)
        if isinstance(tap, ConnectionTap):
            return tap
        tap = cls(client, clock)
        setattr(client, _ATTRIBUTE, tap)
        return tap

    # -- what the session reads and does -------------------------------------------------

    def heard(self) -> None:
        """Something arrived (or a connection was just made): the link is alive now."""
        self.last_heard = self._clock()

    def connected(self) -> None:
        """Called on kazoo's thread when the connection reaches CONNECTED: note its socket."""
        self.heard()
        sock, peer = self._current()
        with self._lock:
            self._socket, self._peer = sock, peer
            self._drop_reason = None

    @property
    def member(self) -> str | None:
        """The member (``host:port``) of the connection made last, for log lines; it stays
        after that connection is lost, so the loss can name it."""
        peer = self._peer
        return None if peer is None else f"{peer[0]}:{peer[1]}"

    def take_drop_reason(self) -> str:
        """Why the last connection was lost (once): ``silent_member`` (dropped by
        :meth:`drop_silent`, R12), ``closed_by_member`` (end of file), ``socket_error: ...``;
        ``connection_dropped`` when kazoo gave up on it without an error we saw (its own
        ping went unanswered)."""
        with self._lock:
            reason, self._drop_reason = self._drop_reason, None
        return reason or "connection_dropped"

    def _note_drop(self, error: BaseException) -> None:
        with self._lock:
            if self._drop_reason is not None:
                return  # the first cause wins: drop_silent's shutdown also reads EOF
            if isinstance(error, OSError):
                self._drop_reason = f"socket_error: {error.strerror or error}"
            elif "broken" in str(error):  # kazoo's ConnectionDropped on end of file
                self._drop_reason = "closed_by_member"
            else:
                self._drop_reason = f"{type(error).__name__}: {error}"

    def current_peer(self) -> tuple[str, int] | None:
        """The (address, port) the client's connection reaches now, if it has one."""
        return self._current()[1]

    def _current(self) -> tuple[socket.socket | None, tuple[str, int] | None]:
        # kazoo keeps its socket in ``_connection._socket`` (no public accessor).
        sock = getattr(self._client._connection, "_socket", None)
        if not isinstance(sock, socket.socket):
            return None, None
        try:
            address = sock.getpeername()
        except OSError:
            return None, None
        return sock, (str(address[0]), int(address[1]))

    def drop_silent(self) -> tuple[str, int] | None:
        """Close the current connection because its member went silent, and have kazoo try
        the other members first; the member dropped (None if there was no connection).

        Shuts the socket down at the OS level (not ``close``): kazoo's connection thread
        wakes, reads end-of-file and reconnects on the same session, as after any dropped
        connection. The socket object is the one recorded at connect time, so a connection
        kazoo has replaced meanwhile is never touched (a closed socket raises, and is left).
        """
        with self._lock:
            sock, peer = self._socket, self._peer
            self._socket = None
            if sock is None:
                return None
            self._avoid = peer
            self._drop_reason = "silent_member"
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # also under TLS: the raw socket
        except OSError:
            return None  # already closed: kazoo is reconnecting anyway
        return peer

    def probe_min_session(self, timeout: float) -> float | None:
        """The shortest session the member we are connected to grants (seconds), or None.

        A connection of its own (probe.py); nothing of the client's own is touched. Asked
        once per process and ensemble (the members of one ensemble share their
        configuration): a process with a hundred clients opens one probe session, not a
        hundred.
        """
        peer = self._peer
        if peer is None:
            return None
        ensemble = tuple(sorted((str(host), int(port)) for host, port in self._client.hosts))
        with _probe_lock:
            if ensemble not in _probed:
                _probed[ensemble] = probe_min_session(self._client, peer, timeout)
            return _probed[ensemble]

    # -- the hooks ------------------------------------------------------------------------

    def _wrap(self, connection: Any) -> None:
        original_connect = connection._connect
        original_invoke = connection._invoke
        original_read = connection._read_socket
        original_hosts = connection._expand_client_hosts
        tap = self

        def connect(host: str, hostip: str, port: int) -> Any:
            tap.generation += 1
            tap.connect_sent_at = tap._clock()
            return original_connect(host, hostip, port)

        def invoke(timeout: float, request: Any, xid: Any = None) -> Any:
            result = original_invoke(timeout, request, xid)
            if isinstance(request, Connect) and isinstance(result, tuple) and result:
                # Before kazoo announces CONNECTED: the lease sees the new timeout at once.
                granted = getattr(result[0], "time_out", 0)
                if granted > 0:
                    tap.negotiated_timeout = float(granted) / 1000.0
            return result

        def read_socket(read_timeout: float) -> Any:
            tap.last_heard = tap._clock()
            try:
                return original_read(read_timeout)
            except Exception as exc:  # the connection ends: kazoo reports it next
                tap._note_drop(exc)
                raise

        def expand_client_hosts() -> list[tuple[str, str, int]]:
            hosts = cast(list[tuple[str, str, int]], original_hosts())
            with tap._lock:
                avoid, tap._avoid = tap._avoid, None
            if avoid is None or len(hosts) < 2:
                return hosts
            # The silent member last, once: if every other member fails too, it is tried.
            return sorted(hosts, key=lambda entry: (entry[1], entry[2]) == avoid)

        connection._connect = connect
        connection._invoke = invoke
        connection._read_socket = read_socket
        connection._expand_client_hosts = expand_client_hosts


def _plain_select(
    rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    try:
        return select.select(rlist, wlist, xlist, timeout)
    except ValueError:  # a descriptor above FD_SETSIZE (or closed): kazoo's own way
        return cast(
            tuple[list[Any], list[Any], list[Any]],
            selector_select(rlist, wlist, xlist, timeout),
        )


def _use_plain_select(client: Any) -> None:
    """Let kazoo's connection thread wait with one ``select()`` call.

    kazoo's threading handler builds, fills and closes a new epoll object for every wait,
    and its connection thread waits before each request it writes and each answer it
    reads: with thousands of elections on one session that thread is the bottleneck
    (measured: ~40% of its time). select() on its two sockets does the same in one system
    call; descriptors above FD_SETSIZE fall back to kazoo's way. Only kazoo's default
    handler is touched (gevent or eventlet handlers have their own select).
    """
    handler: Any = getattr(client, "handler", None)
    if type(handler) is SequentialThreadingHandler and "select" not in vars(handler):
        handler.select = _plain_select


# -- connection attempts (connect.py's verdicts) ---------------------------------------------


def watch_connect_attempts(
    client: Any,
    failed: Callable[[Exception, str, str, int], Exception | None],
    succeeded: Callable[[], None],
    round_started: Callable[[list[tuple[str, str, int]], list[tuple[str, int]]], None]
    | None = None,
) -> None:
    """Tell ``failed(exc, host, hostip, port)`` / ``succeeded()`` of each connection attempt
    of ``client`` (on kazoo's connection thread). ``failed`` may return an exception for
    kazoo to raise instead (kazoo stops retrying on some); install once per client.
    ``round_started(addresses, unresolved)``: before each round of attempts, the
    ``(host, hostip, port)`` kazoo will try and the members ``(host, port)`` whose name it
    could not resolve (it skips them, with only a log line to say so)."""
    connection = client._connection
    _check_kazoo(connection, ("_connect", "_expand_client_hosts"))
    original = connection._connect
    original_hosts = connection._expand_client_hosts

    def expand_client_hosts() -> list[tuple[str, str, int]]:
        expanded = cast(list[tuple[str, str, int]], original_hosts())
        if round_started is not None:
            resolved = {(host, port) for host, _, port in expanded}
            members = [(str(h).strip(), int(p)) for h, p in client.hosts]
            with contextlib.suppress(Exception):  # a diagnosis never breaks kazoo's loop
                round_started(list(expanded), [m for m in members if m not in resolved])
        return expanded

    def connect(host: str, hostip: str, port: int) -> Any:
        try:
            result = original(host, hostip, port)
        except Exception as exc:
            try:
                replacement = failed(exc, host, hostip, port)
            except Exception:  # a diagnosis must never break kazoo's connection loop
                replacement = None
            if replacement is not None and replacement is not exc:
                raise replacement from exc
            raise
        succeeded()
        return result

    connection._connect = connect
    connection._expand_client_hosts = expand_client_hosts


def sasl_options(client: Any) -> Any:
    """The SASL options ``client`` was built with, or None (kazoo keeps them private)."""
    return getattr(client._connection, "sasl_options", None)


def requested_timeout(client: Any) -> float:
    """The session timeout ``client`` asks for, in seconds (kazoo keeps it in ms, private)."""
    return float(client._session_timeout) / 1000.0
