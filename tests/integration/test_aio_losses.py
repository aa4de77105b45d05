"""``AsyncElection.run_while_leader`` on each way leadership is lost, on real ZooKeeper (issue 16).

Every test records, on the event loop, the order in which the work task, a task awaiting
``lead.lost.wait()`` and ``on_revoked`` heard of the loss: the work must hear first (it is the
one that must stop writing). Then the candidate campaigns on: it leads again once the other
candidate is gone.

Losses: the node deleted by ``zkelect resign``; the session expired on the servers; a link
black-holed by the fault proxy (the lease runs out or the session is suspended, then the
session is lost); a frozen process (SIGSTOP, in aio_child.py, whose late write is refused).
Then a work coroutine that ignores cancellation (bounded by ``grace``, logged, the candidate
still steps down), and a loop that is itself blocked past the session timeout (its next fenced
write is refused and its work cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_env, loads_strict
from election_support import Candidate
from json_child import JsonChild, event
from kazoo.client import KazooClient, KazooState

from zkelect import ElectionConfig, StaleEpochError
from zkelect.aio import AsyncElection, AsyncLeadership
from zkelect.testing import expire_session, wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

SESSION_TIMEOUT = 2.0
CONFIG = ElectionConfig(session_timeout=SESSION_TIMEOUT, request_timeout=5.0, connect_timeout=20.0)
WAIT = 20.0  # generous deadlines: the CI machine may be loaded
LOSS_WAIT = 10 * SESSION_TIMEOUT  # a session expiry, then the successor's election
GRACE = 1.0  # the drain bound of the work that ignores cancellation
AIO_CHILD = Path(__file__).with_name("aio_child.py")
Make = Callable[..., Candidate]
Work = Callable[[AsyncLeadership], Awaitable[None]]


class Trace:
    """What happened on the loop, in order: ``(kind, value)`` for the work's start and
    cancellation (its epoch), a lost waiter waking (its epoch), on_revoked (the reason)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._waiters: set[asyncio.Task[None]] = set()  # strong references until they end

    def on_elected(self, lead: AsyncLeadership) -> None:
        self.events.append(("elected", lead.epoch))
        waiter = asyncio.get_running_loop().create_task(self._lost_waiter(lead))
        self._waiters.add(waiter)
        waiter.add_done_callback(self._waiters.discard)

    async def _lost_waiter(self, lead: AsyncLeadership) -> None:
        await lead.lost.wait()
        self.events.append(("lost_waiter", lead.epoch))

    def on_revoked(self, reason: str) -> None:
        self.events.append(("revoked", reason))

    async def work(self, lead: AsyncLeadership) -> None:
        """Leader-only work that runs until it is cancelled."""
        self.events.append(("work_started", lead.epoch))
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.events.append(("work_cancelled", lead.epoch))
            raise

    def epochs(self) -> list[int]:
        """The epochs of the work tasks started so far."""
        return [value for kind, value in self.events if kind == "work_started"]

    def loss_heard(self, epoch: int) -> str | None:
        """Once the work, a lost waiter and on_revoked all heard of the loss of ``epoch``:
        the reason, after checking that the work was cancelled before the other two."""
        after = self.events[self.events.index(("work_started", epoch)) :]
        kinds = [kind for kind, _ in after]
        if not {"work_cancelled", "lost_waiter", "revoked"} <= set(kinds):
            return None
        cancelled = after.index(("work_cancelled", epoch))
        assert cancelled < after.index(("lost_waiter", epoch)), self.events
        assert cancelled < kinds.index("revoked"), self.events
        reason: str = after[kinds.index("revoked")][1]
        return reason


async def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """``wait_for`` in a thread, so the loop runs while the condition is polled."""
    return await asyncio.to_thread(wait_for, predicate, timeout, 0.01, what)


def new_election(client_or_hosts: str | KazooClient, path: str, trace: Trace) -> AsyncElection:
    return AsyncElection(
        client_or_hosts,
        path,
        candidate_id="a",
        config=CONFIG,
        on_elected=trace.on_elected,
        on_revoked=trace.on_revoked,
    )


@asynccontextmanager
async def running(
    election: AsyncElection, work: Work, grace: float = 5.0
) -> AsyncIterator[asyncio.Task[None]]:
    """``run_while_leader(work)`` as a task; stopped, and the task awaited, at exit."""
    runner = asyncio.create_task(election.run_while_leader(work, grace=grace))
    try:
        yield runner
    finally:
        try:
            await asyncio.wait_for(election.stop(), WAIT)
            await asyncio.wait_for(runner, WAIT)
        finally:
            runner.cancel()


async def first_work(trace: Trace) -> int:
    """The epoch of the first work task, once it runs."""
    await until(trace.epochs, "a's work started")
    return trace.epochs()[0]


async def join_behind(candidates: Make, hosts: str, path: str) -> Candidate:
    """Candidate "b" (threaded), second in line."""
    other: Candidate = await asyncio.to_thread(candidates, hosts, path, "b")
    return other


async def campaigns_on(trace: Trace, other: Candidate, lost: int) -> int:
    """``other`` leads after the loss; once it leaves, our candidate leads again and a new
    work task starts (with a newer epoch): the candidate campaigned on. Its epoch."""
    await until(lambda: other.election.is_leader, "b leads", LOSS_WAIT)
    await asyncio.to_thread(other.election.stop)
    await until(lambda: len(trace.epochs()) >= 2, "a leads again: a second work task")
    assert trace.epochs()[1] > lost
    return trace.epochs()[1]


def session_of(client: KazooClient) -> int | None:
    """The client's session id, None while it has none."""
    client_id: tuple[int, bytes] | None = client.client_id
    return None if client_id is None else client_id[0]


@pytest.fixture
def make_client(kazoo_clients: Callable[..., KazooClient]) -> Callable[[str], KazooClient]:
    """Clients with these tests' session timeout (conftest's ``kazoo_clients``)."""
    return lambda hosts: kazoo_clients(hosts, timeout=SESSION_TIMEOUT)


@pytest.fixture
def proxy(ensemble: LocalEnsemble) -> Iterator[FaultProxy]:
    """A fault proxy in front of one member: a client whose only server it is can be cut off."""
    with FaultProxy(ensemble.member_hosts(0)) as started:
        try:
            yield started
        finally:
            started.blackhole(False)


@pytest.fixture
def target(kazoo_client: KazooClient, zk_path: str) -> str:
    """A znode for fenced writes, beside the election."""
    path = f"{zk_path}-data"
    kazoo_client.create(path, b"", makepath=True)
    return path


# --------------------------------------------------------------------------- loss reasons


def zkelect_resign(hosts: str, path: str) -> subprocess.CompletedProcess[str]:
    """``zkelect resign PATH --json`` run to completion (killed at the deadline)."""
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", "resign", path, "--hosts", hosts, "--json"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_node_deleted_by_zkelect_resign(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make
) -> None:
    async def scenario() -> None:
        trace = Trace()
        election = new_election(ensemble.hosts, zk_path, trace)
        async with running(election, trace.work):
            e1 = await first_work(trace)
            other = await join_behind(candidates, ensemble.hosts, zk_path)

            done = await asyncio.to_thread(zkelect_resign, ensemble.hosts, zk_path)

            assert done.returncode == 0, done.stderr
            report = loads_strict(done.stdout)
            assert report["old_leader"]["id"] == "a" and report["was_leader"] is True
            assert await until(lambda: trace.loss_heard(e1), "loss heard") == "node_deleted"
            await campaigns_on(trace, other, e1)

    asyncio.run(scenario())


def test_session_expired_on_the_servers(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Make,
    make_client: Callable[[str], KazooClient],
) -> None:
    async def scenario() -> None:
        trace = Trace()
        client = make_client(ensemble.hosts)
        election = new_election(client, zk_path, trace)
        async with running(election, trace.work):
            e1 = await first_work(trace)
            other = await join_behind(candidates, ensemble.hosts, zk_path)
            old_session = client.client_id[0]

            await asyncio.to_thread(expire_session, client)

            # The servers closed the session: kazoo may first see its connection dropped.
            reason = await until(lambda: trace.loss_heard(e1), "loss heard")
            assert reason in ("session_lost", "suspended", "node_deleted"), reason
            print(f"expired: revoked ({reason})")
            assert client.client_id[0] != old_session
            await campaigns_on(trace, other, e1)

    asyncio.run(scenario())


def test_link_blackholed_by_the_fault_proxy(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Make,
    make_client: Callable[[str], KazooClient],
    proxy: FaultProxy,
) -> None:
    async def scenario() -> None:
        trace = Trace()
        client = make_client(proxy.address)  # its only way to the ensemble
        states: list[str] = []
        client.add_listener(states.append)
        election = new_election(client, zk_path, trace)
        async with running(election, trace.work):
            e1 = await first_work(trace)
            other = await join_behind(candidates, ensemble.hosts, zk_path)

            proxy.blackhole(True)
            try:
                # Silence: the lease runs out or kazoo suspends the session, before the
                # servers could expire it (nothing crosses the link: LOST cannot come yet).
                reason = await until(lambda: trace.loss_heard(e1), "loss heard", LOSS_WAIT)
                assert reason in ("lease_expired", "suspended"), reason
                print(f"black-holed: revoked ({reason})")
                assert KazooState.LOST not in states
                await until(lambda: other.election.is_leader, "a's session expired", LOSS_WAIT)
            finally:
                proxy.blackhole(False)
            await until(lambda: KazooState.LOST in states, "a's client learns: session lost")
            assert trace.events.count(("work_cancelled", e1)) == 1
            await campaigns_on(trace, other, e1)

    asyncio.run(scenario())


def test_at_the_defaults_a_silent_link_cancels_the_work_before_a_successor_leads(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Make,
    proxy: FaultProxy,
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    """What users run: ElectionConfig() (10 s sessions), the default grace, and a member
    that goes silent rather than one that dies. The work is cancelled on the lease running
    out (or the suspension), before the servers could expire the session and elect "b"."""

    async def scenario() -> tuple[float, Candidate]:
        trace = Trace()
        cancelled_at: list[float] = []

        async def work(lead: AsyncLeadership) -> None:
            try:
                await trace.work(lead)
            finally:
                cancelled_at.append(time.monotonic())

        election = AsyncElection(client, zk_path, candidate_id="a", on_revoked=trace.on_revoked)
        async with running(election, work, grace=10.0):
            e1 = await first_work(trace)
            other = await asyncio.to_thread(
                candidates, ensemble.hosts, zk_path, "b", config=ElectionConfig()
            )
            proxy.blackhole(True)
            try:
                await until(lambda: cancelled_at, "a's work cancelled", 3 * WAIT)
                await until(lambda: other.election.is_leader, "b leads", 3 * WAIT)
            finally:
                proxy.blackhole(False)
            assert ("work_cancelled", e1) in trace.events
            return cancelled_at[0], other

    client = kazoo_clients(proxy.address, timeout=ElectionConfig().session_timeout)

    cancelled, other = asyncio.run(scenario())
    elected = other.recorder.time_of("elected")
    assert cancelled < elected, (cancelled, elected)
    print(f"defaults: work cancelled {elected - cancelled:.2f} s before b led")


def test_frozen_process_is_cancelled_on_waking_and_its_late_write_refused(
    ensemble: LocalEnsemble, zk_path: str, target: str, kazoo_client: KazooClient, candidates: Make
) -> None:
    where = ["--hosts", ensemble.hosts, "--path", zk_path, "--target", target]
    child = JsonChild(AIO_CHILD, [*where, "--id", "a", "--session-timeout", str(SESSION_TIMEOUT)])
    try:
        e1 = child.expect(event("work_started"))["epoch"]
        other = candidates(ensemble.hosts, zk_path, "b")
        child.send("write a1")
        assert child.expect(event("write", text="a1"))["ok"] is True

        child.signal(signal.SIGSTOP)  # longer than its session timeout: b takes over
        try:
            wait_for(lambda: other.election.is_leader, LOSS_WAIT, message="b leads")
            lead = other.election.wait_for_leadership(0)
            assert lead is not None and lead.epoch > e1
            e2 = lead.epoch
            lead.set_data(target, b"b1")
            child.send("write a2")  # queued in the pipe: what the child does on waking
        finally:
            child.signal(signal.SIGCONT)

        late = child.expect(event("write", text="a2"))
        assert late["ok"] is False and late["error"].startswith("StaleEpochError"), late
        assert (late["epoch"], late["current"]) == (e1, e2), late
        # The work heard of the loss first (stdout keeps the loop's order).
        child.expect(event("work_cancelled", epoch=e1))
        child.expect(event("lost_waiter", epoch=e1))
        revoked = child.expect(event("revoked"))
        assert revoked["reason"] not in ("stopped", "resigned"), revoked
        cancelled = child.index(event("work_cancelled", epoch=e1))
        assert cancelled < child.index(event("lost_waiter", epoch=e1)), child.events
        assert cancelled < child.index(event("revoked")), child.events

        other.election.stop()  # the child campaigned on: it leads again, a new work task
        again = child.expect(lambda e: e["event"] == "work_started" and e["epoch"] != e1)
        assert again["epoch"] > e2
        assert kazoo_client.get(target)[0] == b"b1"
    finally:
        code = child.stop()
    assert code == 0, child.stderr


# --------------------------------------------------------------------------- stubborn work


def test_work_ignoring_cancellation_is_abandoned_after_grace_and_the_candidate_steps_down(
    ensemble: LocalEnsemble, zk_path: str, candidates: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zkelect")

    async def scenario() -> None:
        trace = Trace()
        release = asyncio.Event()
        live: list[int] = []  # the epochs of the work tasks running now
        most = 0

        async def stubborn(lead: AsyncLeadership) -> None:
            nonlocal most
            if trace.epochs():  # only the first task is stubborn
                await trace.work(lead)
                return
            trace.events.append(("work_started", lead.epoch))
            live.append(lead.epoch)
            most = max(most, len(live))
            try:
                while not release.is_set():
                    try:
                        await release.wait()
                    except asyncio.CancelledError:
                        trace.events.append(("cancel_ignored", lead.epoch))
            finally:
                live.remove(lead.epoch)

        election = new_election(ensemble.hosts, zk_path, trace)
        try:
            async with running(election, stubborn, grace=GRACE):
                await stubborn_steps_down(election, trace, candidates, ensemble.hosts, zk_path)
                assert live, "the abandoned work still runs"
                assert trace.epochs() == [live[0]]  # and no second work task started
                release.set()
                await until(lambda: len(trace.epochs()) == 2, "a second work task, once free")
        finally:
            release.set()  # else asyncio.run could never finish the stubborn task
        assert most == 1

    asyncio.run(scenario())
    abandoned = [r for r in caplog.records if getattr(r, "event", None) == "work_abandoned"]
    assert abandoned and abandoned[0].name == "zkelect", caplog.records
    assert abandoned[0].levelno == logging.ERROR


async def stubborn_steps_down(
    election: AsyncElection, trace: Trace, candidates: Make, hosts: str, path: str
) -> None:
    """resign() deletes the node within about ``grace`` though the work ignores its
    cancellation; elected again while that work still runs, the candidate steps down at once."""
    e1 = await first_work(trace)
    other = await join_behind(candidates, hosts, path)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await asyncio.wait_for(election.resign(), WAIT) is True
    took = loop.time() - began
    await until(lambda: other.election.is_leader, "b leads")
    handed_over = loop.time() - began
    assert ("cancel_ignored", e1) in trace.events
    # The work was awaited for its grace, not less (no successor while it may still run),
    # and not much more (the node is deleted once the grace is up).
    assert GRACE * 0.9 <= took <= GRACE + 3.0, took
    assert handed_over <= GRACE + 3.0, handed_over
    print(f"resign took {took:.2f}s, b led {handed_over:.2f}s after (grace {GRACE:g}s)")

    nodes = [await until(lambda: election.node, "a back in line")]
    await asyncio.to_thread(other.election.stop)

    def stepped_down_twice() -> bool:
        node = election.node
        if node not in (None, nodes[-1]):
            nodes.append(node)
        return len(nodes) > 2 or len(trace.epochs()) > 1

    # Alone in line, a is elected while its abandoned work still runs: each time it must step
    # down (its node deleted, a new one made) rather than start a second work task; twice, as
    # the term after one that stepped down must still wait for the abandoned work.
    await until(stepped_down_twice, "a stepped down twice, or started a second work task")


# --------------------------------------------------------------------------- a blocked loop


def test_loop_blocked_past_the_session_timeout_has_its_stale_write_refused(
    ensemble: LocalEnsemble,
    zk_path: str,
    target: str,
    kazoo_client: KazooClient,
    candidates: Make,
    make_client: Callable[[str], KazooClient],
    proxy: FaultProxy,
) -> None:
    async def scenario() -> None:
        trace = Trace()
        client = make_client(proxy.address)  # its only way to the ensemble
        old_session = client.client_id[0]
        joined: list[Candidate] = []
        outcome: dict[str, Any] = {}

        async def frozen(lead: AsyncLeadership) -> None:
            if trace.epochs():  # led before: plain work this time
                await trace.work(lead)
                return
            trace.events.append(("work_started", lead.epoch))
            await lead.set_data(target, b"a-fresh")  # lands: a leads
            await until(lambda: joined, "b joined")
            outcome["blocked"] = block_the_loop(proxy, joined[0])
            await stale_write(lead, target, trace, outcome)

        election = new_election(client, zk_path, trace)
        async with running(election, frozen):
            e1 = await first_work(trace)
            joined.append(await join_behind(candidates, ensemble.hosts, zk_path))
            await until(lambda: "error" in outcome, "the stale write's outcome")
            await until(lambda: trace.loss_heard(e1), "loss heard")
            lead = joined[0].election.wait_for_leadership(0)
            assert lead is not None
            error = outcome["error"]
            assert isinstance(error, StaleEpochError), repr(error)
            assert (error.epoch, error.current_epoch) == (e1, lead.epoch), repr(error)
            assert kazoo_client.get(target)[0] == b"a-fresh"
            # Blocked past the session timeout: the servers expired the session meanwhile.
            await until(lambda: session_of(client) not in (None, old_session), "a new session")
            print(f"loop blocked {outcome['blocked']:.1f}s; {outcome['order']} first")
            await campaigns_on(trace, joined[0], e1)

    asyncio.run(scenario())


def block_the_loop(proxy: FaultProxy, other: Candidate) -> float:
    """Cut the link and block the event loop (``time.sleep`` inside ``wait_for``) until the
    servers expired the session and ``other`` leads; heal the link. Seconds blocked."""
    began = time.monotonic()
    proxy.blackhole(True)
    try:
        wait_for(lambda: other.election.is_leader, LOSS_WAIT, message="b leads")
    finally:
        proxy.blackhole(False)
    return time.monotonic() - began


async def stale_write(
    lead: AsyncLeadership, target: str, trace: Trace, outcome: dict[str, Any]
) -> None:
    """The write a leader frozen past its session makes first on waking, and its outcome
    (``outcome["error"]``), whether its cancellation or the refusal reaches it first."""
    write = asyncio.ensure_future(lead.set_data(target, b"a-stale"))
    try:
        await asyncio.wait({write})  # cancelling this wait leaves the write to finish
        outcome["order"] = "refusal"
        outcome["error"] = write.exception()
        await asyncio.get_running_loop().create_future()  # the cancellation must come
    except asyncio.CancelledError:
        trace.events.append(("work_cancelled", lead.epoch))
        if "error" not in outcome:
            outcome["order"] = "cancellation"
            await asyncio.wait({write}, timeout=WAIT)
            outcome["error"] = write.exception() if write.done() else TimeoutError()
        raise
