"""The guided demo's processes: the leader's worker (a fenced writer) and the ``zkelect run``
candidates, whose output lines the demo follows as events. See demo.py for the story.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from zkelect.errors import ZkElectError

__all__ = [
    "CANDIDATE_IDS",
    "CandidateProcess",
    "DemoError",
    "Event",
    "alive",
    "cmdline",
    "hex_epoch",
    "parse_line",
    "proc_state",
    "worker_main",
]

CANDIDATE_IDS = ("node-a", "node-b", "node-c")
RESOURCE = "records"  # the fenced store's resource name: one high-water epoch for all writes
WRITE_INTERVAL = 0.1


class DemoError(ZkElectError):
    """A step of the demo did not turn out as it should (one line, exit code 1)."""


def hex_epoch(epoch: int) -> str:
    """Epochs are zxids: the high 32 bits count ZooKeeper's own leader changes."""
    return f"0x{epoch:x}"


# -- the worker ----------------------------------------------------------------------------------


def worker_main(db: str) -> int:
    """The leader's work: a fenced write every 100 ms until SIGTERM.

    Started by ``zkelect run`` only while its candidate leads, with the fencing token in
    ``ZKELECT_TOKEN``. Every write goes through the fenced store, which refuses an epoch
    lower than one it has accepted. After a refusal this worker knows it was deposed: it
    writes no more and waits for its supervisor to stop it.
    """
    from zkelect.fencing.leadership import FencingToken
    from zkelect.fencing.stores import SQLiteFencedStore

    token = FencingToken.parse(os.environ.get("ZKELECT_TOKEN"))
    who = f"worker {token.candidate_id} pid={os.getpid()}"
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    store = SQLiteFencedStore(db)
    accepted = rejected = 0
    seq = 0
    deposed = False
    next_at = time.monotonic()
    while not stop.is_set():
        if not deposed:
            seq += 1

            def insert(conn: Any, n: int = seq) -> None:
                conn.execute(
                    "INSERT INTO records (writer, epoch, seq, at) VALUES (?, ?, ?, ?)",
                    (token.candidate_id, token.epoch, n, time.time()),
                )

            try:
                store.write(RESOURCE, token, insert)
            except ZkElectError as exc:  # StaleEpochError: a newer leader has written
                rejected += 1
                deposed = True
                current = getattr(exc, "current_epoch", None)
                print(
                    f"{who}: write #{seq} REJECTED epoch={hex_epoch(token.epoch)} "
                    f"current={hex_epoch(current or 0)}: {exc}",
                    flush=True,
                )
            else:
                accepted += 1
                print(f"{who}: write #{seq} accepted epoch={hex_epoch(token.epoch)}", flush=True)
        next_at += WRITE_INTERVAL
        stop.wait(max(0.0, next_at - time.monotonic()))
    print(f"{who}: stopping (SIGTERM): {accepted} accepted, {rejected} rejected", flush=True)
    return 0


# -- the candidates ------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return proc_state(pid) not in ("Z", "X", None) or not Path("/proc").is_dir()


def proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Event:
    at: float  # seconds since the candidates started
    who: str
    kind: str  # joined elected started revoked exited left write stopping eof
    data: dict[str, Any] = field(default_factory=dict)


# `zkelect run` lines start with the time and the level (zkelect/ops/logs.py).
_SUPERVISOR = re.compile(r"^(?:\S+ [A-Z]+ )?zkelect run (?P<who>\S+): (?P<msg>.*)$")
_WORKER = re.compile(
    r"^worker (?P<who>\S+) pid=(?P<pid>\d+): write #(?P<n>\d+) (?P<result>accepted|REJECTED) "
    r"epoch=0x(?P<epoch>[0-9a-f]+)(?: current=0x(?P<current>[0-9a-f]+))?"
)
_WORKER_STOP = re.compile(r"^worker (?P<who>\S+) pid=(?P<pid>\d+): stopping")


def parse_line(line: str) -> tuple[str, str, dict[str, Any]] | None:
    """(who, kind, data) for a line a candidate or its worker prints, or None."""
    m = _WORKER.match(line)
    if m:
        data: dict[str, Any] = {
            "pid": int(m["pid"]),
            "n": int(m["n"]),
            "ok": m["result"] == "accepted",
            "epoch": int(m["epoch"], 16),
            "current": int(m["current"], 16) if m["current"] else None,
            "text": line,
        }
        return m["who"], "write", data
    m = _WORKER_STOP.match(line)
    if m:
        return m["who"], "stopping", {"pid": int(m["pid"]), "text": line}
    m = _SUPERVISOR.match(line)
    if not m:
        return None
    who, msg = m["who"], m["msg"]
    patterns: list[tuple[str, str]] = [
        ("joined", r"^joined "),
        ("elected", r"^elected: epoch=(?P<epoch>\d+)"),
        ("started", r"^child started: pid=(?P<pid>\d+)"),
        ("revoked", r"^revoked \((?P<reason>[^)]*)\)"),
        ("exited", r"^child exited: pid=(?P<pid>\d+) (?P<how>.*)$"),
        ("left", r"^left the election"),
    ]
    for kind, pattern in patterns:
        found = re.match(pattern, msg)
        if found:
            data = {k: int(v) if v.isdigit() else v for k, v in found.groupdict().items()}
            data["text"] = msg
            return who, kind, data
    return who, "other", {"text": msg}


class CandidateProcess:
    """One ``zkelect run`` process; a thread reads what it and its worker print, and hands
    each line to ``record(who, kind, data)`` as an event."""

    def __init__(
        self,
        candidate_id: str,
        proc: subprocess.Popen[bytes],
        record: Callable[[str, str, dict[str, Any]], object],
    ) -> None:
        self.id = candidate_id
        self.proc = proc
        self.pid = proc.pid
        self.worker_pids: list[int] = []
        self._record = record
        self._thread = threading.Thread(target=self._read, name=f"demo-{candidate_id}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            parsed = parse_line(line)
            if parsed is None:
                self._record(self.id, "output", {"text": line})
            else:
                who, kind, data = parsed
                if kind == "started":
                    self.worker_pids.append(int(data["pid"]))
                self._record(who if who in CANDIDATE_IDS else self.id, kind, data)
        self._record(self.id, "eof", {})

    def close(self) -> None:
        self._thread.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
