"""The one reader of an election (zkelect._election.reader) against a scripted ZooKeeper.

Why these tests: every reader of an election (Election.leader/candidates, the observer,
zkelect status/watch/resign, the exporter, the demo) goes through these functions, so what
they skip, re-read and watch is what all of them do. The real-server behaviour is covered by
tests/integration (test_cli_inspect, test_exporter, test_hostile_nodes, ...); here each race
is scripted exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zkelect._election.contenders import contender_order
from zkelect._election.nodes import ContenderKind, election_order, new_node_prefix
from zkelect._election.reader import (
    ChangedTooFast,
    WatchKind,
    read_election,
    read_leader,
    watch_always,
    watch_leader,
)
from zkelect._zookeeper.outcomes import NodeStat, NoNode, Retryable

PATH = "/e"
A, B, C = (f"{new_node_prefix(f'00000000-0000-4000-8000-{i:012d}')}{i:010d}" for i in (1, 2, 3))
KAZOO = "0123456789abcdef0123456789abcdef__lock__0000000004"


class Scripted:
    """A fake Session: ``nodes`` maps names under PATH to (data, owner session, version);
    ``on_read`` runs before each request (to script a change between two reads)."""

    def __init__(self, nodes: dict[str, tuple[bytes, int]] | None = None) -> None:
        self.nodes = dict(nodes or {})
        self.path_exists = True
        self.watched: list[tuple[str, str]] = []  # (kind, znode) of each watch left
        self.requests: list[str] = []
        self.on_read: Callable[[str], object] = lambda request: None

    def _stat(self, name: str) -> NodeStat:
        owner = self.nodes[name][1]
        czxid = 100 + sorted(self.nodes).index(name)
        return NodeStat(czxid, czxid, 0, owner, ctime=1_000 + czxid)

    def children(self, path: str, watch: Callable[[], None] | None = None) -> list[str]:
        self.requests.append("children")
        self.on_read("children")
        if not self.path_exists:
            raise NoNode(path)
        if watch is not None:
            self.watched.append(("child", path))
        return list(self.nodes)

    def get(self, path: str, watch: Callable[[], None] | None = None) -> tuple[bytes, NodeStat]:
        self.requests.append("get")
        self.on_read("get")
        name = path.rsplit("/", 1)[1]
        if name not in self.nodes:
            raise NoNode(path)
        if watch is not None:
            self.watched.append(("data", path))
        return self.nodes[name][0], self._stat(name)

    def exists(self, path: str, watch: Callable[[], None] | None = None) -> NodeStat | None:
        self.requests.append("exists")
        if watch is not None:
            self.watched.append(("data", path))
        return NodeStat(1, 1, 0, 0) if self.path_exists else None

    def get_many(self, paths: list[str]) -> list[tuple[bytes, NodeStat] | None]:
        self.requests.append("get_many")
        self.on_read("get_many")
        return [
            (self.nodes[p.rsplit("/", 1)[1]][0], self._stat(p.rsplit("/", 1)[1]))
            if p.rsplit("/", 1)[1] in self.nodes
            else None
            for p in paths
        ]


def test_read_election_orders_reads_and_skips_foreign_children() -> None:
    zk = Scripted({C: (b"c", 7), "config": (b"", 0), B: (b"b", 0), A: (b"a", 5), KAZOO: (b"k", 9)})
    snap = read_election(zk, PATH)
    assert [c.name for c in snap.contenders] == [A, C, KAZOO]  # B is persistent: ignored
    assert snap.ignored == tuple(sorted(["config", B]))
    leader = snap.leader
    assert leader is not None and leader.candidate_id == "a" and leader.session_id == 5
    assert leader.epoch == 100 + sorted(zk.nodes).index(A)
    assert leader.ctime_ms == 1_000 + leader.epoch
    assert snap.kinds == [ContenderKind.KAZOO_LOCK, ContenderKind.LATCH]
    # zkelect's own order counts only zkelect's nodes, as its candidates do.
    ours = read_election(zk, PATH, order=election_order)
    assert [c.name for c in ours.contenders] == [A, C]
    assert zk.watched == []  # never a watch


def test_read_election_of_a_missing_path_is_an_empty_election() -> None:
    zk = Scripted()
    zk.path_exists = False
    snap = read_election(zk, PATH)
    assert (snap.exists, snap.contenders, snap.leader) == (False, (), None)


def test_read_election_lists_again_when_the_leader_left_unless_told_not_to() -> None:
    zk = Scripted({A: (b"a", 5), B: (b"b", 6)})

    def leader_leaves(request: str) -> None:
        if request == "get_many" and zk.requests.count("get_many") == 1:
            del zk.nodes[A]

    zk.on_read = leader_leaves
    snap = read_election(zk, PATH)
    assert [c.name for c in snap.contenders] == [B]
    assert zk.requests == ["children", "get_many", "children", "get_many"]

    once = Scripted({A: (b"a", 5), B: (b"b", 6)})
    once.on_read = lambda request: once.nodes.pop(A, None) if request == "get_many" else None
    assert [c.name for c in read_election(once, PATH, settle=False).contenders] == [B]
    assert once.requests == ["children", "get_many"]  # Election.candidates(): one pass


def test_read_election_gives_up_on_a_path_that_never_settles() -> None:
    zk = Scripted({A: (b"a", 5)})
    # The leader leaves between every listing and its read, and is back at the next listing.
    zk.on_read = lambda request: (
        zk.nodes.pop(A, None) if request == "get_many" else zk.nodes.setdefault(A, (b"a", 5))
    )
    with pytest.raises(ChangedTooFast, match="changed too fast") as raised:
        read_election(zk, PATH)
    assert isinstance(raised.value, Retryable)  # the observer's retry covers it


def test_read_leader_skips_persistent_nodes_and_rereads_when_the_leader_left() -> None:
    zk = Scripted({A: (b"a", 0), B: (b"b", 6), C: (b"c", 7)})
    leader = read_leader(zk, PATH)
    assert leader is not None and leader.name == B and leader.candidate_id == "b"

    gone = Scripted({A: (b"a", 5), B: (b"b", 6)})
    gone.on_read = lambda request: gone.nodes.pop(A, None) if request == "get_many" else None
    leader = read_leader(gone, PATH)
    assert leader is not None and leader.name == B
    assert read_leader(Scripted({"config": (b"", 0)}), PATH) is None


def test_watch_leader_leaves_one_data_watch_on_the_leader() -> None:
    zk = Scripted({B: (b"b", 6), A: (b"a", 5), KAZOO: (b"k", 9)})
    snap = watch_leader(zk, PATH, watch_always(lambda: None), set())
    assert snap.leader is not None and snap.leader.candidate_id == "a"
    assert [c.name for c in snap.contenders] == [A, B, KAZOO]
    assert snap.contenders[1].data is None  # only the leader is read
    assert zk.watched == [("data", f"{PATH}/{A}")]


def test_watch_leader_remembers_persistent_nodes_named_like_candidates() -> None:
    zk = Scripted({A: (b"a", 0), B: (b"b", 6)})
    ignored: set[str] = set()
    snap = watch_leader(zk, PATH, watch_always(lambda: None), ignored)
    assert snap.leader is not None and snap.leader.name == B and ignored == {A}
    del zk.nodes[A]
    watch_leader(zk, PATH, watch_always(lambda: None), ignored)
    assert ignored == set()  # forgotten once deleted


def test_watch_leader_of_an_empty_path_watches_its_children_and_a_missing_one_exists() -> None:
    zk = Scripted({"config": (b"", 0)})
    snap = watch_leader(zk, PATH, watch_always(lambda: None), set(), order=contender_order)
    assert (snap.exists, snap.leader) == (True, None)
    assert zk.watched == [("child", PATH)]

    missing = Scripted()
    missing.path_exists = False
    snap = watch_leader(missing, PATH, watch_always(lambda: None), set())
    assert (snap.exists, snap.leader) == (False, None)
    assert missing.watched == [("data", PATH)]  # an exists watch


class Recorded:
    """A Watches policy that wants no watch on the leader (one is held already)."""

    def __init__(self) -> None:
        self.unset_calls: list[tuple[WatchKind, str]] = []

    def watcher(self, kind: WatchKind, znode: str) -> Callable[[], None] | None:
        return None if kind is WatchKind.DATA else (lambda: None)

    def unset(self, kind: WatchKind, znode: str) -> None:
        self.unset_calls.append((kind, znode))


def test_watch_leader_reads_without_a_watch_the_policy_does_not_want() -> None:
    zk = Scripted({A: (b"a", 0), B: (b"b", 6)})
    policy = Recorded()
    snap = watch_leader(zk, PATH, policy, set())
    assert snap.leader is not None and snap.leader.name == B
    assert zk.watched == []
    assert policy.unset_calls == [(WatchKind.DATA, f"{PATH}/{A}")]  # persistent: tells nothing
