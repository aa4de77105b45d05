"""A planned switchover's request, as it is kept in ZooKeeper, and the pure decisions on it.

A switchover hands leadership to a chosen candidate, the leader's leader-only work drained
first (docs/switchover.md, R14 in docs/safety.md). The request is ONE ephemeral child of the
election path, :data:`REQUEST_NODE`, owned by the session of whoever asked: its fixed name
makes a second request at the same time a NodeExists, and a requester that dies takes its
request with it. No ``latch-`` in the name, so no recipe counts it as a candidate; Curator
sorts it after every node.

Its data is a small JSON object, moved from state to state by a version-checked setData,
each state by the one party that may move it::

    requested  (the requester)  -> accepted (the leader: it checked the target)
    accepted   (the leader)     -> ready    (the target, once directly behind the leader)
    ready      (the target)     -> draining (the leader: its work is being drained)
    requested  (the requester)  -> refused  (the leader, saying why)

then the leader deletes its own node, and the target, next in line, leads on the deletion
notice (R13). The leader and the candidate just behind it (the *deputy*) each hold one
``exists`` watch on the request; the deputy steps back (re-queues) when the target is behind
it, so candidates ahead of the target leave the way one by one, in order.

A candidate's *priority* is part of its node's name, ``_c_<guid>-p<N>-latch-<sequence>``
(priority 0 keeps Curator's plain name), so every look at the children tells everyone's.
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any

from zkelect._election.nodes import node_priority
from zkelect.config import MAX_PRIORITY

__all__ = [
    "MAX_PRIORITY",
    "REQUEST_NODE",
    "State",
    "SwitchoverRequest",
    "log_fields",
    "node_priority",
]

#: The request's name under the election path.
REQUEST_NODE = "zkelect-switchover"
_FORMAT = 1  # the "v" of the JSON: a reader skips a request of a later format


class State(str, enum.Enum):
    """Where a request stands (a ``str``: it is written in the JSON as its value)."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    READY = "ready"
    DRAINING = "draining"
    REFUSED = "refused"


@dataclass(frozen=True)
class SwitchoverRequest:
    """The request node's data. ``to`` and ``frm`` are node names under the election path.

    ``frm`` is the leader the requester saw; once accepted, the leader that accepted (the
    only one that acts on it from then on). ``requested_at`` and ``deadline`` are wall-clock
    times (``time.time()``): they are read by other processes, on other machines.
    """

    id: str
    state: State
    to: str
    to_id: str
    frm: str
    reason: str  # "operator" or "priority"
    by: str
    requested_at: float
    timeout: float
    deadline: float | None = None
    refusal: str | None = None
    retry_after: float | None = None

    @classmethod
    def new(
        cls, *, to: str, to_id: str, frm: str, reason: str, by: str, now: float, timeout: float
    ) -> SwitchoverRequest:
        return cls(uuid.uuid4().hex, State.REQUESTED, to, to_id, frm, reason, by, now, timeout)

    def moved(self, state: State, **changes: Any) -> SwitchoverRequest:
        """This request in ``state``, with ``changes`` to its other fields."""
        return replace(self, state=state, **changes)

    def encode(self) -> bytes:
        fields = asdict(self)
        fields["from"] = fields.pop("frm")
        fields["state"] = self.state.value
        return json.dumps({"v": _FORMAT, **fields}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> SwitchoverRequest | None:
        """The request in ``data``; None for anything else (garbage, a later format), which
        every candidate ignores: a bad request must never move leadership."""
        try:
            raw = json.loads(data.decode("utf-8"))
            if not isinstance(raw, dict) or raw.get("v") != _FORMAT:
                return None
            request = cls(
                id=_text(raw["id"]),
                state=State(raw["state"]),
                to=_text(raw["to"]),
                to_id=_text(raw["to_id"]),
                frm=_text(raw["from"]),
                reason=_text(raw["reason"]),
                by=_text(raw["by"]),
                requested_at=_number(raw["requested_at"]),
                timeout=_number(raw["timeout"]),
                deadline=_optional_number(raw.get("deadline")),
                refusal=None if raw.get("refusal") is None else _text(raw["refusal"]),
                retry_after=_optional_number(raw.get("retry_after")),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None
        return request

    def describe(self) -> str:
        """One line for logs and errors."""
        target = f"{self.to_id} ({self.to})" if self.to_id else self.to
        return f"switchover to {target}, {self.state.value}, asked by {self.by} ({self.reason})"


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(value)
    return float(value)


def _optional_number(value: object) -> float | None:
    return None if value is None else _number(value)


def log_fields(
    path: str, candidate: str, node: str | None, request: SwitchoverRequest | None
) -> dict[str, Any]:
    """The fields of a candidate's switchover log records (zkelect/_logs.py)."""
    fields: dict[str, Any] = {"election": path, "candidate": candidate, "node": f"{path}/{node}"}
    if request is not None:
        fields["target"] = f"{path}/{request.to}"
    return fields
