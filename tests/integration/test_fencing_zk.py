"""Fenced ZooKeeper writes (R8): they commit only while our candidate node exists."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from election_support import Candidate
from kazoo.client import KazooClient

from zkelect import LeadershipLostError, StaleEpochError, WriteFailedError
from zkelect.ensemble import LocalEnsemble
from zkelect.metrics import NoopRecorder
from zkelect.testing import wait_for

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
    assert kazoo_client.get(data)[0] == b"v2"
    results = (
        lead.transaction()
        .create(f"{zk_path}/log-", b"entry", sequence=True)
        .set_data(data, b"v3")
        .commit()
    )
    assert str(results[0]).startswith(f"{zk_path}/log-") and kazoo_client.get(data)[0] == b"v3"
    lead.delete(data)
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
