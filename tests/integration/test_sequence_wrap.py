"""A candidate reports ZooKeeper's sequence-counter wrap itself: one warning in its log per
change of the verdict, and the ``zkelect_sequence_wrapped`` gauge (docs/safety.md, "Ordering
across the sequence wrap"). ``zkelect status``, ``doctor`` and the exporter are tested with
their commands (test_cli_inspect.py, test_cli_doctor.py, test_exporter.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from election_support import Candidate, hand_numbered
from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from zkelect.metrics import PrometheusRecorder
from zkelect.testing.ensemble import LocalEnsemble

WAIT = 20.0


def test_a_candidate_logs_and_exports_a_wrapped_counter(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="zkelect")
    # The first node after the counter wraps (made by hand, a real ephemeral contender).
    wrapped = hand_numbered(kazoo_client, zk_path, -(2**31), b"curator-peer")
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)
    election = {"election": zk_path}

    a = candidates(ensemble.hosts, zk_path, "node-a", metrics=recorder)
    # zkelect's order puts node-a's node (numbered 1) first, string order the wrapped one.
    assert a.election.wait_for_leadership(WAIT) is not None
    # The look that elected node-a reported the wrap before it flipped to leader.
    assert registry.get_sample_value("zkelect_sequence_wrapped", election) == 1.0
    node_a = (a.election.node or "").rsplit("/", 1)[1]
    warnings = [r.getMessage() for r in caplog.records if "has wrapped" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"puts {wrapped} first where zkelect elects {node_a}" in warnings[0]

    # The wrapped node leaves; the next look (node-b joining, same recorder) clears the gauge.
    kazoo_client.delete(f"{zk_path}/{wrapped}")
    candidates(ensemble.hosts, zk_path, "node-b", metrics=recorder)
    assert registry.get_sample_value("zkelect_sequence_wrapped", election) == 0.0
