"""``zkelect ensemble up|status|down`` as real subprocesses: a real ensemble that outlives ``up``.

Whatever a test leaves running is killed in a ``finally`` by the PIDs the state file records,
each checked against /proc/PID/cmdline first; nothing is killed by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import cli_env
from kazoo.client import KazooClient

from zkelect.testing import wait_for
from zkelect.testing.ensemble import ZooKeeperInstall

WAIT = 30.0


def _die_with_test() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


def zkelect(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = cli_env()
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        # Not _die_with_test: `up` must exit while its ensemble lives on (the keeper runs in
        # its own session and is not a child of this test).
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def recorded_pids(directory: Path) -> list[int]:
    """The keeper's and the members' PIDs from the state file (none if there is none)."""
    try:
        state = json.loads((directory / "ensemble.json").read_text())
    except (OSError, ValueError):
        return []
    return [int(state["keeper_pid"])] + [int(m["pid"]) for m in state["members"]]


@pytest.fixture
def ensemble_dir(tmp_path: Path, zookeeper_install: ZooKeeperInstall) -> Iterator[Path]:
    """A state dir for `zkelect ensemble`; anything still running from it is SIGKILLed at
    teardown, by recorded PID and only if /proc/PID/cmdline names this dir."""
    directory = tmp_path / "ens"
    seen: set[int] = set()
    try:
        yield directory
    finally:
        seen.update(recorded_pids(directory))
        for pid in seen:
            if any(str(directory) in arg for arg in cmdline(pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in seen), WAIT, message="leftovers gone")


def test_up_status_down_lifecycle_leaves_no_process(ensemble_dir: Path) -> None:
    up = zkelect("ensemble", "up", "--size", "3", "--dir", str(ensemble_dir), "--json")

    assert up.returncode == 0, up.stderr
    state = json.loads(up.stdout)
    pids = recorded_pids(ensemble_dir)
    assert pids == [state["keeper_pid"]] + [m["pid"] for m in state["members"]]
    assert len(pids) == 4
    assert all(alive(pid) for pid in pids), "the ensemble must outlive `zkelect ensemble up`"
    for member in state["members"]:
        assert "org.apache.zookeeper.server.quorum.QuorumPeerMain" in cmdline(member["pid"])
    assert state["hosts"] == ",".join(f"127.0.0.1:{m['client_port']}" for m in state["members"])

    client = KazooClient(hosts=state["hosts"], timeout=10.0)
    client.start(timeout=WAIT)
    try:
        client.create("/cli-ensemble-probe", b"ok")
        assert client.get("/cli-ensemble-probe")[0] == b"ok"
    finally:
        client.stop()
        client.close()

    status = zkelect("ensemble", "status", "--dir", str(ensemble_dir), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["running"] is True
    assert report["quorum"] is True
    assert report["hosts"] == state["hosts"]
    assert [m["pid"] for m in report["members"]] == pids[1:]
    assert sorted(m["mode"] for m in report["members"]) == ["follower", "follower", "leader"]

    table = zkelect("ensemble", "status", "--dir", str(ensemble_dir))
    assert table.returncode == 0, table.stderr
    assert "3 of 3 members serving (quorum)" in table.stdout
    assert f"export ZKELECT_HOSTS={state['hosts']}" in table.stdout

    again = zkelect("ensemble", "up", "--dir", str(ensemble_dir))
    assert again.returncode == 1
    assert "already running" in one_line(again.stderr)
    assert all(alive(pid) for pid in pids)

    down = zkelect("ensemble", "down", "--dir", str(ensemble_dir))

    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith(f"stopped the ensemble in {ensemble_dir}")
    wait_for(lambda: not any(alive(p) for p in pids), WAIT, message="every recorded PID gone")
    assert not ensemble_dir.exists(), sorted(str(p) for p in ensemble_dir.rglob("*"))

    nothing = zkelect("ensemble", "down", "--dir", str(ensemble_dir))
    assert nothing.returncode == 0
    assert "nothing to stop" in one_line(nothing.stderr)
    gone = zkelect("ensemble", "status", "--dir", str(ensemble_dir), "--json")
    assert gone.returncode == 0
    assert json.loads(gone.stdout) == {"running": False, "dir": str(ensemble_dir)}


def test_members_die_with_a_killed_keeper_and_up_recovers_the_dir(ensemble_dir: Path) -> None:
    up = zkelect("ensemble", "up", "--size", "1", "--dir", str(ensemble_dir))
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip().splitlines()[-1].startswith("export ZKELECT_HOSTS=127.0.0.1:")
    keeper, member = recorded_pids(ensemble_dir)

    os.kill(keeper, signal.SIGKILL)  # a crash: no clean-up code runs in the keeper

    wait_for(lambda: not alive(member), WAIT, message="the member died with its keeper")
    status = zkelect("ensemble", "status", "--dir", str(ensemble_dir))
    assert status.returncode == 0
    assert status.stdout.startswith("no ensemble running")
    assert "no longer running" in one_line(status.stderr)

    again = zkelect("ensemble", "up", "--size", "1", "--dir", str(ensemble_dir), "--json")
    assert again.returncode == 0, again.stderr
    assert "removed the state" in one_line(again.stderr)
    assert json.loads(again.stdout)["keeper_pid"] != keeper
    pids = recorded_pids(ensemble_dir)
    down = zkelect("ensemble", "down", "--dir", str(ensemble_dir))
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not any(alive(p) for p in pids), WAIT, message="every recorded PID gone")


def test_a_bad_argument_exits_2_with_one_line(tmp_path: Path) -> None:
    """(More bad arguments, in-process: tests/unit/test_cli_args.py.)"""
    done = zkelect("ensemble", "up", "--dir", str(tmp_path / "never"), "--size", "10")
    assert done.returncode == 2
    assert one_line(done.stderr).startswith("zkelect: Invalid value for '--size'")
    assert not (tmp_path / "never").exists()


def test_an_interrupted_up_leaves_nothing_running(ensemble_dir: Path) -> None:
    env = cli_env()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zkelect.ops.cli.main",
            "ensemble",
            "up",
            "--dir",
            str(ensemble_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_test,
    )
    try:
        # The keeper writes the members' configs just before it launches their JVMs, which
        # take a second or more to serve: interrupt `up` in that window.
        wait_for(lambda: (ensemble_dir / "member-1" / "zoo.cfg").exists(), WAIT, 0.005)
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=WAIT)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 130, (out, err)
    assert err == "zkelect: interrupted: stopped the ensemble being started\n"
    leftovers = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if any(str(ensemble_dir) in arg for arg in cmdline(pid)) and alive(pid)
    ]
    assert leftovers == []
    assert not (ensemble_dir / "ensemble.json").exists()
    down = zkelect("ensemble", "down", "--dir", str(ensemble_dir))
    assert down.returncode == 0
    assert "removed the files of one that did not start" in one_line(down.stderr)
    assert not ensemble_dir.exists(), sorted(str(p) for p in ensemble_dir.rglob("*"))
