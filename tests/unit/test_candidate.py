"""Node naming, parsing and election order (R1b, R4): pure logic, no ZooKeeper."""

from __future__ import annotations

import random
import uuid

from hypothesis import given
from hypothesis import strategies as st

from zkelect.candidate import (
    election_order,
    new_node_prefix,
    parse_node,
    predecessor_of,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def zk_name(sequence: int, guid: str | None = None) -> str:
    """The name ZooKeeper gives: our prefix plus the sequence printed with %010d."""
    return f"{new_node_prefix(guid)}{sequence:010d}"


def wrap32(value: int) -> int:
    """ZooKeeper's signed 32-bit sequence counter after ``value`` increments."""
    return (value + 2**31) % 2**32 - 2**31


def test_prefix_has_curator_latch_format() -> None:
    guid = str(uuid.uuid4())
    assert new_node_prefix(guid) == f"_c_{guid}-latch-"
    node = parse_node(zk_name(42, guid))
    assert node is not None
    assert (node.sequence, node.guid) == (42, guid)


def test_negative_sequence_after_wrap_is_parsed() -> None:
    node = parse_node(zk_name(INT32_MIN))
    assert node is not None and node.sequence == INT32_MIN
    assert parse_node(zk_name(-5)) is not None
    assert parse_node(zk_name(-5)).sequence == -5  # type: ignore[union-attr]


def test_curator_node_without_our_guid_is_a_candidate() -> None:
    node = parse_node("_c_0f2d6a3e-1b0c-4a51-9a2b-3c4d5e6f7a8b-latch-0000000007")
    assert node is not None and node.sequence == 7


def test_foreign_children_are_ignored() -> None:
    children = [
        zk_name(3),
        "config",
        "0f2d6a3e1b0c4a519a2b3c4d5e6f7a8b__lock__0000000001",  # kazoo Lock
        "latch-notanumber",
        "_c_x-latch-",
        zk_name(1),
    ]
    assert [n.sequence for n in election_order(children)] == [1, 3]


def test_string_order_is_wrong_after_wrap_but_ours_is_right() -> None:
    old, new = zk_name(INT32_MAX), zk_name(INT32_MIN)
    # A string sort of the sequence text (Curator, kazoo) would elect the newest node:
    assert min([old, new], key=lambda name: name.rsplit("latch-", 1)[1]) == new
    assert [n.name for n in election_order([new, old])] == [old, new]


@given(
    base=st.integers(min_value=INT32_MIN, max_value=INT32_MAX),
    offsets=st.lists(
        st.integers(min_value=0, max_value=2**31 - 2), min_size=1, max_size=40, unique=True
    ),
    seed=st.integers(),
)
def test_order_follows_creation_across_the_wrap(base: int, offsets: list[int], seed: int) -> None:
    # Candidates created in offset order from any starting counter, wrapping or not,
    # are ordered oldest first whatever order the server lists them in.
    names = {offset: zk_name(wrap32(base + offset)) for offset in offsets}
    listed = list(names.values())
    random.Random(seed).shuffle(listed)
    order = election_order(listed)
    assert [n.name for n in order] == [names[o] for o in sorted(offsets)]


@given(st.lists(st.text(max_size=30), max_size=20))
def test_arbitrary_children_never_crash(children: list[str]) -> None:
    order = election_order(children)
    assert all(parse_node(node.name) == node for node in order)


def test_predecessor() -> None:
    order = election_order([zk_name(s) for s in (5, 1, 9)])
    names = [n.name for n in order]
    assert predecessor_of(order, names[0]) is None
    assert predecessor_of(order, names[2]) == order[1]
    assert predecessor_of(order, "missing") is None
