"""``zkelect run`` and a planned switchover: real supervisors on the real ensemble, moved by
the library's ``request_switchover``. The old leader's child is stopped (SIGTERM, --grace,
SIGKILL, reaped) before its node is deleted, so it has exited before the new leader's child
starts; the supervisor's ``drained`` says how long that took. The drain mechanics of one
supervisor without ZooKeeper: tests/unit/test_run_priority_drain.py.

One test, two switchovers (one process each way), to stay within the suite's budget.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliProcess

from zkelect._election.switchover_request import request_switchover
from zkelect._zookeeper.tools import connected_session
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration

# The command `zkelect run` supervises. argv: OUT_DIR MODE, MODE one of
#   slow    on SIGTERM: take DRAIN seconds, record the exit, exit 0
#   ignore  SIGTERM ignored: only SIGKILL ends it
# Times are time.monotonic(): CLOCK_MONOTONIC, the same clock in every process on Linux.
CHILD = """
import json, os, signal, sys, time

out, mode = sys.argv[1], sys.argv[2]
pid = os.getpid()
DRAIN = 1.0

def dump(name, value):
    tmp = os.path.join(out, f".{name}.tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, os.path.join(out, name))

def on_term(signum, frame):
    time.sleep(DRAIN)
    dump(f"exit-{pid}.json", {"at": time.monotonic()})
    os._exit(0)

signal.signal(signal.SIGTERM, on_term if mode == "slow" else signal.SIG_IGN)
dump(f"start-{pid}.json", {"at": time.monotonic(), "epoch": int(os.environ["ZKELECT_EPOCH"])})
while True:
    time.sleep(0.05)
"""
DRAIN = 1.0


class Run(CliProcess):
    """One ``zkelect run --log-format json`` process; its log lines as objects."""

    def __init__(
        self, ensemble: LocalEnsemble, path: str, out: Path, name: str, mode: str, *opts: str
    ) -> None:
        child = [sys.executable, str(out.parent / "child.py"), str(out), mode]
        run = ["run", path, "--id", name, "--hosts", ensemble.hosts, "--log-format", "json"]
        super().__init__([*run, *opts, "--", *child])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = [json.loads(line) for line in list(self.lines) if line.startswith("{")]
        return [e for e in found if name is None or e.get("event") == name]

    def wait_event(self, name: str, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        self.wait_until(lambda _: len(self.events(name)) >= count, f"{name} #{count}", timeout)
        return self.events(name)[count - 1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)  # its child dies with it (PR_SET_PDEATHSIG)
        self.proc.wait(timeout=30)
        self.close()


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


def _record(out: Path, kind: str, pid: int) -> dict[str, Any]:
    """What child ``pid`` recorded (``start`` or ``exit``), once it has."""
    path = out / f"{kind}-{pid}.json"
    wait_for(path.exists, timeout=10, message=f"child {pid}'s {kind} record")
    return dict(json.loads(path.read_text()))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Run]]:
    """The supervisors a test starts; each stopped by PID, and their children checked gone."""
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "out").mkdir()
    started: list[Run] = []
    try:
        yield started
    finally:
        for run in started:
            run.stop()
        pids = [int(p.stem.split("-")[1]) for p in (tmp_path / "out").glob("start-*.json")]
        for pid in pids:  # PR_SET_PDEATHSIG took them; make sure, by PID
            if _alive(pid) and "child.py" in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(map(_alive, pids)), timeout=10, message="children left")


def test_the_old_leaders_child_exits_before_the_new_leaders_starts(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path, runs: list[Run]
) -> None:
    out = tmp_path / "out"
    # a's child takes DRAIN s to stop on SIGTERM (its --grace is longer); b's ignores SIGTERM
    # and --grace 1 SIGKILLs it.
    a = Run(ensemble, zk_path, out, "a", "slow", "--grace", "5")
    runs.append(a)
    a_child = a.wait_event("child_started")["pid"]
    b = Run(ensemble, zk_path, out, "b", "ignore", "--grace", "1")
    runs.append(b)
    b.wait_event("joined")

    with connected_session(ensemble.hosts, connect_timeout=10, session_timeout=10) as session:
        # 1. a -> b: a drains (its child's own DRAIN seconds), then b leads and starts its child.
        result = request_switchover(session, zk_path, to="b", timeout=30, by="test a->b")
        assert result.leader.candidate_id == "b" and result.previous.candidate_id == "a"
        assert result.leader.epoch > result.previous.epoch
        b_started = b.wait_event("child_started")
        a_exited = a.wait_event("child_exited")
        assert a_exited["pid"] == a_child and a_exited["code"] == 0  # SIGTERM was enough
        assert _at(a_exited) <= _at(b_started)
        b_child = b_started["pid"]
        assert _record(out, "exit", a_child)["at"] < _record(out, "start", b_child)["at"]
        drained = a.wait_event("drained")
        gap = (_at(b_started) - _at(a_exited)).total_seconds()
        print(f"a->b: drained {drained['seconds']}s, child exit to successor's start {gap:.3f}s")
        assert DRAIN <= drained["seconds"] < DRAIN + 2 and drained["cut_short"] is False
        assert _at(a.wait_event("draining")) <= _at(a_exited) <= _at(drained)
        assert [e["signal"] for e in a.events("child_signalled")] == ["SIGTERM"]
        revoked = a.wait_event("revoked")
        assert revoked["reason"] == "switchover"
        assert not a.events("draining")[1:] and len(a.events("child_started")) == 1
        # a keeps campaigning: re-queued behind b, so it can be handed leadership back.

        # 2. b -> a: b's child ignores SIGTERM, so --grace 1 ends in SIGKILL before b's node
        # goes; a leads again and starts a new child.
        result = request_switchover(session, zk_path, to="a", timeout=30, by="test b->a")
        assert result.leader.candidate_id == "a"
        a_again = a.wait_event("child_started", count=2)
        b_exited = b.wait_event("child_exited")
        assert b_exited["pid"] == b_child and b_exited["signal"] == "SIGKILL"
        assert [e["signal"] for e in b.events("child_signalled")] == ["SIGTERM", "SIGKILL"]
        assert _at(b_exited) <= _at(a_again)
        assert not _alive(b_child)
        drained = b.wait_event("drained")
        gap = (_at(a_again) - _at(b_exited)).total_seconds()
        print(f"b->a: drained {drained['seconds']}s, child exit to successor's start {gap:.3f}s")
        assert 1.0 <= drained["seconds"] < 3.0 and drained["cut_short"] is False
        start = _record(out, "start", a_again["pid"])
        assert start["epoch"] == result.leader.epoch > result.previous.epoch


def test_a_higher_priority_takes_over_drained(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path, runs: list[Run]
) -> None:
    """--priority and its settle and interval reach the election: a candidate of higher
    priority asks for leadership by itself, through the same drained switchover."""
    out = tmp_path / "out"
    quick = ["--priority-settle", "0.5", "--priority-interval", "0"]
    low = Run(ensemble, zk_path, out, "low", "slow", "--grace", "5", *quick)
    runs.append(low)
    low_child = low.wait_event("child_started")["pid"]
    high = Run(ensemble, zk_path, out, "high", "slow", "--priority", "5", *quick)
    runs.append(high)
    assert "-p5-latch-" in high.wait_event("joined")["node"]  # the priority is in its name
    started = high.wait_event("child_started")
    exited = low.wait_event("child_exited")
    assert exited["pid"] == low_child and _at(exited) <= _at(started)
    assert _record(out, "exit", low_child)["at"] < _record(out, "start", started["pid"])["at"]
    assert DRAIN <= low.wait_event("drained")["seconds"] < DRAIN + 2
    assert low.wait_event("revoked")["reason"] == "switchover"
