"""/livez, /readyz, /healthz and /leader of real candidates, through a quorum loss, a frozen
member and a handover; 404/405 as JSON on ``zkelect serve`` (the exporter's are in
test_exporter.py). Pure answers from scripted state: tests/unit/test_probe_answers.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from election_support import Candidate
from http_support import call
from prometheus_support import CandidateProcess

from zkelect import ElectionConfig
from zkelect.ops.http import StatusServer
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

Make = Callable[..., Candidate]
# Short sessions: the lease (and so readiness) follows a loss within a few seconds.
SHORT = ElectionConfig(session_timeout=3.0, request_timeout=3.0, connect_timeout=20.0)


def status(url: str) -> int:
    return call(url)[0]


def test_readyz_fails_within_the_lease_while_livez_stays_up(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, candidates: Make
) -> None:
    ens = make_ensemble(3)
    a = candidates(ens.hosts, zk_path, "q-a", config=SHORT)
    assert a.election.wait_for_leadership(10) is not None
    b = candidates(ens.hosts, zk_path, "q-b", config=SHORT)
    session = b.election.session
    with StatusServer(elections=[b.election]) as server:
        livez, readyz, healthz = (f"{server.url}/{name}" for name in ("livez", "readyz", "healthz"))

        def ready() -> bool:
            return status(readyz) == 200 and status(healthz) == 200

        def alive() -> bool:
            code, _, body = call(livez)
            assert code == 200, body  # never fails for ZooKeeper's sake
            return True

        wait_for(ready, 20, 0.05, "ready at first")
        assert call(livez)[2] == {"status": "ok", "checks": []}

        # A quorum loss: ready no more before the lease runs out; alive all along.
        ens.kill(1)
        ens.kill(2)
        lost_at = time.monotonic()
        wait_for(
            lambda: alive() and status(readyz) == 503 and status(healthz) == 503,
            SHORT.session_timeout,
            0.05,
            "/readyz and /healthz 503 within the lease",
        )
        wait_for(
            lambda: (
                alive()
                and session.lease_remaining() == 0
                and time.monotonic() - lost_at > SHORT.session_timeout
            ),
            20,
            0.1,
            "the lease ran out",
        )
        code, _, body = call(readyz)
        assert code == 503 and body["status"] == "unavailable" and body["problems"], body
        code, _, body = call(livez)  # alive, but no endpoint says "ok" without the quorum
        assert code == 200 and body["status"] == "alive" and body["not_ready"], body
        ens.restart(1)
        ens.restart(2)
        wait_for(lambda: alive() and ready(), 30, 0.05, "ready again once the quorum is back")
        assert call(livez)[2] == {"status": "ok", "checks": []}

        # A frozen member (SIGSTOP) under our connection: never ready without a valid lease
        # (503 if the lease runs out before the watchdog gives up on the silent member, which
        # depends on when the last heartbeats were answered), and ready again on another
        # member, on the same session. Read in-process and often: that window is short.
        peer = session.tap.current_peer()
        assert peer is not None
        [frozen] = [i for i in range(3) if ens.client_port(i) == peer[1]]
        before = session.session_id
        ens.pause(frozen)
        try:

            def moved_and_ready() -> bool:
                assert server.liveness()[0] == 200
                code, body = server.readiness()
                [entry] = body["sessions"]
                if code == 503:
                    [problem] = body["problems"]
                    assert "within the lease" in problem or "suspended" in problem, body
                    return False
                assert entry["lease_remaining_s"] > 0, body  # never ok without a lease
                return session.tap.current_peer() not in (None, peer)

            wait_for(moved_and_ready, 30, 0.01, "ready on another member")
            assert session.session_id == before  # the same session, reconnected elsewhere
        finally:
            ens.resume(frozen)


def test_serve_names_the_leader_and_answers_errors_as_json(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path
) -> None:
    procs: list[CandidateProcess] = []

    def serve(name: str) -> str:
        proc = CandidateProcess(
            ensemble.hosts, zk_path, name, session_timeout=4.0, log_dir=tmp_path
        )
        procs.append(proc)
        return proc.wait_listening(30)

    try:
        a_url = serve("serve-a")
        wait_for(lambda: status(f"{a_url}/leader") == 200, 20, 0.05, "a leads")
        lead = call(f"{a_url}/leader")[2]
        assert lead["leader"]["candidate_id"] == "serve-a" and lead["leader"]["current"], lead
        b_url = serve("serve-b")

        def b_names(name: str) -> Any:
            body = call(f"{b_url}/leader")[2]
            leader = body["leader"]
            return leader is not None and leader["candidate_id"] == name and body

        body = wait_for(lambda: b_names("serve-a"), 20, 0.05, "b names a as its leader")
        assert call(f"{b_url}/leader")[0] == 503 and body["is_leader"] is False
        for key in ("node", "epoch", "epoch_hex", "session"):
            assert body["leader"][key] == lead["leader"][key], (key, body, lead)
        assert body["leader"]["current"] is True and body["leader"]["known_for_s"] >= 0
        for name in ("livez", "readyz", "healthz"):
            assert status(f"{b_url}/{name}") == 200, name

        code, headers, body = call(f"{b_url}/nope")
        assert code == 404 and body["error"] == "no such endpoint '/nope'"
        assert {"/livez", "/readyz", "/healthz", "/leader", "/metrics"} <= set(body["endpoints"])
        for method, path in (("POST", "/leader"), ("DELETE", "/livez"), ("PUT", "/nope")):
            code, headers, body = call(f"{b_url}{path}", method)
            assert (code, headers["Allow"]) == (405, "GET, HEAD"), (method, body)
            assert body == {"error": f"method {method} not allowed", "allow": ["GET", "HEAD"]}

        # The leader leaves: b leads, and names itself.
        assert procs[0].stop() == 0
        wait_for(lambda: status(f"{b_url}/leader") == 200, 20, 0.05, "b leads")
        body = call(f"{b_url}/leader")[2]
        assert body["leader"]["candidate_id"] == "serve-b" and int(body["epoch"]) > int(
            lead["epoch"]
        )
    finally:
        for proc in procs:
            proc.stop()
