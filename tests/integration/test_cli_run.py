"""``zkelect run``: real supervisor processes (``python -m zkelect.ops.cli.main run``) on a real
ensemble, each running a small child script that records its environment and the signals
it gets. Every process a test starts is stopped by PID at teardown, pass or fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliProcess, cli_env, loads_strict
from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, WatchedEvent

from zkelect._election.nodes import election_order
from zkelect.fencing.token import FencingToken
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = "2"

# The command `zkelect run` supervises. argv: OUT_DIR MODE, MODE one of
#   normal       on SIGTERM: record it, linger LINGER seconds, exit 0
#   linger:S     as normal, lingering S seconds (a child that takes its time to drain)
#   ignore-term  on SIGTERM: record it and keep running (only SIGKILL ends it)
#   exit:N       record the start, exit N at once
# Times are time.monotonic(): CLOCK_MONOTONIC, the same clock in every process on Linux.
CHILD = """
import json, os, signal, sys, time

out, mode = sys.argv[1], sys.argv[2]
pid = os.getpid()
LINGER = float(mode[7:]) if mode.startswith("linger:") else 0.3

def dump(name, value):
    tmp = os.path.join(out, f".{name}.tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, os.path.join(out, name))

def on_term(signum, frame):
    dump(f"term-{pid}.json", {"at": time.monotonic()})
    if mode == "normal" or mode.startswith("linger:"):
        time.sleep(LINGER)
        os._exit(0)

signal.signal(signal.SIGTERM, on_term)
dump(f"child-{pid}.json", {
    "pid": pid,
    "pgid": os.getpgid(0),
    "sid": os.getsid(0),
    "started": time.monotonic(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("ZKELECT_")},
})
if mode.startswith("exit:"):
    sys.exit(int(mode[5:]))
while True:
    time.sleep(0.05)
"""


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


class Supervisor(CliProcess):
    """One ``zkelect run`` process; a thread collects its stderr lines."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(["run", *args])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.close()


class Runs:
    """Starts supervisors for one test and finds what their children recorded."""

    def __init__(self, hosts: str, path: str, tmp: Path) -> None:
        self.hosts, self.path = hosts, path
        self.out = tmp / "out"
        self.out.mkdir()
        self.script = tmp / "child.py"
        self.script.write_text(CHILD)
        self.started: list[Supervisor] = []

    def start(
        self,
        candidate_id: str,
        mode: str = "normal",
        *options: str,
        hosts: str | None = None,
        session_timeout: str | None = SESSION_TIMEOUT,
    ) -> Supervisor:
        """``session_timeout=None``: zkelect's default (10 s), as users run it."""
        timeout = [] if session_timeout is None else ["--session-timeout", session_timeout]
        args = [
            self.path,
            "--id",
            candidate_id,
            "--hosts",
            hosts or self.hosts,
            *timeout,
            *options,
            "--",
            sys.executable,
            str(self.script),
            str(self.out),
            mode,
        ]
        supervisor = Supervisor(args)
        self.started.append(supervisor)
        return supervisor

    def children(self) -> list[dict[str, Any]]:
        found = [json.loads(p.read_text()) for p in sorted(self.out.glob("child-*.json"))]
        return sorted(found, key=lambda child: child["started"])

    def child(self, pid: int, timeout: float = 20.0) -> dict[str, Any]:
        path = self.out / f"child-{pid}.json"
        wait_for(path.exists, timeout, message=f"child {pid} to record its start")
        return dict(json.loads(path.read_text()))

    def term_at(self, pid: int) -> float | None:
        path = self.out / f"term-{pid}.json"
        return float(json.loads(path.read_text())["at"]) if path.exists() else None

    def cleanup(self) -> None:
        for supervisor in self.started:
            supervisor.stop()
        # Children die with their supervisor (PR_SET_PDEATHSIG); make sure, by PID.
        for child in self.children():
            pid = child["pid"]
            if alive(pid) and str(self.script) in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: not [c["pid"] for c in self.children() if alive(c["pid"])],
            timeout=10,
            message="children left running",
        )


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture
def runs(ensemble: LocalEnsemble, zk_path: str, tmp_path: Path) -> Iterator[Runs]:
    made = Runs(ensemble.hosts, zk_path, tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


def leader_node(client: KazooClient, path: str) -> tuple[str, bytes, int]:
    """(node path, data, czxid) of the first node in election order, read after a sync."""
    client.sync(path)
    order = election_order(candidate_children(client, path))
    assert order, f"no candidate under {path}"
    node = f"{path}/{order[0].name}"
    data, stat = client.get(node)
    return node, data, stat.czxid


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


STARTED = r"child started: pid=(\d+)"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ [A-Z]+ zkelect run ")


def test_child_runs_only_on_the_leader_with_the_epoch_of_its_node(
    runs: Runs, kazoo_client: KazooClient, zk_path: str
) -> None:
    a = runs.start("node-a", "normal", "--http-port", "0")
    a_pid = int(a.wait_line(STARTED)[1])
    a_url = a.wait_line(r"serving /metrics /livez /readyz /leader on (http://\S+)")[1]
    b = runs.start("node-b", "normal", "--http-port", "0")
    b.wait_line(r"joined ")
    b_url = b.wait_line(r"serving /metrics /livez /readyz /leader on (http://\S+)")[1]

    node, data, czxid = leader_node(kazoo_client, zk_path)
    assert data == b"node-a"
    child = runs.child(a_pid)
    env = child["env"]
    assert env["ZKELECT_EPOCH"] == str(czxid)
    assert env["ZKELECT_PATH"] == zk_path
    assert env["ZKELECT_ID"] == "node-a"
    token = FencingToken.parse(env["ZKELECT_TOKEN"])
    assert (token.epoch, token.path, token.candidate_id) == (czxid, zk_path, "node-a")
    assert child["pgid"] == child["sid"] == a_pid  # its own session and process group
    assert [c["pid"] for c in runs.children()] == [a_pid]  # node-b runs nothing
    assert not any("child started" in line for line in b.lines)

    status, body = http_get(f"{a_url}/leader")
    assert status == 200 and loads_strict(body)["epoch"] == str(czxid), body
    assert http_get(f"{b_url}/leader")[0] == 503

    # The follower names the leader (from what it observes: no request per probe).
    def names_a() -> bool:
        leader = loads_strict(http_get(f"{b_url}/leader")[1])["leader"]
        return leader is not None and leader["epoch"] == str(czxid)

    wait_for(names_a, timeout=10, message="b's /leader names node-a")
    assert http_get(f"{a_url}/healthz")[0] == 200
    status, body = http_get(f"{a_url}/livez")  # the supervisor's loop is one of its checks
    assert status == 200 and loads_strict(body)["checks"] == ["supervisor"], body
    status, metrics = http_get(f"{a_url}/metrics")
    assert status == 200
    assert f'zkelect_is_leader{{election="{zk_path}"}} 1.0' in metrics

    # Force node-a out, as `zkelect resign` does: node-b may lead at once, so node-a's child
    # is SIGKILLed at once; node-b takes over with a higher epoch and starts its own child;
    # node-a campaigns again, runs nothing.
    kazoo_client.delete(node)
    a.wait_line(r"revoked \(node_deleted\)$")
    a.wait_line(rf"SIGKILL to the process group of child pid={a_pid} at once")
    wait_for(lambda: not alive(a_pid), timeout=10, message="node-a's child to exit")
    assert runs.term_at(a_pid) is None
    b_pid = int(b.wait_line(STARTED)[1])
    _, new_data, new_czxid = leader_node(kazoo_client, zk_path)
    assert new_data == b"node-b" and new_czxid > czxid
    assert runs.child(b_pid)["env"]["ZKELECT_EPOCH"] == str(new_czxid)
    wait_for(
        lambda: len(candidate_children(kazoo_client, zk_path)) == 2,
        timeout=10,
        message="node-a to rejoin",
    )
    assert sum("child started" in line for line in a.lines) == 1
    assert http_get(f"{a_url}/leader")[0] == 503


def test_sigterm_stops_the_child_before_the_node_is_deleted(
    runs: Runs, kazoo_client: KazooClient, zk_path: str
) -> None:
    a = runs.start("node-a", "normal")
    pid = int(a.wait_line(STARTED)[1])
    runs.child(pid)
    node, _, _ = leader_node(kazoo_client, zk_path)

    deleted: list[float] = []

    def on_change(event: WatchedEvent) -> None:
        if event.type == EventType.DELETED:
            deleted.append(time.monotonic())

    assert kazoo_client.exists(node, watch=on_change) is not None
    gone: list[float] = []

    def poll() -> None:
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        gone.append(time.monotonic())

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    os.kill(a.pid, signal.SIGTERM)
    assert a.proc.wait(timeout=30) == 0, a.output()
    poller.join(timeout=30)
    wait_for(lambda: deleted, timeout=10, message="the leader's node to be deleted")
    term_at = runs.term_at(pid)
    assert term_at is not None, "the child never got SIGTERM"
    # The child lingers 0.3 s after SIGTERM: a supervisor that released leadership first
    # would show the deletion well before the child is gone.
    assert term_at < gone[0] < deleted[0], (term_at, gone, deleted)
    output = a.output()
    assert output.index("stopping child") < output.index("left the election"), output
    assert candidate_children(kazoo_client, zk_path) == []


def test_a_sigkilled_supervisor_takes_its_child_along(runs: Runs) -> None:
    a = runs.start("node-a", "normal")
    pid = int(a.wait_line(STARTED)[1])
    runs.child(pid)
    os.kill(a.pid, signal.SIGKILL)
    a.proc.wait(timeout=10)
    wait_for(lambda: not alive(pid), timeout=10, message=f"child {pid} to die with its parent")
    assert runs.term_at(pid) is None  # SIGKILL (PR_SET_PDEATHSIG), not a polite SIGTERM


def test_a_deleted_node_kills_the_child_at_once_whatever_the_grace(
    runs: Runs, kazoo_client: KazooClient, zk_path: str
) -> None:
    a = runs.start("node-a", "ignore-term", "--grace", "30")
    pid = int(a.wait_line(STARTED)[1])
    first = runs.child(pid)
    node, _, epoch = leader_node(kazoo_client, zk_path)
    kazoo_client.delete(node)  # as `zkelect resign` does: a successor may lead at once
    a.wait_line(rf"SIGKILL to the process group of child pid={pid} at once")
    a.wait_line(rf"child exited: pid={pid} killed by SIGKILL")
    assert runs.term_at(pid) is None
    # Still a candidate: alone, it is elected again, with a new epoch, and runs CMD again.
    again = int(a.wait_line(STARTED, count=2)[1])
    env = runs.child(again)["env"]
    assert int(env["ZKELECT_EPOCH"]) > epoch == int(first["env"]["ZKELECT_EPOCH"])


def test_a_stop_gives_a_child_that_ignores_term_the_whole_grace(
    runs: Runs, kazoo_client: KazooClient, zk_path: str
) -> None:
    grace = 1.0
    a = runs.start("node-a", "ignore-term", "--grace", str(grace))
    pid = int(a.wait_line(STARTED)[1])
    runs.child(pid)
    node, _, _ = leader_node(kazoo_client, zk_path)
    deleted = threading.Event()
    assert kazoo_client.exists(node, watch=lambda event: deleted.set()) is not None
    os.kill(a.pid, signal.SIGTERM)  # a stop this candidate chooses: --grace holds
    term_at = wait_for(lambda: runs.term_at(pid), timeout=10, message="SIGTERM to the child")
    wait_for(lambda: not alive(pid), timeout=grace + 10, message="SIGKILL to the child")
    killed_after = time.monotonic() - term_at
    assert killed_after >= grace * 0.9, killed_after  # not before the grace is over
    assert a.proc.wait(timeout=30) == 0, a.output()
    output = a.output()
    assert "still running after SIGTERM: SIGKILL to its process group" in output
    assert output.index("SIGKILL to its process group") < output.index("left the election")
    assert deleted.wait(10)


def death_watch(pid: int, timeout: float = 120.0) -> list[float]:
    """A list that gets the time (CLOCK_MONOTONIC) at which ``pid`` was first seen gone."""
    gone: list[float] = []

    def poll() -> None:
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        gone.append(time.monotonic())

    threading.Thread(target=poll, daemon=True).start()
    return gone


def test_at_the_defaults_a_child_that_ignores_term_is_gone_before_its_successor_starts(
    runs: Runs, ensemble: LocalEnsemble
) -> None:
    """Issue 12 item 3, with everything at its default (session timeout 10 s, --grace 10 s).

    The leader is cut off from every member: its lease runs out ~5.5 s later and it stops
    its child; the servers expire its session 10 s after they last heard from it and elect
    the successor, whose child starts then. Before, the first child (it ignores SIGTERM)
    was SIGKILLed only after --grace, and both ran at once for ~5 s.
    """
    proxies = [FaultProxy(ensemble.member_hosts(i)).start() for i in range(ensemble.size)]
    try:
        first = runs.start(
            "first",
            "ignore-term",
            hosts=",".join(proxy.address for proxy in proxies),
            session_timeout=None,
        )
        first_pid = int(first.wait_line(STARTED, timeout=30)[1])
        runs.child(first_pid)
        second = runs.start("second", "ignore-term", session_timeout=None)
        second.wait_line(r"joined ")
        gone = death_watch(first_pid)
        for proxy in proxies:
            proxy.blackhole(True)
        second_pid = int(second.wait_line(STARTED, timeout=60)[1])
        successor_started = runs.child(second_pid)["started"]
        wait_for(lambda: gone, 30, message="the first child to die")
        assert gone[0] < successor_started, (gone[0], successor_started)
        first.wait_line(r"SIGKILL after \d+\.\ds \(--grace 10s cut short")
        first.wait_line(r"note: --grace 10s applies when this candidate stops")
        print(f"first child gone {successor_started - gone[0]:.1f}s before the successor's")
    finally:
        for proxy in proxies:
            proxy.blackhole(False)
            proxy.stop()


def test_on_exit_release_exits_with_the_childs_code_and_releases(
    runs: Runs, kazoo_client: KazooClient, zk_path: str
) -> None:
    a = runs.start("node-a", "exit:7")
    assert a.proc.wait(timeout=30) == 7, a.output()
    assert "releasing leadership (--on-exit release); will exit 7" in a.output()
    kazoo_client.sync(zk_path)
    assert candidate_children(kazoo_client, zk_path) == []  # the node was deleted before the exit


def test_on_exit_restart_runs_the_command_again_while_leading(runs: Runs) -> None:
    a = runs.start("node-a", "exit:3", "--on-exit", "restart")
    a.wait_line(STARTED, count=3)
    epochs = {child["env"]["ZKELECT_EPOCH"] for child in runs.children()}
    assert len(epochs) == 1, epochs  # the same leadership throughout
    a.wait_line(r"restarting the child in 0\.5s")
    a.wait_line(r"restarting the child in 1s")
    os.kill(a.pid, signal.SIGTERM)
    assert a.proc.wait(timeout=30) == 0, a.output()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_arguments_and_no_quorum_give_one_line_and_the_exit_code(tmp_path: Path) -> None:
    cases: list[tuple[list[str], int, str]] = [
        ([], 2, "Missing argument"),
        (["/p"], 2, "missing CMD"),
        (["relative", "--", "true"], 2, "absolute path"),
        (["/p", "--on-exit", "sometimes", "--", "true"], 2, "--on-exit"),
        (["/p", "--grace", "-1", "--", "true"], 2, "--grace"),
        (["/p", "--http-port", "70000", "--", "true"], 2, "--http-port"),
        (["/p", "--", str(tmp_path / "no-such-command")], 2, "command not found"),
        (["/p", "--hosts", "127.0.0.1:notaport", "--", "true"], 2, "port"),
        (
            ["/p", "--hosts", f"127.0.0.1:{_closed_port()}", "--timeout", "1", "--", "true"],
            1,
            "could not connect to ZooKeeper",
        ),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "zkelect.ops.cli.main", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for args, _, _ in cases
    ]
    try:
        for proc, (args, code, fragment) in zip(procs, cases, strict=True):
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == code, (args, proc.returncode, err)
            assert out == "", (args, out)
            # Timestamped log lines (the attempt to connect) may come first: one error line.
            err = "\n".join(line for line in err.splitlines() if not LOG_LINE.match(line))
            assert len(err.splitlines()) == 1, (args, err)
            assert err.startswith("zkelect: ") and fragment in err, (args, err)
            assert "Traceback" not in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
