#!/usr/bin/env python3
"""Per-shard leaders at scale: one election per shard, thousands on one ZooKeeper session.

    python recipes/shard_leaders/shard_leaders.py --hosts 127.0.0.1:2181 --shards 10000 --id A

joins ``--shards`` elections (``<root>/shard-00000`` ...) with ONE KazooClient shared by every
Election, so the process holds one session and a handful of threads (zkelect's elections are
actors on a small worker pool, not a thread each). ``start(wait=False)`` sends every create
at once instead of one blocking round trip after another.

Balancing: whoever joins a shard first leads it, so a process that starts alone leads all of
them. Every process registers an ephemeral member node (``<root>/members/<id>``) and, every
``--rebalance-interval`` seconds, resigns the shards it leads above its fair share
(ceil(shards / members)) -- only shards where another candidate is already waiting, so the
shard goes to that candidate (``resign()`` re-queues us at the back). Two processes thus end
up at 50/50; a process that leaves hands its shards to the others when its session closes.

Prints one ``STATUS {json}`` line per ``--status-interval`` seconds; stop it with SIGINT or
SIGTERM (it closes the session: ZooKeeper deletes all its candidate nodes at once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

try:
    from zkelect import Election, ElectionConfig, Leadership
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from zkelect import Election, ElectionConfig, Leadership

DEFAULT_ROOT = "/recipes/shard_leaders"
# Four pool threads: followers' first watch is still one blocking read each, and the fair-share
# resigns each hold a pool thread for their delete.
CONFIG = ElectionConfig(session_timeout=10.0, worker_threads=2)


def shard_path(root: str, shard: int) -> str:
    return f"{root}/shard-{shard:05d}"


class ShardLeaders:
    """One process's candidacy in ``shards`` elections, over one shared KazooClient."""

    def __init__(
        self,
        client: KazooClient,
        shards: int,
        member_id: str,
        *,
        root: str = DEFAULT_ROOT,
        config: ElectionConfig = CONFIG,
    ) -> None:
        self.client = client
        self.shards = shards
        self.member_id = member_id
        self.root = root
        self._lock = threading.Lock()
        self._leading: set[int] = set()
        self.all_led = threading.Event()
        self.first_start: float | None = None
        self.elections = [
            Election(
                client,
                shard_path(root, shard),
                candidate_id=member_id,
                config=config,
                on_elected=lambda lead, shard=shard: self._elected(shard, lead),
                on_revoked=lambda reason, shard=shard: self._revoked(shard),
            )
            for shard in range(shards)
        ]

    # Callbacks run on zkelect's one callback thread: keep them short. Real shard work
    # would start here (and stop on revocation), fenced with lead.token where it writes.
    def _elected(self, shard: int, lead: Leadership) -> None:
        with self._lock:
            self._leading.add(shard)
            if len(self._leading) == self.shards:
                self.all_led.set()

    def _revoked(self, shard: int) -> None:
        with self._lock:
            self._leading.discard(shard)

    def leading(self) -> set[int]:
        with self._lock:
            return set(self._leading)

    def start(self) -> None:
        """Register as a member, then join every shard without waiting for round trips.

        The shard paths need not exist: zkelect creates missing election paths in the same
        multi-ops as the candidates' nodes."""
        self.client.ensure_path(f"{self.root}/members")
        try:
            self.client.create(f"{self.root}/members/{self.member_id}", ephemeral=True)
        except NodeExistsError:
            raise SystemExit(f"member id {self.member_id!r} is already in use") from None
        self.first_start = time.perf_counter()
        for election in self.elections:
            election.start(wait=False)

    def members(self) -> int:
        try:
            return max(1, len(self.client.get_children(f"{self.root}/members")))
        except NoNodeError:
            return 1

    def fair_share(self) -> int:
        return math.ceil(self.shards / self.members())

    def rebalance(self) -> int:
        """Resign the shards led above the fair share where another candidate waits."""
        leading = sorted(self.leading())
        excess = len(leading) - self.fair_share()
        if excess <= 0:
            return 0
        # One pipelined burst of reads: which of our shards have someone waiting behind us?
        pending = [
            (shard, self.client.get_children_async(shard_path(self.root, shard)))
            for shard in leading
        ]
        contested = []
        for shard, result in pending:
            try:
                if len(result.get(timeout=10)) >= 2:
                    contested.append(shard)
            except NoNodeError:
                continue
        resigned = 0
        for shard in contested[:excess]:
            if self.elections[shard].resign():
                resigned += 1
        return resigned

    def stop(self) -> None:
        """Close the session first (ZooKeeper drops every candidate node at once), then
        stop the elections: with the session gone they have nothing left to delete."""
        self.client.stop()
        for election in self.elections:
            election.stop()
        self.client.close()


def status(shards: ShardLeaders, resigned: int) -> dict[str, Any]:
    return {
        "id": shards.member_id,
        "shards": shards.shards,
        "leading": len(shards.leading()),
        "members": shards.members(),
        "fair_share": shards.fair_share(),
        "resigned_total": resigned,
        "all_led_s": None,
        "threads": threading.active_count(),
        "pid": os.getpid(),
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", required=True, help="ZooKeeper connect string")
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--id", required=True, help="this process's member id")
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--rebalance-interval", type=float, default=1.0)
    parser.add_argument("--no-rebalance", action="store_true", help="never resign shards")
    parser.add_argument("--status-interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=0.0, help="exit after S s (0: never)")
    args = parser.parse_args(None if argv is None else list(argv))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    client = KazooClient(hosts=args.hosts, timeout=CONFIG.session_timeout)
    client.start(timeout=30)
    shards = ShardLeaders(client, args.shards, args.id, root=args.root)
    began = time.perf_counter()
    shards.start()
    resigned = 0
    all_led_s: float | None = None
    next_status = next_rebalance = time.monotonic()
    deadline = time.monotonic() + args.duration if args.duration > 0 else math.inf
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            if all_led_s is None and len(shards.leading()) == args.shards:
                all_led_s = round(time.perf_counter() - began, 3)
            if not args.no_rebalance and now >= next_rebalance:
                resigned += shards.rebalance()
                next_rebalance = time.monotonic() + args.rebalance_interval
            if now >= next_status:
                line = status(shards, resigned) | {"all_led_s": all_led_s}
                print("STATUS " + json.dumps(line), flush=True)
                next_status = now + args.status_interval
            stop.wait(0.05)
    finally:
        shards.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
