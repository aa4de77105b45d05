"""Append-only JSON Lines logs that survive SIGKILL (the history format: docs/reliability.md).

Each event is one ``os.write`` of one whole line on an ``O_APPEND`` descriptor: the kernel
appends it atomically with respect to other writers of the same file (every incarnation of
a candidate slot appends to one file), and a process killed mid-run leaves at most its
last line unwritten, never half of an earlier one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["EventLog", "read_new_lines"]


class EventLog:
    """One JSON Lines file, appended to one whole line at a time; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def emit(self, ev: str, *, t: float | None = None, **fields: Any) -> dict[str, Any]:
        """Append ``{"t": <monotonic>, "ev": ev, **fields}``; returns the event."""
        event: dict[str, Any] = {"t": time.monotonic() if t is None else t, "ev": ev, **fields}
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd >= 0:
                os.write(self._fd, line)
        return event

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def read_new_lines(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON lines of ``path`` after byte ``offset``, and the new offset.

    A line still being written (no newline yet) is left for the next call; an unparsable
    complete line (a writer killed mid-write) is skipped.
    """
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events: list[dict[str, Any]] = []
    for raw in data[: end + 1].splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events, offset + end + 1
