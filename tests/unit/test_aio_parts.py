"""zkelect.aio's parts without ZooKeeper: the join slots' callback waiters, the loop's
callbacks, the order in which a loss is replayed on the loop, and run_while_leader's work
runner (scripted leaderships, a real event loop)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, cast

import pytest

from zkelect._zookeeper.join_slots import JoinSlots
from zkelect._zookeeper.session import Session
from zkelect.aio._callbacks import LoopCallbacks
from zkelect.aio._leadership import AsyncLeadership
from zkelect.aio._side import LoopSide
from zkelect.aio._work import WorkRunner
from zkelect.errors import ElectionStoppedError, PermissionDeniedError, StaleEpochError
from zkelect.fencing.leadership import Leadership
from zkelect.fencing.token import FencingToken

BOUND = 5.0


class _LeaseOnly:
    def lease_remaining(self) -> float:
        return 10.0


def leadership(epoch: int) -> Leadership:
    token = FencingToken(epoch, "/p", "c", 1)
    return Leadership(token, f"/p/n{epoch}", cast(Session, _LeaseOnly()), lambda reason: None)


async def until(predicate: Any) -> None:
    deadline = asyncio.get_running_loop().time() + BOUND
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


# -- JoinSlots -----------------------------------------------------------------------------


def test_join_slots_hand_a_freed_slot_to_the_first_callback_waiter() -> None:
    slots = JoinSlots(2)
    got: list[str] = []
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)
    assert not slots.acquire(blocking=False)
    slots.when_free(lambda: got.append("a"))
    slots.when_free(lambda: got.append("b"))
    assert got == []
    slots.release()  # handed to "a": the slot stays taken
    assert got == ["a"] and not slots.acquire(blocking=False)
    slots.release()
    assert got == ["a", "b"]
    slots.release()
    slots.release()
    with pytest.raises(ValueError):
        slots.release()  # more releases than acquisitions
    slots.when_free(lambda: got.append("now"))  # free: called at once, on this thread
    assert got[-1] == "now"


def test_join_slots_a_blocked_thread_gets_a_slot_once_callbacks_are_served() -> None:
    slots = JoinSlots(1)
    assert slots.acquire(timeout=0)
    served: list[str] = []
    slots.when_free(lambda: served.append("callback"))
    taken = threading.Event()
    thread = threading.Thread(target=lambda: slots.acquire(timeout=BOUND) and taken.set())
    thread.start()
    try:
        slots.release()  # to the callback, which came first
        assert served == ["callback"] and not taken.wait(0.05)
        slots.release()  # now the thread's
        assert taken.wait(BOUND)
    finally:
        thread.join(BOUND)
    assert not slots.acquire(timeout=0.01)


# -- LoopCallbacks ---------------------------------------------------------------------------


def test_loop_callbacks_run_in_order_awaiting_coroutines_and_surviving_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    async def slow(name: str) -> None:
        await asyncio.sleep(0.02)
        ran.append(name)

    def fails(name: str) -> None:
        raise RuntimeError(name)

    async def scenario() -> None:
        callbacks = LoopCallbacks("/p")
        callbacks.post(slow, "elected")
        callbacks.post(fails, "boom")
        callbacks.post(ran.append, "revoked")
        callbacks.post(None, "nothing")
        await asyncio.wait_for(callbacks.flush(), BOUND)

    with caplog.at_level(logging.ERROR, logger="zkelect"):
        asyncio.run(scenario())
    assert ran == ["elected", "revoked"]
    assert "callback" in caplog.text and "boom" in caplog.text


# -- LoopSide and WorkRunner --------------------------------------------------------------------


class Script:
    """A LoopSide with a WorkRunner, as an AsyncElection wires them, and a log of events."""

    def __init__(self, work: Any, grace: float = 1.0) -> None:
        self.events: list[str] = []
        self.resigned = 0
        loop = asyncio.get_running_loop()
        self.callbacks = LoopCallbacks("/p")
        self.side = LoopSide(
            loop,
            "/p",
            1.0,
            self.callbacks,
            lambda lead: self.events.append(f"on_elected {lead.epoch}"),
            lambda reason: self.events.append(f"on_revoked {reason}"),
        )
        self.runner = WorkRunner(loop, "/p", "c", work, grace, self._resign_now)
        self.side.gained, self.side.lost = self.runner.gained, self.runner.lost

    async def _resign_now(self) -> bool:
        self.resigned += 1
        return True

    def elect(self, epoch: int) -> Leadership:
        lead = leadership(epoch)
        self.side.elected(lead)  # as the Standing does, under its lock, from any thread
        return lead

    def lose(self, lead: Leadership, reason: str) -> None:
        lead._mark_lost(reason, 0.0)
        self.side.revoked(lead)


def test_a_loss_reaches_the_work_first_then_lost_waiters_then_on_revoked() -> None:
    async def scenario() -> list[str]:
        async def work(lead: AsyncLeadership) -> None:
            script.events.append(f"work {lead.epoch}")

            async def waiter() -> None:
                await lead.lost.wait()
                script.events.append("lost.wait")

            asyncio.get_running_loop().create_task(waiter())
            try:
                await asyncio.sleep(BOUND)
            except asyncio.CancelledError:
                script.events.append("cancelled")
                raise

        script = Script(work)
        lead = script.elect(5)
        await until(lambda: "work 5" in script.events)
        script.lose(lead, "node_deleted")
        await until(lambda: "on_revoked node_deleted" in script.events)
        await until(lambda: "lost.wait" in script.events)
        return script.events

    events = asyncio.run(scenario())
    assert events.index("cancelled") < events.index("lost.wait")
    assert events.index("cancelled") < events.index("on_revoked node_deleted")
    assert events[:2] == ["on_elected 5", "work 5"]  # a plain callback: at once


def test_wait_resolves_on_the_replayed_grant_and_fails_once_closed_or_failed() -> None:
    async def scenario() -> None:
        script = Script(lambda lead: asyncio.sleep(BOUND))
        side = script.side
        assert await side.wait(0.01) is None
        waiting = asyncio.get_running_loop().create_task(side.wait(BOUND))
        script.elect(7)
        got = await asyncio.wait_for(waiting, BOUND)
        assert got is not None and got.epoch == 7 and side.leading is got
        script.lose(got.leadership, "resigned")
        await until(lambda: side.leading is None)
        waiting = asyncio.get_running_loop().create_task(side.wait(BOUND))
        await asyncio.sleep(0)
        side.failed(PermissionDeniedError("refused"))
        with pytest.raises(PermissionDeniedError):
            await asyncio.wait_for(waiting, BOUND)
        side.failure = None
        side.close()
        with pytest.raises(ElectionStoppedError):
            await side.wait(BOUND)
        script.runner.task and script.runner.task.cancel()

    asyncio.run(scenario())


def test_a_work_ignoring_cancellation_is_abandoned_and_never_run_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> Script:
        release = asyncio.Event()
        started: list[int] = []

        async def stubborn(lead: AsyncLeadership) -> None:
            started.append(lead.epoch)
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue  # ignores its cancellation

        script = Script(stubborn, grace=0.05)
        try:
            first = script.elect(1)
            await until(lambda: started == [1])
            script.lose(first, "session_lost")
            await until(lambda: "ignored its cancellation" in caplog.text)
            second = script.elect(2)  # elected again while the first work still runs
            await until(lambda: script.resigned == 1)
            script.lose(second, "resigned")
            script.elect(3)  # and again: the term that resigned ran no work; the first runs
            await until(lambda: script.resigned == 2)
            assert started == [1]  # never two at once: the new terms were resigned instead
        finally:
            release.set()  # else asyncio.run would wait for it for ever
        await until(lambda: script.runner.task is not None and script.runner.task.done())
        return script

    with caplog.at_level(logging.ERROR, logger="zkelect"):
        asyncio.run(scenario())
    assert "resigning instead of running the work twice" in caplog.text
    events = {getattr(record, "event", None) for record in caplog.records}
    assert {"work_abandoned", "work_not_restarted"} <= events


def test_the_works_own_end_while_leading_finishes_the_runner() -> None:
    async def scenario() -> None:
        async def returns(lead: AsyncLeadership) -> None:
            return None

        script = Script(returns)
        script.elect(1)
        assert await asyncio.wait_for(script.runner.finished, BOUND) is None

        async def fails(lead: AsyncLeadership) -> None:
            raise KeyError("bug")

        script = Script(fails)
        script.elect(2)
        error = await asyncio.wait_for(script.runner.finished, BOUND)
        assert isinstance(error, KeyError)

    asyncio.run(scenario())


def test_an_error_after_the_loss_is_not_the_works_own_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> Script:
        async def deposed(lead: AsyncLeadership) -> None:
            try:
                await asyncio.sleep(BOUND)
            except asyncio.CancelledError:
                raise StaleEpochError("refused", resource="/p", epoch=1) from None

        async def clumsy(lead: AsyncLeadership) -> None:
            try:
                await asyncio.sleep(BOUND)
            except asyncio.CancelledError:
                raise KeyError("cleanup bug") from None

        for work in (deposed, clumsy):
            script = Script(work)
            lead = script.elect(1)
            await until(lambda s=script: s.runner.task is not None)
            script.lose(lead, "node_deleted")
            await until(lambda s=script: s.runner.task is not None and s.runner.task.done())
            assert not script.runner.finished.done()  # the candidate campaigns on
        return script

    with caplog.at_level(logging.WARNING, logger="zkelect"):
        asyncio.run(scenario())
    assert "cleanup bug" in caplog.text and "refused" not in caplog.text


def test_quiesce_cancels_and_drains_before_a_planned_step_down_and_resume_restarts() -> None:
    async def scenario() -> None:
        runs: list[str] = []

        async def work(lead: AsyncLeadership) -> None:
            runs.append("start")
            try:
                await asyncio.sleep(BOUND)
            except asyncio.CancelledError:
                await asyncio.sleep(0.02)  # a short drain
                runs.append("drained")
                raise

        script = Script(work)
        lead = script.elect(3)
        await until(lambda: runs == ["start"])
        await asyncio.wait_for(script.runner.quiesce("resign"), BOUND)
        assert runs == ["start", "drained"] and not lead.lost.is_set()
        script.runner.resume(script.side.leading)  # the resign could not delete: lead on
        await until(lambda: runs == ["start", "drained", "start"])
        assert script.runner.task is not None
        script.runner.task.cancel()

    asyncio.run(scenario())
