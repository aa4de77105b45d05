"""Fenced ZooKeeper writes (R8): they commit only while our candidate node exists."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from election_support import Candidate
from kazoo.client import KazooClient

from zkelect import LeadershipLostError, StaleEpochError, WriteFailedError
from zkelect.metrics import NoopRecorder
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

Make = Callable[..., Candidate]


class WriteCounter(NoopRecorder):
    def __init__(self) -> None:
        self.results: Counter[str] = Counter()

    def fenced_write(self, election: str, result: str) -> None:
        self.results[result] += 1


def test_fenced_writes_land_while_leading(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    counter = WriteCounter()
    leader = candidates(ensemble.hosts, f"{zk_path}/election", "leader", metrics=counter)
    lead = leader.election.wait_for_leadership(10)
    assert lead is not None
    data = f"{zk_path}/state"
    created = lead.create(data, b"v1")
    assert created == data
    lead.set_data(data, b"v2")
    kazoo_client.sync(data)  # another session, maybe on a member that has not applied it yet
    assert kazoo_client.get(data)[0] == b"v2"
    results = (
        lead.transaction()
        .create(f"{zk_path}/log-", b"entry", sequence=True)
        .set_data(data, b"v3")
        .commit()
    )
    kazoo_client.sync(data)
    assert str(results[0]).startswith(f"{zk_path}/log-") and kazoo_client.get(data)[0] == b"v3"
    lead.delete(data)
    kazoo_client.sync(zk_path)
    assert kazoo_client.exists(data) is None
    assert counter.results == {"accepted": 4}
    assert not lead.lost.is_set()


def test_a_failed_operation_applies_nothing_and_keeps_leadership(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    leader = candidates(ensemble.hosts, f"{zk_path}/election", "leader")
    lead = leader.election.wait_for_leadership(10)
    assert lead is not None
    with pytest.raises(WriteFailedError, match="nothing was applied"):
        lead.transaction().create(f"{zk_path}/a", b"").set_data(f"{zk_path}/missing", b"x").commit()
    assert kazoo_client.exists(f"{zk_path}/a") is None  # all or nothing
    assert leader.election.is_leader and not lead.lost.is_set()


def test_deposed_leader_write_is_refused_by_the_server_and_revokes(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    counter = WriteCounter()
    path = f"{zk_path}/election"
    old = candidates(ensemble.hosts, path, "old", metrics=counter)
    lead = old.election.wait_for_leadership(10)
    assert lead is not None
    new = candidates(ensemble.hosts, path, "new")
    kazoo_client.create(f"{zk_path}/state", b"")
    # An operator forces the leader out (as `zkelect resign` does): its node is deleted.
    kazoo_client.delete(lead.node_path)
    new_lead = new.election.wait_for_leadership(10)
    assert new_lead is not None and new_lead.epoch > lead.epoch

    with pytest.raises(StaleEpochError) as caught:
        lead.set_data(f"{zk_path}/state", b"late")  # the server's check refuses it
    error = caught.value
    assert (error.epoch, error.current_epoch, error.resource) == (lead.epoch, new_lead.epoch, path)
    assert f"{lead.epoch:#x}" in str(error) and f"{new_lead.epoch:#x}" in str(error)
    assert isinstance(error, LeadershipLostError)
    assert kazoo_client.get(f"{zk_path}/state")[0] == b""
    assert lead.lost.is_set()
    wait_for(lambda: old.recorder.of("revoked"), 5)
    assert counter.results["rejected"] == 1
    # The deposed candidate rejoined behind the new leader.
    wait_for(lambda: old.election.node not in (None, lead.node_path), 10)
    assert not old.election.is_leader


def test_overwriting_the_leaders_node_data_deposes_nobody(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    """Issue 12 item 2: the fence checks that our node exists, at any data version. Before,
    it checked the version read when elected: after anyone's `set` on the leader's node,
    every fenced write failed, leadership was revoked and nobody led again."""
    path = f"{zk_path}/election"
    leader = candidates(ensemble.hosts, path, "leader")
    follower = candidates(ensemble.hosts, path, "follower")
    lead = leader.election.wait_for_leadership(10)
    assert lead is not None
    kazoo_client.set(lead.node_path, b"touched by an operator")  # data version 0 -> 1

    lead.create(f"{zk_path}/state", b"v1")
    lead.set_data(f"{zk_path}/state", b"v2")
    assert kazoo_client.get(f"{zk_path}/state")[0] == b"v2"
    assert not lead.lost.is_set() and leader.recorder.kinds() == ["elected"]
    assert not follower.election.is_leader


def test_a_revocation_from_outside_leaves_a_still_first_node_a_next_step(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    """Whatever revokes a leader from outside the election's own steps (a refused fenced
    write), the candidate looks again: a node that is still first leads again, same epoch,
    instead of holding the queue with nobody leading until its session ends."""
    path = f"{zk_path}/election"
    leader = candidates(ensemble.hosts, path, "leader")
    follower = candidates(ensemble.hosts, path, "follower")
    lead = leader.election.wait_for_leadership(10)
    assert lead is not None
    lead._revoke("fence_failed")  # what a refused fenced write does
    assert lead.lost.is_set()
    again = wait_for(lambda: leader.election.wait_for_leadership(0), 10, message="leads again")
    assert again is not lead and again.epoch == lead.epoch
    # on_elected runs on the callback thread, after wait_for_leadership can see the grant.
    wait_for(
        lambda: leader.recorder.kinds() == ["elected", "revoked", "elected"],
        10,
        message="on_elected again",
    )
    assert not follower.election.is_leader
