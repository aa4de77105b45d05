"""Asking a ZooKeeper member for the shortest session it grants (``minSessionTimeout``).

That figure bounds how late a follower reports a touch to the ZooKeeper leader (half a
tick), so that a client connected before zkelect saw it proves its lease in half a tick
rather than a quarter of the session timeout (zkelect/_lease.py). A connection of its own, speaking
kazoo's public protocol classes with the client's TLS settings: a ConnectRequest for a 1 ms
session is granted ``minSessionTimeout``, and the probe session is closed at once. Nothing
of the client's own connection is touched (hooks.py asks once per process and ensemble).
"""

from __future__ import annotations

import struct
from typing import Any

from kazoo.protocol.serialization import Close, Connect, int_struct

__all__ = ["probe_min_session"]

_REQUEST_HEADER = struct.Struct(">ii")  # xid, type


def probe_min_session(client: Any, peer: tuple[str, int], timeout: float) -> float | None:
    """The shortest session ``peer`` (a member of ``client``'s ensemble) grants, in
    seconds; None if it cannot be asked."""
    names = [str(host) for host, port in client.hosts if int(port) == peer[1]]
    try:
        sock = client.handler.create_connection(
            address=peer,
            hostname=names[0] if names else peer[0],
            timeout=timeout,
            use_ssl=client.use_ssl,
            keyfile=client.keyfile,
            certfile=client.certfile,
            ca=client.ca,
            keyfile_password=client.keyfile_password,
            verify_certs=client.verify_certs,
            check_hostname=client.check_hostname,
        )
    except Exception:
        return None
    try:
        sock.settimeout(timeout)
        request = bytes(Connect(0, 0, 1, 0, b"\x00" * 16, False).serialize())
        sock.sendall(int_struct.pack(len(request)) + request)
        (length,) = int_struct.unpack(_recv_exact(sock, int_struct.size))
        granted = Connect.deserialize(_recv_exact(sock, length), 0)[0].time_out
        close = _REQUEST_HEADER.pack(1, Close.type)  # end the probe session now
        sock.sendall(int_struct.pack(len(close)) + close)
    except Exception:
        return None
    finally:
        sock.close()
    return float(granted) / 1000.0 if granted > 0 else None


def _recv_exact(sock: Any, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("closed by the server")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
