"""The README's demo and the handover benchmark, run end to end as users run them.

Both are scripts nobody would otherwise run in CI, so they could rot silently: here the
demo must show a failover with a higher epoch and a refused stale write and leave no
ZooKeeper server behind, and the benchmark's smoke run must print its three ratio lines.
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


def test_demo_fails_over_to_a_higher_epoch_and_rejects_the_stale_write() -> None:
    result = run_python(["-m", "zkelect.demo"], timeout=90)
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{output}\n{result.stderr}"
    assert "Traceback" not in output + result.stderr, result.stderr

    first = re.search(r"^first leader: (\S+) epoch=0x([0-9a-f]+)$", output, re.MULTILINE)
    new = re.search(r"^new leader: (\S+) epoch=0x([0-9a-f]+) ", output, re.MULTILINE)
    assert first and new, output
    first_id, first_epoch = first.group(1), int(first.group(2), 16)
    new_id, new_epoch = new.group(1), int(new.group(2), 16)
    assert new_id != first_id, output
    assert new_epoch > first_epoch, output
    assert re.search(rf"\] {re.escape(first_id)} revoked  reason=\S+", output), output
    assert re.search(rf"\] {re.escape(new_id)} elected  epoch=0x{new_epoch:x}$", output, re.M)

    stale = re.search(
        r"stale request for 'assignment' refused: epoch 0x([0-9a-f]+) is lower than "
        r"epoch 0x([0-9a-f]+)",
        output,
    )
    assert stale, output
    assert int(stale.group(1), 16) == first_epoch
    assert int(stale.group(2), 16) == new_epoch
    assert "fenced ZooKeeper write with the old Leadership refused" in output
    assert "old handle: lost.is_set()=True" in output
    assert re.search(r"^summary: ", output, re.MULTILINE), output

    assert_all_gone(ensemble_pids(output))


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
    assert {row["implementation"] for row in data["results"]} == {"floor", "zkelect", "kazoo"}
    assert all(row["n"] == 5 for row in data["results"])
    assert data["machine"]["cpu_count"] and data["machine"]["zookeeper"]

    assert_all_gone(ensemble_pids(output))
