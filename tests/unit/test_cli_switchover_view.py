"""How ``zkelect switchover``, ``status`` and ``watch`` show a switchover, with fixed inputs:
the step lines, the final line, ``--json``'s object, the pending request's line and JSON
(zkelect/ops/cli/switchover.py, _election_view.py). No ZooKeeper."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout

import pytest

from zkelect._election.nodes import Contender, ContenderKind, LeaderInfo
from zkelect._election.reader import Elected, Snapshot
from zkelect._election.switchover import State, SwitchoverRequest
from zkelect._election.switchover_request import SwitchoverResult
from zkelect.errors import SwitchoverInProgressError, SwitchoverInterruptedError
from zkelect.ops.cli import switchover as cli
from zkelect.ops.cli._election_view import (
    PendingSwitchover,
    pending_json,
    pending_text,
    print_status,
    print_switchover_change,
    status_json,
)
from zkelect.ops.cli._where import Whereabouts
from zkelect.ops.cli.inspect import Forced
from zkelect.ops.json_ids import MAX_SAFE_INTEGER

NOW_MS = 1_800_000_000_000
A = "_c_11111111-1111-1111-1111-111111111111-latch-0000000001"
B = "_c_22222222-2222-2222-2222-222222222222-p5-latch-0000000002"
BIG_EPOCH = 0x3000003CB2F0001  # above 2^53: JSON keeps it as a string
REQUEST = SwitchoverRequest(
    id="f00d",
    state=State.REQUESTED,
    to=B,
    to_id="node-b",
    frm=A,
    reason="operator",
    by="zkelect-cli pid 7 on ops1",
    requested_at=NOW_MS / 1000 - 2,
    timeout=30.0,
)


def _info(candidate_id: str, node: str, epoch: int) -> LeaderInfo:
    return LeaderInfo(candidate_id, epoch, node, 0x100 + epoch % 7, int(node[-10:]))


def _progress(*states: State) -> cli.Progress:
    progress = cli.Progress(json_output=True)  # records, prints nothing
    for state in states:
        progress.step(REQUEST.moved(state))
    return progress


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (REQUEST, f"requested: hand over from node {A} to node-b (node {B}), asked by zkelect-cli"),
        (REQUEST.moved(State.ACCEPTED), f"accepted: the leader (node {A}) checked the target"),
        (REQUEST.moved(State.READY), f"ready: node-b (node {B}) is next in line"),
        (REQUEST.moved(State.DRAINING, deadline=4e9), "draining: the leader drains its work, "),
        (
            REQUEST.moved(State.REFUSED, refusal="elected 3s ago", retry_after=57.0),
            "refused: elected 3s ago (retry after 57s)",
        ),
    ],
)
def test_one_line_per_step(request_: SwitchoverRequest, says: str) -> None:
    line = cli.step_line(request_, 0.0123)
    assert line.startswith("+0.012s ")
    assert says in line
    if request_.state is State.DRAINING:
        assert re.search(r"deadline in \d+\.\ds$", line)


def test_the_final_line_names_the_new_leader_and_the_drain() -> None:
    result = SwitchoverResult(_info("node-b", B, 0x20), _info("node-a", A, 0x10), 1.234, 0.5)
    assert cli.step_line("done", 1.3) == "+1.300s done"
    assert cli.done_line("/e", result) == (
        f"node-b leads /e (node {B}, epoch 0x20) after 1.23 s; old leader drained in 0.50 s"
    )
    unseen = SwitchoverResult(result.leader, result.previous, 1.0, None)
    assert cli.done_line("/e", unseen).endswith("; the old leader's drain was not seen")


def test_json_of_a_switchover_that_happened() -> None:
    progress = _progress(State.REQUESTED, State.ACCEPTED, State.READY, State.DRAINING)
    result = SwitchoverResult(_info("node-b", B, BIG_EPOCH), _info("node-a", A, 0x10), 1.23456, 0.5)
    report = cli.outcome_json("/e", "handed_over", progress, result)
    assert list(report) == [
        "path", "result", "leader", "previous", "seconds", "drain_seconds", "steps", "error",
    ]  # fmt: skip
    assert report["leader"] == {
        "id": "node-b",
        "epoch": str(BIG_EPOCH),
        "epoch_hex": hex(BIG_EPOCH),
        "node": B,
        "session": hex(result.leader.session_id),
        "sequence": 2,
        "priority": 5,
    }
    assert report["previous"]["priority"] == 0
    assert (report["seconds"], report["drain_seconds"], report["error"]) == (1.235, 0.5, None)
    states = [step["state"] for step in report["steps"]]
    assert states == ["requested", "accepted", "ready", "draining", "done"]
    assert report["steps"][0]["from"] == A and report["steps"][0]["to_id"] == "node-b"
    _no_unsafe_integers(report)


def test_json_of_a_refusal_and_of_a_forced_resign() -> None:
    progress = _progress(State.REQUESTED)
    busy = cli.outcome_json(
        "/e", "failed", progress, error=SwitchoverInProgressError("a switchover is pending")
    )
    assert busy["result"] == "failed" and busy["leader"] is None
    assert busy["error"] == {
        "type": "SwitchoverInProgressError",
        "message": "a switchover is pending",
    }
    moved = SwitchoverInterruptedError("the target left", leader=_info("node-c", A, 0x30))
    assert isinstance(moved.leader, LeaderInfo)
    interrupted = cli.outcome_json("/e", "failed", progress, error=moved, leader=moved.leader)
    assert interrupted["leader"]["id"] == "node-c"

    before = Contender(A, 1, ContenderKind.LATCH, None, b"node-a", 0x10, 0x101)
    after = Contender(B, 2, ContenderKind.LATCH, None, b"node-b", 0x20, 0x102)
    forced = cli.outcome_json("/e", "forced", progress, forced=Forced(before, before, after))
    assert (forced["previous"]["id"], forced["leader"]["id"]) == ("node-a", "node-b")
    assert forced["drain_seconds"] is None and [s["state"] for s in forced["steps"]] == [
        "requested"
    ]
    nobody = cli.outcome_json("/e", "forced", progress, forced=Forced(before, before, None))
    assert nobody["leader"] is None
    json.dumps([busy, interrupted, forced, nobody])


def test_the_leader_that_did_not_answer_is_the_one_the_request_named() -> None:
    assert cli.Progress(json_output=True).leader_node is None
    assert _progress(State.REQUESTED, State.ACCEPTED).leader_node == A


def test_text_progress_prints_each_step_as_it_comes() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        progress = cli.Progress(json_output=False)
        progress.step(REQUEST)
        progress.step(REQUEST.moved(State.ACCEPTED))
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["requested:", "accepted:"]


# -- status and watch ----------------------------------------------------------------------


def _pending(request: SwitchoverRequest | None, ago_ms: int = 2_500) -> PendingSwitchover:
    return PendingSwitchover(request, 0x300023FF9790000, NOW_MS - ago_ms)


@pytest.mark.parametrize(
    ("request_", "line"),
    [
        (
            REQUEST,
            f"switchover pending: to node-b ({B}), requested, asked by zkelect-cli pid 7 on "
            "ops1 2.5s ago",
        ),
        (
            REQUEST.moved(State.DRAINING, deadline=NOW_MS / 1000 + 4),
            f"switchover pending: to node-b ({B}), draining (deadline in 4.0s), asked by",
        ),
        (
            REQUEST.moved(State.DRAINING, deadline=NOW_MS / 1000 - 1),
            "draining (deadline passed 1.0s ago)",
        ),
        (
            REQUEST.moved(State.REFUSED, refusal="not higher than the leader's"),
            "refused (not higher than the leader's), asked by",
        ),
        (
            SwitchoverRequest(**{**REQUEST.__dict__, "reason": "priority", "by": "node-b"}),
            "requested, asked by node-b (priority) 2.5s ago",
        ),
    ],
)
def test_the_pending_line_of_status(request_: SwitchoverRequest, line: str) -> None:
    assert line in pending_text(_pending(request_), NOW_MS)


def test_an_unreadable_request_still_shows_and_blocks() -> None:
    pending = _pending(None)
    assert pending.state_name == "unreadable"
    text = pending_text(pending, NOW_MS)
    assert text.startswith("switchover pending: unreadable: zkelect-switchover holds no request")
    assert "0x300023ff9790000" in text and "in progress" in text
    shown = pending_json(pending, NOW_MS)
    assert shown["readable"] is False and shown["state"] is None and shown["to"] is None
    assert (shown["session"], shown["requested_ms_ago"]) == ("0x300023ff9790000", 2_500)


def test_status_shows_the_pending_request_in_json_and_table() -> None:
    leader = Contender(A, 1, ContenderKind.LATCH, None, b"node-a", 0x10, 0x101, NOW_MS - 9_000)
    target = Contender(B, 2, ContenderKind.LATCH, None, b"node-b", 0x20, 0x102, NOW_MS - 9_000)
    snap = Snapshot("/e", True, (leader, target))
    report = status_json(snap, NOW_MS, pending=_pending(REQUEST))
    assert report["switchover"] == {
        "id": "f00d",
        "state": "requested",
        "to": B,
        "to_id": "node-b",
        "from": A,
        "reason": "operator",
        "by": "zkelect-cli pid 7 on ops1",
        "requested_at": REQUEST.requested_at,
        "timeout": 30.0,
        "deadline": None,
        "refusal": None,
        "retry_after": None,
        "readable": True,
        "session": "0x300023ff9790000",
        "requested_ms_ago": 2_500,
    }
    assert [c["priority"] for c in report["candidates"]] == [0, 5]
    assert status_json(snap, NOW_MS)["switchover"] is None
    for leaderless in (snap, Snapshot("/e", True, ())):
        out = io.StringIO()
        with redirect_stdout(out):
            print_status(
                leaderless,
                NOW_MS,
                Elected(None, "unknown"),
                Whereabouts(()),
                pending=_pending(REQUEST),
            )
        assert f"  switchover pending: to node-b ({B}), requested" in out.getvalue()


def test_watch_lines_for_a_request_that_appears_moves_and_goes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    leader = Contender(A, 1, ContenderKind.LATCH, None, b"node-a", 0x10, 0x101)
    assert print_switchover_change(_pending(REQUEST), leader, json_output=False)
    assert print_switchover_change(_pending(None), leader, json_output=False)
    assert print_switchover_change(None, leader, json_output=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(
        f"  switchover requested  to node-b (node {B})  asked by zkelect-cli pid 7 on ops1"
    )
    assert "  switchover unreadable  zkelect-switchover holds no request" in lines[1]
    assert lines[2].endswith("  switchover ended  (request deleted)")

    assert print_switchover_change(_pending(REQUEST.moved(State.READY)), None, json_output=True)
    assert print_switchover_change(None, leader, json_output=True)
    ready, ended = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert list(ready) == ["time", "event", "state", "switchover", "leader"]
    assert (ready["event"], ready["state"], ready["leader"]) == ("switchover", "ready", None)
    assert ready["switchover"]["to"] == B
    assert (ended["state"], ended["switchover"], ended["leader"]["id"]) == ("ended", None, "node-a")


def test_a_request_is_compared_by_its_id_and_state() -> None:
    assert _pending(REQUEST).key == _pending(REQUEST, ago_ms=9).key
    assert _pending(REQUEST).key != _pending(REQUEST.moved(State.ACCEPTED)).key
    assert _pending(None).key != _pending(REQUEST).key


def _no_unsafe_integers(value: object) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _no_unsafe_integers(item)
    elif isinstance(value, list):
        for item in value:
            _no_unsafe_integers(item)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert abs(value) <= MAX_SAFE_INTEGER
