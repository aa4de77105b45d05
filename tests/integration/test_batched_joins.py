"""Batched joins (zkelect/_zookeeper/joins.py): the creates of start(wait=False) in
multi-ops, on real servers — missing election paths created in the same transaction,
epochs equal to the czxid the servers report, and every way a batch can fail (a path
created or deleted under it, a refused path, a lost answer) ending with each election
joined exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl, make_digest_acl

from zkelect import (
    DigestAuth,
    Election,
    ElectionAcl,
    ElectionConfig,
    PermissionDeniedError,
    kazoo_options,
)
from zkelect._zookeeper.options import kazoo_acl
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import OP_MULTI, FaultProxy

CONFIG = ElectionConfig(session_timeout=6.0, request_timeout=5.0, connect_timeout=20.0)


@pytest.fixture
def shared_client(ensemble: LocalEnsemble) -> Iterator[KazooClient]:
    """The one session many elections share (the batched joins are per session)."""
    client = KazooClient(hosts=ensemble.hosts, timeout=6.0)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def elect_all(elections: list[Election]) -> None:
    for election in elections:
        election.start(wait=False)


def stop_all(elections: list[Election]) -> None:
    for election in elections:
        election.stop()


def node_of(election: Election) -> str:
    node = election.node
    assert node is not None, f"{election.candidate_id} has no node"
    return node


def test_fresh_paths_are_created_with_the_candidates_and_epochs_are_czxids(
    shared_client: KazooClient, kazoo_client: KazooClient, zk_path: str
) -> None:
    fresh = [f"{zk_path}/fresh-{i}" for i in range(20)]
    # An existing path whose leader is someone else: ours must follow it.
    kazoo_client.create(f"{zk_path}/taken", makepath=True)
    elder = Election(kazoo_client, f"{zk_path}/taken", candidate_id="elder", config=CONFIG)
    elder.start()
    assert elder.wait_for_leadership(10) is not None
    # Two of ours on one fresh path: the first submitted leads, the second follows.
    pair = [f"{zk_path}/pair", f"{zk_path}/pair"]
    paths = [*fresh, f"{zk_path}/taken", *pair]
    ours = [
        Election(shared_client, path, candidate_id=f"c{i}", config=CONFIG)
        for i, path in enumerate(paths)
    ]
    try:
        elect_all(ours)
        leaders = [*ours[: len(fresh)], ours[-2]]
        epoch_of = {}
        for election in leaders:
            lead = election.wait_for_leadership(20)
            assert lead is not None, election.path
            epoch_of[election.candidate_id] = lead.epoch
        followers = [ours[len(fresh)], ours[-1]]
        wait_for(lambda: all(e.node is not None for e in followers), 20, message="followers joined")
        assert not any(e.is_leader for e in followers)
        assert elder.is_leader

        session_id = shared_client.client_id[0]
        epochs = []
        for election in ours:
            node = node_of(election)
            children = candidate_children(kazoo_client, election.path)
            assert node.rsplit("/", 1)[1] in children, (election.candidate_id, node, children)
            _, stat = kazoo_client.get(node)
            assert stat.ephemeralOwner == session_id
            if election in leaders:
                # the zxid of the multi that created it, as the servers report it
                assert epoch_of[election.candidate_id] == stat.czxid
                epochs.append(stat.czxid)
            # exactly one node per election, no orphan of a retried batch
            assert len(candidate_children(kazoo_client, election.path)) == (
                2 if election.path in (f"{zk_path}/taken", f"{zk_path}/pair") else 1
            )
        # Batched: far fewer transactions than elections created the fresh nodes.
        assert len(set(epochs)) < len(leaders) / 2, epochs
    finally:
        stop_all(ours)
        elder.stop()
    for path in paths:
        assert candidate_children(kazoo_client, path) == []  # every node deleted on stop


def test_a_path_created_or_deleted_under_the_batcher_is_learnt_again(
    shared_client: KazooClient, kazoo_client: KazooClient, zk_path: str
) -> None:
    # The batcher lists zk_path once while joining "a"; "b" and "c" change afterwards.
    first = Election(shared_client, f"{zk_path}/a", candidate_id="a", config=CONFIG)
    known = Election(shared_client, f"{zk_path}/c", candidate_id="c-old", config=CONFIG)
    elect_all([first, known])
    assert first.wait_for_leadership(20) is not None
    assert known.wait_for_leadership(20) is not None
    known.stop()
    # "b" appears with a leader of its own: thought missing, so our create of the path
    # fails with NodeExists and the batch goes again.
    rival = Election(kazoo_client, f"{zk_path}/b", candidate_id="rival", config=CONFIG)
    rival.start()
    assert rival.wait_for_leadership(10) is not None
    # "c" is known to exist but is deleted: our create fails with NoNode, the path is
    # created again.
    kazoo_client.delete(f"{zk_path}/c", recursive=True)
    late = [
        Election(shared_client, f"{zk_path}/b", candidate_id="b", config=CONFIG),
        Election(shared_client, f"{zk_path}/c", candidate_id="c", config=CONFIG),
    ]
    try:
        elect_all(late)
        assert late[1].wait_for_leadership(20) is not None
        wait_for(lambda: late[0].node is not None, 20, message="b joined behind the rival")
        assert rival.is_leader and not late[0].is_leader
        assert len(candidate_children(kazoo_client, f"{zk_path}/b")) == 2
        assert len(candidate_children(kazoo_client, f"{zk_path}/c")) == 1
    finally:
        stop_all([*late, first])
        rival.stop()


def test_a_refused_path_fails_its_elections_only(
    shared_client: KazooClient, kazoo_client: KazooClient, zk_path: str
) -> None:
    locked = f"{zk_path}/locked"
    kazoo_client.ensure_path(zk_path)
    kazoo_client.create(
        locked,
        acl=[
            make_digest_acl("owner", "secret", all=True),
            make_acl("world", "anyone", read=True),
        ],
    )
    refused = Election(shared_client, locked, candidate_id="stranger", config=CONFIG)
    welcome = [
        Election(shared_client, f"{zk_path}/open-{i}", candidate_id=f"w{i}", config=CONFIG)
        for i in range(5)
    ]
    try:
        elect_all([refused, *welcome])
        for election in welcome:
            assert election.wait_for_leadership(20) is not None
        with pytest.raises(PermissionDeniedError):
            refused.wait_for_leadership(20)
        assert candidate_children(kazoo_client, locked) == []
    finally:
        stop_all([refused, *welcome])


def test_a_lost_multi_answer_is_found_again_not_orphaned(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        client = KazooClient(hosts=proxy.address, timeout=6.0)
        client.start(timeout=30)
        elections = [
            Election(client, f"{zk_path}/e{i}", candidate_id=f"e{i}", config=CONFIG)
            for i in range(10)
        ]
        try:
            fault = proxy.drop_reply_once(opcodes=(OP_MULTI,))
            elect_all(elections)
            assert fault.wait(20) and fault.err == 0  # the servers applied the multi
            for election in elections:
                assert election.wait_for_leadership(30) is not None, election.path
            for election in elections:
                children = candidate_children(kazoo_client, election.path)
                assert children == [node_of(election).rsplit("/", 1)[1]]
        finally:
            stop_all(elections)
            client.stop()
            client.close()


def test_batched_paths_and_nodes_carry_the_election_acl(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    owner = DigestAuth("owner", "s3cret")
    acl = ElectionAcl(writers=[owner])
    kazoo_client.ensure_path(zk_path)  # a shared parent, created open beforehand
    client = KazooClient(hosts=ensemble.hosts, timeout=6.0, **kazoo_options(auth=owner, acl=acl))
    client.start(timeout=30)
    elections = [
        Election(client, f"{zk_path}/s{i}", candidate_id=f"s{i}", config=CONFIG, acl=acl)
        for i in range(5)
    ]
    try:
        elect_all(elections)
        for election in elections:
            assert election.wait_for_leadership(20) is not None
        expected = sorted((a.id.scheme, a.id.id, a.perms) for a in kazoo_acl(acl))
        for election in elections:
            for path in (election.path, node_of(election)):
                # read as the owner: servers show others "x" for the digest (needs ADMIN)
                acls, _ = client.get_acls(path)
                assert sorted((a.id.scheme, a.id.id, a.perms) for a in acls) == expected
            with pytest.raises(NoAuthError):  # a stranger cannot join a batched path
                kazoo_client.create(f"{election.path}/_c_x-latch-", ephemeral=True, sequence=True)
    finally:
        stop_all(elections)
        client.stop()
        client.close()
