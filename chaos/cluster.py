"""The system under test: a local ensemble, five candidate processes and their proxies.

Each candidate reaches every member through its own FaultProxy (one per candidate and
member), listening on the candidate's veth address when namespaces are available, else on
loopback: a proxy fault or a link going down hits one candidate only.

The runner learns what candidates believe by tailing their history files (``refresh``),
the same files the checker reads afterwards: it never trusts anything the checker could
not see.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.candidate import AUDIT_TABLE, create_audit_table
from chaos.events import EventLog, read_new_lines
from chaos.netns import CandidateNet, NetLab
from zkelect import ElectionConfig
from zkelect._lifeline import popen_tied
from zkelect.fencing.stores import SQLiteFencedStore
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import FaultProxy

__all__ = ["PROFILES", "Cluster", "HarnessError", "Profile", "Slot"]

_START_TIMEOUT = 60.0  # a candidate's interpreter start on a loaded machine


class HarnessError(RuntimeError):
    """The harness itself failed (not the system under test): the run proves nothing."""


@dataclass(frozen=True)
class Profile:
    """The settings of the system under test: the servers' ticks and the candidates' timeouts.

    A timeout left None is zkelect's own default (``ElectionConfig``), a session bound left
    None ZooKeeper's own (2 and 20 ticks).
    """

    name: str
    tick_ms: int
    min_session_timeout_ms: int | None
    max_session_timeout_ms: int | None
    session_timeout: float | None = None
    request_timeout: float | None = None
    connect_timeout: float | None = None

    @property
    def effective_session_timeout(self) -> float:
        return self.session_timeout or ElectionConfig().session_timeout

    def candidate_args(self) -> list[str]:
        """The command-line options that set a candidate's non-default timeouts."""
        args: list[str] = []
        for name in ("session", "request", "connect"):
            value = getattr(self, f"{name}_timeout")
            if value is not None:
                args += [f"--{name}-timeout", f"{value:g}"]
        return args


PROFILES: dict[str, Profile] = {
    # Fast: 200 ms ticks and 2 s sessions, so a few minutes hold many faults (the test
    # suite's seeded run). Its own request/connect timeouts keep zkelect's calls in scale.
    "short": Profile("short", 200, 400, 20_000, 2.0, 4.0, 10.0),
    # Nothing tuned: ZooKeeper's default tickTime and session bounds, zkelect's defaults
    # (10 s sessions). The bugs that only show at real timeouts show here.
    "default": Profile("default", 2000, None, None),
}


@dataclass
class Slot:
    """One candidate slot (``c0``..``c4``) and its current incarnation."""

    index: int
    cand: str
    net: CandidateNet | None
    proxies: list[FaultProxy] = field(default_factory=list)
    inc: int = 0
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    # From the history file (refresh): the current incarnation's session, connection, belief.
    started_inc: int = 0
    exited_inc: int = 0
    session_id: int | None = None
    member: int | None = None  # the member it is connected to, None while disconnected
    belief: int | None = None  # epoch it believes it leads with, None if it does not

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def hosts(self) -> str:
        return ",".join(p.address for p in self.proxies)


class Cluster:
    def __init__(
        self,
        run_dir: Path,
        *,
        members: int,
        candidates: int,
        profile: Profile,
        election_path: str,
        nemesis_log: EventLog,
        netlab: NetLab | None,
    ) -> None:
        self.run_dir = run_dir
        self.members = members
        self.profile = profile
        self.session_timeout = profile.effective_session_timeout
        self.election_path = election_path
        self.nemesis_log = nemesis_log
        self.netlab = netlab
        self.store_path = run_dir / "store.sqlite"
        self.ensemble = LocalEnsemble(
            members,
            base_dir=run_dir / "zookeeper",
            tick_time_ms=profile.tick_ms,
            min_session_timeout_ms=profile.min_session_timeout_ms,
            max_session_timeout_ms=profile.max_session_timeout_ms,
            jvm_heap_mb=96,
        )
        nets: list[CandidateNet | None] = (
            list(netlab.nets) if netlab is not None else [None] * candidates
        )
        self.slots = [Slot(i, f"c{i}", nets[i]) for i in range(candidates)]
        self._offsets: dict[str, int] = {}
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    # -- start and stop -----------------------------------------------------------------

    def start_servers(self) -> None:
        self.ensemble.start()
        SQLiteFencedStore(self.store_path)  # its fence table
        with contextlib.closing(sqlite3.connect(self.store_path)) as conn:
            create_audit_table(conn)
            conn.commit()
        for slot in self.slots:
            listen = slot.net.host_ip if slot.net is not None else "127.0.0.1"
            for m in range(self.members):
                proxy = FaultProxy(self.ensemble.member_hosts(m), listen_host=listen)
                slot.proxies.append(proxy.start())

    def start_candidates(self) -> None:
        for slot in self.slots:
            self.spawn(slot, wait=False)
        for slot in self.slots:
            self.wait_started(slot)

    def spawn(self, slot: Slot, *, wait: bool = True) -> None:
        """Start a new incarnation of ``slot``."""
        slot.inc += 1
        slot.paused = False
        slot.session_id = None
        slot.member = None
        slot.belief = None
        command = [
            sys.executable,
            "-m",
            "chaos.candidate",
            "--cand",
            slot.cand,
            "--inc",
            str(slot.inc),
            "--hosts",
            slot.hosts,
            "--path",
            self.election_path,
            "--store",
            str(self.store_path),
            "--out",
            str(self.run_dir),
            *self.profile.candidate_args(),
        ]
        if slot.net is not None:
            command = slot.net.exec_prefix() + command
        root = Path(__file__).resolve().parent.parent
        pythonpath = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath))
        with open(self.run_dir / "logs" / f"{slot.cand}.log", "ab") as log:
            slot.proc = popen_tied(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
                env=env,
                start_new_session=True,
            )
        if wait:
            self.wait_started(slot)

    def wait_started(self, slot: Slot) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            self.refresh()
            if slot.started_inc == slot.inc and slot.session_id is not None:
                return
            if not slot.alive:
                raise HarnessError(
                    f"candidate {slot.cand} (incarnation {slot.inc}) exited with code "
                    f"{slot.proc.returncode if slot.proc else None} before joining; "
                    f"see {self.run_dir / 'logs' / (slot.cand + '.log')}:\n" + self.log_tail(slot)
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"candidate {slot.cand} (incarnation {slot.inc}) did not start and connect "
                    f"within {_START_TIMEOUT:g}s; see its log:\n" + self.log_tail(slot)
                )
            time.sleep(0.1)

    def log_tail(self, slot: Slot, lines: int = 15) -> str:
        path = self.run_dir / "logs" / f"{slot.cand}.log"
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def check_alive(self) -> None:
        """A candidate that died without being killed by the nemesis is a harness error."""
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is not None:
                raise HarnessError(
                    f"candidate {slot.cand} (incarnation {slot.inc}) died unexpectedly with "
                    f"code {slot.proc.returncode}:\n" + self.log_tail(slot)
                )

    def kill(self, slot: Slot) -> None:
        """SIGKILL the slot's process and record it (its belief ends now)."""
        proc = slot.proc
        if proc is None:
            return
        pid = proc.pid
        proc.kill()
        t = time.monotonic()
        proc.wait()
        self.nemesis_log.emit("kill", t=t, cand=slot.cand, inc=slot.inc, pid=pid)
        slot.proc, slot.paused, slot.belief, slot.session_id = None, False, None, None
        slot.member = None

    def pause(self, slot: Slot) -> None:
        if slot.proc is None or slot.paused:
            return
        slot.proc.send_signal(signal.SIGSTOP)
        slot.paused = True
        self.nemesis_log.emit("stop", cand=slot.cand, inc=slot.inc)

    def resume(self, slot: Slot) -> None:
        if slot.proc is None or not slot.paused:
            return
        slot.proc.send_signal(signal.SIGCONT)
        slot.paused = False
        self.nemesis_log.emit("cont", cand=slot.cand, inc=slot.inc)

    def stop_candidates(self, timeout: float = 20.0) -> None:
        """SIGTERM every live candidate (each records its exit); SIGKILL stragglers."""
        for slot in self.slots:
            self.resume(slot)
            if slot.alive and slot.proc is not None:
                slot.proc.terminate()
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(slot)
            slot.proc = None

    def close(self) -> None:
        """Best effort, never raises: everything this cluster started is stopped by PID."""
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(Exception):
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait(10)
            for proxy in slot.proxies:
                with contextlib.suppress(Exception):
                    proxy.stop()
        with contextlib.suppress(Exception):
            self.ensemble.stop()

    # -- what candidates believe --------------------------------------------------------

    def refresh(self) -> None:
        """Read new history lines: sessions and beliefs of the current incarnations."""
        for slot in self.slots:
            path = self.run_dir / "candidates" / f"{slot.cand}.jsonl"
            events, self._offsets[slot.cand] = read_new_lines(path, self._offsets.get(slot.cand, 0))
            for event in events:
                self._apply(slot, event)

    @staticmethod
    def _apply(slot: Slot, event: dict[str, Any]) -> None:
        if event.get("inc") != slot.inc:
            return  # an older incarnation's last words
        ev = event.get("ev")
        if ev == "start":
            slot.started_inc = slot.inc
        elif ev == "session":
            slot.session_id = int(str(event["session_id"]), 16)
        elif ev == "connected":
            slot.member = int(event["member"])
        elif ev == "disconnected":
            slot.member = None
        elif ev == "elected":
            slot.belief = int(event["epoch"])
        elif ev == "revoked":
            slot.belief = None
        elif ev == "exit":
            slot.exited_inc = slot.inc
            slot.belief = slot.member = None

    def believers(self) -> list[Slot]:
        return [s for s in self.slots if s.alive and s.belief is not None]

    def live_slots(self) -> list[Slot]:
        return [s for s in self.slots if s.alive]

    def slot_by_id(self, candidate_id: str | None) -> Slot | None:
        """The slot whose current incarnation has this candidate id (``<cand>.<inc>``)."""
        for slot in self.slots:
            if candidate_id == f"{slot.cand}.{slot.inc}":
                return slot
        return None

    def dump_store(self, path: Path) -> int:
        """Write the store's audit (accepted writes, in commit order) as JSON Lines."""
        with contextlib.closing(sqlite3.connect(self.store_path, timeout=30)) as conn:
            rows = conn.execute(
                f"SELECT id, epoch, cand, seq, t FROM {AUDIT_TABLE} ORDER BY id"
            ).fetchall()
        keys = ("id", "epoch", "cand", "seq", "t")
        with open(path, "w") as out:
            for row in rows:
                out.write(json.dumps(dict(zip(keys, row, strict=True))) + "\n")
        return len(rows)
