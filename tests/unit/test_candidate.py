"""Node naming, parsing and election order (R1b, R4): pure logic, no ZooKeeper."""

from __future__ import annotations

import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zkelect._election.contenders import contender_order
from zkelect._election.nodes import (
    Contender,
    SequenceWrap,
    election_order,
    new_node_prefix,
    parse_node,
    predecessor_of,
    sequence_counter,
    sequence_wrap,
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


# --------------------------------------------------------------------------- the wrap


def nodes(*sequences: int) -> list[Contender]:
    """Candidate nodes with these sequences, each with its own GUID, in the order given."""
    guids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(sequences))]
    parsed = [parse_node(zk_name(s, guid)) for s, guid in zip(sequences, guids, strict=True)]
    found = [n for n in parsed if n is not None]
    assert len(found) == len(sequences)
    return found


def curator_first(names: list[str], marker: str = "latch-") -> str:
    """Curator's leader, as LockInternals.getSortedChildren decides it: the children sorted
    by the text after the last marker (StandardLockInternalsDriver.standardFixForSorting),
    compared as Java strings (for ASCII text: as Python strings). Ties keep listing order."""
    return sorted(names, key=lambda name: name[name.rindex(marker) + len(marker) :])[0]


@pytest.mark.parametrize(
    ("sequences", "wrapped", "first", "string_first"),
    [
        ((), False, None, None),
        ((5,), False, 5, 5),
        ((3, 1, 2), False, 1, 1),
        ((INT32_MAX - 1, INT32_MAX), False, INT32_MAX - 1, INT32_MAX - 1),
        ((-5,), True, -5, -5),  # one contender: nobody to disagree with
        ((-5, 5), True, -5, -5),  # '-' sorts before digits, and -5 is also the older
        ((-1, 0, 1), True, -1, -1),  # back at 0 after the negatives: they agree again
        ((-5, -3), True, -5, -3),  # string order: the newest negative first
        ((INT32_MAX, INT32_MIN), True, INT32_MAX, INT32_MIN),  # just wrapped
        ((INT32_MAX - 1, INT32_MAX, INT32_MIN, INT32_MIN + 1), True, INT32_MAX - 1, INT32_MIN + 1),
        ((-1_000_000_000, -999_999_999), True, -1_000_000_000, -1_000_000_000),  # digit by digit
        ((-100_000_000, -1_000_000_000), True, -1_000_000_000, -100_000_000),
    ],
)
def test_sequence_wrap_table(
    sequences: tuple[int, ...], wrapped: bool, first: int | None, string_first: int | None
) -> None:
    given_nodes = nodes(*sequences)
    by_sequence = {n.sequence: n.name for n in given_nodes}
    for listed in (given_nodes, list(reversed(given_nodes))):  # any listing order
        wrap = sequence_wrap(listed)
        assert wrap == SequenceWrap(
            wrapped,
            None if first is None else by_sequence[first],
            None if string_first is None else by_sequence[string_first],
        )
        assert wrap.orders_differ == (first != string_first)
        if given_nodes:
            assert wrap.string_first == curator_first([n.name for n in given_nodes])
        assert (wrap.warning("/e") is None) == (not wrapped and first == string_first)


def test_the_example_of_the_brief_and_its_warning() -> None:
    old, new = nodes(INT32_MAX, INT32_MIN)
    wrap = sequence_wrap([new, old])
    assert (wrap.first, wrap.string_first) == (old.name, new.name)
    text = wrap.warning("/elections/mixed")
    assert text is not None and "\n" not in text
    assert text.startswith("/elections/mixed: ZooKeeper's sequence counter has wrapped")
    assert f"puts {new.name} first where zkelect elects {old.name}" in text
    assert "two leaders, or none" in text and "docs/safety.md" in text
    agreeing = sequence_wrap(nodes(-5, 5)).warning("/e")
    assert agreeing is not None and "a candidate's sequence number is negative" in agreeing
    assert sequence_wrap(nodes(1, 2)).warning("/e") is None


def test_hand_made_short_numbers_disagree_without_a_wrap() -> None:
    # Curator compares "7" with "0000000010" as text: a node ZooKeeper did not number.
    short, real = "_c_x-latch-7", zk_name(10)
    wrap = sequence_wrap(election_order([short, real]))
    assert not wrap.wrapped
    assert (wrap.first, wrap.string_first) == (short, real) == (short, curator_first([short, real]))
    assert "sequence numbers ZooKeeper did not print" in (wrap.warning("/e") or "")


def test_sequence_wrap_takes_any_recipe_s_contenders() -> None:
    # kazoo's Lock sorts the text after "__lock__" as a string too.
    names = [f"{'a' * 32}__lock__{INT32_MAX:010d}", f"{'b' * 32}__lock__{INT32_MIN:010d}"]
    wrap = sequence_wrap(contender_order(names))
    assert wrap.wrapped and wrap.orders_differ
    assert wrap.string_first == curator_first(names, "__lock__") == names[1]


@given(
    base=st.integers(min_value=INT32_MIN, max_value=INT32_MAX),
    offsets=st.lists(
        st.integers(min_value=0, max_value=2**31 - 2), min_size=1, max_size=40, unique=True
    ),
    seed=st.integers(),
)
def test_sequence_wrap_matches_curator_and_zkelect(
    base: int, offsets: list[int], seed: int
) -> None:
    # Candidates created from any counter value: the function names zkelect's leader and
    # Curator's (computed here the way Curator does), and they differ only after a wrap.
    names = [zk_name(wrap32(base + offset)) for offset in offsets]
    random.Random(seed).shuffle(names)
    order = election_order(names)
    wrap = sequence_wrap(order)
    assert wrap.wrapped == any(node.sequence < 0 for node in order)
    assert wrap.first == order[0].name
    assert wrap.string_first == curator_first(names)
    if not wrap.wrapped:
        assert not wrap.orders_differ
        assert wrap.warning("/e") is None
    else:
        assert wrap.warning("/e") is not None


def zookeeper_stat(creates: int, children: int) -> int:
    """The cversion ZooKeeper (DataNode.copyStat) reports: its internal cversion counts the
    creates, the reported one is 2 * creates - numChildren, in Java int arithmetic."""
    return wrap32(2 * creates - children)


@pytest.mark.parametrize(
    ("cversion", "children", "newest", "counter"),
    [
        # Read off ZooKeeper 3.8: create x0, delete it, create x1, create "plain": cversion 4,
        # 2 children, next sequence 3; then x3: cversion 5, 3 children, next 4.
        (4, 2, 1, 3),
        (5, 3, 3, 4),
        (zookeeper_stat(INT32_MAX, 1), 1, INT32_MAX - 1, INT32_MAX),  # one before the wrap
        (zookeeper_stat(INT32_MIN, 1), 1, INT32_MAX, INT32_MIN),  # wrapped: negative next
        (zookeeper_stat(0, 1), 1, -1, 0),  # back to 0 after the negatives
        (4, 0, None, None),  # no child: the two readings (2, 2 - 2**31) cannot be told apart
    ],
)
def test_sequence_counter_from_the_parent_stat(
    cversion: int, children: int, newest: int | None, counter: int | None
) -> None:
    assert sequence_counter(cversion, children, newest) == counter


@given(
    counter=st.integers(min_value=INT32_MIN, max_value=INT32_MAX),
    age=st.integers(min_value=1, max_value=2**31 - 1),
    children=st.integers(min_value=1, max_value=100_000),
)
def test_sequence_counter_is_exact_within_the_serial_window(
    counter: int, age: int, children: int
) -> None:
    # The newest child was created ``age`` creates ago: the counter is read back exactly.
    newest = wrap32(counter - age)
    assert sequence_counter(zookeeper_stat(counter, children), children, newest) == counter
