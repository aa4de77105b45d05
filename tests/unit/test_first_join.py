"""A blocking start()'s first join, made on the caller's thread (_joining.join_first) and
taken by the candidacy's actor, driven by scripted answers (candidacy_support.py).

The real-ZooKeeper side (the multi that creates the path with the node, NodeExists races,
ACLs, lost answers) is tests/integration/test_batched_joins.py.
"""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from candidacy_support import Candidate, FakeZooKeeper

from zkelect._election.messages import Phase, Start
from zkelect._zookeeper.outcomes import ConnectionState, Retryable
from zkelect.clock import ManualClock
from zkelect.errors import PermissionDeniedError


@pytest.fixture
def zk() -> FakeZooKeeper:
    return FakeZooKeeper()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_alone_on_a_fresh_path_it_leads_without_reading_the_children(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a = Candidate(zk, clock, session_id=1)

    joined = a.start_blocking()

    assert joined.error is None and joined.created is not None
    assert a.candidacy.phase is Phase.LEADING
    assert a.elected and a.elected[0].node_path == a.node_path
    # No listing, no children read, no leader marker (nobody behind: R13); the own-node watch.
    # The create, the get that watches our own node, the exists that watches for a
    # switchover request (R14): no read of the children.
    assert [op for op, _ in a.session.sent] == ["create", "get", "exists"]


def test_behind_another_it_uses_the_read_sent_with_its_create(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b = Candidate(zk, clock, session_id=1), Candidate(zk, clock, session_id=2)
    a.start_blocking()

    b.start_blocking()

    assert b.candidacy.phase is Phase.WAITING
    assert b.watched() == [a.node_path]  # its one watch: its immediate predecessor (R3)
    assert [op for op, _ in b.session.sent].count("listing") == 1  # read once, with the create


def test_a_lost_answer_is_found_again_by_its_guid(zk: FakeZooKeeper, clock: ManualClock) -> None:
    a = Candidate(zk, clock, session_id=1)
    a.session.fail("create", Retryable("connection loss"), landed=True)

    joined = a.start_blocking()

    assert isinstance(joined.error, Retryable)
    assert a.candidacy.phase is Phase.CREATING  # it may have landed (it did): uncertain (R1)
    a.advance(0.05)  # the longest first back-off
    assert a.candidacy.phase is Phase.LEADING
    assert zk.candidates() == [a.node_path]  # adopted, not created again
    assert a.candidacy.node is not None and joined.guid in a.candidacy.node


def test_a_refused_create_fails_the_candidacy(zk: FakeZooKeeper, clock: ManualClock) -> None:
    a = Candidate(zk, clock, session_id=1)
    a.session.fail("create", PermissionDeniedError("no CREATE"))

    joined = a.start_blocking()

    assert isinstance(joined.error, PermissionDeniedError)  # what start() raises
    assert a.candidacy.phase is Phase.STOPPED
    assert not zk.nodes


def test_a_node_of_a_session_lost_before_its_answer_was_taken_is_not_adopted(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a = Candidate(zk, clock, session_id=1)
    joined = a.candidacy.join_first()  # answered on session 1 ...
    zk.expire(1)  # ... which expires before the actor takes it
    a.session.session_id = 2
    a.session.state = ConnectionState.CONNECTED

    a.post(Start(Future(), joined))

    assert a.candidacy.phase is Phase.LEADING
    assert a.candidacy.node_stat is not None
    assert a.candidacy.node_stat.ephemeral_owner == 2  # a node of its own session (R2)
    assert a.candidacy.node is not None and joined.guid not in a.candidacy.node
