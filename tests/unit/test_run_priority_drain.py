"""``zkelect run``'s drain for a switchover, one supervisor without ZooKeeper: the library's
``on_draining`` callback returns only once the loop has stopped the child (TERM, --grace,
KILL, reaped), so the node is deleted after the child exited; and nothing starts the child
again until leadership is gone. The child is a real ``sh`` in its own process group; the
leadership a stand-in with the fields the supervisor reads. The same with real processes
and ZooKeeper: tests/integration/test_cli_run_drain.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from zkelect.fencing.token import FencingToken
from zkelect.ops.supervisor import OnExit, Supervisor, SupervisorOptions
from zkelect.testing import wait_for

#: Takes LINGER seconds to stop on SIGTERM (its sleeps get the TERM too: the group's);
#: creates the file $1 once its trap is set.
SLOW = "trap 'sleep 0.3; exit 0' TERM; : > \"$1\"; while :; do sleep 0.05; done"
LINGER = 0.3
#: Only SIGKILL ends it.
STUBBORN = "trap '' TERM; : > \"$1\"; while :; do sleep 0.05; done"


def _lead() -> Any:
    token = FencingToken(epoch=42, path="/e", candidate_id="a", session_id=7)
    return SimpleNamespace(
        lost=threading.Event(),
        epoch=42,
        token=token,
        node_path="/e/_c_x-latch-0000000001",
        stop_by=None,
        reason="switchover",
    )


@pytest.fixture
def made() -> Iterator[list[Supervisor]]:
    """Supervisors a test made; their children are stopped (by PID, through the
    supervisor) whatever happens."""
    supervisors: list[Supervisor] = []
    yield supervisors
    for supervisor in supervisors:
        supervisor._hurry.set()
        supervisor._stop_child("")


def _supervisor(
    made: list[Supervisor], script: str, ready: Path | None = None, **options: Any
) -> Supervisor:
    command = ["sh", "-c", script, "sh", str(ready or "/dev/null")]
    opts = SupervisorOptions(hosts="127.0.0.1:9", path="/e", command=command, **options)
    supervisor = Supervisor(opts, handle_signals=False)
    made.append(supervisor)
    return supervisor


def _events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(r.event), vars(r))
        for r in caplog.records
        if r.name == "zkelect.run" and getattr(r, "event", None)
    ]


def _drain_on_the_callback_thread(
    supervisor: Supervisor, lead: Any, seconds: float
) -> tuple[threading.Thread, dict[str, Any]]:
    """Call ``on_draining`` as the library does, from another thread; what the child's
    state was when it returned."""
    seen: dict[str, Any] = {}
    child = supervisor._child
    assert child is not None

    def call() -> None:
        supervisor._on_draining(lead, time.monotonic() + seconds)
        seen["returned"] = time.monotonic()
        seen["child_finished"] = child.finished()

    thread = threading.Thread(target=call)
    thread.start()
    return thread, seen


def _next_drain(supervisor: Supervisor) -> tuple[Any, ...]:
    kind, value = supervisor._events.get(timeout=10)
    assert kind == "draining"
    return tuple(value)


def test_the_callback_returns_only_after_the_child_exited(
    made: list[Supervisor], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="zkelect.run")
    ready = tmp_path / "ready"
    supervisor = _supervisor(made, SLOW, ready, on_exit=OnExit.RESTART, grace=10.0)
    lead = _lead()
    supervisor._elected(lead)
    child = supervisor._child
    assert child is not None
    wait_for(ready.exists, timeout=5, message="the child's trap")  # a TERM before: no linger
    thread, seen = _drain_on_the_callback_thread(supervisor, lead, 20.0)

    supervisor._drain(*_next_drain(supervisor))  # the loop's turn
    thread.join(timeout=10)
    assert seen["child_finished"], "on_draining returned while the child still ran"
    assert child.proc.returncode == 0  # it stopped on SIGTERM, in its own time
    events = [name for name, _ in _events(caplog)]
    assert events[-4:] == ["draining", "child_signalled", "child_exited", "drained"]
    drained = _events(caplog)[-1][1]
    assert LINGER <= drained["seconds"] < 5 and drained["cut_short"] is False

    # Handing over: no restart (--on-exit restart) while the node is being deleted...
    assert supervisor._child is None and supervisor._restart_at is None
    assert supervisor._drained is lead
    # ...and once leadership is gone the candidate campaigns on, ready to lead again.
    lead.lost.set()
    supervisor._lost(lead)
    assert supervisor._drained is None and supervisor._lead is None


def test_a_child_ignoring_sigterm_is_killed_at_grace(
    made: list[Supervisor], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="zkelect.run")
    ready = tmp_path / "ready"
    supervisor = _supervisor(made, STUBBORN, ready, grace=0.3)
    lead = _lead()
    supervisor._elected(lead)
    child = supervisor._child
    assert child is not None
    wait_for(ready.exists, timeout=5, message="the child's trap")
    thread, seen = _drain_on_the_callback_thread(supervisor, lead, 20.0)
    supervisor._drain(*_next_drain(supervisor))
    thread.join(timeout=10)
    assert seen["child_finished"]
    assert child.proc.returncode == -9
    signals = [fields["signal"] for name, fields in _events(caplog) if name == "child_signalled"]
    assert signals == ["SIGTERM", "SIGKILL"]
    drained = _events(caplog)[-1][1]
    assert 0.3 <= drained["seconds"] < 5


def test_a_deadline_shorter_than_grace_kills_before_it(made: list[Supervisor]) -> None:
    supervisor = _supervisor(made, STUBBORN, grace=5.0)
    now = time.monotonic()
    assert supervisor._drain_kill_by(now + 5.0 + 10.0) is None  # drain_timeout: grace fits
    kill_by = supervisor._drain_kill_by(now + 2.0)
    assert kill_by is not None and kill_by == pytest.approx(now + 1.5, abs=0.01)


def test_a_drain_for_a_lost_leadership_only_answers(
    made: list[Supervisor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zkelect.run")
    supervisor = _supervisor(made, SLOW)
    lead = _lead()
    supervisor._lead = lead
    lead.lost.set()  # _lost stops the child on its own turn
    done = threading.Event()
    supervisor._drain(lead, time.monotonic() + 5, done)
    assert done.is_set()
    assert "draining" not in [name for name, _ in _events(caplog)]


def test_drains_never_wait_for_a_loop_that_ended(made: list[Supervisor]) -> None:
    supervisor = _supervisor(made, SLOW)
    lead = _lead()
    waiting = threading.Thread(target=supervisor._on_draining, args=(lead, time.monotonic() + 60))
    waiting.start()
    wait_for(lambda: not supervisor._events.empty(), timeout=5)
    supervisor._release_drains()  # the queued drain is answered
    waiting.join(timeout=5)
    assert not waiting.is_alive()
    began = time.monotonic()
    supervisor._on_draining(lead, time.monotonic() + 60)  # asked after the loop ended
    assert time.monotonic() - began < 1
