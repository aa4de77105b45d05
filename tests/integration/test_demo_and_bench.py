"""The demo's command line and the handover benchmark, run as users run them.

The benchmark is a script nobody would otherwise run in CI, so it could rot silently: its
smoke run must print its three ratio lines and leave no ZooKeeper server behind. The demo
itself runs end to end in test_cli_demo.py (``zkelect demo``, what ``./dev demo`` runs);
here, its options, its one-line errors and its hidden worker command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zkelect.testing import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_python(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` from the repository root with the checkout importable. On
    timeout subprocess.run SIGKILLs the child; its ZooKeeper servers die with it
    (LocalEnsemble sets PR_SET_PDEATHSIG)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ensemble_pids(output: str) -> list[int]:
    match = re.search(r"^ensemble pids: ([\d ]+)$", output, re.MULTILINE)
    assert match, f"no 'ensemble pids:' line in:\n{output}"
    pids = [int(pid) for pid in match.group(1).split()]
    assert len(pids) == 3, pids
    return pids


def assert_all_gone(pids: list[int]) -> None:
    wait_for(
        lambda: not [pid for pid in pids if alive(pid)],
        timeout=10,
        message=f"ZooKeeper servers still running among {pids}",
    )


def test_demo_command_line_and_its_worker(tmp_path: Path) -> None:
    """``zkelect demo`` (what ``./dev demo`` runs; end to end in test_cli_demo.py): its
    options, one-line errors; its hidden worker refuses to run without a fencing token."""
    zkelect = ["-m", "zkelect.ops.cli.main"]
    result = run_python([*zkelect, "demo", "--help"], timeout=30)
    assert result.returncode == 0, result.stderr
    assert "zkelect demo" in result.stdout and "--session-timeout" in result.stdout

    result = run_python([*zkelect, "demo", "--session-timeout", "60"], timeout=30)
    assert result.returncode == 2, result.stderr
    assert "--session-timeout" in result.stderr and "less than or equal to 10" in result.stderr
    assert "Traceback" not in result.stderr

    assert "ZKELECT_TOKEN" not in os.environ  # the worker is started by `zkelect run` only
    result = run_python([*zkelect, "demo-worker", "--db", str(tmp_path / "store.db")], timeout=30)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.startswith("zkelect: demo-worker: ") and len(result.stderr.splitlines()) == 1
    )


def test_handover_benchmark_quick_run_prints_every_ratio(tmp_path: Path) -> None:
    results = tmp_path / "handover.json"
    result = run_python(["bench/handover.py", "--quick", "--output", str(results)], timeout=180)
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{output}\n{result.stderr}"

    for name in ("floor", "zkelect", "kazoo"):
        row = rf"^{name}\s+5\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+x\s+\d+\.\d+x$"
        assert re.search(row, output, re.MULTILINE), f"no ratio line for {name}:\n{output}"
    assert re.search(r"^N=5: zkelect median \d+\.\d+x floor .*: target (NOT )?met$", output, re.M)

    data = json.loads(results.read_text())
    implementations = {row["implementation"] for row in data["results"]}
    assert implementations == {"floor", "notification", "zkelect", "kazoo"}
    assert all(row["n"] == 5 for row in data["results"])
    assert data["machine"]["cpu_count"] and data["machine"]["zookeeper"]

    assert_all_gone(ensemble_pids(output))
