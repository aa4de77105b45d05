"""The guided failover demo: ``zkelect demo`` (or ``./dev demo``).

In well under a minute, on this machine only, it shows what zkelect is for, with real
processes and real ZooKeeper servers:

1. a local 3-member ZooKeeper ensemble starts (zkelect.testing.ensemble);
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

The worker (_demo_processes.worker_main) runs as ``zkelect demo-worker --db FILE``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from zkelect._election.nodes import Contender, election_order
from zkelect._election.reader import read_election
from zkelect._lifeline import popen_tied, sigterm_as_interrupt
from zkelect._zookeeper.session import Session
from zkelect.config import ElectionConfig
from zkelect.ops._demo_processes import (
    CANDIDATE_IDS,
    CandidateProcess,
    DemoError,
    Event,
    alive,
    cmdline,
    hex_epoch,
    proc_state,
    worker_main,
)
from zkelect.ops._demo_report import summary

__all__ = ["DemoError", "run_demo", "worker_main"]

ELECTION_PATH = "/demo/election"
GRACE = 2.0  # seconds between SIGTERM and SIGKILL for the workers
WAIT = 30.0  # seconds allowed for any one step
WORKER_COMMAND = "demo-worker"  # the hidden zkelect command the leader runs (worker_main)

T = TypeVar("T")


# ------------------------------------------------------------------------------ the demo


class Demo:
    def __init__(self, out: TextIO, session_timeout: float, verbose: bool) -> None:
        self.out = out
        self.session_timeout = session_timeout
        self.verbose = verbose
        self.cond = threading.Condition()
        self.events: list[Event] = []
        self.t0 = time.monotonic()
        self.candidates: dict[str, CandidateProcess] = {}
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

    def start_candidate(self, candidate_id: str, hosts: str) -> CandidateProcess:
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
        candidate = CandidateProcess(candidate_id, proc, self.record)
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
            "--log-format",  # the lines parse_line reads, whatever ZKELECT_LOG_FORMAT says
            "text",
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
            lambda: proc_state(pid) in ("T", "t") or not alive(pid),
            timeout=5,
        )

    # -- ZooKeeper's view -----------------------------------------------------------------------

    def queue(self, session: Session) -> list[Contender]:
        """The candidates as ZooKeeper lists them, the leader first (read through reader.py)."""
        session.sync(ELECTION_PATH)  # a member may lag behind the leader: read after a sync
        snapshot = read_election(session, ELECTION_PATH, order=election_order, settle=False)
        return list(snapshot.contenders)

    def show_queue(self, session: Session) -> list[Contender]:
        queue = self.queue(session)
        for position, contender in enumerate(queue, 1):
            role = "leader" if position == 1 else f"watches #{position - 1}"
            self.line(
                f"    {position}. {contender.candidate_id:7} epoch={hex_epoch(contender.epoch)}  "
                f"session=0x{contender.session_id:x}  ({role})"
            )
        return queue

    # -- the script -----------------------------------------------------------------------------

    def run(self, ensemble: Any, session: Session) -> None:
        """Steps 2 to 6 (the module docstring); ``session`` reads ZooKeeper's view."""
        a, e1 = self.first_leader(ensemble.hosts, session)
        b, e2 = self.crash(a, e1)
        c, third_at, worker_b = self.freeze_leader(a, b)
        self.thaw(b, e2, c, third_at, worker_b, session)

    def first_leader(self, hosts: str, session: Session) -> tuple[str, int]:
        """Steps 2 and 3: three candidates start; the leader and its epoch, read back."""
        self.step(2, "three `zkelect run` candidates; the leader's worker writes every 100 ms")
        example = self.candidate_command("node-a", "<ensemble>")
        self.line(
            "    $ zkelect " + " ".join(example[3:5]) + " --id node-a ... -- "
            f"zkelect {WORKER_COMMAND} --db store.db"
        )
        self.t0 = time.monotonic()
        for candidate_id in CANDIDATE_IDS:
            self.start_candidate(candidate_id, hosts)
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
                (q := self.queue(session))
                and len(q) == 3
                and (q[0].candidate_id, q[0].epoch) == (a, e1)
            ),
        )
        self.show_queue(session)
        self.line(
            f"leader: {a} epoch={hex_epoch(e1)} = the czxid of its node; its worker got it "
            "as ZKELECT_EPOCH/ZKELECT_TOKEN"
        )
        return a, e1

    def crash(self, a: str, e1: int) -> tuple[str, int]:
        """Step 4: the leader's supervisor is SIGKILLed; the next one is elected."""
        recent = self.wait_event(
            f"a few writes by {a}'s worker",
            lambda e: e.who == a and e.kind == "write" and e.data["n"] >= 10,
        )
        worker_a = int(recent.data["pid"])  # the worker writing now
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
        return b, e2

    def freeze_leader(self, a: str, b: str) -> tuple[str, float, int]:
        """Step 5: the new leader freezes past its session timeout; the third is elected."""
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
        return c, third.at, worker_b

    def thaw(
        self, b: str, e2: int, c: str, third_at: float, worker_b: int, session: Session
    ) -> None:
        """Step 6: the frozen worker's late write is rejected; its supervisor rejoins."""
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
                (q := self.queue(session))
                and q[0].candidate_id == c
                and any(i.candidate_id == b for i in q)
            ),
        )
        self.line("queue now (the thawed node rejoined at the back, on a new session):")
        self.show_queue(session)
        # A few more writes by the current leader before the end.
        self.wait_event(
            f"more writes by {c}'s worker",
            lambda e: e.who == c and e.kind == "write" and e.data["n"] >= 10 and e.at >= third_at,
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
                if alive(worker) and WORKER_COMMAND in cmdline(worker):  # never a reused pid
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
            if alive(pid) and WORKER_COMMAND in cmdline(pid):  # still ours: never a reused pid
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


# ------------------------------------------------------------------------------ running it


def _quiet_logs(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def _prepare_store(db: str) -> None:
    from zkelect.fencing.stores import SQLiteFencedStore

    SQLiteFencedStore(db)  # creates the fence table
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, "
            "epoch INTEGER NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL)"
        )


def _demo(demo: Demo) -> None:
    from zkelect.testing.ensemble import LocalEnsemble

    _prepare_store(demo.db)
    ensemble = LocalEnsemble(  # finds ZooKeeper and Java, or raises ZooKeeperNotFoundError
        3, tick_time_ms=200, min_session_timeout_ms=400, max_session_timeout_ms=10_000
    )
    demo.step(1, "a local 3-member ZooKeeper ensemble (real servers on 127.0.0.1)")
    session: Session | None = None
    finished = False
    try:
        started = time.monotonic()
        ensemble.start()
        demo.line(f"ensemble up in {time.monotonic() - started:.1f}s: {ensemble.hosts}")
        demo.ensemble_pids = [p for p in (ensemble.pid(i) for i in range(ensemble.size)) if p]
        demo.line("ensemble pids: " + " ".join(map(str, demo.ensemble_pids)))
        # The demo's own reader of ZooKeeper's view (a session of the boundary, acquired for
        # its connection; released, and so closed, at step 7).
        config = ElectionConfig(session_timeout=10.0, connect_timeout=WAIT)
        reader = Session.owned_by_election(ensemble.hosts, config)
        reader.acquire()  # connects, or raises (and releases) by itself
        session = reader
        demo.run(ensemble, session)
        finished = True
    finally:
        demo.end_at = demo.now()
        demo.step(7, "stop everything, by PID")
        try:
            if session is not None:
                with contextlib.suppress(Exception):
                    session.release()
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
        summary(demo)


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
        with sigterm_as_interrupt():
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
