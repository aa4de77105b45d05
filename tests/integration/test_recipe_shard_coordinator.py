"""The shard-assignment coordinator recipe (recipes/shard_coordinator) on real ZooKeeper.

1. Real member processes join (3, then 2 more) and leave (the coordinator is SIGKILLed)
   while each works its shards through one fenced SQLite store; the store's history proves
   no shard was processed by two owners at overlapping times.
2. 10,000 shards across 20 members: assigned, published through the split fenced
   transaction, read back; every multi-op stays under ZooKeeper's 1 MiB request limit.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, LeadershipLostError
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "shard_coordinator"
SCRIPT = RECIPE / "shard_coordinator.py"
# The recipe imports its assignment module as a sibling (running the script puts its folder
# first on sys.path); load_recipe() and these imports need the folder too.
sys.path.insert(0, str(RECIPE))

from assignment import assign, loads, minimum_moves, moved  # noqa: E402

ONE_MIB = 1024 * 1024
SHARDS = 12
SESSION_TIMEOUT = 2.0


def load_recipe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shard_coordinator", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shard_coordinator"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class MemberProcess:
    """One member process; its JSON events are collected by a reader thread."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args, "--commands"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def seen(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def stop(self) -> None:
        """Ask it to quit; kill it by PID if it does not within the deadline."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def spawn() -> Iterator[Callable[[list[str]], MemberProcess]]:
    made: list[MemberProcess] = []

    def make(args: list[str]) -> MemberProcess:
        member = MemberProcess(args)
        made.append(member)
        return member

    yield make
    for member in made:
        member.stop()
    for member in made:
        assert member.proc.poll() is not None, f"member {member.proc.pid} left running"


def agreed(members: list[MemberProcess], count: int) -> dict[str, Any] | None:
    """The latest assignment, once every live member has it, it spans ``count`` members,
    and the members' shard sets partition all shards; else None."""
    latest = []
    for member in members:
        events = member.seen("assignment")
        if not events:
            return None
        latest.append(events[-1])
    versions = {(e["epoch"], e["generation"]) for e in latest}
    if len(versions) != 1 or any(e["members"] != count for e in latest):
        return None
    shards = [s for e in latest for s in e["shards"]]
    if sorted(shards) != list(range(SHARDS)):
        return None
    sizes = [len(e["shards"]) for e in latest]
    assert max(sizes) - min(sizes) <= 1, latest
    epoch, generation = versions.pop()
    owners = {s: e["node"] for e in latest for s in e["shards"]}
    return {"epoch": epoch, "generation": generation, "owners": owners}


def history(db: Path) -> list[tuple[int, int, str, int, int]]:
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT seq, shard, owner, token, coordinator_epoch FROM shard_history ORDER BY seq"
            ).fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    return [(int(a), int(b), str(c), int(d), int(e)) for a, b, c, d, e in rows]


def all_worked_since(db: Path, owners: dict[int, str], after: int) -> bool:
    """Every shard has a history row after ``after`` written by its owner's node."""
    done = {
        shard
        for seq, shard, owner, _, _ in history(db)
        if seq > after and owner.endswith("/" + owners[shard])
    }
    return len(done) == SHARDS


def last_seq(db: Path) -> int:
    rows = history(db)
    return rows[-1][0] if rows else 0


def check_no_overlap(rows: list[tuple[int, int, str, int, int]]) -> dict[int, int]:
    """The property, from the store's history.

    An *ownership* of shard s is a pair (owner, token). Its interval is [first, last] seq of
    its accepted rows: seq is the store's commit order (writes are serialised under SQLite's
    write lock, and the fence check is in the same transaction). Two owners processed s at
    overlapping times iff two ownerships' intervals intersect. We check that, per shard,
    tokens never decrease in commit order and each token belongs to one owner: then every
    ownership's rows are one contiguous run, and runs are ordered by token. Returns how many
    ownerships each shard had.
    """
    per_shard: dict[int, list[tuple[int, str, int]]] = {}
    for seq, shard, owner, token, _ in rows:
        per_shard.setdefault(shard, []).append((seq, owner, token))
    runs: dict[int, int] = {}
    for shard, writes in per_shard.items():
        token_owner: dict[int, str] = {}
        intervals: dict[tuple[str, int], list[int]] = {}
        previous = 0
        for seq, owner, token in writes:
            assert token >= previous, f"shard {shard}: token went back at seq {seq}"
            previous = token
            assert token_owner.setdefault(token, owner) == owner, (
                f"shard {shard}: token {token} used by {token_owner[token]} and {owner}"
            )
            intervals.setdefault((owner, token), [seq, seq])[1] = seq
        spans = sorted(intervals.values())
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end < start, f"shard {shard}: ownership intervals overlap: {spans}"
        runs[shard] = len(spans)
    return runs


def test_members_join_and_leave_without_two_owners(
    ensemble: LocalEnsemble,
    zk_path: str,
    tmp_path: Path,
    spawn: Callable[[list[str]], MemberProcess],
) -> None:
    db = tmp_path / "shards.db"
    common = ["--hosts", ensemble.hosts, "--base", zk_path, "--shards", str(SHARDS)]
    common += ["--store", str(db), "--session-timeout", str(SESSION_TIMEOUT)]
    common += ["--tick", "0.05", "--resync", "2"]
    members = {name: spawn([*common, "--id", name]) for name in ("a", "b", "c")}

    frozen: list[MemberProcess] = []

    def settle(count: int, what: str) -> dict[str, Any]:
        live = [m for m in members.values() if m.proc.poll() is None and m not in frozen]
        state = wait_for(lambda: agreed(live, count), 20, 0.05, f"{count} members agree: {what}")
        mark = last_seq(db)
        wait_for(
            lambda: all_worked_since(db, state["owners"], mark),
            10,
            0.05,
            f"every shard worked by its owner: {what}",
        )
        return state

    t0 = time.monotonic()
    first = settle(3, "start 3")
    print(f"\nstart 3: {time.monotonic() - t0:.2f}s")
    assert sorted(loads(first["owners"].values()).values()) == [4, 4, 4]

    members["d"] = spawn([*common, "--id", "d"])
    members["e"] = spawn([*common, "--id", "e"])
    t0 = time.monotonic()
    second = settle(5, "add 2")
    print(f"add 2: {time.monotonic() - t0:.2f}s")
    assert sorted(loads(second["owners"].values()).values()) == [2, 2, 2, 3, 3]

    # A member freezes past its session timeout (SIGSTOP: a GC pause, a VM stall). Its
    # shards go to the others; when it thaws, its first writes still carry its old tokens
    # and the store refuses them. It then rejoins on a new session.
    def leads(m: MemberProcess) -> bool:
        return len(m.seen("elected")) > len(m.seen("coordinator_stopped"))

    sleeper = next(
        m for m in members.values() if not leads(m) and m.seen("assignment")[-1]["shards"]
    )
    frozen.append(sleeper)
    sleeper.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        settle(4, "a member frozen")
        print(f"freeze -> 4 members agree and work: {time.monotonic() - t0:.2f}s")
    finally:
        sleeper.proc.send_signal(signal.SIGCONT)
    frozen.clear()
    wait_for(lambda: sleeper.seen("refused"), 10, 0.05, "the thawed member's stale writes refused")
    second = settle(5, "the frozen member rejoined")

    coordinator = next(m for m in members.values() if leads(m))
    old_epoch = coordinator.seen("elected")[-1]["epoch"]
    victim_nodes = {e["node"] for e in coordinator.seen("assignment")}
    coordinator.proc.kill()  # SIGKILL by PID: no goodbye, its session expires
    coordinator.proc.wait(10)
    t0 = time.monotonic()
    third = settle(4, "coordinator killed")
    print(f"kill coordinator -> 4 members agree and work: {time.monotonic() - t0:.2f}s")
    assert third["epoch"] > old_epoch
    assert sorted(loads(third["owners"].values()).values()) == [3, 3, 3, 3]
    lost = {s for s, o in second["owners"].items() if o in victim_nodes}
    # Sticky across the failover: only the dead member's shards moved.
    assert {s for s in range(SHARDS) if second["owners"][s] != third["owners"][s]} == lost

    # Work goes on with the final owners: the last row of each shard is its owner's.
    rows = history(db)
    for shard in range(SHARDS):
        last_owner = next(o for _, s, o, _, _ in reversed(rows) if s == shard)
        assert last_owner.endswith("/" + third["owners"][shard])

    for member in members.values():  # leaving one by one: more hand-overs, also checked
        member.stop()
    # Every publish moved exactly the minimum (the coordinator computed both).
    publishes = [e for m in members.values() for e in m.seen("published")]
    assert publishes and all(e["moved"] == e["minimum"] for e in publishes), publishes

    rows = history(db)
    runs = check_no_overlap(rows)
    refused = [e for m in members.values() for e in m.seen("refused")]
    print(f"{len(rows)} writes, {sum(runs.values())} ownerships, {len(refused)} refused")
    assert len(runs) == SHARDS
    assert sum(runs.values()) > SHARDS  # ownership did change hands while work went on
    # The fence's high-water mark per shard is the last owner's token.
    with sqlite3.connect(db) as conn:
        fence = dict(conn.execute("SELECT resource, epoch FROM zkelect_fence").fetchall())
    for shard in range(SHARDS):
        assert fence[str(shard)] == max(t for _, s, _, t, _ in rows if s == shard)


@pytest.fixture
def coordinator(kazoo_client: KazooClient, zk_path: str) -> Iterator[Election]:
    election = Election(
        kazoo_client,
        f"{zk_path}/members",
        candidate_id="coordinator",
        config=ElectionConfig(session_timeout=10.0),
    )
    election.start()
    try:
        yield election
    finally:
        election.stop()


def test_ten_thousand_shards_over_twenty_members(
    kazoo_client: KazooClient, zk_path: str, coordinator: Election
) -> None:
    recipe = load_recipe()
    recipe.ensure_layout(kazoo_client, zk_path)
    lead = coordinator.wait_for_leadership(10)
    assert lead is not None
    twenty = [f"member-{i:02}" for i in range(20)]
    shards = 10_000

    def publish(owners: list[str], since: list[int], generation: int, **kw: Any) -> Any:
        payload = recipe.encode(owners, since, {m: m for m in owners})
        report = recipe.publish(
            lead,
            zk_path,
            payload,
            coordinator="c",
            generation=generation,
            shards=len(owners),
            **kw,
        )
        assert all(size < ONE_MIB for size in report.request_bytes), report
        back = recipe.read_assignment(kazoo_client, zk_path)
        assert back.owners == owners and back.epoch == lead.epoch
        assert back.since == [s or report.zxid for s in since]
        return report, back

    started = time.monotonic()
    owners = assign(shards, twenty, {})
    assign_seconds = time.monotonic() - started
    assert set(loads(owners).values()) == {500}
    report, first = publish(owners, [0] * shards, 1)
    print(
        f"\n10,000 shards / 20 members: assign {assign_seconds * 1000:.1f} ms; publish "
        f"{report.payload_bytes} bytes in {report.parts} part(s), "
        f"{len(report.request_bytes)} multi(s) of {report.request_bytes} bytes, "
        f"{report.seconds * 1000:.1f} ms"
    )

    # One member leaves: exactly its 500 shards move, the others keep their tokens.
    previous = dict(enumerate(owners))
    later = assign(shards, twenty[1:], previous)
    assert len(moved(previous, later)) == minimum_moves(shards, twenty[1:], previous) == 500
    since = [first.since[s] if later[s] == owners[s] else 0 for s in range(shards)]
    report2, second = publish(later, since, 2)
    for s in range(shards):
        expected = first.since[s] if later[s] == owners[s] else report2.zxid
        assert second.since[s] == expected
    assert report2.zxid > report.zxid
    print(
        f"after one leaves (500 moved, 9,500 keep their ownership zxid): "
        f"{report2.payload_bytes} bytes, multis {report2.request_bytes}, "
        f"{report2.seconds * 1000:.1f} ms"
    )

    # Forced small parts and requests: the split path (several parts, several multis).
    report3, _ = publish(later, since, 3, part_bytes=16 * 1024, request_budget=64 * 1024)
    assert report3.parts > 1 and len(report3.request_bytes) > 1
    assert all(size <= 64 * 1024 for size in report3.request_bytes)

    # Over the limit at the default sizes: 300,000 shards do not fit one request.
    big_members = [f"member-{i:02}-{'x' * 40}" for i in range(20)]
    big = assign(300_000, big_members, {})
    report4, _ = publish(big, [0] * len(big), 4)
    assert report4.payload_bytes > ONE_MIB and len(report4.request_bytes) > 1
    print(
        f"300,000 shards: {report4.payload_bytes} bytes in {report4.parts} parts, "
        f"multis {report4.request_bytes}, {report4.seconds * 1000:.1f} ms"
    )

    # Old generations are cleaned up, fenced; a deposed coordinator cannot publish.
    recipe.clean_up(kazoo_client, lead, zk_path, f"{zk_path}/assignment/{lead.epoch}-4")
    assert kazoo_client.get_children(f"{zk_path}/assignment") == [f"{lead.epoch}-4"]
    coordinator.stop()
    with pytest.raises(LeadershipLostError):
        publish(owners, [0] * shards, 5)


def test_the_overlap_check_catches_interleaved_owners() -> None:
    """The checker itself: a stale owner writing between a newer owner's writes fails."""
    good = [(1, 0, "a/n1", 10, 1), (2, 0, "b/n2", 20, 1), (3, 0, "b/n2", 20, 1)]
    assert check_no_overlap(good) == {0: 2}
    with pytest.raises(AssertionError, match="token went back"):
        check_no_overlap([*good[:2], (3, 0, "a/n1", 10, 1), (4, 0, "b/n2", 20, 1)])
    with pytest.raises(AssertionError, match="used by"):
        check_no_overlap([(1, 0, "a/n1", 10, 1), (2, 0, "b/n2", 10, 1)])
