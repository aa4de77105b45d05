"""The read-only exporter on real ZooKeeper, against real zkelect, kazoo and Apache Curator peers.

Why each test exists:

* the exporter must name the leader and its epoch exactly as the candidates see them, for the
  three recipes operators actually run (zkelect, kazoo's Election, Curator's LeaderLatch from a
  real JVM built here against Debian's Curator jars), and follow every change;
* after ZooKeeper's sequence counter wraps, real Curator orders the candidates by the text of
  their numbers and zkelect does not: the exporter must say so (metric and log), since a mixed
  election then has two leaders or none;
* observing must not change anyone's election: no node is created, and the exporter's session
  holds at most one watch per path, checked on the servers (``wchc`` and ``mntr``), not in the
  client;
* ``zkelect exporter`` is what operators deploy: it must serve the metrics and its probes
  (404/405 as JSON for anything else), stop cleanly on SIGTERM and fail with one line and the
  documented exit codes.

Every process a test starts is stopped by PID in a ``finally``; waits have deadlines.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from curator_support import Lines, Peer, _die_with_test, stop_process
from election_support import Candidate, candidate_children, hand_numbered
from http_support import call
from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from zkelect._election.nodes import ContenderKind, leader_marker
from zkelect.ops.exporter import ElectionExporter, ObservedElection
from zkelect.testing import data_watches_by_session, expire_session, total_watches, wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
WAIT = 15.0  # generous deadline for anything that should take well under a second
CURATOR_NODE = re.compile(r"^_c_[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}-latch-\d{10}$")
KAZOO_NODE = re.compile(r"^[0-9a-f]{32}__lock__\d{10}$")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def exporters(ensemble: LocalEnsemble) -> Iterator[Callable[..., ElectionExporter]]:
    """``exporters(paths, **kw)``: a started exporter on its own session and registry (so its
    watches can be told apart on the servers); all are stopped and closed at teardown."""
    made: list[tuple[ElectionExporter, KazooClient]] = []

    def make(paths: list[str], **kw: Any) -> ElectionExporter:
        client = KazooClient(hosts=ensemble.hosts, timeout=10.0)
        client.start(timeout=30)
        exporter = ElectionExporter(client, paths, CollectorRegistry(), **kw)
        made.append((exporter, client))
        return exporter.start()

    yield make
    for exporter, client in made:
        exporter.stop()
        client.stop()
        client.close()


def session_of(exporter: ElectionExporter) -> int:
    client_id = exporter.client.client_id
    assert client_id is not None
    return int(client_id[0])


def seen(exporter: ElectionExporter, path: str, **expected: object) -> ObservedElection:
    """Wait until the exporter's view of ``path`` has the ``expected`` attribute values."""

    def matches() -> ObservedElection | None:
        view = exporter.snapshot()[path]
        ok = all(getattr(view, name) == value for name, value in expected.items())
        return view if ok else None

    try:
        return wait_for(matches, WAIT, message=f"exporter seeing {expected} at {path}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last view: {exporter.snapshot()[path]}") from None


def samples(exporter: ElectionExporter, name: str) -> list[tuple[dict[str, str], float]]:
    """The (labels, value) of every sample ``name`` in the exporter's registry, as scraped."""
    text = generate_latest(exporter.registry).decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def reads_at_least(exporter: ElectionExporter, path: str, count: int) -> None:
    wait_for(lambda: exporter.snapshot()[path].reads >= count, WAIT, message=f"{count} reads")


def czxid(client: KazooClient, znode: str) -> int:
    return int(client.get(znode)[1].czxid)


# --------------------------------------------------------------------------- 1. zkelect


def test_follows_a_zkelect_election(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
    exporters: Callable[..., ElectionExporter],
    zk_path: str,
) -> None:
    a = candidates(ensemble.hosts, zk_path, "zk-a")
    lead_a = a.election.wait_for_leadership(WAIT)
    assert lead_a is not None
    b = candidates(ensemble.hosts, zk_path, "zk-b")
    exporter = exporters([zk_path], refresh_interval=0.3)

    first = seen(exporter, zk_path, leader_id="zk-a", candidates=2)
    assert a.election.node is not None
    assert first.epoch == lead_a.epoch == czxid(kazoo_client, a.election.node)
    assert first.kind is ContenderKind.LATCH and first.changes == 0
    election = {"election": zk_path}
    assert samples(exporter, "zkelect_observed_leader") == [({**election, "leader_id": "zk-a"}, 1)]
    assert samples(exporter, "zkelect_observed_leader_epoch") == [(election, first.epoch)]
    assert samples(exporter, "zkelect_observed_has_leader") == [(election, 1)]
    assert samples(exporter, "zkelect_observed_candidates") == [(election, 2)]
    assert samples(exporter, "zkelect_observed_sequence_wrapped") == [(election, 0)]
    assert samples(exporter, "zkelect_observed_leader_changes_total") == [(election, 0)]

    # A resign hands over to zk-b: one change, a higher epoch, the old series gone.
    assert a.election.resign(WAIT)
    lead_b = b.election.wait_for_leadership(WAIT)
    assert lead_b is not None
    second = seen(exporter, zk_path, leader_id="zk-b", changes=1)
    assert second.epoch == lead_b.epoch > lead_a.epoch
    # One leader series at a time: the old leader's is gone.
    assert samples(exporter, "zkelect_observed_leader") == [({**election, "leader_id": "zk-b"}, 1)]
    assert samples(exporter, "zkelect_observed_leader_changes_total") == [(election, 1)]

    # Stopping zk-b hands back to zk-a, which re-queued with a new node after resigning.
    b.election.stop()
    lead_a2 = a.election.wait_for_leadership(WAIT)
    assert lead_a2 is not None
    third = seen(exporter, zk_path, leader_id="zk-a", changes=2, candidates=1)
    assert third.epoch == lead_a2.epoch > lead_b.epoch

    # The last candidate leaves: no leader; the epoch metric keeps the last leader's.
    a.election.stop()
    gone = seen(exporter, zk_path, has_leader=False, candidates=0)
    assert gone.changes == 2 and gone.last_epoch == lead_a2.epoch and gone.epoch is None
    assert samples(exporter, "zkelect_observed_has_leader") == [(election, 0)]
    assert samples(exporter, "zkelect_observed_leader") == []
    assert samples(exporter, "zkelect_observed_leader_epoch") == [(election, lead_a2.epoch)]
    assert samples(exporter, "zkelect_observer_connected") == [({}, 1)]


# --------------------------------------------------------------------------- 2. kazoo


def test_follows_a_kazoo_election(
    kazoo_client: KazooClient,
    exporters: Callable[..., ElectionExporter],
    zk_path: str,
) -> None:
    leaders: queue.SimpleQueue[str] = queue.SimpleQueue()
    releases = {name: threading.Event() for name in ("kazoo-a", "kazoo-b")}
    elections = {name: kazoo_client.Election(zk_path, name) for name in releases}

    def lead(name: str) -> None:
        leaders.put(name)
        releases[name].wait(60)  # the leader's work: until the test lets it return

    threads = {
        name: threading.Thread(target=election.run, args=(lead, name), daemon=True)
        for name, election in elections.items()
    }
    try:
        threads["kazoo-a"].start()
        assert leaders.get(timeout=WAIT) == "kazoo-a"
        threads["kazoo-b"].start()
        wait_for(lambda: len(candidate_children(kazoo_client, zk_path)) == 2, WAIT)
        exporter = exporters([zk_path], refresh_interval=0.3)

        first = seen(exporter, zk_path, leader_id="kazoo-a", candidates=2)
        assert first.node is not None and KAZOO_NODE.match(first.node)
        assert first.kind is ContenderKind.KAZOO_LOCK
        assert first.epoch == czxid(kazoo_client, f"{zk_path}/{first.node}")

        releases["kazoo-a"].set()  # the leader's function returns: kazoo releases the lock
        assert leaders.get(timeout=WAIT) == "kazoo-b"
        second = seen(exporter, zk_path, leader_id="kazoo-b", changes=1)
        assert second.node is not None and second.node != first.node
        assert second.epoch == czxid(kazoo_client, f"{zk_path}/{second.node}")
        assert second.epoch is not None and first.epoch is not None
        assert second.epoch > first.epoch

        releases["kazoo-b"].set()
        seen(exporter, zk_path, has_leader=False, candidates=0, changes=1)
    finally:
        for name, election in elections.items():
            releases[name].set()
            election.cancel()
        for thread in threads.values():
            thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads.values())


# --------------------------------------------------------------------------- 3. Curator


def test_follows_a_curator_leader_latch(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    exporters: Callable[..., ElectionExporter],
    latch_peer: list[str],
    zk_path: str,
    tmp_path: Path,
) -> None:
    peers: list[Peer] = []
    try:
        a = Peer([*latch_peer, ensemble.hosts, zk_path, "curator-a"], tmp_path / "a.log")
        peers.append(a)
        a.lines.expect("STARTED curator-a")
        a_node = a.lines.expect("LEADER curator-a").split()[2]
        b = Peer([*latch_peer, ensemble.hosts, zk_path, "curator-b"], tmp_path / "b.log")
        peers.append(b)
        b.lines.expect("STARTED curator-b")
        wait_for(lambda: len(candidate_children(kazoo_client, zk_path)) == 2, WAIT)
        exporter = exporters([zk_path], refresh_interval=0.3)

        first = seen(exporter, zk_path, leader_id="curator-a", candidates=2)
        assert first.node == a_node.rsplit("/", 1)[1] and CURATOR_NODE.match(first.node)
        assert first.kind is ContenderKind.LATCH
        assert first.epoch == czxid(kazoo_client, a_node)
        others = [n for n in candidate_children(kazoo_client, zk_path) if n != first.node]
        print(f"\nCurator leader node {first.node} czxid {first.epoch:#x}; follower {others}")

        assert stop_process(a.proc) in (0, 143)  # SIGTERM: the shutdown hook closes the latch
        b_node = b.lines.expect("LEADER curator-b").split()[2]
        second = seen(exporter, zk_path, leader_id="curator-b", changes=1)
        assert second.node == b_node.rsplit("/", 1)[1]
        assert second.epoch == czxid(kazoo_client, b_node)
        assert second.epoch is not None and first.epoch is not None
        assert second.epoch > first.epoch
        print(f"Curator successor node {second.node} czxid {second.epoch:#x}")
    finally:
        codes = [stop_process(peer.proc) for peer in peers]
        logs = {peer.log.name: peer.log.read_text()[-2000:] for peer in peers}
    assert all(code in (0, 143) for code in codes), (codes, logs)


def test_a_mixed_election_hands_over_through_curator_with_leader_markers(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
    latch_peer: list[str],
    zk_path: str,
    tmp_path: Path,
) -> None:
    """zkelect leader, Curator behind it, zkelect behind that: the zkelect leader's marker
    (R13) never stalls Curator (which sorts it last and never waits on it), and the zkelect
    candidate behind Curator, which never makes a marker, reads and leads in turn."""
    x = candidates(ensemble.hosts, zk_path, "zk-x")  # elected at its join: no marker (R13)
    wait_for(lambda: x.election.is_leader, WAIT, message="zk-x leads")
    a = candidates(ensemble.hosts, zk_path, "zk-a")
    peer = Peer([*latch_peer, ensemble.hosts, zk_path, "curator-b"], tmp_path / "b.log")
    try:
        peer.lines.expect("STARTED curator-b")
        wait_for(lambda: len(candidate_children(kazoo_client, zk_path)) == 3, WAIT)
        c = candidates(ensemble.hosts, zk_path, "zk-c")
        x.election.stop()  # zk-a leads on the notice, with Curator behind: it leaves a marker
        wait_for(lambda: a.election.is_leader, WAIT, message="zk-a leads")
        node = a.election.node
        assert node is not None
        marker = leader_marker(node.rsplit("/", 1)[1])
        wait_for(lambda: kazoo_client.exists(f"{zk_path}/{marker}"), WAIT, message="a's marker")
        assert a.election.resign() is True
        peer.lines.expect("LEADER curator-b")
        assert not c.election.is_leader and not a.election.is_leader
        assert stop_process(peer.proc) in (0, 143)  # closes the latch: its node goes
        wait_for(lambda: c.election.is_leader, WAIT, message="zk-c leads after Curator")
        assert not a.election.is_leader
    finally:
        code = stop_process(peer.proc)
    assert code in (0, 143), peer.log.read_text()[-2000:]


def test_curator_orders_the_wrap_by_text_and_the_exporter_says_so(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    exporters: Callable[..., ElectionExporter],
    latch_peer: list[str],
    zk_path: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A contender numbered as ZooKeeper numbers the first node after its counter wraps.
    caplog.set_level(logging.INFO, logger="zkelect.ops.exporter")
    wrapped = hand_numbered(kazoo_client, zk_path, -(2**31), b"after-the-wrap")
    peers: list[Peer] = []
    try:
        peer = Peer([*latch_peer, ensemble.hosts, zk_path, "curator-a"], tmp_path / "a.log")
        peers.append(peer)
        peer.lines.expect("STARTED curator-a")
        ours = wait_for(
            lambda: [n for n in candidate_children(kazoo_client, zk_path) if n != wrapped],
            WAIT,
            message="the Curator node",
        )
        assert len(ours) == 1 and CURATOR_NODE.match(ours[0])
        session = kazoo_client.get(f"{zk_path}/{ours[0]}")[1].ephemeralOwner
        # Real Curator sorts the text ("-2147483648" < "0000000001"): its node is not first, so
        # it waits on the wrapped node, which its session watches (seen on the servers).
        wait_for(
            lambda: (
                f"{zk_path}/{wrapped}" in data_watches_by_session(ensemble.hosts).get(session, [])
            ),
            WAIT,
            message="Curator watching the wrapped node as its predecessor",
        )
        # zkelect's order (serial arithmetic) puts Curator's node first: nobody leads now.
        exporter = exporters([zk_path], refresh_interval=0.3)
        view = seen(exporter, zk_path, leader_id="curator-a", sequence_wrapped=True)
        assert view.orders_differ and view.node == ours[0]
        election = {"election": zk_path}
        assert samples(exporter, "zkelect_observed_sequence_wrapped") == [(election, 1)]
        reads_at_least(exporter, zk_path, view.reads + 3)  # logged once, not once per read
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "zkelect.ops.exporter" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1, warnings
        assert f"puts {wrapped} first where zkelect elects {ours[0]}" in warnings[0]

        # The wrapped node leaves: Curator leads at last, and the orders agree again.
        kazoo_client.delete(f"{zk_path}/{wrapped}")
        peer.lines.expect("LEADER curator-a")
        seen(exporter, zk_path, sequence_wrapped=False, orders_differ=False, candidates=1)
        assert samples(exporter, "zkelect_observed_sequence_wrapped") == [(election, 0)]
        # Logged by the worker just after it publishes the view: wait for it.
        wait_for(
            lambda: any("orders agree" in r.getMessage() for r in caplog.records),
            WAIT,
            message="the exporter logging that the orders agree again",
        )
    finally:
        codes = [stop_process(peer.proc) for peer in peers]
        logs = {peer.log.name: peer.log.read_text()[-2000:] for peer in peers}
    assert all(code in (0, 143) for code in codes), (codes, logs)


# --------------------------------------------------------------------------- 4. read-only


def test_observing_creates_nothing_and_holds_one_watch(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
    exporters: Callable[..., ElectionExporter],
    zk_path: str,
) -> None:
    hosts = ensemble.hosts
    exporter = exporters([zk_path], refresh_interval=0.2)
    session = session_of(exporter)

    # A missing path: reported as no leader, watched with exists, and not created.
    missing = seen(exporter, zk_path, path_exists=False, has_leader=False)
    reads_at_least(exporter, zk_path, missing.reads + 3)  # periodic re-reads as well
    assert kazoo_client.exists(zk_path) is None
    assert data_watches_by_session(hosts).get(session) == [zk_path]

    # Candidates arrive (zkelect creates the path): the one watch moves to the leader's node.
    a = candidates(hosts, zk_path, "ro-a")
    assert a.election.wait_for_leadership(WAIT) is not None
    candidates(hosts, zk_path, "ro-b")
    candidates(hosts, zk_path, "ro-c")
    assert a.election.node is not None
    leader_watch = [a.election.node]
    wait_for(lambda: data_watches_by_session(hosts).get(session) == leader_watch, WAIT)
    children = sorted(candidate_children(kazoo_client, zk_path))
    view = seen(exporter, zk_path, leader_id="ro-a", candidates=3)

    # Periodic re-reads add no watch and no node.
    reads_at_least(exporter, zk_path, view.reads + 5)
    assert sorted(candidate_children(kazoo_client, zk_path)) == children
    assert data_watches_by_session(hosts).get(session) == leader_watch
    with_exporter = total_watches(hosts)

    # Close the exporter's session: the servers' watch count drops by that one data watch
    # only, so it held no children watch while contenders existed.
    exporter.stop()
    exporter.client.stop()
    wait_for(lambda: session not in data_watches_by_session(hosts), WAIT)
    without = total_watches(hosts)
    assert with_exporter - without == 1, (with_exporter, without)
    assert sorted(candidate_children(kazoo_client, zk_path)) == children


def test_empty_path_is_watched_with_one_children_watch_until_a_candidate_comes(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
    exporters: Callable[..., ElectionExporter],
    zk_path: str,
) -> None:
    hosts = ensemble.hosts
    kazoo_client.ensure_path(zk_path)  # the test makes the path; the exporter never would
    before = total_watches(hosts)
    exporter = exporters([zk_path])  # the default 15 s refresh: the watch must do the work
    session = session_of(exporter)
    seen(exporter, zk_path, path_exists=True, has_leader=False)
    # One watch, and not a data watch: the children watch (mntr is the only place it shows).
    assert session not in data_watches_by_session(hosts)
    assert total_watches(hosts) - before == 1

    a = candidates(hosts, zk_path, "empty-a")
    assert a.election.node is not None
    seen(exporter, zk_path, leader_id="empty-a", changes=1, candidates=1)
    wait_for(lambda: data_watches_by_session(hosts).get(session) == [a.election.node], WAIT)
    assert candidate_children(kazoo_client, zk_path) == [a.election.node.rsplit("/", 1)[1]]


# --------------------------------------------------------------------------- faults


def test_session_expiry_sets_the_watch_again_on_the_new_session(
    ensemble: LocalEnsemble,
    candidates: Callable[..., Candidate],
    exporters: Callable[..., ElectionExporter],
    zk_path: str,
) -> None:
    hosts = ensemble.hosts
    a = candidates(hosts, zk_path, "exp-a")
    assert a.election.wait_for_leadership(WAIT) is not None
    b = candidates(hosts, zk_path, "exp-b")
    exporter = exporters([zk_path], refresh_interval=600)  # only watches can tell it
    seen(exporter, zk_path, leader_id="exp-a")
    old = session_of(exporter)

    expire_session(exporter.client)  # a real expiry, done by the server
    new = session_of(exporter)
    assert new != old
    assert a.election.node is not None
    wait_for(lambda: data_watches_by_session(hosts).get(new) == [a.election.node], WAIT)
    assert old not in data_watches_by_session(hosts)

    assert a.election.resign(WAIT)
    assert b.election.wait_for_leadership(WAIT) is not None
    seen(exporter, zk_path, leader_id="exp-b", changes=1)


def test_connection_loss_is_followed_by_a_fresh_read(
    ensemble: LocalEnsemble,
    candidates: Callable[..., Candidate],
    zk_path: str,
) -> None:
    hosts = ensemble.hosts
    a = candidates(hosts, zk_path, "flap-a")
    assert a.election.wait_for_leadership(WAIT) is not None
    b = candidates(hosts, zk_path, "flap-b")
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        client = KazooClient(hosts=proxy.address, timeout=10.0)
        client.start(timeout=30)
        exporter = ElectionExporter(client, [zk_path], CollectorRegistry(), refresh_interval=600)
        try:
            exporter.start()
            seen(exporter, zk_path, leader_id="flap-a")
            session = session_of(exporter)
            # The leader changes while the exporter's connection is cut: whether the
            # notification is replayed on reconnect or not, the re-read on reconnect sees it.
            assert proxy.drop_connections() >= 1
            assert a.election.resign(WAIT)
            assert b.election.wait_for_leadership(WAIT) is not None
            wait_for(lambda: exporter.connected, WAIT)
            view = seen(exporter, zk_path, leader_id="flap-b", changes=1)
            assert session_of(exporter) == session  # a connection loss, not an expiry
            node = f"{zk_path}/{view.node}"
            wait_for(lambda: data_watches_by_session(hosts).get(session) == [node], WAIT)
        finally:
            exporter.stop()
            client.stop()
            client.close()


# --------------------------------------------------------------------------- 5. the command


def exporter_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "zkelect.ops.cli.main", "exporter", *args]


def child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def test_command_serves_metrics_and_stops_on_sigterm(
    ensemble: LocalEnsemble,
    candidates: Callable[..., Candidate],
    zk_path: str,
) -> None:
    a = candidates(ensemble.hosts, zk_path, "cli-a")
    assert a.election.wait_for_leadership(WAIT) is not None
    proc = subprocess.Popen(
        exporter_command("--hosts", ensemble.hosts, "--path", zk_path, "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        preexec_fn=_die_with_test,
    )
    try:
        line = Lines(proc.stdout).expect("listening on ", timeout=30)
        url = line.split()[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), line
        expected = f'zkelect_observed_leader{{election="{zk_path}",leader_id="cli-a"}} 1.0'

        def scrape() -> bool:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
                return expected in response.read().decode()

        wait_for(scrape, WAIT, interval=0.05, message="the leader on /metrics")
        # Probes: alive, ready once its reads answered; only the endpoints that exist.
        assert call(f"{url}/livez")[::2] == (200, {"status": "ok"})
        for name in ("readyz", "healthz"):
            code, _, body = call(f"{url}/{name}")
            assert code == 200 and body["status"] == "ok" and body["connected"], body
            assert body["paths"][zk_path]["observed"] and body["paths"][zk_path]["error"] is None
        code, _, body = call(f"{url}/")
        assert code == 200 and body["paths"] == [zk_path] and "/metrics" in body["endpoints"]
        code, _, body = call(f"{url}/healthz/x")
        assert code == 404 and body["error"] == "no such endpoint '/healthz/x'", body
        code, headers, body = call(f"{url}/metrics", "POST")
        assert (code, headers["Allow"], body["allow"]) == (405, "GET, HEAD", ["GET", "HEAD"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        stop_process(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--path", "relative", "--port", "0"), 2, "absolute path"),
        (("--port", "0"), 2, "--path"),
        (("--path", "/p", "--port", "many"), 2, "--port"),
        (("--path", "/p", "--port", "0", "--refresh-interval", "0"), 2, "--refresh-interval"),
        (("--path", "/p", "--port", "0", "--connect-timeout", "1"), 1, "could not connect"),
    ],
    ids=["relative-path", "no-path", "bad-port", "zero-interval", "unreachable"],
)
def test_command_errors_are_one_line(args: tuple[str, ...], code: int, says: str) -> None:
    hosts = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(
        exporter_command("--hosts", hosts, *args),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == code, done
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr
