"""The fenced-write benchmark runs end to end (so it cannot rot) and prints its ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_fenced_write_benchmark_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "fenced.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "fenced_write.py"),
            "--quick",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "fenced ZooKeeper write:" in done.stdout
    results = json.loads(output.read_text())["results"]
    assert [row["name"] for row in results] == ["zookeeper set", "sqlite transaction"]
    assert all(row["ratio"] > 0 for row in results)
