"""``zkelect run``'s loop in ``/livez``: stuck only beyond a whole child stop."""

from __future__ import annotations

import time

from zkelect.ops.supervisor import Supervisor, SupervisorOptions


def _supervisor(grace: float) -> Supervisor:
    options = SupervisorOptions(hosts="127.0.0.1:2181", path="/e", command=["true"], grace=grace)
    return Supervisor(options, handle_signals=False)


def test_the_loop_is_alive_until_silent_for_longer_than_a_whole_child_stop() -> None:
    supervisor = _supervisor(grace=5.0)
    supervisor._looped_at = time.monotonic() - 1000
    assert supervisor._loop_problem() is None  # not looping yet: joining has its own timeout
    supervisor._phase = "looping"
    supervisor._looped_at = time.monotonic() - 30  # within grace 5 + reaping 10 + slack 20
    assert supervisor._loop_problem() is None
    supervisor._looped_at = time.monotonic() - 40
    problem = supervisor._loop_problem()
    assert problem is not None and "has not turned for 40s" in problem
    supervisor._phase = "stopping"
    assert supervisor._loop_problem() is None
