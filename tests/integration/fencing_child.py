"""A candidate process for the frozen-leader scenario (run by test_frozen_leader.py).

It joins an election on its own session and prints one JSON object per line for every
event. Commands come on stdin, one per line:

    write <text>   write <text> through the chosen store with the token of the LAST
                   leadership this process held, without asking whether it still leads:
                   exactly what a process frozen between its check and its write does
    status         print whether it leads, its node and session
    quit           stop the election and exit 0

Stores: ``zk`` (a fenced ZooKeeper transaction setting DATA_PATH), ``sqlite`` (a file),
``postgres`` (a conninfo string).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from zkelect import Election, ElectionConfig, Leadership, ZkElectError
from zkelect.fencing.stores import FencedStore, PostgresFencedStore, SQLiteFencedStore

out_lock = threading.Lock()


def emit(**event: Any) -> None:
    with out_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--store", choices=["zk", "sqlite", "postgres"], required=True)
    parser.add_argument("--target", required=True, help="znode, SQLite file or conninfo")
    parser.add_argument("--session-timeout", type=float, default=2.0)
    args = parser.parse_args()

    last: list[Leadership] = []
    election = Election(
        args.hosts,
        args.path,
        candidate_id=args.id,
        config=ElectionConfig(session_timeout=args.session_timeout, request_timeout=5.0),
        on_elected=lambda lead: (last.append(lead), emit(event="elected", epoch=lead.epoch)),
        on_revoked=lambda reason: emit(event="revoked", reason=reason),
    )
    store: FencedStore | None = None
    if args.store == "sqlite":
        store = SQLiteFencedStore(args.target)
    elif args.store == "postgres":
        store = PostgresFencedStore(args.target)
    election.start()
    emit(event="joined", node=election.node, session=election.session.session_id)

    def log_row(conn: Any, text: str, epoch: int) -> None:
        marker = "?" if args.store == "sqlite" else "%s"
        conn.execute("CREATE TABLE IF NOT EXISTS writes (value TEXT, epoch BIGINT)")
        conn.execute(
            f"INSERT INTO writes (value, epoch) VALUES ({marker}, {marker})", (text, epoch)
        )

    for line in sys.stdin:
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
            lead = last[-1]
            try:
                if store is None:
                    lead.set_data(args.target, text.encode())
                else:
                    store.write(
                        "resource",
                        lead.token,
                        lambda conn, t=text, e=lead.epoch: log_row(conn, t, e),
                    )
            except ZkElectError as exc:
                current = getattr(exc, "current_epoch", None)
                emit(
                    event="write",
                    ok=False,
                    text=text,
                    epoch=lead.epoch,
                    current=current,
                    error=f"{type(exc).__name__}: {exc}",
                )
            else:
                emit(event="write", ok=True, text=text, epoch=lead.epoch)
    election.stop()
    emit(event="stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
