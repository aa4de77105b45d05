"""Leader-only cron: run a job every N seconds, on the elected leader only.

``run_every(election, interval, fn)`` calls ``fn(run)`` at every multiple of ``interval``
on the wall clock (so a new leader keeps the old leader's schedule) while this candidate
leads, until the election is stopped. ``run.lead`` is the Leadership the run started
under; ``run.slot`` the slot number (scheduled time / interval); ``run.skipped`` how many
slots before it this process let pass without running.

Leadership lost during a run: ``run.lead.lost`` is set at once; ``fn`` should watch it
and stop (run_every cannot kill a thread). The next run waits for leadership again.

Missed runs are skipped, never caught up: runs never overlap, and after a long run (or a
pause, or a time without leadership) the next run is the next slot still in the future.

    python recipes/leader_cron/cron.py --hosts "$ZKELECT_HOSTS" --id a --every 5 -- date
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from zkelect import Election, ElectionConfig, ElectionStoppedError, Leadership


@dataclass(frozen=True)
class Run:
    lead: Leadership
    slot: int  # this run's scheduled time is slot * interval (Unix time)
    skipped: int  # slots this process let pass since its previous run (0 for its first)


def run_every(election: Election, interval: float, fn: Callable[[Run], object]) -> None:
    """Run ``fn`` every ``interval`` seconds while ``election`` leads; returns when the
    election is stopped. ``election`` must be started."""
    last_slot: int | None = None
    while True:
        try:
            lead = election.wait_for_leadership(timeout=1.0)
        except ElectionStoppedError:
            return
        if lead is None:
            continue
        slot = math.floor(time.time() / interval) + 1  # the next slot in the future
        if last_slot is not None:
            slot = max(slot, last_slot + 1)
        # Sleep until the slot; wake at once if leadership goes (then wait to lead again).
        while (delay := slot * interval - time.time()) > 0 and not lead.lost.wait(delay):
            pass
        if lead.lost.is_set():
            continue
        skipped = 0 if last_slot is None else slot - last_slot - 1
        last_slot = slot
        fn(Run(lead, slot, skipped))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--id", required=True)
    parser.add_argument("--hosts", default=os.environ.get("ZKELECT_HOSTS"))
    parser.add_argument("--path", default="/recipes/leader_cron")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between runs")
    parser.add_argument("--session-timeout", type=float, default=4.0)
    parser.add_argument("command", nargs="*", help="the job (after --); default: print a line")
    args = parser.parse_args()
    if not args.hosts:
        parser.error("--hosts (or ZKELECT_HOSTS) is required")

    def job(run: Run) -> None:
        print(
            f"cron {args.id}: run slot {run.slot} (skipped {run.skipped}) "
            f"epoch {run.lead.epoch:#x}",
            flush=True,
        )
        if not args.command:
            return
        env = {**os.environ, "ZKELECT_TOKEN": str(run.lead.token)}  # to fence its writes
        child = subprocess.Popen(args.command, env=env)
        while child.poll() is None:
            if run.lead.lost.wait(0.1):  # cooperative stop: end the job we started
                print(f"cron {args.id}: leadership lost ({run.lead.reason}), stopping the job")
                sys.stdout.flush()
                child.terminate()
                child.wait()
        print(f"cron {args.id}: slot {run.slot} exited {child.returncode}", flush=True)

    config = ElectionConfig(session_timeout=args.session_timeout)
    election = Election(args.hosts, args.path, candidate_id=args.id, config=config)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=election.stop).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=election.stop).start())
    election.start()
    print(f"cron {args.id}: candidate in {args.path}, every {args.every}s", flush=True)
    run_every(election, args.every, job)
    print(f"cron {args.id}: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
