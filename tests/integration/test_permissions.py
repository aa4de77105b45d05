"""Permissions that are half right never wedge an election (issue 12 item 4, R11).

An ACL may let candidates create nodes in the election path but not delete them, or let
one candidate's node be unreadable to the others. Each permission error must surface as a
PermissionDeniedError from the call that hit it, and must never leave the election without
a leader while a candidate that can lead exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from election_support import Candidate, candidate_children
from kazoo.client import KazooClient
from kazoo.security import ACL, make_acl, make_digest_acl

from zkelect import PermissionDeniedError
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

Make = Callable[..., Candidate]
# Candidates may read and create in the path, but not delete from it.
NO_DELETE = [make_acl("world", "anyone", read=True, create=True, write=True, admin=True)]
EVERYTHING = [make_acl("world", "anyone", all=True)]


def create_locked(client: KazooClient, path: str, acl: list[ACL]) -> None:
    """``path`` with ``acl``; its parents open (kazoo's makepath would give them ``acl`` too,
    and lock every other test out of /t)."""
    client.ensure_path(path.rsplit("/", 1)[0])
    client.create(path, acl=acl)


@pytest.fixture
def make_client(ensemble: LocalEnsemble) -> Iterator[Callable[..., KazooClient]]:
    """Started KazooClients (``KazooClient(**kw)``), stopped and closed at teardown."""
    made: list[KazooClient] = []

    def make(**kw: object) -> KazooClient:
        client = KazooClient(hosts=ensemble.hosts, timeout=4.0, **kw)
        made.append(client)
        client.start(timeout=30)
        return client

    yield make
    for client in made:
        client.stop()
        client.close()


def test_resign_without_delete_permission_raises_and_keeps_leading(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, candidates: Make
) -> None:
    create_locked(kazoo_client, zk_path, NO_DELETE)
    leader = candidates(ensemble.hosts, zk_path, "leader")
    follower = candidates(ensemble.hosts, zk_path, "follower")
    lead = leader.election.wait_for_leadership(10)
    assert lead is not None

    with pytest.raises(PermissionDeniedError, match="DELETE"):
        leader.election.resign(timeout=10)  # before: a timeout, and nobody led again
    # The node stays first: its candidate leads again, with the same epoch.
    again = wait_for(lambda: leader.election.wait_for_leadership(0), 10, message="leads again")
    assert again.epoch == lead.epoch and again.node_path == lead.node_path
    assert not follower.election.is_leader

    leader.election.stop()  # an owned session: closing it deletes the node anyway
    assert follower.election.wait_for_leadership(10) is not None


def test_stop_of_a_shared_session_without_delete_permission_keeps_the_candidacy(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Make,
    make_client: Callable[..., KazooClient],
) -> None:
    create_locked(kazoo_client, zk_path, NO_DELETE)
    shared = make_client()
    leader = candidates(shared, zk_path, "leader")
    follower = candidates(ensemble.hosts, zk_path, "follower")
    lead = leader.election.wait_for_leadership(10)
    assert lead is not None

    # The shared session outlives the election: its node would block everyone for as long.
    with pytest.raises(PermissionDeniedError, match="DELETE"):
        leader.election.stop()
    again = wait_for(lambda: leader.election.wait_for_leadership(0), 10, message="leads again")
    assert again.epoch == lead.epoch
    assert not follower.election.is_leader

    kazoo_client.set_acls(zk_path, EVERYTHING)  # the operator fixes the ACL
    leader.election.stop()
    assert follower.election.wait_for_leadership(10) is not None
    assert candidate_children(shared, zk_path) == [follower.election.node.rsplit("/", 1)[1]]  # type: ignore[union-attr]


def test_an_unreadable_predecessor_is_watched_anyway(
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Make,
    make_client: Callable[..., KazooClient],
) -> None:
    """Each candidate's node is readable by its own identity only: its successor cannot
    read it (a get is refused), but may still watch it (exists is not ACL-checked)."""
    a_acl, b_acl = make_digest_acl("a", "pa", all=True), make_digest_acl("b", "pb", all=True)
    create_locked(kazoo_client, zk_path, [a_acl, b_acl])
    first = candidates(
        make_client(auth_data=[("digest", "a:pa")], default_acl=[a_acl]), zk_path, "a"
    )
    assert first.election.wait_for_leadership(10) is not None
    second = candidates(
        make_client(auth_data=[("digest", "b:pb")], default_acl=[b_acl]), zk_path, "b"
    )
    wait_for(lambda: second.election.node, 10, message="b joined")
    assert second.election.wait_for_leadership(0.5) is None  # waiting: not failed

    first.election.stop()
    assert second.election.wait_for_leadership(10) is not None
