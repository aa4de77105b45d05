"""Foreign and garbage nodes in an election path never crash anyone and never change who leads.

With live zkelect candidates leading and following on a real ensemble, the test adds every kind
of stranger a path can hold: names that parse as no recipe's contender, a persistent child with
children of its own, nodes of other recipes (kazoo Lock, Curator LeaderSelector), and
*persistent* nodes named like candidates with sequence numbers far below the leader's (a real
candidate is always ephemeral, so these are not candidates: no session owns them, they would
block the election for ever). Their data is empty, null, non-UTF-8 or ~1 MiB. Then it checks,
against the servers: the leader and its epoch unchanged, no revocation, each follower's one
watch on its right predecessor (``wchc``), a resign and a CLI resign handing over past the
garbage, observers, the exporter and ``zkelect status/watch`` naming the right leader.
"""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator

import pytest
from cli_support import cli_env
from election_support import Candidate
from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry

from zkelect import LeaderInfo
from zkelect._election.nodes import LEADER_MARKER_PREFIX
from zkelect._election.switchover import REQUEST_NODE
from zkelect.ops.exporter import ElectionExporter
from zkelect.testing import data_watches_by_session, wait_for

WAIT = 30.0  # generous: the machine is shared
NEAR_MAX_BUFFER = 1024 * 1024 - 8 * 1024  # just under jute.maxbuffer (1 MiB) with the path


def _die_with_test() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


def zkelect(hosts: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``zkelect ARGS`` as a subprocess (killed by subprocess.run at the deadline)."""
    env = {**cli_env(), "ZKELECT_HOSTS": hosts}
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_die_with_test,
    )


def _guid() -> str:
    return str(uuid.uuid4())


def add_garbage(client: KazooClient, path: str) -> dict[str, str]:
    """Every kind of stranger; returns name -> what it is. Created by ``client``'s session."""
    made: dict[str, str] = {}

    def put(name: str, what: str, data: bytes | None = b"", **kw: object) -> str:
        created = client.create(f"{path}/{name}", data, **kw)  # type: ignore[arg-type]
        made[created.rsplit("/", 1)[1]] = what
        return created

    put("foo", "persistent, no sequence, with children", b"\xff\xfe")
    client.create(f"{path}/foo/child", b"x")
    client.create(f"{path}/foo/child/grandchild", b"")
    put("foo-", "no sequence", b"")
    put("_c_-latch-abc", "latch marker, no number", None)
    put("latch-", "latch marker, empty number", b"\x00" * 10)
    put("x-latch-00000000001", "11 digits", b"")
    put("x-latch-99999999999", "out of 32-bit range", b"")
    put("plain-", "a sequential plain node", b"\xff\xfe", sequence=True)
    # Persistent nodes named like candidates, far ahead of the leader in election order.
    put(f"_c_{_guid()}-latch-0000000000", "persistent latch, lowest sequence", b"\xff\xfe")
    put(f"_c_{_guid()}-latch--2000000000", "persistent latch, negative", b"")
    put("latch-0000000001", "persistent latch, unprotected", None)
    put(f"_c_{_guid()}-latch-0000000002", "persistent latch, ~1 MiB", b"\xab" * NEAR_MAX_BUFFER)
    put(f"_c_{_guid()}-latch-", "persistent latch, sequential", b"", sequence=True)
    # Other recipes' contenders (a misconfiguration: zkelect candidates ignore them).
    put(f"{uuid.uuid4().hex}__lock__", "kazoo Lock", b"kazoo", ephemeral=True, sequence=True)
    put(f"_c_{_guid()}-lock-", "Curator LeaderSelector", b"\xff", ephemeral=True, sequence=True)
    return made


@pytest.fixture
def exporter_of(kazoo_client: KazooClient) -> Iterator[Callable[[str], ElectionExporter]]:
    made: list[ElectionExporter] = []

    def make(path: str) -> ElectionExporter:
        exporter = ElectionExporter(kazoo_client, [path], CollectorRegistry(), refresh_interval=1.0)
        made.append(exporter)
        return exporter.start()

    yield make
    for exporter in made:
        exporter.stop()


def _node_name(candidate: Candidate) -> str:
    node = candidate.election.node
    assert node is not None
    return node.rsplit("/", 1)[1]


def _watched_by(hosts: str, candidate: Candidate) -> list[str]:
    session = candidate.election.session.session_id
    assert session is not None
    return sorted(data_watches_by_session(hosts).get(session, []))


def _on_candidates(hosts: str, candidate: Candidate, nodes: Iterable[str]) -> list[str]:
    """The candidate nodes among those ``candidate``'s session watches."""
    return sorted(set(_watched_by(hosts, candidate)) & set(nodes))


def _status(hosts: str, path: str) -> dict[str, object]:
    done = zkelect(hosts, "status", path, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_garbage_never_crashes_anyone_nor_changes_the_leader(
    ensemble: object,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
    exporter_of: Callable[[str], ElectionExporter],
) -> None:
    hosts = ensemble.hosts  # type: ignore[attr-defined]
    seen: list[LeaderInfo | None] = []
    # Move the path's sequence counter on, so that the garbage's low numbers are far ahead.
    for _ in range(20):
        kazoo_client.delete(kazoo_client.create(f"{zk_path}/n-", sequence=True, makepath=True))
    a = candidates(hosts, zk_path, "a")
    lead = a.election.wait_for_leadership(WAIT)
    assert lead is not None
    b = candidates(hosts, zk_path, "b")
    c = candidates(hosts, zk_path, "c", on_leader_change=seen.append)
    wait_for(lambda: seen and seen[-1] is not None, WAIT, message="c observes a leader")

    garbage = add_garbage(kazoo_client, zk_path)
    # A newcomer joins with the garbage already there; and the leader re-reads the path with
    # it there: changing its own node's data fires its one watch (its own node).
    d = candidates(hosts, zk_path, "d")
    a_path = f"{zk_path}/{_node_name(a)}"
    persistent = [f"{zk_path}/{n}" for n, w in garbage.items() if w.startswith("persistent latch")]
    ahead = [
        p for p in persistent if garbage[p.rsplit("/", 1)[1]] != "persistent latch, sequential"
    ]
    kazoo_client.set(a_path, b"a")  # same id: a reconcile, nothing else changes
    # The leader looked at each persistent node ahead of it (its get left a stray watch there).
    wait_for(
        lambda: set(ahead) <= set(_watched_by(hosts, a)),
        WAIT,
        message="the leader re-read the path",
    )

    # The leader is unchanged and was never revoked (no flap for a node ahead of it).
    assert a.election.is_leader and a.recorder.kinds() == ["elected"]
    assert not lead.lost.is_set()
    for follower in (b, c, d):
        assert not follower.election.is_leader
        assert follower.recorder.kinds() == []
    leader = a.election.leader()
    assert leader is not None
    assert (leader.candidate_id, leader.epoch) == ("a", lead.epoch)
    assert [info.candidate_id for info in d.election.candidates()] == ["a", "b", "c", "d"]

    # Each follower's one watch on a candidate's node is on its right predecessor (c's observer
    # also watches the leader). The only other watches are on persistent nodes ahead of them,
    # left by the read that found each one persistent (ZooKeeper cannot take one back); they
    # fire only if someone changes that node, and are then ignored.
    node = {x.election.candidate_id: f"{zk_path}/{_node_name(x)}" for x in (a, b, c, d)}
    expected = [(b, [node["a"]]), (c, sorted([node["b"], node["a"]])), (d, [node["c"]])]
    wait_for(
        lambda: all(_on_candidates(hosts, f, node.values()) == w for f, w in expected),
        WAIT,
        message="followers watch their predecessors",
    )
    for x in (a, b, c, d):
        others = {
            p
            for p in _watched_by(hosts, x)
            if LEADER_MARKER_PREFIX not in p and not p.endswith(f"/{REQUEST_NODE}")
        }
        # The markers' watches (R13) and the switchover request's (R14) aside.
        assert others - set(node.values()) <= set(persistent)
    assert node["a"] in _watched_by(hosts, a)  # and the leader its own node

    # Observers: c's on_leader_change, the exporter, the CLI.
    assert seen[-1] is not None and seen[-1].candidate_id == "a"
    exporter = exporter_of(zk_path)
    view = exporter.snapshot()[zk_path]
    # The exporter reads only the leader's node: it skips the persistent nodes ahead of it but
    # cannot tell the persistent one behind it (created last) from a contender, so counts it.
    assert (view.leader_id, view.epoch, view.candidates) == ("a", lead.epoch, 7), view
    report = _status(hosts, zk_path)
    assert report["leader"]["id"] == "a"  # type: ignore[index]
    assert report["leader"]["epoch"] == str(lead.epoch)  # type: ignore[index]
    listed = report["candidates"]
    assert len(listed) == 6  # type: ignore[arg-type]  # ours, and kazoo's and Curator's
    ids = [cand["id"] for cand in listed if cand["kind"] == "latch"]  # type: ignore[attr-defined]
    assert ids == ["a", "b", "c", "d"]
    assert {p.rsplit("/", 1)[1] for p in persistent} <= set(report["ignored"])  # type: ignore[arg-type]
    assert "foo" in report["ignored"]  # type: ignore[operator]
    human = zkelect(hosts, "status", zk_path)
    assert human.returncode == 0 and "Traceback" not in human.stderr, human.stderr
    assert "leader a," in human.stdout and "ignored" in human.stdout
    assert "several recipes" in human.stderr  # kazoo and Curator contenders share the path
    watched = zkelect(hosts, "watch", zk_path, "--json", "--count", "1", timeout=WAIT)
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["leader"]["id"] == "a"

    # A resign hands over past the garbage: b leads with a higher epoch, a rejoins at the back.
    assert a.election.resign(WAIT)
    lead_b = b.election.wait_for_leadership(WAIT)
    assert lead_b is not None and lead_b.epoch > lead.epoch
    wait_for(
        lambda: seen[-1] is not None and seen[-1].candidate_id == "b", WAIT, message="c sees b"
    )
    wait_for(lambda: exporter.snapshot()[zk_path].leader_id == "b", WAIT, message="exporter sees b")
    assert c.recorder.kinds() == [] and d.recorder.kinds() == []

    # The CLI's resign removes the real leader (b), not a persistent node ahead of it.
    forced = zkelect(hosts, "resign", zk_path, "--json", "--timeout", str(WAIT))
    assert forced.returncode == 0, forced.stderr
    moved = json.loads(forced.stdout)
    assert moved["removed"]["id"] == "b" and moved["new_leader"]["id"] == "c"
    lead_c = c.election.wait_for_leadership(WAIT)
    assert lead_c is not None and lead_c.epoch > lead_b.epoch
    for znode in persistent:
        assert kazoo_client.exists(znode) is not None  # nobody deleted them
    wait_for(
        lambda: (
            _on_candidates(hosts, d, [f"{zk_path}/{_node_name(x)}" for x in (a, b, c)])
            == [f"{zk_path}/{_node_name(c)}"]
        ),
        WAIT,
        message="d now watches c",
    )
    assert _status(hosts, zk_path)["leader"]["id"] == "c"  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"\xff\xfe", "\ufffd\ufffd"),
        (b"", ""),
        (b"\x1b[31mred\x07", "\x1b[31mred\x07"),
        (b"\xab" * NEAR_MAX_BUFFER, None),
    ],
    ids=["non-utf8", "empty", "terminal-escapes", "1MiB"],
)
def test_garbage_in_the_leaders_own_node_is_read_safely(
    ensemble: object,
    kazoo_client: KazooClient,
    zk_path: str,
    candidates: Callable[..., Candidate],
    exporter_of: Callable[[str], ElectionExporter],
    data: bytes,
    shown: str | None,
) -> None:
    """Someone overwrites the leader's node data: it stays leader; readers decode it safely."""
    hosts = ensemble.hosts  # type: ignore[attr-defined]
    seen: list[LeaderInfo | None] = []
    a = candidates(hosts, zk_path, "a")
    lead = a.election.wait_for_leadership(WAIT)
    assert lead is not None
    b = candidates(hosts, zk_path, "b", on_leader_change=seen.append)
    kazoo_client.set(f"{zk_path}/{_node_name(a)}", data)
    expected = shown if shown is not None else data.decode("utf-8", errors="replace")
    wait_for(
        lambda: seen and seen[-1] is not None and seen[-1].candidate_id == expected,
        WAIT,
        message="the observer reads the new data",
    )
    info = seen[-1]
    assert info is not None and (info.epoch, info.node) == (lead.epoch, _node_name(a))
    assert a.election.is_leader and a.recorder.kinds() == ["elected"]
    assert b.recorder.kinds() == []
    view = exporter_of(zk_path).snapshot()[zk_path]
    assert view.epoch == lead.epoch and view.leader_id == expected[:256]
    report = _status(hosts, zk_path)
    assert report["leader"]["id"] == expected  # type: ignore[index]
    human = zkelect(hosts, "status", zk_path)
    assert human.returncode == 0 and "Traceback" not in human.stderr, human.stderr
    assert "\x1b" not in human.stdout and "\x07" not in human.stdout  # shown, not obeyed
    watched = zkelect(hosts, "watch", zk_path, "--count", "1", timeout=WAIT)
    assert watched.returncode == 0 and len(watched.stdout.splitlines()) == 1, watched.stderr
    assert "\x1b" not in watched.stdout
