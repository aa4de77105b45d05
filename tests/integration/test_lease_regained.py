"""A leader whose lease ran out while its session survived leads again (found by the chaos run).

The lease ends well before the servers could expire the session (R7), so a process frozen
for longer than the lease but shorter than the session timeout wakes up, revokes itself
("lease_expired") and still has its node first in line on a live session. Nothing else
changes in the election, so nothing wakes anyone: before the fix the election stayed
leaderless until that session ended (chaos seed 1: 23 s without a leader, until the next
fault). The candidate must look again (one session timeout later, when a dying session
has surely been expired by the servers) and lead with the same epoch.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from zkelect._lifeline import popen_tied
from zkelect.testing.ensemble import LocalEnsemble

CHILD = Path(__file__).with_name("fencing_child.py")
REPO = Path(__file__).resolve().parents[2]
# Lease = last ack + 0.8 * 6 s - heartbeat (1.5 s) <= 3.3 s after the freeze begins; the
# servers expire the session no sooner than last touch (>= 1.5 s before) + 6 s = 4.5 s.
SESSION_TIMEOUT = 6.0
FREEZE = 3.9


def test_leader_frozen_past_its_lease_but_not_its_session_leads_again(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = popen_tied(
        [
            sys.executable,
            str(CHILD),
            "--hosts",
            ensemble.hosts,
            "--path",
            zk_path,
            "--id",
            "frozen",
            "--store",
            "sqlite",
            "--target",
            str(tmp_path / "fence.db"),
            "--session-timeout",
            str(SESSION_TIMEOUT),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()

    backlog: list[dict[str, Any]] = []

    def expect(kind: str, timeout: float) -> dict[str, Any]:
        """The first unclaimed event of ``kind``, waiting up to ``timeout`` for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in backlog:
                if event["event"] == kind:
                    backlog.remove(event)
                    return event
            try:
                backlog.append(events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {kind!r} event within {timeout}s: {backlog}") from None

    try:
        epoch = expect("elected", 30)["epoch"]
        session = expect("joined", 10)["session"]
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            threading.Event().wait(FREEZE)  # the fault itself: a freeze of a chosen length
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert expect("revoked", 10)["reason"] == "lease_expired"
        again = expect("elected", 15)
        assert again["epoch"] == epoch  # the same node, on the same session
        assert proc.stdin is not None
        proc.stdin.write("status\n")
        proc.stdin.flush()
        status = expect("status", 10)
        assert status["leader"] is True and status["session"] == session
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(15)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
