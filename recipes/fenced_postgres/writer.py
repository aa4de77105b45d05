"""A primary-like writer: only the leader writes to PostgreSQL, fenced by its epoch.

Every writer is a candidate in ``--path``. The leader appends a row to ``ledger`` every
``--every`` seconds through ``PostgresFencedStore``, which checks the leader's epoch in
the same transaction as the insert. A leader that was frozen past its session timeout
wakes up and writes with its old epoch; the database refuses it (StaleEpochError) and the
writer demotes itself: it stops writing and waits, as a follower, to be elected again.

    python recipes/fenced_postgres/writer.py --id a --hosts "$ZKELECT_HOSTS" \\
        --dsn "host=127.0.0.1 dbname=postgres user=postgres"
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

import psycopg

from zkelect import (
    Election,
    ElectionConfig,
    ElectionStoppedError,
    Leadership,
    PostgresFencedStore,
    StaleEpochError,
)

RESOURCE = "ledger"  # the fenced store's high-water mark for this table


def say(writer: str, text: str) -> None:
    print(f"writer {writer}: {text}", flush=True)


def write_while_leading(
    writer: str, store: PostgresFencedStore, lead: Leadership, every: float, stop: threading.Event
) -> None:
    """Append a row every ``every`` seconds until the database or ZooKeeper says stop."""
    seq = 0
    while not stop.wait(every):
        seq += 1

        def insert(conn: Any, seq: int = seq) -> None:  # runs inside the fenced transaction
            conn.execute(
                "INSERT INTO ledger (writer, seq, epoch) VALUES (%s, %s, %s)",
                (writer, seq, lead.epoch),
            )

        # No "am I still leader?" check before the write: a pause can fall between such a
        # check and the write. The database decides, atomically with the insert.
        try:
            store.write(RESOURCE, lead.token, insert)
        except StaleEpochError as exc:
            say(writer, f"refused by the database, demoting: {exc}")
            return
        say(writer, f"wrote seq {seq} with epoch {lead.epoch:#x}")
        if lead.lost.is_set():  # lost quietly (nobody wrote after us yet): stop anyway
            say(writer, f"lost leadership ({lead.reason}), demoting")
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--id", required=True)
    parser.add_argument("--dsn", default=os.environ.get("ZKELECT_PG_DSN"), help="libpq conninfo")
    parser.add_argument("--hosts", default=os.environ.get("ZKELECT_HOSTS"))
    parser.add_argument("--path", default="/recipes/fenced_postgres")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between rows")
    parser.add_argument("--session-timeout", type=float, default=4.0)
    args = parser.parse_args()
    if not args.hosts or not args.dsn:
        parser.error("--hosts (or ZKELECT_HOSTS) and --dsn (or ZKELECT_PG_DSN) are required")

    store = PostgresFencedStore(args.dsn)  # creates its zkelect_fence table if missing
    with psycopg.connect(args.dsn) as conn:  # the application's own table
        conn.execute(
            "CREATE TABLE IF NOT EXISTS ledger (id BIGSERIAL PRIMARY KEY, writer TEXT NOT NULL,"
            " seq INT NOT NULL, epoch BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    election = Election(
        args.hosts,
        args.path,
        candidate_id=args.id,
        config=ElectionConfig(session_timeout=args.session_timeout),
    )
    election.start()
    say(args.id, f"candidate in {args.path}")
    try:
        while not stop.is_set():
            lead = election.wait_for_leadership(timeout=0.5)
            if lead is None:
                continue
            say(args.id, f"leader with epoch {lead.epoch:#x}")
            write_while_leading(args.id, store, lead, args.every, stop)
            if not stop.is_set():
                if not lead.lost.is_set():  # refused, yet ZooKeeper still lists us: step aside
                    election.resign()
                say(args.id, "follower")
    except ElectionStoppedError:
        pass
    finally:
        election.stop()
    say(args.id, "stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
