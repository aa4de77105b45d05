"""The nemesis: a seeded schedule of faults, injected one at a time, each healed after.

The schedule is a sequence of *rounds*, each a seeded permutation of every fault kind, so
any run long enough for one round injects every kind at least once, in an order (and with
durations and targets) fixed by the seed: ``--seed`` replays a run's schedule. (What the
processes do in between is not deterministic: a replay reproduces the faults, not the
interleaving.)

A fault is: ``fault-start`` (recorded just before it is injected), the planned duration,
the heal, ``fault-end`` (recorded once it is healed: a restarted ZooKeeper member serves
again, a killed candidate runs again as a new incarnation). "short"/"long" pauses and
partitions are below/above the session timeout.

``silent-member`` makes one ZooKeeper member silent to the candidates (the member the leader is
connected to, usually): every candidate's proxy to it black-holed, or the member SIGSTOPped,
for longer than I6's bound and than the session timeout, so a client that does not notice the
silence loses its session (docs/reliability.md, I6).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from chaos.checker import silent_member_bound
from chaos.cluster import Cluster, Slot
from chaos.events import EventLog
from chaos.history import FAULT_KINDS  # one list of names, shared with the checker
from chaos.netns import NetLab
from chaos.observer import Observer, hex_session

__all__ = ["FAULT_KINDS", "PARTITION_KINDS", "Fault", "Nemesis", "schedule"]

PARTITION_KINDS = frozenset({"partition-short", "partition-long"})
_TARGET_LEADER_P = 0.7  # network faults and expiry hit the leader this often, else anyone


def schedule(kinds: Sequence[str], rng: random.Random) -> Iterator[str]:
    """Rounds of seeded permutations of ``kinds``, forever."""
    while True:
        round_ = list(kinds)
        rng.shuffle(round_)
        yield from round_


@dataclass
class Fault:
    """One injected fault, as the runner reports it."""

    id: int
    kind: str
    targets: list[str]
    planned_s: float
    detail: dict[str, Any]
    started_t: float
    ended_t: float = 0.0
    recovery_s: float | None = None  # fault-end -> unique leader (None: bound passed)
    notes: list[str] = field(default_factory=list)
    end_detail: dict[str, Any] = field(default_factory=dict)  # recorded with fault-end
    after_heal: Callable[[], object] | None = None  # finishing touches after fault-end


class Nemesis:
    def __init__(
        self,
        cluster: Cluster,
        observer: Observer,
        log: EventLog,
        seed: int,
        *,
        netlab: NetLab | None,
    ) -> None:
        self.cluster = cluster
        self.ensemble = cluster.ensemble
        self.observer = observer
        self.log = log
        self.seed = seed
        self.rng = random.Random(f"{seed}/fault/0")  # choices: targets, flap intervals
        self.durations = random.Random(f"{seed}/duration/0")  # planned durations
        self.netlab = netlab
        self.st = cluster.session_timeout
        self.next_id = 1
        self._admin: KazooClient | None = None

    # -- targets -----------------------------------------------------------------------

    def leader_slot(self) -> Slot | None:
        """The candidate ZooKeeper says leads (the observer's view), if it is running."""
        latest = self.observer.latest
        slot = self.cluster.slot_by_id(latest.data if latest is not None else None)
        if slot is not None and slot.alive:
            return slot
        believers = self.cluster.believers()
        return believers[0] if len(believers) == 1 else None

    def _random_slot(self, *, exclude: Slot | None = None) -> Slot:
        pool = [s for s in self.cluster.live_slots() if s is not exclude]
        return self.rng.choice(pool or self.cluster.live_slots())

    def _leader_or_random(self) -> tuple[Slot, str]:
        leader = self.leader_slot()
        if leader is not None and self.rng.random() < _TARGET_LEADER_P:
            return leader, "leader"
        return self._random_slot(), "random"

    def _members_by_mode(self) -> tuple[int | None, list[int]]:
        leader, followers = None, []
        for i in range(self.ensemble.size):
            mode = self.ensemble.mode(i)
            if mode in ("leader", "standalone"):
                leader = i
            elif mode == "follower":
                followers.append(i)
        return leader, followers

    # -- one fault -----------------------------------------------------------------------

    def run(self, kind: str) -> Fault:
        """Inject one fault of ``kind``, hold it for its planned duration, heal it."""
        fault_id, self.next_id = self.next_id, self.next_id + 1
        # Generators per fault, durations apart from choices: a planned duration depends on
        # neither the draws of earlier faults (a flap's count of intervals) nor on how many a
        # choice among the live candidates took, so a seed replays it.
        self.rng = random.Random(f"{self.seed}/fault/{fault_id}")
        self.durations = random.Random(f"{self.seed}/duration/{fault_id}")
        inject = getattr(self, "_" + kind.replace("-", "_"))
        fault: Fault = inject(fault_id)
        fault.ended_t = time.monotonic()
        end_fields: dict[str, Any] = {"detail": fault.end_detail} if fault.end_detail else {}
        self.log.emit("fault-end", t=fault.ended_t, id=fault.id, **end_fields)
        if fault.after_heal is not None:
            fault.after_heal()
        return fault

    def _start(
        self, fault_id: int, kind: str, targets: list[str], planned: float, **detail: Any
    ) -> Fault:
        event = self.log.emit(
            "fault-start",
            id=fault_id,
            kind=kind,
            targets=targets,
            planned_s=round(planned, 3),
            detail=detail,
        )
        return Fault(fault_id, kind, targets, planned, detail, event["t"])

    def _hold(self, seconds: float) -> None:
        """Sleep through the fault, watching that no candidate died on its own."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.1, left))
            self.cluster.check_alive()

    # candidates: kill, pause

    def _kill(self, fault_id: int, kind: str, slot: Slot, role: str) -> Fault:
        planned = self.durations.uniform(0.5, 2.0)
        fault = self._start(
            fault_id, kind, [slot.cand], planned, inc=slot.inc, role=role, restart="new incarnation"
        )
        self.cluster.kill(slot)
        self._hold(planned)
        self.cluster.spawn(slot)
        return fault

    def _kill_leader(self, fault_id: int) -> Fault:
        leader = self.leader_slot()
        if leader is None:
            return self._kill(fault_id, "kill-leader", self._random_slot(), "random: no leader")
        return self._kill(fault_id, "kill-leader", leader, "leader")

    def _kill_candidate(self, fault_id: int) -> Fault:
        slot = self._random_slot(exclude=self.leader_slot())
        return self._kill(fault_id, "kill-candidate", slot, "follower")

    def _pause(self, fault_id: int, kind: str, slot: Slot, planned: float, role: str) -> Fault:
        fault = self._start(
            fault_id,
            kind,
            [slot.cand],
            planned,
            inc=slot.inc,
            role=role,
            longer_than_session=planned > self.st,
        )
        self.cluster.pause(slot)
        try:
            self._hold(planned)
        finally:
            self.cluster.resume(slot)
        return fault

    def _short(self) -> float:
        return self.durations.uniform(0.25, 0.7) * self.st

    def _long(self) -> float:
        return self.durations.uniform(1.6, 3.0) * self.st

    def _pause_leader(self, fault_id: int, kind: str, planned: float) -> Fault:
        leader = self.leader_slot()
        if leader is None:
            return self._pause(fault_id, kind, self._random_slot(), planned, "random: no leader")
        return self._pause(fault_id, kind, leader, planned, "leader")

    def _pause_leader_short(self, fault_id: int) -> Fault:
        return self._pause_leader(fault_id, "pause-leader-short", self._short())

    def _pause_leader_long(self, fault_id: int) -> Fault:
        return self._pause_leader(fault_id, "pause-leader-long", self._long())

    def _pause_candidate(self, fault_id: int) -> Fault:
        slot = self._random_slot(exclude=self.leader_slot())
        planned = self._short() if self.durations.random() < 0.5 else self._long()
        return self._pause(fault_id, "pause-candidate", slot, planned, "follower")

    # ZooKeeper members: kill, pause, quorum loss

    def _zk_target(self, want_leader: bool) -> tuple[int, str]:
        leader, followers = self._members_by_mode()
        if want_leader and leader is not None:
            return leader, "leader"
        if not want_leader and followers:
            return self.rng.choice(followers), "follower"
        return self.rng.randrange(self.ensemble.size), "unknown: no mode answered"

    def _restart_member(self, member: int, fault: Fault) -> None:
        try:
            self.ensemble.restart(member, timeout=120.0)
        except Exception as exc:  # reported; the run goes on with the others
            fault.notes.append(f"restart of member {member} failed: {exc}")

    def _kill_zk(self, fault_id: int, kind: str, want_leader: bool) -> Fault:
        member, role = self._zk_target(want_leader)
        planned = self.durations.uniform(1.0, 3.0)
        fault = self._start(fault_id, kind, [f"zk{member}"], planned, member=member, role=role)
        self.ensemble.kill(member)
        self._hold(planned)
        self._restart_member(member, fault)
        return fault

    def _kill_zk_leader(self, fault_id: int) -> Fault:
        return self._kill_zk(fault_id, "kill-zk-leader", True)

    def _kill_zk_follower(self, fault_id: int) -> Fault:
        return self._kill_zk(fault_id, "kill-zk-follower", False)

    def _pause_zk(self, fault_id: int, kind: str, want_leader: bool) -> Fault:
        member, role = self._zk_target(want_leader)
        planned = self.durations.uniform(0.5, 2.5) * self.st
        fault = self._start(
            fault_id,
            kind,
            [f"zk{member}"],
            planned,
            member=member,
            role=role,
            longer_than_session=planned > self.st,
        )
        self.ensemble.pause(member)
        try:
            self._hold(planned)
        finally:
            self.ensemble.resume(member)
        self._wait_members_serving()
        return fault

    def _wait_members_serving(self) -> None:
        """After a member's SIGCONT: healed once the members serve again."""
        with contextlib.suppress(Exception):
            self.ensemble.wait_serving(timeout=60.0)

    def _pause_zk_leader(self, fault_id: int) -> Fault:
        return self._pause_zk(fault_id, "pause-zk-leader", True)

    def _pause_zk_follower(self, fault_id: int) -> Fault:
        return self._pause_zk(fault_id, "pause-zk-follower", False)

    def _quorum_loss(self, fault_id: int) -> Fault:
        size = self.ensemble.size
        down = sorted(self.rng.sample(range(size), size // 2 + 1))
        planned = self.durations.uniform(2.0, 4.0)
        fault = self._start(
            fault_id,
            "quorum-loss",
            [f"zk{m}" for m in down],
            planned,
            members=down,
            majority_down=len(down),
        )
        for member in down:
            self.ensemble.kill(member)
        self._hold(planned)
        # Healed as soon as a quorum serves again: the first restart brings it back. The
        # others rejoin right after, inside the recovery window (a follower joining does
        # not disturb a serving quorum).
        self._restart_member(down[0], fault)
        for member in down[1:]:
            fault.notes.append(f"member {member} restarted after the heal")

        def restart_the_others() -> None:
            for member in down[1:]:
                self._restart_member(member, fault)

        fault.after_heal = restart_the_others
        return fault

    # a candidate's network: partition, flap, blackhole; its session: expiry

    def _partition(self, fault_id: int, kind: str, planned: float) -> Fault:
        slot, role = self._leader_or_random()
        net = slot.net
        assert self.netlab is not None and net is not None, "partition kinds need namespaces"
        fault = self._start(
            fault_id,
            kind,
            [slot.cand],
            planned,
            inc=slot.inc,
            role=role,
            link=net.host_if,
            namespace=net.namespace,
            longer_than_session=planned > self.st,
        )
        self.netlab.set_link(slot.index, up=False)
        try:
            self._hold(planned)
        finally:
            self.netlab.set_link(slot.index, up=True)
        return fault

    def _partition_short(self, fault_id: int) -> Fault:
        return self._partition(fault_id, "partition-short", self._short())

    def _partition_long(self, fault_id: int) -> Fault:
        return self._partition(fault_id, "partition-long", self._long())

    def _proxy_flap(self, fault_id: int) -> Fault:
        slot, role = self._leader_or_random()
        planned = self.durations.uniform(1.5, 4.0)
        fault = self._start(fault_id, "proxy-flap", [slot.cand], planned, inc=slot.inc, role=role)
        deadline = time.monotonic() + planned
        flaps = dropped = 0
        while time.monotonic() < deadline:
            dropped += sum(proxy.drop_connections() for proxy in slot.proxies)
            flaps += 1
            self._hold(min(self.rng.uniform(0.2, 0.8), max(0.0, deadline - time.monotonic())))
        fault.detail.update(flaps=flaps, connections_dropped=dropped)
        return fault

    def _proxy_blackhole(self, fault_id: int) -> Fault:
        slot, role = self._leader_or_random()
        planned = self.durations.uniform(0.3, 2.0) * self.st
        fault = self._start(
            fault_id,
            "proxy-blackhole",
            [slot.cand],
            planned,
            inc=slot.inc,
            role=role,
            longer_than_session=planned > self.st,
        )
        for proxy in slot.proxies:
            proxy.blackhole(True)
        try:
            self._hold(planned)
        finally:
            for proxy in slot.proxies:
                proxy.blackhole(False)
        return fault

    def _expire_session(self, fault_id: int) -> Fault:
        slot, role = self._leader_or_random()
        secret = json.loads((self.cluster.run_dir / "secrets" / f"{slot.cand}.json").read_text())
        session_id = int(secret["session_id"])
        fault = self._start(
            fault_id,
            "expire-session",
            [slot.cand],
            0.0,
            inc=slot.inc,
            role=role,
            session_id=f"{session_id:#x}",
        )
        # The ZooKeeper FAQ's way: a second handle on the same session, then close it; the
        # server ends the session, deletes its nodes and fires their watches.
        second = KazooClient(
            hosts=self.ensemble.hosts,
            client_id=(session_id, bytes.fromhex(secret["password"])),
            timeout=self.st,
        )
        try:
            second.start(timeout=15.0)
            attached = second.client_id is not None and second.client_id[0] == session_id
            fault.detail["expired"] = attached
            if not attached:
                fault.notes.append("the session was already gone (a new one was opened)")
        except Exception as exc:
            fault.detail["expired"] = False
            fault.notes.append(f"could not attach to the session: {exc!r}")
        finally:
            with contextlib.suppress(Exception):
                second.stop()
                second.close()
        return fault

    def _delete_election_path(self, fault_id: int) -> Fault:
        path = self.cluster.election_path
        fault = self._start(fault_id, "delete-election-path", [path], 0.0, path=path, atomic=True)
        # Like zkCli's deleteall (ZKUtil.deleteRecursive, batched multi): every node and the
        # path go in ONE transaction, so all candidates lose their nodes at the same instant.
        # (kazoo's recursive delete removes live candidates' nodes one at a time instead: a
        # storm of forced depositions milliseconds apart; see the README's chaos section.)
        admin = self._admin_client()
        for attempt in range(1, 21):
            try:
                children = admin.get_children(path)
            except NoNodeError:
                fault.detail.update(deleted=True, nodes=0, attempts=attempt)
                break
            txn = admin.transaction()
            for name in children:
                txn.delete(f"{path}/{name}")
            txn.delete(path)
            results = txn.commit()
            if not any(isinstance(r, Exception) for r in results):
                fault.detail.update(deleted=True, nodes=len(children), attempts=attempt)
                break
            # A candidate joined (NotEmpty) or left (NoNode) between the listing and the
            # transaction, which then changed nothing: list again.
        else:
            fault.detail["deleted"] = False
            fault.notes.append("the path kept changing under the transaction; not deleted")
        return fault

    def _admin_client(self) -> KazooClient:
        if self._admin is None or not self._admin.connected:
            if self._admin is not None:
                with contextlib.suppress(Exception):
                    self._admin.stop()
                    self._admin.close()
            self._admin = KazooClient(hosts=self.ensemble.hosts, timeout=10.0)
            self._admin.start(timeout=30.0)
        return self._admin

    # a ZooKeeper member gone silent to its clients: black-holed links or SIGSTOP

    def _silent_target(self) -> tuple[int, str]:
        """The member the leader is connected to (usually), else another candidate's."""
        leader = self.leader_slot()
        if leader is not None and leader.member is not None and (
            self.rng.random() < _TARGET_LEADER_P
        ):
            return leader.member, f"the leader {leader.cand}'s member"
        connected = [s for s in self.cluster.live_slots() if s.member is not None]
        if connected:
            slot = self.rng.choice(connected)
            assert slot.member is not None
            return slot.member, f"{slot.cand}'s member"
        return self.rng.randrange(self.ensemble.size), "random: no candidate connected"

    def _silent_variant(self, member: int) -> tuple[str, str | None]:
        """Black-holed links or SIGSTOP, by the seed; and why it was changed, if it was."""
        variant = self.rng.choice(("blackhole", "sigstop"))
        if variant == "sigstop" and self.ensemble.pid(member) is None:
            return "blackhole", "the member is not running: black-holed instead"
        if variant == "sigstop" and self.ensemble.mode(member) in ("leader", "standalone"):
            # Stopping the quorum's leader stops every member until a new leader is elected
            # (pause-zk-leader does that): here one member is silent and the others serve.
            return "blackhole", "the member leads the quorum: black-holed instead"
        return variant, None

    def _set_silent(self, member: int, variant: str, silent: bool) -> None:
        if variant == "sigstop":
            (self.ensemble.pause if silent else self.ensemble.resume)(member)
            return
        for slot in self.cluster.slots:
            slot.proxies[member].blackhole(silent)

    def _silent_member(self, fault_id: int) -> Fault:
        member, role = self._silent_target()
        variant, why = self._silent_variant(member)
        tick = self.ensemble.tick_time_ms / 1000.0
        # Longer than I6's bound even with one connect attempt on the silent member, and
        # than the session timeout plus the servers' expiry tick: a client that stays on
        # the silent member loses its session.
        bound = silent_member_bound(self.st, tick, self.ensemble.size, retried=True)
        planned = bound + self.durations.uniform(0.2, 1.0) * self.st
        self.cluster.refresh()
        on_member = [s for s in self.cluster.live_slots() if s.member == member]
        proxies = [slot.proxies[member] for slot in self.cluster.slots]
        accepted_before = [proxy.connections_accepted for proxy in proxies]
        fault = self._start(
            fault_id,
            "silent-member",
            [f"zk{member}"],
            planned,
            member=member,
            role=role,
            variant=variant,
            # The runner's view; the checker finds them again in the candidates' histories.
            connected={
                s.cand: {"inc": s.inc, "session_id": hex_session(s.session_id)} for s in on_member
            },
            **({"why": why} if why else {}),
        )
        self._set_silent(member, variant, True)
        try:
            self._hold(planned)
        finally:
            # Counted while the member is still silent, for every slot (the checker judges
            # whichever processes the histories show on the member).
            fault.end_detail["silent_connects"] = {
                slot.cand: proxy.connections_accepted - before
                for slot, proxy, before in zip(
                    self.cluster.slots, proxies, accepted_before, strict=True
                )
            }
            self._set_silent(member, variant, False)
        if variant == "sigstop":
            self._wait_members_serving()
        return fault

    # -- healing everything ----------------------------------------------------------------

    def heal_all(self) -> None:
        """Undo whatever may still be in effect (after an error, or at the end)."""
        for slot in self.cluster.slots:
            with contextlib.suppress(Exception):
                self.cluster.resume(slot)
            for proxy in slot.proxies:
                with contextlib.suppress(Exception):
                    proxy.blackhole(False)
            if self.netlab is not None and slot.net is not None:
                with contextlib.suppress(Exception):
                    self.netlab.set_link(slot.index, up=True)
        for member in range(self.ensemble.size):
            with contextlib.suppress(Exception):
                if self.ensemble.pid(member) is None:
                    self.ensemble.restart(member, timeout=120.0)
                else:
                    self.ensemble.resume(member)

    def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.stop()
                self._admin.close()
