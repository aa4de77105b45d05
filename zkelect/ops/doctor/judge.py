"""Judging: every check over one observation, in order; and observe-then-judge."""

from __future__ import annotations

from collections.abc import Iterable

from zkelect.ops.doctor.checks_ensemble import (
    check_colocation,
    check_ensemble_size,
    check_four_letter_words,
    check_quorum,
)
from zkelect.ops.doctor.checks_lease import (
    check_grace,
    check_lease,
    check_session_timeout,
    negotiated_timeout_ms,
)
from zkelect.ops.doctor.checks_path import check_path_acl, check_sequence_wrap
from zkelect.ops.doctor.model import CheckResult, Observation, Status, _worst
from zkelect.ops.doctor.observe import observe
from zkelect.ops.supervisor import DEFAULT_GRACE
from zkelect.security import ClientSecurity

__all__ = ["diagnose", "run_checks", "worst"]


def run_checks(
    obs: Observation,
    session_timeout: float,
    lease_margin: float,
    grace: float = DEFAULT_GRACE,
) -> list[CheckResult]:
    """Judge an observation; one result per check, in :data:`CHECK_NAMES` order."""
    membership, source = obs.membership()
    voting = [e for e in membership if e.voting]
    observers = len(membership) - len(voting)
    results = [
        check_ensemble_size(len(obs.members), len(voting) if voting else None, source, observers),
    ]
    voters = len(voting) if voting else sum(m.state != "observer" for m in obs.members)
    results.append(check_quorum(voters, obs.members, obs.session, obs.session_error))
    results.extend(_timing_checks(obs, session_timeout, lease_margin, grace))
    results.append(check_colocation(obs.members))
    acl_result = check_path_acl(
        obs.acl,
        ""
        if obs.acl is not None or obs.path is None
        else f"cannot read the ACL of {obs.path}: {obs.session_error or 'no session'}",
    )
    if acl_result is not None:
        results.append(acl_result)
    wrap_result = check_sequence_wrap(obs.sequence)
    if wrap_result is not None:
        results.append(wrap_result)
    results.append(check_four_letter_words(obs.members))
    return results


def _timing_checks(
    obs: Observation, session_timeout: float, lease_margin: float, grace: float
) -> list[CheckResult]:
    """The session-timeout, lease and grace checks, against what the members reported."""
    settings = obs.settings()
    bounds = [(a, s.session_bounds_ms) for a, s in settings if s.session_bounds_ms]
    nothing_serves = True
    if not any(m.answered for m in obs.members):
        why = "no member answered"
    elif not any(m.serving or m.state == "unknown" for m in obs.members):
        why = "no member serves (see quorum)"
    else:
        why, nothing_serves = "no member answered 'conf' (not whitelisted)", False
    checked_bounds = [(a, b) for a, b in bounds if b is not None]
    results = [
        check_session_timeout(session_timeout, checked_bounds, why, nothing_serves=nothing_serves)
    ]
    granted = session_timeout
    if checked_bounds:  # the strictest member decides
        granted = (
            min(negotiated_timeout_ms(session_timeout * 1000, b) for _, b in checked_bounds) / 1000
        )
    ticks = [s.tick_time_ms for _, s in settings if s.tick_time_ms]
    syncs = [s.sync_limit for _, s in settings if s.sync_limit]
    results.append(
        check_lease(
            granted,
            lease_margin,
            max(ticks) if ticks else None,
            max(syncs) if syncs else None,
            negotiated=bool(checked_bounds),
        )
    )
    results.append(check_grace(grace, granted, lease_margin))
    return results


def diagnose(
    hosts: str,
    path: str | None = None,
    *,
    session_timeout: float = 10.0,
    lease_margin: float = 0.2,
    grace: float = DEFAULT_GRACE,
    timeout: float = 5.0,
    auth: tuple[str, str] | None = None,
    security: ClientSecurity | None = None,
) -> list[CheckResult]:
    """Observe the deployment and judge it: one :class:`CheckResult` per check."""
    return run_checks(
        observe(hosts, path, timeout=timeout, auth=auth, security=security),
        session_timeout,
        lease_margin,
        grace,
    )


def worst(results: Iterable[CheckResult]) -> Status:
    return _worst(*(r.status for r in results))
