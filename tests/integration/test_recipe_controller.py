"""recipes/controller: real broker processes on a real ensemble.

* Killing the controller elects another broker with a higher epoch, and /controller_epoch
  goes up.
* A controller frozen (SIGSTOP) past its session timeout is replaced; when it thaws, the
  command it sends at once carries its old epoch and every other broker (the new controller
  included) refuses it with 409.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

REPO = Path(__file__).resolve().parents[2]
BROKER = REPO / "recipes" / "controller" / "broker.py"
SESSION_TIMEOUT = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Brokers:
    """Broker processes, each stopped by PID at teardown (thawed first if frozen)."""

    def __init__(
        self, hosts: str, root: str, logs: Path, count: int, script: Path = BROKER
    ) -> None:
        self.ports = {i: free_port() for i in range(1, count + 1)}
        peers = ",".join(f"{i}=127.0.0.1:{port}" for i, port in self.ports.items())
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.logs = logs
        for i, port in self.ports.items():
            args = [sys.executable, str(script), "--id", str(i), "--port", str(port)]
            args += ["--peers", peers, "--hosts", hosts, "--root", root, "--tick", "0.2"]
            args += ["--session-timeout", str(SESSION_TIMEOUT)]
            with open(logs / f"broker-{i}.log", "wb") as out:
                self.procs[i] = subprocess.Popen(
                    args, stdout=out, stderr=subprocess.STDOUT, env=env
                )

    def state(self, i: int) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.ports[i]}/state"
            with urllib.request.urlopen(url, timeout=1) as reply:
                return dict(json.loads(reply.read()))
        except OSError:
            return None

    def output(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.logs.glob("broker-*.log")))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def brokers(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path
) -> Iterator[Callable[[int], Brokers]]:
    made: list[Brokers] = []

    def make(count: int) -> Brokers:
        made.append(Brokers(ensemble.hosts, zk_path, tmp_path, count))
        return made[-1]

    yield make
    for group in made:
        group.stop()
    for group in made:
        assert all(p.poll() is not None for p in group.procs.values()), "a broker was left running"


def controller(client: KazooClient, root: str) -> dict[str, Any] | None:
    stat = client.exists(f"{root}/controller")
    return None if stat is None else dict(json.loads(client.get(f"{root}/controller")[0]))


def counter(client: KazooClient, root: str) -> int:
    return int(client.get(f"{root}/controller_epoch")[0])


def test_killing_the_controller_elects_one_with_a_higher_epoch(
    brokers: Callable[[int], Brokers], kazoo_client: KazooClient, zk_path: str
) -> None:
    group = brokers(3)
    first = wait_for(lambda: controller(kazoo_client, zk_path), 15, 0.05, "first controller")
    assert counter(kazoo_client, zk_path) == first["controller_epoch"] == 1
    others = [i for i in group.ports if i != first["id"]]
    wait_for(
        lambda: all((group.state(i) or {}).get("highest_epoch") == first["epoch"] for i in others),
        10,
        0.05,
        "every other broker admits the first controller's commands",
    )

    group.procs[first["id"]].kill()  # SIGKILL by PID: no goodbye, the session must expire
    group.procs[first["id"]].wait(10)
    second = wait_for(
        lambda: (c := controller(kazoo_client, zk_path)) and c["id"] != first["id"] and c,
        10 * SESSION_TIMEOUT,
        0.05,
        "a new controller",
    )
    assert second["epoch"] > first["epoch"]
    assert second["controller_epoch"] == counter(kazoo_client, zk_path) == 2
    survivor = next(i for i in others if i != second["id"])
    wait_for(
        lambda: (group.state(survivor) or {}).get("highest_epoch") == second["epoch"],
        10,
        0.05,
        "the surviving broker admits the new controller's commands",
    )
    assert (group.state(survivor) or {})["rejected"] == [], group.output()


def test_frozen_controller_is_rejected_by_every_broker_after_it_thaws(
    brokers: Callable[[int], Brokers], kazoo_client: KazooClient, zk_path: str
) -> None:
    group = brokers(3)
    old = wait_for(lambda: controller(kazoo_client, zk_path), 15, 0.05, "first controller")
    frozen = group.procs[old["id"]]
    others = [i for i in group.ports if i != old["id"]]
    wait_for(
        lambda: all((group.state(i) or {}).get("highest_epoch") == old["epoch"] for i in others),
        10,
        0.05,
        "every other broker admits the first controller's commands",
    )

    os.kill(frozen.pid, signal.SIGSTOP)  # a GC pause / VM stall longer than the session
    try:
        new = wait_for(
            lambda: (c := controller(kazoo_client, zk_path)) and c["id"] != old["id"] and c,
            10 * SESSION_TIMEOUT,
            0.05,
            "a new controller while the old one is frozen",
        )
        assert new["epoch"] > old["epoch"]
        assert counter(kazoo_client, zk_path) == new["controller_epoch"] == 2
        # Every broker but the frozen one has seen the new epoch before the old one thaws.
        wait_for(
            lambda: all(
                (group.state(i) or {}).get("highest_epoch") == new["epoch"] for i in others
            ),
            10,
            0.05,
            "every other broker admits the new controller's commands",
        )
    finally:
        os.kill(frozen.pid, signal.SIGCONT)

    def stale_refused(i: int) -> bool:
        state = group.state(i) or {}
        return any(
            r["from"] == old["id"] and r["epoch"] == old["epoch"] and r["current"] == new["epoch"]
            for r in state.get("rejected", [])
        )

    wait_for(lambda: all(stale_refused(i) for i in others), 10, 0.05, "409 from every broker")
    for i in others:  # nothing from the old controller was applied after the new epoch
        last = (group.state(i) or {})["last_accepted"]
        assert last["from"] == new["id"] and last["epoch"] == new["epoch"], group.output()
    # The old controller learned from the 409s and stepped down; the new one still controls.
    wait_for(
        lambda: (s := group.state(old["id"])) and s["demotions"] >= 1 and not s["controller_epoch"],
        10,
        0.05,
        "the thawed controller demotes itself",
    )
    assert (group.state(new["id"]) or {})["controller_epoch"] == new["epoch"]
    assert controller(kazoo_client, zk_path) == new
