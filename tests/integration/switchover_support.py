"""What the switchover scenarios share: ``zkelect run`` candidates that log JSON, the
election order as ZooKeeper has it, and ``zkelect switchover`` as a subprocess.

The candidates are test_cli_run.py's supervisors (its child script records its start, the
SIGTERM it gets, and lingers or ignores it); their JSON lines are read with test_cli_logs.py's
``Events``. Everything started here is stopped by PID in :meth:`Fleet.cleanup`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cli_support import cli_env
from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from test_cli_inspect import _die_with_test
from test_cli_logs import Events
from test_cli_run import SESSION_TIMEOUT, Runs, Supervisor

from zkelect._election.nodes import Contender, election_order
from zkelect._election.switchover import REQUEST_NODE
from zkelect.testing import wait_for

__all__ = ["Finished", "Fleet", "Term", "at"]

WAIT = 30.0  # generous deadlines: the CI machine is shared


def at(entry: dict[str, Any]) -> float:
    """A JSON log line's time (ISO 8601, milliseconds) as a POSIX timestamp."""
    return datetime.fromisoformat(entry["time"]).timestamp()


@dataclass(frozen=True)
class Term:
    """One time a candidate led: its child, the epoch, and when the child started
    (``started``: the child's own CLOCK_MONOTONIC record; ``logged``: the log line's time)."""

    candidate: str
    pid: int
    epoch: int
    started: float
    logged: float


@dataclass(frozen=True)
class Finished:
    """A ``zkelect`` command that ended."""

    returncode: int
    stdout: str
    stderr: str


class Fleet:
    """The ``zkelect run --log-format json`` candidates of one test, by candidate id (each
    restart of an id is one more generation), and the election they take part in."""

    def __init__(self, runs: Runs, client: KazooClient, hosts: str, path: str) -> None:
        self.runs, self.client, self.hosts, self.path = runs, client, hosts, path
        self.generations: dict[str, list[Supervisor]] = {}
        self._commands: list[subprocess.Popen[str]] = []

    # -- candidates -----------------------------------------------------------------------------

    def start(
        self,
        candidate_id: str,
        mode: str = "normal",
        *options: str,
        session_timeout: str | None = SESSION_TIMEOUT,
    ) -> Supervisor:
        supervisor = self.runs.start(
            candidate_id, mode, "--log-format", "json", *options, session_timeout=session_timeout
        )
        self.generations.setdefault(candidate_id, []).append(supervisor)
        return supervisor

    def supervisor(self, candidate_id: str) -> Supervisor:
        """The latest generation of ``candidate_id``."""
        return self.generations[candidate_id][-1]

    def events(self, candidate_id: str) -> Events:
        return Events(self.supervisor(candidate_id))

    def named(self, candidate_id: str, event: str) -> list[dict[str, Any]]:
        """Every line of ``event`` from every generation of ``candidate_id``."""
        found: list[dict[str, Any]] = []
        for supervisor in self.generations[candidate_id]:
            found += Events(supervisor).named(event)
        return found

    def count(self, event: str, *candidate_ids: str) -> int:
        """Lines of ``event`` from ``candidate_ids`` (every candidate when none is named)."""
        ids = candidate_ids or tuple(self.generations)
        return sum(len(self.named(candidate_id, event)) for candidate_id in ids)

    def stop(self, candidate_id: str) -> None:
        """SIGTERM (a stop this candidate chooses) and wait for its exit 0."""
        supervisor = self.supervisor(candidate_id)
        os.kill(supervisor.pid, signal.SIGTERM)
        assert supervisor.proc.wait(timeout=WAIT) == 0, supervisor.output()

    def leading(self, candidate_id: str, count: int = 1) -> Term:
        """The ``count``-th term of ``candidate_id``'s latest generation, once its child runs."""
        events = self.events(candidate_id)
        started = events.wait("child_started", count=count, timeout=WAIT)
        elected = events.named("elected")[count - 1]
        child = self.runs.child(int(started["pid"]))
        assert child["env"]["ZKELECT_EPOCH"] == elected["epoch"], (child, elected)
        return Term(
            candidate_id, int(started["pid"]), int(elected["epoch"]), child["started"], at(started)
        )

    def exited(self, term: Term) -> dict[str, Any]:
        """The ``child_exited`` line of ``term``'s child (waiting for it)."""
        events = self.events(term.candidate)

        def line(_: list[str]) -> dict[str, Any] | None:
            return next((e for e in events.named("child_exited") if e["pid"] == term.pid), None)

        found: dict[str, Any] = self.supervisor(term.candidate).wait_until(
            line, f"child_exited of pid {term.pid}", WAIT
        )
        return found

    # -- the election in ZooKeeper --------------------------------------------------------------

    def contenders(self) -> list[Contender]:
        """The candidates in election order, read after a sync (data: the candidate id)."""
        self.client.sync(self.path)
        try:
            order = election_order(candidate_children(self.client, self.path))
        except NoNodeError:  # nobody joined yet
            return []
        found = []
        for contender in order:
            try:
                data, stat = self.client.get(f"{self.path}/{contender.name}")
            except NoNodeError:  # gone between the two reads: not a contender any more
                continue
            found.append(contender._replace(data=data, epoch=stat.czxid))
        return found

    def order(self) -> list[str]:
        return [contender.candidate_id for contender in self.contenders()]

    def wait_order(self, expected: list[str], timeout: float = WAIT) -> None:
        wait_for(
            lambda: self.order() == expected,
            timeout,
            message=f"the order {expected} (now {self.order()})",
        )

    def request_left(self) -> bool:
        """Whether a switchover request node exists."""
        self.client.sync(self.path)
        return self.client.exists(f"{self.path}/{REQUEST_NODE}") is not None

    # -- zkelect switchover -----------------------------------------------------------------------

    def begin_switchover(self, *args: str) -> subprocess.Popen[str]:
        """``zkelect switchover PATH ARGS`` in the background; stopped by PID at cleanup."""
        command = ["switchover", self.path, "--hosts", self.hosts, *args]
        proc = subprocess.Popen(
            [sys.executable, "-m", "zkelect.ops.cli.main", *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            preexec_fn=_die_with_test,
        )
        self._commands.append(proc)
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> Finished:
        out, err = proc.communicate(timeout=timeout)
        return Finished(proc.returncode, out, err)

    def switchover(self, *args: str, timeout: float = 60.0) -> Finished:
        """``zkelect switchover PATH ARGS`` to its end."""
        return self.finish(self.begin_switchover(*args), timeout)

    def cleanup(self) -> None:
        for proc in self._commands:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=WAIT)
        self.runs.cleanup()
