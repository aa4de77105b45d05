"""A small fault-injecting TCP proxy for ZooKeeper client connections.

Why it exists: the faults that break leader elections happen on the wire, between one client
and one server, and none of the usual tools work on these machines (no ``tc netem``, no
iptables). :class:`FaultProxy` sits between a kazoo client and one ZooKeeper server on loopback
and can

* lose the reply to a request the server *did* apply (:meth:`FaultProxy.drop_reply_once`): the
  classic "create succeeded but the client got ConnectionLoss" case that protected creates
  (rule R1) exist for;
* go silent in both directions without resetting anything (:meth:`FaultProxy.blackhole`): a
  partition or half-open link, where the client only learns of trouble from its own timers;
* close every connection at once (:meth:`FaultProxy.drop_connections`): a connection flap;
* delay every packet a little (:meth:`FaultProxy.set_delay`).

It understands ZooKeeper framing just enough for that: every packet is a 4-byte big-endian
length followed by the body. The first client->server packet of a connection is the
ConnectRequest (no request header) and the first server->client packet the ConnectResponse;
after that every request starts with ``xid:int32, type:int32`` and every reply with
``xid:int32, zxid:int64, err:int32`` (watch notifications carry xid -1, pings xid -2).

Design: one accept thread plus two threads per proxied connection (one per direction), all
daemon threads, all joined by :meth:`FaultProxy.stop`. Bodies are streamed in chunks, so packet
size is not limited by the proxy. Only loopback addresses are meant to be used.

Example::

    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        client = KazooClient(hosts=proxy.address)
        client.start()
        fired = proxy.drop_reply_once()
        with pytest.raises(ConnectionLoss):
            client.create("/x")
        assert fired.is_set()
"""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Collection
from types import TracebackType

from zkelect.config import check_seconds, format_member, split_connect_string
from zkelect.errors import ConfigurationError

__all__ = [
    "OP_CLOSE_SESSION",
    "OP_CREATE",
    "OP_CREATE2",
    "OP_DELETE",
    "OP_EXISTS",
    "OP_GET_CHILDREN",
    "OP_GET_CHILDREN2",
    "OP_GET_DATA",
    "OP_MULTI",
    "OP_SET_DATA",
    "OP_SYNC",
    "DropReplyFault",
    "FaultProxy",
]

# ZooKeeper opcodes (org.apache.zookeeper.ZooDefs.OpCode) that tests care about.
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_CHILDREN = 8
OP_SYNC = 9
OP_GET_CHILDREN2 = 12
OP_MULTI = 14
OP_CREATE2 = 15
OP_CLOSE_SESSION = -11

_LENGTH = struct.Struct(">i")
_REQUEST_HEADER = struct.Struct(">ii")  # xid, type
_REPLY_HEADER = struct.Struct(">iqi")  # xid, zxid, err
_CHUNK = 64 * 1024
_ACCEPT_POLL_SECONDS = 0.05
_JOIN_SECONDS = 5.0


class DropReplyFault(threading.Event):
    """A one-shot "lose the reply" fault; the event is set once the reply was swallowed.

    After it fired, :attr:`xid`, :attr:`opcode`, :attr:`zxid` and :attr:`err` describe the
    request whose reply the client never saw (``err == 0`` means the server applied it).
    """

    def __init__(self, opcodes: Collection[int]) -> None:
        super().__init__()
        self.opcodes: frozenset[int] = frozenset(opcodes)
        self.xid: int | None = None
        self.opcode: int | None = None
        self.zxid: int | None = None
        self.err: int | None = None


class _Connection:
    """One proxied client connection: the client socket, the upstream socket, their threads."""

    def __init__(self, number: int, client: socket.socket) -> None:
        self.number = number
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = False
        # xid -> (opcode, fault) for requests whose reply must be swallowed.
        self.drop_xids: dict[int, tuple[int, DropReplyFault]] = {}
        self.threads: list[threading.Thread] = []

    def shutdown(self) -> None:
        """Wake both pump threads; the sockets are closed by the connection's own thread.

        ``shutdown`` (not ``close``) so that a thread blocked in ``recv`` returns at once and
        no file descriptor is closed under a thread that is still using it.
        """
        self.closed = True
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _parse_host_port(value: str) -> tuple[str, int]:
    """One member, ``host:port`` (or ``[v6]:port``), checked before any socket is opened:
    the connect-string parser's answer, when it names exactly one server and its port."""
    wrong = ConfigurationError(
        f"FaultProxy upstream must look like 'host:port', got {value!r}; "
        "pass one ZooKeeper member, not a connect string"
    )
    try:
        pairs, chroot = split_connect_string(value)
    except ConfigurationError as exc:
        raise wrong from exc
    # ZooKeeper's default port would hide a forgotten one: the proxy wants it said.
    if (
        len(pairs) != 1
        or chroot is not None
        or "/" in value
        or format_member(*pairs[0]) != value.strip()
    ):
        raise wrong
    return pairs[0]


class FaultProxy:
    """Forward ZooKeeper client connections to one upstream server, injecting faults on demand.

    Thread-safe: faults may be armed from any thread while traffic flows.
    """

    def __init__(
        self,
        upstream: str,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        connect_timeout: float = 5.0,
    ) -> None:
        self._upstream: tuple[str, int] = _parse_host_port(upstream)
        self._listen: tuple[str, int] = (listen_host, listen_port)
        self._connect_timeout = check_seconds("connect_timeout", connect_timeout)
        # One condition guards all mutable state; pumps wait on it while blackholed.
        self._cond = threading.Condition()
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        self._finished_threads: list[threading.Thread] = []
        self._stopping = False
        self._blackholed = False
        self._delay = 0.0
        self._armed_drop: DropReplyFault | None = None
        self.connections_accepted = 0
        self.requests_seen: collections.Counter[int] = collections.Counter()
        #: Every request's opcode, in the order clients sent them (all connections).
        self.request_log: list[int] = []
        self.last_dropped_reply: DropReplyFault | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        """Bind the listening socket and start accepting; returns ``self`` for chaining.

        May be called again after :meth:`stop`; the proxy then listens on the same port.
        """
        with self._cond:
            if self._listener is not None:
                raise RuntimeError("FaultProxy is already started")
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(self._listen)
                listener.listen(64)
            except OSError:
                listener.close()
                raise
            # A timeout lets the accept loop notice stop() without relying on the
            # platform-specific behaviour of closing a socket blocked in accept().
            listener.settimeout(_ACCEPT_POLL_SECONDS)
            self._listener = listener
            # A restarted proxy keeps its port, so clients' connect strings stay valid.
            self._port = listener.getsockname()[1]
            self._listen = (self._listen[0], self._port)
            self._stopping = False
            thread = threading.Thread(
                target=self._accept_loop, name=f"FaultProxy-accept-{self.port}", daemon=True
            )
            self._accept_thread = thread
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then join all threads. Idempotent."""
        with self._cond:
            self._stopping = True
            connections = list(self._connections)
            for conn in connections:
                conn.shutdown()
            self._cond.notify_all()
            accept_thread = self._accept_thread
        if accept_thread is not None:
            accept_thread.join(_JOIN_SECONDS)
        with self._cond:
            threads = [t for c in self._connections for t in c.threads] + self._finished_threads
            self._finished_threads = []
        for thread in threads:
            thread.join(_JOIN_SECONDS)
        with self._cond:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            self._accept_thread = None

    def __enter__(self) -> FaultProxy:
        if self._listener is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The local port the proxy listens on (known from the first :meth:`start` on)."""
        if self._port is None:
            raise RuntimeError("FaultProxy is not started")
        return self._port

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"``: use it as (part of) a kazoo connect string."""
        return f"{self._listen[0]}:{self.port}"

    @property
    def upstream(self) -> str:
        """The server this proxy forwards to, as ``host:port``."""
        return f"{self._upstream[0]}:{self._upstream[1]}"

    @property
    def open_connections(self) -> int:
        """How many proxied connections are currently open."""
        with self._cond:
            return len(self._connections)

    @property
    def blackholed(self) -> bool:
        """Whether the proxy is currently forwarding nothing."""
        with self._cond:
            return self._blackholed

    # ------------------------------------------------------------------ faults

    def drop_reply_once(self, opcodes: Collection[int] = (OP_CREATE, OP_CREATE2)) -> DropReplyFault:
        """Arm a one-shot fault: lose the reply to the next request with one of ``opcodes``.

        The request itself is forwarded, so the server applies it; when the server's reply
        with that xid comes back, the proxy swallows it and closes both sides of that
        connection. The client therefore gets ConnectionLoss for an operation that did happen.
        Arming again replaces a fault that has not yet claimed a request.

        Returns the fault, a :class:`threading.Event` set when the reply was swallowed. If
        the connection dies before the reply arrives, the fault is spent without firing.
        """
        if not opcodes:
            raise ConfigurationError("drop_reply_once needs at least one opcode")
        fault = DropReplyFault(opcodes)
        with self._cond:
            self._armed_drop = fault
        return fault

    def blackhole(self, on: bool = True) -> None:
        """Stop (``on=True``) or resume (``on=False``) forwarding, like a network partition.

        While on, nothing is forwarded in either direction on existing connections, new
        connections are accepted but not connected upstream, and a close on one side is not
        passed to the other: each peer sees silence, never a reset, and must rely on its own
        timeouts. Turning it off resumes every connection where it stopped (a healed
        partition): bytes held back are delivered late and held-back closes are carried out.
        """
        with self._cond:
            self._blackholed = on
            self._cond.notify_all()

    def drop_connections(self) -> int:
        """Close all current connections at once (a connection flap); returns how many."""
        with self._cond:
            connections = list(self._connections)
            for conn in connections:
                conn.shutdown()
            self._cond.notify_all()
        return len(connections)

    def set_delay(self, seconds: float) -> None:
        """Delay every forwarded packet by ``seconds`` (0 disables); order is preserved."""
        delay = check_seconds("delay", seconds, allow_zero=True)
        with self._cond:
            self._delay = delay

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        number = 0
        while True:
            with self._cond:
                if self._stopping:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            number += 1
            conn = _Connection(number, client)
            thread = threading.Thread(
                target=self._serve, args=(conn,), name=f"FaultProxy-conn-{number}", daemon=True
            )
            conn.threads.append(thread)
            with self._cond:
                if self._stopping:
                    client.close()
                    return
                self.connections_accepted += 1
                self._connections.add(conn)
            thread.start()

    def _wait_open(self, conn: _Connection) -> bool:
        """Block while blackholed; False if the connection or the proxy is closing."""
        with self._cond:
            while self._blackholed and not conn.closed and not self._stopping:
                self._cond.wait()
            return not conn.closed and not self._stopping

    def _serve(self, conn: _Connection) -> None:
        """Connect upstream (after any blackhole), pump client->server, then clean up."""
        try:
            if not self._wait_open(conn):
                return
            try:
                upstream = socket.create_connection(self._upstream, self._connect_timeout)
            except OSError:
                return
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                conn.upstream = upstream
                if conn.closed or self._stopping:
                    return
                back = threading.Thread(
                    target=self._pump_replies,
                    args=(conn,),
                    name=f"FaultProxy-conn-{conn.number}-s2c",
                    daemon=True,
                )
                conn.threads.append(back)
            back.start()
            self._pump_requests(conn)
        finally:
            self._finish(conn)

    def _finish(self, conn: _Connection) -> None:
        with self._cond:
            conn.shutdown()
            self._cond.notify_all()
        current = threading.current_thread()
        for thread in conn.threads:
            if thread is not current and thread.ident is not None:
                thread.join(_JOIN_SECONDS)
        for sock in (conn.client, conn.upstream):
            if sock is not None:
                sock.close()
        with self._cond:
            self._connections.discard(conn)
            # Keep the still-finishing threads (this one) so stop() can join them.
            self._finished_threads = [t for t in self._finished_threads if t.is_alive()]
            self._finished_threads.extend(t for t in conn.threads if t.is_alive())

    def _close_after_blackhole(self, conn: _Connection) -> None:
        """One side closed: pass the close on, but not while partitioned."""
        self._wait_open(conn)
        with self._cond:
            conn.shutdown()
            self._cond.notify_all()

    def _forward(self, conn: _Connection, dst: socket.socket, data: bytes) -> bool:
        if not self._wait_open(conn):
            return False
        try:
            dst.sendall(data)
        except OSError:
            return False
        return True

    def _delay_packet(self) -> None:
        with self._cond:
            delay = self._delay
        if delay > 0:
            time.sleep(delay)

    def _stream_rest(
        self, conn: _Connection, src: socket.socket, dst: socket.socket, remaining: int
    ) -> bool:
        while remaining > 0:
            chunk = _recv_some(src, min(remaining, _CHUNK))
            if not chunk:
                return False
            remaining -= len(chunk)
            if not self._forward(conn, dst, chunk):
                return False
        return True

    def _pump_requests(self, conn: _Connection) -> None:
        """Client -> server: count opcodes and let an armed drop fault claim a request."""
        src, dst = conn.client, conn.upstream
        assert dst is not None
        first = True
        while True:
            head = _recv_exact(src, _LENGTH.size)
            if head is None:
                break
            (length,) = _LENGTH.unpack(head)
            body_head = b""
            if not first and length >= _REQUEST_HEADER.size:
                body_head = _recv_exact(src, _REQUEST_HEADER.size) or b""
                if len(body_head) < _REQUEST_HEADER.size:
                    break
                xid, opcode = _REQUEST_HEADER.unpack(body_head)
                with self._cond:
                    self.requests_seen[opcode] += 1
                    self.request_log.append(opcode)
                    fault = self._armed_drop
                    if fault is not None and opcode in fault.opcodes:
                        # Registered before forwarding, so the reply cannot overtake it.
                        self._armed_drop = None
                        conn.drop_xids[xid] = (opcode, fault)
            first = False
            self._delay_packet()
            if not self._forward(conn, dst, head + body_head):
                break
            if not self._stream_rest(conn, src, dst, length - len(body_head)):
                break
        self._close_after_blackhole(conn)

    def _pump_replies(self, conn: _Connection) -> None:
        """Server -> client: swallow the reply a drop fault claimed, then cut the connection."""
        src, dst = conn.upstream, conn.client
        assert src is not None
        first = True
        while True:
            head = _recv_exact(src, _LENGTH.size)
            if head is None:
                break
            (length,) = _LENGTH.unpack(head)
            body_head = b""
            if not first and length >= _REPLY_HEADER.size:
                body_head = _recv_exact(src, _REPLY_HEADER.size) or b""
                if len(body_head) < _REPLY_HEADER.size:
                    break
                xid, zxid, err = _REPLY_HEADER.unpack(body_head)
                with self._cond:
                    claimed = conn.drop_xids.pop(xid, None)
                if claimed is not None:
                    opcode, fault = claimed
                    fault.xid, fault.opcode, fault.zxid, fault.err = xid, opcode, zxid, err
                    with self._cond:
                        self.last_dropped_reply = fault
                        conn.shutdown()  # both sides, without forwarding the reply
                        self._cond.notify_all()
                    fault.set()
                    return
            first = False
            self._delay_packet()
            if not self._forward(conn, dst, head + body_head):
                break
            if not self._stream_rest(conn, src, dst, length - len(body_head)):
                break
        self._close_after_blackhole(conn)


def _recv_some(sock: socket.socket, limit: int) -> bytes:
    try:
        return sock.recv(limit)
    except OSError:
        return b""


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly ``size`` bytes; None on EOF or error before the first byte or midway."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = _recv_some(sock, remaining)
        if not chunk:
            return None
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)
