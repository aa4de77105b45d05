"""The election on a real 3-member ensemble: who leads, epochs, resign, stop, observe."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from election_support import FAST, Candidate, candidate_children
from kazoo.client import KazooClient

from zkelect import (
    Election,
    ElectionStoppedError,
    ElectionTimeoutError,
    LeaderInfo,
    LeadershipLostError,
)
from zkelect._election.nodes import election_order
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

Make = Callable[..., Candidate]


def leader_of(cands: list[Candidate]) -> Candidate:
    return wait_for(
        lambda: next((c for c in cands if c.election.is_leader), None), 10, message="a leader"
    )


def test_lowest_sequence_leads_and_epoch_is_its_czxid(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    cands = [candidates(ensemble.hosts, zk_path, f"node-{i}") for i in range(3)]
    leader = leader_of(cands)
    lead = leader.election.wait_for_leadership(5)
    assert lead is not None

    children = candidate_children(kazoo_client, zk_path)
    first = election_order(children)[0].name
    data, stat = kazoo_client.get(f"{zk_path}/{first}")
    assert leader.election.node == f"{zk_path}/{first}"
    assert lead.epoch == stat.czxid
    assert data == leader.election.candidate_id.encode()
    assert lead.token.session_id == stat.ephemeralOwner == leader.election.session.session_id
    assert [c.election.is_leader for c in cands].count(True) == 1
    # The node uses Curator's LeaderLatch format.
    assert first.startswith("_c_") and "-latch-" in first

    info = cands[2].election.leader()
    assert info == LeaderInfo(
        leader.election.candidate_id,
        stat.czxid,
        first,
        stat.ephemeralOwner,
        election_order(children)[0].sequence,
    )
    listed = cands[1].election.candidates()
    assert listed[0].candidate_id == leader.election.candidate_id
    assert {c.candidate_id for c in listed} == {"node-0", "node-1", "node-2"}


def test_epochs_strictly_increase_over_leaders_and_path_recreation(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    cands = [candidates(ensemble.hosts, zk_path, f"node-{i}") for i in range(5)]
    epochs, granted = [], []
    for _ in range(5):
        leader = leader_of(cands)
        lead = leader.election.wait_for_leadership(5)
        assert lead is not None
        epochs.append(lead.epoch)
        granted.append(lead.granted_zxid)
        # Granted in a state no older than the node itself, and no newer than the servers'.
        assert lead.epoch <= lead.granted_zxid <= kazoo_client.exists(zk_path).pzxid
        leader.election.stop()
        cands.remove(leader)
        assert lead.lost.is_set() and lead.reason == "stopped"
    assert epochs == sorted(epochs) and len(set(epochs)) == 5
    # Each leader was first in a later state than the one before it (after its node went).
    assert granted == sorted(granted) and len(set(granted)) == 5

    # Delete and re-create the path: sequence numbers restart at 0, epochs do not go back.
    kazoo_client.delete(zk_path, recursive=True)
    kazoo_client.create(zk_path)
    again = candidates(ensemble.hosts, zk_path, "node-again")
    lead = again.election.wait_for_leadership(10)
    assert lead is not None
    assert again.election.node is not None and again.election.node.endswith("latch-0000000000")
    assert lead.epoch > epochs[-1]


def test_resign_requeues_at_the_back(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    cands = [candidates(ensemble.hosts, zk_path, f"node-{i}") for i in range(3)]
    first = leader_of(cands)
    lead = first.election.wait_for_leadership(5)
    assert lead is not None
    old_node = first.election.node

    assert first.election.resign() is True
    assert lead.lost.is_set() and lead.reason == "resigned"
    assert first.recorder.of("revoked") == ["resigned"]
    second = leader_of(cands)
    assert second is not first
    assert not kazoo_client.exists(old_node)  # resign() returns once the node is gone
    wait_for(lambda: first.election.node is not None, 5, message="re-joined")
    order = [c.candidate_id for c in second.election.candidates()]
    assert order[-1] == first.election.candidate_id  # at the back of the queue
    assert first.election.node != old_node
    assert first.election.resign() is False  # not leading: nothing to give up
    assert len(candidate_children(kazoo_client, zk_path)) == 3


def test_stop_leaves_no_node_and_fires_revoked(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    leader = candidates(ensemble.hosts, zk_path, "leader")
    follower = candidates(ensemble.hosts, zk_path, "follower")
    lead = leader.election.wait_for_leadership(5)
    assert lead is not None
    leader.election.stop()
    follower.election.stop()
    assert candidate_children(kazoo_client, zk_path) == []
    assert leader.recorder.kinds() == ["elected", "revoked"]
    assert leader.recorder.of("revoked") == ["stopped"]
    assert follower.recorder.kinds() in ([], ["elected", "revoked"])
    leader.election.stop()  # idempotent
    with pytest.raises(ElectionStoppedError):
        leader.election.wait_for_leadership(0)
    with pytest.raises(ElectionStoppedError):
        leader.election.start()
    with pytest.raises(LeadershipLostError):
        lead.check()


def test_callbacks_alternate_and_run_off_kazoo_threads(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    threads: list[str] = []
    a = candidates(ensemble.hosts, zk_path, "a")
    b = candidates(
        ensemble.hosts,
        zk_path,
        "b",
        on_leader_change=lambda info: threads.append(threading.current_thread().name),
    )
    for _ in range(3):
        current = leader_of([a, b])
        current.election.resign()
        wait_for(lambda cur=current: not cur.election.is_leader, 5)
    leader_of([a, b])
    for cand in (a, b):
        kinds = cand.recorder.kinds()
        assert kinds[0] == "elected"
        assert all(x != y for x, y in itertools.pairwise(kinds)), kinds  # strictly alternating
    assert threads and all(name.startswith("zkelect") for name in threads)


def test_leadership_context_manager_and_timeout(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    holder = candidates(ensemble.hosts, zk_path, "holder")
    assert holder.election.wait_for_leadership(5) is not None

    waiting = Election(ensemble.hosts, zk_path, candidate_id="waiting", config=FAST)
    with pytest.raises(ElectionTimeoutError), waiting.leadership(timeout=0.5):
        pass
    assert len(candidate_children(kazoo_client, zk_path)) == 1  # the waiter stopped: no node left

    holder.election.stop()
    runner = Election(ensemble.hosts, zk_path, candidate_id="runner", config=FAST)
    with runner.leadership(timeout=10) as lead:
        assert runner.is_leader and not lead.lost.is_set() and lead.is_valid()
        assert lead.lease_remaining() > 0
    assert lead.lost.is_set()
    assert candidate_children(kazoo_client, zk_path) == []


def test_observe_reports_every_leader_change(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    watcher = candidates(ensemble.hosts, zk_path, "watcher")
    seen = watcher.election.observe()
    assert next(seen).candidate_id == "watcher"  # type: ignore[union-attr]
    other = candidates(ensemble.hosts, zk_path, "other")
    watcher.election.resign()
    assert next(seen).candidate_id == "other"  # type: ignore[union-attr]
    wait_for(lambda: watcher.election.node, 5, message="watcher re-joined")
    other.election.stop()
    assert next(seen).candidate_id == "watcher"  # type: ignore[union-attr]
    watcher.election.stop()
    assert list(seen) == []  # the iterator ends when the election stops


def test_many_elections_share_one_session(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    before = threading.active_count()
    cands = [candidates(kazoo_client, f"{zk_path}/e{i}", "shared") for i in range(50)]
    wait_for(lambda: all(c.election.is_leader for c in cands), 20, message="50 leaders")
    assert {c.election.session for c in cands} == {cands[0].election.session}
    assert threading.active_count() - before <= 6  # a few shared threads, not one each
    for cand in cands:
        cand.election.stop()
    assert kazoo_client.connected  # zkelect never closes a client it was given
    assert all(candidate_children(kazoo_client, f"{zk_path}/e{i}") == [] for i in range(50))


def test_lease_uses_the_timeout_the_server_negotiated(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    # The test ensembles cap sessions at 20 s: asking for 60 s must not give a 60 s lease.
    config = FAST.__class__(session_timeout=60.0, connect_timeout=20.0)
    cand = candidates(ensemble.hosts, zk_path, "greedy", config=config)
    lead = cand.election.wait_for_leadership(10)
    assert lead is not None
    assert cand.election.session.session_timeout == 20.0
    assert 0 < lead.lease_remaining() <= 20.0 * (1 - config.lease_margin_ratio)


def test_shared_client_is_left_clean_and_can_be_reused(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    listeners = set(kazoo_client.state_listeners)
    Election(kazoo_client, zk_path, candidate_id="never-started")  # built, never started
    assert set(kazoo_client.state_listeners) == listeners
    for round_no in range(2):  # the session's threads stop and start again cleanly
        election = Election(kazoo_client, zk_path, candidate_id=f"round-{round_no}", config=FAST)
        with election.leadership(timeout=10) as lead:
            assert lead.lease_remaining() > 0
            lead.set_data(zk_path, b"x")  # the lease timer and fencing work on reuse
        assert set(kazoo_client.state_listeners) == listeners
