"""Planned switchover (issue 17) with real ``zkelect run`` candidates on a real ensemble.

Each test starts ``zkelect run --log-format json`` supervisors whose child (test_cli_run.py's
script) records its start and the SIGTERM it gets, drives ``zkelect switchover`` as a
subprocess, and asserts from ZooKeeper (the order of the nodes, their czxids: the epochs) and
from the supervisors' JSON lines. Sessions are 2 s unless the point is another timeout. Every
process is stopped by PID at teardown, pass or fail (switchover_support.Fleet.cleanup).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import loads_strict
from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, WatchedEvent
from switchover_support import Finished, Fleet, Term, at
from test_cli_run import SESSION_TIMEOUT, Runs, death_watch

from zkelect._election.switchover import node_priority
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration

WAIT = 30.0
SLACK = 1.5  # s: a loaded 2-core machine's scheduling, beyond what the protocol itself takes


@pytest.fixture
def fleet(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str, tmp_path: Path
) -> Iterator[Fleet]:
    made = Fleet(Runs(ensemble.hosts, zk_path, tmp_path), kazoo_client, ensemble.hosts, zk_path)
    try:
        yield made
    finally:
        made.cleanup()


def succeeded(done: Finished) -> dict[str, Any]:
    """The ``--json`` answer of a switchover that exited 0."""
    assert done.returncode == 0, done
    answer: dict[str, Any] = loads_strict(done.stdout)
    return answer


def failed(done: Finished) -> str:
    """The one ``zkelect: ...`` line of a switchover that exited 1."""
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("zkelect: "), done.stderr
    return line


def assert_drained(fleet: Fleet, old: Term, new: Term, gone: list[float]) -> None:
    """``old``'s child exited before ``new``'s started: by the children's own clock
    (CLOCK_MONOTONIC: the same in every process) and in the supervisors' logs."""
    wait_for(lambda: gone, WAIT, message=f"the old child {old.pid} to be gone")
    assert gone[0] < new.started, (old, new, gone)
    assert at(fleet.exited(old)) < new.logged, (old, new)
    assert new.epoch > old.epoch, (old, new)
    assert fleet.contenders()[0].epoch == new.epoch  # the leader's node is the new term's


def test_switchover_to_the_last_in_line_then_to_the_next_in_line(fleet: Fleet) -> None:
    for candidate in ("so-a", "so-b", "so-c", "so-d"):
        fleet.start(candidate)
    wait_for(lambda: len(fleet.order()) == 4, WAIT, message="4 candidates to join")
    leader, first, second, last = fleet.order()
    old = fleet.leading(leader)
    gone = death_watch(old.pid)

    # 1. To the last of four: the two ahead of it step back, in order; the old leader drains,
    # then re-queues at the back.
    answer = succeeded(fleet.switchover("--to", last, "--json"))
    new = fleet.leading(last)
    assert answer["result"] == "handed_over", answer
    assert answer["leader"]["id"] == last and answer["previous"]["id"] == leader, answer
    assert int(answer["leader"]["epoch"]) == new.epoch
    assert int(answer["previous"]["epoch"]) == old.epoch
    assert_drained(fleet, old, new, gone)
    fleet.wait_order([last, first, second, leader])
    assert fleet.count("stepping_back", first) == fleet.count("stepping_back", second) == 1
    assert fleet.count("stepping_back", leader, last) == 0
    assert fleet.count("child_started") == 2  # the ones that stepped back never led
    assert not fleet.request_left()
    print(f"to the last of 4: {answer['seconds']:.3f}s, drain {answer['drain_seconds']:.3f}s")

    # 2. No --to: the next in line takes over, drained all the same; nobody steps back.
    gone = death_watch(new.pid)
    answer = succeeded(fleet.switchover("--json"))
    following = fleet.leading(first)
    assert answer["leader"]["id"] == first and answer["previous"]["id"] == last, answer
    assert_drained(fleet, new, following, gone)
    fleet.wait_order([first, second, leader, last])
    assert fleet.count("stepping_back") == 2
    assert fleet.count("child_started") == 3
    assert not fleet.request_left()
    print(f"to the next in line: {answer['seconds']:.3f}s, drain {answer['drain_seconds']:.3f}s")


def test_a_child_that_takes_its_time_is_awaited_and_nobody_leads_twice(fleet: Fleet) -> None:
    linger = 1.5
    fleet.start("slow-a", f"linger:{linger}")
    old = fleet.leading("slow-a")
    fleet.start("slow-b")
    fleet.wait_order(["slow-a", "slow-b"])
    gone = death_watch(old.pid)

    answer = succeeded(fleet.switchover("--to", "slow-b", "--json"))
    new = fleet.leading("slow-b")
    assert_drained(fleet, old, new, gone)
    term_at = fleet.runs.term_at(old.pid)
    assert term_at is not None, "the old child never got SIGTERM"
    assert gone[0] - term_at >= linger * 0.9  # it had all the time it took
    assert fleet.exited(old)["code"] == 0  # ... and exited by itself, not SIGKILLed
    assert linger * 0.9 <= answer["drain_seconds"] <= linger + SLACK, answer
    assert fleet.count("drained", "slow-a") >= 1
    fleet.wait_order(["slow-b", "slow-a"])
    # One term each: the old leader is not elected again once drained (it re-queued).
    assert [fleet.count("elected", c) for c in ("slow-a", "slow-b")] == [1, 1]
    assert fleet.count("child_started") == 2
    print(f"a child that drains in {linger:g}s: drain {answer['drain_seconds']:.3f}s")


def test_a_child_that_ignores_sigterm_is_killed_at_grace_then_the_node_goes(
    fleet: Fleet,
) -> None:
    grace = 1.0
    fleet.start("stubborn-a", "ignore-term", "--grace", f"{grace:g}")
    old = fleet.leading("stubborn-a")
    fleet.start("stubborn-b")
    fleet.wait_order(["stubborn-a", "stubborn-b"])
    gone = death_watch(old.pid)

    answer = succeeded(fleet.switchover("--json"))
    new = fleet.leading("stubborn-b")
    assert answer["leader"]["id"] == "stubborn-b", answer
    assert_drained(fleet, old, new, gone)
    signals = [e["signal"] for e in fleet.named("stubborn-a", "child_signalled")]
    assert signals == ["SIGTERM", "SIGKILL"], signals
    assert fleet.exited(old)["signal"] == "SIGKILL"
    term_at = fleet.runs.term_at(old.pid)
    assert term_at is not None and gone[0] - term_at >= grace * 0.9, (term_at, gone)
    assert grace * 0.9 <= answer["drain_seconds"] <= grace + SLACK, answer
    print(f"SIGKILLed at --grace {grace:g}s: drain {answer['drain_seconds']:.3f}s")


def test_a_frozen_leader_does_not_answer_and_nothing_changes(fleet: Fleet) -> None:
    # The leader's session outlives the freeze (10 s, the default): only its answer is missing.
    fleet.start("frozen-a", session_timeout=None)
    fleet.leading("frozen-a")
    fleet.start("frozen-b")
    fleet.start("frozen-c")
    wait_for(lambda: len(fleet.order()) == 3, WAIT, message="3 candidates to join")
    target = fleet.order()[-1]
    before = [(c.name, c.epoch) for c in fleet.contenders()]
    leader = fleet.supervisor("frozen-a")

    os.kill(leader.pid, signal.SIGSTOP)
    try:
        done = fleet.switchover("--to", target, "--timeout", "3")
        frozen = [(c.name, c.epoch) for c in fleet.contenders()]
        left = fleet.request_left()
    finally:
        os.kill(leader.pid, signal.SIGCONT)
    assert "did not answer" in failed(done), done
    assert not left  # the request node was deleted before the command failed
    # Nothing changed: the same leader with the same epoch, and the one ahead of the target
    # did not step back for a request the leader never accepted.
    assert frozen == before
    assert [(c.name, c.epoch) for c in fleet.contenders()] == before
    assert fleet.count("stepping_back") == fleet.count("draining") == 0
    assert fleet.count("child_started") == 1


def test_the_target_dying_mid_switchover_leaves_another_leader_within_a_session_timeout(
    fleet: Fleet, kazoo_client: KazooClient
) -> None:
    # The old leader's child drains for 3 s; the target's session (1 s) ends meanwhile. (Had
    # it outlived the drain, the dead target's node would be first when the old leader's went;
    # the command waits for the target's leader marker, which never comes, until the node
    # goes with its session, and then names the next one, as here.)
    fleet.start("dies-a", "linger:3")
    old = fleet.leading("dies-a")
    fleet.start("dies-b", session_timeout="1")
    fleet.wait_order(["dies-a", "dies-b"])
    fleet.start("dies-c")
    fleet.wait_order(["dies-a", "dies-b", "dies-c"])
    deleted: list[float] = []

    def on_change(event: WatchedEvent) -> None:
        if event.type == EventType.DELETED:
            deleted.append(time.time())

    assert kazoo_client.exists(f"{fleet.path}/{fleet.contenders()[0].name}", watch=on_change)
    gone = death_watch(old.pid)

    command = fleet.begin_switchover("--to", "dies-b", "--json")
    fleet.events("dies-a").wait("draining", timeout=WAIT)
    target = fleet.supervisor("dies-b")
    os.kill(target.pid, signal.SIGKILL)
    target.proc.wait(timeout=WAIT)

    line = failed(fleet.finish(command))
    new = fleet.leading("dies-c")
    # Interrupted, naming the one who leads after the drain (not the old leader, which was
    # still draining when the target went: it deletes its node once drained all the same).
    assert "'dies-b'" in line and "left during the switchover" in line, line
    assert re.search(r"'dies-c' \(\S+\) leads now$", line), line
    assert_drained(fleet, old, new, gone)
    wait_for(lambda: deleted, WAIT, message="the old leader's node to go")
    no_leader = at(fleet.events("dies-c").named("elected")[0]) - deleted[0]
    assert no_leader <= float(SESSION_TIMEOUT) + SLACK, no_leader
    assert fleet.count("child_started", "dies-b") == 0
    assert not fleet.request_left()
    print(f"no leader for {no_leader:.3f}s after the old leader's node went")


def test_a_rolling_upgrade_by_priority_ends_on_a_new_version_after_one_switchover(
    fleet: Fleet,
) -> None:
    knobs = ("--priority-settle", "1", "--priority-interval", "3")
    for index in range(1, 6):
        fleet.start(f"roll-{index}", "normal", "--priority", "0", *knobs)
    wait_for(lambda: len(fleet.order()) == 5, WAIT, message="5 candidates to join")
    order = fleet.order()
    fleet.leading(order[0])

    # The new version (priority 1) replaces the followers one at a time; the first of them to
    # have settled asks for leadership, and gets it once the leader's interval is over.
    for candidate in order[1:]:
        fleet.stop(candidate)
        fleet.start(candidate, "normal", "--priority", "1", *knobs)
        fleet.events(candidate).wait("joined", timeout=WAIT)
    wait_for(
        lambda: node_priority(fleet.contenders()[0].name) == 1,
        WAIT,
        message="a priority-1 candidate to lead",
    )
    leader = fleet.order()[0]
    term = fleet.leading(leader)
    # Last, the old leader (a follower now) is upgraded too: nothing moves any more.
    fleet.stop(order[0])
    fleet.start(order[0], "normal", "--priority", "1", *knobs)
    fleet.events(order[0]).wait("joined", timeout=WAIT)
    contenders = fleet.contenders()
    assert (contenders[0].candidate_id, contenders[0].epoch) == (leader, term.epoch)
    assert [node_priority(c.name) for c in contenders] == [1] * 5
    assert fleet.count("handed_over") == 1, fleet.named(order[0], "handed_over")
    assert fleet.count("child_started") == 2
