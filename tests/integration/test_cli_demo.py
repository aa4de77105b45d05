"""``zkelect demo`` end to end, as a user runs it: a failover to a higher epoch after a
SIGKILL, a successor after a freeze, the frozen worker's late write rejected by the fenced
store, the summary and the timeline; exit code 0 and nothing left running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import cli_env

from zkelect.testing import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pids(output: str, what: str) -> list[int]:
    match = re.search(rf"^{what} pids: ([\d ]+)$", output, re.MULTILINE)
    assert match, f"no '{what} pids:' line in:\n{output}"
    return [int(pid) for pid in match.group(1).split()]


def test_zkelect_demo_fails_over_fences_the_frozen_leader_and_leaves_nothing_running() -> None:
    env = cli_env()
    # On timeout subprocess.run SIGKILLs the demo; its ZooKeeper servers and candidates die
    # with it (PR_SET_PDEATHSIG), and the candidates' workers with them.
    result = subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{output}\n{result.stderr}"
    assert "Traceback" not in output + result.stderr, result.stderr

    ensemble, candidates = pids(output, "ensemble"), pids(output, "candidate")
    workers = pids(output, "worker")
    assert len(ensemble) == 3 and len(candidates) == 3 and len(workers) >= 3, output
    everything = ensemble + candidates + workers
    wait_for(
        lambda: not [pid for pid in everything if alive(pid)],
        timeout=10,
        message=f"processes left running among {everything}",
    )

    # 3. the first leader, as ZooKeeper shows it
    first = re.search(r"^leader: (\S+) epoch=0x([0-9a-f]+) = the czxid", output, re.MULTILINE)
    assert first, output
    a, e1 = first.group(1), int(first.group(2), 16)
    assert re.search(rf"^    1\. {a}\s+epoch=0x{e1:x} .*\(leader\)$", output, re.MULTILINE)
    # 4. SIGKILL: the worker dies with its supervisor, the next one leads with a higher epoch
    assert f"{a}'s worker (pid " in output and "died with it: PR_SET_PDEATHSIG" in output
    new = re.search(
        r"^new leader: (\S+) epoch=0x([0-9a-f]+) \(higher than 0x([0-9a-f]+)\), "
        r"(\d+\.\d+)s after the SIGKILL$",
        output,
        re.MULTILINE,
    )
    assert new, output
    b, e2 = new.group(1), int(new.group(2), 16)
    assert b != a and e2 > e1 and int(new.group(3), 16) == e1
    # 5. the frozen leader's successor
    third = re.search(
        r"\] (\S+) elected, epoch 0x([0-9a-f]+), (\d+\.\d+)s after the freeze$", output, re.M
    )
    assert third, output
    c, e3 = third.group(1), int(third.group(2), 16)
    assert c not in (a, b) and e3 > e2
    # 6. the thawed worker's late write, refused with both epochs named
    late = re.search(
        rf"\] {b}'s worker: late write #\d+ with epoch 0x([0-9a-f]+) REJECTED by the fenced "
        r"store \(it has accepted epoch 0x([0-9a-f]+)\)",
        output,
    )
    assert late, output
    assert int(late.group(1), 16) == e2 and int(late.group(2), 16) == e3
    assert re.search(rf"\] {b} revoked \(\w+\): stops its worker$", output, re.MULTILINE)
    # the summary and the timeline
    assert "== summary" in output and "== leadership timeline" in output
    for who, epoch, ended in ((a, e1, "SIGKILLed"), (b, e2, "frozen"), (c, e3, "still leading")):
        assert re.search(rf"^  {who}\s+0x{epoch:x}\s+.*{ended}", output, re.MULTILINE), output
    writes = re.search(
        r"^  writes: (\d+) accepted, (\d+) rejected; the store holds (\d+) records, "
        r"epochs never decrease$",
        output,
        re.MULTILINE,
    )
    assert writes, output
    assert int(writes.group(2)) == 1 and int(writes.group(1)) == int(writes.group(3)) > 0
    assert len(re.findall(r"^  failover \S+ -> \S+ after the", output, re.MULTILINE)) == 2
    for who in (a, b, c):
        assert re.search(rf"^  {who}\s+\|[ #~:!.]+\|$", output, re.MULTILINE), output
    assert re.search(rf"^  {b}\s+\|[^|]*!", output, re.MULTILINE), output
    assert f"checked: none of the {len(everything)} processes is running" in output
