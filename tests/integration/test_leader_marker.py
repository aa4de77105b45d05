"""Leading on the deletion notice (R13), on real ZooKeeper: the leader marker that tells the
next in line, the chain of handovers it makes read-free, and what it must never do: elect a
successor whose predecessor was not first (a middle candidate leaving, a forged marker)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from election_support import Candidate, candidate_children
from kazoo.client import KazooClient

from zkelect._election.nodes import election_order, leader_marker, new_node_prefix
from zkelect._election.switchover import REQUEST_NODE
from zkelect.metrics import NoopRecorder
from zkelect.testing import data_watches_by_session, wait_for
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration
WAIT = 10.0


class Looks(NoopRecorder):
    """Counts an election's looks at the children (its metrics hook, once per look)."""

    def __init__(self) -> None:
        self.looks = 0

    def candidates_seen(self, election: str, count: int) -> None:
        self.looks += 1


def _queue(
    ensemble: LocalEnsemble, zk_path: str, candidates: Callable[..., Candidate], n: int
) -> list[tuple[Candidate, Looks]]:
    """``n`` candidates on their own sessions, joined in order (the first leads)."""
    made = []
    for i in range(n):
        looks = Looks()
        made.append((candidates(ensemble.hosts, zk_path, f"c{i}", metrics=looks), looks))
    wait_for(lambda: made[0][0].election.is_leader, WAIT, message="the first leads")
    return made


def _leader(queue: list[tuple[Candidate, Looks]]) -> tuple[Candidate, Looks]:
    return wait_for(
        lambda: next((c for c in queue if c[0].election.is_leader), None), WAIT, message="leader"
    )


def _name(candidate: Candidate) -> str:
    node = candidate.election.node
    assert node is not None
    return node.rsplit("/", 1)[1]


def _marker_path(zk_path: str, candidate: Candidate) -> str:
    marker = leader_marker(_name(candidate))
    assert marker is not None
    return f"{zk_path}/{marker}"


def test_a_chain_of_resigns_elects_each_successor_without_a_read(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    queue = _queue(ensemble, zk_path, candidates, 4)
    # The first leader was elected alone (no marker needed: every later look shows it
    # first); every later one on its predecessor's notice, and leaves a marker (R13).
    epochs = [_handover(queue, kazoo_client, zk_path, marker=i > 0) for i in range(8)]
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)


def _handover(
    queue: list[tuple[Candidate, Looks]], kazoo_client: KazooClient, zk_path: str, marker: bool
) -> int:
    """The leader resigns; its successor must lead without reading. The old leader's epoch."""
    leader, _ = _leader(queue)
    lead = leader.election.wait_for_leadership(0)
    assert lead is not None
    marker_path = _marker_path(zk_path, leader)
    if marker:  # the leader's marker exists, owned by its session; the next in line learns it
        stat = wait_for(
            lambda: kazoo_client.exists(marker_path), WAIT, message="the leader's marker"
        )
        assert stat.ephemeralOwner == leader.election.session.session_id
    order = [n.name for n in election_order(candidate_children(kazoo_client, zk_path))]
    successor, looks = next(c for c in queue if _name(c[0]) == order[1])
    wait_for(
        lambda: successor.election._candidacy._watches.ahead_first,
        WAIT,
        message="the next in line knows its predecessor leads",
    )
    looks_before = looks.looks
    assert leader.election.resign() is True
    wait_for(lambda: successor.election.is_leader, WAIT, message="the successor leads")
    assert looks.looks == looks_before  # elected on the notice: nothing read (R13)
    wait_for(
        lambda: not kazoo_client.exists(marker_path), WAIT, message="no marker of the old leader"
    )
    # Its node is created before the candidate takes the create's answer: wait for both.
    wait_for(
        lambda: (
            leader.election.node is not None
            and len(candidate_children(kazoo_client, zk_path)) == len(queue)
        ),
        WAIT,
        message="the old leader re-joined",
    )
    return lead.epoch


def test_a_middle_candidate_leaving_never_elects_its_successor(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    (a, _), (b, _), (c, c_looks) = _queue(ensemble, zk_path, candidates, 3)
    lead = a.election.wait_for_leadership(0)
    assert lead is not None
    # c waits behind b, which is not first: c holds a watch on b's marker, which never
    # appears; b leaves; c must look (and wait behind a), not lead.
    marker = _marker_path(zk_path, b)
    session_id = c.election.session.session_id or 0
    wait_for(
        lambda: marker in data_watches_by_session(ensemble.hosts).get(session_id, []),
        WAIT,
        message="c watches b's marker",
    )
    looks = c_looks.looks
    b.election.stop()
    wait_for(lambda: c_looks.looks > looks, WAIT, message="c looks again")
    assert not c.election.is_leader and a.election.is_leader and not lead.lost.is_set()
    # ... and drops its watch on the marker that never came (no watch outlives its use).
    session_id = c.election.session.session_id or 0
    # c's one watch on a node now: on a (and, a's deputy now, on a switchover's request: R14).
    now_watched = {f"{zk_path}/{_name(a)}", f"{zk_path}/{REQUEST_NODE}"}
    wait_for(
        lambda: set(data_watches_by_session(ensemble.hosts).get(session_id, [])) == now_watched,
        WAIT,
        message="c's watch on b's marker dropped",
    )
    assert a.election.resign() is True
    wait_for(lambda: c.election.is_leader, WAIT, message="c leads after a")


def test_a_forged_marker_does_not_elect_on_the_notice(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    (a, _), (b, _), (c, c_looks) = _queue(ensemble, zk_path, candidates, 3)
    lead = a.election.wait_for_leadership(0)
    assert lead is not None
    # Someone else's session creates b's marker: not owned by b's session, so not trusted.
    kazoo_client.create(_marker_path(zk_path, b), b"", ephemeral=True)
    looks = c_looks.looks
    b.election.stop()
    wait_for(lambda: c_looks.looks > looks, WAIT, message="c looks again")
    assert not c.election.is_leader and a.election.is_leader and not lead.lost.is_set()


def test_stop_leaves_no_marker_behind(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    (a, _), (b, _), (c, _) = _queue(ensemble, zk_path, candidates, 3)
    assert not kazoo_client.exists(_marker_path(zk_path, a))  # elected alone: no marker
    assert a.election.resign() is True  # b leads on the notice, and leaves a marker
    b_node, b_marker = _name(b), leader_marker(_name(b))
    wait_for(lambda: kazoo_client.exists(f"{zk_path}/{b_marker}"), WAIT, message="b's marker")
    b.election.stop()
    kazoo_client.sync(zk_path)
    children = kazoo_client.get_children(zk_path)
    assert b_node not in children and b_marker not in children  # stop waits for both
    wait_for(lambda: c.election.is_leader, WAIT, message="c leads")
    c.election.stop()
    a.election.stop()
    kazoo_client.sync(zk_path)
    assert kazoo_client.get_children(zk_path) == []


def test_a_leader_that_waited_leaves_a_marker_even_when_alone(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    """The marker's ctime is when a leader that waited was elected (``zkelect status``):
    c waits behind two nodes (made by hand: they never rejoin), both deleted in one
    transaction; c's look shows it alone, and it leaves its marker all the same."""
    ahead = [
        kazoo_client.create(
            f"{zk_path}/{new_node_prefix()}", b"x", ephemeral=True, sequence=True, makepath=True
        )
        for _ in range(2)
    ]
    c = candidates(ensemble.hosts, zk_path, "c")
    wait_for(lambda: c.election.node, WAIT, message="c joined")
    assert not c.election.is_leader
    transaction = kazoo_client.transaction()
    for node in ahead:
        transaction.delete(node)
    assert all(result is True for result in transaction.commit())
    wait_for(lambda: c.election.is_leader, WAIT, message="c leads, alone")
    assert candidate_children(kazoo_client, zk_path) == [_name(c)]
    stat = wait_for(
        lambda: kazoo_client.exists(_marker_path(zk_path, c)), WAIT, message="c's marker"
    )
    assert stat.ephemeralOwner == c.election.session.session_id
