"""Contender names of zkelect, Curator and kazoo, and their order: pure logic, no ZooKeeper.

Why these tests: the exporter reports who leads elections run by other libraries; if it parsed
or ordered their nodes differently from the candidates themselves, dashboards would name the
wrong leader exactly when it matters (after the sequence counter wraps).
"""

from __future__ import annotations

import random
import uuid

from hypothesis import given
from hypothesis import strategies as st

from zkelect._election.contenders import contender_order, leader_of, parse_contender
from zkelect._election.nodes import Contender, ContenderKind, election_order, new_node_prefix

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def wrap32(value: int) -> int:
    """ZooKeeper's signed 32-bit sequence counter after ``value`` increments."""
    return (value + 2**31) % 2**32 - 2**31


def zk_name(kind: ContenderKind, sequence: int, guid: str | None = None) -> str:
    """The child name each recipe's create gets back (ZooKeeper appends ``%010d``)."""
    suffix = f"{sequence:010d}"
    if kind is ContenderKind.LATCH:
        return f"{new_node_prefix(guid)}{suffix}"
    if kind is ContenderKind.CURATOR_LOCK:
        return f"_c_{guid or uuid.uuid4()}-lock-{suffix}"
    marker = "__lock__" if kind is ContenderKind.KAZOO_LOCK else "__rlock__"
    return f"{guid or uuid.uuid4().hex}{marker}{suffix}"


kinds = st.sampled_from(list(ContenderKind))


def test_each_recipes_name_is_recognised() -> None:
    curator_guid, kazoo_guid = str(uuid.uuid4()), uuid.uuid4().hex
    assert parse_contender(f"_c_{curator_guid}-latch-0000000007") == Contender(
        f"_c_{curator_guid}-latch-0000000007", 7, ContenderKind.LATCH, curator_guid
    )
    assert parse_contender(f"_c_{curator_guid}-lock-0000000008") == Contender(
        f"_c_{curator_guid}-lock-0000000008", 8, ContenderKind.CURATOR_LOCK, curator_guid
    )
    assert parse_contender(f"{kazoo_guid}__lock__0000000009") == Contender(
        f"{kazoo_guid}__lock__0000000009", 9, ContenderKind.KAZOO_LOCK, kazoo_guid
    )
    assert parse_contender(f"{kazoo_guid}__rlock__0000000010") == Contender(
        f"{kazoo_guid}__rlock__0000000010", 10, ContenderKind.KAZOO_READ_LOCK, kazoo_guid
    )


def test_unprotected_names_are_contenders_without_guid() -> None:
    # Curator without withProtection(), kazoo with a hand-made prefix: still contenders.
    assert parse_contender("lock-0000000003") == Contender(
        "lock-0000000003", 3, ContenderKind.CURATOR_LOCK, None
    )
    assert parse_contender("__lock__0000000004") == Contender(
        "__lock__0000000004", 4, ContenderKind.KAZOO_LOCK, None
    )


def test_foreign_children_are_ignored() -> None:
    children = [
        "config",
        "leases",
        "_c_x-lease-0000000001",  # Curator semaphore lease: not an election
        "abc__lock__",
        "abc__lock__12345678901",  # 11 digits: not a ZooKeeper sequence
        "lock-2147483648",  # beyond the signed 32-bit counter
        "latch-notanumber",
        zk_name(ContenderKind.KAZOO_LOCK, 5),
    ]
    assert [c.sequence for c in contender_order(children)] == [5]


def test_string_order_is_wrong_after_wrap_but_ours_is_right() -> None:
    old = zk_name(ContenderKind.KAZOO_LOCK, INT32_MAX)
    new = zk_name(ContenderKind.KAZOO_LOCK, INT32_MIN)
    # kazoo sorts the sequence text: after the wrap it would name the newest node holder.
    assert min([old, new], key=lambda n: n.rsplit("__lock__", 1)[1]) == new
    leader = leader_of([new, old])
    assert leader is not None and leader.name == old


def test_no_contenders_no_leader() -> None:
    assert leader_of([]) is None
    assert leader_of(["config", "x"]) is None


@given(kind=kinds, sequence=st.integers(INT32_MIN, INT32_MAX))
def test_every_recipes_names_round_trip(kind: ContenderKind, sequence: int) -> None:
    name = zk_name(kind, sequence)
    parsed = parse_contender(name)
    assert parsed is not None
    assert (parsed.name, parsed.sequence, parsed.kind) == (name, sequence, kind)
    assert parsed.guid is not None and parsed.guid in name


@given(
    base=st.integers(INT32_MIN, INT32_MAX),
    created=st.lists(
        st.tuples(st.integers(0, 2**31 - 2), kinds),
        min_size=1,
        max_size=40,
        unique_by=lambda t: t[0],
    ),
    seed=st.integers(),
)
def test_mixed_recipes_are_ordered_by_creation_across_the_wrap(
    base: int, created: list[tuple[int, ContenderKind]], seed: int
) -> None:
    # Nodes of any recipes created under one parent in offset order, from any starting
    # counter (wrapping or not), are ordered oldest first whatever order they are listed in.
    names = {offset: zk_name(kind, wrap32(base + offset)) for offset, kind in created}
    listed = list(names.values())
    random.Random(seed).shuffle(listed)
    order = contender_order(listed)
    assert [c.name for c in order] == [names[o] for o in sorted(names)]
    leader = leader_of(listed)
    assert leader is not None and leader.name == names[min(names)]


@given(
    sequences=st.lists(st.integers(INT32_MIN, INT32_MAX), max_size=30, unique=True),
    foreign=st.lists(st.text(max_size=20), max_size=10),
    seed=st.integers(),
)
def test_observer_and_candidates_agree_on_zkelect_paths(
    sequences: list[int], foreign: list[str], seed: int
) -> None:
    # One ordering function for both: on a zkelect/LeaderLatch path the observer's order is
    # exactly the candidates' order, whatever else lives under the path.
    children = [zk_name(ContenderKind.LATCH, s) for s in sequences] + foreign
    random.Random(seed).shuffle(children)
    ours = [n.name for n in election_order(children)]
    theirs = [c.name for c in contender_order(children) if c.kind is ContenderKind.LATCH]
    assert theirs == ours


@given(st.lists(st.text(max_size=40), max_size=20))
def test_arbitrary_children_never_crash(children: list[str]) -> None:
    order = contender_order(children)
    assert all(parse_contender(c.name) == c for c in order)
    assert leader_of(children) == (order[0] if order else None)
