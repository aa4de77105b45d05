"""The HTTP endpoints against real elections, and a real Prometheus scraping real candidate
processes through a leader crash.

What matters to operators is checked end to end: a load balancer's ``/leader`` probe answers
200 on the leader only; ``/healthz`` turns 503 when ZooKeeper goes away and back to 200 when
it returns; Prometheus sees exactly one leader, and after the leader is SIGKILLed sees one
again with a higher epoch; ``promtool check metrics`` finds nothing to complain about.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_support import loads_strict
from election_support import Candidate
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_support import (
    REPO,
    CandidateProcess,
    Prometheus,
    find_prometheus,
    http_get,
    http_json,
    kill,
    promtool_complaints,
)

from zkelect.metrics import PrometheusRecorder
from zkelect.ops.http import StatusServer
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

Make = Callable[..., Candidate]


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from an exposition text (None if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def leader_status(server: StatusServer, query: str = "") -> tuple[int, Any]:
    status, body, _ = http_get(f"{server.url}/leader{query}")
    return status, loads_strict(body)


def test_leader_and_healthz_answer_for_the_leader_only(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    a = candidates(ensemble.hosts, zk_path, "node-a", metrics=PrometheusRecorder(reg_a))
    lead = a.election.wait_for_leadership(10)
    assert lead is not None
    b = candidates(ensemble.hosts, zk_path, "node-b", metrics=PrometheusRecorder(reg_b))
    with (
        StatusServer(registry=reg_a, elections=[a.election]) as server_a,
        StatusServer(registry=reg_b, elections=[b.election]) as server_b,
    ):
        assert server_a.url == f"http://127.0.0.1:{server_a.port}" and server_a.port > 0
        status, body = leader_status(server_a)
        assert status == 200 and body["is_leader"] is True, body
        assert (body["election"], body["candidate_id"]) == (zk_path, "node-a")
        assert (body["epoch"], body["epoch_hex"]) == (str(lead.epoch), f"{lead.epoch:#x}")
        assert leader_status(server_a, f"?election={zk_path}")[0] == 200
        status, body = leader_status(server_b)
        assert status == 503 and body["is_leader"] is False, body
        assert (body["candidate_id"], body["epoch"], body["epoch_hex"]) == ("node-b", None, None)
        assert leader_status(server_b, "?election=/not/here")[0] == 404
        for server in (server_a, server_b):
            status, health = http_json(f"{server.url}/healthz")
            assert status == 200 and health["status"] == "ok", health
            [session] = health["sessions"]
            assert session["state"] == "connected" and session["elections"] == [zk_path]
        status, _, headers = http_get(f"{server_a.url}/nope")
        assert status == 404

        status, text, headers = http_get(f"{server_a.url}/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert sample(text, "zkelect_is_leader", election=zk_path) == 1.0
        assert sample(text, "zkelect_leader_epoch", election=zk_path) == float(lead.epoch)
        text_b = http_get(f"{server_b.url}/metrics")[1]
        assert sample(text_b, "zkelect_is_leader", election=zk_path) == 0.0
        assert sample(text_b, "zkelect_candidates", election=zk_path) == 2.0

        # Handover: the probes follow within the time of one election.
        assert a.election.resign()
        wait_for(lambda: leader_status(server_b)[0] == 200, 10, 0.05, "b never led")
        status, body = leader_status(server_b)
        assert int(body["epoch"]) > lead.epoch and body["candidate_id"] == "node-b"
        wait_for(lambda: leader_status(server_a)[0] == 503, 10, 0.05, "a still leads")
        text = http_get(f"{server_a.url}/metrics")[1]
        labels = {"election": zk_path}
        assert sample(text, "zkelect_is_leader", **labels) == 0.0
        assert sample(text, "zkelect_leadership_transitions_total", event="resigned", **labels) == 1
        assert sample(text, "zkelect_leadership_transitions_total", event="lost", **labels) == 0

        # A stopped candidate is not healthy, and never reports is_leader=1 again.
        b.election.stop()
        status, health = http_json(f"{server_b.url}/healthz")
        assert status == 503 and health["status"] == "unavailable", health
        assert leader_status(server_b)[0] == 503
        assert "zkelect_is_leader{" not in http_get(f"{server_b.url}/metrics")[1]
        server_b.remove(b.election)
        assert http_json(f"{server_b.url}/healthz") == (200, {"status": "ok", "sessions": []})


def test_healthz_is_503_while_zookeeper_is_down(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, candidates: Make
) -> None:
    ens = make_ensemble(1)
    registry = CollectorRegistry()
    solo = candidates(ens.hosts, zk_path, "solo", metrics=PrometheusRecorder(registry))
    assert solo.election.wait_for_leadership(10) is not None
    with StatusServer(registry=registry, elections=[solo.election]) as server:
        assert http_json(f"{server.url}/healthz")[0] == 200
        assert leader_status(server)[0] == 200

        ens.kill(0)
        wait_for(lambda: http_json(f"{server.url}/healthz")[0] == 503, 10, 0.05, "healthz 503")
        health = http_json(f"{server.url}/healthz")[1]
        assert health["sessions"][0]["state"] in ("suspended", "lost"), health
        assert leader_status(server)[0] == 503  # the default policy revokes on SUSPENDED
        text = http_get(f"{server.url}/metrics")[1]
        assert sample(text, "zkelect_is_leader", election=zk_path) == 0.0
        assert sample(text, "zkelect_session_state", election=zk_path, state="connected") == 0.0
        assert sample(text, "zkelect_leadership_transitions_total", event="lost") == 1.0

        ens.restart(0)
        wait_for(lambda: http_json(f"{server.url}/healthz")[0] == 200, 30, 0.05, "healthz 200")
        wait_for(lambda: leader_status(server)[0] == 200, 30, 0.05, "leads again")


def test_serve_rejects_bad_arguments_in_one_line() -> None:
    for args in (
        ["--hosts", "127.0.0.1:1"],
        ["--path", "no-slash"],
        ["--path", "/p", "--port", "x"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "zkelect.ops.cli.main", "serve", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, (args, result)
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_prometheus_sees_one_leader_and_a_failover_with_a_higher_epoch(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str, tmp_path: Path
) -> None:
    prometheus_binary, promtool = find_prometheus()
    ens = make_ensemble(3)
    procs: list[CandidateProcess] = []
    prometheus: Prometheus | None = None
    try:
        for i in range(3):
            procs.append(
                CandidateProcess(
                    ens.hosts, zk_path, f"cand-{i}", session_timeout=3.0, log_dir=tmp_path
                )
            )
        for proc in procs:
            proc.wait_listening(30)
        by_instance = {f"127.0.0.1:{proc.port}": proc for proc in procs}
        prometheus = Prometheus(prometheus_binary, tmp_path / "prometheus", list(by_instance))
        wait_for(prometheus.ready, 30, interval=0.1, message="prometheus ready")
        prom = prometheus

        live = "and on(instance) up == 1"  # a dead target's last samples do not count
        leaders = f"sum(zkelect_is_leader {live})"
        epochs = f"max(zkelect_leader_epoch {live})"
        wait_for(
            lambda: prom.scalar("count(up == 1)") == 3 and prom.scalar(leaders) == 1,
            30,
            interval=0.2,
            message="one leader among 3 scraped candidates",
        )
        first_epoch = prom.scalar(epochs)
        assert first_epoch is not None and first_epoch > 0
        [(labels, _)] = prom.query("zkelect_is_leader == 1")
        victim = by_instance[labels["instance"]]
        assert labels["election"] == zk_path

        kill(victim.proc)  # SIGKILL: no resign, the session must expire on the servers
        wait_for(
            lambda: prom.scalar(f'up{{instance="{labels["instance"]}"}}') == 0,
            15,
            interval=0.1,
            message="the killed target is down",
        )

        def failed_over() -> bool:
            total = prom.scalar(leaders)
            assert total is None or total <= 1, f"{total} live leaders: split brain"
            epoch = prom.scalar(epochs)
            return total == 1 and epoch is not None and epoch > first_epoch

        wait_for(failed_over, 30, interval=0.2, message="a new leader with a higher epoch")
        [(new_labels, _)] = prom.query(f"zkelect_is_leader == 1 {live}")
        assert new_labels["instance"] != labels["instance"]

        survivor = by_instance[new_labels["instance"]]
        exposition = http_get(f"{survivor.url}/metrics")[1]
        assert promtool_complaints(promtool, exposition) == ""

        for proc in procs:
            if proc is not victim:
                assert proc.stop() == 0, proc.stderr()  # SIGTERM: a clean exit
    finally:
        if prometheus is not None:
            prometheus.stop()
        for proc in procs:
            proc.stop()
