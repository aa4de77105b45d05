"""The scale part of docs/benchmarks.md: the join targets, the section, the limits bullet.

Issue 14's targets, in one run: 10,000 elections joined with ``start(wait=False)`` on one
session all led in less time than kazoo's ``Election`` takes for 2,000 with a thread each,
with at most 10 threads; a loop of 2,000 plain blocking ``start()`` calls all led no slower
than kazoo's 2,000 threads. Issue 16's: 10,000 ``AsyncElection``s joined from one event loop
with ``await asyncio.gather(*(e.start() for e in elections))`` all led within 1.1x the time of
the 10,000 ``start(wait=False)``, with at most 10 threads. Every verdict is computed here from
bench/results/scale.json.
"""

# ruff: noqa: RUF001  (the multiplication sign and the en dash are meant: typography)

from __future__ import annotations

from typing import Any

from markdown import f, table, verdict

__all__ = ["ASYNC_MAX_RATIO", "MAX_THREADS", "limits", "rows_by_label", "section", "summary_rows"]

MAX_THREADS = 10
ASYNC_MAX_RATIO = 1.1


def rows_by_label(scale: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Elections-per-session rows: 'zkelect' (blocking start()), 'zkelect-nowait',
    'zkelect-async' (AsyncElections, starts gathered), 'kazoo'."""
    out: dict[str, dict[str, Any]] = {}
    for r in scale["results"]["elections_per_session"]:
        key = r["impl"] + ("-nowait" if r.get("variant") == "start(wait=False)" else "")
        out[key] = r
    return out


def label(r: dict[str, Any]) -> str:
    if r["impl"] == "zkelect-async":
        return f"zkelect `AsyncElection` `{r['variant']}`"
    return f"{r['impl']} `{r['variant']}`" if r.get("variant") else r["impl"]


def _pipelined_ok(nowait: dict[str, Any], kazoo: dict[str, Any]) -> bool:
    faster = nowait["time_to_all_resolved_s"] < kazoo["time_to_all_resolved_s"]
    return bool(faster and nowait["threads"] <= MAX_THREADS)


def _blocking_ok(blocking: dict[str, Any], kazoo: dict[str, Any]) -> bool:
    return bool(blocking["time_to_all_resolved_s"] <= kazoo["time_to_all_resolved_s"])


def _async_ratio(gathered: dict[str, Any], nowait: dict[str, Any]) -> float:
    return float(gathered["time_to_all_resolved_s"] / nowait["time_to_all_resolved_s"])


def _async_ok(gathered: dict[str, Any], nowait: dict[str, Any]) -> bool:
    ratio_ok = _async_ratio(gathered, nowait) <= ASYNC_MAX_RATIO
    return bool(ratio_ok and gathered["threads"] <= MAX_THREADS)


def _async_text(gathered: dict[str, Any], nowait: dict[str, Any]) -> str:
    return (
        f"{gathered['time_to_all_resolved_s']:.2f} s with {gathered['threads']} threads: "
        f"{_async_ratio(gathered, nowait):.2f}× `start(wait=False)`'s "
        f"{nowait['time_to_all_resolved_s']:.2f} s"
    )


def summary_rows(scale: dict[str, Any]) -> list[list[str]]:
    by = rows_by_label(scale)
    nowait, blocking, kazoo = by.get("zkelect-nowait"), by.get("zkelect"), by.get("kazoo")
    gathered = by.get("zkelect-async")
    out: list[list[str]] = []
    if nowait and kazoo:
        out.append(
            [
                f"4 · joins: {nowait['elections']:,} elections on one session "
                "(`start(wait=False)`) all led sooner than kazoo's "
                f"{kazoo['elections']:,} with a thread each, ≤ {MAX_THREADS} threads",
                f"{nowait['time_to_all_resolved_s']:.2f} s with {nowait['threads']} threads; "
                f"kazoo {kazoo['time_to_all_resolved_s']:.2f} s",
                verdict(_pipelined_ok(nowait, kazoo)),
            ]
        )
    if blocking and kazoo:
        out.append(
            [
                f"4 · joins: a loop of {blocking['elections']:,} blocking `start()` all led no "
                f"slower than kazoo's {kazoo['elections']:,} threads",
                f"{blocking['time_to_all_resolved_s']:.2f} s; kazoo "
                f"{kazoo['time_to_all_resolved_s']:.2f} s",
                verdict(_blocking_ok(blocking, kazoo)),
            ]
        )
    if gathered and nowait:
        out.append(
            [
                f"4 · joins: {gathered['elections']:,} `AsyncElection`s, `await "
                "asyncio.gather(*(e.start() …))` from one loop, all led within "
                f"{ASYNC_MAX_RATIO}× the time of {nowait['elections']:,} `start(wait=False)`, "
                f"≤ {MAX_THREADS} threads",
                _async_text(gathered, nowait),
                verdict(_async_ok(gathered, nowait)),
            ]
        )
    for r in scale["results"]["join"]:
        if r["impl"] == "zkelect":
            out.append(
                [
                    f"4 · scale: {r['candidates']:,} candidates joining one election at once",
                    f"first leader after {r['time_to_first_leader_s'] * 1000:.0f} ms, "
                    f"{r['requests_per_candidate']:.1f} requests per candidate",
                    "no numeric target",
                ]
            )
    return out


def section(scale: dict[str, Any], img: str | None) -> str:
    res = scale["results"]
    body = [
        "## 4. Scale",
        "",
        "Each measurement runs in a fresh subprocess, so its threads and peak RSS (`VmHWM`) "
        "are its own. **Elections per session**: one KazooClient, one candidate on each of "
        "E fresh election paths (so each resolves to a leader). zkelect, from the main "
        "thread, default configuration (per session: 2 worker threads, 1 timer thread, 1 "
        "callback thread): E `Election.start(wait=False)` calls, which return at once and "
        "pipeline the joins, and a loop of E plain blocking `start()` calls, each returning "
        "after its election's first attempt to join. kazoo: E `Election.run(func)` calls, a "
        "thread each (kazoo's recipe blocks a thread while it waits and while it leads). "
        "zkelect `AsyncElection` (issue 16): E `AsyncElection`s on one event loop (the "
        "worker's main thread), joined with `await asyncio.gather(*(e.start() for e in "
        "elections))`; each has led when its `on_elected` (a plain function, run on the "
        "loop) ran; its idle CPU is taken with the loop free. It and the `start(wait=False)` "
        f"row it is compared with run {scale['params'].get('join_trials', 1)} times each, "
        "alternated, and their time until all led is the median of those runs. "
        "Measured: from the first start until every election has led (`on_elected` / `func` "
        "called); requests per election are `zk_packets_received` deltas; idle CPU is the "
        "process's over a few seconds with every election held.",
        "",
    ]
    rows = [
        [
            label(r),
            f"{r['elections']:,}",
            r["threads"],
            f(r["peak_rss_mb"], 0),
            f(r["rss_per_election_kb"], 1),
            f(r["time_to_all_resolved_s"], 1),
            f(r["elections_per_s"], 0),
            f(r["requests_per_election"], 1),
            f(r["idle_cpu_ticks_per_s"], 2),
        ]
        for r in res["elections_per_session"]
    ]
    body += [
        table(
            [
                "",
                "elections on 1 session",
                "threads",
                "peak RSS MB",
                "RSS per election kB",
                "time until all led s",
                "elections/s",
                "requests per election",
                "idle ticks/s",
            ],
            rows,
        ),
        "",
        "**Candidates per election**: C candidates on one path over S sessions join at once "
        "(one starter thread per session, released together; zkelect's `start()` calls run "
        "back to back on each, kazoo starts a thread per candidate). Measured: time to the "
        "first leader, time until every candidate has its node and holds its watch, and "
        "requests per candidate (net of the benchmark's own reads).",
        "",
        table(
            [
                "",
                "candidates",
                "sessions",
                "first leader ms",
                "all joined s",
                "requests per candidate",
                "threads",
                "peak RSS MB",
            ],
            [
                [
                    r["impl"],
                    f"{r['candidates']:,}",
                    r["sessions"],
                    f(r["time_to_first_leader_s"] * 1000, 0),
                    f(r["time_to_all_joined_s"], 2),
                    f(r["requests_per_candidate"], 2),
                    r["threads"],
                    f(r["peak_rss_mb"], 0),
                ]
                for r in res["join"]
            ],
        ),
        "",
    ]
    if img:
        body += [f"![Threads, memory and time for many elections on one session]({img})", ""]
    return "\n".join(body + _verdicts(scale))


def _verdicts(scale: dict[str, Any]) -> list[str]:
    by = rows_by_label(scale)
    nowait, blocking, kazoo = by.get("zkelect-nowait"), by.get("zkelect"), by.get("kazoo")
    gathered = by.get("zkelect-async")
    if kazoo is None:
        return []
    lines = ["Verdicts:", ""]
    if nowait:
        lines.append(
            f"- {nowait['elections']:,} elections with `start(wait=False)` all led in "
            f"{nowait['time_to_all_resolved_s']:.2f} s with {nowait['threads']} threads in the "
            f"whole process, against {kazoo['time_to_all_resolved_s']:.2f} s and "
            f"{kazoo['threads']:,} threads for kazoo's {kazoo['elections']:,} (target: less "
            f"time, ≤ {MAX_THREADS} threads): {verdict(_pipelined_ok(nowait, kazoo))}; "
            f"{nowait['rss_per_election_kb']:.1f} kB per election against "
            f"{kazoo['rss_per_election_kb']:.1f} kB."
        )
    if blocking:
        lines.append(
            f"- A loop of {blocking['elections']:,} blocking `start()` calls: all led in "
            f"{blocking['time_to_all_resolved_s']:.2f} s "
            f"({blocking['elections_per_s']:.0f} elections per second, "
            f"{blocking['requests_per_election']:.1f} requests each), against "
            f"{kazoo['time_to_all_resolved_s']:.2f} s for kazoo's {kazoo['elections']:,} "
            f"threads (target: no slower): {verdict(_blocking_ok(blocking, kazoo))}."
        )
    if gathered and nowait:
        lines.append(
            f"- {gathered['elections']:,} `AsyncElection`s joined from one event loop "
            f"(`await asyncio.gather(*(e.start() …))`) all led in "
            f"{_async_text(gathered, nowait)} for {nowait['elections']:,} (target: ≤ "
            f"{ASYNC_MAX_RATIO}×, ≤ {MAX_THREADS} threads): "
            f"{verdict(_async_ok(gathered, nowait))}; "
            f"{gathered['requests_per_election']:.1f} requests and "
            f"{gathered['rss_per_election_kb']:.1f} kB per election."
        )
    return [*lines, ""]


def limits(scale: dict[str, Any]) -> str | None:
    """The joins bullet of "What limits zkelect here": the missed targets, in figures."""
    by = rows_by_label(scale)
    nowait, blocking, kazoo = by.get("zkelect-nowait"), by.get("zkelect"), by.get("kazoo")
    if kazoo is None:
        return None
    missed = []
    gathered = by.get("zkelect-async")
    if gathered and nowait and not _async_ok(gathered, nowait):
        missed.append(
            f"`AsyncElection` × {gathered['elections']:,}, starts gathered: "
            f"{_async_text(gathered, nowait)}, {gathered['requests_per_election']:.1f} "
            "requests per election"
        )
    for r, ok in ((nowait, _pipelined_ok), (blocking, _blocking_ok)):
        if r is not None and not ok(r, kazoo):
            missed.append(
                f"{label(r)} × {r['elections']:,}: {r['time_to_all_resolved_s']:.2f} s, "
                f"{r['requests_per_election']:.1f} requests per election, {r['threads']} "
                "threads"
            )
    if not missed:
        return None
    return (
        "- **Joining many elections**: "
        + "; ".join(missed)
        + f", against kazoo's {kazoo['elections']:,} threads in "
        f"{kazoo['time_to_all_resolved_s']:.2f} s ({kazoo['requests_per_election']:.1f} "
        "requests per election). A blocking `start()` waits for its election's round trips "
        "one after another, so the joins of one thread overlap only as far as the session "
        "lets them; requests per election on a fresh path say how many round trips that is."
    )
