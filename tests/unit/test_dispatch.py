"""The injected clock reaches every timer (zkelect/_dispatch.py, zkelect/clock.py).

A ManualClock drives the session's ``Timers`` thread and the retry pause of a fenced
write's error path: nothing fires until the test advances the clock, then it fires at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from candidacy_support import Candidate, FakeZooKeeper

from zkelect._dispatch import Timers
from zkelect._zookeeper.outcomes import Retryable
from zkelect.clock import ManualClock, monotonic_clock, sleep
from zkelect.testing import wait_for


def test_timers_fire_on_the_manual_clock_when_it_is_advanced() -> None:
    clock = ManualClock()
    timers = Timers("test", clock)
    fired = threading.Event()
    try:
        timers.call_later(30.0, fired.set)  # thirty seconds of the clock, not of the wall
        clock.advance(29.0)
        assert not fired.wait(0.05)
        clock.advance(1.0)
        assert fired.wait(5.0)
    finally:
        timers.shutdown()


def test_timers_keep_their_order_on_the_manual_clock() -> None:
    clock = ManualClock()
    timers = Timers("test", clock)
    order: list[int] = []
    try:
        timers.call_later(2.0, lambda: order.append(2))
        timers.call_later(1.0, lambda: order.append(1))
        clock.advance(5.0)
        wait_for(lambda: len(order) == 2, 5.0, message="both timers fire")
        assert order == [1, 2]
    finally:
        timers.shutdown()


def test_timers_on_the_real_clock_read_time_monotonic_itself() -> None:
    timers = Timers("test")
    fired = threading.Event()
    try:
        assert timers._now is not monotonic_clock  # no wrapper call per timer
        timers.call_later(0.0, fired.set)
        assert fired.wait(5.0)
    finally:
        timers.shutdown()


def test_sleep_on_a_manual_clock_returns_once_advanced() -> None:
    clock = ManualClock()
    woke = threading.Event()
    thread = threading.Thread(target=lambda: (sleep(clock, 0.05), woke.set()), daemon=True)
    thread.start()
    assert not woke.wait(0.05)
    clock.advance(0.05)
    assert woke.wait(5.0)


def test_manual_clock_refuses_to_go_back() -> None:
    with pytest.raises(ValueError, match="back"):
        ManualClock().advance(-1)


def test_a_fenced_writes_read_is_retried_on_the_elections_clock() -> None:
    """``Standing._once_answered`` pauses between tries on the injected clock."""
    zk, clock = FakeZooKeeper(), ManualClock()
    (leader,) = [Candidate(zk, clock, session_id=1)]
    leader.start().result(0)
    lead = leader.elected[0]
    leader.session.fail("exists", Retryable("connection loss"))
    answer: list[Any] = []
    reader = threading.Thread(
        target=lambda: answer.append(lead._node_gone(lead.node_path)), daemon=True
    )
    reader.start()
    wait_for(lambda: ("exists", lead.node_path) in leader.session.sent, 5.0, message="1st try")
    assert not answer  # pausing on the clock, which has not moved
    clock.advance(0.05)
    wait_for(lambda: answer, 5.0, message="the second try after the clock moved")
    assert answer == [False]  # our node is there
    assert leader.session.sent.count(("exists", lead.node_path)) == 2
