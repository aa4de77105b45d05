"""The benchmark suite's smoke run: every benchmark end to end at tiny sizes, then the report.

Nobody runs ``make bench`` in CI (it takes about ten minutes), so without this the scripts
would rot silently. ``bench/run_all.py --smoke`` runs all seven benchmarks (handover with
Election and AsyncElection, kazoo and a real Curator LeaderLatch driver compiled here, herd,
fenced writes with a real PostgreSQL, crash failover with real SIGKILL/SIGSTOP, idle CPU,
scale in subprocesses, planned switchovers) on one real 3-member ensemble, writing
everything under a temporary directory, never to bench/results or docs/. The targets are not
asserted (tiny sizes prove nothing about performance); what is asserted is that every
benchmark ran, measured what it claims, recorded its machine, versions and ensemble
settings, and that the report states each target.
"""

# ruff: noqa: RUF001  (the multiplication sign and the en dash are meant: typography)

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from zkelect.testing import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("handover", "herd", "fenced_write", "crash", "idle_cpu", "scale", "switchover")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the smoke suite once for every test of this module (about a minute)."""
    out = tmp_path_factory.mktemp("bench-smoke")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # On timeout subprocess.run SIGKILLs run_all.py; everything it started dies with it
    # (PR_SET_PDEATHSIG on the ensemble, the benchmarks and their children).
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--output-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    results = {
        name: json.loads((out / f"{name}.json").read_text())
        for name in BENCHMARKS
        if (out / f"{name}.json").exists()
    }
    return {"out": out, "done": done, "results": results}


def test_every_benchmark_runs_and_the_report_is_written(smoke: dict[str, Any]) -> None:
    done, out = smoke["done"], smoke["out"]
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr}"
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["smoke"] is True
    assert {name: b["status"] for name, b in run["benchmarks"].items()} == dict.fromkeys(
        BENCHMARKS, "ok"
    )
    assert set(smoke["results"]) == set(BENCHMARKS)

    # Every ZooKeeper server the suite started is gone.
    match = re.search(r"^ensemble pids: ([\d ]+)$", done.stdout, re.MULTILINE)
    assert match, done.stdout[-2000:]
    pids = [int(pid) for pid in match.group(1).split()]
    assert len(pids) == 3
    wait_for(lambda: not [p for p in pids if alive(p)], 10, message=f"servers among {pids}")

    report = (out / "benchmarks.md").read_text()
    assert "shared 2-core" in report
    assert "## Targets at a glance" in report
    for heading in ("Handover", "Herd", "Crash", "Scale", "Fenced write", "idle", "switchover"):
        assert re.search(rf"^## \d\. .*{heading}", report, re.MULTILINE | re.IGNORECASE), heading
    for target in (
        "≤ 0.85× the re-reading floor",
        "≤ 0.8× both kazoo's and Curator's",
        "≤ 1.2× the notification floor",
        "exactly 1 candidate woken",
        "≤ 1 watch per candidate node besides its owner's",
        "session timeout + 10%",
        "(`start(wait=False)`) all led sooner than kazoo's",
        "blocking `start()` all led no slower than kazoo's",
        "`AsyncElection` median ≤ `Election`'s + 0.3 ms",
        "`AsyncElection`s, `await asyncio.gather(*(e.start() …))` from one loop, all led within",
        "≤ 1.2× plain",
        "near zero CPU",
        "the chosen candidate leads, alone, with a higher epoch, after the old leader drained",
    ):
        assert target in report, target
    assert re.search(r"\*\*(NOT )?met\*\*", report)
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("handover", "herd", "scale", "crash", "fenced-write", "idle-cpu"):
            png = out / "img" / f"bench-{name}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
            assert f"img/bench-{name}.png" in report
    else:
        assert "Plots skipped" in report


def test_each_result_records_machine_versions_and_ensemble(smoke: dict[str, Any]) -> None:
    for name, data in smoke["results"].items():
        machine, ensemble = data["machine"], data["ensemble"]
        assert machine["cpu_count"] and machine["python"] and machine["kazoo"], name
        assert machine["zookeeper"].startswith("3."), (name, machine["zookeeper"])
        assert ensemble["size"] == 3 and ensemble["loopback"] is True, name
        assert ensemble["tick_time_ms"] == 200, name
        assert data["params"]["smoke"] is True, name
        assert data["benchmark"] == name


def test_handover_compares_zkelect_kazoo_and_curator_with_both_floors(
    smoke: dict[str, Any],
) -> None:
    handover = smoke["results"]["handover"]
    rows = handover["results"]
    assert {r["implementation"] for r in rows} == {
        "floor",
        "notification",
        "zkelect",
        "zkelect-async",
        "kazoo",
        "curator",
    }
    for row in rows:
        assert 0 < row["median_ms"] <= row["p90_ms"] <= row["p99_ms"], row
        assert row["median_ratio"] > 0
        if row["implementation"] in ("floor", "notification"):
            assert row["samples_per_op"] >= 6, row  # the idle batch, then after every round
        else:
            assert row["rounds"] == len(row["samples_ms"]) >= 3
            assert row["median_ratio_to_notification"] > 0
    assert handover["machine"]["curator"]
    # Every target has a computed verdict for every N (a bool, whatever the tiny run measured).
    target = handover["target"]
    for key in ("met", "below_peers", "near_notification", "async_within"):
        assert set(target[key]) == {str(n) for n in handover["params"]["sizes"]}, key
        assert all(isinstance(ok, bool) for ok in target[key].values()), key
    # zkelect-async's rounds alternated with zkelect's: as many of each, paired differences.
    by = {r["implementation"]: r for r in rows}
    assert by["zkelect-async"]["rounds"] == by["zkelect"]["rounds"]
    assert by["zkelect-async"]["paired_difference_median_ms"] is not None
    assert by["zkelect-async"]["breakdown"]["flipped_median_ms"] is not None


def test_herd_counts_wakeups_on_the_servers_and_the_clients(smoke: dict[str, Any]) -> None:
    rows = {r["recipe"]: r for r in smoke["results"]["herd"]["results"]}
    zk, naive = rows["zkelect"], rows["naive"]
    n = zk["n"]
    change = zk["leader_change"]
    # zkelect: the successor is told its predecessor went and leads without a look when it
    # knew it led; the next in line is told the new leader's marker exists (R13): at most two
    # candidates woken, whatever N (no herd), and at most one look.
    assert 1 <= change["candidates_woken"] <= 2
    assert change["candidates_notified"] <= change["candidates_woken"]
    assert change["candidates_looked"] <= 1
    assert change["server_notifications"] >= change["candidates_notified"] >= 1
    assert zk["join"]["candidates_woken"] == 0
    # Each candidate node is watched by its successor at most, besides its owner.
    assert zk["at_rest"]["max_foreign_watches_per_candidate_node"] == 1
    assert zk["at_rest"]["watches_on_leader_node"] >= 1
    # The naive recipe notifies everyone but the leaver, and each re-reads the children.
    assert naive["leader_change"]["candidates_notified"] == n - 1
    assert naive["leader_change"]["candidates_looked"] == n - 1
    assert naive["leader_change"]["candidates_woken"] == n - 1
    assert naive["leader_change"]["requests"] >= n
    assert naive["at_rest"]["server_watches_per_candidate"] == 1


def test_crash_fenced_scale_and_idle_measured_what_they_claim(smoke: dict[str, Any]) -> None:
    crash = smoke["results"]["crash"]["results"]
    assert set(crash["by_signal"]) == {"SIGKILL", "SIGSTOP"}
    timeout = crash["session_timeout_s"]
    for trial in crash["trials"]:
        # The successor can only lead once ZooKeeper expired the crashed leader's session.
        assert 0.5 * timeout < trial["failover_s"] < 3 * timeout, trial

    fenced = {r["name"]: r for r in smoke["results"]["fenced_write"]["results"]}
    assert {"zookeeper set", "sqlite transaction"} <= set(fenced)
    assert any(name.startswith("postgresql transaction") for name in fenced), smoke["results"][
        "fenced_write"
    ].get("skipped")
    assert all(r["ratio"] > 0 and r["samples"] >= 20 for r in fenced.values())

    scale = smoke["results"]["scale"]
    per = {(r["impl"], r["variant"]): r for r in scale["results"]["elections_per_session"]}
    assert set(per) == {
        ("zkelect", "start(wait=False)"),
        ("zkelect-async", "await gather(start())"),
        ("zkelect", "start()"),
        ("kazoo", "run(func), a thread each"),
    }
    params = scale["params"]
    assert per["zkelect", "start(wait=False)"]["elections"] == params["zkelect_elections"]
    assert per["zkelect-async", "await gather(start())"]["elections"] == params["async_elections"]
    assert per["zkelect-async", "await gather(start())"]["threads"] <= 16
    assert per["zkelect", "start()"]["elections"] == params["blocking_elections"]
    kazoo = per["kazoo", "run(func), a thread each"]
    assert kazoo["threads"] >= kazoo["elections"]  # a thread per election
    for variant in ("start(wait=False)", "start()"):
        assert per["zkelect", variant]["threads"] <= 16  # a handful, whatever the count
    assert isinstance(scale["target"]["pipelined_met"], bool)
    assert isinstance(scale["target"]["blocking_met"], bool)
    assert isinstance(scale["target"]["async_met"], bool)
    assert {r["impl"] for r in scale["results"]["join"]} == {"zkelect", "kazoo"}
    assert all(r["time_to_first_leader_s"] > 0 for r in scale["results"]["join"])

    idle = smoke["results"]["idle_cpu"]["results"]
    assert {(r["impl"], r["role"]) for r in idle} == {
        ("zkelect", "leader"),
        ("zkelect", "candidate"),
        ("kazoo", "leader"),
        ("kazoo", "candidate"),
    }
    assert all(r["ticks_per_s"] >= 0 for r in idle)


def test_switchover_measured_each_kind_and_kept_its_guarantees(smoke: dict[str, Any]) -> None:
    data = smoke["results"]["switchover"]
    rows = [r for r in data["results"] if r["kind"] in ("switchover", "resign")]
    n = data["params"]["sizes"][0]
    # Five kinds of round: to the next and to the last in line, each with a no-op and a
    # 50 ms drain, and the resign reference; each measured as many times as asked.
    assert {(r["kind"], r["target"], r["drain_s"]) for r in rows} == {
        ("switchover", "next", 0.0),
        ("switchover", "last", 0.0),
        ("switchover", "next", 0.05),
        ("switchover", "last", 0.05),
        ("resign", "next", 0.0),
    }
    for row in rows:
        assert row["n"] == n and row["rounds"] == data["params"]["rounds"], row
        assert not row["failures"] and not row["broken"], row
        assert 0 < row["first_write_ms"]["median"] <= row["first_write_ms"]["p90"], row
        assert row["elected_ms"]["median"] <= row["first_write_ms"]["median"], row
        assert row["ratio_to_resign"] > 0, row
        if row["kind"] == "switchover":
            # accepted comes before the new leader's first write; the 50 ms drain held the
            # handover back for at least its 50 ms (checked per round: drained, then elected).
            assert row["accepted_ms"]["median"] < row["first_write_ms"]["median"], row
            assert row["drain_ms"]["median"] >= 1000 * row["drain_s"], row
            assert row["steps_median_ms"]["drained"] <= row["steps_median_ms"]["elected"], row
    assert data["checks"]["guarantees_kept"] is True, data["checks"]
    # The leaders counted their hand-overs (warm-up rounds included).
    metrics = next(r for r in data["results"] if r["kind"] == "leader_metrics")
    switchovers = sum(1 for r in rows if r["kind"] == "switchover")
    total = data["params"]["rounds"] + data["params"]["warmup_rounds"]
    assert metrics["switchovers_by_result"].get("handed_over") == switchovers * total, metrics
