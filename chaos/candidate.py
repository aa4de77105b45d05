"""One chaos candidate process: joins the election and, while it believes it leads, writes.

Run by the chaos runner (one process per candidate slot, a new *incarnation* after each
SIGKILL)::

    python -m chaos.candidate --cand c0 --inc 1 --hosts H --path /chaos/election \
        --store DIR/store.sqlite --out DIR [--session-timeout 2 --request-timeout 4 ...]

The timeouts not given are zkelect's own defaults (``ElectionConfig``). ``--hosts`` lists one
address per ZooKeeper member, in member order (the runner's proxies for this candidate), so
the position of the address a connection goes to is the member it reaches.

It records its history in ``DIR/candidates/<cand>.jsonl`` (the schema is in
docs/reliability.md): start, each new ZooKeeper session, every (re)connection with the member
and session it is on and every disconnection, elected/revoked as zkelect reports them, every
write attempt with its result, and a clean exit on SIGTERM. While it believes it leads (from
``on_elected`` until its Leadership is lost) it writes every 50-100 ms through the fenced
SQLite store with the leadership's token; the accepted write also inserts a row into
``chaos_writes`` in the same transaction, so the store keeps its own audit of what it
accepted, in commit order.

A write is decided while the leadership holds and lands 50-100 ms later without looking
again (the first write of a new leadership goes at once): a process SIGSTOPped in between
wakes and writes with its old epoch before it notices it was deposed, which is exactly what
the fenced store must refuse. ``revoked`` is recorded after such a write: belief lasts until
the process stops acting as leader.

The session id and password of each session go to ``DIR/secrets/<cand>.json`` (not to the
public history) so the runner can expire the session on the server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient, KazooState

from chaos.events import EventLog
from zkelect import Election, ElectionConfig, Leadership
from zkelect.errors import StaleEpochError
from zkelect.fencing.stores import SQLiteFencedStore

__all__ = [
    "AUDIT_TABLE",
    "RESOURCE",
    "create_audit_table",
    "election_config",
    "main",
    "member_ports",
    "parse_args",
]

RESOURCE = "chaos"  # the fenced store's resource every leader writes
AUDIT_TABLE = "chaos_writes"
_WRITE_GAP = (0.05, 0.10)


def create_audit_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "epoch INTEGER NOT NULL, cand TEXT NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL)"
    )


def _write_secret(path: Path, inc: int, client_id: tuple[int, bytes]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps({"inc": inc, "session_id": client_id[0], "password": client_id[1].hex()})
    )
    os.replace(tmp, path)


class Candidate:
    """The election, the writer loop and the history of one incarnation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.cand: str = args.cand
        self.inc: int = args.inc
        out = Path(args.out)
        self.log = EventLog(out / "candidates" / f"{self.cand}.jsonl")
        self.secret = out / "secrets" / f"{self.cand}.json"
        self.secret.parent.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()
        self.wake = threading.Event()  # set on election: the first write goes out at once
        self.write_lock = threading.Lock()  # a write and its record vs. the revoked record
        self.lead: Leadership | None = None
        self.last_epoch = 0  # of the latest on_elected: what on_revoked ends
        self.seq = 0
        self.session_id: int | None = None
        self.members = member_ports(args.hosts)
        self.store = SQLiteFencedStore(args.store, busy_timeout=5.0)
        config = election_config(args)
        self.client = KazooClient(hosts=args.hosts, timeout=config.session_timeout)
        self.client.add_listener(self._on_state)
        self.election = Election(
            self.client,
            args.path,
            candidate_id=f"{self.cand}.{self.inc}",
            config=config,
            on_elected=self._on_elected,
            on_revoked=self._on_revoked,
        )

    def _fields(self) -> dict[str, Any]:
        return {"cand": self.cand, "inc": self.inc}

    # -- callbacks ---------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        # kazoo's connection thread, called synchronously on each change of state: the
        # session id is set and the new socket is open when CONNECTED is reported.
        if state != KazooState.CONNECTED:
            self.log.emit("disconnected", state=str(state).lower(), **self._fields())
            return
        client_id = self.client.client_id
        if client_id is None:
            return
        if client_id[0] != self.session_id:
            self.session_id = int(client_id[0])
            _write_secret(self.secret, self.inc, (int(client_id[0]), bytes(client_id[1])))
            self.log.emit("session", session_id=f"{self.session_id:#x}", **self._fields())
        member = self._member()
        if member is not None:
            self.log.emit(
                "connected", member=member, session_id=f"{self.session_id:#x}", **self._fields()
            )

    def _member(self) -> int | None:
        """The member the client's socket reaches, from the proxy port it is connected to."""
        peer = self.election.session.tap.current_peer()
        return self.members.get(peer[1]) if peer is not None else None

    def _on_elected(self, lead: Leadership) -> None:
        with self.write_lock:
            self.log.emit("elected", epoch=lead.epoch, node=lead.node_path, **self._fields())
            self.lead, self.last_epoch = lead, lead.epoch
        self.wake.set()

    def _on_revoked(self, reason: str) -> None:
        self.lead = None
        # Wait for a write in flight to be recorded first: its outcome belongs to the belief.
        with self.write_lock:
            self.log.emit("revoked", epoch=self.last_epoch, reason=reason, **self._fields())

    # -- the leader's work -------------------------------------------------------------

    def _write_once(self, lead: Leadership) -> None:
        self.seq += 1
        seq, epoch = self.seq, lead.epoch
        t_start = time.monotonic()

        def audit(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO {AUDIT_TABLE} (epoch, cand, seq, t) VALUES (?, ?, ?, ?)",
                (epoch, self.cand, seq, time.monotonic()),
            )

        result, current, error = "accepted", None, None
        try:
            self.store.write(RESOURCE, lead.token, audit)
        except StaleEpochError as exc:
            result, current, error = "rejected", exc.current_epoch, str(exc)
        except Exception as exc:  # the store was busy (a paused writer holds its lock), ...
            result, error = "error", f"{type(exc).__name__}: {exc}"
        self.log.emit(
            "write",
            epoch=epoch,
            seq=seq,
            t_start=t_start,
            result=result,
            current_epoch=current,
            error=error,
            **self._fields(),
        )

    def run(self) -> int:
        self.log.emit("start", pid=os.getpid(), **self._fields())
        while not self.stopping.is_set():
            try:
                self.client.start(timeout=5.0)
                break
            except Exception:  # no quorum reachable yet (a fault in progress): try again
                self.stopping.wait(0.5)
        if self.stopping.is_set():
            return self._exit()
        self.election.start()
        last_written: Leadership | None = None
        while not self.stopping.is_set():
            self.wake.clear()
            with self.write_lock:
                lead = self.lead
                if lead is not None and not lead.lost.is_set():
                    if lead is last_written:
                        # The next write is decided now and lands after the gap without
                        # looking again, like work between a leadership check and its write:
                        # a process frozen here (SIGSTOP) wakes and writes with its old
                        # epoch, which the fenced store must refuse.
                        self.stopping.wait(random.uniform(*_WRITE_GAP))
                    self._write_once(lead)  # a new leader writes at once
                    last_written = lead
                    continue
            self.wake.wait(1.0)
        self.election.stop()
        return self._exit()

    def _exit(self) -> int:
        self.client.stop()
        self.client.close()
        self.log.emit("exit", **self._fields())
        self.log.close()
        return 0

    def request_stop(self) -> None:
        self.stopping.set()
        self.wake.set()


def member_ports(hosts: str) -> dict[int, int]:
    """Port -> member index of a connect string listing one address per member, in order."""
    ports: dict[int, int] = {}
    for index, address in enumerate(hosts.split(",")):
        ports[int(address.rpartition(":")[2])] = index
    return ports


def election_config(args: argparse.Namespace) -> ElectionConfig:
    """zkelect's defaults, except for the timeouts given on the command line."""
    given = {
        name: getattr(args, name)
        for name in ("session_timeout", "request_timeout", "connect_timeout")
        if getattr(args, name) is not None
    }
    return ElectionConfig(**given)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos.candidate", description=__doc__)
    parser.add_argument("--cand", required=True, help="slot name, c0..c4")
    parser.add_argument("--inc", type=int, default=1, help="incarnation number of the slot")
    parser.add_argument("--hosts", required=True, help="ZooKeeper connect string")
    parser.add_argument("--path", required=True, help="election path")
    parser.add_argument("--store", required=True, help="SQLite file of the fenced store")
    parser.add_argument("--out", required=True, help="run directory")
    for name in ("session", "request", "connect"):
        parser.add_argument(
            f"--{name}-timeout", type=float, default=None, help="default: zkelect's default"
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    candidate = Candidate(parse_args(argv))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: candidate.request_stop())
    return candidate.run()


if __name__ == "__main__":
    sys.exit(main())
