"""How ``zkelect status``, ``watch``, ``resign`` and ``switchover`` show an election read by
reader.py, and a pending switchover's request (zkelect/_election/switchover.py).

The JSON shapes (documented in each command's help and in docs/cli-inspect.md) and the human
lines and tables; no I/O but writing to stdout.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from zkelect._election.nodes import Contender, ContenderKind, LeaderInfo, SequenceWrap
from zkelect._election.reader import Elected, Snapshot
from zkelect._election.switchover import REQUEST_NODE, State, SwitchoverRequest, node_priority
from zkelect.ops.cli._where import Located, MemberAnswer, Whereabouts
from zkelect.ops.cli.common import echo_json
from zkelect.ops.json_ids import epoch_fields, session_text

__all__ = [
    "KIND_LABEL",
    "PendingSwitchover",
    "ago",
    "candidate_json",
    "describe",
    "elected_text",
    "hex_id",
    "host_text",
    "info_json",
    "leader_json",
    "leader_session_note",
    "pending_json",
    "pending_text",
    "print_change",
    "print_status",
    "print_switchover_change",
    "request_json",
    "shown",
    "status_json",
]

_MAX_SHOWN = 64  # characters of a candidate id in human output (JSON has all of it)
_MAX_IGNORED_SHOWN = 5  # names of ignored children in human output (JSON has all of them)
_MAX_REASON = 200  # characters of a refusal's reason in human output

KIND_LABEL = {
    ContenderKind.LATCH: "zkelect / Curator LeaderLatch",
    ContenderKind.CURATOR_LOCK: "Curator LeaderSelector / lock",
    ContenderKind.KAZOO_LOCK: "kazoo Election / Lock",
    ContenderKind.KAZOO_READ_LOCK: "kazoo ReadLock",
}


# -- JSON ----------------------------------------------------------------------------------
# Session ids as "0x…" and epochs as decimal strings with "epoch_hex" beside them
# (zkelect/ops/json_ids.py): JSON readers that use doubles (jq, JavaScript) round 64-bit ids.


def leader_json(c: Contender) -> dict[str, Any]:
    """The ``leader`` object of ``status --json`` and ``watch --json``."""
    return {
        "id": c.candidate_id,
        **epoch_fields(c.epoch),
        "node": c.name,
        "session": session_text(c.session_id),
        "kind": c.kind.value,
    }


def info_json(info: LeaderInfo) -> dict[str, Any]:
    """A candidate as the library answers it (``switchover --json``'s leader and previous)."""
    return {
        "id": info.candidate_id,
        **epoch_fields(info.epoch),
        "node": info.node,
        "session": session_text(info.session_id),
        "sequence": info.sequence,
        "priority": node_priority(info.node),
    }


def _located_json(located: Located | None) -> dict[str, Any]:
    if located is None:
        return {"host": None, "client": None, "member": None, "session_connected": None}
    return {
        "host": located.host,
        "client": located.client,
        "member": located.member,
        "session_connected": located.connected,
    }


def candidate_json(c: Contender, now_ms: int, located: Located | None = None) -> dict[str, Any]:
    return {
        "id": c.candidate_id,
        "node": c.name,
        "sequence": c.sequence,
        "session": session_text(c.session_id),
        "kind": c.kind.value,
        **epoch_fields(c.epoch),
        "priority": node_priority(c.name),
        "joined_ms_ago": max(0, now_ms - c.ctime_ms),
        **_located_json(located),
    }


def _elected_json(elected: Elected | None, now_ms: int) -> dict[str, Any]:
    known = elected is not None and elected.ctime_ms is not None
    return {
        "elected_ms_ago": max(0, now_ms - elected.ctime_ms)
        if elected is not None and elected.ctime_ms is not None
        else None,
        "elected_known": known,
        "elected_from": elected.source if elected is not None else "unknown",
    }


def status_json(
    snap: Snapshot,
    now_ms: int,
    elected: Elected | None = None,
    where: Whereabouts | None = None,
    pending: PendingSwitchover | None = None,
) -> dict[str, Any]:
    """``status --json``: the whole snapshot, when the leader was elected, where each
    candidate's session is connected (``where``: the members' ``cons`` answers), and the
    pending switchover (``pending``; null when there is none)."""
    leader = snap.leader
    locate = where.locate if where is not None else (lambda _sid: None)
    return {
        "path": snap.path,
        "leader": None
        if leader is None
        else {
            **leader_json(leader),
            "priority": node_priority(leader.name),
            "joined_ms_ago": max(0, now_ms - leader.ctime_ms),
            **_elected_json(elected, now_ms),
            **_located_json(locate(leader.session_id)),
        },
        "candidates": [candidate_json(c, now_ms, locate(c.session_id)) for c in snap.contenders],
        "switchover": None if pending is None else pending_json(pending, now_ms),
        "exists": snap.exists,
        "ignored": list(snap.ignored),
        "sequence_wrap": _wrap_json(snap.sequence_wrap),
        "members": [] if where is None else [_member_json(m) for m in where.members],
    }


def _member_json(answer: MemberAnswer) -> dict[str, Any]:
    return {"member": answer.member, "cons": answer.status, "detail": answer.detail or None}


def _wrap_json(wrap: SequenceWrap) -> dict[str, Any]:
    return {
        "wrapped": wrap.wrapped,
        "orders_differ": wrap.orders_differ,
        "string_order_first": wrap.string_first,
    }


# -- a pending switchover ------------------------------------------------------------------


@dataclass(frozen=True)
class PendingSwitchover:
    """A switchover's request node (``PATH/zkelect-switchover``) as read: its ``request``
    (None when the data is no request zkelect can read, which still makes every switchover
    of the path "in progress" until it goes), the ``session_id`` that owns it (0: a
    persistent node, made by hand) and when it was created (``ctime_ms``, server clock)."""

    request: SwitchoverRequest | None
    session_id: int
    ctime_ms: int

    @property
    def state_name(self) -> str:
        """The request's state, or "unreadable"."""
        return "unreadable" if self.request is None else self.request.state.value

    @property
    def key(self) -> tuple[str, str]:
        """What ``watch`` compares: a line is printed when this changes."""
        if self.request is None:
            return ("unreadable", str(self.ctime_ms))
        return (self.request.id, self.request.state.value)


_REQUEST_KEYS = (
    "id", "state", "to", "to_id", "from", "reason", "by", "requested_at", "timeout",
    "deadline", "refusal", "retry_after",
)  # fmt: skip


def request_json(request: SwitchoverRequest) -> dict[str, Any]:
    """A decoded request as JSON (the keys of its node's data; times are wall-clock
    seconds, ``timeout`` and ``retry_after`` seconds)."""
    values = (
        request.id, request.state.value, request.to, request.to_id, request.frm,
        request.reason, request.by, request.requested_at, request.timeout, request.deadline,
        request.refusal, request.retry_after,
    )  # fmt: skip
    return dict(zip(_REQUEST_KEYS, values, strict=True))


def pending_json(pending: PendingSwitchover, now_ms: int) -> dict[str, Any]:
    """``status --json``'s ``switchover``: the request's keys (all null when ``readable`` is
    false), the ``session`` that owns its node and how long ago it was made."""
    request = pending.request
    return {
        **(request_json(request) if request is not None else dict.fromkeys(_REQUEST_KEYS)),
        "readable": request is not None,
        "session": session_text(pending.session_id),
        "requested_ms_ago": max(0, now_ms - pending.ctime_ms),
    }


def pending_text(pending: PendingSwitchover, now_ms: int) -> str:
    """``status``'s line: "switchover pending: to ID (NODE), STATE, asked by BY AGE ago"."""
    asked = ago(now_ms - pending.ctime_ms)
    request = pending.request
    if request is None:
        return (
            f"switchover pending: unreadable: {REQUEST_NODE} holds no request zkelect can "
            f"read (session {hex_id(pending.session_id)}, made {asked}); every switchover is "
            "refused as in progress until it goes"
        )
    return (
        f"switchover pending: to {shown(request.to_id)} ({request.to}), "
        f"{_state_text(request, now_ms)}, asked by {_by_text(request)} {asked}"
    )


def _state_text(request: SwitchoverRequest, now_ms: int) -> str:
    """The state, with the drain's deadline or the refusal's reason."""
    if request.state is State.DRAINING and request.deadline is not None:
        left = request.deadline - now_ms / 1000
        if left >= 0:
            return f"draining (deadline in {left:.1f}s)"
        return f"draining (deadline passed {-left:.1f}s ago)"
    if request.state is State.REFUSED:
        retry = f"; retry after {request.retry_after:g}s" if request.retry_after else ""
        return f"refused ({shown(request.refusal or 'no reason given', _MAX_REASON)}{retry})"
    return str(request.state.value)


def _by_text(request: SwitchoverRequest) -> str:
    reason = "" if request.reason == "operator" else f" ({shown(request.reason)})"
    return f"{shown(request.by)}{reason}"


# -- words -----------------------------------------------------------------------------------


def hex_id(value: int) -> str:
    return f"0x{value:x}"


def ago(ms: int) -> str:
    seconds = max(0, ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m ago"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h ago"


def shown(candidate_id: str, limit: int = _MAX_SHOWN) -> str:
    """A candidate id (or other text read from ZooKeeper) for human eyes: node data may be
    anything, up to a megabyte."""
    if not candidate_id:
        return "(no id)"
    text = "".join(ch if ch.isprintable() else "?" for ch in candidate_id[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(c: Contender | None) -> str:
    if c is None:
        return "none"
    return f"{shown(c.candidate_id)} (epoch {hex_id(c.epoch)}, node {c.name})"


# -- status ----------------------------------------------------------------------------------


def _console() -> Console:
    # Not a terminal (a pipe, a log): no colours, and wide enough not to fold node names.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def leader_session_note(snap: Snapshot, where: Whereabouts) -> str | None:
    """The stderr line when the leader's session is not connected (a warning) or nobody
    can tell (a note); None when it is connected, or there is no leader."""
    leader = snap.leader
    if leader is None:
        return None
    located = where.locate(leader.session_id)
    if located.connected:
        return None
    session = hex_id(leader.session_id)
    if located.connected is False:
        return (
            f"warning: the leader's session {session} is not connected to any member: a "
            "SIGKILLed or partitioned leader keeps its node until its session expires"
        )
    return f"note: unknown whether the leader's session {session} is connected: {located.reason}"


def elected_text(leader: Contender, elected: Elected, now_ms: int) -> str:
    """When the leader was elected, in words (and when it joined, where that differs)."""
    joined = ago(now_ms - leader.ctime_ms)
    if elected.ctime_ms is None:
        return (
            f"unknown (joined {joined}; {KIND_LABEL[leader.kind]} leaves no trace of when "
            "its leader was elected)"
        )
    if elected.source == "join":
        return f"{ago(now_ms - elected.ctime_ms)} (at its join)"
    return f"{ago(now_ms - elected.ctime_ms)} (joined {joined})"


def host_text(leader: Contender, located: Located) -> str:
    session = hex_id(leader.session_id)
    if located.connected:
        return f"{located.host}, session {session} connected to member {located.member}"
    if located.connected is False:
        return f"unknown: session {session} not connected to any member"
    return f"unknown ({located.reason})"


def print_status(
    snap: Snapshot,
    now_ms: int,
    elected: Elected | None,
    where: Whereabouts,
    *,
    wide: bool = False,
    pending: PendingSwitchover | None = None,
) -> None:
    """The summary (who leads, on which host, since when, epoch, how many candidates,
    whether its session is connected, a pending switchover), then the candidates table
    (``wide``: with each candidate's priority, host and member)."""
    console = _console()
    leader = snap.leader
    if leader is None:
        console.print(f"{snap.path}: no leader, {len(snap.contenders)} candidates", markup=False)
        if pending is not None:
            console.print(Text(f"  {pending_text(pending, now_ms)}"))
        _print_ignored(console, snap)
        return
    kinds = sorted({KIND_LABEL[c.kind] for c in snap.contenders})
    count = len(snap.contenders)
    heading = Text(f"{snap.path}: leader ")
    heading.append(shown(leader.candidate_id), style="bold")
    heading.append(
        f", epoch {hex_id(leader.epoch)}, {count} candidate{'s' if count != 1 else ''} "
        f"({', '.join(kinds)})"
    )
    console.print(heading)
    elected = elected or Elected(None, "unknown")
    console.print(Text(f"  elected: {elected_text(leader, elected, now_ms)}"))
    console.print(Text(f"  host:    {host_text(leader, where.locate(leader.session_id))}"))
    if pending is not None:
        console.print(Text(f"  {pending_text(pending, now_ms)}"))
    console.print(_table(snap, now_ms, where if wide else None))
    _print_ignored(console, snap)


def _table(snap: Snapshot, now_ms: int, where: Whereabouts | None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    columns = ["#", "id", "role", "czxid", "session", "joined", "node"]
    if where is not None:
        columns[5:5] = ["host", "member", "priority"]
    for column in columns:
        table.add_column(column, no_wrap=True)
    for position, c in enumerate(snap.contenders):
        cells = [
            str(position + 1),
            shown(c.candidate_id),
            "leader" if position == 0 else "waiting",
            hex_id(c.epoch),
            hex_id(c.session_id),
            ago(now_ms - c.ctime_ms),
            c.name,
        ]
        if where is not None:
            cells[5:5] = [*_where_cells(where.locate(c.session_id)), str(node_priority(c.name))]
        table.add_row(*(Text(cell) for cell in cells))  # Text: ids are data, not markup
    return table


def _where_cells(located: Located) -> list[str]:
    """host and member; "-" for a session no member serves, "?" when nobody can tell."""
    if located.connected:
        return [located.host or "?", located.member or "?"]
    mark = "-" if located.connected is False else "?"
    return [mark, mark]


def _print_ignored(console: Console, snap: Snapshot) -> None:
    if not snap.ignored:
        return
    names = ", ".join(shown(name) for name in snap.ignored[:_MAX_IGNORED_SHOWN])
    more = len(snap.ignored) - _MAX_IGNORED_SHOWN
    console.print(
        Text(
            f"{len(snap.ignored)} other node{'s' if len(snap.ignored) != 1 else ''} ignored "
            f"(no recipe's candidates): {names}" + (f" and {more} more" if more > 0 else "")
        )
    )


# -- watch -----------------------------------------------------------------------------------


def _iso_now() -> str:
    return (
        datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="milliseconds")
    )


def print_change(leader: Contender | None, json_output: bool) -> bool:
    """Print one leader-change line; False if stdout is closed (``| head -1``)."""
    now = _iso_now()
    if json_output:
        return _emit({"time": now, "leader": None if leader is None else leader_json(leader)})
    if leader is None:
        return _emit(f"{now}  no leader")
    return _emit(
        f"{now}  leader {shown(leader.candidate_id)}  epoch {hex_id(leader.epoch)}  session "
        f"{hex_id(leader.session_id)}  node {leader.name}"
    )


def print_switchover_change(
    pending: PendingSwitchover | None, leader: Contender | None, json_output: bool
) -> bool:
    """Print one line for a switchover request that appeared, changed state or went
    (``pending`` None); False if stdout is closed. The JSON event carries the current
    ``leader`` too, so a reader of ``.leader`` on every line still reads the leader."""
    now = _iso_now()
    if json_output:
        return _emit(
            {
                "time": now,
                "event": "switchover",
                "state": "ended" if pending is None else pending.state_name,
                "switchover": None if pending is None else pending_json(pending, _now_ms()),
                "leader": None if leader is None else leader_json(leader),
            }
        )
    if pending is None:
        return _emit(f"{now}  switchover ended  (request deleted)")
    request = pending.request
    if request is None:
        return _emit(
            f"{now}  switchover unreadable  {REQUEST_NODE} holds no request zkelect can read "
            f"(session {hex_id(pending.session_id)})"
        )
    return _emit(
        f"{now}  switchover {_state_text(request, _now_ms())}  to {shown(request.to_id)} "
        f"(node {request.to})  asked by {_by_text(request)}"
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _emit(output: str | dict[str, Any]) -> bool:
    """One line (text, or an object as JSON) on stdout; False if stdout is closed."""
    try:
        if isinstance(output, str):
            sys.stdout.write(output + "\n")
            sys.stdout.flush()
        else:
            echo_json(output)
    except BrokenPipeError:
        # Keep the interpreter from complaining when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True
