"""The report of a chaos run: report.json and a self-contained report.html.

``write_report(run_dir, result)`` writes both next to the history. The HTML has no external
assets and no script: a summary table, then the leadership timeline as inline SVG, cut into
strips of at most five minutes so a 20-minute run with hundreds of faults stays readable.
Every mark carries a native tooltip (<title>) with the exact figures.

Also a command: ``python -m chaos.report RUN_DIR`` checks a run directory, writes its report,
prints the summary and exits 1 if any invariant was violated (so a replayed seed can be
re-checked without rerunning it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from chaos.checker import INVARIANTS, Belief, CheckResult, Fault, check, stopped_spans
from chaos.history import FAULT_KINDS, Cont, HistoryError, Kill, LeaderSample, Start, Stop

__all__ = ["ReportPaths", "main", "render_html", "report_json", "write_report"]

STRIP_MAX_S = 300.0  # one timeline strip covers at most five minutes
STRIP_WIDTH_PX = 1500
LABEL_PX = 96  # the row-label column
ROW_PX = 22
LANE_PX = 14
AXIS_PX = 20
MAX_TABLE_ROWS = 500

# One colour per fault kind (a fixed palette in the schema's order), unknown kinds grey.
_KIND_COLOURS = (
    "#d62728", "#ff7f0e", "#bcbd22", "#8c564b", "#e377c2", "#9467bd", "#17becf", "#1f77b4",
    "#aec7e8", "#000000", "#2ca02c", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#7f7f7f",
    "#f7b6d2",
)


class ReportPaths(NamedTuple):
    json: Path
    html: Path


def report_json(result: CheckResult) -> dict[str, Any]:
    """run.json, the summary and every violation, as one JSON-ready object."""
    history = result.history
    return {
        "run": dict(history.run.raw),
        "summary": result.summary,
        "violations": [v.to_json(history.run.started_t) for v in result.violations],
    }


def write_report(run_dir: str | Path, result: CheckResult) -> ReportPaths:
    """Write report.json and report.html into run_dir; returns their paths."""
    run_dir = Path(run_dir)
    paths = ReportPaths(run_dir / "report.json", run_dir / "report.html")
    paths.json.write_text(json.dumps(report_json(result), indent=2) + "\n", encoding="utf-8")
    paths.html.write_text(render_html(result), encoding="utf-8")
    return paths


# --- helpers ----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _kind_colour(kind: str) -> str:
    try:
        return _KIND_COLOURS[FAULT_KINDS.index(kind)]
    except (ValueError, IndexError):
        return "#999999"


def _fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f} s"


@dataclass(frozen=True)
class _Epochs:
    """Ordinal (1 = the lowest epoch) and colour of each epoch."""

    ordinal: dict[int, int]

    @classmethod
    def of(cls, beliefs: Sequence[Belief], leader_epochs: Iterable[int]) -> _Epochs:
        # Ordinals follow the epoch order itself (epochs grow with time, so do ordinals).
        epochs = sorted({b.epoch for b in beliefs} | set(leader_epochs))
        return cls({epoch: index + 1 for index, epoch in enumerate(epochs)})

    def colour(self, epoch: int) -> str:
        hue = (self.ordinal.get(epoch, 0) * 137.508) % 360  # golden angle: neighbours differ
        return f"hsl({hue:.0f},65%,58%)"

    def short(self, epoch: int) -> str:
        return f"e{self.ordinal.get(epoch, 0)}"


class _Span(NamedTuple):
    start: float
    end: float
    colour: str
    label: str
    tooltip: str
    extra_class: str = ""


class _Mark(NamedTuple):
    t: float
    symbol: str  # "kill", "stop", "cont", "start", "violation"
    tooltip: str


# --- the timeline -----------------------------------------------------------------------------


def _lanes(faults: Sequence[Fault], end_t: float) -> list[int]:
    """A lane per fault so that overlapping faults never hide one another."""
    lane_ends: list[float] = []
    lanes: list[int] = []
    for fault in faults:  # in start order
        end = fault.end if fault.end is not None else end_t
        for index, lane_end in enumerate(lane_ends):
            if lane_end <= fault.start:
                lane_ends[index] = end
                lanes.append(index)
                break
        else:
            lane_ends.append(end)
            lanes.append(len(lane_ends) - 1)
    return lanes


class _Timeline:
    def __init__(self, result: CheckResult) -> None:
        history = result.history
        self.t0 = history.run.started_t
        self.end_t = max(history.end_t, self.t0 + 1e-3)
        leader_samples = [e for e in history.observer_events if isinstance(e, LeaderSample)]
        self.epochs = _Epochs.of(
            result.beliefs, (s.epoch for s in leader_samples if s.epoch is not None)
        )
        self.faults = result.faults
        self.lanes = _lanes(result.faults, self.end_t)
        self.lane_count = max(self.lanes, default=-1) + 1

        slots = {f"c{index}" for index in range(history.run.candidates)}
        slots |= {event.cand for event in history.candidate_events}
        self.slots = sorted(slots, key=lambda s: (len(s), s))
        self.rows: dict[str, list[_Span]] = defaultdict(list)
        self.marks: dict[str, list[_Mark]] = defaultdict(list)

        for belief in result.beliefs:
            self.rows[belief.cand].append(_Span(
                belief.start, belief.end, self.epochs.colour(belief.epoch), str(belief.epoch),
                f"{belief.name} believed it led with epoch {belief.epoch} "
                f"({self.epochs.short(belief.epoch)}) from {self.rel(belief.start)} to "
                f"{self.rel(belief.end)} ({belief.end - belief.start:.3f} s), ended by "
                f"{belief.end_reason}; node {belief.node}",
            ))
        for (cand, inc), spans in stopped_spans(history).items():
            for start, end in spans:
                self.rows[cand].append(_Span(
                    start, end, "url(#stopped)", "",
                    f"{cand}#{inc} SIGSTOPped from {self.rel(start)} to {self.rel(end)} "
                    f"({end - start:.3f} s)",
                    "stopped",
                ))
        for event in history.nemesis_events:
            if isinstance(event, (Kill, Stop, Cont)):
                symbol = {Kill: "kill", Stop: "stop", Cont: "cont"}[type(event)]
                self.marks[event.cand].append(_Mark(
                    event.t, symbol, f"{symbol} {event.cand}#{event.inc} at {self.rel(event.t)}"
                ))
        for cand_event in history.candidate_events:
            if isinstance(cand_event, Start):
                self.marks[cand_event.cand].append(_Mark(
                    cand_event.t, "start",
                    f"{cand_event.cand}#{cand_event.inc} started (pid {cand_event.pid}) "
                    f"at {self.rel(cand_event.t)}",
                ))

        # The observer's view: one span per run of samples with the same leader.
        observer: list[_Span] = []
        for index, sample in enumerate(leader_samples):
            if sample.epoch is None:
                continue
            following = (
                leader_samples[index + 1].t if index + 1 < len(leader_samples) else self.end_t
            )
            same = observer and observer[-1].label == str(sample.epoch)
            if same and observer[-1].end >= sample.t:
                observer[-1] = observer[-1]._replace(end=following)
                continue
            observer.append(_Span(
                sample.t, following, self.epochs.colour(sample.epoch), str(sample.epoch),
                f"observer: leader node {sample.node} epoch {sample.epoch} "
                f"({self.epochs.short(sample.epoch)}), owner {sample.owner_session}, "
                f"{sample.nodes} node(s), from {self.rel(sample.t)}",
            ))
        self.observer = [
            span._replace(tooltip=f"{span.tooltip} to {self.rel(span.end)}") for span in observer
        ]
        self.violation_marks = [
            _Mark(v.t, "violation", f"{v.invariant} at {self.rel(v.t)}: {v.message}")
            for v in result.violations
        ]

    def rel(self, t: float) -> str:
        return f"+{t - self.t0:.3f}s"

    def strips(self) -> list[str]:
        total = self.end_t - self.t0
        count = max(1, int(-(-total // STRIP_MAX_S)))
        length = total / count
        return [
            self._strip(self.t0 + index * length, self.t0 + (index + 1) * length)
            for index in range(count)
        ]

    def _strip(self, a: float, b: float) -> str:
        scale = STRIP_WIDTH_PX / (b - a)
        fault_top = AXIS_PX
        observer_top = fault_top + max(1, self.lane_count) * LANE_PX + 6
        cand_top = observer_top + ROW_PX
        violation_top = cand_top + len(self.slots) * ROW_PX
        height = violation_top + ROW_PX + 4
        width = LABEL_PX + STRIP_WIDTH_PX + 24  # room for the last tick label

        def x(t: float) -> float:
            return LABEL_PX + (min(max(t, a), b) - a) * scale

        out: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="leadership timeline {_e(self.rel(a))} to {_e(self.rel(b))}">',
            f"<style>{_SVG_CSS}</style>",
            '<defs><pattern id="stopped" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="3" height="6" fill="#555" '
            'fill-opacity="0.55"/></pattern></defs>',
        ]
        # Axis and grid: a tick about every 100 px, on a round number of seconds.
        step = next(s for s in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1e9)
                    if s * scale >= 90)
        tick = math.ceil((a - self.t0) / step - 1e-9) * step
        while self.t0 + tick <= b + 1e-9:
            px = x(self.t0 + tick)
            out.append(f'<line class="grid" x1="{px:.1f}" y1="{AXIS_PX - 4}" x2="{px:.1f}" '
                       f'y2="{height - 2}"/>')
            out.append(f'<text class="tick" x="{px:.1f}" y="{AXIS_PX - 7}">{tick:g}s</text>')
            tick += step

        # Faults: a light shade over every row plus a labelled bar in the fault's lane.
        for fault, lane in zip(self.faults, self.lanes, strict=True):
            end = fault.end if fault.end is not None else self.end_t
            if end < a or fault.start > b:
                continue
            x1, x2 = x(fault.start), x(end)
            w = max(x2 - x1, 1.0)
            colour = _kind_colour(fault.kind)
            tip = _e(
                f"fault {fault.id} {fault.kind} on {', '.join(fault.targets) or '-'}: "
                f"{self.rel(fault.start)} to "
                + (self.rel(fault.end) if fault.end is not None else "the end (never healed)")
                + f" ({end - fault.start:.3f} s, planned {fault.planned_s:g} s)"
            )
            out.append(f'<rect class="shade" x="{x1:.1f}" y="{observer_top}" width="{w:.1f}" '
                       f'height="{violation_top - observer_top}" fill="{colour}"><title>{tip}'
                       '</title></rect>')
            y = fault_top + lane * LANE_PX
            out.append(f'<rect class="fault" x="{x1:.1f}" y="{y + 1}" width="{w:.1f}" '
                       f'height="{LANE_PX - 2}" fill="{colour}"><title>{tip}</title></rect>')
            if w >= 6.2 * len(fault.kind) + 4:
                out.append(f'<text class="flabel" x="{x1 + 2:.1f}" y="{y + LANE_PX - 4}">'
                           f'{_e(fault.kind)}</text>')

        def spans(row_top: int, items: Iterable[_Span]) -> None:
            for span in items:
                if span.end < a or span.start > b:
                    continue
                x1, x2 = x(span.start), x(span.end)
                w = max(x2 - x1, 1.0)
                if span.extra_class == "stopped":
                    out.append(f'<rect class="stopped" x="{x1:.1f}" '
                               f'y="{row_top + ROW_PX / 2:.0f}" width="{w:.1f}" '
                               f'height="{ROW_PX / 2 - 2:.0f}" fill="{span.colour}">'
                               f'<title>{_e(span.tooltip)}</title></rect>')
                    continue
                out.append(f'<rect class="belief" x="{x1:.1f}" y="{row_top + 2}" width="{w:.1f}" '
                           f'height="{ROW_PX - 4}" fill="{span.colour}">'
                           f'<title>{_e(span.tooltip)}</title></rect>')
                short = self.epochs.short(int(span.label))
                for text in (span.label, short):
                    if w >= 6.2 * len(text) + 4:
                        out.append(f'<text class="elabel" x="{x1 + 2:.1f}" '
                                   f'y="{row_top + ROW_PX - 7}">{_e(text)}</text>')
                        break

        def marks(row_top: int, items: Iterable[_Mark]) -> None:
            for mark in items:
                if not a <= mark.t <= b:
                    continue
                px = x(mark.t)
                tip = f"<title>{_e(mark.tooltip)}</title>"
                mid = row_top + ROW_PX / 2
                if mark.symbol in ("kill", "violation"):
                    colour = "#c00" if mark.symbol == "kill" else "#f00"
                    out.append(f'<path class="{mark.symbol}" d="M{px - 4:.1f},{mid - 4:.1f} '
                               f'l8,8 m0,-8 l-8,8" stroke="{colour}" stroke-width="2.2">'
                               f'{tip}</path>')
                elif mark.symbol == "stop":
                    out.append(f'<path class="stop" d="M{px:.1f},{row_top + 1} v{ROW_PX - 2}" '
                               f'stroke="#333" stroke-width="2">{tip}</path>')
                elif mark.symbol == "cont":
                    out.append(f'<path class="cont" d="M{px:.1f},{row_top + 1} v{ROW_PX - 2}" '
                               f'stroke="#333" stroke-width="1" stroke-dasharray="2,2">'
                               f'{tip}</path>')
                else:  # start
                    out.append(f'<path class="start" d="M{px:.1f},{mid - 4:.1f} l5,4 l-5,4 z" '
                               f'fill="#666">{tip}</path>')

        def label(row_top: int, text: str) -> None:
            out.append(f'<text class="rlabel" x="4" y="{row_top + ROW_PX - 7}">{_e(text)}</text>')
            out.append(f'<line class="row" x1="{LABEL_PX}" y1="{row_top + ROW_PX}" '
                       f'x2="{LABEL_PX + STRIP_WIDTH_PX}" y2="{row_top + ROW_PX}"/>')

        out.append(f'<text class="rlabel" x="4" y="{fault_top + LANE_PX - 3}">faults</text>')
        label(observer_top, "observer")
        spans(observer_top, self.observer)
        for index, slot in enumerate(self.slots):
            top = cand_top + index * ROW_PX
            label(top, slot)
            spans(top, sorted(self.rows.get(slot, []), key=lambda s: s.extra_class))
            marks(top, self.marks.get(slot, []))
        label(violation_top, "violations")
        marks(violation_top, self.violation_marks)
        out.append("</svg>")
        return "\n".join(out)


# --- tables -----------------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'


def _summary_table(result: CheckResult) -> str:
    s = result.summary
    heal = s["heal"]
    dual = s["dual_belief"]
    run = result.history.run
    rows: list[tuple[str, object]] = [
        ("seed", s["seed"]),
        ("ran", f"{s['ran_s']:.1f} s" + ("" if s["run_complete"] else " (run did not finish)")),
        ("ensemble / candidates / store",
         f"{run.members} members / {run.candidates} candidates / {run.store}"),
        ("session timeout + heal bound", f"{run.session_timeout_s:g} s + {run.heal_bound_s:g} s"),
        ("faults injected", f"{s['faults_total']} ({s['faults_unhealed']} not healed at the end)"),
    ]
    rows += [(f"  {kind}", count) for kind, count in s["faults"].items()]
    rows += [
        ("elections (distinct epochs)", s["elections"]),
        ("elected events", s["elected_events"]),
        ("leaders (slot: epochs led)",
         ", ".join(f"{c}: {n}" for c, n in s["leaders"].items()) or "none"),
        ("writes accepted", s["writes"]["accepted"]),
        ("stale writes rejected", s["stale_writes_rejected"]),
        ("writes errored", s["writes"]["error"]),
        ("stale writes accepted", s["stale_writes_accepted"]),
        ("writes of unknown outcome found in the store", s["indeterminate_writes"]),
        ("time to a unique leader after a heal (p50 / p90 / max)",
         f"{_fmt_s(heal['p50_s'])} / {_fmt_s(heal['p90_s'])} / {_fmt_s(heal['max_s'])} "
         f"over {heal['ok']} checked heals ({heal['overlapped']} overlapped, "
         f"{heal['interrupted']} interrupted by the next fault, {heal['run_ended']} at the end)"),
        ("max dual belief", f"{_fmt_s(s['max_dual_belief_s'])} over {dual['overlaps']} overlaps "
         f"({dual['unfenced']} not fenced, {dual['without_pause']} without a pause)"),
    ]
    silent = s.get("silent_member")
    if silent is not None:
        not_judged = ", ".join(f"{n} {status}" for status, n in silent["not_judged"].items())
        rows.append((
            "silent member: back on another member, same session (I6)",
            f"{silent['ok']} of {silent['judged']} judged candidates in time over "
            f"{silent['faults']} faults; p50 / max {_fmt_s(silent['p50_s'])} / "
            f"{_fmt_s(silent['max_s'])} (bound {_fmt_s(silent['bound_s'])}); not judged: "
            f"{not_judged}",
        ))
    rows += [(f"violations {inv}", n) for inv, n in s["violations"].items()]
    rows.append(("violations total", s["violations_total"]))
    if s["truncated_files"]:
        rows.append(("torn last line dropped in", ", ".join(s["truncated_files"])))
    body = "".join(
        f'<tr class="{"bad" if str(k).startswith("violations") and v else ""}">'
        f"<th>{_e(k)}</th><td>{_e(v)}</td></tr>"
        for k, v in rows
    )
    return f'<table class="summary"><tbody>{body}</tbody></table>'


def _details(title: str, inner: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_e(title)}</summary>{inner}</details>"


# Inside every SVG, so a strip saved on its own still renders the same.
_SVG_CSS = (
    "text{font:11px monospace}.tick{fill:#555;text-anchor:middle}.grid{stroke:#eee}"
    ".row{stroke:#ddd}.shade{fill-opacity:.12}.fault{fill-opacity:.85}"
    ".flabel{fill:#fff;font-size:10px}.elabel{fill:#111}.rlabel{fill:#222}"
    ".belief{stroke:#333;stroke-width:.5}"
)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0} th,td{border:1px solid #ccc;padding:2px 8px;
text-align:left;vertical-align:top} table.summary th{font-weight:normal;background:#f6f6f6}
tr.bad td,tr.bad th{background:#fdd;font-weight:bold} .verdict{font-size:1.2em;font-weight:bold}
.pass{color:#070} .fail{color:#b00} .strip{overflow-x:auto;margin-bottom:1em}
.legend span{display:inline-block;margin-right:1em}
.legend i{display:inline-block;width:1em;height:.8em;margin-right:.3em;vertical-align:middle}
"""


def render_html(result: CheckResult) -> str:
    """The whole report page (self-contained: inline CSS and SVG, no script)."""
    history = result.history
    timeline = _Timeline(result)
    s = result.summary
    verdict = (
        f'<p class="verdict pass">{_e(INVARIANTS[0])}-{_e(INVARIANTS[-1])} hold: 0 violations</p>'
        if result.ok
        else f'<p class="verdict fail">{len(result.violations)} violation(s): '
        + _e(", ".join(f"{k} = {v}" for k, v in s["violations"].items())) + "</p>"
    )
    kinds = list(s["faults"])
    legend = "".join(
        f'<span><i style="background:{_kind_colour(kind)}"></i>{_e(kind)}</span>' for kind in kinds
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>zkelect chaos run, seed {_e(history.run.seed)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>zkelect chaos run — seed {_e(history.run.seed)}</h1>",
        f"<p>Replay: <code>python -m chaos.run --seed {_e(history.run.seed)} --minutes "
        f"{_e(f'{history.run.duration_s / 60:g}')} --members {_e(history.run.members)}</code>. "
        "Re-check: "
        f"<code>python -m chaos.report {_e(history.run_dir)}</code>.</p>",
        verdict,
        "<h2>Summary</h2>",
        _summary_table(result),
        "<h2>Leadership timeline</h2>",
        "<p>One row per candidate slot: coloured bars are the intervals a process believed it "
        "led, labelled with the epoch (or its ordinal <code>eN</code> when narrow; hover for "
        "details), one colour per epoch; hatching = SIGSTOPped; ✕ = SIGKILL; solid / dashed "
        "line = SIGSTOP / SIGCONT; ▸ = a new incarnation. The observer row is the leader node "
        "ZooKeeper showed. Faults are shaded over the rows and labelled in their lanes. Times "
        "are seconds since the run started.</p>",
        f'<p class="legend">{legend}</p>',
    ]
    parts += [f'<div class="strip">{svg}</div>' for svg in timeline.strips()]

    parts.append("<h2>Violations</h2>")
    if result.violations:
        shown = result.violations[:MAX_TABLE_ROWS]
        parts.append(_table(
            ("invariant", "at", "evidence"),
            ((v.invariant, timeline.rel(v.t), v.message) for v in shown),
            "violations",
        ))
        if len(result.violations) > len(shown):
            parts.append(f"<p>… and {len(result.violations) - len(shown)} more in report.json.</p>")
    else:
        parts.append("<p>None.</p>")

    heal_rows = [
        (h.fault.id, h.fault.kind, ", ".join(h.fault.targets),
         timeline.rel(h.fault.end) if h.fault.end is not None else "never", h.status,
         _fmt_s(h.seconds))
        for h in result.heals
    ]
    parts.append("<h2>Time to a unique leader after each heal (I3)</h2>")
    parts.append(_details(
        f"{len(heal_rows)} healed faults",
        _table(("fault", "kind", "targets", "healed at", "status", "time to unique leader"),
               heal_rows[:MAX_TABLE_ROWS]),
    ))
    overlap_rows = [
        (o.older.name, o.older.epoch, o.newer.name, o.newer.epoch, timeline.rel(o.start),
         f"{o.seconds:.3f} s", "yes" if o.older_paused else "no", o.older_accepted_writes,
         "fenced" if o.fenced else "NOT FENCED")
        for o in result.overlaps
    ]
    silent_rows = [
        (c.fault.id, c.fault.detail.get("variant", "?"), c.member, c.name, c.session_id,
         timeline.rel(c.fault.start), _fmt_s(c.noticed_s), _fmt_s(c.seconds), _fmt_s(c.bound_s),
         c.status, c.outcome)
        for c in result.silent
    ]
    parts.append("<h2>Candidates on a silent member (I6)</h2>")
    parts.append(_details(
        f"{len(silent_rows)} candidates on {s.get('silent_member', {}).get('faults', 0)} silent "
        "members",
        _table(("fault", "variant", "member", "process", "session", "silent from",
                "noticed after", "back after", "bound", "status", "outcome"),
               silent_rows[:MAX_TABLE_ROWS]),
        open_=any(c.status == "violation" for c in result.silent),
    ))
    parts.append("<h2>Dual belief</h2>")
    parts.append(_details(
        f"{len(overlap_rows)} overlaps, longest {_fmt_s(s['max_dual_belief_s'])}",
        _table(("older", "older epoch", "newer", "newer epoch", "from", "lasted",
                "older paused", "older writes accepted inside", "verdict"),
               overlap_rows[:MAX_TABLE_ROWS]),
        open_=bool(overlap_rows) and len(overlap_rows) <= 20,
    ))
    epoch_rows = []
    for epoch, ordinal in sorted(timeline.epochs.ordinal.items(), key=lambda item: item[1]):
        holders = sorted({b.name for b in result.beliefs if b.epoch == epoch})
        first = min((b.start for b in result.beliefs if b.epoch == epoch), default=None)
        epoch_rows.append((
            f"e{ordinal}", epoch, hex(epoch), ", ".join(holders) or "(observer only)",
            timeline.rel(first) if first is not None else "-",
        ))
    parts.append("<h2>Epochs</h2>")
    parts.append(_details(
        f"{len(epoch_rows)} epochs",
        _table(("ordinal", "epoch", "hex", "believed by", "first elected"), epoch_rows),
    ))
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- command ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.report",
        description="Check a chaos run directory (I1-I6) and write report.json and report.html.",
    )
    parser.add_argument("run_dir", type=Path, help="the run directory the chaos runner wrote")
    args = parser.parse_args(argv)
    try:
        result = check(args.run_dir)
        paths = write_report(args.run_dir, result)
    except (HistoryError, OSError) as exc:
        print(f"chaos.report: {exc}", file=sys.stderr)
        return 1
    s = result.summary
    print(
        f"seed {s['seed']}: {s['faults_total']} faults, {s['elections']} elections, "
        f"{s['writes']['accepted']} writes accepted, {s['stale_writes_rejected']} stale writes "
        f"rejected, max dual belief {_fmt_s(s['max_dual_belief_s'])}, violations "
        + ", ".join(f"{k}={v}" for k, v in s["violations"].items())
    )
    for violation in result.violations[:20]:
        print(f"  {violation.invariant} {violation.message}")
    print(f"report: {paths.html}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
