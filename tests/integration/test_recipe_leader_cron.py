"""recipes/leader_cron: run_every on a real ensemble, and cron.py as real processes.

* A run in progress when leadership is lost sees ``run.lead.lost`` set and stops; the other
  candidate runs the next slot; the old leader runs nothing while it follows.
* Missed slots (a run longer than the interval) are skipped, not caught up; runs never
  overlap and never start before their slot.
* cron.py: a leader frozen past its session timeout is replaced; when it thaws it stops the
  job it had started and runs nothing more while the other process leads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from zkelect import Election, ElectionConfig
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

REPO = Path(__file__).resolve().parents[2]
CRON = REPO / "recipes" / "leader_cron" / "cron.py"
_spec = importlib.util.spec_from_file_location("recipe_leader_cron", CRON)
assert _spec is not None and _spec.loader is not None
cron = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cron  # dataclasses need the module registered
_spec.loader.exec_module(cron)

CONFIG = ElectionConfig(session_timeout=2.0, request_timeout=5.0)


@pytest.fixture
def scheduled(ensemble: LocalEnsemble, zk_path: str) -> Iterator[Callable[..., Election]]:
    """``scheduled(id, interval, fn)``: a started candidate running run_every in a thread;
    stopped (and its thread joined) at teardown."""
    running: list[tuple[Election, threading.Thread]] = []

    def make(candidate_id: str, interval: float, fn: Callable[[Any], object]) -> Election:
        election = Election(ensemble.hosts, zk_path, candidate_id=candidate_id, config=CONFIG)
        election.start()
        thread = threading.Thread(target=cron.run_every, args=(election, interval, fn))
        thread.start()
        running.append((election, thread))
        return election

    yield make
    for election, _ in running:
        election.stop()
    for _, thread in running:
        thread.join(10)
        assert not thread.is_alive(), "run_every did not return after the election stopped"


def test_run_in_progress_sees_lost_and_the_next_run_waits_for_reelection(
    scheduled: Callable[..., Election],
) -> None:
    interval = 0.2
    runs: list[dict[str, Any]] = []
    lock = threading.Lock()

    def job(name: str) -> Callable[[Any], None]:
        def fn(run: Any) -> None:
            record = {"who": name, "slot": run.slot, "start": time.time(), "lead": run.lead}
            with lock:
                runs.append(record)
            if name == "a":  # a long job that stops cooperatively when leadership goes
                record["saw_lost"] = run.lead.lost.wait(15)
            record["end"] = time.time()

        return fn

    a = scheduled("a", interval, job("a"))
    assert a.wait_for_leadership(10) is not None
    b = scheduled("b", interval, job("b"))
    first = wait_for(lambda: runs and runs[0], 10, 0.01, "a's first run starts")
    assert first["who"] == "a" and first["start"] >= first["slot"] * interval

    assert a.resign()  # leadership lost while the run is in progress
    wait_for(lambda: "end" in first, 5, 0.01, "a's run stops cooperatively")
    assert first["saw_lost"] is True and first["lead"].reason is not None
    assert b.wait_for_leadership(10) is not None
    wait_for(lambda: sum(r["who"] == "b" for r in runs) >= 3, 10, 0.01, "b runs the next slots")

    with lock:
        by_a = [r for r in runs if r["who"] == "a"]
        by_b = [r for r in runs if r["who"] == "b"]
    assert by_a == [first], "a ran again while b leads"
    assert by_b[0]["slot"] > first["slot"]
    assert [r["slot"] for r in by_b] == sorted({r["slot"] for r in by_b})
    assert a.is_leader is False and a.node is not None  # a follows, re-queued


def test_missed_slots_are_skipped_not_caught_up(scheduled: Callable[..., Election]) -> None:
    interval = 0.2
    runs: list[dict[str, Any]] = []

    def fn(run: Any) -> None:
        record = {"slot": run.slot, "skipped": run.skipped, "start": time.time()}
        runs.append(record)
        if len(runs) == 1:
            time.sleep(2.5 * interval)  # overruns two and a half slots
        record["end"] = time.time()

    scheduled("solo", interval, fn)
    wait_for(lambda: len(runs) >= 4 and "end" in runs[3], 10, 0.01, "four runs")
    first, second, third = runs[0], runs[1], runs[2]
    assert first["skipped"] == 0
    # The slots that passed during the long run are skipped (reported), not run late.
    assert second["skipped"] >= 2
    assert second["slot"] == first["slot"] + second["skipped"] + 1
    assert second["slot"] * interval >= first["end"]  # the first slot still in the future
    assert third["slot"] == second["slot"] + 1 and third["skipped"] == 0
    for before, after in itertools.pairwise(runs[:4]):
        assert after["start"] >= before["end"]  # never overlapping
        assert after["start"] >= after["slot"] * interval  # never early
        assert after["slot"] > before["slot"]


class CronProcess:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(CRON), "--id", name, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def text(self) -> str:
        return self.log.read_text()

    def job_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"job pid (\d+)", self.text())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for pid in self.job_pids():  # a job left behind by a failed test: stop it by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


JOB = "import os, time; print('job pid', os.getpid(), flush=True); time.sleep(60)"


def test_cron_processes_frozen_leader_stops_its_job_after_thawing(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path
) -> None:
    args = ["--hosts", ensemble.hosts, "--path", zk_path, "--every", "0.3"]
    args += ["--session-timeout", "2", "--", sys.executable, "-c", JOB]
    a = CronProcess("a", args, tmp_path / "a.log")
    procs = [a]
    try:
        wait_for(lambda: a.job_pids(), 15, 0.05, "a leads and starts its job")
        b = CronProcess("b", args, tmp_path / "b.log")
        procs.append(b)
        wait_for(lambda: "candidate in" in b.text(), 15, 0.05, "b joins")
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: b.job_pids(), 20, 0.05, "b is elected and starts its job")
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        wait_for(lambda: "stopping the job" in a.text(), 10, 0.05, "a stops its job")
        (job,) = a.job_pids()
        wait_for(lambda: "exited" in a.text(), 10, 0.05, "a's job ended")
        with pytest.raises(ProcessLookupError):
            os.kill(job, 0)  # reaped by a: gone
        assert len(a.job_pids()) == 1 and len(b.job_pids()) == 1
    finally:
        for proc in procs:
            proc.stop()
    assert "run slot" not in a.text().split("stopping the job", 1)[1]
