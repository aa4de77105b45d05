"""The local lease arithmetic (R7) and the fencing token's text form, with a manual clock."""

from __future__ import annotations

import pytest

from zkelect import ConfigurationError, FencingToken, ManualClock
from zkelect.session import Lease


def test_lease_counts_from_the_send_time_of_the_last_answered_request() -> None:
    clock = ManualClock()
    lease = Lease(clock, margin_ratio=0.2, timeout=lambda: 10.0)
    lease.reset(session_id=7)
    assert lease.remaining() == 0.0  # nothing answered yet: no lease
    sent = clock()
    clock.advance(1.0)  # the reply arrives a second later
    lease.ack(sent, 7)
    # The servers cannot expire the session before sent + 10 s; we stop 2 s earlier.
    assert lease.deadline() == pytest.approx(sent + 8.0)
    assert lease.remaining() == pytest.approx(7.0)
    clock.advance(7.0)
    assert lease.remaining() == 0.0


def test_late_reply_to_an_old_request_does_not_move_the_lease_back() -> None:
    clock = ManualClock()
    lease = Lease(clock, margin_ratio=0.25, timeout=lambda: 4.0)
    lease.reset(1)
    first = clock()
    clock.advance(2.0)
    second = clock()
    lease.ack(second, 1)
    lease.ack(first, 1)
    assert lease.last_ack == second


def test_acks_of_another_session_do_not_count() -> None:
    clock = ManualClock()
    lease = Lease(clock, margin_ratio=0.2, timeout=lambda: 10.0)
    lease.reset(1)
    lease.ack(clock(), 1)
    lease.reset(2)  # session expired; a new one began
    assert lease.remaining() == 0.0
    lease.ack(clock(), 1)  # a reply sent on the old session
    assert lease.remaining() == 0.0
    lease.ack(clock(), 2)
    assert lease.remaining() == pytest.approx(8.0)


def test_token_orders_by_epoch_and_round_trips() -> None:
    older = FencingToken(0x100000004, "/e/x", "node:a", 0xABC)
    newer = FencingToken(0x100000009, "/e/x", "node-b", 0xDEF)
    assert older < newer and newer > older and older <= older
    assert FencingToken.parse(str(older)) == older
    assert FencingToken.parse(str(newer)) == newer


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zk1:1:2:3",
        "zk2:1:a:bm9kZQ:/x",
        "zk1:x:a:bm9kZQ:/x",
        "zk1:5:zz:bm9kZQ:/x",
        "zk1:5:a:bm9kZQ:relative",
        "zk1:0:a:bm9kZQ:/x",
        "zk1:5:a:%%%:/x",
    ],
)
def test_malformed_tokens_are_rejected(text: str) -> None:
    with pytest.raises(ConfigurationError):
        FencingToken.parse(text)


def test_lease_follows_the_negotiated_timeout_once_known() -> None:
    clock = ManualClock()
    timeout = [60.0]  # requested; the server will negotiate it down
    lease = Lease(clock, margin_ratio=0.5, timeout=lambda: timeout[0])
    lease.reset(1)
    lease.ack(clock(), 1)
    assert lease.remaining() == pytest.approx(30.0)
    timeout[0] = 20.0
    assert lease.remaining() == pytest.approx(10.0)


def test_slack_of_one_heartbeat_shortens_the_lease() -> None:
    clock = ManualClock()
    lease = Lease(clock, margin_ratio=0.2, timeout=lambda: 10.0, slack=lambda: 2.5)
    lease.reset(1)
    lease.ack(clock(), 1)
    # The leader may not have heard of the touch at t yet; it has heard of one <= 2.5 s older.
    assert lease.remaining() == pytest.approx(10.0 * 0.8 - 2.5)
