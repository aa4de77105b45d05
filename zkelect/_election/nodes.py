"""Election nodes: the one contender type, zkelect's node names, and election order. Pure logic.

:class:`Contender` is every parsed child of an election path, whichever recipe made it
(contenders.py parses the other recipes' names), and, once read (reader.py), its data and
stat too; the public :class:`LeaderInfo` is built from one.

Node names follow Apache Curator LeaderLatch so that Java services on Curator and
Python services on zkelect can share one election path::

    _c_<uuid4 with dashes>-latch-<sequence, at least 10 digits>

ZooKeeper appends the sequence: the parent's child counter, a *signed* 32-bit
integer printed with ``%010d``. It wraps from 2147483647 to -2147483648, after
which string order (what Curator and kazoo use) puts the newest node first. We
parse it as an integer and order with serial-number arithmetic (RFC 1982), which
is correct as long as the live candidates span fewer than 2**31 sequence numbers.
:func:`sequence_wrap` tells when the two orders disagree about who leads, which is when a
mixed zkelect/Curator election can have two leaders (docs/safety.md).
"""

from __future__ import annotations

import enum
import itertools
import operator
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from zkelect.config import MAX_PRIORITY

__all__ = [
    "LATCH_MARKER",
    "LEADER_MARKER_PREFIX",
    "Contender",
    "ContenderKind",
    "LeaderInfo",
    "ParsedNames",
    "SequenceWrap",
    "Sequenced",
    "election_order",
    "leader_marker",
    "new_node_prefix",
    "node_priority",
    "parse_node",
    "parse_sequence",
    "predecessor_of",
    "protected_guid",
    "sequence_counter",
    "sequence_wrap",
    "serial_order",
]

LATCH_MARKER = "-latch-"
#: A leader's marker child (R13): ``zkelect-leader-<guid>-<sequence>`` beside its node. No
#: ``latch-`` in it, so no recipe parses it as a candidate; Curator sorts it after every node.
LEADER_MARKER_PREFIX = "zkelect-leader-"
_PROTECTED_PREFIX = "_c_"
_SEQ_SPACE = 1 << 32
_HALF_SPACE = 1 << 31

_MARKER = "latch-"
_BY_SEQUENCE_THEN_NAME = operator.attrgetter("sequence", "name")
_GUID_LENGTH = 36
_DIGITS = "0123456789"
_SAFETY_DOC = "docs/safety.md, 'Ordering across the sequence wrap'"


class Sequenced(Protocol):
    """Anything ordered by :func:`serial_order`: a child name and its parsed sequence.

    A protocol rather than :class:`Contender` itself, so that :func:`serial_order` and
    :func:`sequence_wrap` say exactly what they read.
    """

    @property
    def name(self) -> str: ...

    @property
    def sequence(self) -> int: ...


S = TypeVar("S", bound=Sequenced)


class ContenderKind(str, enum.Enum):
    """Which recipe made a node (a ``str`` so it prints and serialises as its value)."""

    LATCH = "latch"  # zkelect, Curator LeaderLatch
    CURATOR_LOCK = "curator_lock"  # Curator LeaderSelector / InterProcessMutex
    KAZOO_LOCK = "kazoo_lock"  # kazoo Lock / Election / WriteLock
    KAZOO_READ_LOCK = "kazoo_read_lock"  # kazoo ReadLock


class Contender(NamedTuple):
    """One child of an election path that some recipe counts as a contender.

    From the name alone (:func:`parse_node`, contenders.parse_contender): ``name``,
    ``sequence`` (signed 32-bit), ``kind`` and ``guid``, the creator's per-attempt random id
    (Curator's protection UUID, kazoo's uuid4 hex) when the name carries one, else None.
    Once the node was read (reader.py), also its ``data`` (None until then), ``epoch`` (the
    node's czxid: the leader's fencing epoch, R5), ``session_id`` (the session that owns
    the ephemeral node), ``ctime_ms`` (when it was created: when its candidate joined) and
    ``version`` (of its data, for a checked delete).

    A tuple: thousands are parsed per change of an election.
    """

    name: str
    sequence: int
    kind: ContenderKind
    guid: str | None
    data: bytes | None = None
    epoch: int = 0
    session_id: int = 0
    ctime_ms: int = 0
    version: int = 0

    @property
    def candidate_id(self) -> str:
        """The node's data as text: the candidate's id ("" when not read, or empty)."""
        return (self.data or b"").decode("utf-8", errors="replace")


_LATCH = ContenderKind.LATCH  # a global: an enum member's lookup costs more (hot path)
_NOT_READ = Contender("", 0, _LATCH, None)[4:]  # the defaults of the fields read later


def _unread(name: str, sequence: int, kind: ContenderKind, guid: str | None) -> Contender:
    """``Contender(name, sequence, kind, guid)``, built as a plain tuple: thousands are
    parsed at every change of an election, and the named tuple's own constructor (a Python
    function filling in the defaults) made ordering 10,000 names 15% slower."""
    return tuple.__new__(Contender, (name, sequence, kind, guid, *_NOT_READ))


def new_node_prefix(guid: str | None = None, priority: int = 0) -> str:
    """The name to create (ZooKeeper appends the sequence): ``_c_<guid>-latch-``, or
    ``_c_<guid>-p<priority>-latch-`` for a candidate with a priority (switchover.py):
    Curator orders by what follows the last ``latch-``, so both sort alike.

    The GUID lets a candidate find its own node again after a create whose reply
    was lost (R1): one GUID per creation attempt, reused across its retries.
    """
    middle = f"-p{priority}" if priority else ""
    return f"{_PROTECTED_PREFIX}{guid or uuid.uuid4()}{middle}{LATCH_MARKER}"


def parse_sequence(text: str) -> int | None:
    """ZooKeeper's sequence suffix as a signed 32-bit integer; None if ``text`` is not one.

    The server prints the parent's signed counter with ``%010d``: ten digits, or a ``-``
    and nine digits after the wrap. Up to ten digits after an optional ``-`` are accepted
    (so hand-made names with fewer digits still parse); anything else is not a sequence.
    """
    body = text[1:] if text.startswith("-") else text
    if not (0 < len(body) <= 10 and body.isascii() and body.isdigit()):
        return None
    sequence = int(text)
    if not -_HALF_SPACE <= sequence < _HALF_SPACE:
        return None
    return sequence


def protected_guid(head: str) -> str | None:
    """The GUID of a Curator-style protected name's head ``_c_<36-char guid>-...``, or None.

    Shared by every recipe that uses Curator's ``withProtection()`` naming (LeaderLatch,
    LeaderSelector/InterProcessMutex), so a node is found again after a lost create reply.
    """
    start = len(_PROTECTED_PREFIX)
    if (
        head.startswith(_PROTECTED_PREFIX)
        and len(head) >= start + _GUID_LENGTH + 1
        and head[start + _GUID_LENGTH] == "-"
    ):
        return head[start : start + _GUID_LENGTH]
    return None


def parse_node(name: str) -> Contender | None:
    """Parse a child name; None for children that are not zkelect (LeaderLatch) nodes.

    Accepted: ``[_c_<36-char guid>-]<anything>latch-<sequence>`` where the sequence is
    ZooKeeper's ``%010d`` of a signed 32-bit integer (so ``-`` and up to 10 digits).
    """
    head, marker, digits = name.rpartition(_MARKER)
    if not marker:
        return None
    sequence = parse_sequence(digits)
    if sequence is None:
        return None
    return _unread(name, sequence, _LATCH, protected_guid(head))


def leader_marker(name: str) -> str | None:
    """The name of the leader marker of zkelect's candidate node ``name`` (R13), or None
    for a name zkelect does not make (only zkelect's own candidates create markers)."""
    head, marker, digits = name.rpartition(_MARKER)
    guid = protected_guid(head)
    if not marker or guid is None or not _zkelect_head(head, guid):
        return None
    if parse_sequence(digits) is None:
        return None
    return f"{LEADER_MARKER_PREFIX}{guid}-{digits}"


def node_priority(name: str) -> int:
    """The priority a node's name carries (new_node_prefix): 0 for a name without one
    (Curator's, kazoo's, zkelect's at priority 0, anything hand-made)."""
    head = name.rpartition(_MARKER)[0]
    guid = protected_guid(head)
    if guid is None or not _zkelect_head(head, guid):
        return 0
    middle = head[len(_PROTECTED_PREFIX) + len(guid) + 1 : -1]  # "p<N>" or ""
    if not middle:
        return 0
    value = int(middle[1:])
    return value if -MAX_PRIORITY <= value <= MAX_PRIORITY else 0


def _zkelect_head(head: str, guid: str) -> bool:
    """Whether ``head`` (a name before ``latch-``) is one zkelect makes: ``_c_<guid>-``, or
    ``_c_<guid>-p<priority>-`` (new_node_prefix)."""
    plain = f"{_PROTECTED_PREFIX}{guid}-"
    if head == plain:
        return True
    middle = head[len(plain) :]
    number = middle[1:-1].removeprefix("-")
    return (
        head.startswith(plain)
        and middle.startswith("p")
        and middle.endswith("-")
        and number.isascii()
        and number.isdigit()
    )


class ParsedNames:
    """:func:`election_order` with each name parsed once per election (names never change):
    a look at 1,000 children then costs a sort, not 1,000 parses. Pruned to the children
    of the latest look whenever it holds twice as many names as that."""

    def __init__(self) -> None:
        self._parsed: dict[str, Contender | None] = {}

    def order(self, children: list[str]) -> list[Contender]:
        parsed = self._parsed
        if len(parsed) > 2 * len(children) + 64:
            parsed = self._parsed = {name: parsed.get(name) for name in children if name in parsed}
        nodes = []
        for name in children:
            try:
                node = parsed[name]
            except KeyError:
                node = parsed[name] = parse_node(name)
            if node is not None:
                nodes.append(node)
        return serial_order(nodes)


def election_order(children: Iterable[str]) -> list[Contender]:
    """Candidate nodes among ``children``, first (the leader) to last.

    Foreign children are ignored; the order is :func:`serial_order`'s.
    """
    return serial_order([node for node in map(parse_node, children) if node is not None])


def serial_order(nodes: Iterable[S]) -> list[S]:
    """``nodes`` from oldest to newest by their sequence numbers, correct across the wrap.

    One function for every recipe's nodes (ours, Curator's, kazoo's), so that an observer
    and a candidate can never disagree about who leads. Serial-number arithmetic: we find
    the widest gap on the 32-bit circle of sequence numbers; the node just after it is
    the oldest. Correct while the nodes span fewer than 2**31 sequence numbers. Ties
    (impossible within one parent) fall back to the name.
    """
    items = list(nodes)
    if len(items) < 2:
        return items
    sequences = [node.sequence for node in items]
    if max(sequences) - min(sequences) < _HALF_SPACE:
        # No wrap among them (the common case): signed order is creation order.
        return sorted(items, key=_BY_SEQUENCE_THEN_NAME)
    points = sorted({sequence % _SEQ_SPACE for sequence in sequences})
    start = points[0]
    widest = (points[0] + _SEQ_SPACE) - points[-1]  # the gap that wraps around
    for before, after in itertools.pairwise(points):
        if after - before > widest:
            widest, start = after - before, after
    return sorted(items, key=lambda n: ((n.sequence % _SEQ_SPACE - start) % _SEQ_SPACE, n.name))


class SequenceWrap(NamedTuple):
    """What :func:`sequence_wrap` found among an election's contenders.

    ``wrapped``: a contender's sequence number is negative, so the parent's counter has
    passed 2**31 - 1. ``first``: the node zkelect's order elects; ``string_first``: the node
    that Curator's and kazoo's order (the sequence's text compared as a string) puts first.
    Both are None when there is no contender.
    """

    wrapped: bool
    first: str | None
    string_first: str | None

    @property
    def orders_differ(self) -> bool:
        """Whether Curator/kazoo elect another node than zkelect does, right now."""
        return self.first != self.string_first

    def warning(self, path: str) -> str | None:
        """The one-line warning every reporter prints (status, the exporter, candidates'
        logs), or None when there is nothing to say."""
        if self.orders_differ:
            cause = (
                "ZooKeeper's sequence counter has wrapped"
                if self.wrapped
                else "sequence numbers ZooKeeper did not print"
            )
            return (
                f"{path}: {cause}: string order (Curator's, kazoo's) puts {self.string_first} "
                f"first where zkelect elects {self.first}, so a mixed zkelect/Curator election "
                f"can have two leaders, or none, now; recreate the election path ({_SAFETY_DOC})"
            )
        if self.wrapped:
            return (
                f"{path}: ZooKeeper's sequence counter has wrapped (a candidate's sequence "
                "number is negative): Curator and kazoo order such nodes differently from "
                "zkelect, so a mixed zkelect/Curator election can get two leaders, or none, at "
                f"any change; recreate the election path ({_SAFETY_DOC})"
            )
        return None


def sequence_wrap(nodes: Iterable[Sequenced]) -> SequenceWrap:
    """Whether ``nodes`` (an election's contenders, in any order) show a wrapped counter,
    and which node each order puts first.

    Curator (``LockInternals.getSortedChildren`` with ``standardFixForSorting``) and kazoo
    (``Lock``) sort the text after the recipe's marker as a string: ``-`` sorts before every
    digit, so every negative sequence comes before every positive one, and among negatives
    printed with as many digits the newest (the closest to zero) comes first. zkelect uses
    :func:`serial_order`. Both agree as long as no sequence is negative. O(n log n): the
    serial order is computed here, so callers need not pass an ordered list.
    """
    items = list(nodes)
    if not items:
        return SequenceWrap(False, None, None)
    return SequenceWrap(
        wrapped=any(node.sequence < 0 for node in items),
        first=serial_order(items)[0].name,
        string_first=min(items, key=_string_key).name,
    )


def _string_key(node: Sequenced) -> tuple[str, str]:
    """Curator's and kazoo's sort key: the sequence's text as written in the name (a
    hand-made ``latch-7`` sorts as ``7``); the name breaks ties, as the server's listing
    order would."""
    name = node.name
    text = name[len(name.rstrip(_DIGITS)) :]
    # The marker ends in '-' too, so the sign is read from the parsed value, not the name.
    return ("-" + text if node.sequence < 0 else text, name)


def sequence_counter(cversion: int, num_children: int, newest: int | None) -> int | None:
    """The sequence number ZooKeeper will give the parent's next sequential child; None when
    it cannot be told.

    ZooKeeper's counter is the parent's internal cversion, which counts child *creates*;
    the stat it sends reports ``2 * creates - numChildren`` instead (``DataNode.copyStat``:
    the changes to the children, a create and a delete for each child that is gone and a
    create for each one still there), computed in 32-bit arithmetic (checked on ZooKeeper
    3.8 by tests/integration/test_cli_doctor.py). So ``cversion`` and ``num_children``, from
    the parent's stat, give the counter modulo 2**31 only; ``newest``, the sequence of the
    newest child still present (the last in :func:`serial_order`), gives the rest: the
    counter is the one of the two readings just after it. Without a child (``newest`` None)
    the two readings cannot be told apart.
    """
    if newest is None:
        return None
    low = ((cversion + num_children) % _SEQ_SPACE) // 2  # the counter modulo 2**31
    # The two readings are 2**31 apart: exactly one is at most 2**31 numbers after ``newest``.
    return low if 0 < (low - newest) % _SEQ_SPACE <= _HALF_SPACE else low - _HALF_SPACE


def predecessor_of(order: Sequence[Contender], name: str) -> Contender | None:
    """The node just before ``name`` in election order; None if it leads or is absent."""
    for index, node in enumerate(order):
        if node.name == name:
            return order[index - 1] if index > 0 else None
    return None


@dataclass(frozen=True)
class LeaderInfo:
    """A contender as read from ZooKeeper: who, which node, which session, which epoch.

    ``epoch`` is the czxid of the node: for the leader, its fencing epoch (R5).
    """

    candidate_id: str
    epoch: int
    node: str
    session_id: int
    sequence: int

    @classmethod
    def of(cls, contender: Contender) -> LeaderInfo:
        """The public answer for a contender read by reader.py."""
        return cls(
            candidate_id=contender.candidate_id,
            epoch=contender.epoch,
            node=contender.name,
            session_id=contender.session_id,
            sequence=contender.sequence,
        )
