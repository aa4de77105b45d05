"""The candidacy state machine (zkelect/_election/candidacy.py) driven by scripted answers.

These complement, never replace, the real-ZooKeeper tests (tests/integration): they pin the
steps' logic (who leads, which one watch each candidate holds, what a failure does) fast and
deterministically, with a ManualClock for every timer. See candidacy_support.py.
"""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from candidacy_support import PATH, Candidate, FakeZooKeeper

from zkelect._election.messages import (
    MarkerSeen,
    Phase,
    PredecessorGone,
    Resign,
    Retry,
    Stop,
    assert_never,
)
from zkelect._election.nodes import election_order, leader_marker, parse_node
from zkelect._zookeeper.outcomes import ConnectionState, Retryable
from zkelect.clock import ManualClock
from zkelect.errors import PermissionDeniedError


@pytest.fixture
def zk() -> FakeZooKeeper:
    return FakeZooKeeper()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def queue_of(zk: FakeZooKeeper, n: int, clock: ManualClock) -> list[Candidate]:
    candidates = [Candidate(zk, clock, session_id=i + 1) for i in range(n)]
    for candidate in candidates:
        candidate.start().result(0)
    return candidates


def test_the_first_node_leads_and_watches_its_own_node(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    (first,) = queue_of(zk, 1, clock)

    assert first.candidacy.phase is Phase.LEADING
    assert len(first.elected) == 1
    lead = first.elected[0]
    assert lead.node_path == first.node_path
    assert lead.epoch == zk.nodes[lead.node_path][1].czxid
    assert first.watched() == [first.node_path]  # its one watch: its own node
    assert first.request_watched()  # and the switchover request's path (R14)
    assert ("sync", "/") not in first.session.sent  # a first election needs no recheck


def test_a_follower_watches_only_its_immediate_predecessor(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c = queue_of(zk, 3, clock)

    assert [x.candidacy.phase for x in (a, b, c)] == [Phase.LEADING, Phase.WAITING, Phase.WAITING]
    assert b.watched() == [a.node_path]
    assert b.request_watched()  # the leader's deputy watches for a switchover (R14)
    assert c.watched() == [b.node_path]  # not the leader's: one watch, on the one ahead (R3)
    assert not c.request_watched()  # only the leader and its deputy watch the request
    assert not zk.child_watches  # nobody watches the children
    assert not b.elected and not c.elected


def test_the_predecessor_leaving_wakes_only_its_successor_which_leads(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c = queue_of(zk, 3, clock)
    c_handled = len(c.handled)
    assert a.node_path is not None

    listings = b.listings()
    zk.delete(a.node_path)  # the leader's session ends
    assert isinstance(b.mailbox[0], PredecessorGone)  # its look showed the leader first
    b.pump()

    assert b.candidacy.phase is Phase.LEADING
    assert b.listings() == listings  # elected on the notice, nothing read (R13)
    assert len(b.elected) == 1
    assert b.watched() == [b.node_path]
    # The next in line is told the new leader's marker exists (it reads no children); the
    # rest of the queue sleeps.
    assert [type(m) for m in c.mailbox] == [MarkerSeen] and len(c.handled) == c_handled
    c.pump()
    assert c.listings() == 1 and c.candidacy.phase is Phase.WAITING
    assert c.watched() == [b.node_path]


def test_suspended_while_leading_revokes_then_the_same_node_leads_again_after_a_sync(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    (a,) = queue_of(zk, 1, clock)
    node, epoch = a.node_path, a.elected[0].epoch

    a.session_state(ConnectionState.SUSPENDED)
    assert a.revoked == ["suspended"]
    assert a.elected[0].lost.is_set()
    assert a.candidacy.phase is Phase.WAITING  # still our node, not leading

    sent = len(a.session.sent)
    a.session_state(ConnectionState.CONNECTED)  # the same session: our node is still ours

    assert a.candidacy.phase is Phase.LEADING
    assert a.node_path == node
    assert [lead.epoch for lead in a.elected] == [epoch, epoch]  # same node, same epoch
    assert ("sync", "/") in a.session.sent[sent:]  # R7: re-checked through the leader first


def test_session_lost_while_leading_revokes_and_rejoins_with_a_new_node(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    (a,) = queue_of(zk, 1, clock)
    old_node, old_epoch = a.node_path, a.elected[0].epoch

    a.session_state(ConnectionState.LOST, session_id=None)
    assert a.revoked == ["session_lost"]
    assert a.candidacy.phase is Phase.NO_NODE  # the old session's node is not ours (R2)

    zk.expire(1)
    a.session_state(ConnectionState.CONNECTED, session_id=2)

    assert a.candidacy.phase is Phase.LEADING
    assert a.node_path != old_node
    assert a.elected[-1].epoch > old_epoch
    assert a.elected[-1].token.session_id == 2


def test_resign_deletes_the_node_and_rejoins_at_the_back(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b = queue_of(zk, 2, clock)
    old = a.node_path
    done: Future[bool] = Future()

    a.post(Resign(done))

    assert done.result(0) is True
    assert a.revoked == ["resigned"] and a.elected[0].lost.is_set()
    assert old not in zk.nodes
    b.pump()
    assert b.candidacy.phase is Phase.LEADING
    assert a.candidacy.phase is Phase.NO_NODE  # re-joins a moment later (requeue_delay)

    a.advance(0.01)

    assert a.candidacy.phase is Phase.WAITING
    assert election_order(zk.names())[-1].name == a.candidacy.node  # at the back
    assert a.watched() == [b.node_path]


@pytest.mark.parametrize("answered", ["deleted", "no answer"])
def test_a_stop_between_the_halves_of_a_resign_settles_its_delete(
    zk: FakeZooKeeper, clock: ManualClock, answered: str
) -> None:
    """Resign sends the delete and leaves its answer to a step of its own (ResignSent); a
    Stop already queued runs in between: the node is not the candidacy's any more, so the
    refused ResignSent settles it (an unanswered delete goes to the session, R11)."""
    a, b = queue_of(zk, 2, clock)
    old = a.node_path
    if answered == "no answer":
        a.session.fail("delete", Retryable("connection lost"))
    resigned: Future[bool] = Future()
    stopped: Future[None] = Future()
    a.candidacy.handle(Resign(resigned))  # the first half: the delete sent, ResignSent posted
    assert [type(m).__name__ for m in a.mailbox] == ["ResignSent"]
    a.standing.closing = True  # stop(), before its Stop is handled
    a.mailbox.appendleft(Stop(stopped))

    a.pump()

    assert resigned.result(0) is True and stopped.result(0) is None
    assert a.revoked == ["resigned"]
    if answered == "deleted":
        assert old not in zk.nodes and a.session.abandoned == []
        b.pump()
        assert b.candidacy.phase is Phase.LEADING
    else:
        assert a.session.abandoned == [old]  # the session deletes it once it can


def test_stop_while_leading_revokes_deletes_and_hands_over(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b = queue_of(zk, 2, clock)
    old = a.node_path
    a.standing.closing = True  # what Election.stop() sets before posting Stop
    done: Future[None] = Future()

    a.post(Stop(done))

    assert done.result(0) is None
    assert a.revoked == ["stopped"]
    assert old not in zk.nodes
    assert a.candidacy.phase is Phase.STOPPED
    b.pump()
    assert b.candidacy.phase is Phase.LEADING

    refused: Future[bool] = Future()
    a.post(Resign(refused))  # a stopped candidacy refuses what comes after
    assert refused.result(0) is False


def test_resign_without_delete_permission_keeps_leading_with_the_same_epoch(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b = queue_of(zk, 2, clock)
    node, epoch = a.node_path, a.elected[0].epoch
    zk.deny_delete = True
    done: Future[bool] = Future()

    a.post(Resign(done))

    with pytest.raises(PermissionDeniedError, match="DELETE"):
        done.result(0)
    assert a.node_path == node and node in zk.nodes  # the node stays first (R11)
    assert a.candidacy.phase is Phase.LEADING
    assert a.revoked == ["resigned"]
    assert [lead.epoch for lead in a.elected] == [epoch, epoch]
    assert b.candidacy.phase is Phase.WAITING


def test_stop_without_delete_permission_on_a_shared_session_stays_a_candidate(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    (a,) = queue_of(zk, 1, clock)
    zk.deny_delete = True
    a.standing.closing = True
    done: Future[None] = Future()

    a.post(Stop(done))

    with pytest.raises(PermissionDeniedError, match="cannot stop"):
        done.result(0)
    assert not a.standing.closing
    assert a.candidacy.phase is Phase.LEADING  # leads again rather than block the election


def test_a_create_whose_answer_was_lost_is_found_again_by_its_guid(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a = Candidate(zk, clock, session_id=1)
    a.session.fail("create", Retryable("connection loss"), landed=True)

    a.start().result(0)
    assert a.candidacy.phase is Phase.CREATING  # the create may have landed: uncertain
    assert len(zk.candidates()) == 1  # it did
    assert len(a.session.timers.pending) == 1  # a retry, on the clock

    a.advance(0.05)  # the longest first back-off

    assert a.candidacy.phase is Phase.LEADING
    assert len(zk.candidates()) == 1  # adopted, not created again (R1)
    assert a.node_path in zk.nodes
    created = [op for op in a.session.sent if op[0] == "create"]
    assert len(created) == 1
    looked = a.session.sent[a.session.sent.index(created[0]) + 1 :]
    assert looked[:2] == [("sync", "/"), ("children", "/election")]  # found after a sync
    found = parse_node(a.candidacy.node or "")
    assert found is not None and found.guid is not None


def test_a_transient_error_is_retried_only_when_the_clock_says_so(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a = Candidate(zk, clock, session_id=1)
    a.session.fail("listing", Retryable("connection loss"))

    a.start().result(0)
    assert a.candidacy.phase is Phase.WAITING  # our node exists; the look failed
    assert not a.elected

    a.advance(0.02)  # the first back-off is 0.025..0.05 s of the election's clock
    assert not a.elected
    assert not any(isinstance(m, Retry) for m in a.handled)

    a.advance(0.03)
    assert any(isinstance(m, Retry) for m in a.handled)
    assert a.candidacy.phase is Phase.LEADING


def test_an_unproven_lease_defers_leading_until_it_is_proven(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a = Candidate(zk, clock, session_id=1)
    a.session.lease_left = 0.0

    a.start().result(0)
    assert a.candidacy.phase is Phase.WAITING and not a.elected
    waiter = a.session.lease_waiters.pop(a.standing.key)

    a.session.lease_left = 10.0
    waiter()  # the heartbeat proved the session
    a.pump()
    assert a.candidacy.phase is Phase.LEADING


def test_assert_never_refuses_an_unknown_message() -> None:
    with pytest.raises(AssertionError, match="unhandled message"):
        assert_never("not a message")  # type: ignore[arg-type]


# -- R13: leading on the deletion notice -----------------------------------------------------


def resign(candidate: Candidate) -> None:
    done: Future[bool] = Future()
    candidate.post(Resign(done))
    assert done.result(0) is True


def marker_of(candidate: Candidate) -> str:
    assert candidate.candidacy.node is not None
    marker = leader_marker(candidate.candidacy.node)
    assert marker is not None
    return f"{PATH}/{marker}"


def test_the_leader_marker_lets_the_next_in_line_lead_on_the_notice(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c = queue_of(zk, 3, clock)
    # c's look (at its join) showed b behind the leader: c watches b and b's marker.
    assert c.watched() == [b.node_path] and c.marker_watches() == [marker_of(b)]
    resign(a)
    b.pump()  # on the notice: b's own look showed a first
    assert b.candidacy.phase is Phase.LEADING
    marker = marker_of(b)
    assert zk.nodes[marker][1].ephemeral_owner == b.session.session_id  # left by b's session
    c.pump()  # told of the marker: c reads its owner, not the children
    listings = c.listings()
    assert c.candidacy._watches.ahead_first and c.marker_watches() == []

    resign(b)

    assert marker not in zk.nodes  # deleted, after b's node
    c.pump()
    assert c.candidacy.phase is Phase.LEADING
    assert c.listings() == listings  # nothing read (R13)
    assert c.elected[-1].granted_zxid >= zk.nodes[c.node_path or ""][1].czxid


def test_a_middle_candidate_leaving_makes_its_successor_look_not_lead(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c = queue_of(zk, 3, clock)
    marker = marker_of(b)
    stop: Future[None] = Future()
    b.post(Stop(stop))  # b never led: no marker; c's watch on it is dropped
    stop.result(0)
    listings = c.listings()
    c.pump()
    assert c.candidacy.phase is Phase.WAITING and c.listings() == listings + 1
    assert c.watched() == [a.node_path]
    assert c.marker_watches() == [] and ("forget_watch", marker) in c.session.sent
    assert a.candidacy.phase is Phase.LEADING and a.revoked == []


def test_a_leader_elected_at_its_join_leaves_no_marker(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    """First when it joined: its node's ctime is when it was elected (zkelect status)."""
    (a,) = queue_of(zk, 1, clock)
    assert a.candidacy.phase is Phase.LEADING
    assert marker_of(a) not in zk.nodes


def test_a_leader_that_waited_leaves_a_marker_even_alone(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    """c waited behind a and b; both go before b could lead: c's look shows it alone, yet
    it leaves its marker, the one trace of when it was elected (R13, zkelect status)."""
    a, b, c = queue_of(zk, 3, clock)
    assert a.node_path is not None and b.node_path is not None
    zk.delete(a.node_path)
    zk.delete(b.node_path)  # b never led: c's predecessor was not known first
    c.pump()
    assert c.candidacy.phase is Phase.LEADING
    assert zk.names() == [c.candidacy.node, leader_marker(c.candidacy.node or "")]
    assert zk.nodes[marker_of(c)][1].ephemeral_owner == c.session.session_id


def test_a_leader_elected_at_its_join_gets_no_marker_when_it_leads_again(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    """Elected at its join, alone; then b joins behind it and a's connection drops and comes
    back (same session): a leads again with someone behind, but still leaves no marker, whose
    ctime would say it was elected at the reconnection (zkelect status)."""
    (a,) = queue_of(zk, 1, clock)
    b = Candidate(zk, clock, session_id=2)
    b.start().result(0)
    assert b.candidacy.phase is Phase.WAITING
    a.session_state(ConnectionState.SUSPENDED)
    a.pump()
    a.session_state(ConnectionState.CONNECTED)  # the same session
    a.pump()
    assert a.candidacy.phase is Phase.LEADING
    assert marker_of(a) not in zk.nodes


def test_the_marker_is_left_again_after_a_reconnection(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    """A marker create lost with the connection: the leader leaves it again once back."""
    a, b = queue_of(zk, 2, clock)
    resign(a)
    b.pump()
    marker = marker_of(b)
    zk.delete(marker)  # as if its create had been lost with the connection
    b.session_state(ConnectionState.SUSPENDED)
    b.pump()
    b.session_state(ConnectionState.CONNECTED)  # the same session
    b.pump()
    assert b.candidacy.phase is Phase.LEADING
    assert zk.nodes[marker][1].ephemeral_owner == b.session.session_id


def test_a_marker_of_another_session_is_not_trusted(zk: FakeZooKeeper, clock: ManualClock) -> None:
    a, b, c = queue_of(zk, 3, clock)
    zk.create_plain(marker_of(b), owner=99)  # someone else's session makes b's marker
    c.pump()
    assert not c.candidacy._watches.ahead_first
    stop: Future[None] = Future()
    b.post(Stop(stop))
    stop.result(0)
    c.pump()
    assert c.candidacy.phase is Phase.WAITING and c.watched() == [a.node_path]


def test_a_successor_whose_node_went_with_its_predecessor_is_revoked_at_once(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b = queue_of(zk, 2, clock)
    assert a.node_path is not None and b.node_path is not None
    del zk.nodes[b.node_path]  # b's node goes first, unwatched (the same transaction) ...
    zk.delete(a.node_path)  # ... then a's: b is told only of a's deletion
    b.pump()
    # b led on the notice with a node already gone, and its own-node get revoked it at once;
    # it then joined again and leads with a new node, a later epoch.
    assert b.revoked == ["node_deleted"]
    assert b.candidacy.phase is Phase.LEADING
    assert b.elected[-1].epoch > b.elected[0].epoch
    assert b.node_path in zk.nodes


def test_no_lease_no_leading_on_the_notice(zk: FakeZooKeeper, clock: ManualClock) -> None:
    a, b = queue_of(zk, 2, clock)
    assert a.node_path is not None
    b.session.lease_left = 0.0  # the session is not proven alive (R7)
    listings = b.listings()
    zk.delete(a.node_path)
    b.pump()
    assert b.candidacy.phase is Phase.WAITING and b.elected == []
    assert b.listings() == listings + 1  # fell back to the read, which waits for the lease
