"""Planned switchovers through the library (R14), on real ZooKeeper: the request, the
deputies stepping back in order, the drain before the delete, the refusals that leave
nothing behind, a leader or a candidate ahead that knows no switchover, the drain deadline,
priority with its flap guard, and AsyncElection's work drained. (`zkelect run` processes
and the CLI: test_switchover.py, test_cli_switchover.py.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from election_support import FAST, Candidate, candidate_children, hand_numbered
from kazoo.client import KazooClient

from zkelect import (
    ElectionConfig,
    LeaderNotAnsweringError,
    Leadership,
    SwitchoverInProgressError,
    SwitchoverRefusedError,
    TargetNotReadyError,
    UnknownCandidateError,
)
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect.aio import AsyncElection, AsyncLeadership
from zkelect.metrics import NoopRecorder
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

pytestmark = pytest.mark.integration
WAIT = 10.0


class Switches(NoopRecorder):
    """Counts a candidate's switchover results and drains (its metrics hooks)."""

    def __init__(self) -> None:
        self.results: list[str] = []
        self.drains: list[float] = []

    def switchover(self, election: str, result: str) -> None:
        self.results.append(result)

    def switchover_drained(self, election: str, seconds: float) -> None:
        self.drains.append(seconds)


class Drains:
    """on_draining for several candidates: when each drain began and ended."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, float]] = []

    def of(self, name: str) -> Callable[[Leadership, float], None]:
        def on_draining(lead: Leadership, deadline: float) -> None:
            assert lead.is_valid()  # still leading while it drains: its writes still land
            self._note(name, "began")
            time.sleep(self.seconds)
            self._note(name, "ended")

        return on_draining

    def _note(self, name: str, what: str) -> None:
        with self.lock:
            self.events.append((name, what, time.monotonic()))

    def times(self, name: str, what: str) -> list[float]:
        with self.lock:
            return [t for n, w, t in self.events if n == name and w == what]


def _queue(
    hosts: str,
    zk_path: str,
    candidates: Callable[..., Candidate],
    n: int,
    drains: Drains,
    config: ElectionConfig = FAST,
) -> list[tuple[Candidate, Switches]]:
    made = []
    for i in range(n):
        switches = Switches()
        made.append(
            (
                candidates(
                    hosts,
                    zk_path,
                    f"c{i}",
                    config=config,
                    metrics=switches,
                    on_draining=drains.of(f"c{i}"),
                ),
                switches,
            )
        )
        wait_for(lambda: len(made[0][0].election.candidates()) == len(made), WAIT)
    wait_for(lambda: made[0][0].election.is_leader, WAIT, message="the first leads")
    return made


def _ids(candidate: Candidate) -> list[str]:
    return [info.candidate_id for info in candidate.election.candidates()]


def _no_request(client: KazooClient, zk_path: str) -> bool:
    return client.exists(f"{zk_path}/{REQUEST_NODE}") is None


def test_switchover_to_the_last_in_line_steps_the_others_back_in_order(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_client: KazooClient,
) -> None:
    drains = Drains(seconds=0.3)
    queue = _queue(ensemble.hosts, zk_path, candidates, 4, drains)
    (c0, m0), (c1, _), (c2, _), (c3, _) = queue

    result = c1.election.request_switchover(to="c3", timeout=WAIT)

    assert result.leader.candidate_id == "c3" and result.previous.candidate_id == "c0"
    assert result.leader.epoch > result.previous.epoch  # R5: a higher epoch
    wait_for(lambda: c3.election.is_leader, WAIT, message="c3 believes it leads")
    # Drained first: c0's on_draining ended before c3 was elected, and c0 was still leading
    # while it drained (asserted in the callback).
    assert drains.times("c0", "ended")[0] <= c3.recorder.time_of("elected")
    assert result.drain_seconds is not None and result.drain_seconds >= 0.25
    assert c0.recorder.of("revoked") == ["switchover"] and m0.results == ["handed_over"]
    assert len(m0.drains) == 1 and m0.drains[0] >= 0.3
    # c1 and c2 stepped back in their order, and nobody but c3 led meanwhile.
    wait_for(lambda: len(_ids(c3)) == 4, WAIT, message="everyone re-joined")
    assert _ids(c3) == ["c3", "c1", "c2", "c0"]
    assert [c.recorder.of("elected") for c in (c1, c2)] == [[], []]
    assert _no_request(kazoo_client, zk_path)


def test_without_a_target_the_next_in_line_takes_over_drained_on_a_single_server(
    make_ensemble: Callable[..., LocalEnsemble],
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    single = make_ensemble(1)
    drains = Drains()
    (c0, m0), (c1, _), _ = _queue(single.hosts, zk_path, candidates, 3, drains)

    result = c0.election.request_switchover(timeout=WAIT)  # the leader asks, for the next

    assert result.leader.candidate_id == "c1"
    assert drains.times("c0", "began") and m0.results == ["handed_over"]
    wait_for(lambda: c1.election.is_leader, WAIT)
    assert _no_request(kazoo_clients(single.hosts), zk_path)


def test_refusals_are_typed_and_leave_nothing_behind(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_client: KazooClient,
) -> None:
    drains = Drains()
    queue = _queue(ensemble.hosts, zk_path, candidates, 2, drains)
    (c0, m0), (c1, _) = queue
    before = candidate_children(kazoo_client, zk_path)

    with pytest.raises(UnknownCandidateError, match="'nobody' is no candidate"):
        c1.election.request_switchover(to="nobody", timeout=2)
    with pytest.raises(SwitchoverRefusedError, match=r"leads .* already"):
        c1.election.request_switchover(to="c0", timeout=2)
    # Another switchover pending (made by hand, by another session): refused, untouched.
    other = SwitchoverRequest.new(
        to="x", to_id="x", frm="y", reason="operator", by="another", now=time.time(), timeout=9
    ).moved(State.ACCEPTED)  # by another leader "y": nobody here acts on it
    kazoo_client.create(f"{zk_path}/{REQUEST_NODE}", other.encode(), ephemeral=True)
    with pytest.raises(SwitchoverInProgressError, match="asked by another"):
        c1.election.request_switchover(to="c1", timeout=2)
    assert kazoo_client.get(f"{zk_path}/{REQUEST_NODE}")[0] == other.encode()  # untouched
    kazoo_client.delete(f"{zk_path}/{REQUEST_NODE}")

    assert candidate_children(kazoo_client, zk_path) == before
    assert c0.election.is_leader and drains.events == [] and m0.results == []


def test_a_leader_that_knows_no_switchover_never_answers_and_nothing_changes(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    # The leader is a node like a Curator LeaderLatch's (or a frozen zkelect leader's): it
    # holds no watch on the request and never moves it.
    latch = kazoo_clients(ensemble.hosts)
    latch.ensure_path(zk_path)
    hand_numbered(latch, zk_path, 0, b"curator-leader")
    drains = Drains()
    c1 = candidates(ensemble.hosts, zk_path, "c1", on_draining=drains.of("c1"))
    candidates(ensemble.hosts, zk_path, "c2", on_draining=drains.of("c2"))
    wait_for(lambda: _ids(c1) == ["curator-leader", "c1", "c2"], WAIT)

    started = time.monotonic()
    with pytest.raises(LeaderNotAnsweringError, match=r"did not answer within 1\.5s"):
        c1.election.request_switchover(to="c2", timeout=1.5)

    assert time.monotonic() - started < WAIT
    assert _ids(c1) == ["curator-leader", "c1", "c2"]  # nobody stepped back
    assert _no_request(latch, zk_path) and drains.events == []


def test_a_target_behind_a_candidate_that_cannot_step_back_is_never_ready(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    drains = Drains()
    ((c0, m0),) = _queue(ensemble.hosts, zk_path, candidates, 1, drains)
    latch = kazoo_clients(ensemble.hosts)
    latch.create(f"{zk_path}/_c_0-latch-", b"curator-follower", ephemeral=True, sequence=True)
    c2 = candidates(ensemble.hosts, zk_path, "c2", on_draining=drains.of("c2"))
    wait_for(lambda: _ids(c0) == ["c0", "curator-follower", "c2"], WAIT)

    with pytest.raises(TargetNotReadyError, match="cannot step back"):
        c2.election.request_switchover(to="c2", timeout=1.5)

    assert c0.election.is_leader and drains.events == []  # never drained
    # Accepted, then withdrawn by the requester (the leader hears of it a moment later).
    wait_for(lambda: m0.results == ["withdrawn"], WAIT, message="counted as withdrawn")
    assert _ids(c0) == ["c0", "curator-follower", "c2"]
    assert _no_request(latch, zk_path)


def test_a_drain_that_overruns_is_cut_at_drain_timeout(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    drains = Drains(seconds=1.5)
    config = ElectionConfig(
        session_timeout=4.0, request_timeout=5.0, connect_timeout=20.0, drain_timeout=0.5
    )
    (_, m0), (c1, _) = _queue(ensemble.hosts, zk_path, candidates, 2, drains, config)

    result = c1.election.request_switchover(timeout=WAIT)

    assert result.leader.candidate_id == "c1"
    assert m0.results == ["handed_over"] and 0.5 <= m0.drains[0] < 1.4  # not the 1.5 s
    assert not drains.times("c0", "ended") or drains.times("c0", "ended")[0] > result.seconds


def test_priority_hands_over_once_after_the_flap_guard(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_client: KazooClient,
) -> None:
    def config(priority: int) -> ElectionConfig:
        return ElectionConfig(
            session_timeout=4.0,
            request_timeout=5.0,
            connect_timeout=20.0,
            priority=priority,
            priority_settle=0.5,
            priority_interval=2.0,
        )

    drains = Drains()
    old = _queue(ensemble.hosts, zk_path, candidates, 2, drains, config(0))
    (_, m0), _ = old
    elected_at = time.monotonic()
    new = [
        candidates(ensemble.hosts, zk_path, f"n{i}", config=config(1), metrics=Switches())
        for i in range(2)
    ]

    wait_for(lambda: new[0].election.is_leader, WAIT, message="the first new one leads")

    # Not before the leader's interval: the request that came first was refused.
    assert new[0].recorder.time_of("elected") - elected_at >= 2.0
    assert m0.results == ["refused", "handed_over"]
    assert new[1].recorder.of("elected") == []  # equal priority: no second switchover
    wait_for(lambda: _no_request(kazoo_client, zk_path), WAIT, message="request tidied")
    assert _ids(new[0])[:2] == ["n0", "n1"]


def test_async_election_drains_its_work_before_the_switchover(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
) -> None:
    trace: list[tuple[str, float]] = []

    async def work(lead: AsyncLeadership) -> None:
        trace.append(("work_started", time.monotonic()))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # it takes a moment to drain
            trace.append(("work_drained", time.monotonic()))
            raise

    async def on_draining(lead: AsyncLeadership, deadline: float) -> None:
        trace.append(("on_draining", time.monotonic()))

    async def scenario() -> Any:
        async with AsyncElection(
            ensemble.hosts, zk_path, candidate_id="a0", config=FAST, on_draining=on_draining
        ) as leader:
            await leader.wait_for_leadership(WAIT)
            runner = asyncio.create_task(leader.run_while_leader(work))
            await asyncio.wait_for(_until(lambda: bool(trace)), WAIT)
            successor = candidates(ensemble.hosts, zk_path, "b1")
            result = await leader.request_switchover(to="b1", timeout=WAIT)
            wait_for(lambda: successor.election.is_leader, WAIT)
            runner.cancel()
            return result, successor

    result, successor = asyncio.run(scenario())

    assert result.leader.candidate_id == "b1"
    kinds = [kind for kind, _ in trace]
    assert kinds == ["work_started", "work_drained", "on_draining"]
    assert dict(trace)["work_drained"] <= successor.recorder.time_of("elected")


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_a_target_whose_session_is_not_connected_is_refused_and_nothing_is_drained(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    drains = Drains()
    (c0, m0), (c1, _) = _queue(ensemble.hosts, zk_path, candidates, 2, drains)
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        # The target's only way to the ensemble is the proxy; its session timeout is longer
        # than the test, so its node stays while its connection is black-holed.
        client = kazoo_clients(proxy.address, timeout=20.0)
        target = candidates(client, zk_path, "far", config=ElectionConfig(session_timeout=20.0))
        wait_for(lambda: _ids(c0) == ["c0", "c1", "far"], WAIT)
        proxy.blackhole(True)
        try:
            with pytest.raises(TargetNotReadyError, match="not connected"):
                c1.election.request_switchover(to="far", timeout=2)
        finally:
            proxy.blackhole(False)
        assert c0.election.is_leader and drains.events == []  # never drained
        assert _no_request(kazoo_clients(ensemble.hosts), zk_path)
        wait_for(lambda: m0.results == ["withdrawn"], WAIT, message="counted as withdrawn")
        target.election.stop()
