"""A Python script run as a child process that prints one JSON object per line on stdout
and reads commands on stdin; a reader thread collects its events for the test to wait on.

The test stops it by PID (:meth:`JsonChild.stop`: SIGCONT in case it is frozen, ``quit``,
then SIGKILL after a deadline), in a ``finally`` or a fixture.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Event", "JsonChild", "event"]

REPO = Path(__file__).resolve().parents[2]
Event = dict[str, Any]


def event(kind: str, **fields: Any) -> Callable[[Event], bool]:
    """A matcher for ``expect``: the event named ``kind`` with these field values."""
    return lambda e: e["event"] == kind and all(e.get(k) == v for k, v in fields.items())


class JsonChild:
    """``python SCRIPT ARGS...``; its JSON events are collected as they come."""

    def __init__(self, script: Path, args: list[str]) -> None:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.pid = self.proc.pid
        self.events: list[Event] = []
        self.stderr: list[str] = []  # drained as it comes: a full pipe would block the child
        self._inbox: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._inbox.put(json.loads(line))
        self._inbox.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def expect(self, match: Callable[[Event], bool], timeout: float = 20.0) -> Event:
        """The first event (seen already or arriving before the deadline) that matches."""
        for seen in self.events:
            if match(seen):
                return seen
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got = self._inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if got is None:
                self._readers[1].join(5)
                stderr = "\n".join(self.stderr)
                raise AssertionError(f"child exited; events {self.events}; stderr:\n{stderr}")
            self.events.append(got)
            if match(got):
                return got
        raise AssertionError(f"no matching event within {timeout}s; events so far: {self.events}")

    def index(self, match: Callable[[Event], bool]) -> int:
        """Where the first matching event came among those seen so far (stdout order)."""
        return next(i for i, seen in enumerate(self.events) if match(seen))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self) -> int | None:
        """Ask it to quit (waking it first), kill it by PID after a deadline; its exit code."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                self.send("quit")
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait(15)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode
