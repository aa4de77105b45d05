"""Sticky, balanced assignment of numbered shards to members, and splitting a large
payload into ZooKeeper-sized pieces. Pure logic, no I/O.

``assign(shards, members, previous)`` gives every shard ``0 .. shards-1`` an owner among
``members`` so that:

* **balanced**: member loads differ by at most one (``max - min <= 1``);
* **sticky**: the fewest shards change owner. A shard moves only if its previous owner is
  gone (or it had none), or its owner holds more than its fair share. The number moved is
  exactly :func:`minimum_moves` (the lower bound for any balanced assignment).

Why it is minimal: with ``q, r = divmod(shards, n)`` every balanced assignment gives ``r``
members ``q + 1`` shards and the rest ``q``. A member that keeps ``c`` of its shards under a
target ``t`` keeps at most ``min(c, t)``; giving the ``r`` larger targets to the members that
hold the most maximises the total kept, and this function keeps exactly that many.

``split(data, size)`` and ``batches(sizes, budget)`` cut a payload into parts and group the
parts into multi-op requests that stay under ZooKeeper's request limit (``jute.maxbuffer``,
1 MiB by default: a larger request makes the server drop the connection).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from zkelect.errors import ConfigurationError

__all__ = [
    "DEFAULT_PART_BYTES",
    "DEFAULT_REQUEST_BUDGET",
    "OP_OVERHEAD_BYTES",
    "assign",
    "batches",
    "loads",
    "minimum_moves",
    "moved",
    "split",
]

#: Largest znode value written per part (well under the 1 MiB request limit).
DEFAULT_PART_BYTES = 512 * 1024
#: Bytes one multi-op request may carry (values + paths + per-op overhead); ZooKeeper's
#: default ``jute.maxbuffer`` is 1 MiB (1,048,575 bytes), leave room for headers.
DEFAULT_REQUEST_BUDGET = 900 * 1024
#: A generous estimate of the framing one operation adds to a multi request (type, flags,
#: ACL, version, lengths), on top of its path and value.
OP_OVERHEAD_BYTES = 64


def _check(shards: int, members: Sequence[str], previous: Mapping[int, str] | None = None) -> None:
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 0:
        raise ConfigurationError(f"shards must be an int >= 0, got {shards!r}")
    if isinstance(members, (str, bytes)) or not all(isinstance(m, str) for m in members):
        raise ConfigurationError(f"members must be a sequence of str, got {members!r}")
    if len(set(members)) != len(members):
        raise ConfigurationError(f"members must be distinct, got {list(members)!r}")
    if previous is not None and not isinstance(previous, Mapping):
        raise ConfigurationError(
            f"previous must be a mapping of shard number to owner, got {previous!r}"
        )


def loads(owners: Iterable[str], members: Iterable[str] = ()) -> dict[str, int]:
    """Shards per member (members listed in ``members`` with none count 0)."""
    counts = dict.fromkeys(members, 0)
    for owner in owners:
        counts[owner] = counts.get(owner, 0) + 1
    return counts


def _kept_by_member(
    shards: int, members: Sequence[str], previous: Mapping[int, str]
) -> dict[str, list[int]]:
    live = set(members)
    held: dict[str, list[int]] = {m: [] for m in members}
    for shard, owner in previous.items():
        # Anything else (a shard that is not an int, an owner that is not a member) is
        # ignored like an out-of-range shard: it is read back from ZooKeeper, so it may be junk.
        if isinstance(shard, int) and 0 <= shard < shards and owner in live:
            held[owner].append(shard)
    return held


def _targets(
    shards: int, members: Sequence[str], held: Mapping[str, Sequence[int]]
) -> dict[str, int]:
    """q + 1 for the r members holding the most (ties by name), q for the others."""
    q, r = divmod(shards, len(members))
    ranked = sorted(members, key=lambda m: (-len(held[m]), m))
    return {m: q + (1 if i < r else 0) for i, m in enumerate(ranked)}


def assign(shards: int, members: Sequence[str], previous: Mapping[int, str]) -> list[str]:
    """The owner of each shard ``0 .. shards-1``: balanced, and sticky to ``previous``.

    ``previous`` maps shard -> owner (shards out of range and owners not in ``members``
    are ignored). Deterministic: the same inputs give the same result. Raises
    ConfigurationError (a ValueError)
    if ``members`` is empty while ``shards > 0``, or lists a member twice.
    """
    _check(shards, members, previous)
    if shards == 0:
        return []
    if not members:
        raise ConfigurationError("cannot assign shards to no members")
    held = _kept_by_member(shards, members, previous)
    target = _targets(shards, members, held)
    owners: list[str | None] = [None] * shards
    for member in members:
        for shard in sorted(held[member])[: target[member]]:
            owners[shard] = member
    free = iter([s for s in range(shards) if owners[s] is None])
    for member in sorted(members):
        for _ in range(target[member] - min(len(held[member]), target[member])):
            owners[next(free)] = member
    result = [o for o in owners if o is not None]
    if len(result) != shards:  # pragma: no cover - the counts above always add up
        raise AssertionError("assignment left shards without an owner")
    return result


def minimum_moves(shards: int, members: Sequence[str], previous: Mapping[int, str]) -> int:
    """The fewest shards any balanced assignment must move away from ``previous``.

    Counted independently of :func:`assign`: shards with no live previous owner, plus each
    member's excess over ``q + 1``, plus one each for the members holding ``q + 1`` or
    more beyond the ``r`` that may keep ``q + 1``.
    """
    _check(shards, members, previous)
    if shards == 0:
        return 0
    if not members:
        raise ConfigurationError("cannot assign shards to no members")
    held = _kept_by_member(shards, members, previous)
    q, r = divmod(shards, len(members))
    orphans = shards - sum(len(h) for h in held.values())
    over = sum(max(0, len(h) - (q + 1)) for h in held.values())
    big = sum(1 for h in held.values() if len(h) >= q + 1)
    return orphans + over + max(0, big - r)


def moved(previous: Mapping[int, str], owners: Sequence[str]) -> list[int]:
    """Shards whose owner differs from ``previous`` (new shards count as moved)."""
    return [s for s, owner in enumerate(owners) if previous.get(s) != owner]


def split(data: bytes, size: int = DEFAULT_PART_BYTES) -> list[bytes]:
    """``data`` cut into parts of at most ``size`` bytes (one empty part for empty data)."""
    if not isinstance(data, bytes):
        raise ConfigurationError(f"data must be bytes, got {type(data).__name__}")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigurationError(f"part size must be an int > 0, got {size!r}")
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def batches(sizes: Sequence[int], budget: int = DEFAULT_REQUEST_BUDGET) -> list[list[int]]:
    """Group operations (their estimated request bytes, in order) into consecutive batches
    whose total stays within ``budget``. Raises ConfigurationError (a ValueError) for an
    operation over budget, a negative size or a budget below 1."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigurationError(f"budget must be an int >= 1 (bytes), got {budget!r}")
    groups: list[list[int]] = []
    total = budget + 1
    for index, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigurationError(f"operation {index} has a bad size {size!r} (bytes >= 0)")
        if size > budget:
            raise ConfigurationError(
                f"operation {index} needs {size} bytes, over the {budget} budget"
            )
        if total + size > budget:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    return groups
