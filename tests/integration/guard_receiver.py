"""A receiver process for test_guard_receivers.py: one guarded write to a shared PostgreSQL.

    guard_receiver.py --dsn DSN --header FENCING_HEADER_VALUE [--hold]

It admits the header for the resource "orders" through FencingGuard(PostgresFencedStore(DSN))
and, inside the admitted block, appends the token's epoch to the table ``applied`` through
``admitted.connection``, as docs/fencing.md tells a receiver to. With --hold it first waits,
inside the block, for a line on stdin: the test's go-signal (end of input aborts the write).

It prints one JSON object per line: {"event": "ready"} once its store is built,
{"event": "admitted", "epoch": e} inside the block, then one outcome: {"event": "applied"},
{"event": "stale", "epoch": e, "current_epoch": c} or {"event": "error", "error": text}.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zkelect import FencingGuard, PostgresFencedStore, StaleEpochError

RESOURCE = "orders"


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--header", required=True)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()

    guard = FencingGuard(PostgresFencedStore(args.dsn))
    emit(event="ready")
    try:
        with guard.admit(RESOURCE, args.header) as admitted:
            emit(event="admitted", epoch=admitted.token.epoch)
            if args.hold and not sys.stdin.readline():
                raise RuntimeError("stdin closed before the go-signal: not writing")
            admitted.connection.execute(
                "INSERT INTO applied (epoch) VALUES (%s)", (admitted.token.epoch,)
            )
    except StaleEpochError as exc:
        emit(event="stale", epoch=exc.epoch, current_epoch=exc.current_epoch)
        return 0
    except Exception as exc:  # reported to the test, which fails with it
        emit(event="error", error=f"{type(exc).__name__}: {exc}")
        return 1
    emit(event="applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
