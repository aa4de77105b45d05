"""A broker of the Kafka-style controller recipe (see README.md).

Every broker runs a tiny HTTP server and is a candidate in ``<root>/election``. The elected
one becomes the controller: it registers itself in ``<root>/controller`` and bumps
``<root>/controller_epoch`` in ONE fenced multi-op, then sends a command stamped with its
fencing token to every other broker on each tick. Brokers admit a command only if its epoch
is not lower than the highest they have seen (FencingGuard) and answer 409 otherwise.

    python recipes/controller/broker.py --id 1 --port 9101 --hosts "$ZKELECT_HOSTS" \\
        --peers 1=127.0.0.1:9101,2=127.0.0.1:9102,3=127.0.0.1:9103
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zkelect import (
    Election,
    ElectionStoppedError,
    FencingGuard,
    InvalidTokenError,
    Leadership,
    LeadershipLostError,
    StaleEpochError,
    WriteFailedError,
    fencing_headers,
)

RESOURCE = "controller"  # the guard's high-water mark: one per broker, for controller commands


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
        self.guard = FencingGuard()
        self.lock = threading.Lock()
        self.accepted: list[dict[str, Any]] = []  # commands applied, oldest first
        self.rejected: list[dict[str, Any]] = []  # commands refused with 409
        self.controller_epoch: int | None = None  # our fencing epoch while we control
        self.demotions = 0
        self.stopping = threading.Event()
        self.zk = KazooClient(hosts=args.hosts, timeout=args.session_timeout)
        self.election = Election(self.zk, f"{self.root}/election", candidate_id=f"broker-{self.id}")
        self.pool = ThreadPoolExecutor(max(1, len(self.peers)))

    # -- receiving commands ---------------------------------------------------------------------

    def receive(self, header: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            with self.guard.admit(RESOURCE, header) as admitted:
                entry = {**body, "epoch": admitted.token.epoch}
                with self.lock:
                    self.accepted.append(entry)
                return 200, {"accepted": True, "epoch": admitted.token.epoch}
        except StaleEpochError as exc:
            with self.lock:
                self.rejected.append({**body, "epoch": exc.epoch, "current": exc.current_epoch})
            say(self.id, f"409 for broker {body.get('from')}: {exc}")
            return 409, {"accepted": False, "error": str(exc), "current": exc.current_epoch}
        except InvalidTokenError as exc:
            return 400, {"accepted": False, "error": str(exc)}

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "id": self.id,
                "highest_epoch": self.guard.highest_epoch(RESOURCE),
                "accepted": len(self.accepted),
                "last_accepted": self.accepted[-1] if self.accepted else None,
                "rejected": list(self.rejected),
                "controller_epoch": self.controller_epoch,
                "demotions": self.demotions,
            }

    # -- being the controller -------------------------------------------------------------------

    def register(self, lead: Leadership) -> int:
        """Write /controller and bump /controller_epoch in one fenced multi-op."""
        controller, counter = f"{self.root}/controller", f"{self.root}/controller_epoch"
        while True:
            try:
                data, stat = self.zk.get(counter)
                count, version = int(data), stat.version
            except NoNodeError:
                count, version = 0, None
            info = json.dumps({"id": self.id, "epoch": lead.epoch, "controller_epoch": count + 1})
            txn = lead.transaction()  # commits only while our candidate node exists
            if self.zk.exists(controller) is None:
                txn.create(controller, info.encode())
            else:
                txn.set_data(controller, info.encode())
            if version is None:
                txn.create(counter, b"1")
            else:
                txn.set_data(counter, str(count + 1).encode(), version)
            try:
                txn.commit()
                return count + 1
            except WriteFailedError:
                continue  # someone changed a node between our read and the commit: read again

    def send(self, lead: Leadership, seq: int) -> list[int]:
        """Apply one command here and send it to every other broker; the HTTP statuses
        (0: no answer)."""
        command = {"from": self.id, "seq": seq, "command": "update-metadata"}
        body = json.dumps(command).encode()
        local = self.receive(fencing_headers(lead)["Fencing-Token"], command)[0]

        def post(address: str) -> int:
            request = urllib.request.Request(
                f"http://{address}/command",
                data=body,
                headers={**fencing_headers(lead), "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=max(self.tick, 0.5)) as reply:
                    return int(reply.status)
            except urllib.error.HTTPError as exc:
                return exc.code
            except OSError:
                return 0  # a broker that is down or frozen: try again next tick

        return [local, *self.pool.map(post, self.peers.values())]

    def control(self) -> None:
        lead: Leadership | None = None
        seq = 0
        while not self.stopping.is_set():
            if lead is None:
                try:
                    lead = self.election.wait_for_leadership(timeout=0.5)
                except ElectionStoppedError:
                    return
                if lead is None:
                    continue
                try:
                    count = self.register(lead)
                except LeadershipLostError as exc:  # StaleEpochError is one
                    say(self.id, f"lost the election before registering: {exc}")
                    lead = None
                    continue
                self.controller_epoch = lead.epoch
                say(self.id, f"controller: epoch {lead.epoch:#x}, controller_epoch {count}")
            if self.stopping.wait(self.tick):
                return
            # No "am I still the controller?" check before sending: a pause can fall between
            # such a check and the send. The brokers decide (409); we look afterwards.
            seq += 1
            statuses = self.send(lead, seq)
            if 409 in statuses or lead.lost.is_set():
                why = "a broker answered 409" if 409 in statuses else f"lost: {lead.reason}"
                say(self.id, f"no longer controller (epoch {lead.epoch:#x}): {why}")
                with self.lock:
                    self.controller_epoch = None
                    self.demotions += 1
                if self.election.is_leader and not lead.lost.is_set():
                    self.election.resign()
                lead = None


def serve(broker: Broker, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the sender gave up waiting (we were frozen)
                self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/state":
                self.reply(200, broker.state())
            else:
                self.reply(404, {"error": "try GET /state or POST /command"})

        def do_POST(self) -> None:
            if self.path != "/command":
                self.reply(404, {"error": "POST /command"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self.reply(400, {"error": "body must be JSON"})
                return
            self.reply(*broker.receive(self.headers.get("Fencing-Token"), body))

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the broker prints what matters

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--port", type=int, required=True, help="this broker's HTTP port")
    parser.add_argument("--peers", default="", help="id=host:port,... (every broker)")
    parser.add_argument("--hosts", default=os.environ.get("ZKELECT_HOSTS"))
    parser.add_argument("--root", default="/recipes/controller")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between commands")
    parser.add_argument("--session-timeout", type=float, default=4.0)
    args = parser.parse_args()
    if not args.hosts:
        parser.error("--hosts (or ZKELECT_HOSTS) is required")

    broker = Broker(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = serve(broker, args.port)
    broker.zk.start(timeout=15)
    broker.election.start()
    controller = threading.Thread(target=broker.control, daemon=True)
    controller.start()
    say(broker.id, f"listening on 127.0.0.1:{args.port}, candidate in {broker.root}/election")
    while not stop.wait(0.5):
        pass
    broker.stopping.set()
    broker.election.stop()
    controller.join(5)
    server.shutdown()
    broker.zk.stop()
    broker.zk.close()
    say(broker.id, "stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
