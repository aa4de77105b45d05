"""The runner's independent view of the election: who leads, and who watches what.

Its own kazoo session, connected straight to the members (not through the candidates'
proxies), so it sees the servers' truth whatever a candidate's link is doing. Two threads:

* the leader sampler: every 0.2 s the children of the election path; a ``leader`` event
  (the lowest-sequence node, its owner session and czxid = epoch) on every change and at
  least every 0.5 s while ZooKeeper answers (nothing is written while it does not:
  "unknown" is not "no leader");
* the watch sampler: every ~1 s ``wchp`` from each member that answers, restricted to the
  election path, with the owner session of every candidate node.

The observer sets no watches itself, so it never appears in ``wchp``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient, KazooState

from chaos.events import EventLog
from zkelect._election.nodes import LEADER_MARKER_PREFIX, election_order
from zkelect.testing import four_letter, parse_wchp, split_hosts

__all__ = ["LeaderSample", "Observer", "hex_session"]

_LEADER_EVERY = 0.2
_LEADER_REPEAT = 0.5
_WCHP_EVERY = 1.0
_REQUEST_TIMEOUT = 1.5
_NOT_SERVING = "not currently serving requests"


@dataclass(frozen=True)
class LeaderSample:
    t: float
    node: str | None  # full path of the first node, None if the path is empty
    owner_session: int | None
    epoch: int | None
    nodes: int
    data: str | None  # the leader's candidate id (``<cand>.<inc>``)


def hex_session(session: int | None) -> str | None:
    """A session id as the history writes it (``0x1a2b``)."""
    return None if session is None else f"{session:#x}"


class Observer:
    def __init__(self, hosts: str, path: str, log: EventLog, session_timeout: float) -> None:
        self.hosts = hosts
        self.path = path
        self.log = log
        self._client = KazooClient(hosts=hosts, timeout=max(session_timeout, 4.0))
        self._client.add_listener(self._on_state)
        self._session_id: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._latest: LeaderSample | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._client.start(timeout=30.0)
        for target, name in ((self._leader_loop, "leader"), (self._wchp_loop, "wchp")):
            thread = threading.Thread(target=target, name=f"chaos-observer-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10.0)
        with contextlib.suppress(Exception):
            self._client.stop()
            self._client.close()

    @property
    def session_id(self) -> int | None:
        return self._session_id

    def _on_state(self, state: str) -> None:
        if state != KazooState.CONNECTED:
            return
        client_id = self._client.client_id
        if client_id is None or client_id[0] == self._session_id:
            return
        self._session_id = int(client_id[0])
        self.log.emit("observer-session", session_id=hex_session(self._session_id))

    # -- reads ------------------------------------------------------------------------

    def _children(self) -> list[str]:
        from kazoo.exceptions import NoNodeError

        try:
            names = self._client.get_children_async(self.path).get(timeout=_REQUEST_TIMEOUT)
        except NoNodeError:
            return []
        # A leader's marker (docs/safety.md R13) is not a candidate's node.
        return [str(name) for name in names if not str(name).startswith(LEADER_MARKER_PREFIX)]

    def _owners(self, names: list[str]) -> dict[str, tuple[int, int, str]]:
        """node path -> (ephemeral owner, czxid, data) for the nodes that still exist."""
        asyncs = [(n, self._client.get_async(f"{self.path}/{n}")) for n in names]
        found: dict[str, tuple[int, int, str]] = {}
        for name, pending in asyncs:
            with contextlib.suppress(Exception):
                data, stat = pending.get(timeout=_REQUEST_TIMEOUT)
                found[f"{self.path}/{name}"] = (
                    int(stat.ephemeralOwner),
                    int(stat.czxid),
                    bytes(data or b"").decode("utf-8", "replace"),
                )
        return found

    def sample_leader(self) -> LeaderSample:
        """Read the leader now (raises if ZooKeeper does not answer)."""
        children = self._children()
        order = election_order(children)
        if not order:
            return LeaderSample(time.monotonic(), None, None, None, len(children), None)
        first = f"{self.path}/{order[0].name}"
        owners = self._owners([order[0].name])
        if first not in owners:
            raise LookupError("the leader's node went away while reading it")
        owner, czxid, data = owners[first]
        return LeaderSample(time.monotonic(), first, owner, czxid, len(children), data)

    @property
    def latest(self) -> LeaderSample | None:
        with self._lock:
            return self._latest

    def fresh_leader(self, after: float) -> LeaderSample | None:
        """The latest sample if it was taken after ``after`` (monotonic), else None."""
        latest = self.latest
        return latest if latest is not None and latest.t > after else None

    # -- loops ------------------------------------------------------------------------

    def _leader_loop(self) -> None:
        last: tuple[Any, ...] | None = None
        last_written = 0.0
        while not self._stop.wait(_LEADER_EVERY):
            try:
                sample = self.sample_leader()
            except Exception:
                continue  # no answer now: record nothing rather than a false "no leader"
            with self._lock:
                self._latest = sample
            key = (sample.node, sample.owner_session, sample.epoch, sample.nodes)
            if key != last or sample.t - last_written >= _LEADER_REPEAT:
                self.log.emit(
                    "leader",
                    t=sample.t,
                    node=sample.node,
                    owner_session=hex_session(sample.owner_session),
                    epoch=sample.epoch,
                    nodes=sample.nodes,
                )
                last, last_written = key, sample.t

    def _wchp_loop(self) -> None:
        prefix = self.path + "/"
        while not self._stop.wait(_WCHP_EVERY):
            try:
                owners = {
                    node: hex_session(owner)
                    for node, (owner, _, _) in self._owners(self._children()).items()
                }
            except Exception:
                continue
            for member in split_hosts(self.hosts):
                try:
                    text = four_letter(member, "wchp", timeout=1.0)
                except Exception:
                    continue  # down or paused
                if _NOT_SERVING in text:
                    continue
                try:
                    parsed = parse_wchp(text)
                except ValueError:
                    continue
                watches = {
                    path: [f"{s:#x}" for s in sessions]
                    for path, sessions in parsed.items()
                    if path.startswith(prefix) or path == self.path
                }
                self.log.emit("wchp", member=member, watches=watches, owners=owners)

    def final(self, live_candidates: int, live_sessions: list[int]) -> dict[str, Any]:
        """The closing sample (I4), read now; raises if ZooKeeper does not answer."""
        owners = self._owners(self._children())
        return self.log.emit(
            "final",
            nodes=sorted(owners),
            ephemeral_owners={node: hex_session(owner) for node, (owner, _, _) in owners.items()},
            live_candidates=live_candidates,
            live_sessions=[hex_session(s) for s in live_sessions],
        )
