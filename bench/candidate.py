#!/usr/bin/env python3
"""One election candidate in a process of its own, for the crash and idle-CPU benchmarks.

    python bench/candidate.py --impl zkelect|kazoo --hosts H --path P --id ID
                              [--session-timeout S]

Prints one line per event, flushed: ``READY <pid> <negotiated session timeout s>`` once it
is a candidate, ``ELECTED <id> <time.monotonic()>`` when it starts leading (CLOCK_MONOTONIC
is system-wide on Linux, so the benchmark compares it with its own clock), ``REVOKED <id>
<reason> <time.monotonic()>``. Leaves the election and exits on stdin EOF or SIGTERM; the
benchmark SIGKILLs or SIGSTOPs it to simulate a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_lock = threading.Lock()


def say(line: str) -> None:
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def run_zkelect(args: argparse.Namespace, done: threading.Event) -> None:
    from zkelect import Election, ElectionConfig, Leadership

    def on_elected(lead: Leadership) -> None:
        say(f"ELECTED {args.id} {time.monotonic():.6f}")

    def on_revoked(reason: str) -> None:
        say(f"REVOKED {args.id} {reason} {time.monotonic():.6f}")

    election = Election(
        args.hosts,
        args.path,
        candidate_id=args.id,
        config=ElectionConfig(session_timeout=args.session_timeout),
        on_elected=on_elected,
        on_revoked=on_revoked,
    )
    election.start()
    try:
        say(f"READY {os.getpid()} {election.session.session_timeout:g}")
        while not done.wait(1.0):
            pass
    finally:
        election.stop()


def run_kazoo(args: argparse.Namespace, done: threading.Event) -> None:
    from kazoo.client import KazooClient
    from kazoo.exceptions import CancelledError

    client = KazooClient(hosts=args.hosts, timeout=args.session_timeout)
    client.start(timeout=30)
    election = client.Election(args.path, args.id)

    def lead() -> None:
        say(f"ELECTED {args.id} {time.monotonic():.6f}")
        done.wait()

    def contend() -> None:
        with contextlib.suppress(CancelledError):
            election.run(lead)

    thread = threading.Thread(target=contend, name="kazoo-candidate", daemon=True)
    thread.start()
    try:
        negotiated: Any = getattr(client, "_session_timeout", None)
        timeout = negotiated / 1000.0 if negotiated else args.session_timeout
        say(f"READY {os.getpid()} {timeout:g}")
        while not done.wait(1.0):
            pass
    finally:
        election.cancel()
        thread.join(10)
        client.stop()
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("zkelect", "kazoo"), default="zkelect")
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--session-timeout", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    def watch_stdin() -> None:
        for _ in sys.stdin:
            pass
        done.set()  # EOF: the benchmark is gone or wants us to stop

    threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    (run_zkelect if args.impl == "zkelect" else run_kazoo)(args, done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
