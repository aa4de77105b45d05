"""The invariants I1-I5 over a recorded chaos history, plus the figures the report shows.

``check(run_dir_or_history)`` returns a ``CheckResult``: every violation found (invariant id,
time, and a message carrying the evidence) and a JSON-ready summary. The invariants are stated
precisely in docs/reliability.md; the comments here say how each edge case is decided.

Belief ("I lead") is derived per candidate *process* (slot + incarnation): it starts at an
``elected`` event and ends at the first of ``revoked``, the runner's ``kill``, a clean ``exit``,
the start of a later incarnation of the same slot (the process must have died unrecorded), or
the end of the run. A SIGSTOPped process keeps believing while it is stopped: that is exactly
the zombie fencing has to stop.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaos.history import (
    FAULT_KINDS,
    AcceptedWrite,
    CandidateEvent,
    Cont,
    Elected,
    Exit,
    FaultEnd,
    FaultStart,
    History,
    Kill,
    LeaderSample,
    Revoked,
    Start,
    Stop,
    WatchSample,
    Write,
    load_run,
)

__all__ = [
    "INVARIANTS",
    "QUORUM_LOSS_GRACE_S",
    "Belief",
    "CheckResult",
    "Fault",
    "HealCheck",
    "Overlap",
    "Violation",
    "belief_intervals",
    "check",
    "fault_spans",
    "stopped_spans",
]

INVARIANTS: tuple[str, ...] = ("I1", "I2", "I3", "I4", "I5")

# A majority going down is not seen by everyone at the same instant: an election whose create
# committed just before the quorum went away may still be reported within this grace.
QUORUM_LOSS_GRACE_S = 1.0

# A candidate watches its predecessor, and the leader also watches its own node (so a forced
# resign by an operator is seen at once): two paths at most.
MAX_WATCHED_PATHS_PER_SESSION = 2

Process = tuple[str, int]  # (candidate slot, incarnation)


def process_name(process: Process) -> str:
    return f"{process[0]}#{process[1]}"


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str  # "I1".."I5"
    t: float  # monotonic time of the evidence
    message: str

    def to_json(self, started_t: float) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "t": self.t,
            "at_s": round(self.t - started_t, 3),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Belief:
    """One interval during which one process believed it led, with one epoch."""

    cand: str
    inc: int
    epoch: int
    node: str
    start: float
    end: float
    end_reason: str  # "revoked: <reason>", "kill", "exit", "superseded", "re-elected", "run-end"

    @property
    def process(self) -> Process:
        return (self.cand, self.inc)

    @property
    def name(self) -> str:
        return process_name(self.process)

    def holds_at(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Fault:
    id: int
    kind: str
    targets: tuple[str, ...]
    start: float
    end: float | None  # None: the run ended while the fault was active
    planned_s: float
    detail: Mapping[str, Any] = field(compare=False)

    def active_at(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


HealStatus = Literal["ok", "violation", "overlapped", "interrupted", "run-ended"]


@dataclass(frozen=True, slots=True)
class HealCheck:
    """I3 for one fault: how long after it healed a unique leader was in place."""

    fault: Fault
    status: HealStatus
    seconds: float | None  # time from fault-end to a unique leader (status "ok")
    deadline: float | None


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two processes both believing they led, and whether the older one was fenced."""

    older: Belief
    newer: Belief
    start: float
    end: float
    older_accepted_writes: int  # writes of the older epoch the store accepted inside the overlap
    older_paused: bool  # the older process was SIGSTOPped during the overlap

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def fenced(self) -> bool:
        return self.older_accepted_writes == 0


@dataclass(frozen=True)
class CheckResult:
    history: History
    violations: list[Violation]
    summary: dict[str, Any]
    beliefs: list[Belief]
    faults: list[Fault]
    heals: list[HealCheck]
    overlaps: list[Overlap]

    @property
    def ok(self) -> bool:
        return not self.violations


# --- derived timelines ------------------------------------------------------------------------


def fault_spans(history: History) -> list[Fault]:
    """Faults in start order, each paired with its heal time (None if never healed)."""
    ends = {event.id: event.t for event in history.nemesis_events if isinstance(event, FaultEnd)}
    return [
        Fault(
            id=event.id,
            kind=event.kind,
            targets=event.targets,
            start=event.t,
            end=ends.get(event.id),
            planned_s=event.planned_s,
            detail=event.detail,
        )
        for event in history.nemesis_events
        if isinstance(event, FaultStart)
    ]


def belief_intervals(history: History) -> list[Belief]:
    """Every belief interval of every process, in start order (see the module docstring)."""
    # Candidate events before the runner's kill at the same instant: a process elected and
    # killed "at once" believed for zero seconds, not until the end of the run.
    stream: list[tuple[float, int, CandidateEvent | Kill]] = [
        (event.t, 0, event) for event in history.candidate_events
    ]
    stream += [
        (event.t, 1, event) for event in history.nemesis_events if isinstance(event, Kill)
    ]
    stream.sort(key=lambda item: (item[0], item[1]))

    beliefs: list[Belief] = []
    believing: dict[Process, Elected] = {}
    dead: set[Process] = set()
    latest_inc: dict[str, int] = {}

    def close(process: Process, t: float, reason: str) -> None:
        elected = believing.pop(process, None)
        if elected is not None:
            beliefs.append(
                Belief(elected.cand, elected.inc, elected.epoch, elected.node, elected.t,
                       max(t, elected.t), reason)
            )

    for t, _, event in stream:
        if isinstance(event, Kill):
            close((event.cand, event.inc), t, "kill")
            dead.add((event.cand, event.inc))
            continue
        process: Process = (event.cand, event.inc)
        if isinstance(event, Start):
            # A new incarnation means every older one of this slot is gone, recorded or not.
            for other in [p for p in believing if p[0] == event.cand and p[1] < event.inc]:
                close(other, t, "superseded")
            for inc in range(latest_inc.get(event.cand, event.inc), event.inc):
                dead.add((event.cand, inc))
            latest_inc[event.cand] = max(latest_inc.get(event.cand, event.inc), event.inc)
        elif process in dead:
            continue  # a line the process wrote after the runner logged its kill
        elif isinstance(event, Elected):
            close(process, t, "re-elected")
            believing[process] = event
        elif isinstance(event, Revoked):
            close(process, t, f"revoked: {event.reason}")
        elif isinstance(event, Exit):
            close(process, t, "exit")
            dead.add(process)
    end_t = history.end_t
    for process in list(believing):
        close(process, end_t, "run-end")
    beliefs.sort(key=lambda belief: (belief.start, belief.cand, belief.inc))
    return beliefs


def stopped_spans(history: History) -> dict[Process, list[tuple[float, float]]]:
    """SIGSTOP..SIGCONT spans per process (a kill or the run's end closes an open one)."""
    spans: dict[Process, list[tuple[float, float]]] = defaultdict(list)
    stopped: dict[Process, float] = {}
    for event in history.nemesis_events:
        if isinstance(event, Stop):
            stopped.setdefault((event.cand, event.inc), event.t)
        elif isinstance(event, (Cont, Kill)):
            began = stopped.pop((event.cand, event.inc), None)
            if began is not None:
                spans[(event.cand, event.inc)].append((began, event.t))
    for process, began in stopped.items():
        spans[process].append((began, history.end_t))
    return dict(spans)


def _rel(history: History, t: float) -> str:
    return f"+{t - history.run.started_t:.3f}s"


# --- I1: fencing ------------------------------------------------------------------------------


def _check_i1(history: History, violations: list[Violation]) -> dict[str, int]:
    writes = [event for event in history.candidate_events if isinstance(event, Write)]
    audit = history.store_accepted
    figures = {"stale_writes_accepted": 0, "indeterminate_writes": 0}
    if audit is None:
        accepted = [w for w in writes if w.result == "accepted"]
        if accepted:
            violations.append(Violation(
                "I1", accepted[0].t,
                f"store_accepted.jsonl is missing, so the {len(accepted)} writes candidates "
                "recorded as accepted cannot be compared with the store's own audit",
            ))
        return figures

    # Epochs never decrease in commit order.
    highest: AcceptedWrite | None = None
    for row in audit:
        if highest is not None and row.epoch < highest.epoch:
            figures["stale_writes_accepted"] += 1
            violations.append(Violation(
                "I1", row.t,
                f"store accepted write id {row.id} ({row.cand} seq {row.seq}) with epoch "
                f"{row.epoch} at {_rel(history, row.t)}, after write id {highest.id} "
                f"({highest.cand} seq {highest.seq}) had been accepted with epoch {highest.epoch}",
            ))
        if highest is None or row.epoch > highest.epoch:
            highest = row

    # What candidates recorded as accepted is exactly what the store holds.
    Key = tuple[str, int, int]
    recorded: dict[Key, list[Write]] = defaultdict(list)
    for write in writes:
        recorded[(write.cand, write.epoch, write.seq)].append(write)
    in_audit: dict[Key, list[AcceptedWrite]] = defaultdict(list)
    for row in audit:
        in_audit[(row.cand, row.epoch, row.seq)].append(row)

    for key, records in recorded.items():
        accepted = [w for w in records if w.result == "accepted"]
        rows = in_audit.get(key, [])
        if len(accepted) > len(rows):
            write = accepted[0]
            violations.append(Violation(
                "I1", write.t,
                f"{process_name((write.cand, write.inc))} recorded write seq {write.seq} with "
                f"epoch {write.epoch} as accepted at {_rel(history, write.t)}, but the store's "
                f"audit holds it {len(rows)} time(s) for {len(accepted)} acceptance(s)",
            ))

    # Rows nobody recorded as accepted: fine only where the outcome was unknown to the writer.
    cleanly_exited = {
        (event.cand, event.inc) for event in history.candidate_events if isinstance(event, Exit)
    }
    epoch_owners: dict[tuple[str, int], set[int]] = defaultdict(set)
    for event in history.candidate_events:
        if isinstance(event, Elected):
            epoch_owners[(event.cand, event.epoch)].add(event.inc)
    # A writer numbers its attempts 1, 2, 3... and records each outcome before the next one.
    last_recorded_seq: dict[Process, int] = defaultdict(int)
    for write in writes:
        process = (write.cand, write.inc)
        last_recorded_seq[process] = max(last_recorded_seq[process], write.seq)

    for key, rows in in_audit.items():
        records = recorded.get(key, [])
        accepted_count = sum(1 for w in records if w.result == "accepted")
        extra = len(rows) - accepted_count
        if extra <= 0:
            continue
        row = rows[0]
        cand, epoch, seq = key
        errored = sum(1 for w in records if w.result == "error")
        rejected = [w for w in records if w.result == "rejected"]
        owners = epoch_owners.get((cand, epoch), set())
        if rejected:
            violations.append(Violation(
                "I1", row.t,
                f"store audit holds write id {row.id} ({cand} seq {seq}, epoch {epoch}) that "
                f"{process_name((cand, rejected[0].inc))} recorded as rejected",
            ))
        elif errored >= extra:
            # The writer saw an error (e.g. the connection dropped after the commit).
            figures["indeterminate_writes"] += extra
        elif not records and extra == 1 and any(
            (cand, inc) not in cleanly_exited and seq == last_recorded_seq[(cand, inc)] + 1
            for inc in owners
        ):
            # The process's very next write, in flight when it was killed: committed, but
            # its outcome was never recorded.
            figures["indeterminate_writes"] += extra
        else:
            violations.append(Violation(
                "I1", row.t,
                f"store audit holds write id {row.id} ({cand} seq {seq}, epoch {epoch}, "
                f"{_rel(history, row.t)}) that no candidate recorded as accepted"
                + ("" if owners else f", and {cand} never recorded being elected with {epoch}"),
            ))
    return figures


# --- I2: epochs of elections never go back ----------------------------------------------------


def _check_i2(history: History, violations: list[Violation]) -> None:
    highest: Elected | None = None
    for event in history.candidate_events:
        if not isinstance(event, Elected):
            continue
        if highest is not None and event.epoch < highest.epoch:
            violations.append(Violation(
                "I2", event.t,
                f"{process_name((event.cand, event.inc))} was elected with epoch {event.epoch} "
                f"at {_rel(history, event.t)}, after "
                f"{process_name((highest.cand, highest.inc))} had been elected with the higher "
                f"epoch {highest.epoch} at {_rel(history, highest.t)}",
            ))
        # The same epoch again (re-election after a SUSPENDED revoke) is fine.
        if highest is None or event.epoch > highest.epoch:
            highest = event


# --- I3: a unique leader after every heal; none new without quorum ----------------------------


class _LeaderView:
    """The observer's leader (epoch) as of any time: its latest sample at or before t."""

    def __init__(self, history: History) -> None:
        self.samples = [e for e in history.observer_events if isinstance(e, LeaderSample)]
        self.times = [sample.t for sample in self.samples]

    def at(self, t: float) -> LeaderSample | None:
        index = bisect.bisect_right(self.times, t) - 1
        return self.samples[index] if index >= 0 else None

    def times_in(self, low: float, high: float) -> list[float]:
        low_index = bisect.bisect_right(self.times, low)
        return self.times[low_index : bisect.bisect_right(self.times, high)]


def _unique_leader_at(
    t: float, view: _LeaderView, beliefs: Sequence[Belief]
) -> tuple[bool, str]:
    """Whether the observer sees a leader and exactly one process believes with its epoch."""
    sample = view.at(t)
    believers = [belief for belief in beliefs if belief.holds_at(t)]
    ok = (
        sample is not None
        and sample.epoch is not None
        and len(believers) == 1
        and believers[0].epoch == sample.epoch
    )
    if sample is None or sample.epoch is None:
        seen = "the observer saw no leader node"
    else:
        seen = f"the observer saw leader node {sample.node} with epoch {sample.epoch}"
    if believers:
        who = ", ".join(f"{b.name} (epoch {b.epoch})" for b in believers)
        held = f"{len(believers)} process(es) believed they led: {who}"
    else:
        held = "no process believed it led"
    return ok, f"{seen}; {held}"


def _check_i3(
    history: History,
    faults: Sequence[Fault],
    beliefs: Sequence[Belief],
    violations: list[Violation],
) -> list[HealCheck]:
    run = history.run
    bound = run.session_timeout_s + run.heal_bound_s
    end_t = history.end_t
    view = _LeaderView(history)
    heals: list[HealCheck] = []
    starts = sorted(fault.start for fault in faults)

    # Judged until the final sample (taken before the runner stops the candidates).
    final = history.final
    judge_end = final.t if final is not None else end_t

    for fault in faults:
        if fault.end is None:
            continue  # the run ended mid-fault: nothing healed, nothing to check
        healed = fault.end
        if any(other.id != fault.id and other.active_at(healed) for other in faults):
            # Another fault is still active: that fault's own heal is the one checked.
            heals.append(HealCheck(fault, "overlapped", None, None))
            continue
        deadline = healed + bound
        next_index = bisect.bisect_right(starts, healed)
        next_start = starts[next_index] if next_index < len(starts) else float("inf")
        # The quiet time after this heal: until the next fault starts, or the run ends.
        quiet_end = max(healed, min(next_start, judge_end))
        window = [b for b in beliefs if b.start <= quiet_end and b.end > healed]
        moments = sorted(
            {healed}
            | {b.start for b in window if healed < b.start <= quiet_end}
            | {b.end for b in window if healed < b.end <= quiet_end}
            | set(view.times_in(healed, quiet_end))
        )
        # Stretches of quiet time without a unique leader, as [from, to) (to None: still
        # without one when the quiet time ends). The state only changes at these moments.
        stretches: list[tuple[float, float | None]] = []
        first_ok: float | None = None
        failing_since: float | None = None
        for moment in moments:
            if _unique_leader_at(moment, view, window)[0]:
                first_ok = moment if first_ok is None else first_ok
                if failing_since is not None:
                    stretches.append((failing_since, moment))
                    failing_since = None
            elif failing_since is None:
                failing_since = moment
        if failing_since is not None:
            stretches.append((failing_since, None))

        if first_ok is not None and first_ok <= deadline:
            heals.append(HealCheck(fault, "ok", first_ok - healed, deadline))
        elif deadline <= quiet_end:
            heals.append(HealCheck(fault, "violation", None, deadline))
            epochs_seen = sorted(
                {s.epoch for s in view.samples if healed <= s.t <= deadline and s.epoch is not None}
            )
            _, state = _unique_leader_at(deadline, view, window)
            violations.append(Violation(
                "I3", deadline,
                f"fault {fault.id} ({fault.kind}) healed at {_rel(history, healed)}, but within "
                f"{bound:.1f}s (session timeout {run.session_timeout_s:g}s + heal bound "
                f"{run.heal_bound_s:g}s) there was never a unique leader; at the deadline "
                f"{state}; leader epochs the observer saw meanwhile: {epochs_seen or 'none'}",
            ))
        elif next_start <= judge_end:
            heals.append(HealCheck(fault, "interrupted", None, deadline))
        else:
            heals.append(HealCheck(fault, "run-ended", None, deadline))

        # Once in place, the unique leader may change, but never be missing for longer than
        # the bound while no fault is active (a leader that steps down and nobody follows).
        for lost_at, back_at in stretches:
            if first_ok is None or lost_at < first_ok:
                continue  # the stretch right after the heal, judged above
            lapse_deadline = lost_at + bound
            if (back_at is not None and back_at > lapse_deadline) or (
                back_at is None and lapse_deadline <= quiet_end
            ):
                _, state = _unique_leader_at(lapse_deadline, view, window)
                violations.append(Violation(
                    "I3", lapse_deadline,
                    f"after fault {fault.id} ({fault.kind}) healed at {_rel(history, healed)} "
                    f"and a unique leader was in place at {_rel(history, first_ok)}, there was "
                    f"no unique leader from {_rel(history, lost_at)} for more than {bound:.1f}s "
                    f"with no fault active; {bound:.1f}s later {state}",
                ))

    # No new epoch while a majority is down.
    elected = [e for e in history.candidate_events if isinstance(e, Elected)]
    for fault in faults:
        if fault.kind != "quorum-loss":
            continue
        quiet_from = fault.start + QUORUM_LOSS_GRACE_S
        quiet_until = fault.end if fault.end is not None else end_t
        # Epochs seen before the quorum went (grace included): elected, or the observer's.
        known = [e.epoch for e in elected if e.t < quiet_from]
        known += [s.epoch for s in view.samples if s.t < quiet_from and s.epoch is not None]
        baseline = max(known, default=None)
        reported: set[int] = set()
        for event in elected:
            # A fault the run ended in covers the run's last instant too.
            inside = event.t < quiet_until or (fault.end is None and event.t == quiet_until)
            if event.t < quiet_from or not inside:
                continue
            if (baseline is None or event.epoch > baseline) and event.epoch not in reported:
                reported.add(event.epoch)
                violations.append(Violation(
                    "I3", event.t,
                    f"{process_name((event.cand, event.inc))} was elected with the new epoch "
                    f"{event.epoch} at {_rel(history, event.t)} while quorum was lost (fault "
                    f"{fault.id} from {_rel(history, fault.start)}, "
                    + (f"healed at {_rel(history, fault.end)}" if fault.end is not None
                       else "never healed")
                    + f"); the highest epoch before it was {baseline}",
                ))
    return heals


# --- I4: nothing left behind ------------------------------------------------------------------


def _check_i4(history: History, violations: list[Violation]) -> None:
    final = history.final
    if final is None:
        violations.append(Violation(
            "I4", history.end_t,
            "no final observer sample was recorded, so orphan nodes cannot be ruled out "
            "(the run did not finish: rerun it with the same seed)",
        ))
        return
    live = set(final.live_sessions)
    owned: Counter[str] = Counter()
    for node in final.nodes:
        owner = final.ephemeral_owners.get(node)
        if owner is None:
            violations.append(Violation(
                "I4", final.t, f"node {node} is in the election path but its owner was not recorded"
            ))
            continue
        owned[owner] += 1
        if owner not in live:
            violations.append(Violation(
                "I4", final.t,
                f"orphan node {node}: owned by session {owner}, which is not the session of a "
                f"live candidate (live sessions: {sorted(live)})",
            ))
    for session, count in sorted(owned.items()):
        if count > 1 and session in live:
            violations.append(Violation(
                "I4", final.t, f"live session {session} owns {count} nodes; each owns exactly one"
            ))
    if len(final.nodes) != final.live_candidates:
        without = sorted(live - set(owned))
        violations.append(Violation(
            "I4", final.t,
            f"{len(final.nodes)} node(s) in the election path for {final.live_candidates} live "
            f"candidate(s); live sessions without a node: {without or 'none'}",
        ))


# --- I5: no herd ------------------------------------------------------------------------------


def _under(path: str, parent: str) -> bool:
    parent = parent.rstrip("/")
    return path == parent or path.startswith(parent + "/")


def _check_i5(history: History, violations: list[Violation]) -> int:
    observer = history.observer_sessions
    election_path = history.run.election_path
    samples = 0
    for sample in history.observer_events:
        if not isinstance(sample, WatchSample):
            continue
        samples += 1
        where = f"wchp of {sample.member} at {_rel(history, sample.t)}"
        for path, sessions in sorted(sample.watches.items()):
            owner = sample.owners.get(path)
            if owner is None:
                continue  # not a candidate node (the election path itself, or already gone)
            others = sorted(set(sessions) - {owner} - observer)
            if len(others) > 1:
                violations.append(Violation(
                    "I5", sample.t,
                    f"{where}: node {path} (owner {owner}) is watched by {len(others)} other "
                    f"sessions: {others}",
                ))
        watched: dict[str, list[str]] = defaultdict(list)
        for path, sessions in sample.watches.items():
            if _under(path, election_path):
                for session in set(sessions) - observer:
                    watched[session].append(path)
        for session, paths in sorted(watched.items()):
            if len(paths) > MAX_WATCHED_PATHS_PER_SESSION:
                violations.append(Violation(
                    "I5", sample.t,
                    f"{where}: session {session} watches {len(paths)} paths in the election "
                    f"path (at most {MAX_WATCHED_PATHS_PER_SESSION}): {sorted(paths)}",
                ))
    return samples


# --- dual belief ------------------------------------------------------------------------------


def _overlaps(
    history: History,
    beliefs: Sequence[Belief],
    stopped: Mapping[Process, list[tuple[float, float]]],
) -> list[Overlap]:
    if history.store_accepted is not None:
        accepted_at = [(row.cand, row.epoch, row.t) for row in history.store_accepted]
    else:
        accepted_at = [
            (w.cand, w.epoch, w.t)
            for w in history.candidate_events
            if isinstance(w, Write) and w.result == "accepted"
        ]
    times_by_epoch: dict[tuple[str, int], list[float]] = defaultdict(list)
    for cand, epoch, t in accepted_at:
        times_by_epoch[(cand, epoch)].append(t)
    for times in times_by_epoch.values():
        times.sort()

    overlaps: list[Overlap] = []
    active: list[Belief] = []
    for belief in beliefs:  # in start order
        active = [other for other in active if other.end > belief.start]
        for other in active:
            if other.process == belief.process:
                continue
            start, end = belief.start, min(belief.end, other.end)
            if end <= start:
                continue
            older, newer = (other, belief) if other.epoch <= belief.epoch else (belief, other)
            times = times_by_epoch.get((older.cand, older.epoch), [])
            inside = bisect.bisect_right(times, end) - bisect.bisect_left(times, start)
            paused = any(
                s < end and e > start for s, e in stopped.get(older.process, [])
            )
            overlaps.append(Overlap(older, newer, start, end, inside, paused))
        active.append(belief)
    return overlaps


# --- the whole check --------------------------------------------------------------------------


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _summary(
    history: History,
    violations: Sequence[Violation],
    beliefs: Sequence[Belief],
    faults: Sequence[Fault],
    heals: Sequence[HealCheck],
    overlaps: Sequence[Overlap],
    i1_figures: Mapping[str, int],
    watch_samples: int,
) -> dict[str, Any]:
    started = history.run.started_t
    kinds = Counter(fault.kind for fault in faults)
    known = [kind for kind in FAULT_KINDS if kind in kinds]
    fault_counts = {kind: kinds[kind] for kind in known + sorted(set(kinds) - set(known))}
    elected = [e for e in history.candidate_events if isinstance(e, Elected)]
    leaders: dict[str, set[int]] = defaultdict(set)
    for event in elected:
        leaders[event.cand].add(event.epoch)
    writes = Counter(e.result for e in history.candidate_events if isinstance(e, Write))
    heal_times = [heal.seconds for heal in heals if heal.seconds is not None]
    heal_status = Counter(heal.status for heal in heals)
    per_invariant = Counter(v.invariant for v in violations)
    return {
        "seed": history.run.seed,
        "ran_s": round(history.end_t - started, 3),
        "run_complete": history.run.ended_t is not None,
        "faults": fault_counts,
        "faults_total": len(faults),
        "faults_unhealed": sum(1 for fault in faults if fault.end is None),
        "elections": len({event.epoch for event in elected}),
        "elected_events": len(elected),
        "leaders": {cand: len(epochs) for cand, epochs in sorted(leaders.items())},
        "writes": {
            "accepted": writes["accepted"],
            "rejected": writes["rejected"],
            "error": writes["error"],
        },
        # The fenced store rejects exactly the writes whose epoch is below its high-water mark.
        "stale_writes_rejected": writes["rejected"],
        "stale_writes_accepted": i1_figures.get("stale_writes_accepted", 0),
        "indeterminate_writes": i1_figures.get("indeterminate_writes", 0),
        "store_audit": "missing" if history.store_accepted is None else "present",
        "heal": {
            "bound_s": history.run.session_timeout_s + history.run.heal_bound_s,
            "ok": heal_status["ok"],
            "violations": heal_status["violation"],
            "overlapped": heal_status["overlapped"],
            "interrupted": heal_status["interrupted"],
            "run_ended": heal_status["run-ended"],
            "max_s": _r(max(heal_times, default=None)),
            "p50_s": _r(statistics.median(heal_times) if heal_times else None),
            "p90_s": _r(_quantile(heal_times, 0.9)),
            "per_fault": [
                {
                    "id": heal.fault.id,
                    "kind": heal.fault.kind,
                    "healed_at_s": _r((heal.fault.end or 0.0) - started),
                    "status": heal.status,
                    "seconds": _r(heal.seconds),
                }
                for heal in heals
            ],
        },
        "max_dual_belief_s": _r(max((o.seconds for o in overlaps), default=0.0)),
        "dual_belief": {
            "overlaps": len(overlaps),
            "unfenced": sum(1 for o in overlaps if not o.fenced),
            "without_pause": sum(1 for o in overlaps if not o.older_paused),
            "list": [
                {
                    "older": o.older.name,
                    "older_epoch": o.older.epoch,
                    "newer": o.newer.name,
                    "newer_epoch": o.newer.epoch,
                    "from_s": _r(o.start - started),
                    "seconds": _r(o.seconds),
                    "older_paused": o.older_paused,
                    "older_accepted_writes": o.older_accepted_writes,
                    "fenced": o.fenced,
                }
                for o in overlaps
            ],
        },
        "belief_intervals": len(beliefs),
        "watch_samples": watch_samples,
        "violations": {inv: per_invariant.get(inv, 0) for inv in INVARIANTS},
        "violations_total": len(violations),
        "truncated_files": list(history.truncated),
    }


def check(run: str | Path | History) -> CheckResult:
    """Check I1-I5 over a run directory (or an already loaded History)."""
    history = run if isinstance(run, History) else load_run(run)
    faults = fault_spans(history)
    beliefs = belief_intervals(history)
    stopped = stopped_spans(history)
    violations: list[Violation] = []
    i1_figures = _check_i1(history, violations)
    _check_i2(history, violations)
    heals = _check_i3(history, faults, beliefs, violations)
    _check_i4(history, violations)
    watch_samples = _check_i5(history, violations)
    overlaps = _overlaps(history, beliefs, stopped)
    violations.sort(key=lambda v: (v.t, v.invariant))
    summary = _summary(
        history, violations, beliefs, faults, heals, overlaps, i1_figures, watch_samples
    )
    return CheckResult(history, violations, summary, beliefs, faults, heals, overlaps)

