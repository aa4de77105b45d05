"""A real Apache Curator LeaderLatch (tests/java/LatchPeer.java, a JVM built against Debian's
Curator jars) in an election with zkelect candidates that use switchovers and priority (R14,
R1b), on real ZooKeeper.

Why: issue 17 promises that a LeaderLatch in a mixed election "still sees a sensible
participant id and is never told to do anything it cannot understand". Only Curator itself
can say what it sees, so the peer answers ``latch.getParticipants()`` and ``getLeader()``
on request, and prints every leadership change it makes:

* a priority is in zkelect's node NAME (``-p5-latch-``), never in its data: Curator still
  reads the candidate id; the switchover request sorts after every candidate in Curator's
  order too (its id is the request's JSON), so it never changes who Curator thinks leads;
* Curator, as the deputy or the target, cannot step back nor say ready: a switchover behind
  or to it times out with TargetNotReadyError, the zkelect leader never drains, and nothing
  is left behind; as the leader it never answers: LeaderNotAnsweringError;
* nobody pokes Curator's node: it leads exactly when its predecessor goes, and makes no other
  move (no LEADER/FOLLOWER line besides that one).

Every peer is stopped by PID in a ``finally``; waits have deadlines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from curator_support import Peer, stop_process
from election_support import Candidate, candidate_children
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zkelect import (
    ElectionConfig,
    LeaderNotAnsweringError,
    Leadership,
    SwitchoverResult,
    TargetNotReadyError,
)
from zkelect._election.nodes import LEADER_MARKER_PREFIX
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration
WAIT = 15.0


def _config(priority: int) -> ElectionConfig:
    return ElectionConfig(
        session_timeout=4.0, request_timeout=5.0, connect_timeout=20.0, priority=priority
    )


class Drains:
    """on_draining of each candidate: who was asked to drain (nobody should be)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.names: list[str] = []

    def of(self, name: str) -> Callable[[Leadership, float], None]:
        def on_draining(lead: Leadership, deadline: float) -> None:
            with self.lock:
                self.names.append(name)

        return on_draining


class Mixed:
    """z0 (zkelect, priority 5) leading with its leader marker (it waited behind zx, which
    left: R13), curator-a (a real LeaderLatch) behind it, z2 (zkelect, priority 0) behind
    that."""

    def __init__(
        self,
        ensemble: LocalEnsemble,
        zk_path: str,
        candidates: Callable[..., Candidate],
        client: KazooClient,
        start_peer: Callable[[], Peer],
    ) -> None:
        self.path, self.client, self.drains = zk_path, client, Drains()
        hosts, p5, p0 = ensemble.hosts, _config(5), _config(0)
        zx = candidates(hosts, zk_path, "zx", config=p5)  # z0 has no higher priority
        wait_for(lambda: zx.election.is_leader, WAIT, message="zx leads")
        self.z0 = candidates(hosts, zk_path, "z0", config=p5, on_draining=self.drains.of("z0"))
        wait_for(lambda: len(candidate_children(client, zk_path)) == 2, WAIT, message="z0 joined")
        zx.election.stop()  # z0 leads on the notice and leaves its marker
        wait_for(lambda: self.z0.election.is_leader, WAIT, message="z0 leads")
        wait_for(lambda: self.marker() is not None, WAIT, message="z0's leader marker")
        # Started only now, so that its node is behind z0's.
        self.peer = peer = start_peer()
        peer.lines.expect("STARTED curator-a")
        wait_for(lambda: len(candidate_children(client, zk_path)) == 2, WAIT, message="Curator's")
        self.z2 = candidates(hosts, zk_path, "z2", config=p0, on_draining=self.drains.of("z2"))
        wait_for(lambda: len(candidate_children(client, zk_path)) == 3, WAIT, message="z2 joined")

    def marker(self) -> str | None:
        names = self.client.get_children(self.path)
        return next((name for name in names if name.startswith(LEADER_MARKER_PREFIX)), None)

    def children(self) -> list[str]:
        return sorted(self.client.get_children(self.path))

    def request(self) -> SwitchoverRequest | None:
        """The pending switchover request (None if there is none)."""
        try:
            data = self.client.get(f"{self.path}/{REQUEST_NODE}")[0]
        except NoNodeError:
            return None
        return SwitchoverRequest.decode(data)

    def no_request(self) -> bool:
        # Synced first: the requester deleted it through another member, maybe ahead of ours.
        self.client.sync(self.path)
        return REQUEST_NODE not in self.client.get_children(self.path)


@pytest.fixture
def mixed(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_client: KazooClient,
    latch_peer: list[str],
    tmp_path: Path,
) -> Iterator[Mixed]:
    """The mixed election (z0 leading, curator-a, z2); the Curator peer is stopped by PID
    at teardown, pass or fail, and must have closed cleanly."""
    peers: list[Peer] = []

    def start() -> Peer:
        peers.append(Peer([*latch_peer, ensemble.hosts, zk_path, "curator-a"], tmp_path / "a.log"))
        return peers[-1]

    try:
        yield Mixed(ensemble, zk_path, candidates, kazoo_client, start)
    finally:
        codes = [stop_process(peer.proc) for peer in peers]
    assert all(code in (0, 143) for code in codes), [p.log.read_text()[-2000:] for p in peers]


def _ask(
    pool: ThreadPoolExecutor, who: Candidate, to: str, timeout: float
) -> Future[SwitchoverResult]:
    return pool.submit(who.election.request_switchover, to=to, timeout=timeout)


def _pending_participants(mixed: Mixed, state: State) -> list[tuple[str, bool]]:
    """Curator's participants while the request is in ``state``; its JSON id is decoded."""
    wait_for(
        lambda: (r := mixed.request()) is not None and r.state is state,
        WAIT,
        message=f"the request {state.value}",
    )
    seen = mixed.peer.participants()
    print(f"\nCurator's participants, request {state.value}: {seen}")
    assert mixed.request() is not None, "the request ended before Curator was asked"
    return seen


def test_curator_behind_a_zkelect_leader_sees_ids_and_a_switchover_through_it_times_out(
    mixed: Mixed,
) -> None:
    peer = mixed.peer
    z0, z2 = mixed.z0, mixed.z2
    assert z0.election.node is not None and "-p5-latch-" in z0.election.node
    # a. The priority is in z0's node name, never in its data: Curator reads "z0". z0's
    # leader marker (no "latch-" in its name) sorts last; its id is its empty data.
    steady = [("z0", True), ("curator-a", False), ("z2", False), ("", False)]
    assert peer.participants() == steady
    assert peer.leader() == "z0"
    before = mixed.children()

    # b. Curator is the deputy: it never steps back, so z2 is never ready.
    with ThreadPoolExecutor(1) as pool:
        asked = _ask(pool, z2, "z2", 2.0)
        pending = _pending_participants(mixed, State.ACCEPTED)
        with pytest.raises(TargetNotReadyError, match="cannot step back"):
            asked.result(WAIT)
    # The request sorts after every candidate; its id is its JSON; it never leads.
    assert pending[:4] == steady and len(pending) == 5 and pending[4][1] is False
    request = SwitchoverRequest.decode(pending[4][0].encode())
    assert request is not None and request.to_id == "z2" and request.state is State.ACCEPTED
    assert mixed.no_request() and mixed.children() == before
    assert z0.election.is_leader and z0.recorder.of("revoked") == []
    assert mixed.drains.names == []  # accepted, but never drained
    assert peer.leader() == "z0" and peer.transitions() == []

    # c. Curator as the target: it cannot say ready either.
    with pytest.raises(TargetNotReadyError, match="did not become ready"):
        z2.election.request_switchover(to="curator-a", timeout=2.0)
    assert mixed.no_request() and mixed.children() == before
    assert peer.participants() == steady and peer.transitions() == []
    assert z0.election.is_leader and mixed.drains.names == []


def test_curator_leading_never_answers_a_switchover_and_is_never_moved(mixed: Mixed) -> None:
    peer = mixed.peer
    # d. z0 stops: Curator's watch on z0's node fires and it leads, as it always did.
    mixed.z0.election.stop()  # its marker goes with its node
    leader_line = peer.lines.expect("LEADER curator-a")
    wait_for(lambda: mixed.marker() is None, WAIT, message="z0's marker gone")
    steady = [("curator-a", True), ("z2", False)]
    assert peer.participants() == steady
    before = mixed.children()

    with ThreadPoolExecutor(1) as pool:
        asked = _ask(pool, mixed.z2, "z2", 1.5)
        pending = _pending_participants(mixed, State.REQUESTED)
        with pytest.raises(LeaderNotAnsweringError, match=r"did not answer within 1\.5s"):
            asked.result(WAIT)
    assert pending[:2] == steady and len(pending) == 3 and pending[2][1] is False
    request = SwitchoverRequest.decode(pending[2][0].encode())
    assert request is not None and request.state is State.REQUESTED
    assert mixed.no_request() and mixed.children() == before
    assert peer.leader() == "curator-a" and peer.transitions() == [leader_line]
    assert peer.participants() == steady
    assert not mixed.z2.election.is_leader and mixed.drains.names == []
