"""PrometheusRecorder, driven through the MetricsRecorder calls an Election makes, read back
through a fresh CollectorRegistry per test (exactly what a scrape would see)."""

from __future__ import annotations

import platform
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from zkelect import ConfigurationError, __version__
from zkelect.metrics import (
    DURATION_BUCKETS,
    SESSION_STATES,
    MetricsRecorder,
    NoopRecorder,
    PrometheusRecorder,
)

E = "/elections/controller"

# Every series one started election must have from the start, with its initial value.
INITIAL = {
    ("zkelect_is_leader", ()): 0.0,
    ("zkelect_leader_epoch", ()): 0.0,
    ("zkelect_candidates", ()): 0.0,
    ("zkelect_sequence_wrapped", ()): 0.0,
    ("zkelect_lease_remaining_seconds", ()): 0.0,
    ("zkelect_leadership_transitions_total", (("event", "acquired"),)): 0.0,
    ("zkelect_leadership_transitions_total", (("event", "lost"),)): 0.0,
    ("zkelect_leadership_transitions_total", (("event", "resigned"),)): 0.0,
    ("zkelect_fenced_writes_total", (("result", "accepted"),)): 0.0,
    ("zkelect_fenced_writes_total", (("result", "rejected"),)): 0.0,
    ("zkelect_session_state", (("state", "connected"),)): 0.0,
    ("zkelect_session_state", (("state", "suspended"),)): 0.0,
    ("zkelect_session_state", (("state", "lost"),)): 0.0,
    ("zkelect_session_transitions_total", (("state", "connected"),)): 0.0,
    ("zkelect_session_transitions_total", (("state", "suspended"),)): 0.0,
    ("zkelect_session_transitions_total", (("state", "lost"),)): 0.0,
    ("zkelect_election_duration_seconds_count", ()): 0.0,
    ("zkelect_election_duration_seconds_sum", ()): 0.0,
}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, election: str = E, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"election": election, **labels})


def series(
    registry: CollectorRegistry, prefix: str = "zkelect_"
) -> list[tuple[str, dict[str, str]]]:
    return [
        (s.name, s.labels)
        for metric in registry.collect()
        for s in metric.samples
        if s.name.startswith(prefix)
    ]


def test_is_a_metrics_recorder_and_noop_stays_the_default(registry: CollectorRegistry) -> None:
    recorder: MetricsRecorder = PrometheusRecorder(registry)
    assert recorder is not None
    noop: MetricsRecorder = NoopRecorder()
    noop.election_started(E)  # does nothing, raises nothing


def test_every_series_exists_from_election_started(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    assert series(registry, "zkelect_is_leader") == []  # nothing before an election starts
    recorder.election_started(E)
    for (name, labels), initial in INITIAL.items():
        assert value(registry, name, **dict(labels)) == initial, (name, labels)
    for bound in (*DURATION_BUCKETS, float("inf")):
        le = "+Inf" if bound == float("inf") else repr(bound)
        assert value(registry, "zkelect_election_duration_seconds_bucket", le=le) == 0.0


def test_transitions_gauges_and_duration(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    recorder.session_state(E, "connected")
    recorder.candidates_seen(E, 3)
    recorder.leadership_acquired(E, 0x100000007, 0.003)
    assert value(registry, "zkelect_is_leader") == 1.0
    assert value(registry, "zkelect_leader_epoch") == float(0x100000007)
    assert value(registry, "zkelect_candidates") == 3.0
    assert value(registry, "zkelect_leadership_transitions_total", event="acquired") == 1.0
    assert value(registry, "zkelect_election_duration_seconds_bucket", le="0.0025") == 0.0
    assert value(registry, "zkelect_election_duration_seconds_bucket", le="0.005") == 1.0
    assert value(registry, "zkelect_election_duration_seconds_sum") == pytest.approx(0.003)

    # 'resigned' and 'stopped' are this process's choice; every other reason is a loss.
    for reason, event in [("resigned", "resigned"), ("stopped", "resigned"),
                          ("suspended", "lost"), ("session_lost", "lost"),
                          ("lease_expired", "lost"), ("node_deleted", "lost")]:  # fmt: skip
        before = value(registry, "zkelect_leadership_transitions_total", event=event)
        assert before is not None
        recorder.leadership_acquired(E, 0x100000008, 1.5)
        recorder.leadership_lost(E, reason)
        after = value(registry, "zkelect_leadership_transitions_total", event=event)
        assert after == before + 1, reason
        assert value(registry, "zkelect_is_leader") == 0.0
    # The epoch of the most recent leadership stays visible after it ended.
    assert value(registry, "zkelect_leader_epoch") == float(0x100000008)
    assert value(registry, "zkelect_election_duration_seconds_count") == 7.0

    recorder.fenced_write(E, "accepted")
    recorder.fenced_write(E, "accepted")
    recorder.fenced_write(E, "rejected")
    assert value(registry, "zkelect_fenced_writes_total", result="accepted") == 2.0
    assert value(registry, "zkelect_fenced_writes_total", result="rejected") == 1.0


def test_sequence_wrapped_follows_the_last_look(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    NoopRecorder().sequence_wrapped(E, True)  # does nothing, raises nothing
    recorder.sequence_wrapped(E, True)  # before the election started: no series
    assert value(registry, "zkelect_sequence_wrapped") is None
    recorder.election_started(E)
    assert value(registry, "zkelect_sequence_wrapped") == 0.0
    for wrapped in (True, True, False, True):
        recorder.sequence_wrapped(E, wrapped)
        assert value(registry, "zkelect_sequence_wrapped") == (1.0 if wrapped else 0.0)
    recorder.election_stopped(E)
    recorder.sequence_wrapped(E, True)  # a late callback cannot bring the series back
    assert value(registry, "zkelect_sequence_wrapped") is None


def test_session_state_is_one_hot(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    for current in ("connected", "suspended", "lost", "connected"):
        recorder.session_state(E, current)
        for state in SESSION_STATES:
            expected = 1.0 if state == current else 0.0
            assert value(registry, "zkelect_session_state", state=state) == expected
    recorder.session_state(E, "bogus")  # ignored (logged), not a new series
    assert value(registry, "zkelect_session_state", state="bogus") is None
    assert value(registry, "zkelect_session_state", state="connected") == 1.0


def test_session_transitions_count_changes_by_the_state_entered(
    registry: CollectorRegistry,
) -> None:
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    # The first report says where the session is; a repeated state is no change.
    for state in ("connected", "connected", "suspended", "connected", "suspended", "lost"):
        recorder.session_state(E, state)
    recorder.session_state(E, "connected")  # a new session after the loss
    changes = {
        state: value(registry, "zkelect_session_transitions_total", state=state)
        for state in SESSION_STATES
    }
    assert changes == {"connected": 2.0, "suspended": 2.0, "lost": 1.0}
    recorder.session_state("/not/started", "lost")  # no election here: nothing
    assert series(registry, "zkelect_session_transitions") == [
        ("zkelect_session_transitions_total", {"election": E, "state": state})
        for state in SESSION_STATES
    ]


def test_aggregate_session_transitions_stay_three_series(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry, aggregate=True)
    names = [f"/shard/{i}" for i in range(100)]
    for name in names:
        recorder.election_started(name)
        recorder.session_state(name, "connected")
    for name in names:  # one shared session suspended and back: each election counts once
        recorder.session_state(name, "suspended")
        recorder.session_state(name, "connected")
    rows = [labels for name, labels in series(registry, "zkelect_session_transitions")]
    assert sorted(r["state"] for r in rows) == sorted(SESSION_STATES)
    assert {r["election"] for r in rows} == {"*"}
    assert value(registry, "zkelect_session_transitions_total", "*", state="suspended") == 100.0
    assert value(registry, "zkelect_session_transitions_total", "*", state="connected") == 100.0


def child_value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_child_series_only_for_a_supervisor_and_from_the_start(
    registry: CollectorRegistry,
) -> None:
    PrometheusRecorder(registry)
    assert series(registry, "zkelect_child_") == []  # a library process has no child
    registry = CollectorRegistry()
    PrometheusRecorder(registry, supervisor=True)
    assert child_value(registry, "zkelect_child_up") == 0.0
    assert child_value(registry, "zkelect_child_starts_total") == 0.0
    assert child_value(registry, "zkelect_child_last_exit_timestamp_seconds") == 0.0
    # A code's series appears with its first exit: 256 possible, none invented up front.
    assert series(registry, "zkelect_child_exits") == []


def test_child_up_starts_exits_by_code_and_last_exit(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry, supervisor=True)
    recorder.child_started()
    assert child_value(registry, "zkelect_child_up") == 1.0
    recorder.child_exited(3, at=1_700_000_000.5)
    recorder.child_started()
    recorder.child_exited(3, at=1_700_000_010.0)
    recorder.child_started()
    recorder.child_exited(143, at=1_700_000_020.0)  # stopped by SIGTERM: 128+15
    recorder.child_started()
    assert child_value(registry, "zkelect_child_up") == 1.0
    assert child_value(registry, "zkelect_child_starts_total") == 4.0
    assert child_value(registry, "zkelect_child_exits_total", code="3") == 2.0
    assert child_value(registry, "zkelect_child_exits_total", code="143") == 1.0
    assert child_value(registry, "zkelect_child_last_exit_timestamp_seconds") == 1_700_000_020.0
    recorder.child_exited(300, at=1_700_000_030.0)  # impossible status: logged, not a series
    assert [labels["code"] for _, labels in series(registry, "zkelect_child_exits")] == [
        "3",
        "143",
    ]
    assert child_value(registry, "zkelect_child_up") == 0.0


def test_lease_gauge_reads_the_callable_at_collection_time(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    remaining = [7.5]
    calls = []

    def lease() -> float:
        calls.append(1)
        return remaining[0]

    recorder.lease_source(E, lease)
    assert calls == []  # registering reads nothing
    assert value(registry, "zkelect_lease_remaining_seconds") == 7.5
    remaining[0] = 0.25
    assert value(registry, "zkelect_lease_remaining_seconds") == 0.25
    remaining[0] = -1.0  # never below 0
    assert value(registry, "zkelect_lease_remaining_seconds") == 0.0

    def broken() -> float:
        raise RuntimeError("session gone")

    recorder.lease_source(E, broken)  # a failing source reads as 0 and breaks no scrape
    assert value(registry, "zkelect_lease_remaining_seconds") == 0.0
    assert value(registry, "zkelect_is_leader") == 0.0


def test_stopped_election_is_removed_and_late_callbacks_cannot_resurrect_it(
    registry: CollectorRegistry,
) -> None:
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    recorder.election_started("/other")
    recorder.leadership_acquired(E, 42, 0.01)
    recorder.leadership_lost(E, "stopped")
    recorder.election_stopped(E)
    assert all(labels.get("election") != E for _, labels in series(registry))
    # A callback from another thread that lost the race with stop():
    recorder.leadership_acquired(E, 43, 0.01)
    recorder.session_state(E, "connected")
    recorder.candidates_seen(E, 2)
    recorder.sequence_wrapped(E, True)
    recorder.lease_source(E, lambda: 5.0)
    assert value(registry, "zkelect_is_leader") is None
    assert all(labels.get("election") != E for _, labels in series(registry))
    assert value(registry, "zkelect_is_leader", election="/other") == 0.0

    # Joining again starts from zero (Prometheus sees an ordinary counter reset).
    recorder.election_started(E)
    assert value(registry, "zkelect_leadership_transitions_total", event="acquired") == 0.0


def test_epoch_zero_acquisition_counts_but_does_not_claim_leadership(
    registry: CollectorRegistry,
) -> None:
    # The election reports epoch 0 when the leadership ended before it read the epoch; the
    # loss may already have been recorded, so is_leader must not flip back to 1.
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    recorder.leadership_lost(E, "suspended")
    recorder.leadership_acquired(E, 0, 0.01)
    assert value(registry, "zkelect_is_leader") == 0.0
    assert value(registry, "zkelect_leadership_transitions_total", event="acquired") == 1.0


def test_two_candidates_of_one_path_share_series_until_both_stop(
    registry: CollectorRegistry,
) -> None:
    recorder = PrometheusRecorder(registry)
    recorder.election_started(E)
    recorder.election_started(E)
    recorder.election_stopped(E)
    assert value(registry, "zkelect_is_leader") == 0.0
    recorder.election_stopped(E)
    assert value(registry, "zkelect_is_leader") is None
    recorder.election_stopped(E)  # one stop too many: harmless


def test_fenced_writes_count_without_a_local_election(registry: CollectorRegistry) -> None:
    # A fenced store may live in a process that takes part in no election.
    recorder = PrometheusRecorder(registry)
    recorder.fenced_write(E, "rejected")
    assert value(registry, "zkelect_fenced_writes_total", result="rejected") == 1.0
    assert value(registry, "zkelect_fenced_writes_total", result="accepted") == 0.0
    assert value(registry, "zkelect_is_leader") is None


def test_aggregate_mode_bounds_cardinality_with_1000_elections(
    registry: CollectorRegistry,
) -> None:
    recorder = PrometheusRecorder(registry, aggregate=True)
    before = series(registry)
    assert before  # the "*" series exist before any election
    assert {labels.get("election") for _, labels in before} == {"*", None}  # None: build_info
    names = [f"/shard/{i:04d}" for i in range(1000)]
    for i, name in enumerate(names):
        recorder.election_started(name)
        recorder.session_state(name, "suspended" if i % 10 == 0 else "connected")
        recorder.candidates_seen(name, 3)
        recorder.sequence_wrapped(name, i % 100 == 7)  # 10 of them
        recorder.lease_source(name, lambda i=i: 5.0 + i)
    led = names[100:350]  # 250 led
    for i, name in enumerate(led):
        recorder.leadership_acquired(name, 1000 + i, 0.002)
    for name in led[:50]:
        recorder.leadership_lost(name, "resigned")
    recorder.leadership_lost(led[50], "session_lost")
    after = series(registry)
    assert sorted(map(repr, after)) == sorted(map(repr, before))  # the same series, no more

    def agg(name: str, **labels: str) -> float | None:
        return value(registry, name, election="*", **labels)

    assert agg("zkelect_is_leader") == 199.0
    assert agg("zkelect_candidates") == 3000.0
    assert agg("zkelect_sequence_wrapped") == 10.0
    assert agg("zkelect_leader_epoch") == 1249.0
    assert agg("zkelect_lease_remaining_seconds") == 5.0 + 151  # the minimum among leaders
    assert agg("zkelect_session_state", state="connected") == 900.0
    assert agg("zkelect_session_state", state="suspended") == 100.0
    assert agg("zkelect_session_state", state="lost") == 0.0
    assert agg("zkelect_leadership_transitions_total", event="acquired") == 250.0
    assert agg("zkelect_leadership_transitions_total", event="resigned") == 50.0
    assert agg("zkelect_leadership_transitions_total", event="lost") == 1.0
    assert agg("zkelect_election_duration_seconds_count") == 250.0

    # Stopping leaves the elections' gauge contributions; counters keep counting up.
    for name in names:
        recorder.election_stopped(name)
    assert agg("zkelect_is_leader") == 0.0
    assert agg("zkelect_candidates") == 0.0
    assert agg("zkelect_sequence_wrapped") == 0.0
    assert agg("zkelect_lease_remaining_seconds") == 0.0
    assert agg("zkelect_leadership_transitions_total", event="acquired") == 250.0


def test_exposition_round_trips_through_both_parsers(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    path = '/odd "name"\\with\nescapes'
    for name in (E, path):
        recorder.election_started(name)
        recorder.session_state(name, "connected")
        recorder.lease_source(name, lambda: 2.5)
    recorder.leadership_acquired(path, 0x200000001, 0.042)
    recorder.fenced_write(path, "accepted")
    expected = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for metric in registry.collect()
        for s in metric.samples
    }
    text = generate_latest(registry).decode()
    parsed = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert parsed == expected
    families = {f.name: f.type for f in parse_openmetrics(generate_openmetrics(registry).decode())}
    assert families["zkelect_leadership_transitions"] == "counter"
    assert families["zkelect_election_duration_seconds"] == "histogram"
    assert families["zkelect_is_leader"] == "gauge"


def test_build_info(registry: CollectorRegistry) -> None:
    PrometheusRecorder(registry)
    [(_, labels)] = series(registry, "zkelect_build_info")
    assert labels["version"] == __version__
    assert labels["python_version"] == platform.python_version()
    assert labels["kazoo_version"][0].isdigit()
    assert registry.get_sample_value("zkelect_build_info", labels) == 1.0


def test_namespace_registry_and_bad_input(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    with pytest.raises(ConfigurationError, match="share one PrometheusRecorder"):
        PrometheusRecorder(registry)
    other = PrometheusRecorder(registry, namespace="svc_zk")  # its own names: no clash
    other.election_started(E)
    assert value(registry, "svc_zk_is_leader") == 0.0
    recorder.unregister()
    PrometheusRecorder(registry)  # the names are free again
    for bad in ("", "zk-elect", "1zk", "a b"):
        with pytest.raises(ConfigurationError, match="namespace"):
            PrometheusRecorder(CollectorRegistry(), namespace=bad)


def test_callbacks_from_many_threads_while_scraping(registry: CollectorRegistry) -> None:
    recorder = PrometheusRecorder(registry)
    names = [f"/e/{i}" for i in range(8)]
    for name in names:
        recorder.election_started(name)
    rounds = 1000
    stop = threading.Event()
    errors: list[BaseException] = []

    def flap(name: str) -> None:
        try:
            for i in range(rounds):
                recorder.leadership_acquired(name, i + 1, 0.001)
                recorder.candidates_seen(name, i)
                recorder.leadership_lost(name, "suspended")
                recorder.fenced_write(name, "accepted")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def scrape() -> None:
        while not stop.is_set():
            generate_latest(registry)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workers = [threading.Thread(target=flap, args=(name,)) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    scraper.join()
    assert errors == []
    for name in names:
        assert value(registry, "zkelect_is_leader", election=name) == 0.0
        for event in ("acquired", "lost"):
            total = value(registry, "zkelect_leadership_transitions_total", name, event=event)
            assert total == rounds
        assert value(registry, "zkelect_fenced_writes_total", name, result="accepted") == rounds
