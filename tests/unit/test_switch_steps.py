"""The candidacy's switchover steps (R14) with scripted answers: several candidacies on a
fake ZooKeeper, their actors run by hand. Who holds the request's watch, who steps back and
in which order, who says ready, and that the leader drains before its node goes. The same
protocol on real servers: tests/integration/test_switchover_core.py."""

from __future__ import annotations

import time

import pytest
from candidacy_support import PATH, Candidate, FakeZooKeeper

from zkelect._election.messages import Phase
from zkelect._election.nodes import election_order
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect.clock import ManualClock
from zkelect.config import ElectionConfig
from zkelect.fencing.leadership import Leadership

REQUEST = f"{PATH}/{REQUEST_NODE}"


@pytest.fixture
def zk() -> FakeZooKeeper:
    return FakeZooKeeper()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


def queue_of(
    zk: FakeZooKeeper, n: int, clock: ManualClock, config: ElectionConfig | None = None
) -> list[Candidate]:
    candidates = [Candidate(zk, clock, session_id=i + 1, config=config) for i in range(n)]
    for candidate in candidates:
        candidate.start().result(0)
    return candidates


def settle(candidates: list[Candidate], rounds: int = 20) -> None:
    """Run every actor until nothing is left to do (the re-queue's timer included)."""
    for _ in range(rounds):
        for candidate in candidates:
            candidate.advance(0.02)


def order(zk: FakeZooKeeper) -> list[str]:
    owners = {path.rsplit("/", 1)[1]: stat.ephemeral_owner for path, (_, stat) in zk.nodes.items()}
    return [f"c{owners[node.name]}" for node in election_order(zk.names())]


def ask(zk: FakeZooKeeper, target: Candidate, leader: Candidate) -> SwitchoverRequest:
    assert target.candidacy.node is not None and leader.candidacy.node is not None
    request = SwitchoverRequest.new(
        to=target.candidacy.node,
        to_id="",
        frm=leader.candidacy.node,
        reason="operator",
        by="test",
        now=time.time(),
        timeout=30,
    )
    zk.create_plain(REQUEST, owner=99, data=request.encode())
    return request


def state(zk: FakeZooKeeper) -> SwitchoverRequest:
    request = SwitchoverRequest.decode(zk.nodes[REQUEST][0])
    assert request is not None
    return request


def test_only_the_leader_and_its_deputy_hold_the_request_watch(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c, d = queue_of(zk, 4, clock)
    assert [x.request_watched() for x in (a, b, c, d)] == [True, True, False, False]


def test_the_ones_ahead_step_back_in_order_and_the_target_leads_after_the_drain(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c, d = queue_of(zk, 4, clock)
    drained: list[str] = []
    a.candidacy._on_draining = lambda lead, deadline: drained.append(
        "a drained" + ("" if lead.is_valid() else " after losing")
    )

    ask(zk, d, a)
    settle([a, b, c, d])

    # a accepted; b then c stepped back (re-queued behind d, in their order); d said ready;
    # a drained while still leading, then deleted its node; d led on the notice (R13).
    assert drained == ["a drained"]
    assert [x.candidacy.phase for x in (a, b, c, d)][3] is Phase.LEADING
    assert order(zk) == ["c4", "c2", "c3", "c1"]
    assert a.revoked == ["switchover"] and b.elected == [] and c.elected == []
    assert d.elected[0].epoch > a.elected[0].epoch
    assert state(zk).state is State.DRAINING  # the requester deletes it (not a candidate)
    assert [x.request_watched() for x in (d, b)] == [True, True]  # new leader, new deputy


def test_a_request_nobody_accepted_moves_nobody(zk: FakeZooKeeper, clock: ManualClock) -> None:
    a, b, c = queue_of(zk, 3, clock)
    request = ask(zk, c, a).moved(State.ACCEPTED, frm="_c_someone-else-latch-0000000099")
    zk.set_data(REQUEST, request.encode())  # accepted by a leader that is not ours

    settle([a, b, c])

    assert order(zk) == ["c1", "c2", "c3"] and a.revoked == []
    assert state(zk).state is State.ACCEPTED  # nobody moved it


def test_a_leader_refuses_a_target_that_is_not_behind_it(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b = queue_of(zk, 2, clock)
    request = ask(zk, b, a)
    zk.set_data(REQUEST, request.moved(State.REQUESTED, to="_c_gone-latch-0000000042").encode())

    settle([a, b])

    assert state(zk).state is State.REFUSED and "not a candidate" in (state(zk).refusal or "")
    assert order(zk) == ["c1", "c2"] and a.revoked == []


def test_withdrawn_before_the_drain_nothing_is_drained(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    a, b, c = queue_of(zk, 3, clock)
    drained: list[Leadership] = []
    a.candidacy._on_draining = lambda lead, deadline: drained.append(lead)
    zk.deny_delete = False
    ask(zk, c, a)
    a.pump()  # a accepts; b has not stepped back yet
    assert state(zk).state is State.ACCEPTED
    zk.delete(REQUEST)  # the requester gives up

    settle([a, b, c])

    assert drained == [] and a.revoked == [] and a.candidacy.phase is Phase.LEADING


def test_priority_asks_only_when_settled_best_and_higher(
    zk: FakeZooKeeper, clock: ManualClock
) -> None:
    def config(priority: int) -> ElectionConfig:
        return ElectionConfig(priority=priority, priority_settle=1.0, priority_interval=5.0)

    a, b = queue_of(zk, 2, clock, config(0))  # the leader's interval is the one that counts
    high = Candidate(zk, clock, session_id=7, config=config(3))
    high.start().result(0)
    assert "-p3-latch-" in (high.candidacy.node or "")

    high.advance(0.5)  # not settled yet
    assert REQUEST not in zk.nodes
    high.advance(0.6)  # settled: it asks; the leader, elected just now, refuses (interval)
    settle([a, b, high], rounds=3)
    assert a.revoked == [] and high.elected == []

    for _ in range(8):  # past the interval: it asks again, and this time it takes over
        clock.advance(1.0)
        for x in (a, b, high):
            x.session.timers.fire_due()
        settle([a, b, high], rounds=3)
    assert high.candidacy.phase is Phase.LEADING and a.revoked == ["switchover"]
    assert REQUEST not in zk.nodes  # it tidied its own request away
    assert order(zk)[0] == "c7"
