"""zkelect.aio on a real ensemble: every method of AsyncElection, AsyncLeadership's fenced
writes, AsyncFencedStore, run_while_leader's ordering, and many elections on one loop.

Each test is a plain function running one scenario with ``asyncio.run``; every wait is
bounded (``asyncio.wait_for``), and every election is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from election_support import FAST
from kazoo.client import KazooClient

from zkelect import (
    ChrootMissingError,
    ElectionStoppedError,
    ElectionTimeoutError,
    LeaderInfo,
    Lifecycle,
    SQLiteFencedStore,
    StaleEpochError,
)
from zkelect.aio import AsyncElection, AsyncFencedStore, AsyncLeadership
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration

T = TypeVar("T")
BOUND = 20.0  # seconds: every wait in these tests is bounded by it


async def within(awaitable: Awaitable[T], seconds: float = BOUND) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def until(predicate: Callable[[], object], seconds: float = BOUND) -> None:
    """Poll ``predicate`` on the loop until it holds (a bounded wait, not a sleep)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def candidate(hosts: Any, path: str, name: str, **kw: Any) -> AsyncElection:
    return AsyncElection(hosts, path, candidate_id=name, config=FAST, **kw)


async def stop_all(*elections: AsyncElection) -> None:
    for election in elections:
        await within(election.stop())


def test_start_wait_resign_observe_read_and_stop(
    ensemble: LocalEnsemble, zk_path: str, kazoo_client: KazooClient
) -> None:
    events: list[str] = []

    async def elected(lead: AsyncLeadership) -> None:
        await asyncio.sleep(0.01)  # a coroutine callback is awaited before the next one
        events.append(f"elected {lead.token.candidate_id}")

    def revoked(reason: str) -> None:
        events.append(f"revoked {reason}")

    async def scenario() -> None:
        a = candidate(ensemble.hosts, zk_path, "a", on_elected=elected, on_revoked=revoked)
        changes: list[str | None] = []

        async def leader_changed(info: LeaderInfo | None) -> None:
            await asyncio.sleep(0)
            changes.append(None if info is None else info.candidate_id)

        b = candidate(ensemble.hosts, zk_path, "b", on_leader_change=leader_changed)
        try:
            assert a.lifecycle is Lifecycle.LATENT
            assert await within(a.start()) is a
            assert a.node is not None and a.node.startswith(zk_path + "/")
            lead = await within(a.wait_for_leadership())
            assert lead is not None and a.is_leader and a.leading is lead
            assert lead.epoch == lead.token.epoch == lead.leadership.epoch
            assert lead.node_path == a.node and not lead.lost.is_set()
            assert lead.lost.event is lead.lost_event is lead.leadership.lost
            assert lead.is_valid() and lead.lease_remaining() > 0
            lead.check()

            await within(b.start())
            assert await within(b.wait_for_leadership(0.3)) is None  # a leads
            seen: list[LeaderInfo | None] = []
            observed = b.observe()
            first = await within(anext(observed))
            assert first is not None and first.candidate_id == "a"
            leader = await within(b.leader())
            assert leader is not None and leader.candidate_id == "a"
            assert [c.candidate_id for c in await within(a.candidates())] == ["a", "b"]

            assert await within(a.resign()) is True
            assert await within(lead.lost.wait()) is True
            assert lead.lost.is_set() and lead.reason == "resigned"
            b_lead = await within(b.wait_for_leadership())
            assert b_lead is not None and b_lead.epoch > lead.epoch
            while not seen or seen[-1] is None or seen[-1].candidate_id != "b":
                seen.append(await within(anext(observed)))
            await until(lambda: changes[-1:] == ["b"])  # a coroutine, run on the loop
            assert changes[0] == "a"
            assert await within(a.resign()) is False  # not leading: at once
            assert not a.is_leader and a.lifecycle is Lifecycle.STARTED

            await within(b.stop())
            await until(lambda: a.is_leader)
            with pytest.raises(StopAsyncIteration):  # the observer ends with its election
                await within(anext(observed))
            with pytest.raises(ElectionStoppedError):
                await within(b.wait_for_leadership(1))
        finally:
            await stop_all(a, b)
        assert a.lifecycle is Lifecycle.CLOSED
        assert events == ["elected a", "revoked resigned", "elected a", "revoked stopped"]

    asyncio.run(scenario())
    zk = kazoo_client  # nothing left behind
    assert not [n for n in zk.get_children(zk_path) if not n.startswith("zkelect-leader")]


def test_leadership_block_and_its_timeout(ensemble: LocalEnsemble, zk_path: str) -> None:
    async def scenario() -> None:
        a = candidate(ensemble.hosts, zk_path, "a")
        async with a.leadership(timeout=BOUND) as lead:  # started here: stopped at exit
            assert a.is_leader and lead.is_valid()
            other = candidate(ensemble.hosts, zk_path, "other")
            with pytest.raises(ElectionTimeoutError):
                async with other.leadership(timeout=0.5):
                    pytest.fail("elected while a leads")
            assert other.lifecycle is Lifecycle.CLOSED
        assert a.lifecycle is Lifecycle.CLOSED and lead.lost.is_set()

        async with candidate(ensemble.hosts, zk_path, "c") as c:  # started by `async with`
            async with c.leadership(timeout=BOUND) as lead:
                assert lead.is_valid()
            assert c.lifecycle is Lifecycle.STARTED and lead.reason == "resigned"  # not stopped

    asyncio.run(scenario())


def test_fenced_writes_apply_while_leading_and_are_refused_after(
    ensemble: LocalEnsemble, zk_path: str, kazoo_client: KazooClient
) -> None:
    async def scenario() -> None:
        a = candidate(ensemble.hosts, zk_path, "a")
        b = candidate(ensemble.hosts, zk_path, "b")
        try:
            lead = await within((await within(a.start())).wait_for_leadership())
            assert lead is not None
            data = f"{zk_path}-data"
            assert await within(lead.create(data, b"1")) == data
            await within(lead.set_data(data, b"2"))
            results = await within(
                lead.transaction().set_data(data, b"3").create(f"{data}/x").commit()
            )
            assert len(results) == 2  # the fence check is not among them
            await within(lead.delete(f"{data}/x"))

            await within(b.start())
            await within(a.resign())
            with pytest.raises(StaleEpochError) as refused:
                await within(lead.set_data(data, b"stale"))
            assert refused.value.epoch == lead.epoch
            b_lead = await within(b.wait_for_leadership())
            assert b_lead is not None
            await within(b_lead.set_data(data, b"4"))
        finally:
            await stop_all(a, b)
        assert kazoo_client.get(data)[0] == b"4"
        kazoo_client.delete(data, recursive=True)

    asyncio.run(scenario())


def test_fenced_store_without_blocking_the_loop(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path
) -> None:
    store = AsyncFencedStore(SQLiteFencedStore(tmp_path / "fence.db"))

    async def scenario() -> None:
        a = candidate(ensemble.hosts, zk_path, "a")
        b = candidate(ensemble.hosts, zk_path, "b")
        try:
            old = await within((await within(a.start())).wait_for_leadership())
            assert old is not None
            loop_thread = threading.get_ident()

            def write(conn: Any, value: str) -> int:
                conn.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
                conn.execute("INSERT OR REPLACE INTO kv VALUES ('k', ?)", (value,))
                return threading.get_ident()

            ran_on = await within(store.write("kv", old.token, lambda c: write(c, "old")))
            assert ran_on != loop_thread  # the transaction ran in a worker thread
            await within(b.start())
            await within(a.resign())
            new = await within(b.wait_for_leadership())
            assert new is not None
            await within(store.write("kv", new.token, lambda c: write(c, "new")))
            with pytest.raises(StaleEpochError):
                await within(store.write("kv", old.token, lambda c: write(c, "stale")))
            assert await within(store.highest_epoch("kv")) == new.epoch
        finally:
            await stop_all(a, b)

    asyncio.run(scenario())


def test_run_while_leader_cancels_the_work_first_and_campaigns_on(
    ensemble: LocalEnsemble, zk_path: str
) -> None:
    events: list[str] = []

    async def scenario() -> None:
        def revoked(reason: str) -> None:
            events.append(f"on_revoked {reason}")

        a = candidate(ensemble.hosts, zk_path, "a", on_revoked=revoked)
        b = candidate(ensemble.hosts, zk_path, "b")
        terms: list[AsyncLeadership] = []
        waiters: set[asyncio.Task[None]] = set()

        async def work(lead: AsyncLeadership) -> None:
            terms.append(lead)
            events.append(f"work {len(terms)} started")

            async def lost_waiter() -> None:
                await lead.lost.wait()
                events.append("lost.wait returned")

            waiters.add(asyncio.get_running_loop().create_task(lost_waiter()))
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                events.append(f"work {len(terms)} cancelled (lost set: {lead.lost.is_set()})")
                raise

        try:
            runner = asyncio.get_running_loop().create_task(a.run_while_leader(work, grace=2))
            await until(lambda: len(terms) == 1)
            await within(b.start())
            await within(a.resign())  # planned: the work is drained before the node goes
            b_lead = await within(b.wait_for_leadership())
            assert b_lead is not None
            await within(b.stop())  # a campaigns on and leads again: a new term
            await until(lambda: len(terms) == 2)
            assert terms[1].epoch > terms[0].epoch
            await within(a.stop())  # ends run_while_leader
            assert await within(runner) is None
            await within(asyncio.gather(*waiters))
        finally:
            await stop_all(a, b)

    asyncio.run(scenario())
    assert events == [
        "work 1 started",
        "work 1 cancelled (lost set: False)",  # resign: cancelled before the loss itself
        "lost.wait returned",
        "on_revoked resigned",
        "work 2 started",
        "work 2 cancelled (lost set: False)",
        "lost.wait returned",
        "on_revoked stopped",
    ]


def test_run_while_leader_releases_when_the_work_ends_or_fails(
    ensemble: LocalEnsemble, zk_path: str, kazoo_client: KazooClient
) -> None:
    class Boom(Exception):
        pass

    async def scenario() -> None:
        async def done(lead: AsyncLeadership) -> None:
            await lead.set_data(zk_path, b"done")

        a = candidate(ensemble.hosts, zk_path, "a")
        await within(a.run_while_leader(done))  # starts the election itself
        assert a.lifecycle is Lifecycle.CLOSED and not a.is_leader

        async def fails(lead: AsyncLeadership) -> None:
            raise Boom(str(lead.epoch))

        b = candidate(ensemble.hosts, zk_path, "b")
        with pytest.raises(Boom):
            await within(b.run_while_leader(fails))
        assert b.lifecycle is Lifecycle.CLOSED and b.node is None

        c = candidate(ensemble.hosts, zk_path, "c")

        async def forever(lead: AsyncLeadership) -> None:
            await asyncio.sleep(3600)

        task = asyncio.get_running_loop().create_task(c.run_while_leader(forever))
        await until(lambda: c.is_leader)
        task.cancel()  # run_while_leader cancelled from outside: it leaves the election
        with pytest.raises(asyncio.CancelledError):
            await within(task)
        assert c.lifecycle is Lifecycle.CLOSED

    asyncio.run(scenario())
    zk = kazoo_client
    assert zk.get(zk_path)[0] == b"done"
    assert not [n for n in zk.get_children(zk_path) if not n.startswith("zkelect-leader")]


def test_terminal_start_errors_are_raised_and_leave_nothing(
    ensemble: LocalEnsemble, zk_path: str
) -> None:
    async def scenario() -> None:
        missing = candidate(f"{ensemble.hosts}/no-such-chroot-{zk_path[1:]}", zk_path, "a")
        with pytest.raises(ChrootMissingError):
            await within(missing.start())
        assert missing.lifecycle is Lifecycle.CLOSED

    asyncio.run(scenario())


def test_many_elections_on_one_session_from_one_loop(
    kazoo_client: KazooClient, zk_path: str
) -> None:
    count = 300

    async def scenario() -> None:
        threads_before = threading.active_count()
        elections = [
            AsyncElection(kazoo_client, f"{zk_path}/e{i}", candidate_id="me", config=FAST)
            for i in range(count)
        ]
        try:
            # Half as start() (the first ones wait for their answer), half start(wait=False).
            starts = (e.start(wait=i % 2 == 0) for i, e in enumerate(elections))
            await within(asyncio.gather(*starts), 60)
            leads = await within(asyncio.gather(*(e.wait_for_leadership() for e in elections)), 60)
            assert all(lead is not None and lead.is_valid() for lead in leads)
            assert all(e.node is not None for e in elections)
            # The session's threads only (pool, timers, notifier, heartbeat): none per election.
            assert threading.active_count() - threads_before <= 12
        finally:
            await within(asyncio.gather(*(e.stop() for e in elections)), 60)
        assert all(e.lifecycle is Lifecycle.CLOSED for e in elections)

    asyncio.run(scenario())
