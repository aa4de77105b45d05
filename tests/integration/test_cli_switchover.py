"""``zkelect switchover`` as a real subprocess against real ZooKeeper: its refusals and output,
and how ``status`` and ``watch`` show a pending switchover.

Contenders made by hand (ephemeral ``_c_<uuid>-latch-`` nodes of a kazoo client) never answer
a request, so a request made by hand stays as it is, and a hand-made leader is one that does
not answer. The happy path runs between two in-process Elections. The scenarios with real
``zkelect run`` candidates are in test_switchover.py. Every process a test starts is stopped
by its PID (test_cli_inspect's helpers); every wait has a deadline.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from cli_support import loads_strict
from election_support import Candidate
from kazoo.client import KazooClient
from test_cli_inspect import join_in_order, one_line, streaming, zkelect

from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

WAIT = 20.0


def _contender(client: KazooClient, path: str, candidate_id: str, priority: int = 0) -> str:
    """A contender node made by hand (it never answers a request); its name."""
    middle = f"-p{priority}" if priority else ""
    made: str = client.create(
        f"{path}/_c_{uuid.uuid4()}{middle}-latch-",
        candidate_id.encode(),
        ephemeral=True,
        sequence=True,
        makepath=True,
    )
    return made.rsplit("/", 1)[1]


def _request(to: str, to_id: str, frm: str) -> SwitchoverRequest:
    return SwitchoverRequest.new(
        to=to, to_id=to_id, frm=frm, reason="operator", by="tester pid 1 on h", now=time.time(),
        timeout=30.0,
    )  # fmt: skip


def test_refusals_are_one_line_exit_1_and_leave_no_request(
    ensemble: LocalEnsemble, zk_path: str, kazoo_client: KazooClient
) -> None:
    hosts, request_path = ensemble.hosts, f"{zk_path}/{REQUEST_NODE}"
    leader = _contender(kazoo_client, zk_path, "h-a")
    target = _contender(kazoo_client, zk_path, "h-b")

    unknown = zkelect(hosts, "switchover", zk_path, "--to", "nobody", "--timeout", "5")
    assert unknown.returncode == 1, unknown.stderr
    line = one_line(unknown.stderr)
    assert line.startswith("zkelect: switchover: ") and "nobody" in line
    assert unknown.stdout == ""
    assert kazoo_client.exists(request_path) is None

    # Two at once: a request exists (made by hand, so nobody moves it on).
    pending = _request(target, "h-b", leader)
    kazoo_client.create(request_path, pending.encode(), ephemeral=True)
    busy = zkelect(hosts, "switchover", zk_path, "--to", "h-b", "--json", "--timeout", "5")
    assert busy.returncode == 1, busy.stderr
    assert "another switchover is pending" in one_line(busy.stderr)
    assert one_line(busy.stderr).startswith("zkelect: switchover: ")
    report = loads_strict(busy.stdout)
    assert (report["result"], report["error"]["type"]) == ("failed", "SwitchoverInProgressError")
    assert report["leader"] is None and report["drain_seconds"] is None
    assert kazoo_client.get(request_path)[0] == pending.encode()  # not its own: left alone
    kazoo_client.delete(request_path)

    # The leader never answers: nothing changes, the request is withdrawn.
    silent = zkelect(hosts, "switchover", zk_path, "--to", "h-b", "--timeout", "1")
    assert silent.returncode == 1, silent.stderr
    line = one_line(silent.stderr)
    assert line.startswith("zkelect: switchover: the leader 'h-a'") and "did not answer" in line
    assert re.search(r"\+\d+\.\d{3}s requested: hand over from node " + leader, silent.stdout)
    assert kazoo_client.exists(request_path) is None
    assert sorted(kazoo_client.get_children(zk_path)) == sorted([leader, target])

    # SIGTERM while it waits: exit 130, and its request goes with its session at once.
    with streaming(hosts, "switchover", zk_path, "--to", "h-b", "--timeout", "60") as waiting:
        wait_for(lambda: kazoo_client.exists(request_path), WAIT, message="the request")
        code, stderr = waiting.stop()
    assert code == 130
    assert one_line(stderr) == "zkelect: switchover: interrupted; no request is left behind"
    assert kazoo_client.exists(request_path) is None

    # --force: the leader's node deleted undrained, the next in line leads.
    forced = zkelect(hosts, "switchover", zk_path, "--to", "h-b", "--timeout", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "--force: forcing the leader out" in one_line(forced.stderr)
    lines = forced.stdout.splitlines()
    assert (
        "forced: leader's node deleted undrained; the next in line (not necessarily --to) leads"
    ) in lines
    assert lines[-2].startswith("old leader: h-a (epoch 0x") and lines[-2].endswith("node deleted")
    assert lines[-1].startswith("new leader: h-b (epoch 0x")
    assert kazoo_client.get_children(zk_path) == [target]


def test_status_and_watch_show_a_pending_switchover(
    ensemble: LocalEnsemble, zk_path: str, kazoo_client: KazooClient
) -> None:
    hosts, request_path = ensemble.hosts, f"{zk_path}/{REQUEST_NODE}"
    leader = _contender(kazoo_client, zk_path, "p-a")
    target = _contender(kazoo_client, zk_path, "p-b", priority=7)
    with streaming(hosts, "watch", zk_path, "--json") as watch:
        assert loads_strict(watch.wait_lines(1)[0])["leader"]["id"] == "p-a"
        pending = _request(target, "p-b", leader)
        kazoo_client.create(request_path, pending.encode(), ephemeral=True)
        appeared = loads_strict(watch.wait_lines(2)[1])

        table = zkelect(hosts, "status", zk_path, "-o", "wide")
        report = loads_strict(zkelect(hosts, "status", zk_path, "--json").stdout)

        accepted = pending.moved(State.ACCEPTED)
        kazoo_client.set(request_path, accepted.encode())
        moved = loads_strict(watch.wait_lines(3)[2])
        kazoo_client.delete(request_path)
        ended = loads_strict(watch.wait_lines(4)[3])
        code, stderr = watch.stop()
    assert code == 0, stderr

    for event, state in ((appeared, "requested"), (moved, "accepted"), (ended, "ended")):
        assert (event["event"], event["state"]) == ("switchover", state)
        assert event["leader"]["id"] == "p-a"  # a reader of .leader still reads the leader
    assert appeared["switchover"]["to"] == target and appeared["switchover"]["to_id"] == "p-b"
    assert appeared["switchover"]["from"] == leader and appeared["switchover"]["readable"]
    assert moved["switchover"]["id"] == pending.id and ended["switchover"] is None

    assert table.returncode == 0, table.stderr
    assert re.search(
        rf"^  switchover pending: to p-b \({target}\), requested, asked by tester pid 1 on h "
        r"\d+\.\ds ago$",
        table.stdout,
        re.MULTILINE,
    ), table.stdout
    header = next(ln.split() for ln in table.stdout.splitlines() if ln.startswith("#"))
    rows = [ln.split() for ln in table.stdout.splitlines() if re.match(r"^\d+\s", ln)]
    column = header.index("priority")
    assert [(r[1], r[column]) for r in rows] == [("p-a", "0"), ("p-b", "7")]

    assert [c["priority"] for c in report["candidates"]] == [0, 7]
    assert report["leader"]["priority"] == 0
    assert REQUEST_NODE not in report["ignored"]  # zkelect's own, and no contender
    assert [c["node"] for c in report["candidates"]] == [leader, target]
    switchover = report["switchover"]
    assert {k: switchover[k] for k in ("id", "state", "to", "to_id", "from", "by")} == {
        "id": pending.id,
        "state": "requested",
        "to": target,
        "to_id": "p-b",
        "from": leader,
        "by": "tester pid 1 on h",
    }
    assert switchover["session"] == hex(kazoo_client.client_id[0])
    assert switchover["readable"] is True and switchover["requested_ms_ago"] >= 0
    gone = loads_strict(zkelect(hosts, "status", zk_path, "--json").stdout)
    assert gone["switchover"] is None


def test_switchover_hands_over_between_two_elections(
    ensemble: LocalEnsemble,
    zk_path: str,
    candidates: Callable[..., Candidate],
    kazoo_client: KazooClient,
) -> None:
    a, b = join_in_order(candidates, ensemble.hosts, zk_path, ["e-a", "e-b"])

    done = zkelect(ensemble.hosts, "switchover", zk_path, "--to", "e-b", "--json")

    assert done.returncode == 0, done.stderr
    report = loads_strict(done.stdout)
    assert (report["result"], report["error"]) == ("handed_over", None)
    assert (report["previous"]["id"], report["leader"]["id"]) == ("e-a", "e-b")
    assert int(report["leader"]["epoch"]) > int(report["previous"]["epoch"])
    assert report["leader"]["epoch_hex"] == hex(int(report["leader"]["epoch"]))
    assert report["leader"]["session"].startswith("0x")
    states = [step["state"] for step in report["steps"]]
    assert states[0] == "requested" and states[-1] == "done", states
    assert 0 < report["seconds"] <= 30
    wait_for(lambda: b.election.is_leader, WAIT, message="e-b leads")
    assert b.recorder.of("elected")[-1].epoch == int(report["leader"]["epoch"])
    assert kazoo_client.exists(f"{zk_path}/{REQUEST_NODE}") is None

    # Without --to: the next in line (e-a, re-queued behind e-b) takes over, in text.
    wait_for(lambda: a.election.node is not None, WAIT, message="e-a re-queued")
    back = zkelect(ensemble.hosts, "switchover", zk_path)
    assert back.returncode == 0, back.stderr
    lines = back.stdout.splitlines()
    assert re.match(r"^\+\d+\.\d{3}s requested: hand over from node ", lines[0]), lines
    assert re.match(r"^\+\d+\.\d{3}s done$", lines[-2]), lines
    assert re.match(
        rf"^e-a leads {zk_path} \(node \S+, epoch 0x[0-9a-f]+\) after \d+\.\d\d s; ", lines[-1]
    ), lines
    wait_for(lambda: a.election.is_leader, WAIT, message="e-a leads again")
