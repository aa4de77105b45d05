"""The guided failover demo: ``python -m zkelect.demo``.

In well under a minute, on this machine only, it shows what zkelect is for:

1. a local 3-member ZooKeeper ensemble starts (real servers, see ensemble.py);
2. three candidates join one election, each on its own ZooKeeper session;
3. one leads, with a fencing epoch (the czxid of its candidate node);
4. the leader writes with that epoch: to a store that refuses older epochs, and to
   ZooKeeper in a transaction that commits only while its candidate node exists;
5. the leader's session is expired *on the servers* (not a client-side fake): the next
   candidate takes over with a higher epoch, the old ``Leadership`` handle reports the
   loss, and writes stamped with the old epoch are refused by the store and by ZooKeeper;
6. everything is stopped, on every exit path (Ctrl-C and SIGTERM included).

The store here is a stand-in written for the demo: a real one (a database row, a queue)
keeps the highest epoch it has accepted and refuses anything lower.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO, TypeVar

from .config import ElectionConfig
from .election import Election
from .ensemble import LocalEnsemble
from .errors import LeadershipLostError, StaleEpochError, ZkElectError
from .fencing import FencingToken, Leadership
from .guard import FencingGuard
from .testing import expire_session

__all__ = ["EpochStore", "main"]

ELECTION_PATH = "/demo/election"
STATE_PATH = "/demo/state"
CANDIDATE_IDS = ("node-a", "node-b", "node-c")
WAIT = 20.0  # seconds allowed for any one step; the whole demo takes a few seconds

T = TypeVar("T")


def hex_epoch(epoch: int) -> str:
    """Epochs are zxids: the high 32 bits count ZooKeeper's own leader changes."""
    return f"0x{epoch:x}"


class DemoError(Exception):
    """A step of the demo did not turn out as it should (reported in one line, exit 1)."""


class EpochStore:
    """A downstream store that enforces fencing with zkelect's FencingGuard: it admits a
    write only if its epoch is not lower than the highest it has accepted."""

    def __init__(self) -> None:
        self._guard = FencingGuard()
        self.records: list[tuple[int, str]] = []
        self.rejected = 0

    def write(self, token: FencingToken, record: str) -> None:
        try:
            with self._guard.admit("assignment", str(token)):
                self.records.append((token.epoch, record))
        except StaleEpochError:
            self.rejected += 1
            raise


class Console:
    """Serialised output (callbacks print from zkelect's threads) with elapsed times."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()

    def restart_clock(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def line(self, text: str = "") -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def event(self, text: str) -> None:
        self.line(f"[{self.elapsed():6.2f}s] {text}")

    def step(self, number: int, title: str) -> None:
        self.line()
        self.line(f"== {number}. {title}")


class Candidate:
    """One Election plus what its callbacks saw, for the demo to wait on."""

    def __init__(
        self,
        candidate_id: str,
        hosts: str,
        config: ElectionConfig,
        console: Console,
        changed: threading.Condition,
    ) -> None:
        self.id = candidate_id
        self._console = console
        self._changed = changed
        self.leaderships: list[tuple[float, Leadership]] = []  # (elapsed, handle)
        self.revocations: list[tuple[float, str]] = []  # (elapsed, reason)
        self.election = Election(
            hosts,
            ELECTION_PATH,
            candidate_id=candidate_id,
            config=config,
            on_elected=self._on_elected,
            on_revoked=self._on_revoked,
        )

    # Both callbacks run on zkelect's callback thread for this candidate's session.
    def _on_elected(self, lead: Leadership) -> None:
        self._console.event(f"{self.id} elected  epoch={hex_epoch(lead.epoch)}")
        with self._changed:
            self.leaderships.append((self._console.elapsed(), lead))
            self._changed.notify_all()

    def _on_revoked(self, reason: str) -> None:
        self._console.event(f"{self.id} revoked  reason={reason}")
        with self._changed:
            self.revocations.append((self._console.elapsed(), reason))
            self._changed.notify_all()


@dataclass
class Outcome:
    first_id: str = ""
    first_epoch: int = 0
    second_id: str = ""
    second_epoch: int = 0
    failover_s: float = 0.0
    fenced_zk_rejected: int = 0  # fenced transactions refused by the servers
    store: EpochStore = field(default_factory=EpochStore)


class Demo:
    def __init__(self, console: Console, session_timeout: float) -> None:
        self.console = console
        self.config = ElectionConfig(session_timeout=session_timeout)
        self.changed = threading.Condition()
        self.candidates: list[Candidate] = []
        self.outcome = Outcome()

    def wait(self, what: str, predicate: Callable[[], T | None], timeout: float = WAIT) -> T:
        with self.changed:
            found = self.changed.wait_for(predicate, timeout)
        if not found:
            raise DemoError(f"timed out after {timeout:g}s waiting for {what}")
        return found

    def show_candidates(self, via: Candidate) -> None:
        for position, info in enumerate(via.election.candidates(), 1):
            role = "leader" if position == 1 else f"waits on #{position - 1}"
            self.console.line(
                f"    {position}. {info.candidate_id}  epoch={hex_epoch(info.epoch)}  "
                f"session=0x{info.session_id:x}  seq={info.sequence}  ({role})"
            )

    # -- the script --------------------------------------------------------------------------

    def run(self, ensemble: LocalEnsemble) -> None:
        console, out = self.console, self.outcome

        console.step(2, "three candidates join, each on its own ZooKeeper session")
        console.restart_clock()
        for candidate_id in CANDIDATE_IDS:
            candidate = Candidate(candidate_id, ensemble.hosts, self.config, console, self.changed)
            self.candidates.append(candidate)
            console.event(f"{candidate_id} joins")
            candidate.election.start()
        first = self.wait(
            "a first leader", lambda: next((c for c in self.candidates if c.leaderships), None)
        )
        lead = first.leaderships[-1][1]
        out.first_id, out.first_epoch = first.id, lead.epoch

        console.step(3, "who leads, and the queue behind it")
        console.line(f"first leader: {first.id} epoch={hex_epoch(lead.epoch)}")
        self.show_candidates(first)

        console.step(4, f"{first.id} writes, every write stamped with its epoch")
        store = out.store
        store.write(lead.token, f"assignment v1 by {first.id}")
        console.event(f"store accepted {first.id}'s write at epoch {hex_epoch(lead.epoch)}")
        payload = f"written by {first.id} at epoch {hex_epoch(lead.epoch)}".encode()
        lead.transaction().create(STATE_PATH, payload).commit()
        console.event(
            f"fenced ZooKeeper write committed: create {STATE_PATH} "
            f"(same transaction checks that {first.id}'s candidate node still exists)"
        )

        console.step(5, f"expire {first.id}'s session on the servers (a real expiry)")
        started = console.elapsed()
        expire_session(first.election.session.client, timeout=WAIT)
        second = self.wait(
            "a new leader",
            lambda: next((c for c in self.candidates if c is not first and c.leaderships), None),
        )
        self.wait(f"{first.id}'s revocation", lambda: first.revocations)
        elected_at, new_lead = second.leaderships[-1]
        out.second_id, out.second_epoch = second.id, new_lead.epoch
        out.failover_s = max(0.0, elected_at - started)
        reasons = ", ".join(reason for _, reason in first.revocations)
        console.event(f"old leader {first.id} was revoked (reason: {reasons})")
        if reasons == "suspended":
            console.line(
                "    (its connection dropped first: zkelect revokes at once on SUSPENDED by "
                "default, before it learns the session expired)"
            )
        higher = "higher" if new_lead.epoch > lead.epoch else "NOT HIGHER (bug!)"
        console.line(
            f"new leader: {second.id} epoch={hex_epoch(new_lead.epoch)} "
            f"({higher} than {hex_epoch(lead.epoch)}), {out.failover_s:.2f}s after the expiry"
        )
        if new_lead.epoch <= lead.epoch:
            raise DemoError("the new leader's epoch is not higher than the old one's")
        console.line(
            f"old handle: lost.is_set()={lead.lost.is_set()}  reason={lead.reason}  "
            f"is_valid()={lead.is_valid()}"
        )
        if not lead.lost.is_set():
            raise DemoError(f"{first.id}'s Leadership handle does not report the loss")

        # The old candidate rejoins at the back on its new session.
        self.wait_for_candidates(second, len(self.candidates))
        console.line("candidates now:")
        self.show_candidates(second)

        store.write(new_lead.token, f"assignment v2 by {second.id}")
        console.event(f"store accepted {second.id}'s write at epoch {hex_epoch(new_lead.epoch)}")
        new_payload = f"written by {second.id} at epoch {hex_epoch(new_lead.epoch)}".encode()
        new_lead.transaction().set_data(STATE_PATH, new_payload).commit()
        console.event(f"fenced ZooKeeper write committed: set {STATE_PATH} by {second.id}")

        console.line(f"{first.id} wakes up and writes with its old epoch {hex_epoch(lead.epoch)}:")
        try:
            store.write(lead.token, f"assignment v2' by {first.id}")
        except StaleEpochError as exc:
            console.event(str(exc))
        else:
            raise DemoError("the store accepted a write stamped with the old epoch")
        try:
            # No local check: the servers refuse it, because the old leader's node is gone.
            lead.transaction().set_data(STATE_PATH, b"late write").commit()
        except LeadershipLostError as exc:
            out.fenced_zk_rejected += 1
            console.event(f"fenced ZooKeeper write with the old Leadership refused: {exc}")
        else:
            raise DemoError("a fenced transaction with the old Leadership committed")
        client: Any = first.election.session.client
        data, _stat = client.get(STATE_PATH)
        console.line(f"{STATE_PATH} = {bytes(data).decode()!r}")

    def wait_for_candidates(self, via: Candidate, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(via.election.candidates()) < count:
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {WAIT:g}s waiting for {count} candidates")
            time.sleep(0.02)

    def stop_candidates(self) -> None:
        # Followers first, the leader last: nobody is elected on the way out.
        for candidate in sorted(self.candidates, key=lambda c: c.election.is_leader):
            try:
                candidate.election.stop()
            except Exception as exc:  # keep stopping the others
                self.console.line(f"error while stopping {candidate.id}: {exc!r}")


def _run(console: Console, session_timeout: float) -> int:
    ensemble = LocalEnsemble(  # finds ZooKeeper and Java, or raises ZooKeeperNotFoundError
        3, tick_time_ms=200, min_session_timeout_ms=400, max_session_timeout_ms=10_000
    )
    console.step(1, "a local 3-member ZooKeeper ensemble (real servers on 127.0.0.1)")
    demo = Demo(console, session_timeout)
    try:
        started = time.perf_counter()
        ensemble.start()
        console.line(f"ensemble up in {time.perf_counter() - started:.1f}s: {ensemble.hosts}")
        pids = [pid for pid in (ensemble.pid(i) for i in range(ensemble.size)) if pid]
        console.line("ensemble pids: " + " ".join(map(str, pids)))
        demo.run(ensemble)
    finally:
        console.step(6, "stop everything")
        try:
            demo.stop_candidates()
            if demo.candidates:
                console.event(f"{len(demo.candidates)} candidates stopped")
        finally:
            ensemble.stop()
            console.event("ensemble stopped")
    out = demo.outcome
    console.line()
    console.line(
        f"summary: {out.first_id} (epoch {hex_epoch(out.first_epoch)}) -> {out.second_id} "
        f"(epoch {hex_epoch(out.second_epoch)}) {out.failover_s:.2f}s after the session expiry; "
        f"stale writes rejected: {out.store.rejected} by the fenced store, "
        f"{out.fenced_zk_rejected} by the ZooKeeper servers; "
        "nothing left running"
    )
    return 0


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zkelect.demo",
        description="Guided failover demo on a local 3-member ZooKeeper ensemble.",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=4.0,
        metavar="SECONDS",
        help="session timeout the candidates ask for (default: 4)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show kazoo/zkelect logs")
    args = parser.parse_args(argv)
    if not 0.4 <= args.session_timeout <= 10.0:
        parser.error("--session-timeout must be within 0.4..10 seconds (the demo's ensemble)")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    console = Console(sys.stdout)
    with _sigterm_as_interrupt():
        try:
            return _run(console, args.session_timeout)
        except KeyboardInterrupt:
            console.line("interrupted: candidates and ensemble were stopped")
            return 130
        except (ZkElectError, DemoError) as exc:
            message = " ".join(str(exc).split())
            print(f"zkelect demo: {message}", file=sys.stderr, flush=True)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
