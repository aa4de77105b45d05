"""What ``/livez``, ``/readyz`` and ``/leader`` answer for a set of elections, from memory.

Liveness and readiness are different questions, as Kubernetes asks them:

* **live**: the process and its loops run: the session's worker, timer and callback threads
  are alive, the timer loop has fired recently (its watchdog fires at least every 2/3 of
  the session timeout, connected or not) and so has the heartbeat chain. A ZooKeeper outage
  does *not* make a process dead: restarting every pod of a service because its servers are
  unreachable helps nothing and loses every session. The limits are generous on purpose (a
  restart is the answer to a failed liveness probe). While the servers have not answered
  within the lease, a live process answers 200 ``{"status": "alive", "not_ready": [...]}``:
  only a process whose sessions are proven says ``"ok"``, on any endpoint.
* **ready**: every session is connected *and* its local lease is valid (a quorum answered,
  through the ZooKeeper leader, within the lease: zkelect/_lease.py), and every election is a
  started candidate. A session that kazoo still calls connected while its member has lost
  the quorum stops being ready when the lease runs out, before the servers could expire it.

Nothing here sends a request: a probe can neither add load nor block on a partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from zkelect._zookeeper.outcomes import ConnectionState
from zkelect.errors import ElectionStoppedError, ZkElectError
from zkelect.ops.json_ids import epoch_fields, session_text

if TYPE_CHECKING:
    from zkelect._election.election import Election
    from zkelect._zookeeper.session import Session

__all__ = ["LivenessCheck", "leader", "liveness", "readiness"]

#: A liveness check a server's owner registers: None while fine, else the problem.
LivenessCheck = Callable[[], "str | None"]

_SLACK = 5.0  # seconds added to every liveness limit: a loaded machine is not a dead process


def liveness(
    elections: Iterable[Election], checks: Mapping[str, LivenessCheck]
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of ``/livez``: 200 ``{"status": "ok"}`` or 503 with the
    problems. A quorum loss is not one of them (see the module docstring)."""
    problems: list[str] = []
    for session in _sessions(elections):
        problems.extend(f"session to {session.hosts}: {p}" for p in _loop_problems(session))
    for name, check in checks.items():
        problem = check()
        if problem is not None:
            problems.append(f"{name}: {problem}")
    checked = sorted(checks)
    if problems:
        return 503, {"status": "failing", "problems": problems, "checks": checked}
    # Alive, but not "ok" while the servers have not answered within the lease: the probe
    # passes (a restart would not help), and the body does not claim what /readyz denies.
    unproven = [
        f"session to {session.hosts}: {problem}"
        for session in _sessions(elections)
        if (problem := _session_problem(session)) is not None
    ]
    if unproven:
        return 200, {"status": "alive", "checks": checked, "not_ready": unproven}
    return 200, {"status": "ok", "checks": checked}


def readiness(elections: Iterable[Election]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of ``/readyz`` (and ``/healthz``): 200 while every session is
    connected with a valid lease and every election is a started candidate; 503 with the
    problems otherwise. With no elections at all, 200: nothing is unready."""
    sessions: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for election in elections:
        session = election.session
        entry = sessions.get(id(session))
        if entry is None:
            entry = sessions[id(session)] = _session_entry(session)
            problem = _session_problem(session)
            if problem is not None:
                problems.append(f"session to {session.hosts}: {problem}")
        entry["elections"].append(election.path)
        problem = _candidate_problem(election)
        if problem is not None:
            problems.append(f"{election.path}: {problem}")
    body: dict[str, Any] = {
        "status": "unavailable" if problems else "ok",
        "sessions": list(sessions.values()),
    }
    if problems:
        body["problems"] = problems
    return (503 if problems else 200), body


def leader(elections: list[Election], election: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of ``/leader`` (``?election=`` as ``election``): 200 while this
    process leads (one of) them with a valid lease, 503 otherwise, 404 for an election it
    takes no part in. The body names the leader as far as this process knows it."""
    if election is not None:
        elections = [e for e in elections if e.path == election]
        if not elections:
            return 404, {"error": f"this process takes no part in election {election!r}"}
    rows = [_leader_row(e) for e in elections]
    led = [row for row in rows if row["is_leader"]]
    if led:
        body = dict(led[0])
        if len(rows) > 1:
            body["leading"] = [row["election"] for row in led]
        return 200, body
    if rows:
        return 503, dict(rows[0])
    return 503, {
        "election": None,
        "candidate_id": None,
        "is_leader": False,
        **epoch_fields(None),
        "leader": None,
        "leader_known": False,
    }


# -- liveness ---------------------------------------------------------------------------------


def _sessions(elections: Iterable[Election]) -> list[Session]:
    unique: dict[int, Session] = {}
    for election in elections:
        unique.setdefault(id(election.session), election.session)
    return list(unique.values())


def _loop_problems(session: Session) -> list[str]:
    pool, timers, notifier = session.pool, session.timers, session.notifier
    if pool is None or timers is None or notifier is None:
        return []  # released: no loops run (readiness says its elections are stopped)
    problems = [
        f"its {what} thread is not running"
        for what, alive in (
            ("worker", pool.alive()),
            ("timer", timers.alive()),
            ("callback", notifier.alive()),
        )
        if not alive
    ]
    now, timeout = session.clock(), session.session_timeout
    quiet = now - timers.fired_at
    if quiet > 2.0 * timeout + _SLACK:  # the watchdog fires every 2/3 timeout at most
        problems.append(f"its timer loop has not fired for {quiet:.1f}s")
    beat = session.last_beat()
    # A beat waits for the previous one's answer: at most a request timeout, or until the
    # watchdog drops a silent connection (2/3 of the session timeout).
    limit = session.heartbeat_interval() + session.config.request_timeout + 2.0 * timeout
    if beat is not None and now - beat > limit + _SLACK:
        problems.append(f"its heartbeat has not run for {now - beat:.1f}s")
    return problems


# -- readiness --------------------------------------------------------------------------------


def _session_entry(session: Session) -> dict[str, Any]:
    return {
        "hosts": session.hosts,
        "session_id": session_text(session.session_id),
        "state": session.state.value,
        "lease_remaining_s": round(session.lease_remaining(), 3),
        "elections": [],
    }


def _session_problem(session: Session) -> str | None:
    """Why this session cannot be relied on now, or None."""
    if session.state is not ConnectionState.CONNECTED:
        return str(session.state.value)
    if session.lease_remaining() > 0:
        return None
    touched = session.lease.touched_at
    if touched is None:
        return "connected, but no answer of the ZooKeeper quorum has proven the session yet"
    return (
        "connected, but the ZooKeeper quorum has not answered within the lease (last proven "
        f"{session.clock() - touched:.1f}s ago): it may be lost"
    )


def _candidate_problem(election: Election) -> str | None:
    """Why this election is not a healthy candidate, or None."""
    try:
        election.wait_for_leadership(0)
    except ElectionStoppedError:
        return f"not a candidate ({election.lifecycle.value})"
    except ZkElectError as exc:
        return f"gave up: {exc}"
    return None


# -- /leader ------------------------------------------------------------------------------------


def _leader_row(election: Election) -> dict[str, Any]:
    try:
        lead = election.wait_for_leadership(0)
    except ZkElectError:
        lead = None
    leading = lead is not None and lead.is_valid()
    session = election.session
    row: dict[str, Any] = {
        "election": election.path,
        "candidate_id": election.candidate_id,
        "is_leader": leading,
        **epoch_fields(lead.epoch if lead is not None and leading else None),
    }
    if lead is not None and leading:
        row["leader"] = {
            "candidate_id": election.candidate_id,
            "node": lead.node_path.rsplit("/", 1)[-1],
            **epoch_fields(lead.epoch),
            "session": session_text(session.session_id),
            "current": True,
        }
        row["leader_known"] = True
        return row
    seen = election.leader_seen()
    row["leader"] = None
    row["leader_known"] = seen is not None
    info, since = seen if seen is not None else (None, 0.0)
    if info is not None:
        current = session.state is ConnectionState.CONNECTED and session.lease_remaining() > 0
        row["leader"] = {
            "candidate_id": info.candidate_id,
            "node": info.node,
            **epoch_fields(info.epoch),
            "session": session_text(info.session_id),
            "known_for_s": round(max(0.0, session.clock() - since), 3),
            "current": current,
        }
    return row
