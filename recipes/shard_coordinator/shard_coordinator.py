"""Shard-assignment coordinator: one election, the leader assigns shards to the members.

Run ``python recipes/shard_coordinator/shard_coordinator.py --help`` (see README.md).

Every member joins one election at ``<base>/members``; the candidates are the membership,
the leader is the coordinator. The coordinator assigns ``--shards`` shards to the live
members (balanced within one, sticky: ``assign`` in the sibling assignment.py) and publishes
the result with fenced multi-ops (``lead.transaction()``): the document is split into parts of
at most 512 KiB under ``<base>/assignment/<epoch>-<generation>/part-N``, grouped into
multi-ops that stay under ZooKeeper's 1 MiB request limit, and the manifest ``<base>/manifest``
is set in the last one. Readers only follow the manifest, so a half-written publish is never seen.

Ownership tokens. A shard's owner writes through a fenced per-shard store (resource = the
shard id). Its token's epoch is the **ownership zxid**: the zxid of the publish that gave
it the shard. The coordinator's epoch alone is not enough: within one coordinator's epoch
a shard can move from A to B (a member joined), and a fenced store accepts equal epochs,
so A and B would both be let in. Publish zxids order every publish ever made on the path
(a deposed coordinator cannot publish: its fence check fails), so each move of a shard
gets a strictly higher token, and the store refuses the previous owner once the new owner
has written. The coordinator's epoch travels in the manifest and in each history row.

Watches: each member holds one data watch (on the manifest). The coordinator alone holds
one children watch on the election path, to learn of joins and leaves at once, and also
re-reads the membership every ``--resync`` seconds in case a watch event was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# assignment.py sits beside this file: it is used by this recipe only. Running the script puts
# this folder first on sys.path; tests add it themselves. (isort files it with third-party.)
from assignment import (
    DEFAULT_PART_BYTES,
    DEFAULT_REQUEST_BUDGET,
    OP_OVERHEAD_BYTES,
    assign,
    batches,
    minimum_moves,
    moved,
    split,
)
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError

from zkelect import (
    Election,
    ElectionConfig,
    FencingToken,
    Leadership,
    LeadershipLostError,
    SQLiteFencedStore,
    StaleEpochError,
    ZkElectError,
)

log = logging.getLogger("shard_coordinator")
_out_lock = threading.Lock()


def emit(**event: Any) -> None:
    """One JSON object per line on stdout: what the process did, for people and tests."""
    with _out_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


# --------------------------------------------------------------------------- the document


@dataclass
class Assignment:
    """A published assignment: ``owners[s]`` is the candidate node owning shard s, and
    ``since[s]`` the ownership zxid (the token epoch its owner writes with)."""

    epoch: int  # the coordinator's epoch
    coordinator: str
    generation: int
    owners: list[str]
    since: list[int]
    ids: dict[str, str] = field(default_factory=dict)  # candidate node -> candidate id
    zxid: int = 0  # the manifest write's zxid

    def shards_of(self, node: str) -> dict[int, int]:
        """Shard -> ownership zxid, for the member whose candidate node is ``node``."""
        return {s: self.since[s] for s, owner in enumerate(self.owners) if owner == node}


def encode(owners: list[str], since: list[int], ids: dict[str, str]) -> bytes:
    """Compact JSON: members once, then an index and an ownership zxid per shard (0 means
    "this publish": the reader takes the manifest's zxid)."""
    members = sorted(set(owners))
    index = {m: i for i, m in enumerate(members)}
    doc = {
        "members": [[m, ids.get(m, "")] for m in members],
        "owner": [index[o] for o in owners],
        "since": since,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(payload: bytes, manifest: dict[str, Any], zxid: int) -> Assignment:
    doc = json.loads(payload)
    members = [m for m, _ in doc["members"]]
    return Assignment(
        epoch=int(manifest["epoch"]),
        coordinator=str(manifest["coordinator"]),
        generation=int(manifest["generation"]),
        owners=[members[i] for i in doc["owner"]],
        since=[s or zxid for s in doc["since"]],
        ids={m: i for m, i in doc["members"]},
        zxid=zxid,
    )


# --------------------------------------------------------------------------- publish / read


@dataclass
class PublishReport:
    generation: int
    zxid: int
    payload_bytes: int
    parts: int
    request_bytes: list[int]  # estimated size of each multi-op sent
    seconds: float


def publish(
    lead: Leadership,
    base: str,
    payload: bytes,
    *,
    coordinator: str,
    generation: int,
    shards: int,
    part_bytes: int = DEFAULT_PART_BYTES,
    request_budget: int = DEFAULT_REQUEST_BUDGET,
) -> PublishReport:
    """Write ``payload`` in parts and point the manifest at it, all through fenced multis.

    The manifest (``<base>/manifest``) must exist; it is set in the last multi. Raises what
    ``FencedTransaction.commit`` raises (StaleEpochError once this coordinator is deposed).
    """
    started = time.monotonic()
    directory = f"{base}/assignment/{lead.epoch}-{generation}"
    parts = split(payload, part_bytes)
    manifest = json.dumps(
        {
            "format": 1,
            "epoch": lead.epoch,
            "coordinator": coordinator,
            "generation": generation,
            "dir": directory,
            "parts": len(parts),
            "bytes": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "shards": shards,
        }
    ).encode()
    ops: list[tuple[str, str, bytes]] = [("create", directory, b"")]
    ops += [("create", f"{directory}/part-{i}", part) for i, part in enumerate(parts)]
    ops.append(("set", f"{base}/manifest", manifest))
    sizes = [len(path.encode()) + len(value) + OP_OVERHEAD_BYTES for _, path, value in ops]
    fence = len(lead.node_path.encode()) + OP_OVERHEAD_BYTES  # each multi's check op
    groups = batches(sizes, request_budget - fence)
    result: list[object] = []
    for group in groups:
        txn = lead.transaction()
        for i in group:
            kind, path, value = ops[i]
            if kind == "create":
                txn.create(path, value)
            else:
                txn.set_data(path, value)
        result = txn.commit()
    stat: Any = result[-1]  # the manifest's new stat (a kazoo ZnodeStat)
    return PublishReport(
        generation=generation,
        zxid=int(stat.mzxid),
        payload_bytes=len(payload),
        parts=len(parts),
        request_bytes=[fence + sum(sizes[i] for i in g) for g in groups],
        seconds=time.monotonic() - started,
    )


def read_assignment(
    client: KazooClient, base: str, watch: Callable[[Any], None] | None = None
) -> Assignment | None:
    """The current assignment (None if nothing was published yet), checked by sha256.

    ``watch`` (optional) is set on the manifest. A part deleted under us (a newer publish
    cleaned it up) makes us read the manifest again.
    """
    for _ in range(20):
        data, stat = client.get(f"{base}/manifest", watch=watch)
        if not data:
            return None
        manifest = json.loads(data)
        try:
            payload = b"".join(
                client.get(f"{manifest['dir']}/part-{i}")[0] for i in range(manifest["parts"])
            )
        except NoNodeError:
            continue
        if hashlib.sha256(payload).hexdigest() != manifest["sha256"]:
            continue  # pragma: no cover - parts are immutable; only a cleanup race gets here
        return decode(payload, manifest, stat.mzxid)
    raise RuntimeError(f"could not read a consistent assignment under {base}")


def clean_up(client: KazooClient, lead: Leadership, base: str, keep: str) -> int:
    """Delete every published assignment directory except ``keep`` (fenced); how many."""
    removed = 0
    for name in client.get_children(f"{base}/assignment"):
        directory = f"{base}/assignment/{name}"
        if directory == keep:
            continue
        deletes = [f"{directory}/{part}" for part in client.get_children(directory)]
        deletes.append(directory)
        for group in batches([len(p) + OP_OVERHEAD_BYTES for p in deletes]):
            txn = lead.transaction()
            for i in group:
                txn.delete(deletes[i])
            txn.commit()
        removed += 1
    return removed


def ensure_layout(client: KazooClient, base: str) -> None:
    """The structural znodes (empty; plain creates are harmless and idempotent)."""
    for path in (f"{base}/members", f"{base}/assignment", f"{base}/manifest"):
        client.ensure_path(path)


# --------------------------------------------------------------------------- coordinator


class Coordinator:
    """Runs while this member leads: (re)assigns on every membership change."""

    def __init__(self, member: Member, lead: Leadership) -> None:
        self.member = member
        self.lead = lead
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coordinator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _membership_changed(self, _event: Any) -> None:  # one function: one watcher
        self._wake.set()

    def _run(self) -> None:
        m, lead = self.member, self.lead
        client = m.client
        generation = 0
        current: Assignment | None = None
        self._wake.set()
        while not lead.lost.is_set():
            self._wake.wait(m.resync)
            self._wake.clear()
            if lead.lost.is_set():
                break
            try:
                if current is None:
                    client.sync(f"{m.base}/manifest")
                    current = read_assignment(client, m.base)
                client.get_children(m.election.path, watch=self._membership_changed)
                candidates = m.election.candidates()
                nodes = [c.node for c in candidates]
                ids = {c.node: c.candidate_id for c in candidates}
                previous = {} if current is None else dict(enumerate(current.owners))
                owners = assign(m.shards, nodes, previous) if nodes else []
                if current is not None and generation and owners == current.owners:
                    continue  # nothing changed since our own last publish
                old_since = [] if current is None else current.since
                since = [
                    old_since[s] if previous.get(s) == owner else 0
                    for s, owner in enumerate(owners)
                ]
                generation += 1
                report = publish(
                    lead,
                    m.base,
                    encode(owners, since, ids),
                    coordinator=m.member_id,
                    generation=generation,
                    shards=m.shards,
                    part_bytes=m.part_bytes,
                )
                current = Assignment(
                    lead.epoch,
                    m.member_id,
                    generation,
                    owners,
                    [s or report.zxid for s in since],
                    ids,
                    report.zxid,
                )
                emit(
                    event="published",
                    epoch=lead.epoch,
                    generation=generation,
                    zxid=report.zxid,
                    members=len(nodes),
                    moved=len(moved(previous, owners)),
                    minimum=minimum_moves(m.shards, nodes, previous) if nodes else 0,
                    bytes=report.payload_bytes,
                    parts=report.parts,
                    multis=len(report.request_bytes),
                    seconds=round(report.seconds, 4),
                )
                clean_up(client, lead, m.base, f"{m.base}/assignment/{lead.epoch}-{generation}")
            except (StaleEpochError, LeadershipLostError) as exc:
                emit(event="coordinator_stopped", epoch=lead.epoch, reason=str(exc))
                return
            except (ZkElectError, KazooException) as exc:
                log.warning("coordinator: %s; retrying", exc)
                current = None  # the outcome of a failed publish is unknown: read it back
                time.sleep(0.2)
                self._wake.set()
        emit(event="coordinator_stopped", epoch=lead.epoch, reason=lead.reason)


# --------------------------------------------------------------------------- member


class Member:
    """A member: joins the election, follows the assignment, works its shards."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.member_id: str = args.id
        self.base: str = args.base.rstrip("/")
        self.shards: int = args.shards
        self.tick: float = args.tick
        self.resync: float = args.resync
        self.part_bytes: int = args.part_bytes
        self.client = KazooClient(hosts=args.hosts, timeout=args.session_timeout)
        self.store = SQLiteFencedStore(args.store)
        self.election = Election(
            self.client,
            f"{self.base}/members",
            candidate_id=self.member_id,
            config=ElectionConfig(session_timeout=args.session_timeout, request_timeout=5.0),
            on_elected=self._on_elected,
            on_revoked=lambda reason: emit(event="revoked", reason=reason),
        )
        self.stopping = threading.Event()
        self._assignment_changed = threading.Event()
        self._lock = threading.Lock()
        self._owned: dict[int, int] = {}  # shard -> ownership zxid
        self._assignment: Assignment | None = None

    def _on_elected(self, lead: Leadership) -> None:
        emit(event="elected", epoch=lead.epoch)
        Coordinator(self, lead).start()

    def _on_manifest(self, _event: Any) -> None:  # one function: one data watch
        self._assignment_changed.set()

    def run(self) -> None:
        self.client.start(timeout=30)
        ensure_layout(self.client, self.base)
        self.election.start()
        emit(event="joined", id=self.member_id, node=self.election.node, pid=os.getpid())
        threading.Thread(target=self._follow, name="follow", daemon=True).start()
        threading.Thread(target=self._work, name="work", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.election.stop()
        self.client.stop()
        self.client.close()

    def _follow(self) -> None:
        """Re-read the assignment whenever the manifest changes (and every resync)."""
        self._assignment_changed.set()
        while not self.stopping.is_set():
            self._assignment_changed.wait(self.resync)
            self._assignment_changed.clear()
            try:
                current = read_assignment(self.client, self.base, watch=self._on_manifest)
            except (KazooException, RuntimeError) as exc:
                log.warning("reading the assignment: %s", exc)
                time.sleep(0.2)
                self._assignment_changed.set()
                continue
            node = (self.election.node or "").rsplit("/", 1)[-1]
            mine = {} if current is None else current.shards_of(node)
            with self._lock:
                changed = mine != self._owned or current != self._assignment
                self._owned, self._assignment = mine, current
            if changed and current is not None:
                emit(
                    event="assignment",
                    epoch=current.epoch,
                    generation=current.generation,
                    members=len(set(current.owners)),
                    node=node,
                    shards=sorted(mine),
                )

    def _work(self) -> None:
        """Every tick, one unit of work per owned shard, through the fenced store."""
        while not self.stopping.wait(self.tick):
            with self._lock:
                owned, assignment = dict(self._owned), self._assignment
            if assignment is None:
                continue
            client_id = self.client.client_id
            owner = f"{self.member_id}/{(self.election.node or '').rsplit('/', 1)[-1]}"
            for shard, zxid in sorted(owned.items()):
                token = FencingToken(
                    zxid, self.election.path, self.member_id, client_id[0] if client_id else 0
                )
                try:
                    self.store.write(
                        str(shard),
                        token,
                        lambda conn, s=shard, z=zxid, o=owner, e=assignment.epoch: record(
                            conn, s, o, z, e
                        ),
                    )
                except StaleEpochError as exc:
                    with self._lock:  # until a newer assignment gives it back
                        if self._owned.get(shard) == zxid:
                            del self._owned[shard]
                    emit(event="refused", shard=shard, token=zxid, current=exc.current_epoch)


def record(conn: Any, shard: int, owner: str, token: int, coordinator_epoch: int) -> None:
    """The unit of work: a row in the shard's history, in the fenced transaction."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS shard_history (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "shard INTEGER NOT NULL, owner TEXT NOT NULL, token INTEGER NOT NULL, "
        "coordinator_epoch INTEGER NOT NULL, at REAL NOT NULL)"
    )
    conn.execute(
        "INSERT INTO shard_history (shard, owner, token, coordinator_epoch, at) "
        "VALUES (?, ?, ?, ?, ?)",
        (shard, owner, token, coordinator_epoch, time.time()),
    )


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default=os.environ.get("ZKELECT_HOSTS", "127.0.0.1:2181"))
    parser.add_argument("--base", default="/recipes/shards", help="root znode of this group")
    parser.add_argument("--show", action="store_true", help="print the assignment and exit")
    parser.add_argument("--id", default=f"{os.uname().nodename}-{os.getpid()}")
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--store", default="shards.db", help="SQLite file of the shard store")
    parser.add_argument("--session-timeout", type=float, default=4.0)
    parser.add_argument("--tick", type=float, default=0.1, help="seconds between work units")
    parser.add_argument("--resync", type=float, default=5.0, help="re-read period, seconds")
    parser.add_argument("--part-bytes", type=int, default=DEFAULT_PART_BYTES)
    parser.add_argument("--commands", action="store_true", help="read 'quit' from stdin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    if args.show:
        client = KazooClient(hosts=args.hosts)
        client.start(timeout=30)
        try:
            current = read_assignment(client, args.base.rstrip("/"))
        finally:
            client.stop()
            client.close()
        if current is None:
            print("nothing published yet")
            return 1
        print(
            f"coordinator {current.coordinator} epoch {current.epoch:#x} "
            f"generation {current.generation}, {len(current.owners)} shards"
        )
        for node in sorted(set(current.owners)):
            shards = sorted(current.shards_of(node))
            print(f"  {current.ids.get(node, '?'):20} {len(shards):6} shards  {shards[:12]}")
        return 0

    member = Member(args)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    member.run()
    if args.commands:

        def commands() -> None:
            for line in sys.stdin:
                if line.strip() == "quit":
                    break
            done.set()

        threading.Thread(target=commands, daemon=True).start()
    while not done.wait(0.5):
        pass
    with contextlib.suppress(Exception):
        member.stop()
    emit(event="stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
