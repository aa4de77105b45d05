"""What proves the lease on real servers (zkelect/_lease.py, docs/safety.md "The local lease")."""

from __future__ import annotations

from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig
from zkelect.testing.ensemble import LocalEnsemble

DEFAULTS = ElectionConfig()


def test_a_connect_proves_the_lease_from_its_send_time(
    ensemble: LocalEnsemble, zk_path: str
) -> None:
    election = Election(ensemble.hosts, zk_path, candidate_id="a", config=DEFAULTS).start()
    try:
        assert election.wait_for_leadership(10) is not None
        session = election.session
        sent = session.tap.connect_sent_at
        assert sent is not None and session.lease.touched_at is not None
        assert session.lease.touched_at >= sent  # a connect, or a later pair of answers
        assert session.session_timeout == DEFAULTS.session_timeout  # negotiated, read early
    finally:
        election.stop()


def test_a_client_connected_before_zkelect_saw_it_learns_the_report_delay(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    """Its connect was not seen: the lease needs two answers a report delay apart, and that
    delay is a quarter of the servers' shortest session, asked of the member (not a quarter
    of this session's 10 s timeout)."""
    election = Election(kazoo_client, zk_path, candidate_id="a", config=DEFAULTS).start()
    try:
        assert election.wait_for_leadership(10) is not None
        shortest = ensemble.min_session_timeout_ms / 1000
        assert election.session.report_delay() == shortest / 4
        assert election.session.lease_remaining() > 0
    finally:
        election.stop()
