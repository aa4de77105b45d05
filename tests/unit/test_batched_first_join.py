"""A batched first join (``Start(first, batched=True)``, what ``AsyncElection.start`` posts):
its ``first`` future is answered once the batched create's answer is taken, with the
terminal error if there is one, and at once if the candidacy stops first. Scripted session
(candidacy_support.py)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from candidacy_support import Candidate, FakeZooKeeper

from zkelect._election.messages import Start, Stop
from zkelect._zookeeper.joins import JoinOutcome
from zkelect.clock import ManualClock
from zkelect.errors import PermissionDeniedError


@pytest.fixture
def candidate() -> Candidate:
    return Candidate(FakeZooKeeper(), ManualClock(), session_id=1)


def batched_start(candidate: Candidate) -> Future[None]:
    assert candidate.session.join_slots.acquire(blocking=False)  # as AsyncElection.start
    first: Future[None] = Future()
    candidate.post(Start(first, batched=True))
    return first


def test_answered_once_the_batched_create_is_answered(candidate: Candidate) -> None:
    first = batched_start(candidate)
    assert not first.done() and candidate.candidacy.node is None
    candidate.session.joins.tickets[0].settle()
    candidate.pump()
    assert first.result(0) is None
    assert candidate.candidacy.node is not None and candidate.elected


def test_a_terminal_error_is_its_answer(candidate: Candidate) -> None:
    first = batched_start(candidate)

    def refused() -> JoinOutcome:
        raise PermissionDeniedError("no CREATE on the election path")

    ticket = candidate.session.joins.tickets[0]
    ticket._run = refused
    ticket.settle()
    candidate.pump()
    with pytest.raises(PermissionDeniedError):
        first.result(0)
    assert candidate.standing.failure is not None


def test_stopped_before_the_answer_it_is_answered_at_once(candidate: Candidate) -> None:
    first = batched_start(candidate)
    done: Future[None] = Future()
    candidate.post(Stop(done))
    assert first.result(0) is None and done.result(0) is None


def test_a_start_refused_after_stopping_gives_its_slot_back_and_is_answered(
    candidate: Candidate,
) -> None:
    done: Future[None] = Future()
    candidate.standing.closing = True  # stop() began
    candidate.post(Stop(done))
    first = batched_start(candidate)
    assert first.result(0) is None
    for _ in range(8):  # every slot is free again
        assert candidate.session.join_slots.acquire(blocking=False)
