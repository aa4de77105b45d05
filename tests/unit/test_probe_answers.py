"""/livez, /readyz and /leader answers from scripted state (zkelect/ops/_probes.py), and the
HTTP server's 404/405/500 answers (zkelect/ops/_http_serving.py) on loopback.

The same answers against real elections and a real quorum loss are in
tests/integration/test_http_probes.py.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from zkelect._election.messages import Lifecycle
from zkelect._election.nodes import LeaderInfo
from zkelect._zookeeper.outcomes import ConnectionState
from zkelect.errors import ElectionStoppedError
from zkelect.ops import _probes
from zkelect.ops._exporter_http import exporter_liveness, exporter_readiness
from zkelect.ops._exporter_metrics import ObservedElection
from zkelect.ops._http_serving import HttpEndpoints, Request, json_answer
from zkelect.ops.json_ids import MAX_SAFE_INTEGER

BIG_SESSION = 0x3000003CB2F0000  # above 2^53: jq would round it
BIG_EPOCH = 2**60 + 7


@dataclass
class Loop:
    running: bool = True
    fired_at: float = 100.0

    def alive(self) -> bool:
        return self.running


@dataclass
class Lease:
    touched_at: float | None = 99.0


@dataclass
class Config:
    request_timeout: float = 10.0


@dataclass
class FakeSession:
    """What the probes read of a Session, scripted."""

    now: float = 100.0
    state: ConnectionState = ConnectionState.CONNECTED
    lease_left: float = 5.0
    beat: float | None = 100.0
    session_id: int | None = BIG_SESSION
    hosts: str = "zk1:2181,zk2:2181"
    session_timeout: float = 10.0
    lease: Lease = field(default_factory=Lease)
    config: Config = field(default_factory=Config)
    pool: Loop | None = field(default_factory=Loop)
    timers: Loop | None = field(default_factory=Loop)
    notifier: Loop | None = field(default_factory=Loop)

    def clock(self) -> float:
        return self.now

    def lease_remaining(self) -> float:
        return self.lease_left

    def last_beat(self) -> float | None:
        return self.beat

    def heartbeat_interval(self) -> float:
        return self.session_timeout / 4


@dataclass
class FakeLead:
    epoch: int = BIG_EPOCH
    node_path: str = "/e/_c_guid-latch-0000000003"
    valid: bool = True

    def is_valid(self) -> bool:
        return self.valid


@dataclass
class FakeElection:
    session: FakeSession
    path: str = "/e"
    candidate_id: str = "me"
    lead: FakeLead | None = None
    stopped: bool = False
    seen: tuple[LeaderInfo | None, float] | None = None
    lifecycle: Lifecycle = Lifecycle.CLOSED

    def wait_for_leadership(self, timeout: float) -> FakeLead | None:
        if self.stopped:
            raise ElectionStoppedError("stopped")
        return self.lead

    def leader_seen(self) -> tuple[LeaderInfo | None, float] | None:
        return self.seen


def elections(*items: FakeElection) -> Any:
    return list(items)


def test_ready_only_while_connected_with_a_valid_lease() -> None:
    session = FakeSession()
    code, body = _probes.readiness(elections(FakeElection(session)))
    assert code == 200 and body["status"] == "ok"
    [entry] = body["sessions"]
    assert entry["session_id"] == "0x3000003cb2f0000" and entry["elections"] == ["/e"]

    # kazoo still says connected, but no quorum answered within the lease: not ready.
    session.lease_left = 0.0
    session.lease.touched_at = 91.5
    code, body = _probes.readiness(elections(FakeElection(session)))
    assert code == 503 and body["status"] == "unavailable"
    assert body["sessions"][0]["state"] == "connected"
    [problem] = body["problems"]
    assert "not answered within the lease" in problem and "8.5s" in problem

    session.lease.touched_at = None
    assert "no answer" in _probes.readiness(elections(FakeElection(session)))[1]["problems"][0]

    session.state, session.lease_left = ConnectionState.SUSPENDED, 3.0
    code, body = _probes.readiness(elections(FakeElection(session)))
    assert code == 503 and body["problems"] == ["session to zk1:2181,zk2:2181: suspended"]


def test_ready_needs_every_election_a_started_candidate() -> None:
    session = FakeSession()
    one, two = FakeElection(session, "/a"), FakeElection(session, "/b", stopped=True)
    code, body = _probes.readiness(elections(one, two))
    assert code == 503 and body["problems"] == ["/b: not a candidate (closed)"]
    assert [s["elections"] for s in body["sessions"]] == [["/a", "/b"]]
    assert _probes.readiness([]) == (200, {"status": "ok", "sessions": []})


def test_live_through_a_quorum_loss_but_not_with_a_stuck_loop() -> None:
    session = FakeSession(state=ConnectionState.SUSPENDED, lease_left=0.0)
    assert _probes.liveness(elections(FakeElection(session)), {}) == (
        200,  # alive, but not "ok": the servers have not answered within the lease
        {
            "status": "alive",
            "checks": [],
            "not_ready": ["session to zk1:2181,zk2:2181: suspended"],
        },
    )
    assert _probes.liveness(elections(FakeElection(FakeSession())), {}) == (
        200,
        {"status": "ok", "checks": []},
    )

    # The limits are generous: 2 session timeouts (+5 s) without a timer firing.
    assert session.timers is not None
    session.now = session.timers.fired_at + 24.9
    session.beat = session.now
    assert _probes.liveness(elections(FakeElection(session)), {})[0] == 200
    session.now += 0.2
    session.beat = session.now
    code, body = _probes.liveness(elections(FakeElection(session)), {})
    assert code == 503 and body["status"] == "failing"
    assert body["problems"] == [
        "session to zk1:2181,zk2:2181: its timer loop has not fired for 25.1s"
    ]

    stuck = FakeSession(beat=50.0)
    assert stuck.notifier is not None
    stuck.notifier.running = False
    code, body = _probes.liveness(elections(FakeElection(stuck)), {})
    assert code == 503 and len(body["problems"]) == 2
    assert "callback thread is not running" in body["problems"][0]
    assert "heartbeat has not run for 50.0s" in body["problems"][1]


def test_liveness_checks_of_the_owner_and_released_sessions() -> None:
    released = FakeSession(pool=None, timers=None, notifier=None)
    checks = {"supervisor": lambda: None}
    assert _probes.liveness(elections(FakeElection(released)), checks)[0] == 200
    checks["supervisor"] = lambda: "its loop is stuck"
    assert _probes.liveness([], checks) == (
        503,
        {
            "status": "failing",
            "problems": ["supervisor: its loop is stuck"],
            "checks": ["supervisor"],
        },
    )


def test_leader_answers_with_ids_as_strings() -> None:
    session = FakeSession()
    code, body = _probes.leader(elections(FakeElection(session, lead=FakeLead())))
    assert code == 200
    assert body == {
        "election": "/e",
        "candidate_id": "me",
        "is_leader": True,
        "epoch": str(BIG_EPOCH),
        "epoch_hex": f"{BIG_EPOCH:#x}",
        "leader": {
            "candidate_id": "me",
            "node": "_c_guid-latch-0000000003",
            "epoch": str(BIG_EPOCH),
            "epoch_hex": f"{BIG_EPOCH:#x}",
            "session": "0x3000003cb2f0000",
            "current": True,
        },
        "leader_known": True,
    }
    assert all(
        not isinstance(v, int) or isinstance(v, bool) or abs(v) <= MAX_SAFE_INTEGER
        for v in body.values()
    )
    # A lease that ran out: not the leader any more for a load balancer.
    code, body = _probes.leader(elections(FakeElection(session, lead=FakeLead(valid=False))))
    assert code == 503 and body["is_leader"] is False and body["epoch"] is None


def test_a_follower_names_the_leader_it_observes() -> None:
    session = FakeSession(now=130.0)
    info = LeaderInfo("boss", BIG_EPOCH, "_c_x-latch-0000000001", BIG_SESSION + 1, 1)
    code, body = _probes.leader(elections(FakeElection(session, seen=(info, 100.0))))
    assert code == 503 and body["is_leader"] is False and body["leader_known"] is True
    assert body["leader"] == {
        "candidate_id": "boss",
        "node": "_c_x-latch-0000000001",
        "epoch": str(BIG_EPOCH),
        "epoch_hex": f"{BIG_EPOCH:#x}",
        "session": "0x3000003cb2f0001",
        "known_for_s": 30.0,
        "current": True,
    }
    session.state = ConnectionState.SUSPENDED  # the watch that would tell a change is not set
    assert (
        _probes.leader(elections(FakeElection(session, seen=(info, 100.0))))[1]["leader"]["current"]
        is False
    )
    # Observed, no leader now; not observed at all: unknown (a probe never asks ZooKeeper).
    assert _probes.leader(elections(FakeElection(session, seen=(None, 1.0))))[1]["leader"] is None
    body = _probes.leader(elections(FakeElection(session)))[1]
    assert body["leader"] is None and body["leader_known"] is False


def test_leader_of_a_named_election_and_of_none() -> None:
    session = FakeSession()
    a, b = FakeElection(session, "/a"), FakeElection(session, "/b", lead=FakeLead())
    code, body = _probes.leader(elections(a, b))
    assert code == 200 and body["election"] == "/b" and body["leading"] == ["/b"]
    assert _probes.leader(elections(a, b), "/a")[0] == 503
    assert _probes.leader(elections(a, b), "/c")[0] == 404
    code, body = _probes.leader([])
    assert code == 503 and body["election"] is None and body["leader"] is None


@dataclass
class FakeExporter:
    running: bool = True
    connected: bool = True
    views: dict[str, ObservedElection] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)

    def snapshot(self) -> dict[str, ObservedElection]:
        return self.views


def test_exporter_ready_while_connected_and_every_read_answered() -> None:
    exporter: Any = FakeExporter(
        views={"/a": ObservedElection("/a", observed=True, reads=3), "/b": ObservedElection("/b")}
    )
    assert exporter_liveness(exporter) == (
        200,  # alive, not "ok" while a path is not read
        {"status": "alive", "not_ready": ["/b: not read yet"]},
    )
    code, body = exporter_readiness(exporter)
    assert code == 503 and body["problems"] == ["/b: not read yet"]
    exporter.views["/b"] = ObservedElection("/b", observed=True, error="ConnectionLoss")
    assert exporter_readiness(exporter)[1]["problems"] == [
        "/b: the last read failed: ConnectionLoss"
    ]
    exporter.views["/b"] = ObservedElection("/b", observed=True, reads=1)
    assert exporter_readiness(exporter)[0] == 200
    assert exporter_liveness(exporter) == (200, {"status": "ok"})
    exporter.connected, exporter.running = False, False
    assert exporter_readiness(exporter)[1]["problems"] == ["its ZooKeeper session is not connected"]
    assert exporter_liveness(exporter)[0] == 503


@pytest.fixture
def server() -> Any:
    def boom(request: Request) -> Any:
        raise RuntimeError("scripted")

    routes = {"/ok": lambda request: json_answer(200, {"q": request.last("x")}), "/boom": boom}
    endpoints = HttpEndpoints("127.0.0.1", 0, routes, name="test-http", listed=["/ok"])
    endpoints.start()
    try:
        yield endpoints
    finally:
        endpoints.stop()


def request(server: HttpEndpoints, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=b"x" if method in ("POST", "PUT") else None)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_the_server_answers_json_for_every_error(server: HttpEndpoints) -> None:
    status, headers, body = request(server, "GET", "/ok?x=1&x=2")
    assert status == 200 and json.loads(body) == {"q": "2"}
    assert headers["Content-Type"] == "application/json" and server.serving
    status, headers, body = request(server, "HEAD", "/ok")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0

    status, headers, body = request(server, "GET", "/nope")
    assert status == 404
    assert json.loads(body) == {"error": "no such endpoint '/nope'", "endpoints": ["/ok"]}
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
        status, headers, body = request(server, method, "/ok")
        assert status == 405, method
        assert headers["Allow"] == "GET, HEAD" and headers["Content-Type"] == "application/json"
        assert json.loads(body) == {
            "error": f"method {method} not allowed",
            "allow": ["GET", "HEAD"],
        }
    status, _, body = request(server, "GET", "/boom")
    assert status == 500 and json.loads(body) == {"error": "RuntimeError: scripted"}
