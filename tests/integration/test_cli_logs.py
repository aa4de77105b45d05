"""``zkelect run``'s logs on a real ensemble: a JSON line per lifecycle event through a
scripted partition, and no secret in kazoo's wire log (``-vv``).

Each test starts real ``zkelect run`` processes (``python -m zkelect.ops.cli.main run``)
and stops them by PID at teardown, pass or fail; their children die with them
(PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_support import CliProcess, loads_strict
from election_support import candidate_children
from kazoo.client import KazooClient

from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

pytestmark = pytest.mark.integration

ISO_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) "
)
SESSION = re.compile(r"^0x[0-9a-f]+$")


class Run(CliProcess):
    """One ``zkelect run`` process; a thread collects its stderr lines."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(["run", *args])

    def stop(self) -> int:
        """SIGTERM (a clean stop), SIGKILL if that did not end it; the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.close()
        return self.proc.returncode


@pytest.fixture
def runs() -> Iterator[Callable[[list[str]], Run]]:
    started: list[Run] = []

    def start(args: list[str]) -> Run:
        run = Run(args)
        started.append(run)
        return run

    try:
        yield start
    finally:
        for run in started:
            run.stop()


class Events:
    """The JSON lines of one ``zkelect run --log-format json``, parsed as they come."""

    def __init__(self, run: CliProcess) -> None:
        self.run = run

    def all(self) -> list[dict[str, Any]]:
        # Every line is one JSON object (kazoo is quiet by default), ids exact (2^53).
        return [loads_strict(line) for line in list(self.run.lines)]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [entry for entry in self.all() if entry["event"] == event]

    def wait(self, event: str, count: int = 1, timeout: float = 30) -> dict[str, Any]:
        """The ``count``-th line of ``event`` (waiting for it)."""

        def found(_lines: list[str]) -> dict[str, Any] | None:
            named = self.named(event)
            return named[count - 1] if len(named) >= count else None

        return dict(self.run.wait_until(found, f"{event!r} #{count}", timeout))

    def count(self, event: str) -> int:
        return len(self.named(event))


def _child_command() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(600)"]


def test_json_lines_tell_a_partition_and_an_expiry_event_by_event(
    runs: Callable[[list[str]], Run],
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
) -> None:
    proxies = [FaultProxy(ensemble.member_hosts(i)).start() for i in range(ensemble.size)]
    by_member = {proxy.address: proxy for proxy in proxies}
    try:
        hosts = ",".join(by_member)
        options = ["--id", "logs-a", "--hosts", hosts, "--session-timeout", "4"]
        run = runs([zk_path, *options, "--log-format", "json", "--", *_child_command()])
        events = Events(run)
        connected = events.wait("connected")
        elected = events.wait("elected")
        started = events.wait("child_started")
        first_session = connected["session"]
        for entry in (connected, elected, started):
            assert entry["election"] == zk_path and entry["candidate"] == "logs-a", entry
            assert SESSION.match(entry["session"]), entry
        assert connected["member"] in by_member
        assert events.named("connecting")[0]["level"] == "INFO"
        assert int(elected["epoch"]) > 0 and elected["epoch_hex"] == hex(int(elected["epoch"]))
        assert elected["session"] == first_session and isinstance(started["pid"], int)

        # 1. The member closes the connection: the same session goes on through another one.
        by_member[connected["member"]].drop_connections()
        lost = events.wait("connection_lost")
        assert lost["member"] == connected["member"], lost
        # End of file, as a rule; a request being written at that moment may see the
        # reset instead, and kazoo's write path tells no one why (hooks.py).
        assert lost["reason"] in ("closed_by_member", "connection_dropped") or lost[
            "reason"
        ].startswith("socket_error: "), lost
        assert events.wait("suspended")["session"] == first_session
        revoked = events.wait("revoked")
        assert revoked["reason"] == "suspended" and revoked["epoch"] == elected["epoch"]
        signalled = events.wait("child_signalled")
        assert signalled["pid"] == started["pid"] and signalled["signal"] in ("SIGTERM", "SIGKILL")
        assert events.wait("grace_cut_short")["candidate"] == "logs-a"
        exited = events.wait("child_exited")
        assert exited["pid"] == started["pid"] and isinstance(exited["code"], int)
        reconnected = events.wait("reconnected")
        assert reconnected["session"] == first_session and reconnected["member"] in by_member
        again = events.wait("elected", count=2)
        assert again["session"] == first_session

        # 2. The member goes silent (a black-holed link): dropped after 2/3 of the session
        # timeout (R12), the session moves to another member.
        silent = events.wait("reconnected")["member"]
        by_member[silent].blackhole(True)
        assert events.wait("connection_lost", count=2)["reason"] == "silent_member"
        moved = events.wait("reconnected", count=2)
        assert moved["member"] != silent and moved["session"] == first_session
        by_member[silent].blackhole(False)
        events.wait("elected", count=3)

        # 3. Cut off from every member until the servers expire the session: on the way
        # back it learns so, opens a new session and joins again with a new node.
        for proxy in proxies:
            proxy.blackhole(True)
        wait_for(
            lambda: not candidate_children(kazoo_client, zk_path),
            timeout=30,
            message="the servers to expire the partitioned session",
        )
        for proxy in proxies:
            proxy.blackhole(False)
        expired = events.wait("session_expired")
        assert expired["session"] == first_session
        new_session = events.wait("connected", count=2)["session"]
        assert SESSION.match(new_session) and new_session != first_session
        rejoined = events.wait("rejoined")
        assert rejoined["session"] == new_session and rejoined["node"].startswith(zk_path + "/")
        last = events.wait("elected", count=4)
        assert int(last["epoch"]) > int(elected["epoch"]) and last["session"] == new_session

        assert run.stop() == 0
        stops = [entry["event"] for entry in events.all()][-4:]
        assert stops == ["stopping", "child_signalled", "child_exited", "left"], stops
    finally:
        for proxy in proxies:
            proxy.blackhole(False)
            proxy.stop()


def test_the_wire_log_shows_no_session_password_and_no_credential(
    runs: Callable[[list[str]], Run], ensemble: LocalEnsemble, zk_path: str
) -> None:
    secret = "s3cret-Pa55word"
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        options = ["--id", "logs-vv", "--hosts", proxy.address, "--session-timeout", "2", "-vv"]
        run = runs([zk_path, *options, "--auth", f"digest:alice:{secret}", "--", "sleep", "600"])
        run.wait_until(lambda lines: any("child started" in s for s in lines), "child started")
        # A reconnect sends the session's real password (the first Connect sends zeros).
        proxy.drop_connections()
        run.wait_until(lambda lines: any("reconnected to" in s for s in lines), "a reconnect")
        assert run.stop() == 0
    output = "\n".join(run.lines)
    # kazoo's wire log is there (-vv), with its Connect and Auth requests, redacted.
    connects = [line for line in run.lines if "Sending request(xid=None): Connect(" in line]
    assert len(connects) >= 2, output
    assert all("passwd=<redacted>" in line for line in connects), connects
    assert any("scheme='digest', auth=<redacted>" in line for line in run.lines), output
    assert secret not in output and "passwd=b" not in output
    assert "alice:" not in output  # the credential is one secret, user name and all
    # Every line is timestamped; the candidate's own lines name it.
    assert all(ISO_LINE.match(line) for line in run.lines), output
    assert any(" INFO zkelect run logs-vv: connected to ZooKeeper member " in s for s in run.lines)
