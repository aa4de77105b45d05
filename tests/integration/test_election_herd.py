"""R3: one watch per candidate, no children watch, and one candidate woken per change.

Checked on the servers with the four-letter words (wchc/mntr), not trusted from the client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from election_support import Candidate
from kazoo.client import KazooClient

from zkelect._election.nodes import election_order
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
    order = [n.name for n in election_order(kazoo_client.get_children(zk_path))]
    assert len(order) == N

    def settled() -> dict[int, list[str]] | None:
        watches = data_watches_by_session(ensemble.hosts)
        ours = {sid: paths for sid, paths in watches.items() if sid in sessions}
        return ours if len(ours) == N else None

    watches = wait_for(settled, 10, message="every candidate to hold its watch")
    for session_id, paths in watches.items():
        cand = sessions[session_id]
        assert len(paths) == 1, (cand.election.candidate_id, paths)  # exactly one watch each
        node = cand.election.node
        assert node is not None
        index = order.index(node.rsplit("/", 1)[1])
        expected = node if index == 0 else f"{zk_path}/{order[index - 1]}"
        assert paths[0] == expected  # a follower watches its predecessor; the leader itself
    # zk_watch_count includes child watches: N data watches and nothing else means no
    # candidate watches the children of the election path.
    assert total_watches(ensemble.hosts) - watches_before == N

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
    assert list(woke) == [successor.election.candidate_id]  # one candidate woken, not N-1
    # On the servers: the deleted node woke its successor and the resigning leader's own
    # watch on it; no children watch fired at all.
    assert fired["deleted"] - fired_before["deleted"] == 2
    assert fired["children"] == fired_before["children"]
