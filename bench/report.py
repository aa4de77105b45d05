"""docs/benchmarks.md and its plots, generated from bench/results/*.json.

``python bench/run_all.py --report-only`` regenerates both from the last results without
running anything. Every figure in the markdown comes from the results files; the prose
around them says how each was measured and states each target with its verdict.
"""

# ruff: noqa: RUF001  (the multiplication sign and the en dash are meant: typography)

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import plots
import report_handover
import report_scale
import report_switchover
from markdown import f, table, verdict

FENCE_TARGET = 1.2
CRASH_SLACK = 0.10
IDLE_TARGET = 0.5


def load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return data


def rel(path: Path, docs: Path) -> str:
    return os.path.relpath(path, docs.parent)


# --------------------------------------------------------------------------- sections


def section_setup(data: dict[str, dict[str, Any] | None], run: dict[str, Any] | None) -> str:
    first = next((d for d in data.values() if d), None)
    if first is None:
        return "No results yet: run `make bench`.\n"
    m, e = first["machine"], first["ensemble"]
    pg = (data.get("fenced_write") or {}).get("machine", {})
    lines = [
        "## Where and how these figures were taken",
        "",
        f"These figures come from a **shared 2-core virtual machine** ({m.get('cpu_count')} "
        f"vCPUs, {m.get('cpu_model')}, {m.get('memory_mb')} MB) on which other engineers' "
        "test suites were running at the same time; the final run was started when the "
        "load average was low, but absolute times are noise here. Read the **ratios**: "
        "every comparison is measured side by side in one run, on one ensemble, with the "
        "samples of the things compared interleaved.",
        "",
    ]
    if run:
        lines += [
            f"Run of {run.get('date')}: the whole suite took "
            f"**{run.get('duration_s', 0) / 60:.1f} minutes** (load average "
            f"{run.get('load_average_start')} at the start, {run.get('load_average_end')} at "
            "the end; 1, 5 and 15 minutes).",
            "",
        ]
        rows = []
        for name, b in run.get("benchmarks", {}).items():
            machine = (data.get(name) or {}).get("machine", {})
            loads = [machine.get("load_average"), machine.get("load_average_end")]
            rows.append(
                [
                    name,
                    b["status"],
                    f(b["duration_s"], 0, " s"),
                    " → ".join(f"{x[0]:.2f}" for x in loads if x) or "–",
                ]
            )
        if rows:
            lines += [
                table(
                    ["benchmark", "status", "time", "1-min load average, start → end"], rows, "llrl"
                ),
                "",
            ]
    lines += [
        table(
            ["", ""],
            [
                ["Python", m.get("python")],
                ["kazoo", m.get("kazoo")],
                ["zkelect", m.get("zkelect")],
                ["ZooKeeper", m.get("zookeeper")],
                ["Java", m.get("java")],
                ["Apache Curator", m.get("curator")],
                ["PostgreSQL / psycopg", f"{pg.get('postgresql', '–')} / {pg.get('psycopg', '–')}"],
                ["platform", m.get("platform")],
                [
                    "ensemble",
                    f"{e.get('size')} members on 127.0.0.1 ({', '.join(e.get('modes', []))}), "
                    f"tickTime {e.get('tick_time_ms')} ms, sessions "
                    f"{e.get('min_session_timeout_ms')}–{e.get('max_session_timeout_ms')} ms, "
                    f"maxClientCnxns {e.get('max_client_cnxns')}, JVM heap "
                    f"{e.get('jvm_heap_mb') or '–'} MB, default fsync",
                ],
            ],
            "ll",
        ),
        "",
        "Every results file in `bench/results/` repeats the machine, the versions and the "
        "ensemble settings (as the servers report them, four-letter word `conf`) next to "
        "its figures.",
        "",
    ]
    return "\n".join(lines)


def herd_woken(change: dict[str, Any]) -> str:
    low, high = change.get("candidates_woken_min"), change["candidates_woken_max"]
    return f"{high:g}" if low is None or low == high else f"{low:g}–{high:g}"


def herd_one_woken(change: dict[str, Any]) -> bool:
    return bool(change.get("candidates_woken_min", 1) == change["candidates_woken_max"] == 1)


def herd_foreign(rest: dict[str, Any]) -> int:
    """Most watches on one candidate node besides its owner's (older results: all of them)."""
    value = rest.get("max_foreign_watches_per_candidate_node")
    return int(rest["max_watches_per_candidate_node"] if value is None else value)


def summary_rows(data: dict[str, dict[str, Any] | None]) -> list[list[str]]:
    out: list[list[str]] = []
    h = data.get("handover")
    if h:
        out += report_handover.summary_rows(h)
    herd = data.get("herd")
    if herd:
        zk_rows = [r for r in herd["results"] if r["recipe"] == "zkelect"]
        woken = "; ".join(
            f"N={r['n']:,}: {herd_woken(r['leader_change'])} (looked "
            f"{r['leader_change'].get('candidates_looked', '–'):g}, notified "
            f"{r['leader_change'].get('candidates_notified', '–'):g})"
            for r in zk_rows
        )
        out.append(
            [
                "2 · herd: exactly 1 candidate woken per leader change (looked or notified)",
                woken,
                verdict(all(herd_one_woken(r["leader_change"]) for r in zk_rows)),
            ]
        )
        node = "; ".join(
            f"N={r['n']:,}: ≤ {herd_foreign(r['at_rest'])} besides the owner's "
            f"(leader's node: {r['at_rest']['watches_on_leader_node']} in all)"
            for r in zk_rows
        )
        out.append(
            [
                "2 · herd: ≤ 1 watch per candidate node besides its owner's (`wchp`)",
                node,
                verdict(all(herd_foreign(r["at_rest"]) <= 1 for r in zk_rows)),
            ]
        )
    crash = data.get("crash")
    if crash:
        for name, s in crash["results"]["by_signal"].items():
            out.append(
                [
                    f"3 · crash ({name}): successor within session timeout + 10%",
                    f"max {s['max_ratio_to_session_timeout']:.2f}× the timeout, "
                    f"{s['within_target']}/{s['trials']} trials within",
                    verdict(s["within_target"] == s["trials"]),
                ]
            )
    scale = data.get("scale")
    if scale:
        out += report_scale.summary_rows(scale)
    fence = data.get("fenced_write")
    if fence:
        for r in fence["results"]:
            if r.get("reference"):
                continue
            out.append(
                [
                    f"5 · fenced write ≤ {FENCE_TARGET}× plain: {r['name']}",
                    f"{r['ratio']:.2f}×",
                    verdict(r["ratio"] <= FENCE_TARGET),
                ]
            )
    idle = data.get("idle_cpu")
    if idle:
        for r in idle["results"]:
            if r["impl"] == "zkelect":
                out.append(
                    [
                        f"6 · idle {r['role']}: near zero CPU (≤ {IDLE_TARGET} ticks/s)",
                        f"{r['ticks_per_s']:.3f} ticks/s ({r['cpu_percent']:.3f}% of a core)",
                        verdict(r["ticks_per_s"] <= IDLE_TARGET),
                    ]
                )
    switchover = data.get("switchover")
    if switchover:
        out += report_switchover.summary_rows(switchover)
    return out


def section_herd(herd: dict[str, Any], img: str | None) -> str:
    rows = herd["results"]
    body = [
        "## 2. Herd effect",
        "",
        "N candidates on one path; the leader leaves (zkelect: `stop()`; the naive recipe: "
        "deletes its node), then a new candidate joins at the back. Counted per change, over "
        "the candidates other than the one leaving or joining: **looked**, candidates that "
        "looked at the election (zkelect: its metrics hook `candidates_seen`, called once "
        "per look; naive: its watch callback, which re-reads the children); **notified**, "
        "candidates a watch callback was dispatched to (the benchmark taps every candidate "
        "client's kazoo `handler.dispatch_callback`; a callback is a candidate's when it is "
        "about that candidate's node or its predecessor's, on that candidate's session); "
        "**woken**, candidates that looked *or* were notified. **Notifications** are the "
        "servers' watch events (`mntr` `zk_sum_node_*_watch_count` deltas over the "
        "members), the leaver's own included. **Requests** are `zk_packets_received` "
        "deltas over the members, net of this benchmark's own four-letter words. **Watches "
        "per node** come from `wchp` on every member (the sessions holding a data watch on "
        "each candidate node); *besides the owner* leaves out the session that owns the node "
        "(its `ephemeralOwner`): a leader's watch on its own node is the design's choice "
        "(DESIGN R3), so that a forced delete is seen at once. Leader markers (children "
        "named `zkelect-leader-…`) are not candidate nodes and are left out. **Server "
        "watches per candidate** is `zk_watch_count` (data and child watches) over N. The "
        "naive recipe is the textbook one: every candidate watches the children list and "
        "re-reads it on every change.",
        "",
        "With N = 1,000 the candidates share 100 sessions (as in the handover benchmark). "
        "ZooKeeper keeps one watch per session, path and kind, so the naive recipe's "
        "server-side figures then count sessions, while every one of its candidates is still "
        "woken on the client side.",
        "",
    ]
    table_rows = [
        [
            r["recipe"],
            f"{r['n']:,}",
            r["sessions"],
            f"{r['leader_change']['candidates_woken']:g}",
            f(r["leader_change"].get("candidates_looked"), 0),
            f(r["leader_change"].get("candidates_notified"), 0),
            f"{r['leader_change']['server_notifications']:g}",
            f"{r['leader_change']['requests']:g}",
            f"{r['join']['candidates_woken']:g}",
            f"{r['join']['requests']:g}",
            f"{r['at_rest']['watches_on_leader_node']} / "
            f"{r['at_rest']['max_watches_per_follower_node']}",
            herd_foreign(r["at_rest"]),
            f"{r['at_rest']['server_watches_per_candidate']:g}",
        ]
        for r in rows
    ]
    body += [
        table(
            [
                "recipe",
                "N",
                "sessions",
                "woken per change",
                "looked",
                "notified",
                "server notifications per change",
                "requests per change",
                "woken per join",
                "requests per join",
                "watches on leader's / a follower's node (max)",
                "besides the owner's (max per node)",
                "server watches per candidate",
            ],
            table_rows,
            "lrrrrrrrrrrrr",
        ),
        "",
        "The naive recipe's watches are child watches on the election path, which `wchp` "
        "does not list (hence 0 / 0): its server watches per candidate are the children "
        "watches, one per session. Medians over "
        f"{herd['params']['changes']} changes (N ≤ 100) and {herd['params']['changes_large']} "
        "(N = 1,000).",
        "",
    ]
    if img:
        body += [f"![Candidates woken and requests per leader change]({img})", ""]
    body += _herd_verdicts([r for r in rows if r["recipe"] == "zkelect"])
    return "\n".join(body)


def _herd_verdicts(zk: list[dict[str, Any]]) -> list[str]:
    per_n = "; ".join(
        f"N={r['n']:,}: woken {herd_woken(r['leader_change'])}, of which looked "
        f"{r['leader_change'].get('candidates_looked', 0):g} and notified "
        f"{r['leader_change'].get('candidates_notified', 0):g} (medians), server "
        f"notifications {r['leader_change']['server_notifications']:g}"
        for r in zk
    )
    watches = "; ".join(
        f"N={r['n']:,}: at most {herd_foreign(r['at_rest'])} besides the owner's; the "
        f"leader's node {r['at_rest']['watches_on_leader_node']} in all, a follower's at "
        f"most {r['at_rest']['max_watches_per_follower_node']}"
        + (
            f", {r['at_rest']['data_watches_on_leader_markers']} on leader markers"
            if r["at_rest"].get("data_watches_on_leader_markers")
            else ""
        )
        for r in zk
    )
    return [
        "Verdicts:",
        "",
        "- Exactly one candidate woken per leader change, at every N and every change: "
        + verdict(all(herd_one_woken(r["leader_change"]) for r in zk))
        + f" ({per_n}).",
        "- At most one watch per candidate node besides its owner's: "
        + verdict(all(herd_foreign(r["at_rest"]) <= 1 for r in zk))
        + f" ({watches}).",
        *_why_two(zk),
        "",
    ]


def _why_two(zk: list[dict[str, Any]]) -> list[str]:
    """The price of a read-free handover (R13), said where the verdict shows it."""
    if not any(r["leader_change"]["candidates_woken_max"] == 2 for r in zk):
        return []
    return [
        "- Why two candidates are woken per change: the successor, told that its predecessor's "
        "node went (it leads on that notice, reading nothing), and the next in line, told that "
        "the new leader's marker appeared (it reads nothing either; docs/safety.md R13). A "
        "ZooKeeper notice reaches only the watchers of the node that changed, so the next in "
        "line can learn that its predecessor leads only from a notice of its own, or from a "
        "read on the next handover's path, as every other recipe does: zkelect pays the "
        "notice. The count does not grow with N: no herd."
    ]


def section_crash(crash: dict[str, Any], img: str | None) -> str:
    res = crash["results"]
    p = crash["params"]
    timeout = res["session_timeout_s"]
    body = [
        "## 3. Crash failover",
        "",
        f"{p['candidates']} candidate processes (`bench/candidate.py`, one zkelect election "
        f"each on its own session; requested session timeout {p['requested_session_timeout_s']:g} "
        f"s, negotiated **{timeout:g} s**). Per trial, after a random pause, the leader's "
        "process gets SIGKILL (its connections close) or SIGSTOP (frozen, connections open); "
        "measured from just before the signal to the start of the successor's `on_elected` "
        "(CLOCK_MONOTONIC is system-wide, so the two processes' clocks agree). An observer "
        "session watching the leader's node splits it into ZooKeeper's part (the session "
        "expires, the node is deleted) and zkelect's (node deleted → successor leads). Each "
        "victim is then SIGKILLed by PID and replaced. The timeout is 4 s because "
        "ZooKeeper's own expiry granularity is a tick (200 ms here): ZooKeeper expires a "
        "session between "
        "`timeout` and `timeout + tickTime` after the last packet it heard (and followers "
        "report their sessions' activity to the leader every half tick), and the last packet "
        "was up to a ping or lease heartbeat interval before the crash: so a failover can be "
        "shorter than the timeout, and can exceed it by up to about a tick and a half "
        "(300 ms: 10% of a 3 s timeout, 7.5% of 4 s).",
        "",
    ]
    table_rows = []
    for name, s in res["by_signal"].items():
        table_rows.append(
            [
                name,
                s["trials"],
                f(s["failover_median_s"], 3),
                f(s["failover_p90_s"], 3),
                f(s["failover_max_s"], 3),
                f"{s['median_ratio_to_session_timeout']:.2f}×",
                f"{s['max_ratio_to_session_timeout']:.2f}×",
                f"{s['within_target']}/{s['trials']}",
                f(s["zkelect_part_median_ms"], 1),
                f(s["zkelect_part_max_ms"], 1),
            ]
        )
    body += [
        table(
            [
                "signal",
                "trials",
                "median s",
                "p90 s",
                "max s",
                "median / timeout",
                "max / timeout",
                "within timeout + 10%",
                "zkelect's part, median ms",
                "zkelect's part, max ms",
            ],
            table_rows,
            "lrrrrrrrrr",
        ),
        "",
    ]
    if img:
        body += [f"![Failover time against the session timeout]({img})", ""]
    body += ["Verdicts:", ""]
    for name, s in res["by_signal"].items():
        body.append(
            f"- {name}: every failover within the session timeout + 10% "
            f"({timeout * (1 + CRASH_SLACK):.2f} s): "
            f"{verdict(s['within_target'] == s['trials'])} (worst "
            f"{s['max_ratio_to_session_timeout']:.2f}×)."
        )
    body.append("")
    return "\n".join(body)


def section_fenced(fence: dict[str, Any], img: str | None) -> str:
    body = [
        "## 5. Fenced write cost",
        "",
        "Fenced and plain writes alternate (which goes first alternates too); medians of "
        f"{fence['params']['samples']} each after {fence['params']['warmup']} warm-up. "
        "ZooKeeper: `Leadership.set_data` (one multi-op: check our candidate node, set) "
        "against a plain `set` on the same session. SQLite: `SQLiteFencedStore.write` "
        "against a plain `BEGIN IMMEDIATE` transaction with the same action, both on a new "
        "connection per write (as the store does). PostgreSQL (throwaway local server, fsync "
        "off): `PostgresFencedStore.write` against a plain transaction with the same action, "
        "once on one open connection (what a pool gives), once with a new connection per "
        "write (the store's behaviour when given a conninfo string); fewer samples there.",
        "",
    ]
    rows = [
        [
            r["name"],
            f(r["fenced_ms"]["median"], 3),
            f(r["plain_ms"]["median"], 3),
            f(r["fenced_ms"]["p90"], 3),
            f(r["plain_ms"]["p90"], 3),
            f"{r['ratio']:.2f}×",
            "reference" if r.get("reference") else verdict(r["ratio"] <= FENCE_TARGET),
        ]
        for r in fence["results"]
    ]
    body += [
        table(
            [
                "write",
                "fenced median ms",
                "plain median ms",
                "fenced p90 ms",
                "plain p90 ms",
                "ratio of medians",
                f"≤ {FENCE_TARGET}×",
            ],
            rows,
            "lrrrrrl",
        ),
        "",
    ]
    if fence.get("skipped"):
        body += [f"*{fence['skipped']}*", ""]
    if img:
        body += [f"![Fenced against plain writes]({img})", ""]
    return "\n".join(body)


def section_idle(idle: dict[str, Any], img: str | None) -> str:
    p = idle["params"]
    body = [
        "## 6. CPU of an idle candidate and an idle leader",
        "",
        "One process per candidate (`bench/candidate.py`), one election each on its own "
        f"session (session timeout {p['session_timeout_s']:g} s); kazoo's `Election` beside "
        f"zkelect for reference. utime + stime of the whole process (`/proc/<pid>/stat`) "
        f"over a {p['window_s']:g} s quiet window after {p['settle_s']:g} s of settling; "
        f"{p['clock_ticks_per_s']} ticks = one CPU second. What an idle zkelect session "
        "does: kazoo's pings (only when the connection is otherwise quiet) and zkelect's "
        "lease heartbeat, one `exists` every session timeout / 4.",
        "",
        table(
            ["", "role", "ticks/s", "% of a core", "threads", "RSS MB", f"≤ {IDLE_TARGET} ticks/s"],
            [
                [
                    r["impl"],
                    r["role"],
                    f(r["ticks_per_s"], 3),
                    f(r["cpu_percent"], 3),
                    r["threads"],
                    f(r["rss_mb"], 1),
                    verdict(r["ticks_per_s"] <= IDLE_TARGET) if r["impl"] == "zkelect" else "–",
                ]
                for r in idle["results"]
            ],
            "llrrrrl",
        ),
        "",
    ]
    if img:
        body += [f"![Idle CPU]({img})", ""]
    return "\n".join(body)


def section_limits(data: dict[str, dict[str, Any] | None]) -> str:
    body = ["## What limits zkelect here", ""]
    h = data.get("handover")
    handover = report_handover.limits(h) if h else None
    if handover:
        body.append(handover)
    scale = data.get("scale")
    joins = report_scale.limits(scale) if scale else None
    if joins:
        body.append(joins)
    fence = data.get("fenced_write")
    if fence:
        pooled = next((r for r in fence["results"] if "one open connection" in r["name"]), None)
        if pooled and pooled["ratio"] > FENCE_TARGET:
            body.append(
                f"- **Fenced PostgreSQL writes** ({pooled['ratio']:.2f}× plain on an open "
                "connection): the fence is one statement sent with `BEGIN` in one round trip, "
                "so fenced and plain writes make the same round trips; the rest is the server "
                "executing the fence (a one-row upsert, about as costly as the action's own "
                "statement) and the store's Python around it."
            )
    if len(body) == 2:
        body.append("- Nothing: every target above is met.")
    body.append("")
    return "\n".join(body)


# --------------------------------------------------------------------------- the document


def generate(out: Path, docs: Path, images: Path) -> None:
    names = ["handover", "herd", "crash", "scale", "fenced_write", "idle_cpu", "switchover"]
    data = {name: load(out, name) for name in names}
    run = load(out, "run")
    images.mkdir(parents=True, exist_ok=True)
    docs.parent.mkdir(parents=True, exist_ok=True)
    made = plots.make_all(data, images)
    img = {name: rel(path, docs) for name, path in made.items() if path is not None}
    parts = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (bench/run_all.py and bench/report.py) from "
        "bench/results/*.json: do not edit by hand. -->",
        "",
        "zkelect side by side with kazoo's `Election`, Apache Curator's `LeaderLatch` and "
        "the ZooKeeper floor, on a local 3-member ensemble. `make bench` (= `./dev bench`) "
        "runs every benchmark end to end, writes `bench/results/*.json` and regenerates this "
        "page and its plots; `bench/README.md` explains each script.",
        "",
    ]
    if plots.UNAVAILABLE:
        parts += [f"*Plots skipped: {plots.UNAVAILABLE}.*", ""]
    parts += [section_setup(data, run)]
    summary = summary_rows(data)
    if summary:
        parts += [
            "## Targets at a glance",
            "",
            "The targets are the issues' (DESIGN §7, issue 14; issue 16 for `AsyncElection`, "
            "issue 17 for the switchover); each verdict is computed from this run's results.",
            "",
            table(["target", "measured", "verdict"], summary, "lll"),
            "",
        ]
    sections = [
        ("handover", report_handover.section),
        ("herd", section_herd),
        ("crash", section_crash),
        ("scale", report_scale.section),
        ("fenced_write", section_fenced),
        ("idle_cpu", section_idle),
        ("switchover", report_switchover.section),
    ]
    for name, render in sections:
        item = data.get(name)
        if item is None:
            status = ((run or {}).get("benchmarks", {}).get(name) or {}).get("status", "not run")
            parts += [f"## {name}", "", f"No results ({status}).", ""]
            continue
        parts.append(render(item, img.get(name)))
    parts.append(section_limits(data))
    parts += [
        "## Reproducing",
        "",
        "```sh",
        "make bench                                  # everything, ~10 minutes",
        "python bench/run_all.py --only handover     # one benchmark (bench/README.md)",
        "python bench/run_all.py --report-only       # this page from bench/results/*.json",
        "python bench/run_all.py --smoke --output-dir /tmp/b   # the test suite's smoke run",
        "```",
        "",
    ]
    docs.write_text("\n".join(parts).rstrip() + "\n")
