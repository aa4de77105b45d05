"""The local lease (R7, zkelect/_lease.py): what proves a touch, with a manual clock.

Times are seconds on a ManualClock; T is the session timeout, m the margin ratio.
"""

from __future__ import annotations

import pytest

from zkelect import ConfigurationError, ElectionConfig, ManualClock
from zkelect._lease import Lease, lease_figures

T = 10.0
GAP = T / 4  # how late a follower may report a touch: half a tick, ticks <= T / 2


def make(clock: ManualClock, timeout: float = T, margin: float = 0.2) -> Lease:
    return Lease(clock, margin_ratio=margin, timeout=lambda: timeout, report_delay=lambda: GAP)


def round_trip(lease: Lease, clock: ManualClock, rtt: float = 0.01, session: int = 1) -> float:
    """A request through the leader sent now and answered ``rtt`` later; its send time."""
    sent = clock()
    clock.advance(rtt)
    lease.ack(sent, clock(), session, generation=1)
    return sent


def test_a_connection_proves_a_touch_after_its_request_was_sent() -> None:
    clock = ManualClock()
    lease = make(clock)
    sent = clock()
    clock.advance(0.05)  # the ConnectResponse arrives
    lease.connected(session_id=1, generation=1, sent_at=sent)
    assert lease.touched_at == sent
    assert lease.deadline() == pytest.approx(sent + 8.0)  # T * (1 - m)
    assert lease.successor_possible_at() == pytest.approx(sent + T)


def test_one_answer_alone_proves_nothing() -> None:
    # Its request may have waited in a buffer and reached the servers just before they
    # expired the session: a client that connected before we saw it has no lease yet.
    clock = ManualClock()
    lease = make(clock)
    lease.connected(session_id=1, generation=1, sent_at=None)
    round_trip(lease, clock)
    assert lease.remaining() == 0.0
    assert lease.successor_possible_at() is None


def test_a_second_answer_sent_a_report_delay_after_the_first_proves_the_first() -> None:
    clock = ManualClock()
    lease = make(clock)
    lease.connected(1, 1, None)
    first = round_trip(lease, clock)
    clock.advance(GAP - 0.02)
    second = round_trip(lease, clock)  # sent less than GAP after the first answer: not yet
    assert lease.remaining() == 0.0
    clock.advance(GAP - 0.01)
    round_trip(lease, clock)  # GAP after the first answer, not after the second's
    assert lease.touched_at == first
    assert lease.deadline() == pytest.approx(first + 8.0)
    clock.advance(0.02)
    round_trip(lease, clock)  # the newest partner counts
    assert lease.touched_at == second


def test_late_answers_after_a_silence_never_stretch_the_lease() -> None:
    """The bug of issue 12 item 5: buffered syncs answered just before the servers expire
    the session. Here the link is silent from 0 to 9.9 s; the requests sent meanwhile are
    answered the moment it heals, when the servers may be about to expire the session."""
    clock = ManualClock()
    lease = make(clock)
    lease.connected(1, 1, sent_at=clock())
    connected_at = clock()
    buffered = []
    for _ in range(3):  # heartbeats sent into the silence
        clock.advance(2.5)
        buffered.append(clock())
    clock.advance(9.9 - clock() + connected_at)
    for sent in buffered:  # all answered at once, late
        lease.ack(sent, clock(), 1, 1)
    assert lease.touched_at == connected_at  # nothing new proven
    assert lease.remaining() == 0.0  # 8 s after the connect: over
    # A request sent after those answers, answered, proves only the touches made by the
    # buffered ones (at the heal at the earliest, later than they were sent): the lease
    # counts from their send time, which is in the past.
    clock.advance(GAP)
    round_trip(lease, clock)
    assert lease.touched_at == buffered[-1]
    assert lease.deadline() == pytest.approx(buffered[-1] + 8.0)


def test_answers_of_another_session_or_connection_do_not_count() -> None:
    clock = ManualClock()
    lease = make(clock)
    lease.connected(1, 1, None)
    round_trip(lease, clock, session=1)
    clock.advance(GAP)
    lease.ack(clock(), clock(), 2, 1)  # another session
    lease.ack(clock(), clock(), 1, 7)  # another connection
    assert lease.remaining() == 0.0
    lease.connected(1, 2, None)  # reconnected: pairs only within one connection
    round_trip(lease, clock, session=1)
    assert lease.remaining() == 0.0


def test_a_new_session_forgets_the_old_ones_touches() -> None:
    clock = ManualClock()
    lease = make(clock)
    lease.connected(1, 1, clock())
    assert lease.remaining() > 0
    lease.reset(2)
    assert lease.remaining() == 0.0 and lease.touched_at is None


def test_a_reconnect_on_the_same_session_keeps_and_renews_the_lease() -> None:
    clock = ManualClock()
    lease = make(clock)
    lease.connected(1, 1, clock())
    clock.advance(3.0)
    sent = clock()
    lease.connected(1, 2, sent)  # revalidated with the ZooKeeper leader
    assert lease.touched_at == sent


def test_the_lease_follows_the_negotiated_timeout_once_known() -> None:
    clock = ManualClock()
    timeout = [60.0]  # requested; the servers negotiate it down
    lease = Lease(
        clock, margin_ratio=0.5, timeout=lambda: timeout[0], report_delay=lambda: timeout[0] / 4
    )
    lease.connected(1, 1, clock())
    assert lease.remaining() == pytest.approx(30.0)
    timeout[0] = 20.0
    assert lease.remaining() == pytest.approx(10.0)


def test_a_healthy_heartbeat_keeps_the_lease_within_its_figures() -> None:
    """Simulated steady state of session.py's heartbeat (sent a heartbeat interval after
    each answer) against lease_figures: what docs/safety.md states."""
    clock = ManualClock()
    lease = make(clock)
    figures = lease_figures(T, 0.2)
    lease.connected(1, 1, clock())
    rtt = 0.002
    lowest = highest = None
    for _ in range(40):
        clock.advance(figures.heartbeat)
        remaining_before = lease.remaining()
        round_trip(lease, clock, rtt)
        remaining_after = lease.remaining()
        lowest = remaining_before if lowest is None else min(lowest, remaining_before)
        highest = remaining_after
    assert highest == pytest.approx(figures.after_renewal - 2 * rtt, abs=1e-6)
    assert lowest == pytest.approx(figures.before_renewal - 2 * rtt, abs=1e-6)
    assert lowest > 0


@pytest.mark.parametrize(
    ("timeout", "margin", "heartbeat", "after", "before"),
    [
        (10.0, 0.2, None, 5.5, 3.0),  # the defaults
        (10.0, 0.2, 1.0, 5.0, 4.0),  # a faster heartbeat pairs with one 3 beats older
        (4.0, 0.2, None, 2.2, 1.2),  # 2 ticks of 2 s: the shortest session by default
    ],
)
def test_lease_figures(
    timeout: float, margin: float, heartbeat: float | None, after: float, before: float
) -> None:
    figures = lease_figures(timeout, margin, heartbeat)
    assert figures.after_renewal == pytest.approx(after)
    assert figures.before_renewal == pytest.approx(before)
    assert figures.margin == pytest.approx(timeout * margin)


def test_a_config_whose_lease_runs_out_between_heartbeats_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"at most 0\.4"):
        ElectionConfig(lease_margin_ratio=0.5)
    with pytest.raises(ConfigurationError, match="shorter heartbeat_interval"):
        ElectionConfig(heartbeat_interval=4.5)
    assert ElectionConfig(lease_margin_ratio=0.4).lease_margin_ratio == 0.4
