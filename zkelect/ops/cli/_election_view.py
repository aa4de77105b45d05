"""How ``zkelect status``, ``watch`` and ``resign`` show an election read by reader.py.

The JSON shapes (documented in each command's help and in docs/cli-inspect.md) and the human
lines and tables; no I/O but writing to stdout.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from zkelect._election.nodes import Contender, ContenderKind, SequenceWrap
from zkelect._election.reader import Snapshot
from zkelect.ops.cli.common import echo_json

__all__ = [
    "KIND_LABEL",
    "ago",
    "candidate_json",
    "describe",
    "hex_id",
    "leader_json",
    "print_change",
    "print_status",
    "shown",
    "status_json",
]

_MAX_SHOWN = 64  # characters of a candidate id in human output (JSON has all of it)
_MAX_IGNORED_SHOWN = 5  # names of ignored children in human output (JSON has all of them)

KIND_LABEL = {
    ContenderKind.LATCH: "zkelect / Curator LeaderLatch",
    ContenderKind.CURATOR_LOCK: "Curator LeaderSelector / lock",
    ContenderKind.KAZOO_LOCK: "kazoo Election / Lock",
    ContenderKind.KAZOO_READ_LOCK: "kazoo ReadLock",
}


# -- JSON ----------------------------------------------------------------------------------


def leader_json(c: Contender) -> dict[str, Any]:
    """The ``leader`` object of ``status --json`` and ``watch --json``."""
    return {
        "id": c.candidate_id,
        "epoch": c.epoch,
        "node": c.name,
        "session": c.session_id,
        "kind": c.kind.value,
    }


def candidate_json(c: Contender, now_ms: int) -> dict[str, Any]:
    return {
        "id": c.candidate_id,
        "node": c.name,
        "sequence": c.sequence,
        "session": c.session_id,
        "kind": c.kind.value,
        "epoch": c.epoch,
        "joined_ms_ago": max(0, now_ms - c.ctime_ms),
    }


def status_json(snap: Snapshot, now_ms: int) -> dict[str, Any]:
    """``status --json``: the whole snapshot."""
    leader = snap.leader
    return {
        "path": snap.path,
        "leader": None
        if leader is None
        else {**leader_json(leader), "joined_ms_ago": max(0, now_ms - leader.ctime_ms)},
        "candidates": [candidate_json(c, now_ms) for c in snap.contenders],
        "exists": snap.exists,
        "ignored": list(snap.ignored),
        "sequence_wrap": _wrap_json(snap.sequence_wrap),
    }


def _wrap_json(wrap: SequenceWrap) -> dict[str, Any]:
    return {
        "wrapped": wrap.wrapped,
        "orders_differ": wrap.orders_differ,
        "string_order_first": wrap.string_first,
    }


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


def shown(candidate_id: str) -> str:
    """A candidate id for human eyes: node data may be anything, up to a megabyte."""
    if not candidate_id:
        return "(no id)"
    text = "".join(ch if ch.isprintable() else "?" for ch in candidate_id[: _MAX_SHOWN + 1])
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def describe(c: Contender | None) -> str:
    if c is None:
        return "none"
    return f"{shown(c.candidate_id)} (epoch {hex_id(c.epoch)}, node {c.name})"


# -- status ----------------------------------------------------------------------------------


def _console() -> Console:
    # Not a terminal (a pipe, a log): no colours, and wide enough not to fold node names.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def print_status(snap: Snapshot, now_ms: int) -> None:
    console = _console()
    leader = snap.leader
    if leader is None:
        console.print(f"{snap.path}: no leader, {len(snap.contenders)} candidates", markup=False)
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
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("#", "id", "role", "czxid", "session", "joined", "node"):
        table.add_column(column, no_wrap=True)
    for position, c in enumerate(snap.contenders):
        cells = (
            str(position + 1),
            shown(c.candidate_id),
            "leader" if position == 0 else "waiting",
            hex_id(c.epoch),
            hex_id(c.session_id),
            ago(now_ms - c.ctime_ms),
            c.name,
        )
        table.add_row(*(Text(cell) for cell in cells))  # Text: ids are data, not markup
    console.print(table)
    _print_ignored(console, snap)


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
    try:
        if json_output:
            echo_json({"time": now, "leader": None if leader is None else leader_json(leader)})
        else:
            line = (
                f"{now}  no leader"
                if leader is None
                else f"{now}  leader {shown(leader.candidate_id)}  epoch "
                f"{hex_id(leader.epoch)}  session {hex_id(leader.session_id)}  node {leader.name}"
            )
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except BrokenPipeError:
        # Keep the interpreter from complaining when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True
