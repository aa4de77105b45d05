"""The planned-switchover part of docs/benchmarks.md (issue 17), from
bench/results/switchover.json.

Issue 17 asks for a benchmark row, not a figure to meet: the time from the request to the
new leader's first fenced write, with the drain shown apart. What *is* checked, every round,
is what a switchover promises: the chosen candidate led, nobody else led in between, with a
higher epoch, and only after the old leader's ``on_draining`` had returned. That is the
section's one verdict; the ratio to a plain ``resign()`` handover is reported, not judged.
"""

# ruff: noqa: RUF001  (the multiplication sign and the en dash are meant: typography)

from __future__ import annotations

from typing import Any

from markdown import f, table, verdict

__all__ = ["GUARANTEE", "section", "summary_rows"]

GUARANTEE = "the chosen candidate leads, alone, with a higher epoch, after the old leader drained"
STEP_NAMES = {
    "accepted": "accepted",
    "ready": "ready",
    "draining": "draining",
    "drained": "`on_draining` returned",
    "elected": "`on_elected`",
    "written": "first fenced write",
}


def _rounds(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in s["results"] if r["kind"] in ("switchover", "resign")]


def _headline(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The switchover that compares with a resign: next in line, no-op drain, at every N."""
    return [
        r
        for r in _rounds(s)
        if r["kind"] == "switchover" and r["target"] == "next" and r["drain_s"] == 0
    ]


def summary_rows(s: dict[str, Any]) -> list[list[str]]:
    c = s["checks"]
    out = [
        [
            f"7 · switchover: {GUARANTEE}, every round",
            f"{c['rounds']} rounds, {len(c['broken'])} broken, {len(c['failures'])} failed",
            verdict(c["guarantees_kept"]),
        ]
    ]
    for r in _headline(s):
        out.append(
            [
                f"7 · switchover N={r['n']}: request → first fenced write (next in line, "
                "no-op drain), against `resign()` → first fenced write",
                f"{f(_med(r, 'first_write_ms'))} ms, "
                f"{f(r.get('ratio_to_resign'), 2, '×')} the resign's",
                "reported (no target)",
            ]
        )
    return out


def _med(r: dict[str, Any], key: str, stat: str = "median") -> float | None:
    d = r.get(key)
    return None if not d else float(d[stat])


def _pair(r: dict[str, Any], key: str) -> str:
    return f"{f(_med(r, key))} / {f(_med(r, key, 'p90'))}"


def section(s: dict[str, Any], img: str | None = None) -> str:
    p = s["params"]
    body = [
        "## 7. Planned switchover",
        "",
        "N in-process `Election`s on one path (N = "
        + ", ".join(str(n) for n in p["sizes"])
        + "), each on its own session, and an operator's session (as `zkelect switchover` "
        "opens) that calls `request_switchover` ([switchover.md](switchover.md)). Every "
        "candidate's `on_elected` makes its first fenced write at once (`lead.set_data` on a "
        "data node beside the election: a multi-op that checks the new leader's node, then "
        "sets); its `on_draining` returns at once (*no-op drain*) or takes "
        f"{p['drain_s'] * 1000:g} ms (leader work that takes its time to stop). Five kinds of "
        "round alternate (which goes first rotates every round): a switchover to the next in "
        "line (`to=None`) and to the last in line (`to=` its id: the N − 2 candidates ahead "
        "of it step back first, in order), each with both drains, and a plain `resign()` "
        "(the next in line leads; undrained), the reference. Measured on one clock, from just "
        "before the request (or `resign()`): *accepted* (the requester sees the leader's "
        "`accepted`), the *drain* (how long the old leader's `on_draining` ran), and the "
        "chosen candidate's *first fenced write* committed. "
        f"{p['rounds']} measured rounds of each kind after {p['warmup_rounds']} warm-up; "
        f"sessions of {p['client_session_timeout_s']:g} s, the leaver re-joins "
        f"{p['requeue_delay_s'] * 1000:g} ms after leaving.",
        "",
        _results_table(_rounds(s)),
        "",
        "*drain*: `on_draining`'s own run time (the requester's view, from `draining` to the "
        "old node's deletion, is in the results file as `requester_drain_ms`). A `resign()` "
        "is one write (the delete) and its notice; a switchover is five writes in turn (the "
        "request's create, `accepted`, `ready`, `draining`, the old leader's delete), each "
        "committed by a quorum (default fsync) and heard of by the next party through a "
        "watch and a read, plus the drain; to the last in line, plus one step back (a "
        "delete, a re-join, and the next deputy's look) per candidate ahead of the target.",
        "",
        *_breakdown(s),
        "Verdict:",
        "",
        f"- Every round: {GUARANTEE}: {verdict(s['checks']['guarantees_kept'])} "
        f"({s['checks']['rounds']} measured rounds).",
        *[f"  - {line}" for line in s["checks"]["broken"] + s["checks"]["failures"]],
        *_leader_metrics(s),
        "",
    ]
    return "\n".join(body)


def _results_table(rows: list[dict[str, Any]]) -> str:
    table_rows = [
        [
            r["n"],
            r["label"],
            r["rounds"],
            _pair(r, "accepted_ms") if r["kind"] == "switchover" else "–",
            _pair(r, "drain_ms") if r["kind"] == "switchover" else "–",
            _pair(r, "first_write_ms"),
            f(r.get("ratio_to_resign"), 2, "×"),
        ]
        for r in rows
    ]
    return table(
        [
            "N",
            "round",
            "rounds",
            "accepted, median / p90 ms",
            "drain, median / p90 ms",
            "first fenced write, median / p90 ms",
            "first write / resign's",
        ],
        table_rows,
        "rlrrrrr",
    )


def _breakdown(s: dict[str, Any]) -> list[str]:
    rows = [r for r in _rounds(s) if r["kind"] == "switchover"]
    if not rows:
        return []
    steps = list(STEP_NAMES)
    table_rows = [
        [
            r["n"],
            r["label"],
            *(
                f(r["steps_median_ms"].get(step))
                + ("" if r["steps_seen"].get(step) == r["rounds"] else "*")
                for step in steps
            ),
        ]
        for r in rows
    ]
    return [
        "Where the time goes (medians from the request, ms). *accepted*, *ready* and "
        "*draining* are the states as the requester saw them, each a read after a watch "
        "notice: after a no-op drain *draining* can be seen after `on_draining` has "
        "returned, and * marks a state not seen in every round (it had moved on when the "
        "read landed). `on_draining` returned, `on_elected` and the first fenced write are "
        "the candidates' own callbacks, on the same clock:",
        "",
        table(["N", "round", *(STEP_NAMES[step] for step in steps)], table_rows, "rl" + "r" * 6),
        "",
    ]


def _leader_metrics(s: dict[str, Any]) -> list[str]:
    rows = [r for r in s["results"] if r["kind"] == "leader_metrics"]
    lines = []
    for r in rows:
        counted = ", ".join(f"{k} {v}" for k, v in sorted(r["switchovers_by_result"].items()))
        drained = r.get("drained_ms") or {}
        lines.append(
            f"- N={r['n']}: the leaders' own metrics counted {counted or 'nothing'} "
            f"(`zkelect_switchovers_total`, warm-up included); their drains "
            f"(`zkelect_switchover_drain_seconds`, no-op and {s['params']['drain_s'] * 1000:g} "
            f"ms together): median {f(drained.get('median'))} ms, max "
            f"{f(drained.get('max'))} ms."
        )
    return lines
