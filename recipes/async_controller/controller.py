"""An asyncio broker of the Kafka-style controller recipe (see README.md).

The asyncio twin of recipes/controller/broker.py: one event loop per process runs the HTTP
server (``asyncio.start_server``) and the election (``zkelect.aio.AsyncElection``). The
controller's leader-only work is one coroutine, ``Broker.control``, handed to
``run_while_leader``: it runs as a task each time this broker is elected and is cancelled the
moment leadership is lost. Every write it makes is fenced: its registration and checkpoints
are fenced ZooKeeper writes, and its commands carry its fencing token, which brokers check
(``FencingGuard``), because a cancellation reaches the task only when the loop runs it.

    python recipes/async_controller/controller.py --id 1 --port 9101 --hosts "$ZKELECT_HOSTS" \\
        --peers 1=127.0.0.1:9101,2=127.0.0.1:9102,3=127.0.0.1:9103
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import json
import logging
import os
import signal
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zkelect import (
    FENCING_HEADER,
    ConnectionFailedError,
    FencingGuard,
    InvalidTokenError,
    LeadershipLostError,
    StaleEpochError,
    WriteFailedError,
    ZkElectError,
    fencing_headers,
)
from zkelect.aio import AsyncElection, AsyncLeadership

RESOURCE = "controller"  # the guard's high-water mark: one per broker, for controller commands
GRACE = 5.0  # seconds run_while_leader waits for control() to finish once cancelled
FINAL_WRITE_TIMEOUT = 2.0  # the stepping-down checkpoint must fit well inside GRACE


def say(broker_id: int, text: str) -> None:
    print(f"broker {broker_id}: {text}", flush=True)


class Broker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.id = args.id
        self.root = args.root.rstrip("/")
        self.tick = args.tick
        self.peers = {
            int(peer_id): address
            for peer_id, _, address in (p.partition("=") for p in args.peers.split(",") if p)
        }
        self.peers.pop(self.id, None)  # the controller applies its own commands directly
        # Everything below is touched on the loop only: no lock.
        self.guard = FencingGuard()
        self.accepted: list[dict[str, Any]] = []  # commands applied, oldest first
        self.rejected: list[dict[str, Any]] = []  # commands refused with 409
        self.controller_epoch: int | None = None  # our fencing epoch while we control
        self.resumed: dict[str, Any] | None = None  # the checkpoint our last term started from
        self.terms: list[dict[str, Any]] = []  # how each of our terms as controller ended
        # A shared client, as in the threaded recipe: the registration reads two znodes.
        self.zk = KazooClient(hosts=args.hosts, timeout=args.session_timeout)
        self.election = AsyncElection(
            self.zk, f"{self.root}/election", candidate_id=f"broker-{self.id}"
        )

    # -- receiving commands ---------------------------------------------------------------------

    def receive(self, header: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            with self.guard.admit(RESOURCE, header) as admitted:
                self.accepted.append({**body, "epoch": admitted.token.epoch})
                return 200, {"accepted": True, "epoch": admitted.token.epoch}
        except StaleEpochError as exc:
            self.rejected.append({**body, "epoch": exc.epoch, "current": exc.current_epoch})
            say(self.id, f"409 for broker {body.get('from')}: {exc}")
            return 409, {"accepted": False, "error": str(exc), "current": exc.current_epoch}
        except InvalidTokenError as exc:
            return 400, {"accepted": False, "error": str(exc)}

    def state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_leader": self.election.is_leader,
            "highest_epoch": self.guard.highest_epoch(RESOURCE),
            "accepted": len(self.accepted),
            "last_accepted": self.accepted[-1] if self.accepted else None,
            "rejected": list(self.rejected),
            "controller_epoch": self.controller_epoch,
            "resumed": self.resumed,
            "terms": list(self.terms),
        }

    # -- being the controller: the leader-only work ---------------------------------------------

    async def control(self, lead: AsyncLeadership) -> None:
        """run_while_leader runs this each time we are elected and cancels it the moment
        leadership is lost; it never returns on its own (returning would stop the election)."""
        count, seq = await self.register(lead)
        self.controller_epoch = lead.epoch
        say(self.id, f"controller: epoch {lead.epoch:#x}, controller_epoch {count}, seq {seq}")
        ended = "returned"
        try:
            while True:
                await asyncio.sleep(self.tick)
                seq += 1
                # No "am I still the controller?" check before sending: the loop can stall
                # (or the process freeze) between such a check and the send. The brokers
                # decide (409); the fenced checkpoint below tells us.
                statuses = await self.send(lead, seq)
                if 409 in statuses:
                    say(self.id, "a broker answered 409: is there a newer controller?")
                try:
                    await self.checkpoint(lead, seq)  # StaleEpochError: deposed, and we stop
                except ConnectionFailedError as exc:  # no answer: the next tick writes again
                    say(self.id, f"checkpoint {seq}: {exc}")
        except asyncio.CancelledError:
            ended = "cancelled"
            raise
        except Exception as exc:
            ended = type(exc).__name__  # if we still lead, run_while_leader re-raises it
            raise
        finally:
            await self.step_down(lead, seq, ended)

    async def step_down(self, lead: AsyncLeadership, seq: int, ended: str) -> None:
        """Record how the term ended, with one last fenced checkpoint. On resign or stop,
        run_while_leader drains this task BEFORE deleting our node: the checkpoint lands and
        the successor starts from it. Deposed, the same write is refused."""
        try:
            await asyncio.wait_for(self.checkpoint(lead, seq, final=True), FINAL_WRITE_TIMEOUT)
            final = "accepted"
        except (StaleEpochError, LeadershipLostError) as exc:
            final = f"refused: {exc}"
        except (ConnectionFailedError, asyncio.TimeoutError):
            final = "unknown: no answer in time"
        # A loss sets lead.reason before the task is cancelled; a resign or stop has none yet.
        why = lead.reason or "stepping down: resign or stop"
        self.controller_epoch = None
        self.terms.append({"epoch": lead.epoch, "ended": ended, "seq": seq, "final": final})
        say(
            self.id,
            f"no longer controller (epoch {lead.epoch:#x}, {why}): task {ended}; "
            f"final checkpoint {final}",
        )

    async def register(self, lead: AsyncLeadership) -> tuple[int, int]:
        """Write /controller and bump /controller_epoch in ONE fenced multi-op; return the new
        controller_epoch and the command number to continue from (the last checkpoint's)."""
        controller, counter = f"{self.root}/controller", f"{self.root}/controller_epoch"
        while True:
            count, version, registered, last = await asyncio.to_thread(self.read_registry)
            if registered is not None and registered["epoch"] == lead.epoch:
                # An earlier commit whose answer we missed landed after all.
                self.resumed = last
                return int(registered["controller_epoch"]), int(last["seq"]) if last else 0
            info = json.dumps({"id": self.id, "epoch": lead.epoch, "controller_epoch": count + 1})
            txn = lead.transaction()  # commits only while our candidate node exists
            if registered is not None:
                txn.set_data(controller, info.encode())
            else:
                txn.create(controller, info.encode())
            if version is None:
                txn.create(counter, b"1")
            else:
                txn.set_data(counter, str(count + 1).encode(), version)
            if last is None:
                txn.create(self.checkpoint_path, self.checkpoint_data(lead, 0, final=False))
            try:
                await txn.commit()
            except (WriteFailedError, ConnectionFailedError):
                continue  # changed since our read, or no answer: read again, then decide
            self.resumed = last
            return count + 1, int(last["seq"]) if last else 0

    def read_registry(
        self,
    ) -> tuple[int, int | None, dict[str, Any] | None, dict[str, Any] | None]:
        """Blocking kazoo reads (register() runs this in a thread): the counter and its
        version, /controller, and the last checkpoint (None: no such node)."""
        try:
            data, stat = self.zk.get(f"{self.root}/controller_epoch")
            count, version = int(data), stat.version
        except NoNodeError:
            count, version = 0, None
        registered = self.read_json(f"{self.root}/controller")
        return count, version, registered, self.read_json(self.checkpoint_path)

    def read_json(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.zk.get(path)[0]))
        except NoNodeError:
            return None

    @property
    def checkpoint_path(self) -> str:
        return f"{self.root}/checkpoint"

    def checkpoint_data(self, lead: AsyncLeadership, seq: int, *, final: bool) -> bytes:
        record = {"id": self.id, "epoch": lead.epoch, "seq": seq, "final": final}
        return json.dumps(record).encode()

    async def checkpoint(self, lead: AsyncLeadership, seq: int, *, final: bool = False) -> None:
        """A fenced write: applied only while our candidate node exists."""
        await lead.set_data(self.checkpoint_path, self.checkpoint_data(lead, seq, final=final))

    async def send(self, lead: AsyncLeadership, seq: int) -> list[int]:
        """Apply one command here and send it to every other broker; the HTTP statuses
        (0: no answer)."""
        command = {"from": self.id, "seq": seq, "command": "update-metadata"}
        headers = fencing_headers(lead.token)
        local = self.receive(headers[FENCING_HEADER], command)[0]
        body = json.dumps(command).encode()
        timeout = max(self.tick, 0.5)
        remote = await asyncio.gather(
            *(post(address, "/command", body, headers, timeout) for address in self.peers.values())
        )
        return [local, *remote]

    # -- the HTTP server ------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, headers, body = await asyncio.wait_for(read_request(reader), 5)
            status, payload = await self.route(method, path, headers, body)
        except (ValueError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            status, payload = 400, {"error": "malformed or incomplete HTTP request"}
        except ZkElectError as exc:  # resign() on a stopped election, say
            status, payload = 503, {"error": str(exc)}
        data = json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        with contextlib.suppress(OSError):  # the sender gave up waiting (we were frozen)
            await writer.drain()
        writer.close()

    async def route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("GET", "/state"):
            return 200, self.state()
        if (method, path) == ("POST", "/resign"):
            # Cancels control() and waits for it (its final checkpoint) before our node goes.
            return 200, {"resigned": await self.election.resign()}
        if (method, path) == ("POST", "/command"):
            command = json.loads(body or b"{}")
            if not isinstance(command, dict):
                return 400, {"error": "the body must be a JSON object"}
            return self.receive(headers.get(FENCING_HEADER.lower()), command)
        return 404, {"error": "try GET /state, POST /command or POST /resign"}


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """One HTTP/1.1 request: method, path, headers (lower-case names), body."""
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("not an HTTP request line")
    headers: dict[str, str] = {}
    while line := (await reader.readline()).decode("latin-1").strip():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return parts[0], parts[1], headers, body


async def post(
    address: str, path: str, body: bytes, headers: dict[str, str], timeout: float
) -> int:
    """POST a JSON body; the HTTP status, or 0 if there was no answer within ``timeout``
    (a broker that is down or frozen: the next tick tries again)."""
    host, _, port = address.rpartition(":")
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {address}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]

    async def exchange() -> int:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
            return int((await reader.readline()).split()[1])  # HTTP/1.1 409 Conflict
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except (OSError, ValueError, IndexError, asyncio.TimeoutError):
        return 0


async def serve(args: argparse.Namespace) -> int:
    broker = Broker(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(broker.handle, "127.0.0.1", args.port)
    await asyncio.to_thread(broker.zk.start, 15)  # a first connect blocks: not on the loop
    await broker.election.start()
    work = asyncio.create_task(broker.election.run_while_leader(broker.control, grace=GRACE))
    say(broker.id, f"listening on 127.0.0.1:{args.port}, candidate in {broker.root}/election")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    try:
        await broker.election.stop()  # cancels and drains control() first, then leaves
        await work  # returns once the election is stopped; re-raises control()'s failure
    except Exception as exc:
        say(broker.id, f"the controller failed: {exc!r}")
        code = 1
    finally:
        stopping.cancel()
        server.close()
        await server.wait_closed()
        await asyncio.to_thread(broker.zk.stop)
        broker.zk.close()
    say(broker.id, "stopped")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--port", type=int, required=True, help="this broker's HTTP port")
    parser.add_argument("--peers", default="", help="id=host:port,... (every broker)")
    parser.add_argument("--hosts", default=os.environ.get("ZKELECT_HOSTS"))
    parser.add_argument("--root", default="/recipes/async_controller")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between commands")
    parser.add_argument("--session-timeout", type=float, default=4.0)
    args = parser.parse_args()
    if not args.hosts:
        parser.error("--hosts (or ZKELECT_HOSTS) is required")
    # zkelect logs a work task abandoned after GRACE, or failing after the loss, as errors.
    logging.basicConfig(level=logging.WARNING, format=f"broker {args.id}: %(name)s %(message)s")
    return asyncio.run(serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
