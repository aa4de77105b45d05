"""recipes/shard_leaders: many elections on one session; two processes split leadership."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zkelect._election.nodes import election_order
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "shard_leaders"
sys.path.insert(0, str(RECIPE))

import shard_leaders  # noqa: E402


def leaders_in_zookeeper(client: KazooClient, root: str, shards: int) -> list[str | None]:
    """The leader's id of each shard, read from ZooKeeper (first node in election order)."""
    paths = [shard_leaders.shard_path(root, shard) for shard in range(shards)]
    children = [client.get_children_async(path) for path in paths]
    firsts = []
    for path, result in zip(paths, children, strict=True):
        try:
            order = election_order(result.get(timeout=10))
        except NoNodeError:
            order = []
        firsts.append(client.get_async(f"{path}/{order[0].name}") if order else None)
    leaders: list[str | None] = []
    for first in firsts:
        try:
            leaders.append(None if first is None else first.get(timeout=10)[0].decode())
        except NoNodeError:  # resigned between the two reads
            leaders.append(None)
    return leaders


def test_one_session_leads_1000_shards_with_few_threads(
    ensemble: LocalEnsemble, kazoo_client: KazooClient
) -> None:
    root = f"/recipes/shard_leaders-t-{uuid.uuid4().hex[:8]}"
    before = threading.active_count()  # the test process's own (fixtures' client, ...)
    client = KazooClient(hosts=ensemble.hosts, timeout=10.0)
    client.start(timeout=30)
    shards = shard_leaders.ShardLeaders(client, 1000, "solo", root=root)
    try:
        shards.start()
        assert shards.all_led.wait(30), f"only {len(shards.leading())}/1000 led"
        # The recipe's session adds kazoo's 3 threads and zkelect's 6; with main, <= 10.
        assert threading.active_count() - before + 1 <= 10
        assert leaders_in_zookeeper(kazoo_client, root, 1000) == ["solo"] * 1000
    finally:
        shards.stop()


def _spawn(hosts: str, root: str, member: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(RECIPE.parents[1])}
    return subprocess.Popen(
        [
            sys.executable,
            str(RECIPE / "shard_leaders.py"),
            "--hosts",
            hosts,
            "--shards",
            "1000",
            "--id",
            member,
            "--root",
            root,
            "--rebalance-interval",
            "0.5",
            "--status-interval",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


class StatusReader:
    """Collects a recipe process's STATUS lines as they come (a thread reads its stdout)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.statuses: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("STATUS "):
                self.statuses.append(json.loads(line[7:]))

    def last(self) -> dict[str, Any] | None:
        return self.statuses[-1] if self.statuses else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._thread.join(timeout=10)


def test_two_processes_split_leadership_half_and_half(
    ensemble: LocalEnsemble, kazoo_client: KazooClient
) -> None:
    root = f"/recipes/shard_leaders-t-{uuid.uuid4().hex[:8]}"
    procs = [StatusReader(_spawn(ensemble.hosts, root, "A"))]
    try:
        deadline = time.monotonic() + 20  # A starts alone and leads everything at first
        while leaders_in_zookeeper(kazoo_client, root, 1000).count("A") < 1000:
            assert time.monotonic() < deadline, "A did not lead all 1000 shards alone"
            time.sleep(0.2)
        procs.append(StatusReader(_spawn(ensemble.hosts, root, "B")))
        deadline = time.monotonic() + 30
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            leaders = leaders_in_zookeeper(kazoo_client, root, 1000)
            counts = {m: leaders.count(m) for m in ("A", "B")}
            if counts == {"A": 500, "B": 500}:
                break
            time.sleep(0.5)
        assert counts == {"A": 500, "B": 500}
        # Exactly one leader per shard (the first node), and both are candidates of each.
        for shard in (0, 499, 999):
            names = candidate_children(kazoo_client, shard_leaders.shard_path(root, shard))
            assert len(names) == 2
        # Each process reports the same split (its callbacks may trail ZooKeeper a little),
        # holding 1,000 elections with at most 10 threads.
        for reader in procs:
            wait_for(
                lambda reader=reader: (reader.last() or {}).get("leading") == 500,
                20,
                message=f"status of {reader.last()}",
            )
            assert reader.proc.poll() is None
            assert reader.statuses[-1]["threads"] <= 10, reader.statuses[-1]
    finally:
        for reader in procs:
            reader.stop()


def test_bench_scale_quick_runs(ensemble: LocalEnsemble) -> None:
    out = subprocess.run(
        [sys.executable, str(RECIPE / "bench_scale.py"), "--quick", "--hosts", ensemble.hosts],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    results = json.loads(next(line for line in out.splitlines() if line.startswith("JSON "))[5:])
    zkelect, kazoo = results
    assert zkelect["all_led"] and zkelect["led"] == 1000 and zkelect["threads_proc"] <= 10
    assert kazoo["all_led"] and kazoo["threads_proc"] > 200
