"""Faults on real servers: lost create replies (R1), session expiry (R2, R6), suspension
policies (R6), the local lease (R7), and deletion of the election path (R10)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from election_support import FAST, Candidate, candidate_children
from kazoo.client import KazooClient

from zkelect import ElectionConfig, SuspendedPolicy
from zkelect.testing import expire_session, wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

Make = Callable[..., Candidate]
TOLERANT = ElectionConfig(
    session_timeout=4.0,
    request_timeout=5.0,
    connect_timeout=20.0,
    suspended_policy=SuspendedPolicy.TOLERATE,
)


def leading(cand: Candidate, timeout: float = 10.0) -> int:
    lead = cand.election.wait_for_leadership(timeout)
    assert lead is not None, f"{cand.election.candidate_id} was not elected"
    return lead.epoch


def member_of(ens: LocalEnsemble, client: KazooClient) -> int | None:
    """The member the client is connected to now (None while it is between members)."""
    try:
        port = int(client._connection._socket.getpeername()[1])
    except (AttributeError, OSError):
        return None
    return next((i for i in range(ens.size) if ens.client_port(i) == port), None)


def deletion_clock(client: KazooClient, path: str) -> threading.Event:
    """An Event set (with .at = monotonic time) when ``path`` is deleted on the servers."""
    deleted = threading.Event()

    def on_event(event: object) -> None:
        deleted.at = time.monotonic()  # type: ignore[attr-defined]
        deleted.set()

    assert client.exists(path, watch=on_event) is not None
    return deleted


def test_lost_create_reply_is_found_again_not_orphaned(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    kazoo_client.create(zk_path, makepath=True)  # so the first create is the candidate's
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        first = candidates(proxy.address, zk_path, "behind-proxy", start=False)
        fault = proxy.drop_reply_once()
        first.election.start()  # the create reaches the server; its reply never comes back
        assert fault.wait(10) and fault.err == 0  # the server did create the node
        leading(first)
        children = candidate_children(kazoo_client, zk_path)
        assert len(children) == 1  # found again by its GUID, not created twice
        _, stat = kazoo_client.get(f"{zk_path}/{children[0]}")
        assert stat.ephemeralOwner == first.election.session.session_id
        assert first.election.node == f"{zk_path}/{children[0]}"

        # Nobody is stalled behind an orphan: the next candidate takes over on stop.
        second = candidates(ensemble.hosts, zk_path, "direct")
        first.election.stop()
        leading(second)
        assert candidate_children(kazoo_client, zk_path) == [second.election.node.rsplit("/", 1)[1]]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("config", "reason"),
    [(FAST, "suspended"), (TOLERANT, "session_lost")],
    ids=["revoke-policy", "tolerate-policy"],
)
def test_real_session_expiry_of_the_leader(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Make,
    config: ElectionConfig,
    reason: str,
) -> None:
    # The expiry reaches the client as a dropped connection (SUSPENDED), then LOST on
    # reconnect: the default policy revokes at the first, the tolerant one at the second.
    cands = [candidates(ensemble.hosts, zk_path, f"node-{i}", config=config) for i in range(3)]
    old = cands[0]
    old_epoch = leading(old)
    lead = old.election.wait_for_leadership(0)
    assert lead is not None
    old_node, old_session = old.election.node, old.election.session.session_id

    expire_session(old.election.session.client)

    wait_for(lambda: old.recorder.of("revoked"), 10, message="on_revoked")
    assert lead.lost.is_set() and not lead.is_valid()
    successor = cands[1]
    assert leading(successor) > old_epoch
    # The expired candidate rejoined with a new node on its new session, never the old one.
    new_node = wait_for(lambda: old.election.node, 10, message="rejoined")
    assert new_node != old_node
    new_session = old.election.session.session_id
    assert new_session != old_session
    wait_for(lambda: kazoo_client.exists(old_node) is None, 10)  # type: ignore[arg-type]
    _, stat = kazoo_client.get(new_node)
    assert stat.ephemeralOwner == new_session
    assert not old.election.is_leader
    # Closing the session from a second handle can first drop the old connection while the
    # session still lives: the client reconnects to it, finds its node first and regains
    # leadership (same epoch, R6) before the session ends. Each revocation has the reason.
    kinds = old.recorder.kinds()
    assert kinds == ["elected", "revoked"] * (len(kinds) // 2) and kinds, kinds
    assert set(old.recorder.of("revoked")) == {reason}
    assert {lead.epoch for lead in old.recorder.of("elected")} == {old_epoch}
    assert [c.candidate_id for c in successor.election.candidates()][-1] == "node-0"


def test_suspended_revokes_at_once_by_default_and_regains_on_reconnect(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, candidates: Make
) -> None:
    ens = make_ensemble(3)
    leader = candidates(ens.hosts, zk_path, "leader")
    epoch = leading(leader)
    member = member_of(ens, leader.election.session.client)
    assert member is not None

    ens.kill(member)  # the connection breaks: kazoo reports SUSPENDED, then reconnects
    wait_for(lambda: leader.recorder.of("revoked"), 10, message="revocation")
    assert leader.recorder.of("revoked") == ["suspended"]
    # Same session on another member: the node is still first, so it leads again, same epoch.
    wait_for(lambda: len(leader.recorder.of("elected")) == 2, 20, message="re-elected")
    assert [lead.epoch for lead in leader.recorder.of("elected")] == [epoch, epoch]
    assert leader.recorder.kinds() == ["elected", "revoked", "elected"]
    assert member_of(ens, leader.election.session.client) not in (None, member)


def test_tolerant_policy_keeps_leading_through_a_brief_suspension(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, candidates: Make
) -> None:
    ens = make_ensemble(3)
    leader = candidates(ens.hosts, zk_path, "leader", config=TOLERANT)
    epoch = leading(leader)
    client = leader.election.session.client
    member = member_of(ens, client)
    assert member is not None
    session = leader.election.session.session_id

    ens.kill(member)
    wait_for(
        lambda: client.connected and member_of(ens, client) not in (None, member),
        20,
        message="reconnect to another member",
    )
    assert leader.election.session.session_id == session
    assert leader.election.is_leader
    assert leader.recorder.kinds() == ["elected"]  # never revoked
    lead = leader.election.wait_for_leadership(0)
    assert lead is not None and lead.epoch == epoch and lead.is_valid()


def test_tolerant_leader_revokes_when_its_lease_runs_out(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, candidates: Make
) -> None:
    ens = make_ensemble(3)
    zk_leader = ens.leader_index()
    follower = next(i for i in range(3) if i != zk_leader)
    others = ",".join(ens.member_hosts(i) for i in range(3) if i != follower)
    leader = candidates(ens.member_hosts(follower), zk_path, "cut-off", config=TOLERANT)
    epoch = leading(leader)
    successor = candidates(others, zk_path, "successor")
    observer = KazooClient(hosts=others)
    observer.start(timeout=20)
    try:
        deleted = deletion_clock(observer, leader.election.node)  # type: ignore[arg-type]
        lead = leader.election.wait_for_leadership(0)
        assert lead is not None
        timeout = leader.election.session.session_timeout
        ens.pause(follower)  # the only member the leader knows goes silent
        try:
            wait_for(lambda: lead.lost.is_set(), 3 * timeout, message="lease expiry")
            # on_revoked runs on the callback thread, posted as lost is set: wait for it too.
            wait_for(lambda: "revoked" in leader.recorder.kinds(), 5, message="on_revoked")
            revoked_at = leader.recorder.time_of("revoked")
            last_ack = leader.election.session.lease.touched_at
            assert lead.reason == "lease_expired"
            assert last_ack is not None
            # The servers cannot expire the session before last_ack + timeout: we were earlier.
            assert revoked_at < last_ack + timeout
            assert deleted.wait(3 * timeout), "the servers never expired the session"
            assert lead.lost.is_set() and revoked_at < deleted.at  # type: ignore[attr-defined]
            assert leading(successor) > epoch
        finally:
            ens.resume(follower)
        wait_for(
            lambda: leader.election.node not in (None, lead.node_path),
            20,
            message="the cut-off candidate rejoins on a new session",
        )
        assert not leader.election.is_leader
    finally:
        observer.stop()
        observer.close()


def test_leader_behind_a_blackholed_link_revokes_before_its_session_expires(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        leader = candidates(proxy.address, zk_path, "behind-proxy")
        epoch = leading(leader)
        successor = candidates(ensemble.hosts, zk_path, "successor")
        observer = KazooClient(hosts=ensemble.hosts)
        observer.start(timeout=20)
        try:
            lead = leader.election.wait_for_leadership(0)
            assert lead is not None
            deleted = deletion_clock(observer, lead.node_path)
            proxy.blackhole(True)
            timeout = FAST.session_timeout
            assert deleted.wait(4 * timeout), "the servers never expired the session"
            assert lead.lost.is_set()
            assert leader.recorder.time_of("revoked") < deleted.at  # type: ignore[attr-defined]
            assert lead.reason in ("suspended", "lease_expired")
            assert leading(successor) > epoch
            proxy.blackhole(False)
            wait_for(
                lambda: leader.election.node not in (None, lead.node_path),
                20,
                message="rejoin after the partition heals",
            )
        finally:
            observer.stop()
            observer.close()


def test_deleted_election_path_is_recreated_and_rejoined(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    cands = [candidates(ensemble.hosts, zk_path, f"node-{i}") for i in range(3)]
    old = cands[0]
    old_epoch = leading(old)
    # Delete every candidate node and the path itself in one atomic step.
    txn = kazoo_client.transaction()
    for child in kazoo_client.get_children(zk_path):  # leader markers too (R13)
        txn.delete(f"{zk_path}/{child}")
    txn.delete(zk_path)
    assert all(result is True for result in txn.commit())

    wait_for(lambda: old.recorder.of("revoked"), 10, message="old leader revoked")
    assert old.recorder.of("revoked")[0] == "node_deleted"
    wait_for(
        lambda: (
            len(candidate_children(kazoo_client, zk_path)) == 3
            if kazoo_client.exists(zk_path)
            else False
        ),
        10,
        message="all three rejoin",
    )
    leader = wait_for(lambda: next((c for c in cands if c.election.is_leader), None), 10)
    lead = leader.election.wait_for_leadership(0)
    assert lead is not None and lead.epoch > old_epoch
    assert sum(c.election.is_leader for c in cands) == 1
