"""Parsing what the servers say: ``conf`` and ``srvr`` answers, ``server.N`` lines, ACL perms."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

__all__ = [
    "Permissions",
    "ServerEntry",
    "ServerSettings",
    "format_perms",
    "parse_conf",
    "parse_membership",
]


class Permissions:
    """ZooKeeper's ACL permission bits, as the wire protocol has them (the same values as
    ``kazoo.security.Permissions``; doctor's rules need no kazoo)."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


@dataclass(frozen=True)
class ServerEntry:
    """One ``server.N=host:peer:election[:role][;client]`` line of the membership."""

    sid: int
    host: str
    role: str = "participant"

    @property
    def voting(self) -> bool:
        return self.role != "observer"


@dataclass(frozen=True)
class ServerSettings:
    """What ``conf`` tells about one member (None: not reported)."""

    tick_time_ms: int | None = None
    min_session_timeout_ms: int | None = None
    max_session_timeout_ms: int | None = None
    sync_limit: int | None = None
    secure_client_port: int | None = None
    membership: tuple[ServerEntry, ...] = ()

    @property
    def session_bounds_ms(self) -> tuple[int, int] | None:
        """The negotiable range; ZooKeeper's defaults (2 and 20 ticks) where unset."""
        tick = self.tick_time_ms
        low = self.min_session_timeout_ms
        high = self.max_session_timeout_ms
        if low is None or low < 0:
            low = None if tick is None else 2 * tick
        if high is None or high < 0:
            high = None if tick is None else 20 * tick
        return None if low is None or high is None else (low, high)


def parse_membership(text: str) -> tuple[ServerEntry, ...]:
    """``server.N=...`` lines (from ``conf`` or ``/zookeeper/config``), by server id."""
    entries: dict[int, ServerEntry] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key.startswith("server.") or not key[7:].isdigit():
            continue
        address = value.split(";", 1)[0].strip()
        role = "participant"
        parts = address.rsplit(":", 1)
        if len(parts) == 2 and parts[1] in ("participant", "observer"):
            address, role = parts
        host = address[1:].partition("]")[0] if address.startswith("[") else address.split(":")[0]
        entries[int(key[7:])] = ServerEntry(int(key[7:]), host, role)
    return tuple(entries[k] for k in sorted(entries))


def parse_conf(text: str) -> ServerSettings:
    """Parse the ``conf`` four-letter word's answer."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("server."):
            values.setdefault(key.strip(), value.strip())

    def number(key: str) -> int | None:
        raw = values.get(key, "")
        with contextlib.suppress(ValueError):
            return int(raw)
        return None

    return ServerSettings(
        tick_time_ms=number("tickTime"),
        min_session_timeout_ms=number("minSessionTimeout"),
        max_session_timeout_ms=number("maxSessionTimeout"),
        sync_limit=number("syncLimit"),
        secure_client_port=number("secureClientPort"),
        membership=parse_membership(text),
    )


def format_perms(perms: int) -> str:
    """ZooKeeper's ``cdrwa`` notation, e.g. 31 -> ``cdrwa``, 1 -> ``r``."""
    letters = (
        (Permissions.CREATE, "c"),
        (Permissions.DELETE, "d"),
        (Permissions.READ, "r"),
        (Permissions.WRITE, "w"),
        (Permissions.ADMIN, "a"),
    )
    return "".join(letter for bit, letter in letters if perms & bit) or "-"
