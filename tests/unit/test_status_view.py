"""``zkelect status``'s pure parts with fixed inputs: the ``cons`` parser, where a session
is connected (and when nobody can tell), and the JSON and table shapes (zkelect/ops/cli/
_where.py, _election_view.py). The commands themselves run against real ZooKeeper in
tests/integration/test_cli_inspect.py."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from zkelect._election.nodes import Contender, ContenderKind
from zkelect._election.reader import Elected, Snapshot
from zkelect._zookeeper.words import ClientConnection, parse_cons
from zkelect.ops.cli._election_view import (
    elected_text,
    leader_session_note,
    print_status,
    status_json,
)
from zkelect.ops.cli._where import MemberAnswer, Whereabouts
from zkelect.ops.json_ids import MAX_SAFE_INTEGER

# What a 3.8 member answers (one connection without a session: the word's own).
CONS = """\
 /127.0.0.1:56656[0](queued=0,recved=1,sent=0)
 /127.0.0.1:51314[1](queued=0,recved=1,sent=1,sid=0x300023ff9790000,lop=SESS,est=1796538681141,to=4000,lcxid=0x0,lzxid=0x100000004,lresp=37747353,llat=7,minlat=0,avglat=7,maxlat=7)
 app7.example/10.0.0.7:40000[1](queued=0,sid=0x1ff,lop=PING)
 /0:0:0:0:0:0:0:1:41000[1](sid=0x2)

"""
LEADER_SID = 0x300023FF9790000
NOW = 1_800_000_000_000


def test_cons_lines_give_each_connection_its_host_and_session() -> None:
    assert parse_cons(CONS) == [
        ClientConnection("127.0.0.1", "127.0.0.1:56656", None),
        ClientConnection("127.0.0.1", "127.0.0.1:51314", LEADER_SID),
        ClientConnection("10.0.0.7", "10.0.0.7:40000", 0x1FF),
        ClientConnection("0:0:0:0:0:0:0:1", "[0:0:0:0:0:0:0:1]:41000", 2),
    ]


@pytest.mark.parametrize(
    "text",
    ["", "This ZooKeeper instance is not currently serving requests\n", "garbage[x](y)\n"],
)
def test_cons_answers_without_connections_list_none(text: str) -> None:
    assert parse_cons(text) == []


def _answered(member: str, *sids: int) -> MemberAnswer:
    conns = tuple(ClientConnection("10.0.0.7", f"10.0.0.7:{4000 + s}", s) for s in sids)
    return MemberAnswer(member, "answered", connections=conns)


def test_a_session_is_found_on_its_member() -> None:
    where = Whereabouts((_answered("zk1:2181", 5), _answered("zk2:2181", 7)))
    located = where.locate(7)
    assert (located.connected, located.host, located.member) == (True, "10.0.0.7", "zk2:2181")


def test_not_connected_only_when_every_member_answered_or_listens_to_nothing() -> None:
    down = MemberAnswer("zk3:2181", "down", "did not answer 'cons': connection refused")
    where = Whereabouts((_answered("zk1:2181", 5), _answered("zk2:2181"), down))
    assert where.locate(9).connected is False


@pytest.mark.parametrize(
    ("other", "said"),
    [
        (MemberAnswer("zk2:2181", "refused", "refused 'cons' (not in 4lw...)"), "refused 'cons'"),
        (MemberAnswer("zk2:2181", "silent", "did not answer 'cons': timed out"), "timed out"),
    ],
)
def test_a_member_that_could_hold_the_session_but_did_not_say_makes_it_unknown(
    other: MemberAnswer, said: str
) -> None:
    located = Whereabouts((_answered("zk1:2181", 5), other)).locate(9)
    assert located.connected is None
    assert "not connected to zk1:2181" in located.reason and said in located.reason
    nobody = Whereabouts((other,)).locate(9)
    assert nobody.connected is None and nobody.reason.startswith("no member answered 'cons'")


def test_a_connect_string_naming_fewer_members_than_the_ensemble_has_cannot_tell() -> None:
    """One entry (a load balancer, or one member) of three: the others may serve it."""
    located = Whereabouts((_answered("zk-vip:2181", 5),), configured=3).locate(9)
    assert located.connected is None
    assert "names 1 of the 3 members /zookeeper/config lists" in located.reason
    assert Whereabouts((_answered("zk1:2181", 5),), configured=1).locate(9).connected is False


def _leader(kind: ContenderKind = ContenderKind.LATCH) -> Contender:
    return Contender(
        "_c_0b5b0cbd-2c7e-4a53-9ba2-bd2e84b0c0c4-latch-0000000007",
        7,
        kind,
        "0b5b0cbd-2c7e-4a53-9ba2-bd2e84b0c0c4",
        data=b"node-a",
        epoch=0x3000003CB2F0001,
        session_id=LEADER_SID,
        ctime_ms=NOW - 60_000,
    )


def test_status_json_has_no_integer_a_double_rounds_and_says_when_it_was_elected() -> None:
    snap = Snapshot("/e", True, (_leader(),))
    where = Whereabouts((_answered("zk1:2181"),))
    report = status_json(snap, NOW, Elected(NOW - 5_000, "marker"), where)

    text = json.dumps(report)
    assert all(abs(v) <= MAX_SAFE_INTEGER for v in _ints(json.loads(text)))
    leader = report["leader"]
    assert leader["session"] == "0x300023ff9790000"
    assert (leader["epoch"], leader["epoch_hex"]) == (str(0x3000003CB2F0001), "0x3000003cb2f0001")
    assert (leader["joined_ms_ago"], leader["elected_ms_ago"]) == (60_000, 5_000)
    assert (leader["elected_known"], leader["elected_from"]) == (True, "marker")
    assert leader["session_connected"] is False and leader["host"] is None
    assert report["candidates"][0]["session"] == leader["session"]
    assert report["members"] == [{"member": "zk1:2181", "cons": "answered", "detail": None}]

    unknown = status_json(snap, NOW, Elected(None, "unknown"), where)["leader"]
    assert (unknown["elected_ms_ago"], unknown["elected_known"]) == (None, False)


def _ints(value: object) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ints(v)]
    return []


def test_elected_words_for_each_source() -> None:
    leader = _leader()
    assert elected_text(leader, Elected(NOW - 5_000, "marker"), NOW) == (
        "5.0s ago (joined 1m00s ago)"
    )
    assert elected_text(leader, Elected(leader.ctime_ms, "join"), NOW) == "1m00s ago (at its join)"
    kazoo = elected_text(_leader(ContenderKind.KAZOO_LOCK), Elected(None, "unknown"), NOW)
    assert kazoo.startswith("unknown (joined 1m00s ago; kazoo Election / Lock leaves no trace")


def test_the_summary_and_the_wide_table() -> None:
    leader = _leader()
    waiting = _leader()._replace(name="_c_x-latch-0000000009", data=b"node-b", session_id=5)
    snap = Snapshot("/e", True, (leader, waiting))
    where = Whereabouts(
        (
            MemberAnswer(
                "zk1:2181",
                "answered",
                connections=(ClientConnection("10.0.0.7", "10.0.0.7:4000", LEADER_SID),),
            ),
        )
    )
    out = io.StringIO()
    with redirect_stdout(out):
        print_status(snap, NOW, Elected(NOW - 5_000, "marker"), where, wide=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == "/e: leader node-a, epoch 0x3000003cb2f0001, 2 candidates " + (
        "(zkelect / Curator LeaderLatch)"
    )
    assert lines[1] == "  elected: 5.0s ago (joined 1m00s ago)"
    assert lines[2] == (
        "  host:    10.0.0.7, session 0x300023ff9790000 connected to member zk1:2181"
    )
    assert lines[3].split() == [
        "#", "id", "role", "czxid", "session", "host", "member", "priority", "joined", "node",
    ]  # fmt: skip
    rows = [line.split() for line in lines[5:]]
    assert rows[0][5:7] == ["10.0.0.7", "zk1:2181"]
    assert rows[1][1] == "node-b" and rows[1][5:7] == ["-", "-"]  # no member serves it


def test_the_stderr_line_for_a_leader_no_member_serves() -> None:
    snap = Snapshot("/e", True, (_leader(),))
    note = leader_session_note(snap, Whereabouts((_answered("zk1:2181"),)))
    assert note == (
        "warning: the leader's session 0x300023ff9790000 is not connected to any member: a "
        "SIGKILLed or partitioned leader keeps its node until its session expires"
    )
    refused = MemberAnswer("zk1:2181", "refused", "refused 'cons'")
    unknown = leader_session_note(snap, Whereabouts((refused,)))
    assert unknown is not None and unknown.startswith("note: unknown whether the leader's")
    served = Whereabouts((_answered("zk1:2181", LEADER_SID),))
    assert leader_session_note(snap, served) is None
