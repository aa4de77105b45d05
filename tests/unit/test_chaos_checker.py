"""The chaos checker (I1-I6) over small synthetic histories written to temporary run directories.

Each test starts from one clean, hand-checked history (``clean_run``) or a tiny scenario built
with ``RunBuilder`` and breaks exactly one thing, so the violation it must catch is known.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checker import SILENT_SLACK_S, check, silent_member_bound
from chaos.history import HistoryError, load_run

T0 = 1000.0
PATH = "/chaos/election"


def node(name: str) -> str:
    return f"{PATH}/{name}"


class RunBuilder:
    """Records of one run, kept as plain dicts so tests can edit them, then written out."""

    def __init__(self, **run: Any) -> None:
        self.run: dict[str, Any] = {
            "seed": 7,
            "duration_s": 60.0,
            "session_timeout_s": 4.0,
            "members": 3,
            "candidates": 2,
            "election_path": PATH,
            "store": "sqlite",
            "store_path": "/tmp/x.db",
            "netns": False,
            "started_t": T0,
            "ended_t": T0 + 60,
            "nemesis_kinds": ["kill-leader"],
            "heal_bound_s": 6.0,
            "profile": "short",
            "tick_ms": 200,
        }
        self.run.update(run)
        self.candidates: dict[str, list[dict[str, Any]]] = {}
        self.nemesis: list[dict[str, Any]] = []
        self.observer: list[dict[str, Any]] = [
            {"t": T0, "ev": "observer-session", "session_id": "0x0b5"}
        ]
        self.store: list[dict[str, Any]] | None = []
        self._seq: dict[tuple[str, int], int] = {}

    # candidate records
    def cand(self, t: float, ev: str, cand: str, inc: int, **fields: Any) -> None:
        self.candidates.setdefault(cand, []).append(
            {"t": T0 + t, "ev": ev, "cand": cand, "inc": inc, **fields}
        )

    def start(self, t: float, cand: str, inc: int, session: str) -> None:
        self.cand(t, "start", cand, inc, pid=1000 + inc)
        self.cand(t + 0.01, "session", cand, inc, session_id=session)

    def connected(self, t: float, cand: str, inc: int, member: int, session: str) -> None:
        self.cand(t, "connected", cand, inc, member=member, session_id=session)

    def disconnected(self, t: float, cand: str, inc: int, state: str = "suspended") -> None:
        self.cand(t, "disconnected", cand, inc, state=state)

    def elected(self, t: float, cand: str, inc: int, epoch: int, name: str) -> None:
        self.cand(t, "elected", cand, inc, epoch=epoch, node=node(name))

    def revoked(self, t: float, cand: str, inc: int, epoch: int, reason: str = "lost") -> None:
        self.cand(t, "revoked", cand, inc, epoch=epoch, reason=reason)

    def write(
        self,
        t: float,
        cand: str,
        inc: int,
        epoch: int,
        result: str = "accepted",
        current: int | None = None,
        audit: bool | None = None,
    ) -> int:
        seq = self._seq.get((cand, inc), 0) + 1
        self._seq[(cand, inc)] = seq
        self.cand(
            t,
            "write",
            cand,
            inc,
            epoch=epoch,
            seq=seq,
            t_start=T0 + t - 0.005,
            result=result,
            current_epoch=current if current is not None else epoch,
            error=None,
        )
        if (result == "accepted" if audit is None else audit) and self.store is not None:
            self.audit(t - 0.002, cand, epoch, seq)
        return seq

    def audit(self, t: float, cand: str, epoch: int, seq: int) -> None:
        """A row of the store's audit; ids follow commit time, as in the real table."""
        assert self.store is not None
        self.store.append({"epoch": epoch, "cand": cand, "seq": seq, "t": T0 + t})
        self.store.sort(key=lambda row: row["t"])
        for index, row in enumerate(self.store):
            row["id"] = index + 1

    # nemesis records
    def nem(self, t: float, ev: str, **fields: Any) -> None:
        self.nemesis.append({"t": T0 + t, "ev": ev, **fields})

    def fault(
        self,
        fault_id: int,
        kind: str,
        start: float,
        end: float | None,
        targets: tuple[str, ...] = (),
    ) -> None:
        self.nem(
            start,
            "fault-start",
            id=fault_id,
            kind=kind,
            targets=list(targets),
            planned_s=(end or start) - start,
            detail={},
        )
        if end is not None:
            self.nem(end, "fault-end", id=fault_id)

    # observer records
    def leader(
        self,
        t: float,
        name: str | None,
        epoch: int | None,
        owner: str | None = None,
        nodes: int = 2,
    ) -> None:
        self.observer.append(
            {
                "t": T0 + t,
                "ev": "leader",
                "node": node(name) if name else None,
                "owner_session": owner,
                "epoch": epoch,
                "nodes": nodes,
            }
        )

    def wchp(self, t: float, watches: dict[str, list[str]], owners: dict[str, str]) -> None:
        self.observer.append(
            {
                "t": T0 + t,
                "ev": "wchp",
                "member": "127.0.0.1:2181",
                "watches": watches,
                "owners": owners,
            }
        )

    def final(
        self, t: float, owners: dict[str, str], live: list[str], live_candidates: int | None = None
    ) -> None:
        self.observer.append(
            {
                "t": T0 + t,
                "ev": "final",
                "nodes": list(owners),
                "ephemeral_owners": owners,
                "live_candidates": len(live) if live_candidates is None else live_candidates,
                "live_sessions": live,
            }
        )

    def write_to(self, run_dir: Path) -> Path:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps(self.run))
        (run_dir / "candidates").mkdir(exist_ok=True)

        def jsonl(path: Path, records: list[dict[str, Any]]) -> None:
            path.write_text("".join(json.dumps(record) + "\n" for record in records))

        for cand, records in self.candidates.items():
            jsonl(run_dir / "candidates" / f"{cand}.jsonl", records)
        jsonl(run_dir / "nemesis.jsonl", self.nemesis)
        jsonl(run_dir / "observer.jsonl", self.observer)
        if self.store is not None:
            jsonl(run_dir / "store_accepted.jsonl", self.store)
        return run_dir


def clean_run() -> RunBuilder:
    """Two candidates, a leader killed, a leader paused past its session (a fenced zombie).

    Times are seconds after T0. Epochs: c0#0 100, then c1#0 200, then c0#1 300.
    """
    b = RunBuilder()
    b.start(0.1, "c0", 0, "0xa0")
    b.start(0.1, "c1", 0, "0xb0")
    b.leader(0.9, "n0", 100, "0xa0")
    b.elected(1.0, "c0", 0, 100, "n0")
    b.write(2.0, "c0", 0, 100)
    b.write(3.0, "c0", 0, 100)
    b.wchp(
        5.0,
        {node("n0"): ["0xa0", "0xb0", "0x0b5"], node("n1"): ["0xb0"]},
        {node("n0"): "0xa0", node("n1"): "0xb0"},
    )
    # Fault 1: the leader is killed; c1 takes over 2.9 s after the heal.
    b.fault(1, "kill-leader", 10.0, 10.1, ("c0",))
    b.nem(10.0, "kill", cand="c0", inc=0, pid=1000)
    b.start(11.0, "c0", 1, "0xa1")
    b.leader(10.5, None, None, nodes=1)
    b.leader(12.9, "n1", 200, "0xb0")
    b.elected(13.0, "c1", 0, 200, "n1")
    b.write(14.0, "c1", 0, 200)
    # Fault 2: c1 is paused past its session; c0#1 is elected; c1 wakes, is fenced, revokes.
    b.fault(2, "pause-leader-long", 20.0, 27.0, ("c1",))
    b.nem(20.0, "stop", cand="c1", inc=0)
    b.leader(24.9, "n2", 300, "0xa1", nodes=1)
    b.elected(25.0, "c0", 1, 300, "n2")
    b.write(26.0, "c0", 1, 300)
    b.nem(27.0, "cont", cand="c1", inc=0)
    b.write(27.1, "c1", 0, 200, result="rejected", current=300)
    b.revoked(27.2, "c1", 0, 200, "session expired")
    b.start(28.0, "c1", 1, "0xb1")
    b.leader(28.1, "n2", 300, "0xa1", nodes=2)
    b.wchp(30.0, {node("n2"): ["0xa1", "0xb1"]}, {node("n2"): "0xa1", node("n3"): "0xb1"})
    b.final(59.0, {node("n2"): "0xa1", node("n3"): "0xb1"}, ["0xa1", "0xb1"])
    return b


def invariants(run_dir: Path) -> list[str]:
    return [violation.invariant for violation in check(run_dir).violations]


# --- the clean history ------------------------------------------------------------------------


def test_clean_history_passes_with_the_expected_figures(tmp_path: Path) -> None:
    result = check(clean_run().write_to(tmp_path))
    assert result.violations == []
    s = result.summary
    assert s["faults"] == {"kill-leader": 1, "pause-leader-long": 1}
    assert s["elections"] == 3
    assert s["leaders"] == {"c0": 2, "c1": 1}
    assert s["writes"] == {"accepted": 4, "rejected": 1, "error": 0}
    assert s["stale_writes_rejected"] == 1
    assert s["violations"] == {"I1": 0, "I2": 0, "I3": 0, "I4": 0, "I5": 0, "I6": 0}
    heals = {item["id"]: item for item in s["heal"]["per_fault"]}
    assert heals[1]["status"] == "ok" and heals[1]["seconds"] == pytest.approx(2.9)
    # The zombie c1 still believed at the heal; unique once it revoked 0.2 s later.
    assert heals[2]["status"] == "ok" and heals[2]["seconds"] == pytest.approx(0.2)
    # c1 (epoch 200, paused) and c0#1 (epoch 300) both believed from +25.0 to +27.2.
    assert s["max_dual_belief_s"] == pytest.approx(2.2)
    [overlap] = result.overlaps
    assert (overlap.older.name, overlap.newer.name) == ("c1#0", "c0#1")
    assert overlap.older_paused and overlap.fenced
    assert s["dual_belief"]["unfenced"] == 0


def test_belief_ends_at_the_kill_and_at_a_new_incarnation(tmp_path: Path) -> None:
    b = clean_run()
    result = check(b.write_to(tmp_path))
    first = next(belief for belief in result.beliefs if belief.name == "c0#0")
    assert first.end == pytest.approx(T0 + 10.0) and first.end_reason == "kill"
    # Without the runner's kill record the belief lasts until the slot's next incarnation.
    b.nemesis = [r for r in b.nemesis if r["ev"] != "kill"]
    result = check(b.write_to(tmp_path / "unrecorded"))
    first = next(belief for belief in result.beliefs if belief.name == "c0#0")
    assert first.end == pytest.approx(T0 + 11.0) and first.end_reason == "superseded"


# --- I1 ---------------------------------------------------------------------------------------


def test_i1_stale_write_accepted_is_caught_and_the_overlap_is_not_fenced(tmp_path: Path) -> None:
    b = clean_run()
    # The zombie's write is accepted by the store after epoch 300 had been accepted.
    for record in b.candidates["c1"]:
        if record["ev"] == "write" and record["result"] == "rejected":
            record["result"] = "accepted"
            record["current_epoch"] = 200
            b.audit(27.09, "c1", 200, record["seq"])
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I1"]
    assert "epoch 200" in result.violations[0].message
    assert "epoch 300" in result.violations[0].message
    assert result.summary["stale_writes_accepted"] == 1
    [overlap] = result.overlaps
    assert overlap.older_accepted_writes == 1 and not overlap.fenced
    assert result.summary["dual_belief"]["unfenced"] == 1


def test_i1_write_recorded_accepted_but_missing_from_the_audit(tmp_path: Path) -> None:
    b = clean_run()
    assert b.store is not None
    b.store = [row for row in b.store if row["epoch"] != 300]
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I1"]
    assert "recorded write seq 1 with epoch 300 as accepted" in result.violations[0].message


def test_i1_audit_row_nobody_recorded(tmp_path: Path) -> None:
    b = clean_run()
    b.audit(26.5, "c0", 300, 9)  # c0#1 recorded only seq 1: seq 9 was never attempted
    b.audit(28.5, "c2", 900, 1)  # no c2 ever led
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I1", "I1"]
    first, second = (v.message for v in result.violations)
    assert "write id 5 (c0 seq 9, epoch 300" in first
    assert "no candidate recorded as accepted" in first
    assert "c2 never recorded being elected with 900" in second


def test_i1_audit_row_the_writer_recorded_as_rejected(tmp_path: Path) -> None:
    b = clean_run()
    b.audit(27.09, "c1", 200, 2)  # c1#0 recorded seq 2 as rejected
    messages = [v.message for v in check(b.write_to(tmp_path)).violations]
    assert len(messages) == 2  # the store's lie, and the stale epoch it let in
    assert any("c1#0 recorded as rejected" in m for m in messages)
    assert any("with epoch 200 at +27.090s, after write id" in m for m in messages)


def test_i1_write_in_flight_at_a_kill_is_indeterminate_not_a_violation(tmp_path: Path) -> None:
    b = clean_run()
    b.audit(9.99, "c0", 100, 3)  # committed; c0#0 was SIGKILLed before recording it
    result = check(b.write_to(tmp_path))
    assert result.violations == []
    assert result.summary["indeterminate_writes"] == 1
    # Not so for a process that exited cleanly: it records every outcome.
    b.cand(59.5, "exit", "c0", 1)
    b.audit(59.4, "c0", 300, 2)
    assert invariants(b.write_to(tmp_path / "exited")) == ["I1"]


def test_i1_missing_audit_file(tmp_path: Path) -> None:
    b = clean_run()
    b.store = None
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I1"]
    assert result.summary["store_audit"] == "missing"


# --- I2 ---------------------------------------------------------------------------------------


def test_i2_lower_epoch_elected(tmp_path: Path) -> None:
    b = clean_run()
    b.revoked(40.0, "c0", 1, 300)
    b.elected(41.0, "c1", 1, 250, "n3")
    b.revoked(42.0, "c1", 1, 250)
    b.elected(43.0, "c0", 1, 300, "n2")
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I2"]
    assert "epoch 250" in result.violations[0].message
    assert "higher epoch 300" in result.violations[0].message


def test_i2_same_epoch_after_a_suspended_revoke_is_fine(tmp_path: Path) -> None:
    b = clean_run()
    b.revoked(40.0, "c0", 1, 300, "suspended")
    b.elected(40.5, "c0", 1, 300, "n2")
    assert invariants(b.write_to(tmp_path)) == []


# --- I3 ---------------------------------------------------------------------------------------


def two_candidates() -> RunBuilder:
    b = RunBuilder()
    b.start(0.1, "c0", 0, "0xa0")
    b.start(0.1, "c1", 0, "0xb0")
    b.leader(0.9, "n0", 100, "0xa0")
    b.elected(1.0, "c0", 0, 100, "n0")
    return b


def finish(b: RunBuilder, owners: dict[str, str]) -> None:
    b.final(59.0, owners, sorted(set(owners.values())))


def test_i3_no_leader_within_the_bound(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "kill-leader", 10.0, 10.1, ("c0",))
    b.nem(10.0, "kill", cand="c0", inc=0, pid=1000)
    b.leader(10.3, None, None, nodes=1)
    finish(b, {node("n1"): "0xb0"})
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I3"]
    violation = result.violations[0]
    assert violation.t == pytest.approx(T0 + 10.1 + 4.0 + 6.0)
    assert "fault 1 (kill-leader)" in violation.message
    assert "the observer saw no leader node" in violation.message
    assert result.summary["heal"]["violations"] == 1


def test_i3_two_believers_is_not_a_unique_leader(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "partition-long", 10.0, 16.0, ("c0",))
    b.leader(15.5, "n1", 200, "0xb0")
    b.elected(15.6, "c1", 0, 200, "n1")  # c0 never revokes epoch 100
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I3"]
    assert "2 process(es) believed they led: c0#0 (epoch 100), c1#0 (epoch 200)" in (
        result.violations[0].message
    )


def test_i3_the_believer_must_hold_the_observers_epoch(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "expire-session", 10.0, 10.2, ("c0",))
    b.leader(10.1, "n1", 200, "0xb0")  # ZooKeeper moved on; c0 still believes in 100
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    assert invariants(b.write_to(tmp_path)) == ["I3"]


def test_i3_a_leader_lost_in_quiet_time_and_not_replaced(tmp_path: Path) -> None:
    """A leader that steps down after the heal while its node stays first (seen in a real run)."""
    b = two_candidates()
    b.fault(1, "pause-leader-short", 10.0, 11.0, ("c0",))
    b.nem(10.0, "stop", cand="c0", inc=0)
    b.nem(11.0, "cont", cand="c0", inc=0)
    b.revoked(11.01, "c0", 0, 100, "lease_expired")  # and never leads again
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    result = check(b.write_to(tmp_path))
    assert result.summary["heal"]["per_fault"][0]["status"] == "ok"  # unique at the heal...
    [violation] = result.violations  # ...but not for long
    assert violation.invariant == "I3"
    assert violation.t == pytest.approx(T0 + 11.01 + 10.0)
    assert "no unique leader from +11.010s for more than 10.0s" in violation.message
    assert "no process believed it led" in violation.message


def test_i3_a_quick_leader_change_in_quiet_time_is_fine(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "proxy-flap", 10.0, 11.0, ("c1",))
    b.revoked(20.0, "c0", 0, 100, "resigned")
    b.leader(24.0, "n1", 200, "0xb0")
    b.elected(24.1, "c1", 0, 200, "n1")  # 4.1 s without a leader: within the 10 s bound
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    assert invariants(b.write_to(tmp_path)) == []


def test_i3_a_later_fault_or_the_run_end_interrupts_the_check(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "kill-leader", 10.0, 10.1, ("c0",))
    b.nem(10.0, "kill", cand="c0", inc=0, pid=1000)
    b.fault(2, "proxy-flap", 12.0, 13.0, ("c1",))  # starts before fault 1's deadline
    b.leader(14.0, "n1", 200, "0xb0", nodes=1)
    b.elected(14.1, "c1", 0, 200, "n1")
    b.fault(3, "partition-long", 40.0, None, ("c1",))  # the run ends mid-fault
    finish(b, {node("n1"): "0xb0"})
    result = check(b.write_to(tmp_path))
    assert result.violations == []
    statuses = {item["id"]: item["status"] for item in result.summary["heal"]["per_fault"]}
    assert statuses == {1: "interrupted", 2: "ok"}
    assert result.summary["faults_unhealed"] == 1


def test_i3_overlapping_faults_are_checked_at_the_last_heal(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "pause-zk-follower", 10.0, 20.0)
    b.fault(2, "proxy-blackhole", 12.0, 14.0, ("c1",))  # heals while fault 1 is still active
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    result = check(b.write_to(tmp_path))
    assert result.violations == []
    statuses = {item["id"]: item["status"] for item in result.summary["heal"]["per_fault"]}
    assert statuses == {1: "ok", 2: "overlapped"}


def test_i3_a_run_ending_before_the_deadline_is_not_judged(tmp_path: Path) -> None:
    b = two_candidates()
    b.run["ended_t"] = T0 + 15.0
    b.fault(1, "kill-leader", 10.0, 10.1, ("c0",))
    b.nem(10.0, "kill", cand="c0", inc=0, pid=1000)
    b.final(14.9, {node("n1"): "0xb0"}, ["0xb0"])
    result = check(b.write_to(tmp_path))
    assert result.violations == []
    assert result.summary["heal"]["per_fault"][0]["status"] == "run-ended"


@pytest.mark.parametrize(
    ("elected_at", "epoch", "expected"),
    [
        (15.0, 200, ["I3"]),  # a new epoch while a majority is down
        (10.5, 200, []),  # within the 1 s grace after the quorum went
        (15.0, 100, []),  # the old epoch again (re-election after SUSPENDED) is not new
        (21.0, 200, []),  # after the heal
    ],
)
def test_i3_no_new_epoch_during_quorum_loss(
    tmp_path: Path, elected_at: float, epoch: int, expected: list[str]
) -> None:
    b = two_candidates()
    b.fault(1, "quorum-loss", 10.0, 20.0)
    b.leader(elected_at - 0.1, "n1" if epoch == 200 else "n0", epoch)
    if epoch == 100:
        b.revoked(12.0, "c0", 0, 100, "suspended")
        b.elected(elected_at, "c0", 0, 100, "n0")
    else:
        b.revoked(elected_at - 0.2, "c0", 0, 100, "lost")
        b.elected(elected_at, "c1", 0, 200, "n1")
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    assert invariants(b.write_to(tmp_path)) == expected


def test_i3_quorum_loss_the_run_ended_in_still_forbids_new_epochs(tmp_path: Path) -> None:
    b = two_candidates()
    b.fault(1, "quorum-loss", 50.0, None)
    b.revoked(54.8, "c0", 0, 100, "lost")
    b.leader(54.9, "n1", 200)
    b.elected(55.0, "c1", 0, 200, "n1")
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I3"]
    assert "while quorum was lost" in result.violations[0].message


# --- I6 ---------------------------------------------------------------------------------------

# 2/3 of the 4 s session timeout + a 200 ms tick + the slack; one retry adds 4 s / 3 members.
BOUND = 4.0 * 2 / 3 + 0.2 + SILENT_SLACK_S
BOUND_RETRIED = BOUND + 4.0 / 3


def silent_run(connects: dict[str, int] | None = None, end: float | None = 16.0) -> RunBuilder:
    """c0 (the leader) on member 0 and c1 on member 1; member 0 goes silent from +10 s."""
    b = two_candidates()
    b.connected(0.15, "c0", 0, 0, "0xa0")
    b.connected(0.15, "c1", 0, 1, "0xb0")
    b.nem(
        10.0,
        "fault-start",
        id=1,
        kind="silent-member",
        targets=["zk0"],
        planned_s=6.0,
        detail={"member": 0, "variant": "blackhole", "connected": {"c0": {"inc": 0}}},
    )
    if end is not None:
        b.nem(end, "fault-end", id=1, detail={"silent_connects": connects or {}})
    finish(b, {node("n0"): "0xa0", node("n1"): "0xb0"})
    return b


def i6_checks(b: RunBuilder, run_dir: Path) -> tuple[list[str], list[Any]]:
    result = check(b.write_to(run_dir))
    return [v.message for v in result.violations if v.invariant == "I6"], result.silent


def test_i6_bound_is_two_thirds_of_the_session_timeout_plus_a_tick_and_the_slack() -> None:
    assert silent_member_bound(10.0, 2.0, 3, retried=False) == pytest.approx(
        10.0 * 2 / 3 + 2.0 + SILENT_SLACK_S
    )
    assert silent_member_bound(4.0, 0.2, 3, retried=False) == pytest.approx(BOUND)
    assert silent_member_bound(4.0, 0.2, 3, retried=True) == pytest.approx(BOUND_RETRIED)


def test_i6_back_on_another_member_with_the_same_session_in_time(tmp_path: Path) -> None:
    b = silent_run()
    b.disconnected(12.7, "c0", 0)
    b.connected(12.8, "c0", 0, 2, "0xa0")
    result = check(b.write_to(tmp_path))
    assert result.violations == []
    [silent] = result.silent  # c1 was on member 1: not judged
    assert (silent.name, silent.status, silent.member) == ("c0#0", "ok", 0)
    assert silent.seconds == pytest.approx(2.8) and silent.noticed_s == pytest.approx(2.7)
    s = result.summary["silent_member"]
    assert (s["faults"], s["judged"], s["ok"], s["violations"]) == (1, 1, 1, 0)
    assert s["bound_s"] == pytest.approx(BOUND, abs=1e-3)
    assert s["max_s"] == pytest.approx(2.8)


def test_i6_stuck_on_the_silent_member(tmp_path: Path) -> None:
    """Today's bug at 10 s: the client never notices; after the heal its session is gone."""
    b = silent_run()
    b.disconnected(16.2, "c0", 0)
    b.connected(16.3, "c0", 0, 0, "0xa0")
    messages, [silent] = i6_checks(b, tmp_path)
    assert silent.status == "violation"
    [message] = messages
    assert "fault 1 (silent-member, blackhole) made member 0 silent at +10.000s" in message
    assert "c0#0 was on it with session 0xa0" in message
    assert f"within {BOUND:.2f}s (2/3 x 4s session timeout + 0.2s tick + 0.5s slack)" in message
    assert "noticed the silence after 6.20s" in message
    assert "stuck: it next connected to the silent member 0 itself, 6.30s after" in message


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            [],
            [
                "never noticed the silence (no disconnect recorded)",
                "stuck: it never connected again",
            ],
        ),
        (
            [
                ("disconnected", 12.7, "suspended"),
                ("disconnected", 12.8, "lost"),
                ("connected", 12.9, 1, "0xa1"),
            ],
            [
                "new session: it came back on member 1 with a new session 0xa1 2.90s after",
                "its session 0xa0 was lost",
            ],
        ),
        (
            [("disconnected", 13.5, "suspended"), ("connected", 13.6, 2, "0xa0")],
            [
                "noticed the silence after 3.50s",
                "late: it reconnected to member 2 on the same session only 3.60s after",
            ],
        ),
    ],
    ids=["stuck-for-ever", "new-session", "late"],
)
def test_i6_what_a_stranded_candidate_did_instead(
    tmp_path: Path, events: list[tuple[Any, ...]], expected: list[str]
) -> None:
    b = silent_run()
    for ev, t, *fields in events:
        if ev == "connected":
            b.connected(t, "c0", 0, *fields)
        else:
            b.disconnected(t, "c0", 0, *fields)
    messages, [silent] = i6_checks(b, tmp_path)
    [message] = messages
    assert silent.status == "violation" and silent.seconds is None
    for text in expected:
        assert text in message


def test_i6_one_connect_attempt_on_the_silent_member_extends_the_bound(tmp_path: Path) -> None:
    b = silent_run(connects={"c0": 1, "c1": 0})
    b.disconnected(12.6, "c0", 0)
    b.connected(14.0, "c0", 0, 2, "0xa0")  # 4.0 s: past BOUND, within BOUND_RETRIED
    messages, [silent] = i6_checks(b, tmp_path)
    assert messages == []
    assert silent.retried and silent.bound_s == pytest.approx(BOUND_RETRIED)
    # A later arrival is still late, and the message says the bound included the retry.
    b = silent_run(connects={"c0": 2})
    b.connected(14.8, "c0", 0, 2, "0xa0")
    messages, _ = i6_checks(b, tmp_path / "later")
    [message] = messages
    assert "+ 1.33333s for its retry of the silent member" in message


@pytest.mark.parametrize(("event", "status"), [("kill", "killed"), ("stop", "paused")])
def test_i6_a_process_the_runner_killed_or_paused_is_not_judged(
    tmp_path: Path, event: str, status: str
) -> None:
    b = silent_run()
    b.nem(11.0, event, cand="c0", inc=0, **({"pid": 1000} if event == "kill" else {}))
    if event == "kill":
        b.start(11.5, "c0", 1, "0xa2")
    messages, [silent] = i6_checks(b, tmp_path)
    assert messages == [] and silent.status == status


def test_i6_only_processes_connected_to_the_member_at_the_start_are_judged(
    tmp_path: Path,
) -> None:
    b = silent_run()
    b.disconnected(9.5, "c0", 0)  # reconnecting when the member went silent: not on it
    b.connected(9.0, "c1", 0, 0, "0xb0")  # c1 moved to member 0 before the silence
    b.connected(10.5, "c1", 0, 2, "0xb0")
    result = check(b.write_to(tmp_path))
    assert [(c.name, c.status) for c in result.silent] == [("c1#0", "ok")]


def test_i6_a_member_that_speaks_again_before_the_bound_judges_nobody(tmp_path: Path) -> None:
    b = silent_run(end=11.0)
    messages, [silent] = i6_checks(b, tmp_path)
    assert messages == [] and silent.status == "healed-first"
    # A new session is a violation even then: the member was silent for a second only.
    b = silent_run(end=11.0)
    b.connected(11.5, "c0", 0, 1, "0xa1")
    messages, _ = i6_checks(b, tmp_path / "new")
    assert len(messages) == 1 and "new session" in messages[0]


def test_i6_a_silent_member_fault_must_name_its_member(tmp_path: Path) -> None:
    b = silent_run()
    b.nemesis[0]["detail"] = {"variant": "sigstop"}
    messages, _ = i6_checks(b, tmp_path)
    assert messages == [
        "fault 1 (silent-member) does not say which member went silent (detail 'member' is "
        "None), so it cannot be judged"
    ]


# --- I4 ---------------------------------------------------------------------------------------


def test_i4_orphan_node(tmp_path: Path) -> None:
    b = clean_run()
    b.observer = [r for r in b.observer if r["ev"] != "final"]
    b.final(
        59.0,
        {node("n2"): "0xa1", node("n3"): "0xb1", node("n9"): "0xdead"},
        ["0xa1", "0xb1"],
        live_candidates=2,
    )
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I4", "I4"]
    messages = " | ".join(v.message for v in result.violations)
    assert "orphan node /chaos/election/n9: owned by session 0xdead" in messages
    assert "3 node(s) in the election path for 2 live candidate(s)" in messages


def test_i4_missing_node(tmp_path: Path) -> None:
    b = clean_run()
    b.observer = [r for r in b.observer if r["ev"] != "final"]
    b.final(59.0, {node("n2"): "0xa1"}, ["0xa1", "0xb1"])
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I4"]
    assert "live sessions without a node: ['0xb1']" in result.violations[0].message


def test_i4_no_final_sample(tmp_path: Path) -> None:
    b = clean_run()
    b.observer = [r for r in b.observer if r["ev"] != "final"]
    assert invariants(b.write_to(tmp_path)) == ["I4"]


# --- I5 ---------------------------------------------------------------------------------------


def test_i5_two_foreign_watchers_on_one_node(tmp_path: Path) -> None:
    b = clean_run()
    b.wchp(
        31.0,
        {node("n2"): ["0xa1", "0xb1", "0xc0", "0x0b5"]},
        {node("n2"): "0xa1", node("n3"): "0xb1"},
    )
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I5"]
    assert "watched by 2 other sessions: ['0xb1', '0xc0']" in result.violations[0].message


def test_i5_owner_and_observer_watches_are_allowed(tmp_path: Path) -> None:
    b = clean_run()
    b.wchp(
        31.0,
        {node("n2"): ["0xa1", "0xb1", "0x0b5"], PATH: ["0x0b5"]},
        {node("n2"): "0xa1", node("n3"): "0xb1"},
    )
    assert invariants(b.write_to(tmp_path)) == []


def test_i5_a_session_watching_three_paths(tmp_path: Path) -> None:
    b = clean_run()
    b.wchp(
        31.0,
        {node("n2"): ["0xb1"], node("n3"): ["0xb1"], PATH: ["0xb1"], "/elsewhere": ["0xb1"]},
        {node("n2"): "0xa1", node("n3"): "0xb1"},
    )
    result = check(b.write_to(tmp_path))
    assert [v.invariant for v in result.violations] == ["I5"]
    assert "session 0xb1 watches 3 paths" in result.violations[0].message


# --- the loader -------------------------------------------------------------------------------


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    run_dir = clean_run().write_to(tmp_path)
    with open(run_dir / "candidates" / "c1.jsonl", "a") as file:
        file.write('{"t": 1040.0, "ev": "wri')
    history = load_run(run_dir)
    assert history.truncated == ("candidates/c1.jsonl",)
    result = check(history)
    assert result.violations == []
    assert result.summary["truncated_files"] == ["candidates/c1.jsonl"]


def test_a_torn_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    run_dir = clean_run().write_to(tmp_path)
    path = run_dir / "candidates" / "c1.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = '{"t": 1013.0, "ev": "elec\n'
    path.write_text("".join(lines))
    with pytest.raises(HistoryError, match=r"candidates/c1\.jsonl line 3: not valid JSON"):
        load_run(run_dir)


@pytest.mark.parametrize(
    ("file", "record", "match"),
    [
        ("nemesis.jsonl", {"t": 1.0, "ev": "fault-end", "id": 99}, "never started"),
        ("nemesis.jsonl", {"t": 1.0, "ev": "explode"}, "unknown nemesis event"),
        (
            "observer.jsonl",
            {"t": 1.0, "ev": "leader", "node": None, "epoch": 5, "owner_session": None, "nodes": 1},
            "both 'node' and 'epoch'",
        ),
        (
            "candidates/c0.jsonl",
            {"t": 1.0, "ev": "elected", "cand": "c0", "inc": 0, "epoch": "7", "node": "x"},
            "'epoch' must be an integer",
        ),
        (
            "candidates/c0.jsonl",
            {"t": 1.0, "ev": "start", "cand": "c1", "inc": 0, "pid": 1},
            "in the file of 'c0'",
        ),
        (
            "candidates/c0.jsonl",
            {
                "t": 1.0,
                "ev": "connected",
                "cand": "c0",
                "inc": 0,
                "member": "zk1",
                "session_id": "0xa0",
            },
            "'member' must be an integer",
        ),
        (
            "candidates/c0.jsonl",
            {"t": 1.0, "ev": "disconnected", "cand": "c0", "inc": 0, "state": "gone"},
            "'state' must be suspended or lost",
        ),
    ],
)
def test_malformed_records_are_errors(
    tmp_path: Path, file: str, record: dict[str, Any], match: str
) -> None:
    run_dir = clean_run().write_to(tmp_path)
    path = run_dir / file
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(1, json.dumps(record) + "\n")
    path.write_text("".join(lines))
    with pytest.raises(HistoryError, match=rf"{file} line 2: .*{match}"):
        load_run(run_dir)


def test_missing_run_json_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"run\.json: missing"):
        load_run(tmp_path)


# --- random valid histories never violate anything -------------------------------------------

# Ways a leadership term ends in the generated histories.
ENDINGS = ("kill", "revoke", "pause")


@st.composite
def valid_histories(draw: st.DrawFn) -> RunBuilder:
    """A random sequence of leadership terms, each ended by a fault and healed correctly."""
    slots = ["c0", "c1", "c2"]
    b = RunBuilder(candidates=3)
    inc = dict.fromkeys(slots, 0)
    session = {s: f"0x{s[1]}{0}" for s in slots}
    for slot in slots:
        b.start(0.0, slot, 0, session[slot])
    names = {slot: f"n{slot}_0" for slot in slots}
    t = 1.0
    epoch = 100
    paused_until: dict[str, tuple[int, int, float]] = {}  # a fenced zombie waiting to wake
    for fault_id in range(1, draw(st.integers(1, 6)) + 1):
        leader = draw(st.sampled_from([s for s in slots if s not in paused_until]))
        epoch += draw(st.integers(1, 50))
        b.leader(t, names[leader], epoch, session[leader], nodes=3)
        t += draw(st.floats(0.0, 0.5))
        b.elected(t, leader, inc[leader], epoch, names[leader])
        for zombie, (z_inc, z_epoch, wake) in list(paused_until.items()):
            # The paused ex-leader wakes after the new leader is in place and is fenced.
            wake_at = t + wake
            b.nem(wake_at, "cont", cand=zombie, inc=z_inc)
            b.nem(wake_at, "fault-end", id=fault_id - 1)
            b.write(wake_at + 0.01, zombie, z_inc, z_epoch, result="rejected", current=epoch)
            b.revoked(wake_at + 0.02, zombie, z_inc, z_epoch, "session expired")
            t = wake_at + 0.03
            del paused_until[zombie]
        for _ in range(draw(st.integers(0, 4))):
            t += draw(st.floats(0.05, 1.0))
            b.write(t, leader, inc[leader], epoch)
        t += draw(st.floats(0.1, 2.0))
        ending = draw(st.sampled_from(ENDINGS))
        if ending == "kill":
            b.fault(fault_id, "kill-leader", t, t + 0.05, (leader,))
            b.nem(t, "kill", cand=leader, inc=inc[leader], pid=1000 + inc[leader])
            inc[leader] += 1
            session[leader] = f"0x{leader[1]}{inc[leader]}"
            names[leader] = f"n{leader}_{inc[leader]}"
            b.start(t + 0.1, leader, inc[leader], session[leader])
        elif ending == "revoke":
            b.fault(fault_id, "expire-session", t, t + 0.05, (leader,))
            b.revoked(t + 0.02, leader, inc[leader], epoch, "session expired")
            session[leader] = f"0x{leader[1]}{inc[leader]}e{fault_id}"
            names[leader] = f"n{leader}_{inc[leader]}_{fault_id}"
        else:
            # Paused past its session: it still believes until it wakes (after the next
            # election, in the next round), which is a fenced dual belief.
            b.nem(
                t - 0.01,
                "fault-start",
                id=fault_id,
                kind="pause-leader-long",
                targets=[leader],
                planned_s=6.0,
                detail={},
            )
            b.nem(t, "stop", cand=leader, inc=inc[leader])
            paused_until[leader] = (inc[leader], epoch, draw(st.floats(0.0, 2.0)))
            old_session = session[leader]
            session[leader] = f"{old_session}p{fault_id}"
            names[leader] = f"n{leader}_{inc[leader]}_p{fault_id}"
            b.leader(t + 0.01, None, None, nodes=2)
            t += draw(st.floats(0.1, 3.0))
            # The next term is elected while the zombie sleeps.
            continue
        t += draw(st.floats(0.1, 3.0))
    # The last fault heals too: a final leader is elected (and a zombie, if any, wakes).
    epoch += 1
    leader = next(s for s in slots if s not in paused_until)
    b.leader(t, names[leader], epoch, session[leader], nodes=3)
    b.elected(t + 0.1, leader, inc[leader], epoch, names[leader])
    for zombie, (z_inc, z_epoch, _) in paused_until.items():
        last_fault = max(r["id"] for r in b.nemesis if r["ev"] == "fault-start")
        b.nem(t + 0.5, "cont", cand=zombie, inc=z_inc)
        b.nem(t + 0.5, "fault-end", id=last_fault)
        b.revoked(t + 0.6, zombie, z_inc, z_epoch, "session expired")
    t += 1.0
    owners = {node(names[s]): session[s] for s in slots}
    b.run["ended_t"] = T0 + t + 20.0
    b.final(t + 19.0, owners, sorted(session.values()))
    return b


_runs = itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(builder=valid_histories())
def test_random_valid_histories_never_violate(tmp_path: Path, builder: RunBuilder) -> None:
    run_dir = builder.write_to(tmp_path / f"run{next(_runs)}")
    result = check(run_dir)
    assert result.violations == [], [v.message for v in result.violations]
    assert all(overlap.fenced for overlap in result.overlaps)
    assert result.summary["heal"]["violations"] == 0


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(builder=valid_histories(), data=st.data())
def test_random_histories_with_one_planted_violation_are_caught(
    tmp_path: Path, builder: RunBuilder, data: st.DataObject
) -> None:
    elected = sorted(
        (r for rs in builder.candidates.values() for r in rs if r["ev"] == "elected"),
        key=lambda r: r["epoch"],
    )
    epochs = [r["epoch"] for r in elected]
    end = builder.run["ended_t"] - T0
    planted = data.draw(st.sampled_from(["I1", "I2"]))
    if planted == "I1":
        # The newest leader writes, then the store lets in a write of the oldest epoch.
        newest, oldest = elected[-1], elected[0]
        builder.write(end - 1.5, newest["cand"], newest["inc"], newest["epoch"])
        builder.write(end - 1.0, oldest["cand"], oldest["inc"], oldest["epoch"])
    else:
        builder.elected(end - 1.0, "c0", 99, min(epochs) - 1, "late")
    result = check(builder.write_to(tmp_path / f"planted{next(_runs)}"))
    assert planted in {v.invariant for v in result.violations}
