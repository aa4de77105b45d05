"""Properties of the shard coordinator recipe's assignment module
(recipes/shard_coordinator/assignment.py): balanced within one shard, and sticky (the number of
shards moved equals the lower bound, checked against brute force on small cases); bad input
gets a typed one-line error."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkelect import ConfigurationError

# The module lives with the one recipe that uses it; the recipe imports it as a sibling.
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "shard_coordinator"
sys.path.insert(0, str(RECIPE))

import assignment  # noqa: E402
from assignment import (  # noqa: E402
    assign,
    batches,
    loads,
    minimum_moves,
    moved,
    split,
)

NAMES = [f"m{i}" for i in range(12)]


@st.composite
def scenarios(draw: st.DrawFn, max_shards: int = 60) -> tuple[int, list[str], dict[int, str]]:
    """A shard count, the live members, and an arbitrary previous assignment (owners may be
    gone, unbalanced, or missing; shards may be out of range after a shrink)."""
    shards = draw(st.integers(0, max_shards))
    members = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=10, unique=True))
    previous = draw(
        st.dictionaries(st.integers(0, max_shards + 5), st.sampled_from(NAMES), max_size=80)
    )
    return shards, members, previous


def spread(owners: list[str], members: list[str]) -> int:
    counts = loads(owners, members).values()
    return max(counts) - min(counts)


@given(scenarios())
def test_every_shard_has_one_live_owner_and_loads_are_balanced(
    case: tuple[int, list[str], dict[int, str]],
) -> None:
    shards, members, previous = case
    owners = assign(shards, members, previous)
    assert len(owners) == shards
    assert set(owners) <= set(members)
    if shards:
        assert spread(owners, members) <= 1


@given(scenarios())
def test_moves_exactly_the_minimum(case: tuple[int, list[str], dict[int, str]]) -> None:
    shards, members, previous = case
    owners = assign(shards, members, previous)
    kept_previous = {s: o for s, o in previous.items() if s < shards}
    assert len(moved(kept_previous, owners)) == minimum_moves(shards, members, previous)


@given(scenarios())
def test_only_orphans_and_overloaded_members_lose_shards(
    case: tuple[int, list[str], dict[int, str]],
) -> None:
    shards, members, previous = case
    owners = assign(shards, members, previous)
    q = shards // len(members)
    held = loads((o for s, o in previous.items() if s < shards and o in members), members)
    for shard in range(shards):
        old = previous.get(shard)
        if old is not None and old in members and owners[shard] != old:
            assert held[old] > q, (shard, old, held[old], q)  # it had more than its share
        if old in members and owners[shard] != old:
            assert loads(owners, members)[old] >= q  # never drained below its share


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 6),
    st.lists(st.sampled_from(NAMES[:4]), min_size=1, max_size=4, unique=True),
    st.dictionaries(st.integers(0, 6), st.sampled_from(NAMES[:5]), max_size=7),
)
def test_lower_bound_matches_brute_force(
    shards: int, members: list[str], previous: dict[int, str]
) -> None:
    """Over every balanced assignment of a small case, none moves fewer shards."""
    best = min(
        sum(1 for s, o in enumerate(choice) if previous.get(s) != o)
        for choice in itertools.product(members, repeat=shards)
        if not shards or spread(list(choice), members) <= 1
    )
    assert minimum_moves(shards, members, previous) == best
    owners = assign(shards, members, previous)
    assert sum(1 for s, o in enumerate(owners) if previous.get(s) != o) == best


@given(scenarios(), st.lists(st.sampled_from(NAMES), min_size=1, max_size=10, unique=True))
def test_a_membership_change_moves_the_minimum_from_a_balanced_start(
    case: tuple[int, list[str], dict[int, str]], later: list[str]
) -> None:
    """From a balanced assignment, a change moves the departed members' shards plus the
    fewest needed to rebalance, and an unchanged membership moves nothing."""
    shards, members, previous = case
    before = dict(enumerate(assign(shards, members, previous)))
    assert assign(shards, members, before) == [before[s] for s in range(shards)]
    after = assign(shards, later, before)
    orphans = sum(1 for o in before.values() if o not in later)
    n_moved = len(moved(before, after))
    assert n_moved == minimum_moves(shards, later, before)
    q, r = divmod(shards, len(later))
    # Beyond the orphans, only the excess of survivors over their share moves.
    survivors = loads((o for o in before.values() if o in later), later)
    excess = sum(max(0, c - (q + 1)) for c in survivors.values())
    big = sum(1 for c in survivors.values() if c >= q + 1)
    assert n_moved == orphans + excess + max(0, big - r)


def test_deterministic_and_joins_move_only_to_newcomers() -> None:
    twenty = [f"member-{i:02}" for i in range(20)]
    before = dict(enumerate(assign(10_000, twenty[:18], {})))
    after = assign(10_000, twenty, before)
    assert after == assign(10_000, twenty, before)
    changed = moved(before, after)
    assert len(changed) == 1000  # 2 newcomers x 500
    assert {after[s] for s in changed} == {"member-18", "member-19"}
    assert spread(after, twenty) == 0
    # One member leaves: only its 500 shards move, spread over the other 19.
    later = assign(10_000, twenty[1:], dict(enumerate(after)))
    assert set(moved(dict(enumerate(after)), later)) == {
        s for s, o in enumerate(after) if o == "member-00"
    }
    assert spread(later, twenty[1:]) <= 1


def test_errors() -> None:
    with pytest.raises(ValueError, match="no members"):
        assign(3, [], {})
    with pytest.raises(ValueError, match="distinct"):
        assign(3, ["a", "a"], {})
    assert assign(0, [], {}) == []


@given(st.binary(max_size=5000), st.integers(1, 700))
def test_split_round_trips_with_bounded_parts(data: bytes, size: int) -> None:
    parts = split(data, size)
    assert b"".join(parts) == data
    assert all(len(p) <= size for p in parts)
    assert len(parts) == max(1, -(-len(data) // size))


@given(st.lists(st.integers(0, 1000), max_size=50), st.integers(1000, 5000))
def test_batches_keep_order_and_budget(sizes: list[int], budget: int) -> None:
    groups = batches(sizes, budget)
    assert [i for g in groups for i in g] == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in g) <= budget for g in groups)
    # Greedy: a batch closes only when the next operation would not fit.
    for g, nxt in itertools.pairwise(groups):
        assert sum(sizes[i] for i in g) + sizes[nxt[0]] > budget
    with pytest.raises(ValueError, match="over the"):
        batches([budget + 1], budget)


# -- hostile input (moved from test_hostile_input.py with the module) --------------------------

BAD_INPUT: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "assign shards str",
        lambda: assignment.assign("3", ["a"], {}),
        ConfigurationError,
        "shards",
    ),
    (
        "assign members str",
        lambda: assignment.assign(3, "ab", {}),
        ConfigurationError,
        "members",
    ),
    (
        "assign duplicate",
        lambda: assignment.assign(3, ["a", "a"], {}),
        ConfigurationError,
        "distinct",
    ),
    (
        "assign previous list",
        lambda: assignment.assign(3, ["a"], [0]),
        ConfigurationError,
        "previous",
    ),
    ("assign nobody", lambda: assignment.assign(3, [], {}), ConfigurationError, "no members"),
    (
        "moves negative",
        lambda: assignment.minimum_moves(-1, ["a"], {}),
        ConfigurationError,
        "shards",
    ),
    ("split size 0", lambda: assignment.split(b"abc", 0), ConfigurationError, "part size"),
    ("split str", lambda: assignment.split("abc"), ConfigurationError, "bytes"),
    ("batches budget 0", lambda: assignment.batches([1], 0), ConfigurationError, "budget"),
    (
        "batches negative size",
        lambda: assignment.batches([-1], 10),
        ConfigurationError,
        "bad size",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [pytest.param(call, error, fragment, id=name) for name, call, error, fragment in BAD_INPUT],
)
def test_bad_input_gets_a_typed_one_line_error(
    call: Callable[[], Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        call()
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)  # one line, whatever the input held


def test_assignment_ignores_junk_in_previous_read_back_from_zookeeper() -> None:
    previous: dict[Any, str] = {0: "gone", 1: "a", "x": "a", 99: "a", -1: "b", 2: 5}
    assert assignment.assign(3, ["a", "b"], previous) == ["a", "a", "b"]  # a keeps shard 1
