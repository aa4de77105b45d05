"""The benchmark plots (matplotlib, Agg backend: no display needed), from the results files.

``make_all(data, images)`` writes one PNG per benchmark that has results and returns
{benchmark name: path}. Without matplotlib (``pip install 'zkelect[bench]'``) it writes
nothing and ``UNAVAILABLE`` says why, so the report can still be generated.
"""

# ruff: noqa: RUF001  (the multiplication sign and the en dash are meant: typography)

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

UNAVAILABLE: str | None = None
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as exc:  # pragma: no cover - depends on the environment
    UNAVAILABLE = f"matplotlib is not installed ({exc}); pip install 'zkelect[bench]'"

COLORS = {
    "floor": "#9e9e9e",
    "notification": "#616161",
    "zkelect": "#1565c0",
    "zkelect-async": "#64b5f6",
    "kazoo": "#ef6c00",
    "curator": "#2e7d32",
    "naive": "#c62828",
    "plain": "#9e9e9e",
    "fenced": "#1565c0",
}
DPI = 110
FLOOR_TARGET = 0.85  # issue 14: zkelect's median handover <= this x the re-reading floor


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def handover(h: dict[str, Any], path: Path) -> Path:
    rows = h["results"]
    sizes = h["params"]["sizes"]
    impls = [
        i
        for i in ("floor", "notification", "zkelect", "zkelect-async", "kazoo", "curator")
        if any(r["implementation"] == i for r in rows)
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(impls)
    small = 7 if len(impls) <= 5 else 5.5  # the ratios' labels must fit their bars
    for k, impl in enumerate(impls):
        xs, med, p90, p99, ratio = [], [], [], [], []
        for j, n in enumerate(sizes):
            r = next((r for r in rows if r["n"] == n and r["implementation"] == impl), None)
            if r is None:
                continue
            xs.append(j + (k - (len(impls) - 1) / 2) * width)
            med.append(r["median_ms"])
            p90.append(r["p90_ms"])
            p99.append(r["p99_ms"])
            ratio.append(r["median_ratio"])
        color = COLORS[impl]
        name = {"floor": "re-reading floor", "notification": "notification floor"}.get(impl, impl)
        left.bar(xs, med, width, color=color, label=name)
        above = [b - a for a, b in zip(med, p90, strict=True)]
        left.errorbar(
            xs, med, yerr=[[0] * len(med), above], fmt="none", ecolor="black", capsize=3, lw=1
        )
        left.scatter(xs, p99, marker="_", color="black", s=60, zorder=3)
        right.bar(xs, ratio, width, color=color, label=name)
        for x, v in zip(xs, ratio, strict=True):
            right.text(x, v + 0.03, f"{v:.2f}", ha="center", va="bottom", fontsize=small)
    for ax in (left, right):
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"N = {n:,}" for n in sizes])
    top_ms = max(r["p99_ms"] for r in rows if r["implementation"] in impls)
    top_ratio = max(r["median_ratio"] for r in rows if r["implementation"] in impls)
    left.set_yscale("log")  # the p99 of a few rounds can be 10x the median
    bottom = min(r["median_ms"] for r in rows if r["implementation"] in impls)
    left.set_ylim(min(1.0, bottom * 0.7), top_ms * 4)  # room for the legend
    right.set_ylim(0, max(1.5, top_ratio) * 1.3)
    left.set_ylabel("ms, log scale (bar: median, whisker: p90, dash: p99)")
    left.set_title("Leader resigns → successor leads")
    right.axhline(
        FLOOR_TARGET,
        color=COLORS["zkelect"],
        ls="--",
        lw=1,
        label=f"zkelect target {FLOOR_TARGET}×",
    )
    right.set_ylabel("median / re-reading floor median")
    right.set_title("Ratio to the re-reading floor (delete + get_children)")
    right.legend(fontsize=7, loc="upper center", ncol=3)
    left.legend(fontsize=7, loc="upper center", ncol=3)
    return _save(fig, path)


def herd(data: dict[str, Any], path: Path) -> Path:
    rows = data["results"]
    sizes = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    metrics = [
        ("candidates woken per leader change", lambda r: r["leader_change"]["candidates_woken"]),
        (
            "server watch notifications per change",
            lambda r: r["leader_change"]["server_notifications"],
        ),
        ("ZooKeeper requests per change", lambda r: r["leader_change"]["requests"]),
    ]
    for ax, (title, get) in zip(axes, metrics, strict=True):
        for k, recipe in enumerate(("zkelect", "naive")):
            xs, ys, true = [], [], []
            for j, n in enumerate(sizes):
                r = next((r for r in rows if r["n"] == n and r["recipe"] == recipe), None)
                if r is not None:
                    xs.append(j + (k - 0.5) * 0.38)
                    true.append(get(r))
                    ys.append(max(get(r), 0.5))  # log scale: 0 drawn as a stub
            ax.bar(xs, ys, 0.38, color=COLORS[recipe], label=recipe)
            for x, y, t in zip(xs, ys, true, strict=True):
                ax.text(x, y * 1.15, f"{t:g}", ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylim(0.4, max(5000, max(n for n in sizes) * 5))
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"N = {n:,}" for n in sizes])
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Herd effect: zkelect (predecessor watch) vs naive (children watch)", fontsize=11)
    return _save(fig, path)


def scale(data: dict[str, Any], path: Path) -> Path:
    per = data["results"]["elections_per_session"]
    labels = [
        f"{r['impl']}\n{textwrap.fill(r.get('variant', ''), 16, break_long_words=False)}"
        f"\n× {r['elections']:,}"
        for r in per
    ]
    colors = [COLORS.get(r["impl"], "#555") for r in per]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    panels = [
        ("threads in the process", [r["threads"] for r in per], True),
        ("peak RSS, MB", [r["peak_rss_mb"] for r in per], False),
        ("time until all resolved, s", [r["time_to_all_resolved_s"] for r in per], False),
        ("elections resolved per second", [r["elections_per_s"] for r in per], False),
    ]
    for ax, (title, values, log) in zip(axes, panels, strict=True):
        ax.bar(range(len(values)), values, color=colors)
        for i, v in enumerate(values):
            text = f"{v:,}" if isinstance(v, int) else f"{v:,.0f}" if v >= 10 else f"{v:.1f}"
            ax.text(i, v, text, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
        ax.margins(y=0.15)
    fig.suptitle("Many elections on one session (each run in its own process)", fontsize=11)
    return _save(fig, path)


def crash(data: dict[str, Any], path: Path) -> Path:
    res = data["results"]
    timeout = res["session_timeout_s"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    names = list(res["by_signal"])
    for i, name in enumerate(names):
        trials = [t for t in res["trials"] if t["signal"] == name]
        ys = [t["failover_s"] for t in trials]
        xs = [i + (k / max(1, len(ys) - 1) - 0.5) * 0.5 for k in range(len(ys))]
        ax.scatter(xs, ys, color=COLORS["zkelect"], s=18, zorder=3)
    ax.axhline(timeout, color="black", lw=1, label=f"session timeout {timeout:g} s")
    ax.axhline(timeout * 1.1, color="#c62828", lw=1, ls="--", label="timeout + 10% (target)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"leader got {n}" for n in names])
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, timeout * 1.3)
    ax.set_ylabel("crash → successor leads, s")
    ax.set_title("Crash failover, one dot per trial")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def fenced(data: dict[str, Any], path: Path) -> Path:
    rows = data["results"]
    fig, ax = plt.subplots(figsize=(10, 3.9))
    labels = [r["name"].replace(" (", "\n(").replace(": ", ":\n") for r in rows]
    xs = range(len(rows))
    ax.bar(
        [x - 0.2 for x in xs],
        [r["plain_ms"]["median"] for r in rows],
        0.4,
        color=COLORS["plain"],
        label="plain",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [r["fenced_ms"]["median"] for r in rows],
        0.4,
        color=COLORS["fenced"],
        label="fenced",
    )
    for x, r in zip(xs, rows, strict=True):
        ax.text(
            x + 0.2,
            r["fenced_ms"]["median"],
            f"{r['ratio']:.2f}×",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("median write, ms")
    ax.set_yscale("log")
    ax.set_title("Fenced vs plain writes (label: ratio of medians)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def idle(data: dict[str, Any], path: Path) -> Path:
    rows = data["results"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [f"{r['impl']}\n{r['role']}" for r in rows]
    values = [r["ticks_per_s"] for r in rows]
    ax.bar(range(len(rows)), values, color=[COLORS.get(r["impl"], "#555") for r in rows])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(0.5, color="#c62828", lw=1, ls="--", label="target ≤ 0.5 ticks/s")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels)
    ax.set_ylim(0, max(0.7, max(values, default=0) * 1.3))
    ax.set_ylabel("CPU ticks per second (100 = 1 core)")
    ax.set_title(f"Idle process, {data['params']['window_s']:g} s window")
    ax.legend(fontsize=8)
    return _save(fig, path)


PLOTS = {
    "handover": handover,
    "herd": herd,
    "crash": crash,
    "scale": scale,
    "fenced_write": fenced,
    "idle_cpu": idle,
}


def make_all(data: dict[str, dict[str, Any] | None], images: Path) -> dict[str, Path | None]:
    made: dict[str, Path | None] = {}
    if UNAVAILABLE:
        return made
    for name, draw in PLOTS.items():
        item = data.get(name)
        if item is None:
            continue
        made[name] = draw(item, images / f"bench-{name.replace('_', '-')}.png")
    return made
