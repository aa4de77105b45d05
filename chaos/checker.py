"""The invariants I1-I6 over a recorded chaos history, plus the figures the report shows.

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
    Connected,
    Cont,
    Disconnected,
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
    "SILENT_SLACK_S",
    "Belief",
    "CheckResult",
    "Fault",
    "HealCheck",
    "Overlap",
    "SilentCheck",
    "Violation",
    "belief_intervals",
    "check",
    "fault_spans",
    "silent_member_bound",
    "stopped_spans",
]

INVARIANTS: tuple[str, ...] = ("I1", "I2", "I3", "I4", "I5", "I6")

# A majority going down is not seen by everyone at the same instant: an election whose create
# committed just before the quorum went away may still be reported within this grace.
QUORUM_LOSS_GRACE_S = 1.0

# I6: kazoo drops a connection that stays silent for its read timeout, 2/3 of the session
# timeout (a ping after 1/3 idle, then 1/3 for its answer). On top of that and of one tick
# (the issue's allowance for the servers' side of the reconnect: a follower revalidates the
# session through the leader, whose timers run in ticks), this slack covers what is not the
# client's design: scheduling on a loaded 2-core machine (5 candidates, 3 JVMs, the runner),
# the history line's own write, and kazoo's retry sleep (0.1 s x up to 1.4) when the silent
# member was the last of its round of hosts.
SILENT_SLACK_S = 0.5
_SILENT_READ_TIMEOUT_RATIO = 2.0 / 3.0


def silent_member_bound(
    session_timeout: float, tick_s: float, members: int, *, retried: bool
) -> float:
    """Seconds from a member going silent until a client on it must be on another member.

    ``retried``: the client opened a new connection to the silent member meanwhile. kazoo
    shuffles its hosts anew for each round, so when the silent member was the last host of a
    round it may be the first of the next: one connection attempt that waits kazoo's connect
    timeout (session timeout / members) for a ConnectResponse that cannot come.
    """
    bound = _SILENT_READ_TIMEOUT_RATIO * session_timeout + tick_s + SILENT_SLACK_S
    return bound + (session_timeout / members if retried else 0.0)


# A candidate watches its predecessor (and, until it appears, the predecessor's leader marker);
# the leader watches its own node (so a forced resign by an operator is seen at once); the
# leader and the next in line also watch a switchover request's path (R14): two paths at most.
MAX_WATCHED_PATHS_PER_SESSION = 2

Process = tuple[str, int]  # (candidate slot, incarnation)


def process_name(process: Process) -> str:
    return f"{process[0]}#{process[1]}"


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str  # "I1".."I6"
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
    end_detail: Mapping[str, Any] = field(default_factory=dict, compare=False)

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


SilentStatus = Literal["ok", "violation", "killed", "paused", "ended", "healed-first"]


@dataclass(frozen=True, slots=True)
class SilentCheck:
    """I6 for one process that was on a member when it went silent."""

    fault: Fault
    cand: str
    inc: int
    member: int
    session_id: str
    status: SilentStatus
    bound_s: float
    seconds: float | None  # fault start -> connected on another member, same session
    noticed_s: float | None  # fault start -> its first disconnect (None: never, in the window)
    retried: bool  # it opened a connection to the silent member meanwhile
    outcome: str  # what happened, in words

    @property
    def name(self) -> str:
        return process_name((self.cand, self.inc))


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
    silent: list[SilentCheck]

    @property
    def ok(self) -> bool:
        return not self.violations


# --- derived timelines ------------------------------------------------------------------------


def fault_spans(history: History) -> list[Fault]:
    """Faults in start order, each paired with its heal time (None if never healed)."""
    ends = {event.id: event for event in history.nemesis_events if isinstance(event, FaultEnd)}
    return [
        Fault(
            id=event.id,
            kind=event.kind,
            targets=event.targets,
            start=event.t,
            end=ends[event.id].t if event.id in ends else None,
            planned_s=event.planned_s,
            detail=event.detail,
            end_detail=ends[event.id].detail if event.id in ends else {},
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


# --- I6: a silent member strands nobody --------------------------------------------------------


class _Connections:
    """Per process: its connection events, and when it was killed, stopped or gone."""

    def __init__(self, history: History) -> None:
        self.events: dict[Process, list[Connected | Disconnected]] = defaultdict(list)
        self.gone: dict[Process, float] = {}  # exit, kill, or a later incarnation's start
        self.interrupted: dict[Process, list[tuple[float, SilentStatus]]] = defaultdict(list)
        incarnations: dict[str, list[Process]] = defaultdict(list)

        def gone(process: Process, t: float) -> None:
            self.gone[process] = min(t, self.gone.get(process, t))

        for event in history.candidate_events:
            process = (event.cand, event.inc)
            if isinstance(event, (Connected, Disconnected)):
                self.events[process].append(event)
            elif isinstance(event, Exit):
                gone(process, event.t)
            elif isinstance(event, Start):
                for earlier in incarnations[event.cand]:
                    if earlier[1] < event.inc:
                        gone(earlier, event.t)
                incarnations[event.cand].append(process)
        for nemesis in history.nemesis_events:
            if isinstance(nemesis, Kill):
                gone((nemesis.cand, nemesis.inc), nemesis.t)
                self.interrupted[(nemesis.cand, nemesis.inc)].append((nemesis.t, "killed"))
            elif isinstance(nemesis, Stop):
                self.interrupted[(nemesis.cand, nemesis.inc)].append((nemesis.t, "paused"))

    def on_member(self, member: int, t: float) -> list[tuple[Process, Connected]]:
        """The live processes whose latest connection event before t connected them to member."""
        found = []
        for process, events in sorted(self.events.items()):
            if self.gone.get(process, float("inf")) <= t:
                continue
            before = [event for event in events if event.t < t]
            if before and isinstance(before[-1], Connected) and before[-1].member == member:
                found.append((process, before[-1]))
        return found


def _silent_outcome(
    history: History, start: float, member: int, on: Connected, after: Sequence[Connected]
) -> str:
    """What a process did instead of coming back in time, in words."""
    if not after:
        return "stuck: it never connected again (until it ended or the run did)"
    first = after[0]
    late = f"{first.t - start:.2f}s after the silence began (at {_rel(history, first.t)})"
    if first.session_id != on.session_id:
        return (
            f"new session: it came back on member {first.member} with a new session "
            f"{first.session_id} {late} (its session {on.session_id} was lost, and its node)"
        )
    if first.member == member:
        return f"stuck: it next connected to the silent member {member} itself, {late}"
    return f"late: it reconnected to member {first.member} on the same session only {late}"


def _judge_silent(
    history: History, fault: Fault, member: int, process: Process, on: Connected,
    connections: _Connections,
) -> SilentCheck:
    run = history.run
    tick_s = (run.tick_ms or 0) / 1000.0
    connects = fault.end_detail.get("silent_connects", {})
    retried = isinstance(connects, Mapping) and bool(connects.get(process[0]))
    bound = silent_member_bound(run.session_timeout_s, tick_s, run.members, retried=retried)
    deadline = fault.start + bound
    later = [e for e in connections.events[process] if e.t >= fault.start]
    noticed = next((e.t - fault.start for e in later if isinstance(e, Disconnected)), None)
    after = [e for e in later if isinstance(e, Connected)]

    def result(status: SilentStatus, seconds: float | None, outcome: str) -> SilentCheck:
        return SilentCheck(fault, process[0], process[1], member, on.session_id, status, bound,
                           seconds, noticed, retried, outcome)

    back = next((e for e in after if e.t <= deadline and e.member != member
                 and e.session_id == on.session_id), None)
    if back is not None:
        return result("ok", back.t - fault.start,
                      f"back on member {back.member} after {back.t - fault.start:.2f}s")
    for t, why in connections.interrupted[process]:
        if fault.start <= t <= deadline:
            return result(why, None, f"{why} by the runner at {_rel(history, t)}")
    if min(connections.gone.get(process, history.end_t), history.end_t) <= deadline:
        return result("ended", None, "the process or the run ended before the bound")
    # The member spoke again before the deadline: a process that had not moved by then is not
    # judged (staying on a healthy member is fine), unless it lost its session in time anyway.
    first = after[0] if after else None
    moved_while_silent = first is not None and fault.end is not None and first.t < fault.end
    lost_session = (
        first is not None and first.session_id != on.session_id and first.t <= deadline
    )
    if fault.end is not None and fault.end < deadline and not (moved_while_silent or lost_session):
        return result("healed-first", None, "the member spoke again before the bound")
    return result("violation", None, _silent_outcome(history, fault.start, member, on, after))


def _silent_violation(history: History, check: SilentCheck) -> Violation:
    run = history.run
    fault = check.fault
    tick_s = (run.tick_ms or 0) / 1000.0
    if check.noticed_s is None:
        noticed = "never noticed the silence (no disconnect recorded)"
    else:
        noticed = f"noticed the silence after {check.noticed_s:.2f}s"
    retry = f" + {run.session_timeout_s / run.members:g}s for its retry of the silent member"
    return Violation(
        "I6", fault.start + check.bound_s,
        f"fault {fault.id} (silent-member, {fault.detail.get('variant', '?')}) made member "
        f"{check.member} silent at {_rel(history, fault.start)}; {check.name} was on it with "
        f"session {check.session_id} and was not back on another member with the same session "
        f"within {check.bound_s:.2f}s (2/3 x {run.session_timeout_s:g}s session timeout + "
        f"{tick_s:g}s tick + {SILENT_SLACK_S:g}s slack{retry if check.retried else ''}): it "
        f"{noticed}; {check.outcome}",
    )


def _check_i6(
    history: History, faults: Sequence[Fault], violations: list[Violation]
) -> list[SilentCheck]:
    connections = _Connections(history)
    checks: list[SilentCheck] = []
    for fault in faults:
        if fault.kind != "silent-member":
            continue
        member = fault.detail.get("member")
        if isinstance(member, bool) or not isinstance(member, int):
            violations.append(Violation(
                "I6", fault.start,
                f"fault {fault.id} (silent-member) does not say which member went silent "
                f"(detail 'member' is {member!r}), so it cannot be judged",
            ))
            continue
        for process, on in connections.on_member(member, fault.start):
            check = _judge_silent(history, fault, member, process, on, connections)
            checks.append(check)
            if check.status == "violation":
                violations.append(_silent_violation(history, check))
    return checks


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


def _silent_summary(
    history: History, faults: Sequence[Fault], checks: Sequence[SilentCheck]
) -> dict[str, Any]:
    run = history.run
    back = [check.seconds for check in checks if check.seconds is not None]
    statuses = Counter(check.status for check in checks)
    judged = {check.fault.id for check in checks}
    silent = [fault for fault in faults if fault.kind == "silent-member"]
    return {
        "faults": len(silent),
        "faults_with_nobody_on_the_member": sum(1 for f in silent if f.id not in judged),
        "bound_s": _r(silent_member_bound(
            run.session_timeout_s, (run.tick_ms or 0) / 1000.0, run.members, retried=False
        )),
        "judged": statuses["ok"] + statuses["violation"],
        "ok": statuses["ok"],
        "violations": statuses["violation"],
        "not_judged": {
            status: statuses[status] for status in ("killed", "paused", "ended", "healed-first")
        },
        "max_s": _r(max(back, default=None)),
        "p50_s": _r(statistics.median(back) if back else None),
        "list": [
            {
                "fault": check.fault.id,
                "variant": check.fault.detail.get("variant"),
                "member": check.member,
                "process": check.name,
                "session_id": check.session_id,
                "status": check.status,
                "seconds": _r(check.seconds),
                "noticed_s": _r(check.noticed_s),
                "bound_s": _r(check.bound_s),
                "retried": check.retried,
                "outcome": check.outcome,
            }
            for check in checks
        ],
    }


def check(run: str | Path | History) -> CheckResult:
    """Check I1-I6 over a run directory (or an already loaded History)."""
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
    silent = _check_i6(history, faults, violations)
    overlaps = _overlaps(history, beliefs, stopped)
    violations.sort(key=lambda v: (v.t, v.invariant))
    summary = _summary(
        history, violations, beliefs, faults, heals, overlaps, i1_figures, watch_samples
    )
    summary["silent_member"] = _silent_summary(history, faults, silent)
    return CheckResult(history, violations, summary, beliefs, faults, heals, overlaps, silent)

