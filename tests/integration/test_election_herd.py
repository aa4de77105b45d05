"""R3: one watch per candidate, no children watch, and one candidate woken per change.

Checked on the servers with the four-letter words (wchc/mntr), not trusted from the client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from election_support import Candidate, candidate_children
from kazoo.client import KazooClient

from zkelect._election.nodes import LEADER_MARKER_PREFIX, election_order, leader_marker
from zkelect._election.switchover import REQUEST_NODE
from zkelect.metrics import NoopRecorder
from zkelect.testing import data_watches_by_session, fired_watch_counts, total_watches, wait_for
from zkelect.testing.ensemble import LocalEnsemble

N = 50


class CountingRecorder(NoopRecorder):
    """A metrics recorder counting how often an election looked at the path (woke up)."""

    def __init__(self) -> None:
        self.looks = 0

    def candidates_seen(self, election: str, count: int) -> None:
        self.looks += 1


def test_fifty_candidates_hold_one_watch_each_and_a_change_wakes_one(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    watches_before = total_watches(ensemble.hosts)
    recorders = [CountingRecorder() for _ in range(N)]
    cands = [
        candidates(ensemble.hosts, zk_path, f"node-{i:02d}", metrics=recorders[i]) for i in range(N)
    ]
    sessions = {c.election.session.session_id: c for c in cands}
    order = [n.name for n in election_order(candidate_children(kazoo_client, zk_path))]
    assert len(order) == N

    def settled() -> dict[int, list[str]] | None:
        watches = data_watches_by_session(ensemble.hosts)
        ours = {sid: paths for sid, paths in watches.items() if sid in sessions}
        return ours if len(ours) == N else None

    watches = wait_for(settled, 10, message="every candidate to hold its watch")
    request = f"{zk_path}/{REQUEST_NODE}"
    markers = 0
    for session_id, paths in watches.items():
        cand = sessions[session_id]
        nodes = [p for p in paths if LEADER_MARKER_PREFIX not in p and p != request]
        assert len(nodes) == 1, (cand.election.candidate_id, paths)  # one node watched each
        node = cand.election.node
        assert node is not None
        index = order.index(node.rsplit("/", 1)[1])
        expected = node if index == 0 else f"{zk_path}/{order[index - 1]}"
        assert nodes[0] == expected  # a follower watches its predecessor; the leader itself
        # ... and, until it appears, the predecessor's leader marker (R13): not the second
        # in line, whose look showed its predecessor first.
        marker = leader_marker(expected.rsplit("/", 1)[1])
        expected_markers = [] if index <= 1 else [f"{zk_path}/{marker}"]
        assert [p for p in paths if LEADER_MARKER_PREFIX in p] == expected_markers
        markers += len(expected_markers)
        # The switchover request (R14): watched by the leader and its deputy only.
        assert (request in paths) == (index <= 1), (cand.election.candidate_id, paths)
    # zk_watch_count includes child watches: N data watches on nodes, the markers' watches,
    # the request's two, and nothing else means no candidate watches the children.
    assert total_watches(ensemble.hosts) - watches_before == N + markers + 2

    leader = next(c for c in cands if c.election.is_leader)
    looks_before = [r.looks for r in recorders]
    fired_before = fired_watch_counts(ensemble.hosts)
    leader.election.resign()
    successor = wait_for(
        lambda: next((c for c in cands if c.election.is_leader), None), 10, message="successor"
    )
    assert successor.election.node == f"{zk_path}/{order[1]}"
    fired = fired_watch_counts(ensemble.hosts)
    woke = Counter(
        c.election.candidate_id
        for c, r, before in zip(cands, recorders, looks_before, strict=True)
        if r.looks != before and c is not leader
    )
    # The successor's look at joining showed the leader first, so the deletion notice alone
    # elected it (R13): nobody read the children, not even the successor.
    assert not woke
    # On the servers: the deleted node woke its successor and the resigning leader's own
    # watch on it; the new leader's marker woke the next in line (which reads nothing); no
    # children watch fired at all.
    wait_for(
        lambda: fired_watch_counts(ensemble.hosts)["created"] - fired_before["created"] == 1,
        10,
        message="the next in line told of the new leader's marker",
    )
    fired = fired_watch_counts(ensemble.hosts)
    assert fired["deleted"] - fired_before["deleted"] == 2
    assert fired["children"] == fired_before["children"]
    assert not [
        c
        for c, r, n in zip(cands, recorders, looks_before, strict=True)
        if c is not leader and r.looks != n
    ]
