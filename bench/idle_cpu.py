#!/usr/bin/env python3
"""CPU cost of an idle candidate and an idle leader (ticks per second, from /proc).

Four candidate processes (bench/candidate.py), each one election on its own session with
the default session timeout (10 s): a zkelect leader and a zkelect follower on one path, a
kazoo ``Election`` leader and follower on another, for reference. After they settle, the
utime + stime of each process (``/proc/<pid>/stat``, all threads) is read at the start and
at the end of a quiet window (60 s); the difference over the window is the idle cost, in
clock ticks per second (``SC_CLK_TCK`` ticks = 1 CPU second).

Target (issue 7): near zero between events.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLOCK_TICKS,
    BenchError,
    Children,
    base_parser,
    cpu_ticks,
    default_output,
    ensemble_for,
    exit_on_sigterm,
    machine_info,
    proc_status,
    python_command,
    write_result,
)

SESSION_TIMEOUT = 10.0
TARGET_TICKS_PER_S = 0.5  # "near zero": under half a tick per second (< 0.5% of one core)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("Idle CPU of a zkelect leader and candidate (and kazoo's).")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    args = parser.parse_args(argv)
    if args.smoke:
        args.window, args.settle = 3.0, 0.5
    output = args.output or default_output("idle_cpu", args.smoke)
    exit_on_sigterm()
    began = time.perf_counter()
    children = Children()
    rows: list[dict[str, Any]] = []
    try:
        with (
            ensemble_for(args.hosts) as ensemble,
            tempfile.TemporaryDirectory(prefix="zkelect-bench-idle-") as logs,
        ):
            machine = machine_info(ensemble)
            stamp = int(time.time() * 1000)
            procs = []
            for impl in ("zkelect", "kazoo"):
                path = f"/bench/idle/{impl}-{stamp}"
                for role in ("leader", "candidate"):
                    name = f"{impl}-{role}"
                    child = children.start(
                        python_command(
                            "candidate.py",
                            "--impl",
                            impl,
                            "--hosts",
                            ensemble.hosts,
                            "--path",
                            path,
                            "--id",
                            name,
                            "--session-timeout",
                            f"{SESSION_TIMEOUT:g}",
                        ),
                        name=name,
                        log=Path(logs) / f"{name}.log",
                    )
                    ready = child.expect("READY")
                    if role == "leader":
                        child.expect("ELECTED")
                    procs.append((impl, role, child, float(ready.split()[2])))
            time.sleep(args.settle)
            before = {child.pid: cpu_ticks(child.pid) for _, _, child, _ in procs}
            time.sleep(args.window)
            for impl, role, child, timeout in procs:
                if child.proc.poll() is not None:
                    raise BenchError(f"{child.name} exited during the idle window")
                ticks = cpu_ticks(child.pid) - before[child.pid]
                if role == "candidate" and child.poll_line("ELECTED"):
                    raise BenchError(f"{child.name} was elected during the idle window")
                status = proc_status(child.pid)
                rows.append(
                    {
                        "impl": impl,
                        "role": role,
                        "ticks": ticks,
                        "ticks_per_s": round(ticks / args.window, 3),
                        "cpu_percent": round(100.0 * ticks / CLOCK_TICKS / args.window, 3),
                        "threads": status["Threads"],
                        "rss_mb": round(status["VmRSS"] / 1024, 1),
                        "session_timeout_s": timeout,
                    }
                )
            print(f"{'impl':<9}{'role':<11}{'ticks/s':>9}{'cpu %':>8}{'threads':>9}{'rss MB':>8}")
            for r in rows:
                print(
                    f"{r['impl']:<9}{r['role']:<11}{r['ticks_per_s']:>9.3f}"
                    f"{r['cpu_percent']:>8.3f}{r['threads']:>9}{r['rss_mb']:>8}"
                )
            met = {
                r["role"]: r["ticks_per_s"] <= TARGET_TICKS_PER_S
                for r in rows
                if r["impl"] == "zkelect"
            }
            for role, ok in met.items():
                print(
                    f"idle zkelect {role}: {'target met' if ok else 'target NOT met'} "
                    f"(<= {TARGET_TICKS_PER_S} ticks/s)"
                )
            write_result(
                output,
                benchmark="idle_cpu",
                description="CPU ticks per second of idle candidate processes (one election each)",
                ensemble=ensemble,
                machine=machine,
                params={
                    "window_s": args.window,
                    "settle_s": args.settle,
                    "session_timeout_s": SESSION_TIMEOUT,
                    "clock_ticks_per_s": CLOCK_TICKS,
                    "smoke": bool(args.smoke),
                },
                results=rows,
                began=began,
                target={"max_ticks_per_s": TARGET_TICKS_PER_S, "met": met},
            )
    except KeyboardInterrupt:
        print("interrupted: candidates and the ensemble were stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"idle benchmark failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
