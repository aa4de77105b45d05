"""A candidate process running ``AsyncElection.run_while_leader`` (test_aio_losses.py).

The frozen-process case needs its own process: SIGSTOP freezes the event loop, kazoo's
threads and the lease timer together, as a GC pause or a VM stall would. It prints one JSON
object per line, in the order things happened on its event loop:

    elected       {epoch}                   on_elected
    work_started  {epoch}                   the work task began
    work_cancelled{epoch}                   the work task saw CancelledError
    lost_waiter   {epoch, reason}           a task awaiting ``lead.lost.wait()`` woke
    revoked       {reason}                  on_revoked
    write         {ok, text, epoch, current, error}
    status        {leader, node, session}
    stopped

Commands on stdin, one per line:

    write <text>   a fenced ``await lead.set_data(TARGET, text)`` with the LAST leadership
                   this process held, in a task of its own, without asking whether it still
                   leads: exactly what a process frozen between its check and its write does
    status         print whether it leads, its node and session
    quit           stop the election (work cancelled and drained) and exit 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from zkelect import ElectionConfig, ZkElectError
from zkelect.aio import AsyncElection, AsyncLeadership


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Candidate:
    """The election's callbacks, its work, and the commands; all on the event loop."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.last: AsyncLeadership | None = None
        self.tasks: set[asyncio.Task[None]] = set()  # strong references until they end

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_elected(self, lead: AsyncLeadership) -> None:
        self.last = lead
        emit(event="elected", epoch=lead.epoch)
        self.spawn(self.lost_waiter(lead))

    async def lost_waiter(self, lead: AsyncLeadership) -> None:
        await lead.lost.wait()
        emit(event="lost_waiter", epoch=lead.epoch, reason=lead.reason)

    def on_revoked(self, reason: str) -> None:
        emit(event="revoked", reason=reason)

    async def work(self, lead: AsyncLeadership) -> None:
        self.last = lead
        emit(event="work_started", epoch=lead.epoch)
        try:
            await asyncio.get_running_loop().create_future()  # leader-only work, until lost
        except asyncio.CancelledError:
            emit(event="work_cancelled", epoch=lead.epoch)
            raise

    async def write(self, text: str) -> None:
        lead = self.last
        assert lead is not None, "write before any leadership"
        try:
            await lead.set_data(self.target, text.encode())
        except ZkElectError as exc:
            emit(
                event="write",
                ok=False,
                text=text,
                epoch=lead.epoch,
                current=getattr(exc, "current_epoch", None),
                error=f"{type(exc).__name__}: {exc}",
            )
        else:
            emit(event="write", ok=True, text=text, epoch=lead.epoch)


async def commands() -> asyncio.StreamReader:
    """stdin as a stream on the loop (no thread: a frozen loop reads it first on waking)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def main(args: argparse.Namespace) -> int:
    me = Candidate(args.target)
    election = AsyncElection(
        args.hosts,
        args.path,
        candidate_id=args.id,
        config=ElectionConfig(session_timeout=args.session_timeout, request_timeout=5.0),
        on_elected=me.on_elected,
        on_revoked=me.on_revoked,
    )
    # run_while_leader starts the election: the work runs from the first leadership on.
    runner = asyncio.create_task(election.run_while_leader(me.work, grace=args.grace))
    stdin = await commands()
    try:
        while line := (await stdin.readline()).decode():
            command, _, text = line.strip().partition(" ")
            if command == "quit":
                break
            if command == "status":
                emit(
                    event="status",
                    leader=election.is_leader,
                    node=election.node,
                    session=election.session.session_id,
                )
            elif command == "write":
                me.spawn(me.write(text))
    finally:
        await election.stop()
        await runner
    emit(event="stopped")
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--target", required=True, help="the znode fenced writes set")
    parser.add_argument("--session-timeout", type=float, default=2.0)
    parser.add_argument("--grace", type=float, default=5.0)
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
