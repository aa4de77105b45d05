"""The demo's closing summary: who led when, the failovers, the writes the fenced store
accepted and rejected (checked against what the workers reported), and a timeline.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import TYPE_CHECKING

from zkelect.ops._demo_processes import CANDIDATE_IDS, DemoError, hex_epoch

if TYPE_CHECKING:
    from zkelect.ops.demo import Demo

__all__ = ["store_epochs", "summary"]


def _reported(demo: Demo, ok: bool) -> dict[int, int]:
    """Writes the workers reported, accepted (``ok``) or rejected, per epoch."""
    counts: dict[int, int] = {}
    for event in demo.events:
        if event.kind == "write" and event.data["ok"] is ok:
            epoch = int(event.data["epoch"])
            counts[epoch] = counts.get(epoch, 0) + 1
    return counts


def store_epochs(db: str) -> list[int]:
    """The epoch of every record in the store, in the order they were written."""
    conn = sqlite3.connect(db)
    try:
        return [int(e) for (e,) in conn.execute("SELECT epoch FROM records ORDER BY id")]
    finally:
        conn.close()


def summary(demo: Demo) -> None:
    """The table of leaders and failovers, checked against the store, then the timeline."""
    end = demo.end_at if demo.end_at is not None else demo.now()
    stored = store_epochs(demo.db)
    reported, rejected = _reported(demo, True), _reported(demo, False)
    demo.line()
    demo.line("== summary")
    header = (
        f"  {'leader':8}{'epoch':>14}  {'elected':>8}  {'led until':>9}  "
        f"{'how it ended':14}{'accepted':>9}{'rejected':>9}"
    )
    demo.line(header)
    demo.line("  " + "-" * (len(header) - 2))
    for leader in demo.leaders:
        epoch = leader["epoch"]
        until = f"{leader['end']:.2f}s" if "end" in leader else "end"
        demo.line(
            f"  {leader['who']:8}{hex_epoch(epoch):>14}  {leader['at']:7.2f}s  "
            f"{until:>9}  {leader.get('ended', 'still leading'):14}"
            f"{stored.count(epoch):>9}{rejected.get(epoch, 0):>9}"
        )
    for f in demo.failovers:
        demo.line(
            f"  failover {f['old']} -> {f['new']} after the {f['cause']}: {f['seconds']:.2f}s "
            f"(session timeout {demo.session_timeout:g}s)"
        )
    ordered = all(a <= b for a, b in itertools.pairwise(stored))
    demo.line(
        f"  writes: {len(stored)} accepted, {sum(rejected.values())} rejected; the store "
        f"holds {len(stored)} records, epochs {'never decrease' if ordered else 'DECREASE'}"
    )
    # The store is the authority; the workers' lines must agree with it, except that the
    # SIGKILLed leader's worker may have died between its commit and its line.
    lines = sum(reported.values())
    if not ordered or not lines <= len(stored) <= lines + 1:
        raise DemoError(
            f"the store holds {len(stored)} records for {lines} writes the workers "
            f"reported as accepted (epochs ordered: {ordered})"
        )
    _timeline(demo, end)


def _timeline(demo: Demo, end: float) -> None:
    demo.line()
    demo.line("== leadership timeline (seconds since the candidates started)")
    for leader in demo.leaders:
        until = f"{leader['end']:6.2f}" if "end" in leader else "   end"
        note = ""
        if "stopped_working" in leader:
            note = (
                f"  ({leader['ended']} at {leader['stopped_working']:.2f}s; its node held on "
                "until its session expired)"
            )
        demo.line(
            f"  {leader['at']:6.2f} - {until}  {leader['who']}  "
            f"epoch {hex_epoch(leader['epoch'])}{note}"
        )
    width = 60
    scale = width / max(end, 0.001)

    def col(t: float) -> int:
        return min(width - 1, max(0, int(t * scale)))

    demo.line()
    demo.line(f"  {'':8}0s{'':{width - 4}}{end:.0f}s")
    for candidate_id in CANDIDATE_IDS:
        row = [" "] * width
        joined = next(
            (e.at for e in demo.events if e.who == candidate_id and e.kind == "joined"), None
        )
        if joined is not None:
            for i in range(col(joined), width):
                row[i] = "."
        for leader in (x for x in demo.leaders if x["who"] == candidate_id):
            working_end = leader.get("stopped_working", leader.get("end", end))
            for i in range(col(leader["at"]), col(working_end) + 1):
                row[i] = "#"
            if "stopped_working" in leader:
                for i in range(col(leader["stopped_working"]) + 1, col(leader["end"]) + 1):
                    row[i] = "~"
                after = " " if leader["ended"] == "SIGKILLed" else ":"
                for i in range(col(leader["end"]) + 1, width):
                    row[i] = after
        mine = [e for e in demo.events if e.who == candidate_id and e.at <= end]
        for event in mine:
            if event.kind == "revoked":
                for i in range(col(event.at), width):
                    row[i] = "."
        for event in mine:
            if event.kind == "write" and not event.data["ok"]:
                row[col(event.at)] = "!"
        demo.line(f"  {candidate_id:8}|{''.join(row)}|")
    demo.line("  # leads, its worker writes     ~ crashed/frozen, its node still leads")
    demo.line("  : frozen and deposed           ! late write rejected    . candidate")
