"""recipes/async_controller: real asyncio broker processes on a real ensemble.

* A controller asked to resign over HTTP: run_while_leader cancels its task and drains it
  before its node goes, so its final fenced checkpoint lands and the successor (higher epoch,
  /controller_epoch 2) continues from it. Killing that one (SIGKILL) elects another with a
  higher epoch still (/controller_epoch 3).
* A controller frozen (SIGSTOP) past its session timeout is replaced; when it thaws, its
  leader-only task ends (cancelled, or stopped by a refused write if it ran first), its final
  fenced checkpoint is refused by ZooKeeper, and any command it sends is refused (409).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import call
from kazoo.client import KazooClient
from test_recipe_controller import SESSION_TIMEOUT, Brokers, controller, counter

from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = REPO / "recipes" / "async_controller" / "controller.py"


@pytest.fixture
def brokers(ensemble: LocalEnsemble, zk_path: str, tmp_path: Path) -> Iterator[Brokers]:
    group = Brokers(ensemble.hosts, zk_path, tmp_path, 3, script=CONTROLLER)
    try:
        yield group
    finally:
        group.stop()
        assert all(p.poll() is not None for p in group.procs.values()), "a broker was left running"


def checkpoint(client: KazooClient, root: str) -> dict[str, Any]:
    return dict(json.loads(client.get(f"{root}/checkpoint")[0]))


def admitted_by(group: Brokers, ids: list[int], epoch: int) -> Callable[[], bool]:
    return lambda: all((group.state(i) or {}).get("highest_epoch") == epoch for i in ids)


def new_controller(
    client: KazooClient, root: str, old: dict[str, Any]
) -> Callable[[], dict[str, Any] | None]:
    def found() -> dict[str, Any] | None:
        now = controller(client, root)
        return now if now is not None and now["epoch"] != old["epoch"] else None

    return found


def test_resign_hands_over_after_the_final_checkpoint_and_a_kill_elects_a_higher_epoch(
    brokers: Brokers, kazoo_client: KazooClient, zk_path: str
) -> None:
    first = wait_for(lambda: controller(kazoo_client, zk_path), 15, 0.05, "first controller")
    assert counter(kazoo_client, zk_path) == first["controller_epoch"] == 1
    others = [i for i in brokers.ports if i != first["id"]]
    wait_for(admitted_by(brokers, others, first["epoch"]), 10, 0.05, "others admit the first")

    status, _, reply = call(f"http://127.0.0.1:{brokers.ports[first['id']]}/resign", "POST")
    assert (status, reply) == (200, {"resigned": True}), brokers.output()
    # resign() returned after the drain: the term is over and its final checkpoint landed.
    term = (brokers.state(first["id"]) or {})["terms"][-1]
    assert term["epoch"] == first["epoch"] and term["ended"] == "cancelled", term
    assert term["final"] == "accepted", term

    second = wait_for(new_controller(kazoo_client, zk_path, first), 10, 0.05, "a successor")
    assert second["id"] != first["id"] and second["epoch"] > first["epoch"]
    assert second["controller_epoch"] == counter(kazoo_client, zk_path) == 2
    resumed = wait_for(lambda: (brokers.state(second["id"]) or {}).get("resumed"), 10, 0.05)
    assert resumed == {
        "id": first["id"],
        "epoch": first["epoch"],
        "seq": term["seq"],
        "final": True,
    }

    brokers.procs[second["id"]].kill()  # SIGKILL by PID: no goodbye, the session must expire
    brokers.procs[second["id"]].wait(10)
    third = wait_for(
        new_controller(kazoo_client, zk_path, second), 10 * SESSION_TIMEOUT, 0.05, "a third"
    )
    assert third["id"] != second["id"] and third["epoch"] > second["epoch"]
    assert third["controller_epoch"] == counter(kazoo_client, zk_path) == 3
    survivor = next(i for i in brokers.ports if i not in (second["id"], third["id"]))
    wait_for(admitted_by(brokers, [survivor], third["epoch"]), 10, 0.05, "survivor admits it")
    assert (brokers.state(survivor) or {})["rejected"] == [], brokers.output()


def test_frozen_controller_thaws_into_a_cancelled_task_and_refused_writes(
    brokers: Brokers, kazoo_client: KazooClient, zk_path: str
) -> None:
    old = wait_for(lambda: controller(kazoo_client, zk_path), 15, 0.05, "first controller")
    frozen = brokers.procs[old["id"]]
    others = [i for i in brokers.ports if i != old["id"]]
    wait_for(admitted_by(brokers, others, old["epoch"]), 10, 0.05, "others admit the first")

    os.kill(frozen.pid, signal.SIGSTOP)  # a GC pause / VM stall longer than the session
    try:
        new = wait_for(
            new_controller(kazoo_client, zk_path, old), 10 * SESSION_TIMEOUT, 0.05, "successor"
        )
        assert new["epoch"] > old["epoch"]
        assert counter(kazoo_client, zk_path) == new["controller_epoch"] == 2
        # Every broker but the frozen one has seen the new epoch before the old one thaws.
        wait_for(admitted_by(brokers, others, new["epoch"]), 10, 0.05, "others admit the new")
    finally:
        os.kill(frozen.pid, signal.SIGCONT)

    def old_term() -> dict[str, Any] | None:
        terms = (brokers.state(old["id"]) or {}).get("terms", [])
        return next((t for t in terms if t["epoch"] == old["epoch"]), None)

    term = wait_for(old_term, 10, 0.05, "the thawed controller's term ends")
    # Cancelled by run_while_leader, or (if the loop ran the task before the loss was known)
    # stopped by its own checkpoint, which ZooKeeper refused: either way no longer working.
    assert term["ended"] in ("cancelled", "StaleEpochError"), (term, brokers.output())
    assert term["final"].startswith("refused"), (term, brokers.output())
    assert (brokers.state(old["id"]) or {})["controller_epoch"] is None
    # Nothing it wrote after the new epoch landed: ZooKeeper refused its checkpoint, the
    # brokers refused whatever command it managed to send, and the new controller controls.
    assert checkpoint(kazoo_client, zk_path)["epoch"] == new["epoch"]
    for i in others:
        state = brokers.state(i) or {}
        stale = [r for r in state["rejected"] if r["from"] == old["id"]]
        assert all(r["epoch"] == old["epoch"] and r["current"] == new["epoch"] for r in stale)
        last = state["last_accepted"]
        assert last["from"] == new["id"] and last["epoch"] == new["epoch"], brokers.output()
    assert controller(kazoo_client, zk_path) == new
    assert (brokers.state(new["id"]) or {})["controller_epoch"] == new["epoch"]
