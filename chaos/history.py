"""The recorded history of one chaos run, typed and validated (the contract in docs/reliability.md).

``load_run(run_dir)`` reads every file of a run directory into a ``History`` of frozen
dataclasses, one class per record kind. The files are JSON Lines appended one whole line per
``os.write``, so a SIGKILLed writer can leave at most a torn *last* line: that line is dropped
(and the file is listed in ``History.truncated``). Anything else that does not match the
contract -- a torn line in the middle, a missing or mistyped field, an unknown event -- raises
``HistoryError`` naming the file and the line, because a checker that guesses is not a checker.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "FAULT_KINDS",
    "AcceptedWrite",
    "CandidateEvent",
    "Connected",
    "Cont",
    "Disconnected",
    "Elected",
    "Exit",
    "FaultEnd",
    "FaultStart",
    "FinalSample",
    "History",
    "HistoryError",
    "Kill",
    "LeaderSample",
    "NemesisEvent",
    "ObserverEvent",
    "ObserverSession",
    "Revoked",
    "RunInfo",
    "Session",
    "Start",
    "Stop",
    "WatchSample",
    "Write",
    "load_run",
]

FAULT_KINDS: tuple[str, ...] = (
    "kill-leader",
    "kill-candidate",
    "pause-leader-short",
    "pause-leader-long",
    "pause-candidate",
    "kill-zk-leader",
    "kill-zk-follower",
    "pause-zk-leader",
    "pause-zk-follower",
    "quorum-loss",
    "partition-short",
    "partition-long",
    "expire-session",
    "proxy-flap",
    "proxy-blackhole",
    "delete-election-path",
    "silent-member",
)

WriteResult = Literal["accepted", "rejected", "error"]


class HistoryError(ValueError):
    """A run directory that does not follow the history contract (names the file and line)."""


# --- records --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    seed: int
    duration_s: float
    session_timeout_s: float
    members: int
    candidates: int
    election_path: str
    store: str
    store_path: str
    netns: bool
    started_t: float
    ended_t: float | None
    nemesis_kinds: tuple[str, ...]
    heal_bound_s: float
    # Written since the silent-member nemesis (older run directories lack them): the run's
    # profile ("short", "default") and the ensemble's tickTime, which I6's bound needs.
    profile: str | None
    tick_ms: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Start:
    t: float
    cand: str
    inc: int
    pid: int


@dataclass(frozen=True, slots=True)
class Session:
    t: float
    cand: str
    inc: int
    session_id: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The client is connected (again) to ``member`` (an index), on session ``session_id``."""

    t: float
    cand: str
    inc: int
    member: int
    session_id: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The client lost its connection: ``state`` is "suspended" (it is reconnecting) or
    "lost" (the session is gone)."""

    t: float
    cand: str
    inc: int
    state: str


@dataclass(frozen=True, slots=True)
class Elected:
    t: float
    cand: str
    inc: int
    epoch: int
    node: str


@dataclass(frozen=True, slots=True)
class Revoked:
    t: float
    cand: str
    inc: int
    epoch: int
    reason: str


@dataclass(frozen=True, slots=True)
class Write:
    t: float
    cand: str
    inc: int
    epoch: int
    seq: int
    t_start: float
    result: WriteResult
    current_epoch: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Exit:
    t: float
    cand: str
    inc: int


CandidateEvent = Start | Session | Connected | Disconnected | Elected | Revoked | Write | Exit


@dataclass(frozen=True, slots=True)
class FaultStart:
    t: float
    id: int
    kind: str
    targets: tuple[str, ...]
    planned_s: float
    detail: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True, slots=True)
class FaultEnd:
    t: float
    id: int
    # What was learnt while healing (silent-member: "silent_connects", new connections each
    # candidate opened to the silent member during the fault); empty for most kinds.
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Kill:
    t: float
    cand: str
    inc: int
    pid: int


@dataclass(frozen=True, slots=True)
class Stop:
    t: float
    cand: str
    inc: int


@dataclass(frozen=True, slots=True)
class Cont:
    t: float
    cand: str
    inc: int


NemesisEvent = FaultStart | FaultEnd | Kill | Stop | Cont


@dataclass(frozen=True, slots=True)
class ObserverSession:
    t: float
    session_id: str


@dataclass(frozen=True, slots=True)
class LeaderSample:
    t: float
    node: str | None
    owner_session: str | None
    epoch: int | None
    nodes: int


@dataclass(frozen=True, slots=True)
class WatchSample:
    t: float
    member: str
    watches: Mapping[str, tuple[str, ...]]
    owners: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class FinalSample:
    t: float
    nodes: tuple[str, ...]
    ephemeral_owners: Mapping[str, str]
    live_candidates: int
    live_sessions: tuple[str, ...]


ObserverEvent = ObserverSession | LeaderSample | WatchSample | FinalSample


@dataclass(frozen=True, slots=True)
class AcceptedWrite:
    """One row of the fenced store's own audit table, in commit (id) order."""

    id: int
    epoch: int
    cand: str
    seq: int
    t: float


@dataclass(frozen=True, slots=True)
class History:
    run_dir: Path
    run: RunInfo
    candidate_events: tuple[CandidateEvent, ...]  # all slots, sorted by t (stable)
    nemesis_events: tuple[NemesisEvent, ...]  # sorted by t (stable)
    observer_events: tuple[ObserverEvent, ...]  # sorted by t (stable)
    store_accepted: tuple[AcceptedWrite, ...] | None  # None: store_accepted.jsonl is missing
    truncated: tuple[str, ...]  # files whose torn last line was dropped

    @property
    def end_t(self) -> float:
        """When the run ended: run.json's ended_t, else the latest time anything recorded."""
        if self.run.ended_t is not None:
            return self.run.ended_t
        latest = self.run.started_t
        for events in (self.candidate_events, self.nemesis_events, self.observer_events):
            if events:
                latest = max(latest, max(event.t for event in events))
        return latest

    @property
    def final(self) -> FinalSample | None:
        finals = [event for event in self.observer_events if isinstance(event, FinalSample)]
        return finals[-1] if finals else None

    @property
    def observer_sessions(self) -> frozenset[str]:
        return frozenset(
            event.session_id
            for event in self.observer_events
            if isinstance(event, ObserverSession)
        )


# --- field readers ----------------------------------------------------------------------------


class _Line:
    """One decoded JSON object and where it came from, with typed field accessors."""

    def __init__(self, where: str, obj: Mapping[str, Any]) -> None:
        self.where = where
        self.obj = obj

    def fail(self, message: str) -> HistoryError:
        return HistoryError(f"{self.where}: {message}")

    def _get(self, key: str) -> Any:
        if key not in self.obj:
            raise self.fail(f"missing field {key!r}")
        return self.obj[key]

    def int_(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"field {key!r} must be an integer, got {value!r}")
        return value

    def opt_int(self, key: str) -> int | None:
        return None if self.obj.get(key) is None else self.int_(key)

    def float_(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"field {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(f"field {key!r} must be finite, got {value!r}")
        return float(value)

    def opt_float(self, key: str) -> float | None:
        return None if self.obj.get(key) is None else self.float_(key)

    def str_(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self.fail(f"field {key!r} must be a string, got {value!r}")
        return value

    def opt_str(self, key: str) -> str | None:
        return None if self.obj.get(key) is None else self.str_(key)

    def bool_(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self.fail(f"field {key!r} must be true or false, got {value!r}")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(f"field {key!r} must be a list of strings, got {value!r}")
        return tuple(value)

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(f"field {key!r} must be an object of strings, got {value!r}")
        return dict(value)

    def str_list_map(self, key: str) -> dict[str, tuple[str, ...]]:
        value = self._get(key)
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(item, str) for item in v)
            for v in value.values()
        ):
            raise self.fail(f"field {key!r} must be an object of string lists, got {value!r}")
        return {path: tuple(sessions) for path, sessions in value.items()}

    def obj_(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self.fail(f"field {key!r} must be an object, got {value!r}")
        return dict(value)

    def cand(self, expected: str | None = None) -> str:
        cand = self.str_("cand")
        if expected is not None and cand != expected:
            raise self.fail(f"record of candidate {cand!r} in the file of {expected!r}")
        return cand

    def session_id(self, key: str) -> str:
        value = self.str_(key)
        if not value.startswith("0x"):
            raise self.fail(f"field {key!r} must be a session id like '0x1a2b', got {value!r}")
        return value


def _json_lines(path: Path, label: str) -> Iterator[_Line]:
    """Decoded objects of a JSON Lines file; a torn last line is dropped (see load_run)."""
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    lines = text.split("\n")
    # A well-formed file ends with "\n", which leaves an empty last element.
    last_index = len(lines) - 1
    if lines[last_index] == "":
        lines.pop()
        last_index -= 1
    for index, raw in enumerate(lines):
        where = f"{label} line {index + 1}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            if index == last_index:
                # The writer died mid-line (SIGKILL): the only tear the format allows.
                raise _TornLastLine() from None
            raise HistoryError(f"{where}: not valid JSON ({exc.msg}): {raw[:200]!r}") from None
        if not isinstance(obj, dict):
            raise HistoryError(f"{where}: expected a JSON object, got {raw[:200]!r}")
        yield _Line(where, obj)


class _TornLastLine(Exception):
    """Internal: the last line of a file is a torn write."""


class _Timed(Protocol):
    @property
    def t(self) -> float: ...


_T = TypeVar("_T", bound=_Timed)
_R = TypeVar("_R")


def _read_file(
    path: Path, label: str, parse: Callable[[_Line], _R], truncated: list[str]
) -> list[_R]:
    records: list[_R] = []
    try:
        for line in _json_lines(path, label):
            records.append(parse(line))
    except _TornLastLine:
        truncated.append(label)
    return records


def _by_time(records: list[_T]) -> tuple[_T, ...]:
    return tuple(sorted(records, key=lambda record: record.t))


# --- per-file parsers -------------------------------------------------------------------------


def _parse_run(path: Path) -> RunInfo:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError("run.json: missing (the runner writes it when the run starts)") from None
    except ValueError as exc:
        raise HistoryError(f"run.json: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise HistoryError("run.json: expected a JSON object")
    line = _Line("run.json", obj)
    members = line.int_("members")
    if members < 1:
        raise line.fail(f"field 'members' must be positive, got {members}")
    return RunInfo(
        seed=line.int_("seed"),
        duration_s=line.float_("duration_s"),
        session_timeout_s=line.float_("session_timeout_s"),
        members=members,
        candidates=line.int_("candidates"),
        election_path=line.str_("election_path"),
        store=line.str_("store"),
        store_path=line.str_("store_path"),
        netns=line.bool_("netns"),
        started_t=line.float_("started_t"),
        ended_t=line.opt_float("ended_t"),
        nemesis_kinds=line.str_list("nemesis_kinds"),
        heal_bound_s=line.float_("heal_bound_s"),
        profile=line.opt_str("profile"),
        tick_ms=line.opt_int("tick_ms"),
        raw=obj,
    )


def _candidate_parser(slot: str) -> Callable[[_Line], CandidateEvent]:
    def parse(line: _Line) -> CandidateEvent:
        ev = line.str_("ev")
        t = line.float_("t")
        cand = line.cand(slot)
        inc = line.int_("inc")
        if ev == "start":
            return Start(t, cand, inc, line.int_("pid"))
        if ev == "session":
            return Session(t, cand, inc, line.session_id("session_id"))
        if ev == "connected":
            member = line.int_("member")
            if member < 0:
                raise line.fail(f"field 'member' must be a member index >= 0, got {member}")
            return Connected(t, cand, inc, member, line.session_id("session_id"))
        if ev == "disconnected":
            state = line.str_("state")
            if state not in ("suspended", "lost"):
                raise line.fail(f"field 'state' must be suspended or lost, got {state!r}")
            return Disconnected(t, cand, inc, state)
        if ev == "elected":
            return Elected(t, cand, inc, line.int_("epoch"), line.str_("node"))
        if ev == "revoked":
            return Revoked(t, cand, inc, line.int_("epoch"), line.str_("reason"))
        if ev == "write":
            result = line.str_("result")
            if result not in ("accepted", "rejected", "error"):
                raise line.fail(
                    f"field 'result' must be accepted, rejected or error, got {result!r}"
                )
            return Write(
                t,
                cand,
                inc,
                epoch=line.int_("epoch"),
                seq=line.int_("seq"),
                t_start=line.float_("t_start"),
                result=result,  # type: ignore[arg-type]  # checked just above
                current_epoch=line.opt_int("current_epoch"),
                error=line.opt_str("error"),
            )
        if ev == "exit":
            return Exit(t, cand, inc)
        raise line.fail(f"unknown candidate event {ev!r}")

    return parse


class _NemesisParser:
    """Also checks that fault ids pair up: one start per id, an end only after its start."""

    def __init__(self) -> None:
        self.started: set[int] = set()
        self.ended: set[int] = set()

    def __call__(self, line: _Line) -> NemesisEvent:
        ev = line.str_("ev")
        t = line.float_("t")
        if ev == "fault-start":
            fault_id = line.int_("id")
            if fault_id in self.started:
                raise line.fail(f"fault id {fault_id} started twice")
            self.started.add(fault_id)
            return FaultStart(
                t,
                fault_id,
                kind=line.str_("kind"),
                targets=line.str_list("targets"),
                planned_s=line.float_("planned_s"),
                detail=line.obj_("detail"),
            )
        if ev == "fault-end":
            fault_id = line.int_("id")
            if fault_id not in self.started:
                raise line.fail(f"fault-end of fault id {fault_id}, which never started")
            if fault_id in self.ended:
                raise line.fail(f"fault id {fault_id} ended twice")
            self.ended.add(fault_id)
            detail = line.obj_("detail") if "detail" in line.obj else {}
            return FaultEnd(t, fault_id, detail)
        if ev == "kill":
            return Kill(t, line.cand(), line.int_("inc"), line.int_("pid"))
        if ev == "stop":
            return Stop(t, line.cand(), line.int_("inc"))
        if ev == "cont":
            return Cont(t, line.cand(), line.int_("inc"))
        raise line.fail(f"unknown nemesis event {ev!r}")


def _parse_observer(line: _Line) -> ObserverEvent:
    ev = line.str_("ev")
    t = line.float_("t")
    if ev == "observer-session":
        return ObserverSession(t, line.session_id("session_id"))
    if ev == "leader":
        node = line.opt_str("node")
        epoch = line.opt_int("epoch")
        if (node is None) != (epoch is None):
            raise line.fail("a leader sample has both 'node' and 'epoch' or neither")
        return LeaderSample(t, node, line.opt_str("owner_session"), epoch, line.int_("nodes"))
    if ev == "wchp":
        return WatchSample(
            t, line.str_("member"), line.str_list_map("watches"), line.str_map("owners")
        )
    if ev == "final":
        return FinalSample(
            t,
            nodes=line.str_list("nodes"),
            ephemeral_owners=line.str_map("ephemeral_owners"),
            live_candidates=line.int_("live_candidates"),
            live_sessions=line.str_list("live_sessions"),
        )
    raise line.fail(f"unknown observer event {ev!r}")


def _parse_accepted(line: _Line) -> AcceptedWrite:
    return AcceptedWrite(
        id=line.int_("id"),
        epoch=line.int_("epoch"),
        cand=line.cand(),
        seq=line.int_("seq"),
        t=line.float_("t"),
    )


# --- the loader -------------------------------------------------------------------------------


def load_run(run_dir: str | Path) -> History:
    """Read and validate a run directory (raises HistoryError naming the file and line)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HistoryError(f"{run_dir}: not a directory (give the run directory the runner wrote)")
    run = _parse_run(run_dir / "run.json")
    truncated: list[str] = []

    candidate_events: list[CandidateEvent] = []
    candidates_dir = run_dir / "candidates"
    if candidates_dir.is_dir():
        for path in sorted(candidates_dir.glob("*.jsonl")):
            label = f"candidates/{path.name}"
            candidate_events += _read_file(path, label, _candidate_parser(path.stem), truncated)

    nemesis: list[NemesisEvent] = []
    if (run_dir / "nemesis.jsonl").is_file():
        nemesis = _read_file(
            run_dir / "nemesis.jsonl", "nemesis.jsonl", _NemesisParser(), truncated
        )

    observer: list[ObserverEvent] = []
    if (run_dir / "observer.jsonl").is_file():
        observer = _read_file(
            run_dir / "observer.jsonl", "observer.jsonl", _parse_observer, truncated
        )

    store: tuple[AcceptedWrite, ...] | None = None
    store_path = run_dir / "store_accepted.jsonl"
    if store_path.is_file():
        rows: list[AcceptedWrite] = _read_file(
            store_path, "store_accepted.jsonl", _parse_accepted, truncated
        )
        ids = [row.id for row in rows]
        if ids != sorted(set(ids)):
            raise HistoryError("store_accepted.jsonl: rows must be in strictly increasing id order")
        store = tuple(rows)

    return History(
        run_dir=run_dir,
        run=run,
        candidate_events=_by_time(candidate_events),
        nemesis_events=_by_time(nemesis),
        observer_events=_by_time(observer),
        store_accepted=store,
        truncated=tuple(truncated),
    )
