"""Leading again after a reconnect or a revocation (issue 12 items 5 and 7, R7).

Before a candidate that kept its node leads again it syncs and reads the children (a member
that lags behind must not show it first in a stale queue), then confirms the session with a
round trip sent after that decision. Seen in the test suite's chaos run before: a leader
whose session was being expired reconnected, read a stale queue and led again on the old
session while the next leader had already been elected (I2 violated).

And a candidate never waits on a node of its own create attempt: a create whose reply was
lost, missed by a look at a lagging member and made again, leaves such an orphan ahead of it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from election_support import candidate_children
from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, Leadership
from zkelect._election.nodes import new_node_prefix
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import OP_GET_CHILDREN2, OP_SYNC, FaultProxy

DEFAULTS = ElectionConfig()


def has_subsequence(items: list[int], wanted: list[int]) -> bool:
    it = iter(items)
    return all(any(item == want for item in it) for want in wanted)


@pytest.fixture
def proxy(ensemble: LocalEnsemble) -> Iterator[FaultProxy]:
    with FaultProxy(ensemble.member_hosts(0)) as started:
        yield started


def test_after_a_reconnect_it_syncs_reads_and_confirms_before_leading_again(
    proxy: FaultProxy, zk_path: str
) -> None:
    elected: list[tuple[Leadership, int]] = []  # with the proxy's request count at that time
    lock = threading.Lock()

    def on_elected(lead: Leadership) -> None:
        with lock:
            elected.append((lead, len(proxy.request_log)))

    election = Election(
        proxy.address, zk_path, candidate_id="leader", config=DEFAULTS, on_elected=on_elected
    )
    election.start()
    try:
        wait_for(lambda: elected, 30, message="elected")
        dropped_at = len(proxy.request_log)
        assert proxy.drop_connections() == 1  # kazoo reconnects, on the same session
        wait_for(lambda: len(elected) == 2, 30, message="elected again")
        (first, _), (again, seen) = elected
        assert again.epoch == first.epoch
        sent = proxy.request_log[dropped_at:seen]
        # sync, then the children, then a round trip sent after the decision to lead
        assert has_subsequence(sent, [OP_SYNC, OP_GET_CHILDREN2, OP_SYNC]), sent
    finally:
        election.stop()


def test_an_orphan_of_our_own_create_attempt_is_deleted_not_waited_on(
    kazoo_client: KazooClient, zk_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orphan is made by hand here (the lagging member that misses it cannot be made to
    lag on demand): a node of this session with this attempt's GUID, ahead of ours."""
    guid = uuid.uuid4()
    kazoo_client.create(
        f"{zk_path}/{new_node_prefix(str(guid))}",
        b"orphan",
        ephemeral=True,
        sequence=True,
        makepath=True,
    )
    election = Election(kazoo_client, zk_path, candidate_id="me", config=DEFAULTS)
    monkeypatch.setattr(uuid, "uuid4", lambda: guid)
    try:
        election.start()
        monkeypatch.undo()
        lead = election.wait_for_leadership(15)
        assert lead is not None
        assert candidate_children(kazoo_client, zk_path) == [lead.node_path.rsplit("/", 1)[1]]
    finally:
        monkeypatch.undo()
        election.stop()


def test_a_follower_that_reconnected_still_hears_its_predecessor_go(
    proxy: FaultProxy, ensemble: LocalEnsemble, zk_path: str
) -> None:
    # kazoo does not set watches again on a new connection (it has no SetWatches) and the
    # servers drop a connection's watches with it: after a reconnect on the same session, a
    # follower must set its watch again, or it never hears its predecessor leave.
    leader = Election(ensemble.hosts, zk_path, candidate_id="leader", config=DEFAULTS)
    follower = Election(proxy.address, zk_path, candidate_id="follower", config=DEFAULTS)
    leader.start()
    follower.start()
    try:
        wait_for(lambda: leader.is_leader, 30, message="leader")
        session = follower.session.session_id
        dropped_at = len(proxy.request_log)
        assert proxy.drop_connections() == 1  # kazoo reconnects, on the same session
        wait_for(
            lambda: OP_GET_CHILDREN2 in proxy.request_log[dropped_at:],
            30,
            message="the follower looked again after reconnecting",
        )
        assert follower.session.session_id == session and not follower.is_leader
        assert leader.resign() is True
        wait_for(lambda: follower.is_leader, 30, message="the follower leads after the leader")
    finally:
        follower.stop()
        leader.stop()
