"""Support for election tests: a fast config, callback recorders, candidate handles."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, Leadership
from zkelect._election.nodes import LEADER_MARKER_PREFIX

# Short sessions keep failure tests fast; the test ensembles allow 400 ms .. 20 s.
FAST = ElectionConfig(session_timeout=4.0, request_timeout=5.0, connect_timeout=20.0)


@dataclass
class Recorder:
    """Collects an election's callbacks, with the time each one started."""

    events: list[tuple[str, Any, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_elected(self, lead: Leadership) -> None:
        with self.lock:
            self.events.append(("elected", lead, time.monotonic()))

    def on_revoked(self, reason: str) -> None:
        with self.lock:
            self.events.append(("revoked", reason, time.monotonic()))

    def kinds(self) -> list[str]:
        with self.lock:
            return [kind for kind, _, _ in self.events]

    def of(self, kind: str) -> list[Any]:
        with self.lock:
            return [value for k, value, _ in self.events if k == kind]

    def time_of(self, kind: str, index: int = -1) -> float:
        with self.lock:
            return [t for k, _, t in self.events if k == kind][index]


def hand_numbered(client: KazooClient, path: str, sequence: int, data: bytes = b"") -> str:
    """Create a contender node numbered ``sequence`` by hand, as ZooKeeper numbers nodes after
    its counter wraps (a test cannot make 2**31 creates); its name. Ephemeral, owned by
    ``client``'s session, so it is a real contender to every recipe. Creates ``path`` if needed.
    """
    name = f"_c_{uuid.uuid4()}-latch-{sequence:010d}"
    client.create(f"{path}/{name}", data, ephemeral=True, makepath=True)
    return name


@dataclass
class Candidate:
    election: Election
    recorder: Recorder


def candidate_children(client: KazooClient, path: str) -> list[str]:
    """The children of ``path`` without the leader markers (``zkelect-leader-...``, R13)."""
    return [name for name in client.get_children(path) if not name.startswith(LEADER_MARKER_PREFIX)]
