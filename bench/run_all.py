#!/usr/bin/env python3
"""Run the whole benchmark suite, then regenerate docs/benchmarks.md and its plots.

    ./dev bench                 # = make bench = python bench/run_all.py
    python bench/run_all.py --only handover,herd
    python bench/run_all.py --report-only      # tables and plots from bench/results/*.json
    python bench/run_all.py --smoke --output-dir /tmp/b   # tiny sizes, one trial (~1 min)

One local 3-member ZooKeeper ensemble (bench/common.py: loopback, tickTime 200 ms) serves
every benchmark; each benchmark runs as its own subprocess with ``--hosts`` (so threads,
memory and crashes stay apart) and writes ``<output-dir>/<name>.json``. A benchmark that
fails or overruns its time limit is stopped by PID and reported as failed; the others still
run and the report says which results are missing. A smoke run writes everything (results,
report, plots) under ``--output-dir`` and never touches bench/results or docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS_DIR,
    ROOT,
    SUITE_ENV,
    child_env,
    exit_on_sigterm,
    new_local_ensemble,
    python_command,
)

from zkelect._lifeline import popen_tied

# name, script, time limit in seconds (full run, smoke run). Most sensitive first.
BENCHMARKS: list[tuple[str, str, float, float]] = [
    ("handover", "handover.py", 420, 90),
    ("herd", "herd.py", 240, 60),
    ("fenced_write", "fenced_write.py", 120, 60),
    ("crash", "crash.py", 300, 60),
    ("idle_cpu", "idle_cpu.py", 150, 60),
    ("scale", "scale.py", 360, 90),
    ("switchover", "switchover.py", 240, 60),
]
DOCS = ROOT / "docs" / "benchmarks.md"
IMAGES = ROOT / "docs" / "img"


def run_one(script: str, args: list[str], limit: float) -> tuple[str, int | None]:
    """Run one benchmark; stop it by PID (SIGTERM, then SIGKILL) if it overruns."""
    proc = popen_tied(python_command(script, *args), cwd=ROOT, env=child_env())
    try:
        code = proc.wait(limit)
        return ("ok" if code == 0 else "failed"), code
    except subprocess.TimeoutExpired:
        print(f"{script}: over its {limit:.0f}s limit, stopping it", file=sys.stderr, flush=True)
        return "timeout", None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # it unwinds: its children and clients stop
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one trial each")
    parser.add_argument("--output-dir", type=Path, help="results directory")
    parser.add_argument("--docs", type=Path, help="the markdown report to write")
    parser.add_argument("--img-dir", type=Path, help="where the PNG plots go")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--skip", help="comma-separated benchmark names")
    parser.add_argument("--report-only", action="store_true", help="only regenerate the report")
    args = parser.parse_args(argv)
    if args.smoke and args.output_dir is None:
        args.output_dir = RESULTS_DIR / "tmp" / "smoke"
    out: Path = args.output_dir or RESULTS_DIR
    docs: Path = args.docs or (out / "benchmarks.md" if args.smoke else DOCS)
    images: Path = args.img_dir or (out / "img" if args.smoke else IMAGES)
    names = [b[0] for b in BENCHMARKS]
    chosen = args.only.split(",") if args.only else names
    skipped = set(args.skip.split(",")) if args.skip else set()
    unknown = (set(chosen) | skipped) - set(names)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; known: {', '.join(names)}")
    out.mkdir(parents=True, exist_ok=True)

    if not args.report_only:
        selected = [b for b in BENCHMARKS if b[0] in chosen and b[0] not in skipped]
        run = run_suite(out, selected, args.smoke)
        (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        print(f"suite finished in {run['duration_s']:.0f}s", flush=True)
    import report

    report.generate(out, docs, images)
    print(f"report written to {docs} (plots in {images})", flush=True)
    if args.report_only:
        return 0
    return 0 if all(b["status"] == "ok" for b in run["benchmarks"].values()) else 1


def run_suite(
    out: Path, benchmarks: list[tuple[str, str, float, float]], smoke: bool
) -> dict[str, Any]:
    began = time.perf_counter()
    run: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "smoke": smoke,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "benchmarks": {},
    }
    print(f"load average at start: {run['load_average_start']}", flush=True)
    try:
        with new_local_ensemble() as ensemble:
            pids = [ensemble.pid(i) for i in range(ensemble.size)]
            print("ensemble pids: " + " ".join(str(p) for p in pids if p), flush=True)
            os.environ[SUITE_ENV] = ensemble.hosts  # the benchmarks record its settings
            for name, script, limit, smoke_limit in benchmarks:
                print(f"\n=== {name} ===", flush=True)
                started = time.perf_counter()
                bench_args = ["--hosts", ensemble.hosts, "--output", str(out / f"{name}.json")]
                if smoke:
                    bench_args.append("--smoke")
                status, code = run_one(script, bench_args, smoke_limit if smoke else limit)
                took = time.perf_counter() - started
                run["benchmarks"][name] = {
                    "status": status,
                    "exit_code": code,
                    "duration_s": round(took, 1),
                }
                print(f"=== {name}: {status} in {took:.0f}s ===", flush=True)
    except KeyboardInterrupt:
        print("interrupted: the benchmark and the ensemble were stopped", file=sys.stderr)
        raise SystemExit(130) from None
    run["duration_s"] = round(time.perf_counter() - began, 1)
    run["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return run


if __name__ == "__main__":
    exit_on_sigterm()
    raise SystemExit(main())
