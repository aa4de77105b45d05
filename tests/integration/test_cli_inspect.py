"""``zkelect status / watch / resign / exporter`` as real subprocesses against real ZooKeeper.

Every process a test starts is stopped by its PID in a ``finally`` (and dies with the test run
through PR_SET_PDEATHSIG); every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cli_support import cli_env, loads_strict
from election_support import Candidate, candidate_children, hand_numbered
from kazoo.client import KazooClient
from kazoo.exceptions import CancelledError
from kazoo.security import make_acl, make_digest_acl

from zkelect._election.nodes import leader_marker
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

WAIT = 20.0  # generous deadlines: the CI machine may be loaded


def _die_with_test() -> None:
    """In the forked child: the kernel SIGKILLs it if this test process dies first."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


def _env(hosts: str) -> dict[str, str]:
    return {**cli_env(), "ZKELECT_HOSTS": hosts}


def zkelect(hosts: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``zkelect ARGS`` to completion (killed by subprocess.run at the deadline)."""
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *args],
        env=_env(hosts),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_die_with_test,
    )


class Streaming:
    """A long-running ``zkelect`` subprocess whose stdout lines are collected as they come."""

    def __init__(self, hosts: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zkelect.ops.cli.main", *args],
            env=_env(hosts),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_test,
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait_lines(self, count: int, timeout: float = WAIT) -> list[str]:
        return wait_for(
            lambda: lines if len(lines := self.snapshot()) >= count else None,
            timeout,
            message=f"{count} lines from {self.proc.args!r}",
        )

    def stop(self, grace: float = 10.0) -> tuple[int, str]:
        """SIGTERM by PID, wait (SIGKILL after ``grace``); the exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(grace)
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


@contextmanager
def streaming(hosts: str, *args: str) -> Iterator[Streaming]:
    proc = Streaming(hosts, *args)
    try:
        yield proc
    finally:
        proc.stop()


def one_line(text: str) -> str:
    """The single line of an error output (and no traceback)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def join_in_order(
    candidates: Callable[..., Candidate], hosts: str, path: str, ids: list[str]
) -> list[Candidate]:
    """Start candidates one after another, so that election order is ``ids``."""
    made = []
    for candidate_id in ids:
        made.append(candidates(hosts, path, candidate_id))
        wait_for(lambda: made[-1].election.node, WAIT, message=f"{candidate_id} joined")
    wait_for(lambda: made[0].election.is_leader, WAIT, message=f"{ids[0]} leads")
    return made


# --------------------------------------------------------------------------- status


def test_status_json_matches_the_zkelect_election(
    ensemble: LocalEnsemble,
    zk_path: str,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
) -> None:
    made = join_in_order(candidates, ensemble.hosts, zk_path, ["node-a", "node-b", "node-c"])

    done = zkelect(ensemble.hosts, "status", zk_path, "--json")

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    report = loads_strict(done.stdout)
    assert list(report)[:3] == ["path", "leader", "candidates"]
    assert report["path"] == zk_path
    ids = [c["id"] for c in report["candidates"]]
    assert ids == ["node-a", "node-b", "node-c"]
    sequences = [c["sequence"] for c in report["candidates"]]
    assert sequences == sorted(sequences)
    for entry, candidate in zip(report["candidates"], made, strict=True):
        assert {"id", "node", "sequence", "session"} <= entry.keys()
        assert f"{zk_path}/{entry['node']}" == candidate.election.node
        stat = kazoo_client.get(f"{zk_path}/{entry['node']}")[1]
        assert entry["session"] == hex(stat.ephemeralOwner)  # "0x…": exact in every reader
        assert (entry["epoch"], entry["epoch_hex"]) == (str(stat.czxid), hex(stat.czxid))
        assert entry["kind"] == "latch"
        assert isinstance(entry["joined_ms_ago"], int)
        assert entry["joined_ms_ago"] >= 0
        assert entry["session_connected"] is True and entry["host"] == "127.0.0.1"
        assert entry["member"] in ensemble.hosts.split(",")
    leader = report["leader"]
    assert {"id", "epoch", "node", "session"} <= leader.keys()
    stat = kazoo_client.get(made[0].election.node)[1]
    assert (leader["id"], f"{zk_path}/{leader['node']}") == ("node-a", made[0].election.node)
    assert (leader["epoch"], leader["session"]) == (str(stat.czxid), hex(stat.ephemeralOwner))
    assert made[0].recorder.of("elected")[-1].epoch == int(leader["epoch"])
    # Elected at its join (first when it joined): no marker, its node's ctime says when.
    assert (leader["elected_known"], leader["elected_from"]) == (True, "join")
    assert leader["elected_ms_ago"] == leader["joined_ms_ago"]
    assert leader["session_connected"] is True
    assert [m["cons"] for m in report["members"]] == ["answered"] * ensemble.size

    table = zkelect(ensemble.hosts, "status", zk_path)
    assert table.returncode == 0, table.stderr
    assert f"leader node-a, epoch {hex(stat.czxid)}" in table.stdout
    assert hex(stat.ephemeralOwner) in table.stdout
    assert "  elected: " in table.stdout and "(at its join)" in table.stdout
    assert f"  host:    127.0.0.1, session {hex(stat.ephemeralOwner)} connected to member " in (
        table.stdout
    )
    rows = [ln.split() for ln in table.stdout.splitlines() if re.match(r"^\d+\s", ln)]
    assert [(r[1], r[2]) for r in rows] == [
        ("node-a", "leader"),
        ("node-b", "waiting"),
        ("node-c", "waiting"),
    ]


def test_status_reads_a_kazoo_election_and_a_missing_path(
    ensemble: LocalEnsemble, zk_path: str
) -> None:
    clients = [KazooClient(hosts=ensemble.hosts, timeout=10.0) for _ in range(2)]
    release = threading.Event()
    elections = []
    threads = []
    try:
        for number, client in enumerate(clients, 1):
            client.start(timeout=30)
            election = client.Election(zk_path, f"kazoo-{number}")
            elections.append(election)

            def contend(election: Any = election) -> None:
                with contextlib.suppress(CancelledError):  # cancelled at teardown
                    election.run(release.wait)

            thread = threading.Thread(target=contend, daemon=True)
            thread.start()
            threads.append(thread)
            wait_for(
                lambda: (
                    len(candidate_children(clients[0], zk_path)) >= len(threads)
                    if clients[0].exists(zk_path)
                    else None
                ),
                WAIT,
                message=f"kazoo-{len(threads)} joined",
            )

        done = zkelect(ensemble.hosts, "status", zk_path, "--json")

        assert done.returncode == 0, done.stderr
        report = loads_strict(done.stdout)
        assert [c["id"] for c in report["candidates"]] == ["kazoo-1", "kazoo-2"]
        assert [c["kind"] for c in report["candidates"]] == ["kazoo_lock"] * 2
        leader_node = f"{zk_path}/{report['candidates'][0]['node']}"
        stat = clients[0].get(leader_node)[1]
        leader = report["leader"]
        assert leader["id"] == "kazoo-1"
        assert leader["epoch"] == str(stat.czxid)
        assert leader["session"] == hex(clients[0].client_id[0]) == hex(stat.ephemeralOwner)
        # kazoo leaves no trace of when its leader was elected: unknown, not a guess.
        assert (leader["elected_ms_ago"], leader["elected_known"]) == (None, False)
        table = zkelect(ensemble.hosts, "status", zk_path)
        assert "  elected: unknown (joined " in table.stdout, table.stdout
    finally:
        release.set()
        for election in elections:
            election.cancel()
        for thread in threads:
            thread.join(WAIT)
        for client in clients:
            client.stop()
            client.close()

    missing = zkelect(ensemble.hosts, "status", f"{zk_path}/nothing-here", "--json")
    assert missing.returncode == 0
    report = loads_strict(missing.stdout)
    assert len(report.pop("members")) == ensemble.size
    assert report == {
        "path": f"{zk_path}/nothing-here",
        "leader": None,
        "candidates": [],
        "switchover": None,
        "exists": False,
        "ignored": [],
        "sequence_wrap": {"wrapped": False, "orders_differ": False, "string_order_first": None},
    }
    assert "does not exist" in one_line(missing.stderr)


def test_status_warns_when_the_sequence_counter_has_wrapped(
    ensemble: LocalEnsemble,
    zk_path: str,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
) -> None:
    join_in_order(candidates, ensemble.hosts, zk_path, ["node-a", "node-b"])
    clean = zkelect(ensemble.hosts, "status", zk_path, "--json")
    assert clean.returncode == 0 and clean.stderr == "", clean.stderr
    assert loads_strict(clean.stdout)["sequence_wrap"] == {
        "wrapped": False,
        "orders_differ": False,
        "string_order_first": loads_strict(clean.stdout)["leader"]["node"],
    }

    # Just after the wrap: -2147483648 follows node-a's and node-b's numbers in zkelect's
    # (serial) order, but string order (Curator's, kazoo's) puts it first.
    newest = hand_numbered(kazoo_client, zk_path, -(2**31), b"curator-peer")

    done = zkelect(ensemble.hosts, "status", zk_path, "--json")

    assert done.returncode == 0, done.stderr
    report = loads_strict(done.stdout)
    leader = report["leader"]["node"]
    assert report["leader"]["id"] == "node-a"
    assert [c["id"] for c in report["candidates"]] == ["node-a", "node-b", "curator-peer"]
    assert report["sequence_wrap"] == {
        "wrapped": True,
        "orders_differ": True,
        "string_order_first": newest,
    }
    warning = one_line(done.stderr)
    assert warning.startswith(
        f"zkelect: warning: {zk_path}: ZooKeeper's sequence counter has wrapped"
    )
    assert f"puts {newest} first where zkelect elects {leader}" in warning
    assert "two leaders, or none" in warning and "docs/safety.md" in warning
    table = zkelect(ensemble.hosts, "status", zk_path)  # the human form warns the same way
    assert table.returncode == 0 and one_line(table.stderr) == warning
    assert "leader node-a" in table.stdout

    # Wrapped, but both orders still elect the same node: a warning that they can part.
    agreeing = f"{zk_path}-agreeing"
    for sequence, data in ((-5, b"older"), (5, b"newer")):
        hand_numbered(kazoo_client, agreeing, sequence, data)
    done = zkelect(ensemble.hosts, "status", agreeing, "--json")
    assert done.returncode == 0, done.stderr
    report = loads_strict(done.stdout)
    assert report["leader"]["id"] == "older"
    assert report["sequence_wrap"] == {
        "wrapped": True,
        "orders_differ": False,
        "string_order_first": report["leader"]["node"],
    }
    assert "a candidate's sequence number is negative" in one_line(done.stderr)


def test_status_shows_when_a_leader_that_waited_was_elected_and_wide_hosts(
    ensemble: LocalEnsemble,
    zk_path: str,
    kazoo_client: KazooClient,
    candidates: Callable[..., Candidate],
) -> None:
    """B joins behind A and leads once A stops: elected after it joined (its marker's
    ctime, R13), even with nobody behind it; --output wide shows each host and member."""
    a, b = join_in_order(candidates, ensemble.hosts, zk_path, ["e-a", "e-b"])
    b_node = b.election.node
    assert b_node is not None
    joined_ms = kazoo_client.get(b_node)[1].ctime
    # Let time pass measurably between B's join and its election (a condition, not a sleep).
    wait_for(lambda: time.time() * 1000 - joined_ms >= 500, WAIT, message="500 ms after b joined")
    a.election.stop()
    wait_for(lambda: b.election.is_leader, WAIT, message="e-b leads")
    marker = f"{zk_path}/{leader_marker(b_node.rsplit('/', 1)[1])}"
    stat = wait_for(lambda: kazoo_client.exists(marker), WAIT, message="e-b's marker")
    assert stat.ephemeralOwner == b.election.session.session_id
    assert stat.ctime - joined_ms >= 500

    done = zkelect(ensemble.hosts, "status", zk_path, "--output", "json")

    assert done.returncode == 0 and done.stderr == "", done.stderr
    leader = loads_strict(done.stdout)["leader"]
    assert (leader["id"], leader["elected_known"], leader["elected_from"]) == (
        "e-b", True, "marker",
    )  # fmt: skip
    # Both ages were taken at one "now": their difference is the marker's ctime minus b's.
    assert leader["joined_ms_ago"] - leader["elected_ms_ago"] == stat.ctime - joined_ms
    assert leader["session_connected"] is True

    wide = zkelect(ensemble.hosts, "status", zk_path, "-o", "wide")
    assert wide.returncode == 0 and wide.stderr == "", wide.stderr
    lines = wide.stdout.splitlines()
    assert lines[1].startswith("  elected: ") and "(joined " in lines[1]
    assert lines[3].split()[:9] == [
        "#", "id", "role", "czxid", "session", "host", "member", "priority", "joined",
    ]  # fmt: skip
    row = next(ln.split() for ln in lines if re.match(r"^1\s", ln))
    assert row[1] == "e-b" and row[5] == "127.0.0.1" and row[6] == leader["member"]
    both = zkelect(ensemble.hosts, "status", zk_path, "--json", "--output", "wide")
    assert both.returncode == 2
    assert "--json is --output json" in one_line(both.stderr)


_HOLD_LEADERSHIP = """
import sys, threading
from zkelect import Election, ElectionConfig
election = Election(sys.argv[1], sys.argv[2], candidate_id="doomed",
                    config=ElectionConfig(session_timeout=float(sys.argv[3])))
election.start()
election.wait_for_leadership(30)
print("LEADING", flush=True)
threading.Event().wait()
"""


def test_status_says_a_sigkilled_leaders_session_is_not_connected(
    ensemble: LocalEnsemble, zk_path: str
) -> None:
    """A SIGKILLed leader keeps its node until its session expires (20 s here, the test
    ensemble's most): status says its session is connected to no member."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LEADERSHIP, ensemble.hosts, zk_path, "20"],
        env=_env(ensemble.hosts),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_test,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "LEADING"
        alive = loads_strict(zkelect(ensemble.hosts, "status", zk_path, "--json").stdout)
        assert alive["leader"]["session_connected"] is True
        proc.kill()  # SIGKILL, by PID: the socket closes, the session lives on
        proc.wait(WAIT)

        def dead() -> subprocess.CompletedProcess[str] | None:
            done = zkelect(ensemble.hosts, "status", zk_path, "--json")
            gone = loads_strict(done.stdout)["leader"]["session_connected"] is False
            return done if gone else None

        done = wait_for(dead, WAIT, message="no member serves the killed leader's session")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
    # Asked through one member of three, status cannot know the session is on no member.
    one = zkelect(ensemble.member_hosts(0), "status", zk_path, "--json")
    assert loads_strict(one.stdout)["leader"]["session_connected"] is None
    assert "connect string names 1 of the 3 members" in one_line(one.stderr)
    leader = loads_strict(done.stdout)["leader"]
    assert leader["id"] == "doomed"  # its node stays until the session expires
    assert (leader["host"], leader["member"]) == (None, None)
    assert one_line(done.stderr) == (
        f"zkelect: warning: the leader's session {leader['session']} is not connected to any "
        "member: a SIGKILLed or partitioned leader keeps its node until its session expires"
    )


# --------------------------------------------------------------------------- watch


def test_watch_prints_exactly_one_line_per_leader_change(
    ensemble: LocalEnsemble, zk_path: str, candidates: Callable[..., Candidate]
) -> None:
    ids = ["w-a", "w-b", "w-c", "w-d"]
    made = dict(zip(ids, join_in_order(candidates, ensemble.hosts, zk_path, ids), strict=True))

    def rejoined(name: str, old: str | None) -> None:
        wait_for(
            lambda: made[name].election.node not in (None, old), WAIT, message=f"{name} rejoined"
        )

    with streaming(ensemble.hosts, "watch", zk_path, "--json") as watch:
        first = loads_strict(watch.wait_lines(1)[0])
        assert first["leader"]["id"] == "w-a"
        # Three changes, three ways. The two that make the old leader rejoin (a children
        # change, which must print nothing) come first, each followed by another change:
        # ZooKeeper delivers a session's events in order, so a line for a rejoin would show
        # up before the next change's line.
        old = made["w-a"].election.node
        resigned = zkelect(ensemble.hosts, "resign", zk_path)
        assert resigned.returncode == 0, resigned.stderr
        assert loads_strict(watch.wait_lines(2)[1])["leader"]["id"] == "w-b"
        rejoined("w-a", old)
        old = made["w-b"].election.node
        assert made["w-b"].election.resign(WAIT)
        assert loads_strict(watch.wait_lines(3)[2])["leader"]["id"] == "w-c"
        rejoined("w-b", old)
        made["w-c"].election.stop()
        assert loads_strict(watch.wait_lines(4)[3])["leader"]["id"] == "w-d"
        code, stderr = watch.stop()

    assert code == 0, stderr
    assert stderr == ""
    lines = [loads_strict(line) for line in watch.snapshot()]
    assert [line["leader"]["id"] for line in lines] == ["w-a", "w-b", "w-c", "w-d"]
    for line in lines:
        assert set(line) == {"time", "leader"}
        assert {"id", "epoch", "node", "session"} <= line["leader"].keys()
    epochs = [int(line["leader"]["epoch"]) for line in lines]
    assert [line["leader"]["epoch_hex"] for line in lines] == [hex(e) for e in epochs]
    assert [line["leader"]["session"][:2] for line in lines] == ["0x"] * 4
    assert epochs == sorted(epochs)
    assert len(set(epochs)) == 4


def test_watch_human_lines_and_no_leader(ensemble: LocalEnsemble, zk_path: str) -> None:
    """A path without candidates prints "no leader", then one line when one appears."""
    with _client(ensemble.hosts) as client:
        with streaming(ensemble.hosts, "watch", zk_path) as watch:
            assert watch.wait_lines(1)[0].endswith("no leader")
            node = client.create(
                f"{zk_path}/_c_{uuid.uuid4()}-latch-",
                b"hand-made",
                ephemeral=True,
                sequence=True,
                makepath=True,
            )
            line = watch.wait_lines(2)[1]
            czxid = client.get(node)[1].czxid
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d  leader ", line)
            assert f"leader hand-made  epoch {hex(czxid)}" in line
            client.delete(node)
            assert watch.wait_lines(3)[2].endswith("no leader")
            code, stderr = watch.stop()
        assert code == 0, stderr
        assert len(watch.snapshot()) == 3


@contextmanager
def _client(hosts: str, auth: tuple[str, str] | None = None) -> Iterator[KazooClient]:
    client = KazooClient(hosts=hosts, timeout=10.0, auth_data=[auth] if auth else None)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


# --------------------------------------------------------------------------- resign


def test_resign_moves_leadership_and_the_old_leader_rejoins_at_the_back(
    ensemble: LocalEnsemble, zk_path: str, candidates: Callable[..., Candidate]
) -> None:
    a, b, c = join_in_order(candidates, ensemble.hosts, zk_path, ["r-a", "r-b", "r-c"])
    old_node = a.election.node

    done = zkelect(ensemble.hosts, "resign", zk_path, "--json")

    assert done.returncode == 0, done.stderr
    report = loads_strict(done.stdout)
    assert report["old_leader"]["id"] == "r-a"
    assert f"{zk_path}/{report['old_leader']['node']}" == old_node
    assert report["removed"] == report["old_leader"]
    assert report["was_leader"] is True
    assert report["new_leader"]["id"] == "r-b"
    for shown in (report["old_leader"], report["new_leader"]):
        assert shown["session"].startswith("0x") and shown["epoch_hex"] == hex(int(shown["epoch"]))
    wait_for(lambda: b.election.is_leader, WAIT, message="r-b leads")
    assert "revoked" in a.recorder.kinds()
    wait_for(lambda: a.election.node not in (None, old_node), WAIT, message="r-a rejoined")
    status = loads_strict(zkelect(ensemble.hosts, "status", zk_path, "--json").stdout)
    assert [x["id"] for x in status["candidates"]] == ["r-b", "r-c", "r-a"]

    old_b = b.election.node
    human = zkelect(ensemble.hosts, "resign", zk_path)
    assert human.returncode == 0, human.stderr
    old, new = human.stdout.strip().splitlines()
    assert old.startswith("old leader: r-b (epoch 0x")
    assert new.startswith("new leader: r-c (epoch 0x")
    wait_for(lambda: c.election.is_leader, WAIT, message="r-c leads")
    wait_for(lambda: b.election.node not in (None, old_b), WAIT, message="r-b rejoined")

    unknown = zkelect(ensemble.hosts, "resign", zk_path, "--id", "nobody")
    assert unknown.returncode == 1
    line = one_line(unknown.stderr)
    assert "no candidate 'nobody'" in line
    assert all(f"'{name}'" in line for name in ("r-a", "r-b", "r-c"))
    assert c.election.is_leader


def test_resign_refuses_without_permission(ensemble: LocalEnsemble, zk_path: str) -> None:
    """Deleting a child needs DELETE on the parent: an election path whose ACL gives anyone
    read but only an operator the rest."""
    operator = ("digest", "operator:secret")
    acl = [make_acl("world", "anyone", read=True), make_digest_acl("operator", "secret", all=True)]
    with _client(ensemble.hosts, operator) as admin:
        admin.ensure_path(zk_path.rsplit("/", 1)[0])  # an open parent: makepath would lock it
        admin.create(zk_path, acl=acl)
        nodes = [
            admin.create(
                f"{zk_path}/_c_{uuid.uuid4()}-latch-",
                name.encode(),
                acl=acl,
                ephemeral=True,
                sequence=True,
            )
            for name in ("guarded-a", "guarded-b")
        ]
        try:
            refused = zkelect(ensemble.hosts, "resign", zk_path)
            assert refused.returncode == 1
            line = one_line(refused.stderr)
            assert line.startswith(f"zkelect: no permission to delete {nodes[0]}:")
            assert "authenticate" in line
            assert refused.stdout == ""
            assert admin.exists(nodes[0]) is not None

            allowed = zkelect(
                ensemble.hosts, "resign", zk_path, "--auth", "digest:operator:secret", "--json"
            )
            assert allowed.returncode == 0, allowed.stderr
            report = loads_strict(allowed.stdout)
            assert (report["old_leader"]["id"], report["new_leader"]["id"]) == (
                "guarded-a",
                "guarded-b",
            )
            assert admin.exists(nodes[0]) is None
        finally:
            admin.delete(zk_path, recursive=True)


# --------------------------------------------------------------------------- errors, exporter


def test_operational_errors_are_one_line_with_exit_1(ensemble: LocalEnsemble) -> None:
    no_quorum = zkelect("127.0.0.1:9", "status", "/x", "--timeout", "1")
    assert no_quorum.returncode == 1
    assert "127.0.0.1:9 refused the connection" in one_line(no_quorum.stderr)

    bad = zkelect(ensemble.hosts, "resign", "relative/path")
    assert bad.returncode == 2
    assert "absolute path" in one_line(bad.stderr)

    nothing = zkelect(ensemble.hosts, "resign", f"/t/empty-{uuid.uuid4().hex[:8]}")
    assert nothing.returncode == 1
    assert "does not exist" in one_line(nothing.stderr)


def test_exporter_command_serves_metrics_until_sigterm(
    ensemble: LocalEnsemble, zk_path: str, candidates: Callable[..., Candidate]
) -> None:
    join_in_order(candidates, ensemble.hosts, zk_path, ["x-a", "x-b"])
    args = ("--path", zk_path, "--port", "0", "--log-format", "json", "--log-level", "info")
    with streaming(ensemble.hosts, "exporter", *args) as exporter:
        url = exporter.wait_lines(1)[0].removeprefix("listening on ")
        assert re.match(r"^http://127\.0\.0\.1:\d+$", url)
        body = wait_for(
            lambda: text if "x-a" in (text := _fetch(f"{url}/metrics")) else None,
            WAIT,
            message="the leader in /metrics",
        )
        assert f'zkelect_observed_leader{{election="{zk_path}",leader_id="x-a"}} 1.0' in body
        assert f'zkelect_observed_candidates{{election="{zk_path}"}} 2.0' in body
        code, stderr = exporter.stop()
    assert code == 0, stderr
    # --log-format json: every line one object (the leader it saw, at info), ids exact.
    logged = [loads_strict(line) for line in stderr.splitlines() if line.strip()]
    assert any(entry["level"] == "INFO" and "x-a" in entry["message"] for entry in logged), stderr


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
