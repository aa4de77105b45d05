"""The switchover's pure parts (R14): the request's encoding, priorities in node names,
configuration checks. The protocol itself runs on real ZooKeeper in
tests/integration/test_switchover_core.py."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest

from zkelect import ConfigurationError, ElectionConfig
from zkelect._election.nodes import (
    election_order,
    leader_marker,
    new_node_prefix,
    node_priority,
    parse_node,
)
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest
from zkelect._election.switchover_request import _withdraw as withdraw
from zkelect._zookeeper.outcomes import BadVersion, NodeStat


def _request() -> SwitchoverRequest:
    return SwitchoverRequest.new(
        to="_c_x-latch-0000000003",
        to_id="b",
        frm="_c_y-latch-0000000001",
        reason="operator",
        by="zkelect-cli pid 1 on host",
        now=1_700_000_000.5,
        timeout=30.0,
    )


def test_a_request_survives_encoding_and_garbage_is_ignored() -> None:
    request = _request()
    assert SwitchoverRequest.decode(request.encode()) == request
    moved = request.moved(State.DRAINING, deadline=1_700_000_010.0)
    assert SwitchoverRequest.decode(moved.encode()) == moved
    assert moved.id == request.id and moved.state is State.DRAINING
    # Anything else is ignored by every candidate (never acted on): garbage, another
    # format, a missing or mistyped field, an unknown state.
    for data in (
        b"",
        b"\xff\xfe",
        b"[]",
        b"{}",
        request.encode().replace(b'"v":1', b'"v":2'),
        request.encode().replace(b'"requested"', b'"teleported"'),
        request.encode().replace(b'"timeout":30.0', b'"timeout":"soon"'),
        request.encode().replace(b'"to":', b'"too":'),
    ):
        assert SwitchoverRequest.decode(data) is None, data


def test_the_request_is_no_candidate_for_any_recipe() -> None:
    assert parse_node(REQUEST_NODE) is None
    assert election_order([REQUEST_NODE, "_c_a-latch-0000000001"])[0].name.endswith("1")
    # Curator sorts a name without "latch-" by the whole name: after every sequence.
    assert REQUEST_NODE > "9999999999" and REQUEST_NODE > "-2147483648"


@pytest.mark.parametrize("priority", [0, 1, 7, -3, 1_000_000, -1_000_000])
def test_a_priority_is_written_in_the_node_name_and_read_back(priority: int) -> None:
    guid = str(uuid.uuid4())
    name = new_node_prefix(guid, priority) + "0000000042"
    node = parse_node(name)
    assert node is not None and node.guid == guid and node.sequence == 42  # R1, R4 as before
    assert node_priority(name) == priority
    assert leader_marker(name) == f"zkelect-leader-{guid}-0000000042"  # R13 as before
    assert ("-p" in name) == (priority != 0)  # priority 0: Curator's plain name


def test_names_without_a_priority_read_as_zero() -> None:
    for name in (
        "_c_0-latch-0000000001",  # a hand-made node
        f"_c_{uuid.uuid4()}-latch-0000000001",  # Curator's LeaderLatch
        f"_c_{uuid.uuid4()}-px-latch-0000000001",
        f"_c_{uuid.uuid4()}-p-latch-0000000001",
        f"_c_{uuid.uuid4()}-p99999999-latch-0000000001",  # out of range
        "latch-0000000001",
        REQUEST_NODE,
    ):
        assert node_priority(name) == 0, name


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("priority", 1.5, "priority must be an int"),
        ("priority", True, "priority must be an int"),
        ("priority", 1_000_001, "priority must be an int"),
        ("priority_settle", -1, "priority_settle must be >= 0"),
        ("priority_interval", float("nan"), "priority_interval must be a number"),
        ("drain_timeout", 0, "drain_timeout must be > 0"),
    ],
)
def test_switchover_settings_are_checked(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ElectionConfig(**{field: value})  # type: ignore[arg-type]


class _Moving:
    """A session on which a candidate moves the request between each read and delete, twice."""

    def __init__(self, request: SwitchoverRequest) -> None:
        self.data = request.encode()
        self.version = 0
        self.deleted = False
        self.moves_left = 2

    def get(self, path: str, watch: object = None) -> tuple[bytes, NodeStat]:
        return self.data, NodeStat(1, 1, self.version, 9)

    def delete(self, path: str, version: int = -1) -> None:
        if self.moves_left:
            self.moves_left -= 1
            self.version += 1  # moved by a candidate meanwhile
            raise BadVersion(path)
        assert version == self.version
        self.deleted = True


def test_the_requester_withdraws_its_request_even_while_candidates_move_it() -> None:
    session = _Moving(_request())
    withdraw(cast(Any, session), f"/e/{REQUEST_NODE}", _request().id)  # not ours
    assert not session.deleted and session.moves_left == 2
    ours = SwitchoverRequest.decode(session.data)
    assert ours is not None
    withdraw(cast(Any, session), f"/e/{REQUEST_NODE}", ours.id)
    assert session.deleted
