"""The history checker of tests/integration/test_fast_handover.py can fail: fabricated
histories that break the invariant are caught, and the ones it allows are allowed
(tests/integration/history_support.check)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# The checker lives with the integration test that records the histories it judges.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from history_support import Belief, HistoryLog, NodeLife, PathObserver, check

A, B, C = 0x100, 0x105, 0x10A  # epochs: the czxids of the candidates' nodes


def nodes(**deleted: float | None) -> list[NodeLife]:
    """Nodes a, b, c (czxids A, B, C), seen at 0; deleted at the given times (None: never)."""
    czxids = {"a": A, "b": B, "c": C}
    return [NodeLife(name, czxids[name], 0.0, deleted.get(name)) for name in "abc"]


def test_a_clean_handover_passes() -> None:
    beliefs = [Belief("a", A, 1.0, 2.0), Belief("b", B, 2.0, 3.0), Belief("c", C, 3.5, 4.0)]
    verdict = check(beliefs, nodes(a=2.0, b=3.0))
    assert verdict.ok and verdict.overlaps == []
    assert (verdict.leaderships, verdict.handovers) == (3, 2)


def test_two_leaders_whose_nodes_both_exist_are_forbidden() -> None:
    # The middle-leave bug: b's successor c elects itself while a still leads.
    beliefs = [Belief("a", A, 1.0, 5.0), Belief("c", C, 2.0, 3.0)]
    verdict = check(beliefs, nodes())
    assert not verdict.ok
    (overlap,) = verdict.forbidden
    assert (overlap.first.cand, overlap.second.cand) == ("a", "c")
    assert (overlap.start, overlap.end) == (2.0, 3.0)
    assert "FORBIDDEN" in verdict.summary()


def test_an_overlap_is_allowed_only_when_a_node_was_gone_before_it_began() -> None:
    # a's node was deleted at 1.5 (path deletion); a learns late, at 2.5; b leads from 2.0.
    beliefs = [Belief("a", A, 1.0, 2.5), Belief("b", B, 2.0, 3.0)]
    allowed = check(beliefs, nodes(a=1.5))
    assert allowed.ok and len(allowed.overlaps) == 1 and allowed.forbidden == []
    # Deleted only after b's flip: both existed when the overlap began.
    assert not check(beliefs, nodes(a=2.1)).ok
    # The newer believer's node is the one already gone: allowed too (it learns late).
    assert check(beliefs, nodes(b=1.9)).ok


def test_a_node_the_observer_never_saw_counts_as_gone_and_is_reported() -> None:
    beliefs = [Belief("a", A, 1.0, 2.5), Belief("b", 0x999, 2.0, 3.0)]
    verdict = check(beliefs, nodes())
    assert verdict.ok and verdict.unobserved == 1


def test_a_candidate_never_overlaps_itself() -> None:
    # Re-elected with the same node after a SUSPENDED revoke: one candidate, two beliefs.
    beliefs = [Belief("a", A, 1.0, 2.0), Belief("a", A, 1.9, 3.0)]
    assert check(beliefs, nodes()).overlaps == []


def test_epochs_that_go_back_are_caught() -> None:
    beliefs = [Belief("b", B, 1.0, 2.0), Belief("a", A, 3.0, 4.0)]
    verdict = check(beliefs, nodes(b=2.0))
    assert not verdict.ok
    assert verdict.epoch_violations == [
        f"a was elected with epoch {A:#x} after b had led with the higher epoch {B:#x}"
    ]


def test_a_late_believer_whose_node_is_gone_does_not_break_the_epoch_order() -> None:
    # a learnt at 3.0 that it had been first, but its node went at 2.5: a stale believer,
    # which the overlap check judges; the epochs of the live leaders still increase.
    beliefs = [Belief("b", B, 1.0, 2.0), Belief("a", A, 3.0, 3.1), Belief("c", C, 3.2, 4.0)]
    assert check(beliefs, nodes(a=2.5, b=2.0)).ok


def test_the_log_turns_flips_into_beliefs_with_their_node_names() -> None:
    log = HistoryLog()
    log.acquired("a", A)
    log.named("a", A, "/e/_c_x-latch-0000000001")
    log.lost("a", "resigned")
    log.acquired("b", B)
    (a, b) = sorted(log.beliefs(end=1e12), key=lambda x: x.cand)
    assert (a.cand, a.epoch, a.node, a.reason) == ("a", A, "_c_x-latch-0000000001", "resigned")
    assert a.start <= a.end
    assert (b.cand, b.end, b.reason) == ("b", 1e12, "(still leading)")


def test_a_deletion_the_driver_started_earlier_than_the_notice_wins() -> None:
    client: Any = None  # never used: the observer is not started
    observer = PathObserver(client, "/e")
    node = NodeLife("n1", A, 0.0, deleted=5.0)  # the observer's notice came at 5.0
    observer.nodes.append(node)
    observer.deleting(["/e/n1"], 4.0)
    assert node.deleted == 4.0
    observer.deleting(["/e/n1"], 4.5)  # a later hint never moves it back
    assert node.deleted == 4.0
