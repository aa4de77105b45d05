"""The history checker of tests/integration/test_fast_handover.py can fail: fabricated
histories that break the invariant are caught, and the ones it allows are allowed
(tests/integration/history_support.check); the observer proves what it records."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kazoo.exceptions import NoNodeError

# The checker lives with the integration test that records the histories it judges.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from history_support import Belief, HistoryLog, NodeLife, PathObserver, check

A, B, C = 0x100, 0x105, 0x10A  # epochs: the czxids of the candidates' nodes
NAMES = {
    cand: f"_c_{cand * 8}-0000-0000-0000-000000000000-latch-{i:010d}"
    for i, cand in enumerate("abc", 1)
}
END = 100.0


def nodes(**last_seen: float) -> list[NodeLife]:
    """The nodes of a, b, c (czxids A, B, C, in this order), listed from 0 until the given
    times (default: until the end of the run)."""
    czxids = {"a": A, "b": B, "c": C}
    return [NodeLife(NAMES[c], czxids[c], 0.0, last_seen.get(c, END)) for c in "abc"]


def test_a_clean_handover_passes() -> None:
    beliefs = [Belief("a", A, 1.0, 2.0), Belief("b", B, 2.0, 3.0), Belief("c", C, 3.5, 4.0)]
    verdict = check(beliefs, nodes(a=1.99, b=2.99))
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


def test_an_overlap_is_allowed_only_when_a_node_was_not_listed_after_it_began() -> None:
    # a's node was last listed at 1.5 (path deletion); a learns late, at 2.5; b leads at 2.0.
    beliefs = [Belief("a", A, 1.0, 2.5), Belief("b", B, 2.0, 3.0)]
    allowed = check(beliefs, nodes(a=1.5))
    assert allowed.ok and len(allowed.overlaps) == 1 and allowed.forbidden == []
    # Listed after b's flip: both existed when the overlap began.
    assert not check(beliefs, nodes(a=2.1)).ok
    # The newer believer's node is the one already gone: allowed too (it learns late).
    assert check(beliefs, nodes(b=1.9)).ok


def test_a_node_the_observer_never_saw_proves_nothing_and_is_reported() -> None:
    beliefs = [Belief("a", A, 1.0, 2.5), Belief("b", 0x999, 2.0, 3.0)]
    verdict = check(beliefs, nodes())
    assert verdict.ok and verdict.unobserved == 1


def test_a_candidate_never_overlaps_itself() -> None:
    # Re-elected with the same node after a SUSPENDED revoke: one candidate, two beliefs.
    beliefs = [Belief("a", A, 1.0, 2.0), Belief("a", A, 1.9, 3.0)]
    assert check(beliefs, nodes()).overlaps == []


def test_epochs_that_go_back_are_caught() -> None:
    beliefs = [Belief("b", B, 1.0, 2.0), Belief("a", A, 3.0, 4.0)]
    verdict = check(beliefs, nodes(b=1.9))
    assert verdict.epoch_violations == [
        f"a was elected with epoch {A:#x} after b had led with the higher epoch {B:#x}"
    ]
    assert not verdict.ok


def test_a_late_believer_whose_node_is_gone_does_not_break_the_epoch_order() -> None:
    # a leads; the path goes at 2.0 with a's and b's nodes; c rejoins and leads from 3.0;
    # b learns only at 3.1 that it had been next: a stale believer with a lower epoch, which
    # the overlap check judges (allowed: its node is gone); live leaders' epochs increase.
    beliefs = [Belief("a", A, 1.0, 2.0), Belief("c", C, 3.0, 4.0), Belief("b", B, 3.1, 3.2)]
    verdict = check(beliefs, nodes(a=1.9, b=1.9))
    assert verdict.ok and len(verdict.overlaps) == 1 and verdict.epoch_violations == []


def test_a_leader_whose_node_is_not_first_is_caught() -> None:
    # a was revoked (suspended) but its node stayed: c must not lead behind it.
    beliefs = [Belief("a", A, 1.0, 2.0), Belief("c", C, 2.5, 3.0)]
    verdict = check(beliefs, nodes(a=2.6))
    assert not verdict.ok and verdict.overlaps == []
    assert verdict.not_first == [
        f"c became leader with {NAMES['c']} (epoch {C:#x}) while {NAMES['a']}, ahead of it, "
        "still existed (listed +0.1000 s from the flip)"
    ]
    # Once a's node (and b's) are no longer listed, c is first.
    assert check(beliefs, nodes(a=2.2, b=2.4)).ok


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


class FakeClient:
    """Just enough of a KazooClient for PathObserver.relist: children and czxids."""

    def __init__(self) -> None:
        self.children: dict[str, int] = {}
        self.path_czxid: int | None = 1

    def sync(self, path: str) -> str:
        return path

    def get_children(self, path: str, watch: Any, include_data: bool) -> Any:
        if self.path_czxid is None:
            raise NoNodeError
        return list(self.children), SimpleNamespace(czxid=self.path_czxid)

    def exists(self, path: str, watch: Any = None) -> Any:
        if path == "/e":
            return None if self.path_czxid is None else SimpleNamespace(czxid=self.path_czxid)
        czxid = self.children.get(path.rsplit("/", 1)[1])
        return None if czxid is None else SimpleNamespace(czxid=czxid)


def test_the_observer_extends_a_node_only_while_it_is_listed() -> None:
    client = FakeClient()
    observer = PathObserver(client, "/e")  # type: ignore[arg-type]
    client.children = {"n1": A}
    observer.relist()
    (n1,) = observer.nodes
    # Created before the listing's answer, there when it started: no interval proven yet.
    assert n1.czxid == A and n1.last_seen < n1.seen
    observer.relist()
    assert n1.existed_at(n1.seen) and n1.existed_at(n1.last_seen)  # listed again
    client.children = {"n2": B}
    observer.relist()
    proven = n1.last_seen
    observer.relist()
    assert n1.last_seen == proven and observer.alive() == ["n2"]
    # The path is deleted and re-created with a node of the same name: a new node.
    client.path_czxid, client.children = 9, {"n2": C}
    observer.relist()
    assert [(n.name, n.czxid) for n in observer.nodes] == [("n1", A), ("n2", B), ("n2", C)]
    client.path_czxid = None
    observer.relist()
    assert observer.alive() == [] and observer.listings == 6
