"""A member that goes silent, at the default 10 s session timeout (issue 12 item 1, R12).

zkelect's lease heartbeat sends a ``sync`` every quarter of the session timeout, and kazoo
pings only after a third of it without sending anything: so kazoo never pinged, and never
noticed a silent member (a SIGSTOPped or GC-frozen server, a black-holed link). The lease
revoked leadership (correct), but the client stayed on the dead socket while its session
expired on the servers. A candidate must leave a silent member within kazoo's own bound
(2/3 of the session timeout), on the same session, keep its node, and lead again with the
same epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from election_support import Candidate
from kazoo.client import KazooClient

from zkelect import ElectionConfig
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

Make = Callable[..., Candidate]
DEFAULTS = ElectionConfig()  # what users run: a 10 s session timeout
TIMEOUT = DEFAULTS.session_timeout


def peer_port(client: KazooClient) -> int | None:
    """The port of the server (or proxy) the client is connected to now, if any."""
    try:
        return int(client._connection._socket.getpeername()[1])
    except (AttributeError, OSError):
        return None


def connected_elsewhere(client: KazooClient, silent_port: int) -> bool:
    return client.connected and peer_port(client) not in (None, silent_port)


@pytest.fixture
def proxies(ensemble: LocalEnsemble) -> Iterator[list[FaultProxy]]:
    """One FaultProxy per member of the session ensemble; all stopped at teardown."""
    started: list[FaultProxy] = []
    try:
        for i in range(ensemble.size):
            started.append(FaultProxy(ensemble.member_hosts(i)).start())
        yield started
    finally:
        for proxy in started:
            proxy.blackhole(False)
            proxy.stop()


def elected_again(cand: Candidate, timeout: float) -> list[int]:
    wait_for(lambda: len(cand.recorder.of("elected")) >= 2, timeout, message="elected again")
    return [lead.epoch for lead in cand.recorder.of("elected")]


def test_a_blackholed_member_is_left_for_another_on_the_same_session(
    proxies: list[FaultProxy], zk_path: str, candidates: Make
) -> None:
    hosts = ",".join(proxy.address for proxy in proxies)
    cand = candidates(hosts, zk_path, "leader", config=DEFAULTS)
    lead = cand.election.wait_for_leadership(30)
    assert lead is not None
    client = cand.election.session.client
    session_id, node = cand.election.session.session_id, cand.election.node
    silent = next(p for p in proxies if p.port == peer_port(client))

    silent.blackhole(True)
    began = time.monotonic()
    # Within the session timeout (else the servers expire the session: a new session id).
    wait_for(lambda: connected_elsewhere(client, silent.port), 2 * TIMEOUT, message="moved")
    moved = time.monotonic() - began
    assert cand.election.session.session_id == session_id
    epochs = elected_again(cand, 2 * TIMEOUT)
    assert epochs == [lead.epoch, lead.epoch]  # the same node, hence the same epoch
    assert cand.election.node == node
    assert cand.recorder.kinds()[:3] == ["elected", "revoked", "elected"]
    print(f"moved to another member {moved:.1f}s after the blackhole (timeout {TIMEOUT:g}s)")


def test_a_frozen_member_is_left_for_another_on_the_same_session(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, candidates: Make
) -> None:
    ens = make_ensemble(3)
    cand = candidates(ens.hosts, zk_path, "leader", config=DEFAULTS)
    follower = candidates(ens.hosts, zk_path, "follower", config=DEFAULTS)
    lead = cand.election.wait_for_leadership(30)
    assert lead is not None
    client = cand.election.session.client
    session_id = cand.election.session.session_id
    port = peer_port(client)
    frozen = next(i for i in range(ens.size) if ens.client_port(i) == port)

    ens.pause(frozen)  # SIGSTOP: the member holds its sockets open and answers nothing
    try:
        wait_for(lambda: connected_elsewhere(client, ens.client_port(frozen)), 2 * TIMEOUT)
        assert cand.election.session.session_id == session_id
        assert elected_again(cand, 2 * TIMEOUT) == [lead.epoch, lead.epoch]
        assert not follower.election.is_leader
        assert follower.recorder.kinds() == []
    finally:
        ens.resume(frozen)
