"""The guided failover demo: ``zkelect demo`` (or ``./dev demo``).

In well under a minute, on this machine only, it shows what zkelect is for, with real
processes and real ZooKeeper servers:

1. a local 3-member ZooKeeper ensemble starts (ensemble.py);
2. three ``zkelect run`` candidates start (node-a, node-b, node-c), each a separate OS
   process; whichever leads runs a *worker* that writes a record every 100 ms to a SQLite
   store fenced by epoch (stores.SQLiteFencedStore, token from ``ZKELECT_TOKEN``);
3. the leader and its epoch (the czxid of its candidate node, read back from ZooKeeper);
4. the leader's supervisor is SIGKILLed: its worker dies with it (PR_SET_PDEATHSIG), its
   session expires on the servers, the next candidate is elected with a higher epoch;
5. the new leader freezes (SIGSTOP of its supervisor and of its worker's process group, as
   in a long GC pause or a VM stall) past its session timeout: the third one is elected;
6. the frozen worker thaws first and writes with its old epoch: the store REJECTS it;
   then its supervisor thaws, learns it lost leadership, stops the worker, rejoins;
7. everything is stopped by PID, and a summary and a leadership timeline are printed.

The worker is this module too (worker_main), run as ``zkelect demo-worker --db FILE``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar

from zkelect._lifeline import popen_tied
from zkelect.errors import ZkElectError

__all__ = ["DemoError", "run_demo", "worker_main"]

ELECTION_PATH = "/demo/election"
CANDIDATE_IDS = ("node-a", "node-b", "node-c")
RESOURCE = "records"  # the fenced store's resource name: one high-water epoch for all writes
WRITE_INTERVAL = 0.1
GRACE = 2.0  # seconds between SIGTERM and SIGKILL for the workers
WAIT = 30.0  # seconds allowed for any one step
WORKER_COMMAND = "demo-worker"  # the hidden zkelect command the leader runs (worker_main)

T = TypeVar("T")


class DemoError(ZkElectError):
    """A step of the demo did not turn out as it should (one line, exit code 1)."""


def hex_epoch(epoch: int) -> str:
    """Epochs are zxids: the high 32 bits count ZooKeeper's own leader changes."""
    return f"0x{epoch:x}"


# ------------------------------------------------------------------------------ the worker


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


# ------------------------------------------------------------------------------ the candidates


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X", None) or not Path("/proc").is_dir()


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> str:
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


_SUPERVISOR = re.compile(r"^zkelect run (?P<who>\S+): (?P<msg>.*)$")
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


class Candidate:
    """One ``zkelect run`` process; a thread reads what it and its worker print."""

    def __init__(self, candidate_id: str, proc: subprocess.Popen[bytes], demo: Demo) -> None:
        self.id = candidate_id
        self.proc = proc
        self.pid = proc.pid
        self.worker_pids: list[int] = []
        self._demo = demo
        self._thread = threading.Thread(target=self._read, name=f"demo-{candidate_id}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            parsed = parse_line(line)
            if parsed is None:
                self._demo.record(self.id, "output", {"text": line})
            else:
                who, kind, data = parsed
                if kind == "started":
                    self.worker_pids.append(int(data["pid"]))
                self._demo.record(who if who in CANDIDATE_IDS else self.id, kind, data)
        self._demo.record(self.id, "eof", {})

    def close(self) -> None:
        self._thread.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ------------------------------------------------------------------------------ the demo


class Demo:
    def __init__(self, out: TextIO, session_timeout: float, verbose: bool) -> None:
        self.out = out
        self.session_timeout = session_timeout
        self.verbose = verbose
        self.cond = threading.Condition()
        self.events: list[Event] = []
        self.t0 = time.monotonic()
        self.candidates: dict[str, Candidate] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="zkelect-demo-"))
        self.db = str(self.workdir / "store.db")
        self.ensemble_pids: list[int] = []
        self.leaders: list[dict[str, Any]] = []  # who, epoch, at, ended, end
        self.failovers: list[dict[str, Any]] = []  # old, new, cause, seconds
        self.end_at: float | None = None
        self._print_lock = threading.Lock()

    # -- output and events ----------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def line(self, text: str = "") -> None:
        with self._print_lock:
            print(text, file=self.out, flush=True)

    def event_line(self, text: str, at: float | None = None) -> None:
        self.line(f"[{self.now() if at is None else at:6.2f}s] {text}")

    def step(self, number: int, title: str) -> None:
        self.line()
        self.line(f"== {number}. {title}")

    def record(self, who: str, kind: str, data: dict[str, Any]) -> Event:
        event = Event(self.now(), who, kind, data)
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()
        if self.verbose and "text" in data:
            self.line(f"    | {who}: {data['text']}")
        return event

    def wait_event(
        self,
        what: str,
        match: Callable[[Event], bool],
        after: float = 0.0,
        timeout: float = WAIT,
    ) -> Event:
        """The first event at or after ``after`` that matches, waiting up to ``timeout``."""

        def find() -> Event | None:
            return next((e for e in self.events if e.at >= after and match(e)), None)

        with self.cond:
            found = self.cond.wait_for(find, timeout)
        if found is None:
            raise DemoError(f"timed out after {timeout:g}s waiting for {what}")
        return found

    def wait_until(self, what: str, check: Callable[[], T | None], timeout: float = WAIT) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.02)

    # -- processes ------------------------------------------------------------------------------

    def start_candidate(self, candidate_id: str, hosts: str) -> Candidate:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("ZKELECT_HOSTS", None)
        command = self.candidate_command(candidate_id, hosts)
        proc = popen_tied(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order
        )
        candidate = Candidate(candidate_id, proc, self)
        self.candidates[candidate_id] = candidate
        return candidate

    def candidate_command(self, candidate_id: str, hosts: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "zkelect.ops.cli.main",
            "run",
            ELECTION_PATH,
            "--id",
            candidate_id,
            "--hosts",
            hosts,
            "--session-timeout",
            f"{self.session_timeout:g}",
            "--grace",
            f"{GRACE:g}",
            "--timeout",
            "30",
            "--",
            sys.executable,
            "-m",
            "zkelect.ops.cli.main",
            WORKER_COMMAND,
            "--db",
            self.db,
        ]

    def wait_joined(self, candidate_id: str) -> Event:
        return self.wait_event(
            f"{candidate_id} to join", lambda e: e.who == candidate_id and e.kind == "joined"
        )

    def last_elected(self, candidate_id: str) -> Event:
        with self.cond:
            found = [e for e in self.events if e.who == candidate_id and e.kind == "elected"]
        if not found:
            raise DemoError(f"{candidate_id} was never elected")
        return found[-1]

    def wait_write(self, candidate_id: str, after: float, ok: bool = True) -> Event:
        word = "accepted" if ok else "rejected"
        return self.wait_event(
            f"an {word} write by {candidate_id}'s worker",
            lambda e: e.who == candidate_id and e.kind == "write" and e.data["ok"] is ok,
            after=after,
        )

    def wait_stopped(self, pid: int, what: str) -> None:
        """SIGSTOP takes effect asynchronously: wait until the kernel shows it stopped."""
        self.wait_until(
            f"{what} (pid {pid}) to be stopped",
            lambda: _proc_state(pid) in ("T", "t") or not alive(pid),
            timeout=5,
        )

    # -- ZooKeeper's view -----------------------------------------------------------------------

    def queue(self, client: Any) -> list[Any]:
        from kazoo.exceptions import NoNodeError

        from zkelect._election.nodes import LeaderInfo, election_order

        infos = []
        client.sync(ELECTION_PATH)  # a member may lag behind the leader: read after a sync
        for node in election_order(client.get_children(ELECTION_PATH)):
            with contextlib.suppress(NoNodeError):  # gone meanwhile
                data, stat = client.get(f"{ELECTION_PATH}/{node.name}")
                infos.append(LeaderInfo.from_node(node, data, stat.czxid, stat.ephemeralOwner))
        return infos

    def show_queue(self, client: Any) -> list[Any]:
        infos = self.queue(client)
        for position, info in enumerate(infos, 1):
            role = "leader" if position == 1 else f"watches #{position - 1}"
            self.line(
                f"    {position}. {info.candidate_id:7} epoch={hex_epoch(info.epoch)}  "
                f"session=0x{info.session_id:x}  ({role})"
            )
        return infos

    # -- the script -----------------------------------------------------------------------------

    def run(self, ensemble: Any, client: Any) -> None:
        self.step(2, "three `zkelect run` candidates; the leader's worker writes every 100 ms")
        example = self.candidate_command("node-a", "<ensemble>")
        self.line(
            "    $ zkelect " + " ".join(example[3:5]) + " --id node-a ... -- "
            f"zkelect {WORKER_COMMAND} --db store.db"
        )
        self.t0 = time.monotonic()
        for candidate_id in CANDIDATE_IDS:
            self.start_candidate(candidate_id, ensemble.hosts)
        self.line("candidate pids: " + " ".join(str(c.pid) for c in self.candidates.values()))
        first = self.wait_event("a first leader", lambda e: e.kind == "elected")
        a, e1 = first.who, int(first.data["epoch"])
        self.leaders.append({"who": a, "epoch": e1, "at": first.at})
        self.event_line(f"{a} elected, epoch {hex_epoch(e1)}", first.at)
        written = self.wait_write(a, first.at)
        worker_a = int(written.data["pid"])
        self.event_line(
            f"{a}'s worker (pid {worker_a}) writes: write #1 accepted at epoch {hex_epoch(e1)}",
            written.at,
        )
        for other in CANDIDATE_IDS:
            self.wait_joined(other)

        self.step(3, "who leads, with which epoch (read back from ZooKeeper)")
        self.wait_until(
            f"ZooKeeper to show {a} leading with epoch {hex_epoch(e1)} and 3 candidates",
            lambda: (
                (q := self.queue(client))
                and len(q) == 3
                and (q[0].candidate_id, q[0].epoch) == (a, e1)
            ),
        )
        self.show_queue(client)
        self.line(
            f"leader: {a} epoch={hex_epoch(e1)} = the czxid of its node; its worker got it "
            "as ZKELECT_EPOCH/ZKELECT_TOKEN"
        )
        recent = self.wait_event(
            f"a few writes by {a}'s worker",
            lambda e: e.who == a and e.kind == "write" and e.data["n"] >= 10,
        )
        worker_a = int(recent.data["pid"])

        self.step(4, f"crash: SIGKILL {a}'s supervisor (no goodbye to ZooKeeper)")
        sup_a = self.candidates[a]
        killed_at = self.now()
        os.kill(sup_a.pid, signal.SIGKILL)
        sup_a.proc.wait(timeout=10)
        self.leaders[-1].update(ended="SIGKILLed", stopped_working=killed_at)
        self.record(a, "killed", {})
        self.event_line(f"SIGKILL -> {a}'s supervisor (pid {sup_a.pid})", killed_at)
        self.wait_until(f"{a}'s worker to die", lambda: not alive(worker_a), timeout=10)
        self.event_line(
            f"{a}'s worker (pid {worker_a}) died with it: PR_SET_PDEATHSIG, no orphan writes on"
        )
        second = self.wait_event(
            "a new leader", lambda e: e.kind == "elected" and e.who != a, after=killed_at
        )
        b, e2 = second.who, int(second.data["epoch"])
        failover = second.at - killed_at
        self.leaders[-1]["end"] = second.at
        self.leaders.append({"who": b, "epoch": e2, "at": second.at})
        self.failovers.append({"old": a, "new": b, "cause": "SIGKILL", "seconds": failover})
        self.event_line(f"{b} elected, epoch {hex_epoch(e2)}", second.at)
        higher = "higher" if e2 > e1 else "NOT HIGHER"
        self.line(
            f"new leader: {b} epoch={hex_epoch(e2)} ({higher} than {hex_epoch(e1)}), "
            f"{failover:.2f}s after the SIGKILL"
        )
        self.line(
            f"    ({a}'s node stayed until its session expired on the servers: session timeout "
            f"{self.session_timeout:g}s)"
        )
        if e2 <= e1:
            raise DemoError("the new leader's epoch is not higher than the old one's")
        written = self.wait_write(b, second.at)
        worker_b = int(written.data["pid"])
        self.event_line(
            f"{b}'s worker (pid {worker_b}) write #1 accepted at epoch {hex_epoch(e2)}", written.at
        )
        self.wait_event(
            f"a few writes by {b}'s worker",
            lambda e: e.who == b and e.kind == "write" and e.data["n"] >= 10 and e.at >= second.at,
        )

        self.step(5, f"freeze {b} past its session timeout (a GC pause, a VM stall)")
        frozen_at, worker_b = self.freeze(b)
        self.leaders[-1].update(ended="frozen", stopped_working=frozen_at)
        self.event_line(
            f"SIGSTOP -> {b}'s supervisor (pid {self.candidates[b].pid}) and its worker's "
            f"process group (pgid {worker_b})",
            frozen_at,
        )
        third = self.wait_event(
            "a successor to the frozen leader",
            lambda e: e.kind == "elected" and e.who not in (a, b),
            after=frozen_at,
        )
        c, e3 = third.who, int(third.data["epoch"])
        self.leaders[-1]["end"] = third.at
        self.leaders.append({"who": c, "epoch": e3, "at": third.at})
        self.failovers.append(
            {"old": b, "new": c, "cause": "freeze", "seconds": third.at - frozen_at}
        )
        self.event_line(
            f"{c} elected, epoch {hex_epoch(e3)}, {third.at - frozen_at:.2f}s after the freeze",
            third.at,
        )
        written = self.wait_write(c, third.at)
        worker_c = int(written.data["pid"])
        self.event_line(
            f"{c}'s worker (pid {worker_c}) write #1 accepted at epoch {hex_epoch(e3)}: the store "
            f"now refuses anything below {hex_epoch(e3)}",
            written.at,
        )

        self.step(6, f"thaw {b}: its worker wakes first, still holding epoch {hex_epoch(e2)}")
        self.line("    (in a real stall both wake together, and the worker may write before its")
        self.line("    supervisor notices: that is the window fencing closes)")
        thawed_at = self.now()
        os.killpg(worker_b, signal.SIGCONT)
        self.record(b, "thawed-worker", {})
        late = self.wait_write(b, thawed_at, ok=False)
        current = late.data["current"]
        self.event_line(
            f"{b}'s worker: late write #{late.data['n']} with epoch {hex_epoch(e2)} REJECTED by "
            f"the fenced store (it has accepted epoch {hex_epoch(current or 0)})",
            late.at,
        )
        if current is None or current <= e2:
            raise DemoError("the store's rejection does not name a higher epoch")
        supervisor_thawed = self.now()
        os.kill(self.candidates[b].pid, signal.SIGCONT)
        self.record(b, "thawed", {})
        self.event_line(f"SIGCONT -> {b}'s supervisor", supervisor_thawed)
        revoked = self.wait_event(
            f"{b}'s supervisor to notice the loss",
            lambda e: e.who == b and e.kind == "revoked",
            after=supervisor_thawed,
        )
        self.event_line(f"{b} revoked ({revoked.data['reason']}): stops its worker", revoked.at)
        gone = self.wait_event(
            f"{b}'s worker to stop",
            lambda e: e.who == b and e.kind == "exited" and e.data["pid"] == worker_b,
            after=supervisor_thawed,
        )
        self.event_line(f"{b}'s worker (pid {worker_b}) exited ({gone.data['how']})", gone.at)
        self.wait_until(
            f"{b} to rejoin as a follower of {c}",
            lambda: (
                (q := self.queue(client))
                and q[0].candidate_id == c
                and any(i.candidate_id == b for i in q)
            ),
        )
        self.line("queue now (the thawed node rejoined at the back, on a new session):")
        self.show_queue(client)
        # A few more writes by the current leader before the end.
        self.wait_event(
            f"more writes by {c}'s worker",
            lambda e: e.who == c and e.kind == "write" and e.data["n"] >= 10 and e.at >= third.at,
        )

    def freeze(self, who: str) -> tuple[float, int]:
        """SIGSTOP ``who``'s supervisor and its worker's process group between two writes (a
        worker frozen inside its SQLite transaction would hold the store's lock and block the
        successor); (when, the worker's pid)."""
        supervisor = self.candidates[who].pid
        for _attempt in range(10):
            wrote = self.wait_write(who, self.now())  # ~100 ms until its next write
            worker = int(wrote.data["pid"])
            os.kill(supervisor, signal.SIGSTOP)
            try:
                os.killpg(worker, signal.SIGSTOP)
            except ProcessLookupError:  # that worker was stopped meanwhile: try again
                os.kill(supervisor, signal.SIGCONT)
                continue
            at = self.now()
            self.wait_stopped(supervisor, f"{who}'s supervisor")
            self.wait_stopped(worker, f"{who}'s worker")
            if not self.store_locked():
                self.record(who, "frozen", {})
                return at, worker
            os.killpg(worker, signal.SIGCONT)  # let it finish that write, then try again
            os.kill(supervisor, signal.SIGCONT)
        raise DemoError(f"could not freeze {who} outside a write")

    def store_locked(self) -> bool:
        conn = sqlite3.connect(self.db, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()

    # -- stopping -------------------------------------------------------------------------------

    def stop_candidates(self) -> None:
        """Thaw, then SIGTERM by PID (followers first: nobody is elected on the way out);
        SIGKILL what does not exit in time; then make sure every worker is gone."""
        candidates = [c for c in self.candidates.values() if c.proc.poll() is None]
        for candidate in candidates:
            with contextlib.suppress(ProcessLookupError):
                os.kill(candidate.pid, signal.SIGCONT)
            for worker in candidate.worker_pids:
                if alive(worker) and WORKER_COMMAND in _cmdline(worker):  # never a reused pid
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(worker, signal.SIGCONT)
        leading = self._leader_now()
        followers = [c for c in candidates if c.id != leading]
        last = [c for c in candidates if c.id == leading]
        for group in (followers, last):
            for candidate in group:
                with contextlib.suppress(ProcessLookupError):
                    candidate.proc.send_signal(signal.SIGTERM)
            for candidate in group:
                try:
                    candidate.proc.wait(timeout=GRACE + 10)
                except subprocess.TimeoutExpired:
                    candidate.proc.kill()
                    candidate.proc.wait()
        for candidate in self.candidates.values():
            if candidate.proc.poll() is None:
                candidate.proc.kill()
                candidate.proc.wait()
            candidate.close()
        deadline = time.monotonic() + 5
        for pid in self.worker_pids():
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if alive(pid) and WORKER_COMMAND in _cmdline(pid):  # still ours: never a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def _leader_now(self) -> str | None:
        with self.cond:
            events = list(self.events)
        leader: str | None = None
        for event in events:
            if event.kind == "elected":
                leader = event.who
            elif event.kind in ("revoked", "killed", "left") and event.who == leader:
                leader = None
        return leader

    def worker_pids(self) -> list[int]:
        return [pid for c in self.candidates.values() for pid in c.worker_pids]

    # -- the summary ----------------------------------------------------------------------------

    def reported(self, ok: bool) -> dict[int, int]:
        """Writes the workers reported, accepted (``ok``) or rejected, per epoch."""
        counts: dict[int, int] = {}
        for event in self.events:
            if event.kind == "write" and event.data["ok"] is ok:
                epoch = int(event.data["epoch"])
                counts[epoch] = counts.get(epoch, 0) + 1
        return counts

    def store_epochs(self) -> list[int]:
        """The epoch of every record in the store, in the order they were written."""
        conn = sqlite3.connect(self.db)
        try:
            return [int(e) for (e,) in conn.execute("SELECT epoch FROM records ORDER BY id")]
        finally:
            conn.close()

    def summary(self) -> None:
        end = self.end_at if self.end_at is not None else self.now()
        stored = self.store_epochs()
        reported, rejected = self.reported(True), self.reported(False)
        self.line()
        self.line("== summary")
        header = (
            f"  {'leader':8}{'epoch':>14}  {'elected':>8}  {'led until':>9}  "
            f"{'how it ended':14}{'accepted':>9}{'rejected':>9}"
        )
        self.line(header)
        self.line("  " + "-" * (len(header) - 2))
        for leader in self.leaders:
            epoch = leader["epoch"]
            until = f"{leader['end']:.2f}s" if "end" in leader else "end"
            self.line(
                f"  {leader['who']:8}{hex_epoch(epoch):>14}  {leader['at']:7.2f}s  "
                f"{until:>9}  {leader.get('ended', 'still leading'):14}"
                f"{stored.count(epoch):>9}{rejected.get(epoch, 0):>9}"
            )
        for f in self.failovers:
            self.line(
                f"  failover {f['old']} -> {f['new']} after the {f['cause']}: {f['seconds']:.2f}s "
                f"(session timeout {self.session_timeout:g}s)"
            )
        ordered = all(a <= b for a, b in itertools.pairwise(stored))
        self.line(
            f"  writes: {len(stored)} accepted, {sum(rejected.values())} rejected; the store "
            f"holds {len(stored)} records, epochs {'never decrease' if ordered else 'DECREASE'}"
        )
        # The store is the authority; the workers' lines must agree with it, except that the
        # SIGKILLed leader's worker may have died between its commit and its line.
        lines = sum(reported.values())
        if not ordered or not lines <= len(stored) <= lines + 1:
            raise DemoError(
                f"the store holds {len(stored)} records for {lines} writes the workers "
                f"reported as accepted (epochs ordered: {ordered})"
            )
        self.timeline(end)

    def timeline(self, end: float) -> None:
        self.line()
        self.line("== leadership timeline (seconds since the candidates started)")
        for leader in self.leaders:
            until = f"{leader['end']:6.2f}" if "end" in leader else "   end"
            note = ""
            if "stopped_working" in leader:
                note = (
                    f"  ({leader['ended']} at {leader['stopped_working']:.2f}s; its node held on "
                    "until its session expired)"
                )
            self.line(
                f"  {leader['at']:6.2f} - {until}  {leader['who']}  "
                f"epoch {hex_epoch(leader['epoch'])}{note}"
            )
        width = 60
        scale = width / max(end, 0.001)

        def col(t: float) -> int:
            return min(width - 1, max(0, int(t * scale)))

        self.line()
        self.line(f"  {'':8}0s{'':{width - 4}}{end:.0f}s")
        for candidate_id in CANDIDATE_IDS:
            row = [" "] * width
            joined = next(
                (e.at for e in self.events if e.who == candidate_id and e.kind == "joined"), None
            )
            if joined is not None:
                for i in range(col(joined), width):
                    row[i] = "."
            for leader in (x for x in self.leaders if x["who"] == candidate_id):
                working_end = leader.get("stopped_working", leader.get("end", end))
                for i in range(col(leader["at"]), col(working_end) + 1):
                    row[i] = "#"
                if "stopped_working" in leader:
                    for i in range(col(leader["stopped_working"]) + 1, col(leader["end"]) + 1):
                        row[i] = "~"
                    after = " " if leader["ended"] == "SIGKILLed" else ":"
                    for i in range(col(leader["end"]) + 1, width):
                        row[i] = after
            mine = [e for e in self.events if e.who == candidate_id and e.at <= end]
            for event in mine:
                if event.kind == "revoked":
                    for i in range(col(event.at), width):
                        row[i] = "."
            for event in mine:
                if event.kind == "write" and not event.data["ok"]:
                    row[col(event.at)] = "!"
            self.line(f"  {candidate_id:8}|{''.join(row)}|")
        self.line("  # leads, its worker writes     ~ crashed/frozen, its node still leads")
        self.line("  : frozen and deposed           ! late write rejected    . candidate")


# ------------------------------------------------------------------------------ running it


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so ``finally`` blocks stop what was started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quiet_logs(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def _demo(demo: Demo) -> None:
    from kazoo.client import KazooClient

    from zkelect.fencing.stores import SQLiteFencedStore
    from zkelect.testing.ensemble import LocalEnsemble

    SQLiteFencedStore(demo.db)  # creates the fence table
    with sqlite3.connect(demo.db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, "
            "epoch INTEGER NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL)"
        )
    ensemble = LocalEnsemble(  # finds ZooKeeper and Java, or raises ZooKeeperNotFoundError
        3, tick_time_ms=200, min_session_timeout_ms=400, max_session_timeout_ms=10_000
    )
    demo.step(1, "a local 3-member ZooKeeper ensemble (real servers on 127.0.0.1)")
    client: Any = None
    finished = False
    try:
        started = time.monotonic()
        ensemble.start()
        demo.line(f"ensemble up in {time.monotonic() - started:.1f}s: {ensemble.hosts}")
        demo.ensemble_pids = [p for p in (ensemble.pid(i) for i in range(ensemble.size)) if p]
        demo.line("ensemble pids: " + " ".join(map(str, demo.ensemble_pids)))
        client = KazooClient(hosts=ensemble.hosts, timeout=10.0)
        client.start(timeout=WAIT)
        demo.run(ensemble, client)
        finished = True
    finally:
        demo.end_at = demo.now()
        demo.step(7, "stop everything, by PID")
        try:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.stop()
                    client.close()
            demo.stop_candidates()
            demo.line(
                f"candidates stopped: {' '.join(str(c.pid) for c in demo.candidates.values())}"
            )
            demo.line("worker pids: " + " ".join(map(str, demo.worker_pids())))
        finally:
            ensemble.stop()
            demo.line("ensemble stopped")
    everything = [
        *demo.ensemble_pids,
        *(c.pid for c in demo.candidates.values()),
        *demo.worker_pids(),
    ]
    left = [pid for pid in everything if alive(pid)]
    if left:
        raise DemoError(f"processes still running after the demo: {left}")
    demo.line(f"checked: none of the {len(everything)} processes is running")
    if finished:
        demo.summary()


def run_demo(
    *, session_timeout: float = 2.0, verbose: bool = False, out: TextIO | None = None
) -> int:
    """Run the whole demo; 0 when every step turned out as it should, 130 if interrupted.

    Raises DemoError (a step failed) or another ZkElectError (no ZooKeeper installed...).
    """
    import shutil

    if not 0.4 <= session_timeout <= 10.0:
        raise DemoError("--session-timeout must be within 0.4..10 seconds (the demo's ensemble)")
    _quiet_logs(verbose)
    demo = Demo(out or sys.stdout, session_timeout, verbose)
    try:
        with _sigterm_as_interrupt():
            try:
                _demo(demo)
            except OSError as exc:  # a signal to a process that is gone, a full disk...
                raise DemoError(f"{type(exc).__name__}: {exc}") from None
            except KeyboardInterrupt:
                demo.line("interrupted: candidates, workers and ensemble were stopped")
                return 130
    finally:
        shutil.rmtree(demo.workdir, ignore_errors=True)
    return 0
